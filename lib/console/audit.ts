/** The audit log in the admin console: filtered pages, and streamed CSV / JSON-lines exports (themselves audited). */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { invalidRequest } from "../errors";
import { findIdentityNames, recordAudit, searchAuditEvents, type AuditFilter, type Db } from "../db";
import type { Viewer } from "./gate";
import { DAY, adminActor } from "./forms";
import { displayText } from "../displayText";

/** Every action the portal records, by family: the audit filter offers each family and each action. */
export const AUDIT_ACTIONS = {
  login: ["login"],
  console: ["console.login"],
  identity: ["identity.create"],
  consent: ["consent.grant", "consent.deny", "consent.revoke"],
  token: ["token.issue", "token.refuse"],
  proxy: ["proxy.issue", "proxy.refuse"],
  certificate: ["certificate.issue", "certificate.revoke"],
  client: ["client.register", "client.update", "client.suspend", "client.activate", "client.rotate_secret", "client.remove"],
  sshkey: ["sshkey.add", "sshkey.delete"],
  myproxy: ["myproxy.refuse", "myproxy.code.create", "myproxy.renewer.add", "myproxy.renewer.update", "myproxy.renewer.remove", "myproxy.renewal.consent", "myproxy.renewal.revoke"],
  admin: ["admin.refuse"],
  audit: ["audit.export"],
  ca: ["ca.create", "ca.register"],
} as const;

/** The action filter's choices: "" (any), then each family ("proxy.", shown as proxy.*) followed by its actions. */
export const AUDIT_ACTION_CHOICES: string[] = ["", ...Object.entries(AUDIT_ACTIONS).flatMap(([family, actions]) => [`${family}.`, ...actions.filter((a) => a !== family)])];

const FIELD_LABELS: Record<string, string> = {
  scopes: "scopes",
  grantId: "consent",
  replaced: "replaced consents",
  tokens: "tokens revoked",
  issuer: "IdP",
  reason: "reason",
  by: "by",
  format: "format",
  filter: "filter",
  lifetime: "lifetime",
  lifetimeSeconds: "lifetime",
  serial: "serial",
  serialHex: "serial",
  vo: "VO",
  fqans: "FQANs",
  error: "error",
  comment: "comment",
  renewer: "VO box (MyProxy renewer)",
};

/** One audit detail value as text: lists joined, small objects as key=value. */
function detailText(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.map(detailText).join(", ");
  if (typeof v === "object") return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}=${detailText(x)}`).join(", ");
  return String(v);
}

export interface AuditActor {
  kind: "person" | "administrator" | "gateway" | "system" | "other";
  /** A name people recognise; the raw actor stays available (title, exports). */
  label: string;
  raw: string;
  identityId: string | null;
}

export type DescribedAuditRow<R> = R & { actorView: AuditActor; person: string | null; fields: [string, string][] };

/** Audit rows for people to read: actors and persons by name, details as labelled fields. */
export async function describeAuditRows<R extends { actor: string; identityId: string | null; details: string }>(db: Db, rows: R[]): Promise<DescribedAuditRow<R>[]> {
  const idOf = (actor: string) => /^(?:user|admin):(.+)$/.exec(actor)?.[1] ?? null;
  const names = await findIdentityNames(db, [...rows.map((r) => idOf(r.actor)), ...rows.map((r) => r.identityId)].filter((x): x is string => !!x));
  return rows.map((r) => {
    const id = idOf(r.actor);
    const kind: AuditActor["kind"] = r.actor.startsWith("user:") ? "person" : r.actor.startsWith("admin:") ? "administrator" : r.actor.startsWith("client:") ? "gateway" : r.actor === "system" ? "system" : "other";
    const label = id ? `${displayText(names.get(id)?.displayName ?? "unknown person")}${kind === "administrator" ? " (admin)" : ""}` : kind === "gateway" ? r.actor.slice("client:".length) : r.actor;
    let details: Record<string, unknown> = {};
    try {
      const parsed = JSON.parse(r.details) as unknown;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) details = parsed as Record<string, unknown>;
      else details = { value: parsed };
    } catch {
      details = { value: r.details };
    }
    return {
      ...r,
      actorView: { kind, label, raw: r.actor, identityId: id },
      person: r.identityId ? displayText(names.get(r.identityId)?.displayName ?? "") || null : null,
      fields: Object.entries(details).map(([k, v]) => [FIELD_LABELS[k] ?? k.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase(), detailText(v)] as [string, string]),
    };
  });
}

const auditQuery = z.object({
  action: z.string().trim().regex(/^[a-z_.]{1,40}$/, "an action is like proxy.issue, or a family like proxy.").optional().or(z.literal("").transform(() => undefined)),
  actor: z.string().trim().max(120).optional().transform((s) => s || undefined),
  outcome: z.enum(["success", "refused", "failure"]).optional().or(z.literal("").transform(() => undefined)),
  client: z.string().trim().max(64).optional().transform((s) => s || undefined),
  identity: z.string().trim().max(64).optional().transform((s) => s || undefined),
  certificate: z.string().trim().max(64).optional().transform((s) => s || undefined),
  from: z.iso.date().optional().or(z.literal("").transform(() => undefined)),
  to: z.iso.date().optional().or(z.literal("").transform(() => undefined)),
  cursor: z.string().max(200).optional(),
});
export type AuditQuery = z.input<typeof auditQuery>;

function auditFilter(q: z.infer<typeof auditQuery>): AuditFilter {
  let before: AuditFilter["before"];
  if (q.cursor) {
    try {
      const { t, i } = z.object({ t: z.iso.datetime(), i: z.string().min(1) }).parse(JSON.parse(Buffer.from(q.cursor, "base64url").toString("utf8")));
      before = { at: new Date(t), id: i };
    } catch (e) {
      throw invalidRequest("the page cursor is invalid; start again from the first page", e);
    }
  }
  return {
    action: q.action,
    actor: q.actor,
    outcome: q.outcome,
    clientId: q.client,
    identityId: q.identity,
    certificateId: q.certificate,
    from: q.from ? new Date(`${q.from}T00:00:00Z`) : undefined,
    // "to" is inclusive for people: up to the end of that day.
    to: q.to ? new Date(new Date(`${q.to}T00:00:00Z`).getTime() + DAY) : undefined,
    before,
  };
}

const AUDIT_COLUMNS = ["at", "action", "outcome", "actor", "identityId", "clientId", "certificateId", "ip", "details"] as const;

/** RFC 4180 field; a leading = + - @ is defused so spreadsheets do not run it as a formula (OWASP CSV injection). */
function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export class AuditLogView {
  constructor(private readonly cb: Certbridge) {}

  /** The action filter's choices (families as "proxy.", then their actions). */
  readonly actionChoices = AUDIT_ACTION_CHOICES;

  async auditLog(params: URLSearchParams, pageSize = 100) {
    const q = auditQuery.safeParse(Object.fromEntries(params));
    if (!q.success) throw invalidRequest(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const rows = await searchAuditEvents(this.cb.db, auditFilter(q.data), pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    return {
      rows: await describeAuditRows(this.cb.db, page),
      nextCursor: rows.length > pageSize && last ? Buffer.from(JSON.stringify({ t: last.at.toISOString(), i: last.id })).toString("base64url") : null,
    };
  }

  /** The whole filtered log as CSV or JSON lines, streamed in keyset batches (constant memory). */
  async *exportAudit(params: URLSearchParams, format: "csv" | "jsonl"): AsyncGenerator<string> {
    const q = auditQuery.safeParse(Object.fromEntries(params));
    if (!q.success) throw invalidRequest(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const filter = auditFilter({ ...q.data, cursor: undefined });
    if (format === "csv") yield `${AUDIT_COLUMNS.join(",")}\r\n`;
    for (;;) {
      const rows = await searchAuditEvents(this.cb.db, filter, 1000);
      for (const r of rows) {
        const record = { ...r, at: r.at.toISOString(), details: r.details };
        if (format === "jsonl") yield `${JSON.stringify({ ...record, details: JSON.parse(r.details) as unknown })}\n`;
        else yield `${AUDIT_COLUMNS.map((c) => csvField(String(record[c] ?? ""))).join(",")}\r\n`;
      }
      const last = rows[rows.length - 1];
      if (rows.length < 1000 || !last) return;
      filter.before = { at: last.at, id: last.id };
    }
  }

  /** Audit the export itself: who took a copy of the log, with which filter. */
  async recordAuditExport(viewer: Viewer, params: URLSearchParams, format: string, ip: string | null) {
    const who = adminActor(viewer);
    await recordAudit(this.cb.db, { action: "audit.export", actor: who.actor, ip, details: { format, filter: Object.fromEntries(params), by: who.by } });
  }
}
