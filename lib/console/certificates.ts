/** Certificates in the consoles: the admin table and detail, the person's own, PEM downloads, revocation. */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { CertbridgeError, notFound } from "../errors";
import { findCertificate, findIdentityClaims, listAuditEvents } from "../db";
import { searchCertificates } from "../admin/certificates";
import { REVOCATION_REASONS, parseRevocationReason, revokeUserCertificate } from "../ca/revocation";
import { findClient } from "../oidc/clients";
import { decodeCertificate } from "../inspect/certificate";
import { pemBlocks, toPem } from "../pki/der";
import type { ConsoleGate } from "./gate";
import { describeAuditRows } from "./audit";
import { adminActor, parseForm, reasonField, type FormRequest } from "./forms";
import { displayText } from "../displayText";

/** What a certificate's status badge says: a proxy of a revoked user certificate is revoked too. */
export type CertificateState = "valid" | "expired" | "revoked" | "issuer-revoked";

const REASON_NAMES = new Map<number, string>(Object.entries(REVOCATION_REASONS).map(([name, code]) => [code, name]));
/** RFC 5280 §5.3.1 reason code as its name ("superseded"), or the bare code when unknown. */
export const revocationReasonName = (code: number | null): string | null => (code === null ? null : (REASON_NAMES.get(code) ?? `reason code ${code}`));

export class CertificateViews {
  constructor(
    private readonly cb: Certbridge,
    private readonly gate: ConsoleGate,
  ) {}

  async searchCertificates(params: URLSearchParams, ownerId?: string) {
    const get = (k: string) => params.get(k)?.trim() || undefined;
    const result = await searchCertificates(
      this.cb.db,
      {
        subject: get("subject"),
        serial: get("serial"),
        kind: get("kind") as "user" | "proxy" | undefined,
        status: get("status") as "valid" | "expired" | "revoked" | undefined,
        clientId: get("client"),
        vo: get("vo"),
        keySource: get("key") as "csr" | "server" | "ca" | undefined,
        identityId: ownerId ?? get("identity"),
        limit: get("limit") ?? 50,
        cursor: get("cursor"),
      },
      this.cb.clock(),
    );
    // proxies of a revoked user certificate: revoked as far as any relying party is concerned
    const parents = [...new Set(result.rows.filter((r) => r.kind === "proxy" && r.parentId && r.state === "valid").map((r) => r.parentId!))];
    const revokedParents = new Set((await Promise.all(parents.map((id) => findCertificate(this.cb.db, { id })))).filter((p) => p?.status === "revoked").map((p) => p!.id));
    return {
      ...result,
      rows: result.rows.map((r) => ({
        ...r,
        state: (r.parentId && revokedParents.has(r.parentId) ? "issuer-revoked" : r.state) as CertificateState,
        revocationReasonName: revocationReasonName(r.revocationReason),
      })),
    };
  }

  /** One certificate with its decoding and audit trail; with `ownerId`, only that person's. */
  async certificate(id: string, ownerId?: string) {
    const row = await findCertificate(this.cb.db, { id });
    if (!row || (ownerId !== undefined && row.identityId !== ownerId)) throw notFound("no such certificate");
    const block = pemBlocks(row.pem)[0];
    if (!block) throw new CertbridgeError("server_error", `certificate ${id} has no PEM`);
    const decoded = decodeCertificate(block.der);
    const [audit, owner, client] = await Promise.all([
      listAuditEvents(this.cb.db, { certificateId: id, limit: 100 }),
      findIdentityClaims(this.cb.db, row.identityId),
      row.clientId ? findClient(this.cb.db, row.clientId) : Promise.resolve(null),
    ]);
    const issuance = audit.find((a) => a.action === "proxy.issue" || a.action === "certificate.issue");
    const now = this.cb.clock();
    const parent = row.kind === "proxy" && row.parentId ? await findCertificate(this.cb.db, { id: row.parentId }) : null;
    const state: CertificateState = row.status === "valid" && row.notAfter <= now ? "expired" : row.status === "valid" && parent?.status === "revoked" ? "issuer-revoked" : (row.status as "valid" | "revoked");
    return {
      row: { ...row, state, revocationReasonName: revocationReasonName(row.revocationReason) },
      parent: parent ? { id: parent.id, serialHex: parent.serialHex, status: parent.status, revokedAt: parent.revokedAt, revocationReasonName: revocationReasonName(parent.revocationReason) } : null,
      decoded,
      audit: await describeAuditRows(this.cb.db, audit),
      requestedBy: issuance ? { actor: issuance.actor, ip: issuance.ip, at: issuance.at } : null,
      owner: owner ? { id: owner.id, displayName: displayText(owner.displayName), subject: owner.subject, issuer: owner.issuer } : null,
      client: client ? { id: client.id, name: displayText(client.name) } : null,
    };
  }

  async certificatePem(id: string, ownerId?: string): Promise<{ filename: string; pem: string }> {
    const row = await findCertificate(this.cb.db, { id });
    if (!row || (ownerId !== undefined && row.identityId !== ownerId)) throw notFound("no such certificate");
    // Only the certificate: sealed private keys never leave through the console.
    return { filename: `${row.kind}-${row.serialHex}.pem`, pem: toPem("CERTIFICATE", pemBlocks(row.pem)[0]!.der) };
  }

  readonly revocationReasons = Object.keys(REVOCATION_REASONS);

  async revokeCertificate(req: FormRequest, id: string) {
    const viewer = await this.gate.require(req, "admin", "certificate.revoke");
    const f = parseForm(z.object({ reason: z.string().min(1, "choose a reason"), comment: reasonField, confirm: z.literal("yes", "tick the confirmation box") }), req.form);
    const reason = parseRevocationReason(f.reason);
    const who = adminActor(viewer);
    return revokeUserCertificate(this.cb, { id }, reason, { actor: who.actor, comment: `${f.comment} (by ${who.by})`, ip: req.ip ?? undefined });
  }
}
