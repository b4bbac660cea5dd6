/**
 * Database faults end in errors, then recovery (issue 12, point 1).
 *
 * - `guardSqliteTransactions` wraps Prisma's better-sqlite3 adapter. The adapter serialises
 *   transactions with a mutex that it releases only in the transaction's commit()/rollback()
 *   callbacks; when the COMMIT statement itself fails (SQLITE_FULL on a full disk, SQLITE_IOERR,
 *   SQLITE_READONLY) the query engine reports the error and never calls either, so the mutex and
 *   the open SQLite transaction stay held: every later transactional write waits forever while
 *   reads go on. The guard rolls back what is left and releases the mutex when COMMIT or ROLLBACK
 *   fails, and bounds the wait for the mutex.
 * - `pgPoolConfig` bounds every wait on PostgreSQL (connection acquire, statement, idle
 *   transaction, socket keep-alive) and `guardPgPool` listens for 'error' on the pool and on every
 *   client, so a terminated backend ends the query that used it instead of raising an
 *   `uncaughtException` from an idle client.
 * - `isDatabaseUnavailable` names the errors that mean "the database cannot serve now" (as opposed to
 *   a bug or a constraint), which every transport maps to 503 with Retry-After.
 */
import type { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import type { PrismaPg } from "@prisma/adapter-pg";
import type pg from "pg";
import type { SqliteConnection, SqliteHandle, SqliteSlot } from "./direct";

type SqliteAdapter = Awaited<ReturnType<PrismaBetterSQLite3["connect"]>>;
type SqliteTransaction = Awaited<ReturnType<SqliteAdapter["startTransaction"]>>;

/** How long a write waits for SQLite's one transaction slot before it is refused (503), below Prisma's maxWait. */
export const SQLITE_TRANSACTION_WAIT_MS = 8_000;

/** Prisma's defaults for interactive and batch transactions: bounded wait to start, bounded run time. */
export const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;

/** The message of a refusal made here; `isDatabaseUnavailable` recognises it however Prisma wraps it. */
const SLOT_TIMEOUT = "database busy: no SQLite transaction slot";

export function guardSqliteTransactions(
  factory: PrismaBetterSQLite3,
  waitMs = SQLITE_TRANSACTION_WAIT_MS,
  /** Told the connection once it is open (lib/db/direct.ts runs the hot path's statements on it). */
  onConnect?: (conn: SqliteConnection) => void,
): PrismaBetterSQLite3 {
  return new Proxy(factory, {
    get(target, prop) {
      if (prop === "connect")
        return async () => {
          const adapter = guardAdapter(await target.connect(), waitMs);
          onConnect?.({ handle: (adapter as unknown as { client: SqliteHandle }).client, startTransaction: () => adapter.startTransaction() as unknown as Promise<SqliteSlot> });
          return adapter;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function guardAdapter(adapter: SqliteAdapter, waitMs: number): SqliteAdapter {
  const handle = (adapter as unknown as { client: SqliteHandle }).client;
  const start = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (isolationLevel) => {
    const pending = start(isolationLevel);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`${SLOT_TIMEOUT} within ${waitMs} ms`));
      }, waitMs);
    });
    // A slot obtained after the caller gave up is given back at once.
    pending.then(
      (tx) => {
        if (timedOut) abandon(handle, tx);
      },
      () => {},
    );
    try {
      return guardTransaction(await Promise.race([pending, timeout]), handle);
    } finally {
      clearTimeout(timer);
    }
  };
  return adapter;
}

/** Roll back what SQLite still holds and release the adapter's mutex (its rollback() only unlocks; a second call is a no-op). */
function abandon(handle: SqliteHandle, tx: SqliteTransaction): void {
  if (handle.inTransaction) {
    try {
      handle.exec("ROLLBACK");
    } catch {
      // SQLite may have rolled back by itself (SQLITE_FULL during a statement); nothing is left to undo.
    }
  }
  void tx.rollback();
}

function guardTransaction(tx: SqliteTransaction, handle: SqliteHandle): SqliteTransaction {
  const execute = tx.executeRaw.bind(tx);
  tx.executeRaw = async (query) => {
    if (query.sql !== "COMMIT" && query.sql !== "ROLLBACK") return execute(query);
    try {
      return await execute(query);
    } catch (e) {
      abandon(handle, tx);
      // A ROLLBACK that finds nothing to roll back (SQLite ended the transaction itself) did its job.
      if (query.sql === "ROLLBACK" && !handle.inTransaction) return 0;
      throw e;
    }
  };
  return tx;
}

type PgAdapter = Awaited<ReturnType<PrismaPg["connect"]>>;
type PgTransaction = Awaited<ReturnType<PgAdapter["startTransaction"]>>;

/**
 * The same leak on PostgreSQL: a transaction's connection goes back to the pool only in commit()/
 * rollback(); when its backend is terminated mid-transaction, the engine's ROLLBACK fails and
 * neither is called, so the pool loses that connection for good. Ten such losses and every
 * request waits for a connection that never comes. The guard releases the connection (destroying
 * it: it is broken) when COMMIT or ROLLBACK fails, and makes commit()/rollback() idempotent.
 */
export function guardPgTransactions(factory: PrismaPg): PrismaPg {
  return new Proxy(factory, {
    get(target, prop) {
      if (prop === "connect") return async () => guardPgAdapter(await target.connect());
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function guardPgAdapter(adapter: PgAdapter): PgAdapter {
  const start = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = async (isolationLevel) => guardPgTransaction(await start(isolationLevel));
  return adapter;
}

function guardPgTransaction(tx: PgTransaction): PgTransaction {
  const parts = tx as unknown as { client: pg.PoolClient; cleanup?: () => void };
  const conn = parts.client;
  const cleanup = parts.cleanup;
  let released = false;
  const release = (err?: Error) => {
    if (released) return;
    released = true;
    cleanup?.();
    conn.release(err);
  };
  tx.commit = async () => release();
  tx.rollback = async () => release();
  const execute = tx.executeRaw.bind(tx);
  tx.executeRaw = async (query) => {
    if (query.sql !== "COMMIT" && query.sql !== "ROLLBACK") return execute(query);
    try {
      return await execute(query);
    } catch (e) {
      release(e instanceof Error ? e : new Error(String(e)));
      // The backend is gone, and with it the transaction: nothing is left to roll back.
      if (query.sql === "ROLLBACK") return 0;
      throw e;
    }
  };
  return tx;
}

/** Bounded waits for the PostgreSQL pool (node-postgres settings; times in milliseconds). */
export function pgPoolConfig(connectionString: string): pg.PoolConfig {
  return {
    connectionString,
    max: 10,
    // Acquiring a connection (a new one, or waiting for a free one) fails after 10 s instead of queueing
    // forever: as long as a transaction may wait to start (a burst over several instances queues here).
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    // Server side: no statement (lock waits included) runs longer than 30 s, no transaction sits idle for a minute.
    statement_timeout: 30_000,
    idle_in_transaction_session_timeout: 60_000,
    // Client side: a query whose server vanished (no RST, a dead network) is abandoned too.
    query_timeout: 35_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: "certbridge",
  };
}

/**
 * 'error' listeners on the pool and on every client it makes. node-postgres emits 'error' on a
 * client whose backend was terminated while it sat idle (or between a transaction's statements);
 * without a listener that is an uncaughtException. The pool drops the broken client itself; the
 * query that was using it fails and its caller gets a 503.
 */
export function guardPgPool(pool: pg.Pool, log: (line: string) => void): pg.Pool {
  let last = 0;
  const report = (where: string) => (e: Error) => {
    // One line per 5 s at most: a restart of the database breaks every connection at once.
    const now = Date.now();
    if (now - last < 5_000) return;
    last = now;
    log(`database connection lost (${where}): ${e.message}`);
  };
  pool.on("error", report("idle connection"));
  pool.on("connect", (client) => client.on("error", report("connection")));
  return pool;
}

/** Prisma error codes that mean the database is unreachable, timed out or out of connections. */
const PRISMA_UNAVAILABLE = new Set(["P1001", "P1002", "P1008", "P1011", "P1017", "P2024", "P2028", "P2034"]);
/** Driver-adapter error kinds (Prisma's DriverAdapterError) of the same meaning. */
const ADAPTER_UNAVAILABLE = new Set(["DatabaseNotReachable", "DatabaseDoesNotExist", "ConnectionClosed", "SocketTimeout", "TooManyConnections", "TransactionAlreadyClosed", "TlsConnectionError", "DatabaseAccessDenied"]);
/**
 * PostgreSQL SQLSTATEs: class 08 (connection exception), 53 (insufficient resources: disk full,
 * out of memory, too many connections), 57P0x (admin shutdown, crash shutdown, cannot connect now),
 * 57014 (statement timeout), 55000 with "not currently accepting connections", 25P03 (idle in transaction timeout), 40001/40P01 (retry).
 */
const PG_UNAVAILABLE = /^(08|53|57P0|57014|55000|55P03|25P03|40001|40P01|3D000)/;
/** SQLite result codes: busy/locked, I/O error, disk full, read-only, cannot open. */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|READONLY|CANTOPEN|PROTOCOL)/;
const NODE_UNAVAILABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ENOSPC", "EROFS", "EIO"]);
const MESSAGE_UNAVAILABLE =
  /Connection terminated|terminating connection|timeout exceeded when trying to connect|Can't reach database server|Server has closed the connection|Timed out fetching a new connection|Transaction API error|Unable to start a transaction|is not currently accepting connections|the database system is (starting up|shutting down|in recovery mode)|database or disk is full|attempt to write a readonly database|disk I\/O error|database is locked|Connection is not open|Client has encountered a connection error|database busy: no SQLite transaction slot|Query read timeout/i;

/** True when `e` (or its cause chain) says the database cannot serve now: try again later (503). */
export function isDatabaseUnavailable(e: unknown, depth = 0): boolean {
  if (typeof e !== "object" || e === null || depth > 6) return false;
  const err = e as { name?: unknown; code?: unknown; errorCode?: unknown; message?: unknown; kind?: unknown; originalCode?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
  if (err.name === "PrismaClientInitializationError" || err.name === "PrismaClientRustPanicError") return true;
  for (const code of [err.code, err.errorCode]) {
    if (typeof code !== "string") continue;
    if (PRISMA_UNAVAILABLE.has(code) || NODE_UNAVAILABLE.has(code) || PG_UNAVAILABLE.test(code) || SQLITE_UNAVAILABLE.test(code)) return true;
  }
  if (typeof err.kind === "string") {
    if (ADAPTER_UNAVAILABLE.has(err.kind)) return true;
    if ((err.kind === "postgres" || err.kind === "sqlite") && typeof err.originalCode === "string" && (PG_UNAVAILABLE.test(err.originalCode) || SQLITE_UNAVAILABLE.test(err.originalCode))) return true;
    if (err.kind === "sqlite" && typeof (err as { extendedCode?: unknown }).extendedCode === "number" && [5, 6, 8, 10, 13, 14].includes((err as { extendedCode: number }).extendedCode & 0xff)) return true;
  }
  if (typeof err.message === "string" && MESSAGE_UNAVAILABLE.test(err.message)) return true;
  return isDatabaseUnavailable(err.meta?.driverAdapterError, depth + 1) || isDatabaseUnavailable(err.cause, depth + 1);
}

/** A database round trip (readiness): one trivial query. */
export async function pingDatabase(db: { $queryRawUnsafe: (sql: string) => Promise<unknown> }): Promise<void> {
  await db.$queryRawUnsafe("SELECT 1");
}
