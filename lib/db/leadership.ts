/**
 * Leadership among the instances that share one database, for the work that
 * must happen once per deployment rather than once per process (the
 * scheduled jobs: CRL re-signing, purges). On PostgreSQL the leader is the
 * instance holding a session-level advisory lock (pg_try_advisory_lock) on a
 * connection of its own, outside Prisma's pool: PostgreSQL releases the lock
 * when that session ends, so when a leader dies (killed, crashed, host gone)
 * its connection closes and another instance takes the lock at its next try.
 * A leader that loses its connection steps down at once; one whose host
 * vanishes without closing its socket is let go by the server when TCP
 * keepalive gives up on it (tcp_keepalives_* on the server).
 *
 * The jobs themselves stay safe if two instances ever overlap (the CRL
 * writer takes its own transaction lock, purges are idempotent): leadership
 * makes them run once, it is not what makes them correct.
 *
 * SQLite is one file on one host: every process is its own leader (the CRL
 * writer is serialised by SQLite's write lock, as before).
 */
import pg from "pg";
import { dbKindOf } from "./client";

/** pg_try_advisory_lock key of the scheduled jobs: "JOBS" in ASCII (the CRL writer's is "CRL"). */
export const JOBS_LOCK_KEY = 0x4a4f4253;

/** The leadership connection's application_name prefix (pg_stat_activity shows which process leads). */
export const LEADER_APPLICATION_NAME = "certbridge-jobs";

export interface Leadership {
  /** Whether this process runs the jobs now. */
  isLeader(): boolean;
  /** Step down (release the lock) and stop trying. */
  stop(): Promise<void>;
}

export interface LeadershipOptions {
  /** Called when this process becomes the leader, and when it stops being one. */
  onGain: () => void;
  onLose: () => void;
  log: (m: string) => void;
  /** How often a follower tries to take the lock and a leader checks its connection. */
  intervalMs?: number;
}

export const LEADERSHIP_INTERVAL_MS = 5_000;

export function startLeadership(databaseUrl: string, opts: LeadershipOptions): Leadership {
  if (dbKindOf(databaseUrl) !== "postgresql") {
    opts.onGain();
    return { isLeader: () => true, stop: async () => opts.onLose() };
  }
  const intervalMs = opts.intervalMs ?? LEADERSHIP_INTERVAL_MS;
  let session: pg.Client | null = null;
  let leader = false;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let lastError = "";

  const stepDown = (why: string) => {
    if (leader) {
      leader = false;
      opts.log(`jobs: no longer the leader (${why}); another instance takes over`);
      opts.onLose();
    }
    const s = session;
    session = null;
    if (s) void s.end().catch(() => {});
  };

  const attempt = async () => {
    if (stopped) return;
    try {
      if (!session) {
        const s = new pg.Client({
          connectionString: databaseUrl,
          application_name: `${LEADER_APPLICATION_NAME} pid=${process.pid}`,
          keepAlive: true,
          connectionTimeoutMillis: 10_000,
          query_timeout: 10_000,
        });
        // An error on an idle session (server restarted, connection cut) ends leadership at once.
        s.on("error", (e) => session === s && stepDown(`database connection lost: ${e.message}`));
        s.on("end", () => session === s && stepDown("database connection closed"));
        session = s;
        await s.connect();
      }
      if (leader) {
        await session.query("SELECT 1");
      } else {
        const { rows } = await session.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [JOBS_LOCK_KEY]);
        if (stopped) return;
        if (rows[0]?.locked) {
          leader = true;
          opts.log(`jobs: this instance (pid ${process.pid}) is the leader and runs the scheduled jobs`);
          opts.onGain();
        }
      }
      lastError = "";
    } catch (e) {
      const message = (e as Error).message;
      if (message !== lastError) opts.log(`jobs: leadership check failed (retrying every ${Math.round(intervalMs / 1000)} s): ${message}`);
      lastError = message;
      stepDown(message);
    }
  };

  let running: Promise<void> | null = null;
  const tick = () => {
    running ??= attempt().finally(() => (running = null));
  };
  tick();
  timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
      // Ending the session releases the lock: a follower takes over at its next try.
      stepDown("shutting down");
    },
  };
}
