/**
 * The account and admin consoles, by feature, behind one gate (gate.ts). Pages and route handlers
 * reach them through the Portal's named services: each feature takes already-typed or raw form
 * input, validates it with zod, passes the gate, and does one thing. Every admin mutation and
 * every refusal is audited, in the same transaction as the change where the change has one.
 */
import type { Certbridge } from "../certbridge";
import { ConsoleGate } from "./gate";
import { AdminOverview } from "./overview";
import { CertificateViews } from "./certificates";
import { GatewayAdmin } from "./gateways";
import { AuditLogView } from "./audit";
import { AccountConsole } from "./account";

export type { Viewer, GateRequest, Role } from "./gate";
export type { FormRequest } from "./forms";
export type { AuditQuery } from "./audit";
export { SECRET_FLASH_COOKIE } from "./gateways";
export type { ConsoleGate, AdminOverview, CertificateViews, GatewayAdmin, AuditLogView, AccountConsole };

export interface Consoles {
  gate: ConsoleGate;
  overview: AdminOverview;
  certificates: CertificateViews;
  gateways: GatewayAdmin;
  audit: AuditLogView;
  account: AccountConsole;
}

export function createConsoles(cb: Certbridge): Consoles {
  const gate = new ConsoleGate({ db: cb.db, config: cb.config, clock: cb.clock });
  const certificates = new CertificateViews(cb, gate);
  return {
    gate,
    overview: new AdminOverview(cb),
    certificates,
    gateways: new GatewayAdmin(cb, gate),
    audit: new AuditLogView(cb),
    account: new AccountConsole(cb, gate, certificates),
  };
}
