/**
 * Rate-limit counters (lib/limits/): fixed-window counts shared by every
 * process on this database. One atomic statement per hit (INSERT … ON
 * CONFLICT DO UPDATE … RETURNING, the same text on SQLite ≥ 3.35 and
 * PostgreSQL), so concurrent instances never lose a count.
 */
import type { Db } from "./client";

/** Add `by` to the counter of `key` in the window starting at `windowStart` (seconds); returns the new count. */
export async function incrementRateCounter(db: Db, key: string, windowStart: number, windowEnd: number, by = 1): Promise<number> {
  const rows = await db.$queryRaw<{ count: number | bigint }[]>`
    INSERT INTO "RateCounter" ("key", "windowStart", "count", "windowEnd") VALUES (${key}, ${BigInt(windowStart)}, ${by}, ${BigInt(windowEnd)})
    ON CONFLICT ("key", "windowStart") DO UPDATE SET "count" = "RateCounter"."count" + ${by}
    RETURNING "count"`;
  return Number(rows[0]?.count ?? by);
}

/** The counter of `key` in the window starting at `windowStart`; 0 when none. */
export async function readRateCounter(db: Db, key: string, windowStart: number): Promise<number> {
  const row = await db.rateCounter.findUnique({ where: { key_windowStart: { key, windowStart: BigInt(windowStart) } }, select: { count: true } });
  return row?.count ?? 0;
}

/** Drop counters whose window ended before `nowSeconds` (housekeeping). */
export async function purgeRateCounters(db: Db, nowSeconds: number): Promise<number> {
  const r = await db.rateCounter.deleteMany({ where: { windowEnd: { lt: BigInt(nowSeconds) } } });
  return r.count;
}
