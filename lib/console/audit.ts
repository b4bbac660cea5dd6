/** The audit log in the admin console: filtered pages, and streamed CSV / JSON-lines exports (themselves audited). */
import { z } from "zod";
import type { Certbridge } from "../certbridge";
import { invalidRequest } from "../errors";
import { recordAudit, searchAuditEvents, type AuditFilter } from "../db";
import type { Viewer } from "./gate";
import { DAY, adminActor } from "./forms";

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

  async auditLog(params: URLSearchParams, pageSize = 100) {
    const q = auditQuery.safeParse(Object.fromEntries(params));
    if (!q.success) throw invalidRequest(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const rows = await searchAuditEvents(this.cb.db, auditFilter(q.data), pageSize + 1);
    const page = rows.slice(0, pageSize);
    const last = page[page.length - 1];
    return {
      rows: page,
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
