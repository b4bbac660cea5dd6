/**
 * The audit trail. Every audit row is written by `recordAudit`: awaited on its
 * own it is one insert; placed, unawaited, in a `$transaction([...])` next to
 * the state change it describes it commits with that change (Prisma's queries
 * are lazy until awaited or batched). Given a list it writes all in one insert.
 */
import { newTimeOrderedId, type Db } from "./client";

export interface AuditInput {
  action: string;
  actor: string;
  outcome?: "success" | "refused" | "failure";
  identityId?: string | null;
  certificateId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
}

/** The stored row of an audit event (a new id; details as JSON). */
export function auditRow(a: AuditInput) {
  return {
    id: newTimeOrderedId(),
    action: a.action,
    actor: a.actor,
    outcome: a.outcome ?? "success",
    identityId: a.identityId ?? null,
    certificateId: a.certificateId ?? null,
    clientId: a.clientId ?? null,
    ip: a.ip ?? null,
    details: JSON.stringify(a.details ?? {}),
  };
}

/** One audit event (or several, in one insert). Await it, or put it in a `$transaction([...])` batch. */
export function recordAudit(db: Db, audit: AuditInput): ReturnType<typeof createOne>;
export function recordAudit(db: Db, audits: AuditInput[]): ReturnType<typeof createMany>;
export function recordAudit(db: Db, a: AuditInput | AuditInput[]) {
  return Array.isArray(a) ? createMany(db, a) : createOne(db, a);
}

const createOne = (db: Db, a: AuditInput) => db.auditEvent.create({ data: auditRow(a), select: { id: true } });
const createMany = (db: Db, a: AuditInput[]) => db.auditEvent.createMany({ data: a.map(auditRow) });

export const auditSelect = {
  id: true,
  at: true,
  action: true,
  actor: true,
  outcome: true,
  identityId: true,
  certificateId: true,
  clientId: true,
  ip: true,
  details: true,
} as const;

export function listAuditEvents(db: Db, f: { certificateId?: string; identityId?: string; action?: string; limit: number }) {
  return db.auditEvent.findMany({
    where: { certificateId: f.certificateId, identityId: f.identityId, action: f.action },
    orderBy: [{ at: "desc" }, { id: "desc" }],
    take: f.limit,
    select: auditSelect,
  });
}

export interface AuditFilter {
  /** An exact action ("proxy.issue") or a family ("proxy."). */
  action?: string;
  actor?: string;
  outcome?: string;
  clientId?: string;
  identityId?: string;
  certificateId?: string;
  from?: Date;
  to?: Date;
  /** Keyset: events strictly older than this (at, id). */
  before?: { at: Date; id: string };
}

/** Audit events, newest first, by keyset pages (index at / action,at / clientId,at / actor,at / identityId,at). */
export function searchAuditEvents(db: Db, f: AuditFilter, take: number) {
  return db.auditEvent.findMany({
    where: {
      AND: [
        // a family "login." is "login" itself and every "login.…"
        f.action ? (f.action.endsWith(".") ? { OR: [{ action: f.action.slice(0, -1) }, { action: { startsWith: f.action } }] } : { action: f.action }) : {},
        f.actor ? { actor: f.actor } : {},
        f.outcome ? { outcome: f.outcome } : {},
        f.clientId ? { clientId: f.clientId } : {},
        f.identityId ? { identityId: f.identityId } : {},
        f.certificateId ? { certificateId: f.certificateId } : {},
        f.from ? { at: { gte: f.from } } : {},
        f.to ? { at: { lt: f.to } } : {},
        f.before ? { OR: [{ at: { lt: f.before.at } }, { at: f.before.at, id: { lt: f.before.id } }] } : {},
      ],
    },
    orderBy: [{ at: "desc" }, { id: "desc" }],
    take,
    select: auditSelect,
  });
}
