/**
 * Server-made proxy keys (the MasterPortal mode, for gateways that cannot
 * make a CSR). An RSA-2048 key takes ~100-250 ms of one core to generate, so
 * keys are made ahead of demand and kept in the database (PooledKey, sealed
 * under the KEK like user keys): the pool survives restarts and every
 * instance on the database draws from it. A take deletes the row it returns
 * (lib/db/pooledKeys.ts), so each key is handed out exactly once; a request
 * that finds the pool empty generates its own key (a miss) rather than
 * waiting in line.
 *
 * Filling is background work that must never compete with issuance: one key
 * at a time, only while the machine is idle (the share of CPU time no
 * process used over the last pause, across all cores, at least
 * `idleThreshold`), and duty-cycled so that generation takes at most
 * `cpuShare` of one core. It stops at `capacity` rows (counted in the
 * database before each key, so a pool shared with other fillers does not
 * overshoot by more than one key per filler), and only runs while
 * `fillWhen()` holds: the server passes its leadership (lib/jobs.ts), so on
 * PostgreSQL one instance of the deployment fills.
 */
import crypto from "node:crypto";
import os from "node:os";
import { countPooledKeys, insertPooledKey, newId, takePooledKeys, type Db, type PooledKeyRow } from "../db";
import { openSealedKey, sealKey } from "./seal";

export interface PooledKey {
  /** Unencrypted PKCS#8 PEM, as grid-proxy-init writes into the proxy file. */
  privateKeyPem: string;
  spki: Uint8Array;
}

export interface KeyPoolStats {
  /** Keys in the pool as last seen by this process (counted when filling, adjusted on each take). */
  size: number;
  capacity: number;
  hits: number;
  misses: number;
}

/** Cumulative CPU time of the whole machine, all cores (os.cpus() summed), in ms. */
export interface CpuTimes {
  idleMs: number;
  totalMs: number;
}

export function machineCpuTimes(): CpuTimes {
  let idleMs = 0;
  let totalMs = 0;
  for (const { times } of os.cpus()) {
    idleMs += times.idle;
    totalMs += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idleMs, totalMs };
}

export interface KeyPoolOptions {
  /** Where the pool lives; null keeps no pool (every take generates). */
  db: Db | null;
  kek: Buffer;
  /** Keys to keep ready (0: never fill; takes still drain what is there). */
  capacity: number;
  bits?: number;
  /** Fraction of one core generation may use on average, 0 < share ≤ 1. */
  cpuShare?: number;
  /** Generate only when at least this fraction of the machine's CPU time was idle over the last pause. */
  idleThreshold?: number;
  /** Machine CPU counters (tests inject a fake to play busy and idle). */
  cpuTimes?: () => CpuTimes;
  /** A monotonic clock in ms and a pause (tests inject both so as not to wait on the wall clock). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  log?: (m: string) => void;
}

/** The default idle threshold: the machine was at least three quarters idle (other work uses under a quarter of it). */
export const KEY_POOL_IDLE_THRESHOLD = 0.75;
/** How long the filler watches the CPU before deciding the machine is idle, and waits when it is busy. */
export const KEY_POOL_PROBE_MS = 1_000;
/** The shortest pause between two keys: the window the idle probe measures, without the filler's own generation in it. */
export const KEY_POOL_MIN_PAUSE_MS = 50;
/** How often a full pool (or an instance that does not fill) recounts: other instances take keys too. */
export const KEY_POOL_RECOUNT_MS = 5_000;

/** The most keys one take statement removes. */
export const KEY_POOL_MAX_TAKE = 64;

export const pooledKeyContext = (id: string) => `certbridge:pooled-key:${id}`;

function generate(bits: number): Promise<crypto.KeyObject> {
  return new Promise((resolve, reject) =>
    crypto.generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _publicKey, privateKey) => (err ? reject(err) : resolve(privateKey))),
  );
}

function pooledKeyOf(privateKey: crypto.KeyObject): PooledKey {
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    spki: new Uint8Array(crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" })),
  };
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class KeyPool {
  readonly capacity: number;
  private readonly bits: number;
  private readonly cpuShare: number;
  private readonly idleThreshold: number;
  private readonly cpuTimes: () => CpuTimes;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly log: (m: string) => void;
  private available = 0;
  private hits = 0;
  private misses = 0;
  private fillWhen: () => boolean = () => true;
  private loop: Promise<void> | null = null;
  private stopped = true;
  /** Ends the filler's pause when a take made room (only while it waits on a full pool), and on stop. */
  private wake: () => void = () => {};
  private wakeOnStop: () => void = () => {};
  private unopenableReported = false;

  constructor(private readonly opts: KeyPoolOptions) {
    this.capacity = opts.db ? opts.capacity : 0;
    this.bits = opts.bits ?? 2048;
    this.cpuShare = opts.cpuShare ?? 0.5;
    if (!(this.cpuShare > 0 && this.cpuShare <= 1)) throw new Error("key pool: the CPU share must be in (0, 1]");
    this.idleThreshold = opts.idleThreshold ?? KEY_POOL_IDLE_THRESHOLD;
    this.cpuTimes = opts.cpuTimes ?? machineCpuTimes;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? realSleep;
    this.log = opts.log ?? ((m) => console.error(`certbridge: ${m}`));
  }

  /**
   * Fill in the background while `fillWhen()` holds (default: always). The server passes its
   * leadership, so one instance of a deployment on PostgreSQL does the filling.
   */
  start(fillWhen?: () => boolean): this {
    if (fillWhen) this.fillWhen = fillWhen;
    if (!this.loop && this.opts.db && this.capacity > 0) {
      this.stopped = false;
      this.loop = this.fill().catch((e: unknown) => this.log(`key pool: filling stopped: ${(e as Error).message}`));
    }
    return this;
  }

  /** Stop filling; resolves once the key being made (if any) is stored or dropped and the database is no longer used for filling. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeOnStop();
    await this.loop;
    this.loop = null;
  }

  /**
   * Takes waiting for the statement in flight: they are served together by the next one (a group
   * take, like the issuances' group commit), so a burst costs one round trip and one commit per
   * batch, not per request.
   */
  private takers: { resolve: (row: PooledKeyRow | null) => void; reject: (e: unknown) => void }[] = [];
  private taking = false;

  private takeRow(db: Db): Promise<PooledKeyRow | null> {
    return new Promise((resolve, reject) => {
      this.takers.push({ resolve, reject });
      if (!this.taking) void this.drainTakers(db);
    });
  }

  private async drainTakers(db: Db): Promise<void> {
    this.taking = true;
    // Let the requests that are ready in this turn of the event loop join.
    await new Promise((r) => setImmediate(r));
    while (this.takers.length) {
      const batch = this.takers.splice(0, KEY_POOL_MAX_TAKE);
      try {
        const rows = await takePooledKeys(db, this.bits, batch.length);
        // Fewer rows than takers: the pool ran out, the rest generate their own keys.
        batch.forEach((t, i) => t.resolve(rows[i] ?? null));
      } catch (e) {
        for (const t of batch) t.reject(e);
      }
    }
    this.taking = false;
  }

  async take(): Promise<PooledKey> {
    const db = this.opts.db;
    if (db) {
      const row = await this.takeRow(db);
      if (row) {
        this.available = Math.max(0, this.available - 1);
        this.wake();
        const key = this.open(row.id, row.keyEnc, row.spki);
        if (key) {
          this.hits++;
          return key;
        }
      } else this.available = 0;
    }
    this.misses++;
    return pooledKeyOf(await generate(this.bits));
  }

  stats(): KeyPoolStats {
    return { size: this.available, capacity: this.capacity, hits: this.hits, misses: this.misses };
  }

  /** Resolves when the pool is full (for tests, benchmarks and warm starts). */
  async filled(): Promise<void> {
    while (!this.stopped && this.available < this.capacity) await realSleep(20);
  }

  /**
   * A pooled key, or null when its row does not open (the KEK changed, or the row was tampered with):
   * the request then makes its own key, and the row is gone already.
   */
  private open(id: string, keyEnc: string, spki: Uint8Array): PooledKey | null {
    try {
      const privateKey = crypto.createPrivateKey({ key: Buffer.from(openSealedKey(this.opts.kek, keyEnc, pooledKeyContext(id))), format: "der", type: "pkcs8" });
      const key = pooledKeyOf(privateKey);
      // The public key is derived from the sealed private key, never taken from the unsealed column.
      if (!Buffer.from(key.spki).equals(Buffer.from(spki))) throw new Error("its public key does not match the private key");
      return key;
    } catch (e) {
      if (!this.unopenableReported) this.log(`key pool: a pooled key does not open (${(e as Error).message}); generating instead, the row is dropped`);
      this.unopenableReported = true;
      return null;
    }
  }

  /**
   * Pause for `ms`, or less on stop. `roomMade`: a take also ends it (the wait of a full pool); the
   * idle probe's pauses are not cut short by takes, or a busy portal would look idle.
   */
  private pause(ms: number, roomMade = false): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = roomMade ? resolve : () => {};
      this.wakeOnStop = resolve;
      void this.sleep(ms).then(resolve);
    });
  }

  /** Idle fraction of the machine's CPU time over a pause of `ms` (the filler generates nothing meanwhile). */
  private async idleOver(ms: number): Promise<number> {
    const before = this.cpuTimes();
    await this.pause(ms);
    const after = this.cpuTimes();
    const total = after.totalMs - before.totalMs;
    // No tick counted (a very short pause): no evidence either way, so not idle.
    return total > 0 ? (after.idleMs - before.idleMs) / total : 0;
  }

  /** The filling loop; a database error pauses it (logged once per distinct error) rather than ending it. */
  private async fill(): Promise<void> {
    const state = { idle: 0 };
    let lastError = "";
    while (!this.stopped) {
      try {
        await this.fillStep(state);
        lastError = "";
      } catch (e) {
        const message = (e as Error).message;
        if (message !== lastError) this.log(`key pool: filling failed (retrying every ${KEY_POOL_RECOUNT_MS / 1000} s): ${message}`);
        lastError = message;
        state.idle = 0;
        await this.pause(KEY_POOL_RECOUNT_MS);
      }
    }
  }

  /** One round: wait (not the filler, full, or busy) or make one key. `state.idle`: the idle share seen by the last probe. */
  private async fillStep(state: { idle: number }): Promise<void> {
    const db = this.opts.db!;
    // Let timers and I/O run between rounds even when every await below resolves at once (an injected pause, SQLite).
    await new Promise((r) => setImmediate(r));
    if (!this.fillWhen()) {
      this.available = await countPooledKeys(db, this.bits);
      await this.pause(KEY_POOL_RECOUNT_MS);
      return;
    }
    const count = await countPooledKeys(db, this.bits);
    this.available = count;
    if (count >= this.capacity) {
      await this.pause(KEY_POOL_RECOUNT_MS, true);
      state.idle = 0;
      return;
    }
    if (state.idle < this.idleThreshold) {
      state.idle = await this.idleOver(KEY_POOL_PROBE_MS);
      return;
    }
    const started = this.now();
    const privateKey = await generate(this.bits);
    const spent = this.now() - started;
    if (this.stopped) return;
    const id = newId();
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
    const spki = new Uint8Array(crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" }));
    await insertPooledKey(db, { id, bits: this.bits, spki, keyEnc: sealKey(this.opts.kek, pkcs8, pooledKeyContext(id)) });
    this.available = count + 1;
    // Duty cycle: `spent` ms of one core, then rest so that spent / (spent + rest) ≤ cpuShare. The
    // rest is also the window the idle probe measures, free of the filler's own work.
    const rest = Math.max(KEY_POOL_MIN_PAUSE_MS, (spent * (1 - this.cpuShare)) / this.cpuShare);
    state.idle = await this.idleOver(rest);
  }
}
