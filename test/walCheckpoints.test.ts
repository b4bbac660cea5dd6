/**
 * SQLite WAL checkpoints on their own thread (lib/db/walCheckpoints.ts): the
 * serving connection stops checkpointing only while the thread runs, the
 * thread moves what commits leave in the WAL into the database file, keeps the
 * WAL file bounded under concurrent writers, and a thread that fails says so (the client then turns SQLite's own checkpoints
 * back on).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeDatabase, openDatabase, walCheckpointerOf, type Db } from "../lib/db";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { startWalCheckpointer } from "../lib/db/walCheckpoints";
import { metrics } from "../lib/metrics";

/** better-sqlite3 (no type declarations), as far as this test uses it. */
interface RawSqlite {
  pragma(text: string): unknown;
  exec(sql: string): void;
  prepare(sql: string): { run(): unknown; get(): unknown };
  close(): void;
}
const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => RawSqlite;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-wal-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const autoCheckpoint = async (db: Db) => Number((await db.$queryRawUnsafe<{ wal_autocheckpoint: bigint | number }[]>("PRAGMA wal_autocheckpoint"))[0]!.wal_autocheckpoint);

/** Wait for `done` (an asynchronous condition, not a time), at most `ms`. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const giveUpAt = Date.now() + ms;
  while (!done()) {
    if (Date.now() > giveUpAt) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe("WAL checkpoints off the event loop", () => {
  test("with the thread, commits leave their pages in the WAL and the thread copies them into the database file", async () => {
    const file = path.join(dir, "thread.db");
    const db = await openDatabase(`file:${file}`, { checkpointThread: true });
    try {
      const checkpointer = walCheckpointerOf(db);
      assert.ok(checkpointer, "the thread runs");
      assert.equal(await autoCheckpoint(db), 0, "the serving connection no longer checkpoints in its commits");
      const observed = metrics.checkpointSeconds.count({});
      await db.$executeRawUnsafe(`CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`);
      // About 2,000 pages of 4 KiB: twice SQLite's own checkpoint threshold.
      for (let i = 0; i < 40; i++) await db.$executeRawUnsafe(`INSERT INTO filler (body) SELECT randomblob(4000) FROM (SELECT 1 UNION ALL SELECT 2) a, (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) b, (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) c`);
      assert.ok(await until(() => checkpointer.checkpoints > 0 && fs.statSync(file).size >= 40 * 50 * 4000, 10_000), `the thread copied the rows into the database file (${fs.statSync(file).size} bytes, ${checkpointer.checkpoints} checkpoints)`);
      assert.ok(metrics.checkpointSeconds.count({}) > observed, "and each checkpoint is timed for the metrics");
      const [row] = await db.$queryRawUnsafe<{ n: bigint | number }[]>(`SELECT count(*) AS n FROM filler`);
      assert.equal(Number(row?.n), 40 * 50);
    } finally {
      await closeDatabase(db);
    }
    assert.equal(walCheckpointerOf(db), undefined, "closing the database stops the thread");
  });

  test("two writers that never pause: PASSIVE checkpoints alone let the WAL file grow; the TRUNCATE threshold bounds it", async (t) => {
    const ROWS = 6_000; // per writer, ≈ 3 KB each, one commit each: ≈ 140 MB of WAL frames in all
    const TRUNCATE_PAGES = 256; // 1 MiB
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    const largestWal = async (label: string, truncatePages: number): Promise<number> => {
      const file = path.join(dir, `${label}.db`);
      const serving = new Database(file);
      serving.pragma("journal_mode = WAL");
      serving.pragma("synchronous = NORMAL");
      serving.pragma("busy_timeout = 5000");
      serving.pragma("wal_autocheckpoint = 0");
      serving.exec("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
      const checkpointer = await startWalCheckpointer(file, { everyMs: 5, truncatePages, onFailure: (e) => assert.fail(String(e)) });
      // The other writer, a second serving process as it were: on its own thread, so the two really overlap.
      const other = new Worker(
        `const { workerData: w } = require("node:worker_threads");
         const c = new (require(w.driver))(w.file);
         c.pragma("busy_timeout = 5000"); c.pragma("wal_autocheckpoint = 0");
         const insert = c.prepare("INSERT INTO filler (body) VALUES (randomblob(3000))"), read = c.prepare("SELECT count(*) FROM filler");
         for (let i = 0; i < w.rows; i++) { insert.run(); read.get(); }
         c.close();`,
        { eval: true, workerData: { driver, file, rows: ROWS } },
      );
      const otherDone = new Promise((r) => other.once("exit", r));
      const insert = serving.prepare("INSERT INTO filler (body) VALUES (randomblob(3000))");
      const read = serving.prepare("SELECT count(*) FROM filler");
      let largest = 0;
      for (let i = 0; i < ROWS; i += 10) {
        for (let j = 0; j < 10; j++) (insert.run(), read.get());
        largest = Math.max(largest, fs.statSync(`${file}-wal`).size);
        await new Promise((r) => setImmediate(r));
      }
      await otherDone;
      await checkpointer.stop();
      assert.equal(Number((serving.prepare("SELECT count(*) AS n FROM filler").get() as { n: number }).n), 2 * ROWS, "every row is there");
      serving.close();
      return largest;
    };
    const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
    const passiveOnly = await largestWal("passive-only", Number.POSITIVE_INFINITY);
    const bounded = await largestWal("bounded", TRUNCATE_PAGES);
    t.diagnostic(`largest WAL file: ${mb(passiveOnly)} with PASSIVE checkpoints only, ${mb(bounded)} with the threshold`);
    assert.ok(passiveOnly > 12 * 1048576, `without the threshold the WAL grows (${mb(passiveOnly)})`);
    // Bounded, not exact: a TRUNCATE that cannot get the lock within its wait tries again at the next tick.
    assert.ok(bounded < 24 * 1048576 && bounded < passiveOnly / 4, `with a threshold of 1 MiB the WAL stays small (${mb(bounded)}; ${mb(passiveOnly)} without)`);
  });

  test("without the thread (the CLI), SQLite checkpoints in the commits as usual", async () => {
    const db = await openDatabase(`file:${path.join(dir, "plain.db")}`);
    try {
      assert.equal(walCheckpointerOf(db), undefined);
      assert.equal(await autoCheckpoint(db), 1000);
    } finally {
      await closeDatabase(db);
    }
  });

  test("a thread that fails is reported once, so the caller can checkpoint again itself", async () => {
    const file = path.join(dir, "not-a-database.db");
    fs.writeFileSync(file, Buffer.alloc(8192, 7));
    const failures: unknown[] = [];
    const checkpointer = await startWalCheckpointer(file, { everyMs: 10, onFailure: (e) => failures.push(e) });
    assert.ok(await until(() => failures.length > 0, 10_000), "the failure is heard");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(failures.length, 1, "once");
    assert.match(String((failures[0] as Error).message), /SQLITE_NOTADB/);
    assert.equal(checkpointer.checkpoints, 0);
    await checkpointer.stop();
  });

  test("a file that cannot be opened refuses the start", async () => {
    await assert.rejects(startWalCheckpointer(path.join(dir, "missing", "none.db"), { onFailure: () => {} }), /unable to open|does not exist|directory/i);
  });
});
