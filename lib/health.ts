/**
 * Health that means something (issue 12, point 2).
 *
 * - Liveness, `GET /healthz`: the process answers and its event loop is responsive (the delay
 *   it measured recently is reported). A process that cannot answer this is wedged: restart it.
 * - Readiness, `GET /readyz` (and `GET /api/health`, kept as its alias with the fields it
 *   always had): the database answers a round trip, the CA key signs (a nonce, verified with the
 *   certificate's public key) and the CA certificate is within its validity, the upstream IdP's
 *   metadata is fresh, and for SQLite the database's directory accepts a write (a full or
 *   read-only disk stops every issuance while reads still work). Any failing check → 503 and
 *   `"status":"fail"`; the body names each check's status, its duration and why it failed.
 *   While the server drains for shutdown, readiness fails (`shutdown`), so a balancer stops
 *   sending new requests before the listener closes.
 *
 * Each check has a short time limit; results are shared for `CACHE_MS` so that probes (anyone may
 * call these endpoints) never queue work behind a slow database.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Certbridge } from "./certbridge";
import { dbKindOf, pingDatabase, sqliteFilePath } from "./db";
import { SHA256_WITH_RSA_ALGORITHM } from "./pki/custody";
import type { UpstreamStatus } from "./upstream";

export type CheckStatus = "pass" | "fail";

export interface CheckResult {
  status: CheckStatus;
  durationMs: number;
  /** Why it failed, or what was checked. */
  detail?: string;
}

export interface Readiness {
  status: CheckStatus;
  checks: Record<"database" | "signer" | "upstream" | "disk" | "shutdown", CheckResult>;
}

/** Time limit of each check. */
export const CHECK_TIMEOUT_MS = 2_000;
/** Results are reused this long (concurrent probes share one run). */
const CACHE_MS = 1_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function timed(what: string, run: () => Promise<string | undefined>): Promise<CheckResult> {
  const start = performance.now();
  try {
    const detail = await withTimeout(run(), CHECK_TIMEOUT_MS, what);
    return { status: "pass", durationMs: Math.round(performance.now() - start), ...(detail ? { detail } : {}) };
  } catch (e) {
    const message = e instanceof Error ? e.message.trim().split("\n").pop()! : String(e);
    return { status: "fail", durationMs: Math.round(performance.now() - start), detail: message };
  }
}

export interface HealthSources {
  cb: Certbridge;
  /** The upstream IdP's status; null when the IdP is the embedded development one (this process). */
  upstream: () => UpstreamStatus | null;
}

export class Health {
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });
  private readonly started = Date.now();
  private cached: { at: number; result: Promise<Readiness> } | null = null;
  private draining = false;

  constructor(private readonly sources: HealthSources) {
    this.loopDelay.enable();
  }

  /** From now on readiness fails: the server is shutting down. */
  drain(): void {
    this.draining = true;
    this.cached = null;
  }

  stop(): void {
    this.loopDelay.disable();
  }

  /** Liveness: answering at all is the test; the event loop's delay since the last probe is reported. */
  liveness() {
    const body = {
      status: "pass" as CheckStatus,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      eventLoopDelayMs: { p99: Math.round(this.loopDelay.percentile(99) / 1e6), max: Math.round(this.loopDelay.max / 1e6) },
    };
    this.loopDelay.reset();
    return body;
  }

  readiness(): Promise<Readiness> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.result;
    const result = this.check();
    this.cached = { at: now, result };
    return result;
  }

  private async check(): Promise<Readiness> {
    const { cb } = this.sources;
    const [database, signer, upstream, disk] = await Promise.all([
      timed("the database", async () => {
        await pingDatabase(cb.db);
        return undefined;
      }),
      timed("the CA signer", () => this.checkSigner()),
      timed("the upstream IdP", async () => this.checkUpstream()),
      timed("the data directory", async () => this.checkDisk()),
    ]);
    const shutdown: CheckResult = this.draining ? { status: "fail", durationMs: 0, detail: "shutting down: finishing the requests in flight" } : { status: "pass", durationMs: 0 };
    const checks = { database, signer, upstream, disk, shutdown };
    const status = Object.values(checks).every((c) => c.status === "pass") ? "pass" : "fail";
    return { status, checks };
  }

  /** The CA key signs a nonce and the signature verifies with the CA certificate's public key. */
  private async checkSigner(): Promise<string | undefined> {
    const { ca, clock } = this.sources.cb;
    const now = clock();
    if (now.getTime() > ca.parts.notAfter.getTime()) throw new Error(`the CA certificate expired at ${ca.parts.notAfter.toISOString()}`);
    const nonce = crypto.randomBytes(32);
    const signature = await ca.custody.sign(nonce);
    if (Buffer.from(ca.custody.signatureAlgorithm).equals(Buffer.from(SHA256_WITH_RSA_ALGORITHM))) {
      const key = crypto.createPublicKey({ key: Buffer.from(ca.custody.publicKeySpki), format: "der", type: "spki" });
      if (!crypto.verify("sha256", nonce, key, signature)) throw new Error("the CA key's signature does not verify with the CA certificate");
    } else if (signature.length === 0) {
      throw new Error("the CA key returned an empty signature");
    }
    return undefined;
  }

  private checkUpstream(): string | undefined {
    const status = this.sources.upstream();
    if (status === null) return "the development IdP (this process)";
    if (status.metadata !== "fresh") {
      const why = status.lastError ? `: ${status.lastError.reason}` : "";
      throw new Error(`the IdP's metadata is ${status.metadata}${why}`);
    }
    return status.issuer;
  }

  /** SQLite only: a small file is written, flushed and removed next to the database. */
  private checkDisk(): string | undefined {
    const { config } = this.sources.cb;
    if (dbKindOf(config.databaseUrl) !== "sqlite") return "not applicable (PostgreSQL)";
    const dir = path.dirname(sqliteFilePath(config.databaseUrl));
    const probe = path.join(dir, `.ready-${process.pid}`);
    try {
      const fd = fs.openSync(probe, "w", 0o600);
      try {
        // More than one block: a disk with a few bytes left is not writable for an issuance either.
        fs.writeSync(fd, Buffer.alloc(64 * 1024));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(probe, { force: true });
    }
    return dir;
  }
}
