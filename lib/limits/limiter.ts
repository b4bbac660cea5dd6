/**
 * Fixed-window rate limiting over the database's RateCounter table, so every
 * portal process on the same database (the embedded SQLite file, or a
 * PostgreSQL shared by several instances) counts together — no extra
 * service to run. Two ways of counting:
 *  - `hit`: every request counts; over the limit it is refused;
 *  - `blocked` + `fail`: only failures count (wrong client secrets, wrong
 *    user codes, random tokens); once a subject reaches the limit, all of its
 *    requests are refused until the window ends (a lockout).
 * A store failure lets the request through (the database being down fails
 * the request anyway; the limiter must not turn a fault into a lockout).
 *
 * Request counts (`hit`) are the hot path (every /getproxy, every token
 * request): they are added up in the process and written as one increment
 * per counter every FLUSH_MS, so a busy counter costs a few writes a second
 * instead of one per request. The decision uses this process's exact count
 * plus the shared count as of the last write: other instances' requests are
 * seen at most FLUSH_MS late. Failures (`fail`) are written at once; the
 * lockout check (`blocked`) reads the shared count at most once per FLUSH_MS
 * per subject (this process's own failures update it at once), so another
 * instance's failures lock a subject out here at most FLUSH_MS later.
 */
import crypto from "node:crypto";
import type { Clock } from "../clock";
import { incrementRateCounter, purgeRateCounters, readRateCounter, type Db } from "../db";
import type { HttpResult } from "../http";
import { metrics } from "../metrics";
import { DEFAULT_LIMITS, type LimitName, type LimitRules } from "./rules";

export interface LimitDecision {
  allowed: boolean;
  name: LimitName;
  count: number;
  /** Seconds until the window ends (what Retry-After says). */
  retryAfterSeconds: number;
}

/** Subjects are IPs, client ids, hashed codes; anything long (a client_id someone made up) is hashed to bound the key. */
function subjectKey(name: LimitName, subject: string): string {
  const s = subject.length <= 80 ? subject : `h:${crypto.createHash("sha256").update(subject).digest("base64url").slice(0, 32)}`;
  return `${name}:${s}`;
}

/** How often batched request counts are written. */
export const FLUSH_MS = 250;
/** How often counters of ended windows are deleted. */
const PURGE_MS = 10 * 60_000;

interface PendingCount {
  key: string;
  start: number;
  end: number;
  /** Hits not yet written. */
  delta: number;
  /** The shared count after this process's last write. */
  shared: number;
}

export class RateLimiter {
  private readonly pending = new Map<string, PendingCount>();
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Shared failure counts as last read or written, by counter: the lockout check's cache. */
  private readonly known = new Map<string, { count: number; at: number }>();
  /** When counters of ended windows were last purged (ms, this process's clock). */
  private lastPurge = Date.now();

  constructor(
    private readonly db: Db,
    readonly rules: LimitRules = DEFAULT_LIMITS,
    private readonly clock: Clock = () => new Date(),
  ) {}

  private window(name: LimitName) {
    const { windowSeconds } = this.rules[name];
    const now = Math.floor(this.clock().getTime() / 1000);
    const start = now - (now % windowSeconds);
    return { start, end: start + windowSeconds, retryAfter: Math.max(1, start + windowSeconds - now) };
  }

  private decide(name: LimitName, count: number, allowed: boolean, retryAfter: number): LimitDecision {
    if (!allowed) metrics.rateLimited.inc({ limit: name });
    return { allowed, name, count, retryAfterSeconds: retryAfter };
  }

  /** Count one request of `subject`; refused when the count exceeds the limit (written within FLUSH_MS). */
  async hit(name: LimitName, subject: string): Promise<LimitDecision> {
    const rule = this.rules[name];
    if (rule.limit === 0) return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    const w = this.window(name);
    const key = subjectKey(name, subject);
    const id = `${key}@${w.start}`;
    let p = this.pending.get(id);
    if (!p) this.pending.set(id, (p = { key, start: w.start, end: w.end, delta: 0, shared: 0 }));
    p.delta++;
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
    const count = p.shared + p.delta;
    return this.decide(name, count, count <= rule.limit, w.retryAfter);
  }

  private remember(id: string, count: number): void {
    // Bounded: a flood of distinct subjects only costs re-reads.
    if (this.known.size >= 10_000) this.known.clear();
    this.known.set(id, { count, at: this.clock().getTime() });
  }

  /** Write the batched request counts now (also what the timer does). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flushing;
    this.flushing = (async () => {
      const now = Math.floor(this.clock().getTime() / 1000);
      for (const [id, p] of this.pending) {
        if (p.delta > 0) {
          const delta = p.delta;
          p.delta = 0;
          try {
            p.shared = await incrementRateCounter(this.db, p.key, p.start, p.end, delta);
          } catch {
            metrics.limiterErrors.inc();
            p.shared += delta;
          }
        }
        if (p.end <= now) this.pending.delete(id);
      }
    })();
    await this.flushing;
    this.flushing = null;
    // Housekeeping rides on the writes: every instance drops ended windows now and then (idempotent).
    if (Date.now() - this.lastPurge > PURGE_MS) {
      this.lastPurge = Date.now();
      void this.purge().catch(() => metrics.limiterErrors.inc());
    }
    if ([...this.pending.values()].some((p) => p.delta > 0)) this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** Whether `subject` has already used up its failures in this window (counts nothing). */
  async blocked(name: LimitName, subject: string): Promise<LimitDecision> {
    const rule = this.rules[name];
    if (rule.limit === 0) return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    const w = this.window(name);
    const key = subjectKey(name, subject);
    const id = `${key}@${w.start}`;
    const cached = this.known.get(id);
    if (cached && this.clock().getTime() - cached.at < FLUSH_MS) return this.decide(name, cached.count, cached.count < rule.limit, w.retryAfter);
    try {
      const count = await readRateCounter(this.db, key, w.start);
      this.remember(id, count);
      return this.decide(name, count, count < rule.limit, w.retryAfter);
    } catch {
      metrics.limiterErrors.inc();
      return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    }
  }

  /** Count one failure of `subject`; returns the count so far in this window (1 = the first). */
  async fail(name: LimitName, subject: string): Promise<number> {
    if (this.rules[name].limit === 0) return 0;
    const w = this.window(name);
    const key = subjectKey(name, subject);
    try {
      const count = await incrementRateCounter(this.db, key, w.start, w.end);
      this.remember(`${key}@${w.start}`, count);
      return count;
    } catch {
      metrics.limiterErrors.inc();
      return 0;
    }
  }

  /** The first refusal among several checks, or null when all pass (checks run in order; later ones are not counted once one refuses). */
  async firstRefusal(checks: readonly (() => Promise<LimitDecision>)[]): Promise<LimitDecision | null> {
    for (const check of checks) {
      const d = await check();
      if (!d.allowed) return d;
    }
    return null;
  }

  /** Housekeeping: drop counters of ended windows (done every PURGE_MS by flush). */
  purge(): Promise<number> {
    return purgeRateCounters(this.db, Math.floor(this.clock().getTime() / 1000));
  }
}

/** 429 with Retry-After and an OAuth-style body (RFC 6585 §4; RFC 6749 §5.2 shape). */
export function limitedResult(d: LimitDecision, error: "too_many_requests" | "slow_down" = "too_many_requests", status = 429): HttpResult {
  return {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", "retry-after": String(d.retryAfterSeconds) },
    body: JSON.stringify({ error, error_description: `too many requests (limit ${d.name}); retry after ${d.retryAfterSeconds} s` }),
  };
}
