/**
 * Server-made proxy keys (the MasterPortal mode, for gateways that cannot
 * make a CSR). An RSA-2048 key takes ~100-250 ms to generate here, so a
 * bounded pool is filled ahead of demand in the background; a request that
 * finds the pool empty generates its own key (a miss) rather than waiting in
 * line. Keys are used once and never stored.
 */
import crypto from "node:crypto";

export interface PooledKey {
  /** Unencrypted PKCS#8 PEM, as grid-proxy-init writes into the proxy file. */
  privateKeyPem: string;
  spki: Uint8Array;
}

export interface KeyPoolStats {
  size: number;
  capacity: number;
  hits: number;
  misses: number;
}

function generate(bits: number): Promise<PooledKey> {
  return new Promise((resolve, reject) =>
    crypto.generateKeyPair(
      "rsa",
      {
        modulusLength: bits,
        publicExponent: 0x10001,
        publicKeyEncoding: { type: "spki", format: "der" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      },
      (err, spki, privateKeyPem) => (err ? reject(err) : resolve({ privateKeyPem, spki: new Uint8Array(spki) })),
    ),
  );
}

export class KeyPool {
  private readonly keys: PooledKey[] = [];
  private filling = 0;
  private stopped = false;
  private hits = 0;
  private misses = 0;

  /**
   * @param capacity keys kept ready (0 disables pooling)
   * @param parallel background generations at once; 1 leaves the other core to issuance
   */
  constructor(
    private readonly capacity: number,
    private readonly bits = 2048,
    private readonly parallel = 1,
  ) {}

  /** Start filling in the background. */
  start(): this {
    this.stopped = false;
    this.refill();
    return this;
  }

  stop(): void {
    this.stopped = true;
  }

  async take(): Promise<PooledKey> {
    const key = this.keys.pop();
    this.refill();
    if (key) {
      this.hits++;
      return key;
    }
    this.misses++;
    return generate(this.bits);
  }

  stats(): KeyPoolStats {
    return { size: this.keys.length, capacity: this.capacity, hits: this.hits, misses: this.misses };
  }

  /** Resolves when the pool is full (for tests, benchmarks and warm starts). */
  async filled(): Promise<void> {
    while (!this.stopped && this.keys.length < this.capacity) await new Promise((r) => setTimeout(r, 20));
  }

  private refill(): void {
    while (!this.stopped && this.filling < this.parallel && this.keys.length + this.filling < this.capacity) {
      this.filling++;
      generate(this.bits)
        .then((k) => {
          if (!this.stopped && this.keys.length < this.capacity) this.keys.push(k);
        })
        .catch((e: unknown) => console.error("certbridge: key pool generation failed:", e))
        .finally(() => {
          this.filling--;
          this.refill();
        });
    }
  }
}
