/**
 * Rate-limit counters (lib/limits/): fixed-window counts shared by every
 * process on this database. One atomic statement per hit (INSERT … ON
 * CONFLICT DO UPDATE … RETURNING, the same text on SQLite ≥ 3.35 and
 * PostgreSQL), so concurrent instances never lose a count.
 */
import { directSqlOf, type Db } from "./client";
import { statement } from "./direct";

// On the driver (lib/db/direct.ts): every instance writes its batched counts a few times a second
// and re-reads failure counts as often, and through Prisma each of those statements cost more CPU
// than a proxy's database work (bench/throughput.ts profile, PostgreSQL).
const INCREMENT_RATE_COUNTER = statement(
  "increment_rate_counter",
  `INSERT INTO "RateCounter" ("key", "windowStart", "count", "windowEnd") VALUES (?, ?, ?, ?)
   ON CONFLICT ("key", "windowStart") DO UPDATE SET "count" = "RateCounter"."count" + excluded."count"
   RETURNING "count"`,
);
const READ_RATE_COUNTER = statement("read_rate_counter", `SELECT "count" FROM "RateCounter" WHERE "key" = ? AND "windowStart" = ?`);

/** Add `by` to the counter of `key` in the window starting at `windowStart` (seconds); returns the new count. */
export async function incrementRateCounter(db: Db, key: string, windowStart: number, windowEnd: number, by = 1): Promise<number> {
  const rows = await directSqlOf(db).writeReturning<{ count: number | string }>(INCREMENT_RATE_COUNTER, [key, windowStart, by, windowEnd]);
  return Number(rows[0]?.count ?? by);
}

/** The counter of `key` in the window starting at `windowStart`; 0 when none. */
export async function readRateCounter(db: Db, key: string, windowStart: number): Promise<number> {
  const rows = await directSqlOf(db).all<{ count: number | string }>(READ_RATE_COUNTER, [key, windowStart]);
  return Number(rows[0]?.count ?? 0);
}

/** Drop counters whose window ended before `nowSeconds` (housekeeping). */
export async function purgeRateCounters(db: Db, nowSeconds: number): Promise<number> {
  const r = await db.rateCounter.deleteMany({ where: { windowEnd: { lt: BigInt(nowSeconds) } } });
  return r.count;
}
