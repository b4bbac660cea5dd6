/**
 * SQLite WAL checkpoints on a thread of their own, so they never stop a
 * request.
 *
 * In WAL mode every commit appends pages to the -wal file; a checkpoint copies
 * them back into the database file and syncs both (with synchronous = NORMAL,
 * the only syncs there are). By default SQLite runs one inside whichever
 * commit takes the WAL past 1,000 pages (wal_autocheckpoint): on the serving
 * connection, synchronously, on the event loop. At a few hundred proxies a
 * second that is several times a second, each a copy of about 4 MB and two
 * fsyncs while every request of the process waits (bench/throughput.ts: p99 of
 * /getproxy at one client 16-18 ms with them, 8-9 ms with this thread).
 *
 * Here a worker thread with its own connection runs a PASSIVE checkpoint every
 * `everyMs` (https://sqlite.org/pragma.html#pragma_wal_checkpoint): it copies
 * what no reader still needs and never blocks readers or writers.
 *
 * PASSIVE alone does not bound the WAL file. A writer rewinds the WAL to its
 * start only if, when its transaction begins, every page in it is already back
 * in the database (https://sqlite.org/wal.html#avoiding_excessively_large_wal_files);
 * under sustained load another commit always lands between the thread's
 * checkpoint and the next write, so the file only grew: 442 MB over 100,000
 * issuances at ≈ 3,000/s, where SQLite's own checkpoints held it at 7 MB. So
 * once the WAL holds `truncatePages` pages, the thread runs a TRUNCATE
 * checkpoint: it takes the write lock (waiting at most TRUNCATE_WAIT_MS for a
 * writer or reader; otherwise the next tick tries again), copies the few pages
 * PASSIVE left, empties the file, and lets writers go on (they retry a busy
 * lock off the event loop).
 *
 * Only once the thread is running does the serving connection stop
 * checkpointing by itself; if the thread fails, the caller turns SQLite's own
 * checkpoints back on.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** What the thread reports after a checkpoint that copied pages: how long it took. */
export interface CheckpointReport {
  seconds: number;
}

export interface WalCheckpointer {
  /** Checkpoints that copied pages, since the start. */
  readonly checkpoints: number;
  stop(): Promise<void>;
}

// CommonJS evaluated in the worker (eval: true), so neither tsx nor a bundler has to find a file.
const THREAD = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// This connection only checkpoints: never wait for a lock (the next tick tries again), except
// briefly for the write lock of a TRUNCATE.
db.pragma("busy_timeout = 0");
let done = 0;
const timer = setInterval(() => {
  const t0 = process.hrtime.bigint();
  let r;
  try {
    r = db.pragma("wal_checkpoint(PASSIVE)")[0];
    if (r.log >= workerData.truncatePages) {
      db.pragma("busy_timeout = " + workerData.truncateWaitMs);
      try {
        // busy = 1: a writer or reader held on past the wait; the WAL stays as it is until the next tick.
        if (db.pragma("wal_checkpoint(TRUNCATE)")[0].busy === 0) {
          done = 0;
          parentPort.postMessage({ seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
          return;
        }
      } finally {
        db.pragma("busy_timeout = 0");
      }
    }
  } catch (e) {
    if (/^SQLITE_(BUSY|LOCKED)/.test(String(e && e.code))) return;
    // Said in words (an SqliteError reaches the parent as its code alone), then the thread ends.
    clearInterval(timer);
    parentPort.postMessage({ failed: String((e && e.code) || "error") + ": " + String((e && e.message) || e) });
    db.close();
    parentPort.close();
    return;
  }
  // log: pages in the WAL; checkpointed: how many of them are back in the database (-1, -1: not
  // in WAL mode). Both start again from 0 when a writer rewinds the WAL after a full checkpoint.
  if (r.log < done) done = 0;
  if (r.checkpointed <= done) return;
  done = r.checkpointed;
  parentPort.postMessage({ seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
}, workerData.everyMs);
parentPort.on("message", (m) => {
  if (m !== "stop") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
parentPort.postMessage("ready");
`;

/** WAL pages (4 KiB each by default) at which the thread empties the WAL: 16 MiB, four times SQLite's own checkpoint size. */
export const WAL_TRUNCATE_PAGES = 4_096;
/** How long a TRUNCATE checkpoint waits for the write lock and for readers before it gives up until the next tick. */
const TRUNCATE_WAIT_MS = 50;

/**
 * Start the checkpoint thread on `file` (an SQLite database already in WAL mode). Resolves once the
 * thread has opened the file; rejects if it cannot. `onFailure` hears of a thread that stops
 * unasked, at most once.
 */
export function startWalCheckpointer(
  file: string,
  opts: { everyMs?: number; truncatePages?: number; onReport?: (r: CheckpointReport) => void; onFailure: (e: unknown) => void },
): Promise<WalCheckpointer> {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const workerData = { file, driver, everyMs: opts.everyMs ?? 250, truncatePages: opts.truncatePages ?? WAL_TRUNCATE_PAGES, truncateWaitMs: TRUNCATE_WAIT_MS };
  const worker = new Worker(THREAD, { eval: true, workerData });
  let checkpoints = 0;
  let stopping = false;
  let failed = false;
  let exited = false;
  const exit = new Promise<void>((r) => worker.once("exit", () => ((exited = true), r())));
  const fail = (e: unknown) => {
    if (stopping || failed) return;
    failed = true;
    opts.onFailure(e);
  };
  return new Promise((resolve, reject) => {
    let ready = false;
    worker.on("message", (m: "ready" | CheckpointReport | { failed: string }) => {
      if (m === "ready") {
        ready = true;
        // The thread must not keep a process alive that is otherwise done.
        worker.unref();
        resolve({
          get checkpoints() {
            return checkpoints;
          },
          async stop() {
            if (stopping) return exit;
            stopping = true;
            if (exited) return;
            worker.postMessage("stop");
            // A checkpoint in progress finishes first; a wedged one does not hold the shutdown.
            const timer = setTimeout(() => void worker.terminate(), 5_000);
            await exit;
            clearTimeout(timer);
          },
        });
        return;
      }
      if ("failed" in m) return fail(new Error(`SQLite WAL checkpoint: ${m.failed}`));
      checkpoints++;
      opts.onReport?.(m);
    });
    worker.on("error", (e) => (ready ? fail(e) : reject(e)));
    worker.on("exit", (code) => {
      if (!ready) reject(new Error(`the WAL checkpoint thread exited (${code}) before it started`));
      else fail(new Error(`the WAL checkpoint thread exited (${code})`));
    });
  });
}
