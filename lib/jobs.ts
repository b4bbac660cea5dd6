/**
 * The portal's scheduled jobs, run by one instance of a deployment: the
 * leader (lib/db/leadership.ts). Every server process starts this; followers
 * wait, and the one that holds the lock runs
 *   - the CRL schedule (lib/ca/revocation.ts: re-sign before nextUpdate, or
 *     after a revocation whose immediate re-signing failed), every minute;
 *   - purges of expired OpenID provider rows and of spent MyProxy codes,
 *     every ten minutes.
 * A new leader runs every job at once, so a takeover after the leader died
 * repairs whatever was due.
 */
import type { Certbridge } from "./certbridge";
import { purgeExpiredOidcPayloads, purgeMyProxyCodes, startLeadership, type Leadership } from "./db";
import { startCrlSchedule } from "./ca/revocation";

export const PURGE_INTERVAL_MS = 10 * 60_000;

export interface ScheduledJobs {
  isLeader(): boolean;
  stop(): Promise<void>;
}

export function startScheduledJobs(cb: Pick<Certbridge, "db" | "ca" | "clock" | "config">, log: (m: string) => void, opts: { leadershipIntervalMs?: number } = {}): ScheduledJobs {
  let running: { stop(): void } | null = null;

  const purge = () => {
    void purgeExpiredOidcPayloads(cb.db, cb.clock()).catch((e: unknown) => log(`purge of expired OpenID rows failed: ${(e as Error).message}`));
    // MyProxy codes live in the shared database whether or not this instance listens for MyProxy.
    void purgeMyProxyCodes(cb.db, cb.clock()).catch((e: unknown) => log(`purge of MyProxy codes failed: ${(e as Error).message}`));
  };

  const leadership: Leadership = startLeadership(cb.config.databaseUrl, {
    log,
    intervalMs: opts.leadershipIntervalMs,
    onGain: () => {
      const crl = startCrlSchedule(cb, log);
      purge();
      const purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
      purgeTimer.unref();
      running = {
        stop: () => {
          crl.stop();
          clearInterval(purgeTimer);
        },
      };
    },
    onLose: () => {
      running?.stop();
      running = null;
    },
  });

  return {
    isLeader: () => leadership.isLeader(),
    stop: () => leadership.stop(),
  };
}
