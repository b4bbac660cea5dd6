/**
 * Opening the database. SQLite (a file under the data directory) is the
 * embedded default; PostgreSQL serves production and multi-instance
 * deployments. Prisma generates one client per provider from the same models,
 * so both expose the same API and the rest of the code sees one `Db` type.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient as SqliteClient } from "./generated/sqlite/client";
import { PrismaClient as PgClient } from "./generated/pg/client";
import { pooledRandomBytes } from "../random";
import { pgDirect, sqliteDirect, type DirectSql, type SqliteConnection } from "./direct";
import { guardPgPool, guardPgTransactions, guardSqliteTransactions, pgPoolConfig, SQLITE_TRANSACTION_WAIT_MS, TRANSACTION_OPTIONS } from "./faults";
import { startWalCheckpointer, type WalCheckpointer } from "./walCheckpoints";
import { metrics } from "../metrics";

export type Db = InstanceType<typeof SqliteClient>;
export type DbKind = "sqlite" | "postgresql";

export const dbKindOf = (url: string): DbKind => (/^postgres(ql)?:\/\//.test(url) ? "postgresql" : "sqlite");

export function sqliteFilePath(url: string): string {
  return path.resolve(url.replace(/^file:/, "").replace(/\?.*$/, ""));
}

const logFault = (line: string) => console.error(`certbridge: ${line}`);

/** SQLite's busy timeout: the CLI and the server (or two workers) may write at the same time. */
const SQLITE_BUSY_TIMEOUT_MS = 10_000;

/** SQLite's own checkpoint threshold (pages), restored when the checkpoint thread fails. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

export interface OpenOptions {
  sqliteSlotWaitMs?: number;
  /**
   * SQLite: WAL checkpoints on a thread of their own (lib/db/walCheckpoints.ts) instead of inside
   * the commits of this connection. For a serving process; a short-lived one (the CLI) need not.
   */
  checkpointThread?: boolean;
}

/**
 * Every wait is bounded (lib/db/faults.ts): connection acquire, statement, transaction start and
 * run time; a broken connection or a failed COMMIT releases what it held.
 */
export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Db> {
  if (dbKindOf(url) === "postgresql") {
    const pool = guardPgPool(new pg.Pool(pgPoolConfig(url)), logFault);
    // Same models, same generated API: the PostgreSQL client is structurally the SQLite one.
    const db = new PgClient({ adapter: guardPgTransactions(new PrismaPg(pool, { disposeExternalPool: true })), transactionOptions: TRANSACTION_OPTIONS }) as unknown as Db;
    pools.set(db, pool);
    directs.set(db, pgDirect(pool));
    return db;
  }
  const file = sqliteFilePath(url);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let conn: SqliteConnection | null = null;
  const db = new SqliteClient({
    adapter: guardSqliteTransactions(new PrismaBetterSQLite3({ url: file, timeout: SQLITE_BUSY_TIMEOUT_MS }), opts.sqliteSlotWaitMs, (c) => (conn = c)),
    transactionOptions: TRANSACTION_OPTIONS,
  });
  // WAL lets readers (the consoles) run while an issuance commits.
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  await db.$queryRawUnsafe("PRAGMA synchronous = NORMAL");
  if (opts.checkpointThread) await checkpointOffThread(db, file);
  // Prisma has connected (the PRAGMAs above): the hot path's statements share that connection.
  directs.set(
    db,
    sqliteDirect(
      () => {
        if (!conn) throw new Error("the SQLite connection is not open");
        return conn;
      },
      SQLITE_BUSY_TIMEOUT_MS,
      opts.sqliteSlotWaitMs ?? SQLITE_TRANSACTION_WAIT_MS,
    ),
  );
  return db;
}

/** The WAL checkpoint thread of an SQLite client opened with checkpointThread. */
const checkpointers = new WeakMap<Db, WalCheckpointer>();

/**
 * Start the checkpoint thread and, once it runs, stop this connection's own checkpoints. Whatever
 * goes wrong with the thread leaves the connection checkpointing by itself (a slower commit now and
 * then, never an unbounded WAL), and the process serves on.
 */
async function checkpointOffThread(db: Db, file: string): Promise<void> {
  let failed = false;
  const checkpointInCommits = () =>
    db.$queryRawUnsafe(`PRAGMA wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`).catch((e: unknown) => logFault(`restoring wal_autocheckpoint failed: ${String(e)}`));
  let checkpointer: WalCheckpointer;
  try {
    checkpointer = await startWalCheckpointer(file, {
      onReport: (r) => metrics.checkpointSeconds.observe({}, r.seconds),
      onFailure: (e) => {
        failed = true;
        logFault(`SQLite WAL checkpoint thread failed (${e instanceof Error ? e.message : String(e)}): commits checkpoint again`);
        checkpointers.delete(db);
        void checkpointInCommits();
      },
    });
  } catch (e) {
    logFault(`SQLite WAL checkpoint thread did not start (${e instanceof Error ? e.message : String(e)}): commits checkpoint as usual`);
    return;
  }
  checkpointers.set(db, checkpointer);
  await db.$queryRawUnsafe("PRAGMA wal_autocheckpoint = 0");
  // A failure heard while the line above ran may have restored the setting before it: again.
  if (failed) await checkpointInCommits();
}

/** The WAL checkpoint thread of a client, if it has one running. */
export function walCheckpointerOf(db: Db): WalCheckpointer | undefined {
  return checkpointers.get(db);
}

/** The PostgreSQL pool behind a client (for the metrics' pool gauge). */
const pools = new WeakMap<Db, pg.Pool>();
/** The driver behind a client, for the hot path's prepared statements (lib/db/direct.ts). */
const directs = new WeakMap<Db, DirectSql>();

/**
 * The driver-level access to a client opened by `openDatabase` (lib/db modules only). A
 * transaction's client has none: its statements must stay in its transaction, so passing one to a
 * hot-path function is a bug, said at once.
 */
export function directSqlOf(db: Db): DirectSql {
  const direct = directs.get(db);
  if (!direct) throw new Error("the hot path's statements need a client opened by openDatabase, not a transaction's");
  return direct;
}

/** Connections of a PostgreSQL client's pool by state; null for SQLite (one connection, no pool). */
export function databasePoolState(db: Db): { total: number; idle: number; waiting: number } | null {
  const pool = pools.get(db);
  return pool ? { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } : null;
}

export async function closeDatabase(db: Db): Promise<void> {
  const checkpointer = checkpointers.get(db);
  checkpointers.delete(db);
  await checkpointer?.stop();
  await db.$disconnect();
}

export const newId = () => crypto.randomUUID();

/**
 * A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then 74 random bits. For the rows
 * written on every issuance (certificates, audit events): ids that follow time are appended at the
 * right edge of the primary-key index (and of AuditEvent's certificateId index) instead of landing
 * on a random page of it, which is a page fewer to write per index and row. Not for secrets.
 */
export function newTimeOrderedId(nowMs: number = Date.now(), random: Uint8Array = pooledRandomBytes(10)): string {
  const b = Buffer.alloc(16);
  b.writeUIntBE(nowMs, 0, 6);
  b.set(random.subarray(0, 10), 6);
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A unique constraint refused the write: Prisma's P2002, or the driver's own code (lib/db/direct.ts): SQLite's, PostgreSQL's 23505. */
export function isUniqueViolation(e: unknown): boolean {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === "P2002" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "23505";
}
