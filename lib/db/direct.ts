/**
 * The issuance hot path's statements, run on the database driver itself
 * (better-sqlite3, node-postgres) with prepared statements, beside Prisma on
 * the same connection (SQLite) or the same pool (PostgreSQL).
 *
 * Why: a /getproxy call reads an access token, its grant and the person's
 * current user certificate, and stores a proxy with its audit event. Through
 * Prisma each of those costs its query interpreter, the adapter's type mapping
 * and (on SQLite) a fresh `prepare`: measured at 40-50 % of a request's CPU
 * (bench/throughput.ts profile). Here a statement is prepared once per
 * connection and its parameters bound as they are.
 *
 * Only the modules of lib/db use this, for the few statements on that path;
 * everything else stays on Prisma. Values are written exactly as Prisma's
 * adapters write them, so either side reads what the other wrote:
 *   - SQLite DateTime: ISO 8601 text with "+00:00" (adapter-better-sqlite3, timestampFormat iso8601);
 *   - PostgreSQL timestamp(3): UTC "YYYY-MM-DD HH:MM:SS.mmm" text (adapter-pg formatDateTime).
 *
 * Writes are atomic: on SQLite they take the adapter's transaction slot (so
 * they never interleave with a Prisma transaction on the same connection) and
 * run synchronously between BEGIN and COMMIT; on PostgreSQL each write is one
 * statement (a statement is its own transaction).
 */
import pg from "pg";
import type { DbKind } from "./client";

/** What a statement may bind. Dates are converted to the dialect's stored form. */
export type SqlParam = string | number | null | Date;

/** A query with `?` placeholders (numbered `$n` for PostgreSQL here, once). */
export interface Statement {
  readonly name: string;
  readonly sqlite: string;
  readonly pg: string;
}

/** Name a statement once, at module load: `?` placeholders, the same text on both dialects unless `pg` is given. */
export function statement(name: string, sqlite: string, pgText?: string): Statement {
  let n = 0;
  return { name: `certbridge_${name}`, sqlite, pg: pgText ?? sqlite.replace(/\?/g, () => `$${++n}`) };
}

export interface DirectSql {
  readonly kind: DbKind;
  /** The rows of a read. Timestamp columns come back as the dialect's text: read them with `dateOf`. */
  all<T>(stmt: Statement, params: readonly SqlParam[]): Promise<T[]>;
  /**
   * Writes, all or none. `sqlite` runs statement by statement inside one transaction; `pg` is one
   * statement (a data-modifying WITH, for example), which PostgreSQL runs atomically by itself.
   */
  write(work: { sqlite: readonly { stmt: Statement; params: readonly SqlParam[] }[]; pg: { stmt: Statement; params: readonly unknown[] } }): Promise<void>;
  /** One writing statement that returns rows (DELETE … RETURNING), atomic on both dialects. */
  writeReturning<T>(stmt: Statement, params: readonly SqlParam[]): Promise<T[]>;
}

/** A stored timestamp as a Date, from either dialect's text (or a Date already). */
export function dateOf(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  const s = String(v);
  // PostgreSQL's timestamp without time zone, read as text: UTC by construction (adapter-pg writes UTC).
  return new Date(/[zZ]|[+-]\d\d:\d\d$/.test(s) ? s : `${s.replace(" ", "T")}Z`);
}

export const sqliteTime = (d: Date) => d.toISOString().replace("Z", "+00:00");
const pad = (n: number, z = 2) => String(n).padStart(z, "0");
export const pgTime = (d: Date) =>
  `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;

/* ---------------------------------------------------------------- SQLite */

/** better-sqlite3, as far as this module needs it. */
interface SqliteStatement {
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
  safeIntegers(on?: boolean): SqliteStatement;
}
export interface SqliteHandle {
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
}
/** The guarded Prisma adapter's transaction (lib/db/faults.ts): BEGIN on start; COMMIT/ROLLBACK through executeRaw, then commit()/rollback() release the slot. */
export interface SqliteSlot {
  executeRaw(query: { sql: string; args: unknown[]; argTypes: unknown[] }): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}
export interface SqliteConnection {
  handle: SqliteHandle;
  startTransaction(): Promise<SqliteSlot>;
}

const sqliteValue = (v: SqlParam) => (v instanceof Date ? sqliteTime(v) : v);

const isSqliteBusy = (e: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown } | null)?.code ?? ""));

/**
 * @param busyTimeoutMs the connection's busy timeout (restored after each write)
 * @param writeLockWaitMs how long a write retries while another process holds the write lock; then SQLITE_BUSY (503)
 */
export function sqliteDirect(conn: () => SqliteConnection, busyTimeoutMs: number, writeLockWaitMs: number): DirectSql {
  const prepared = new Map<string, SqliteStatement>();
  let preparedOn: SqliteHandle | null = null;
  const prepare = (stmt: Statement) => {
    const { handle } = conn();
    // Prisma reconnects after $disconnect: statements belong to the connection that prepared them.
    if (handle !== preparedOn) {
      prepared.clear();
      preparedOn = handle;
    }
    let s = prepared.get(stmt.name);
    if (!s) {
      // The adapter turns on safe integers for the whole connection; these statements read plain numbers.
      s = handle.prepare(stmt.sqlite).safeIntegers(false);
      prepared.set(stmt.name, s);
    }
    return s;
  };
  const raw = (sql: string) => ({ sql, args: [], argTypes: [] });
  /** Run `work` (synchronous statements) in one transaction in the adapter's slot, waiting for another process's write lock off the event loop. */
  const locked = async <R>(work: () => R): Promise<R> => {
    const giveUpAt = Date.now() + writeLockWaitMs;
    for (;;) {
      const slot = await conn().startTransaction();
      const { handle } = conn();
      try {
        // Synchronous from here to COMMIT: nothing else runs on this connection in between. Another
        // process holding SQLite's write lock is not waited for here (busy_timeout 0): SQLite's busy
        // handler would sleep on this thread, stopping every request of the process meanwhile.
        handle.exec("PRAGMA busy_timeout = 0");
        let result: R;
        try {
          result = work();
        } finally {
          handle.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
        }
        await slot.executeRaw(raw("COMMIT"));
        await slot.commit();
        return result;
      } catch (e) {
        // The guard's ROLLBACK releases the slot even when SQLite already ended the transaction.
        await slot.executeRaw(raw("ROLLBACK")).catch(() => {});
        await slot.rollback();
        if (!isSqliteBusy(e) || Date.now() >= giveUpAt) throw e;
      }
      // The other process's write takes about a millisecond: try again after one, off this thread.
      await new Promise((r) => setTimeout(r, 1 + Math.random()));
    }
  };
  return {
    kind: "sqlite",
    async all<T>(stmt: Statement, params: readonly SqlParam[]) {
      return prepare(stmt).all(...params.map(sqliteValue)) as T[];
    },
    async write(work) {
      await locked(() => {
        for (const { stmt, params } of work.sqlite) prepare(stmt).run(...params.map(sqliteValue));
      });
    },
    async writeReturning<T>(stmt: Statement, params: readonly SqlParam[]) {
      return locked(() => prepare(stmt).all(...params.map(sqliteValue)) as T[]);
    },
  };
}

/* ------------------------------------------------------------ PostgreSQL */

/** Timestamps as text (converted by `dateOf`): node-postgres would read timestamp without time zone in the process's local zone. */
const TIMESTAMP_OID = 1114;
const PG_TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === TIMESTAMP_OID ? (v: string) => v : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

export function pgDirect(pool: pg.Pool): DirectSql {
  const pgValue = (v: unknown): unknown => (v instanceof Date ? pgTime(v) : Array.isArray(v) ? v.map(pgValue) : v);
  const run = async (stmt: Statement, params: readonly unknown[]) =>
    // Named: node-postgres prepares it once per connection and then only binds (extended protocol).
    (await pool.query({ name: stmt.name, text: stmt.pg, values: params.map(pgValue), types: PG_TYPES })).rows;
  return {
    kind: "postgresql",
    async all<T>(stmt: Statement, params: readonly SqlParam[]) {
      return (await run(stmt, params)) as T[];
    },
    async write(work) {
      await run(work.pg.stmt, work.pg.params);
    },
    async writeReturning<T>(stmt: Statement, params: readonly SqlParam[]) {
      return (await run(stmt, params)) as T[];
    },
  };
}
