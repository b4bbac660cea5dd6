/**
 * The persistent server-key pool (lib/pki/keyPool.ts): RSA keys generated
 * ahead of demand, sealed at rest, shared by every instance on this
 * database. A key is handed out once: the take deletes the row in the
 * statement that returns it, so two processes can never get the same key.
 * The sealed key is selected by the take only.
 */
import { directSqlOf, type Db } from "./client";
import { statement } from "./direct";

export interface PooledKeyRow {
  id: string;
  bits: number;
  spki: Uint8Array;
  /** Sealed PKCS#8 (lib/pki/seal.ts). */
  keyEnc: string;
}

/** Add one generated key to the pool. */
export async function insertPooledKey(db: Db, row: PooledKeyRow): Promise<void> {
  await db.pooledKey.create({ data: { id: row.id, bits: row.bits, spki: new Uint8Array(row.spki), keyEnc: row.keyEnc }, select: { id: true } });
}

/** Keys of `bits` in the pool now. */
export async function countPooledKeys(db: Db, bits: number): Promise<number> {
  return db.pooledKey.count({ where: { bits } });
}

/**
 * Remove up to `count` keys of `bits` from the pool and return them (oldest first); fewer, or none,
 * when the pool has fewer. PostgreSQL: the inner SELECT locks the rows it picks and skips rows
 * other takers have locked, so concurrent takes get different rows without waiting on each other,
 * and a row is returned by the one DELETE that removed it. SQLite runs one writer at a time, which
 * makes the same statement (DELETE … RETURNING, SQLite ≥ 3.35) atomic without the row lock it does
 * not have. On the driver (lib/db/direct.ts), like the rest of the hot path.
 */
export async function takePooledKeys(db: Db, bits: number, count: number): Promise<PooledKeyRow[]> {
  type Raw = { id: string; bits: number | bigint; spki: Uint8Array; keyEnc: string };
  const rows = await directSqlOf(db).writeReturning<Raw>(TAKE_POOLED_KEYS, [bits, count]);
  return rows.map((row) => ({ id: row.id, bits: Number(row.bits), spki: new Uint8Array(row.spki), keyEnc: row.keyEnc }));
}

const TAKE_POOLED_KEYS = statement(
  "take_pooled_keys",
  `DELETE FROM "PooledKey" WHERE "id" IN (SELECT "id" FROM "PooledKey" WHERE "bits" = ? ORDER BY "createdAt" LIMIT ?) RETURNING "id", "bits", "spki", "keyEnc"`,
  `DELETE FROM "PooledKey" WHERE "id" IN (SELECT "id" FROM "PooledKey" WHERE "bits" = $1 ORDER BY "createdAt" LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING "id", "bits", "spki", "keyEnc"`,
);
