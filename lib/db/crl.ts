/**
 * The CA's stored CRLs. One writer at a time signs the next one, inside
 * `withCrlWriterLock`: on PostgreSQL a transaction-scoped advisory lock
 * (several instances share the database); on SQLite the transaction's first
 * statement is a write, which takes the database's single write lock (the
 * CLI and the server may both write). Either way the CRL number is reserved,
 * the revocations are read and the CRL is stored in that one transaction, so
 * numbers strictly increase and a later number never lists less.
 */
import { dbKindOf, type Db } from "./client";

/** pg_advisory_xact_lock key: an arbitrary constant ("CRL" in ASCII); the scheduled jobs' leadership lock is "JOBS" (./leadership.ts). */
const CRL_LOCK_KEY = 0x43524c;

export type CrlTx = Parameters<Parameters<Db["$transaction"]>[0]>[0];

export interface StoredCrl {
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  issuedAt: Date;
  revokedCount: number;
  der: Uint8Array;
}

const crlSelect = { number: true, thisUpdate: true, nextUpdate: true, issuedAt: true, revokedCount: true, der: true } as const;

/** The newest stored CRL of a CA, or null before the first. */
export function findCurrentCrl(db: Db | CrlTx, caId: string): Promise<StoredCrl | null> {
  return db.crlRecord.findFirst({ where: { caId }, orderBy: { number: "desc" }, select: crlSelect });
}

/** Just the facts needed to decide whether to re-sign (no bytes). */
export function findCurrentCrlInfo(db: Db, caId: string) {
  return db.crlRecord.findFirst({ where: { caId }, orderBy: { number: "desc" }, select: { number: true, nextUpdate: true, issuedAt: true } });
}

/** When the newest revocation of this CA's certificates happened (null: none). */
export async function latestRevocationAt(db: Db, issuer: string): Promise<Date | null> {
  const row = await db.certificate.findFirst({ where: { issuer, status: "revoked" }, orderBy: { revokedAt: "desc" }, select: { revokedAt: true } });
  return row?.revokedAt ?? null;
}

/**
 * Run `fn` as the only CRL writer of this database. `fn` gets the
 * transaction and the reserved CRL number (CaRecord.crlNumber + 1, also
 * recorded there for `ca info`) and returns the CRL to store.
 */
export async function withCrlWriterLock(
  db: Db,
  databaseUrl: string,
  caId: string,
  fn: (tx: CrlTx, number: number) => Promise<Omit<StoredCrl, "number">>,
): Promise<StoredCrl> {
  return db.$transaction(
    async (tx) => {
      if (dbKindOf(databaseUrl) === "postgresql") await tx.$executeRaw`SELECT pg_advisory_xact_lock(${CRL_LOCK_KEY}::bigint)`;
      // A write first: on SQLite it takes the write lock before anything is read (no stale snapshot).
      const ca = await tx.caRecord.update({ where: { id: caId }, data: { crlNumber: { increment: 1 } }, select: { crlNumber: true } });
      const latest = await tx.crlRecord.findFirst({ where: { caId }, orderBy: { number: "desc" }, select: { number: true } });
      // Never reuse a number, even if the counter was reset by hand.
      const number = Math.max(ca.crlNumber, (latest?.number ?? 0) + 1);
      const crl = await fn(tx, number);
      await tx.caRecord.update({ where: { id: caId }, data: { crlNumber: number, crlIssuedAt: crl.issuedAt, crlNextUpdate: crl.nextUpdate } });
      await tx.crlRecord.create({ data: { caId, number, ...crl, der: Buffer.from(crl.der) }, select: { number: true } });
      // Keep a short history (the newest is served); old CRLs are superseded.
      await tx.crlRecord.deleteMany({ where: { caId, number: { lte: number - 16 } } });
      return { number, ...crl };
    },
    { maxWait: 30_000, timeout: 30_000 },
  );
}
