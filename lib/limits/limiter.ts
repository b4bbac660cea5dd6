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

export class RateLimiter {
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

  /** Count one request of `subject`; refused when the count exceeds the limit. */
  async hit(name: LimitName, subject: string): Promise<LimitDecision> {
    const rule = this.rules[name];
    if (rule.limit === 0) return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    const w = this.window(name);
    try {
      const count = await incrementRateCounter(this.db, subjectKey(name, subject), w.start, w.end);
      return this.decide(name, count, count <= rule.limit, w.retryAfter);
    } catch {
      metrics.limiterErrors.inc();
      return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    }
  }

  /** Whether `subject` has already used up its failures in this window (counts nothing). */
  async blocked(name: LimitName, subject: string): Promise<LimitDecision> {
    const rule = this.rules[name];
    if (rule.limit === 0) return { allowed: true, name, count: 0, retryAfterSeconds: 0 };
    const w = this.window(name);
    try {
      const count = await readRateCounter(this.db, subjectKey(name, subject), w.start);
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
    try {
      return await incrementRateCounter(this.db, subjectKey(name, subject), w.start, w.end);
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

  /** Housekeeping: drop counters of ended windows. */
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
