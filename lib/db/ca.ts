/** The CA record: which CA this database belongs to, and its CRL numbering. */
import { recordAudit, type AuditInput } from "./audit";
import type { Db } from "./client";

export const caRecordSelect = {
  id: true,
  subject: true,
  certPem: true,
  fingerprint: true,
  notAfter: true,
  crlNumber: true,
  crlIssuedAt: true,
  crlNextUpdate: true,
  createdAt: true,
} as const;

export async function upsertCaRecord(
  db: Db,
  ca: { fingerprint: string; subject: string; certPem: string; notAfter: Date },
  audit: AuditInput | null,
) {
  const existing = await db.caRecord.findUnique({ where: { id: ca.fingerprint }, select: { id: true } });
  if (existing) return;
  await db.$transaction([
    db.caRecord.create({ data: { id: ca.fingerprint, ...ca }, select: { id: true } }),
    ...(audit ? [recordAudit(db, audit)] : []),
  ]);
}

/** The CA this database was first set up with (null: a new database). */
export function findFirstCaRecord(db: Db) {
  return db.caRecord.findFirst({ orderBy: { createdAt: "asc" }, select: { id: true, subject: true } });
}

/** Whether this database has ever registered a CA (a CA that started has served, and may have issued). */
export async function hasCaRecord(db: Db): Promise<boolean> {
  return (await db.caRecord.count()) > 0;
}

export function getCaRecord(db: Db, fingerprint: string) {
  return db.caRecord.findUnique({ where: { id: fingerprint }, select: caRecordSelect });
}

/** Reserve the next CRL number (RFC 5280 §5.2.3: monotonically increasing) and record the publication. */
export async function recordCrlPublication(db: Db, fingerprint: string, issuedAt: Date, nextUpdate: Date): Promise<number> {
  const row = await db.caRecord.update({
    where: { id: fingerprint },
    data: { crlNumber: { increment: 1 }, crlIssuedAt: issuedAt, crlNextUpdate: nextUpdate },
    select: { crlNumber: true },
  });
  return row.crlNumber;
}
