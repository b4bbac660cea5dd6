/**
 * SQLite WAL checkpoints on their own thread (lib/db/walCheckpoints.ts): the
 * serving connection stops checkpointing only while the thread runs, the
 * thread moves what commits leave in the WAL into the database file, and a
 * thread that fails says so (the client then turns SQLite's own checkpoints
 * back on).
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeDatabase, openDatabase, walCheckpointerOf, type Db } from "../lib/db";
import { startWalCheckpointer } from "../lib/db/walCheckpoints";
import { metrics } from "../lib/metrics";

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
