/**
 * Proxy issuance throughput on this machine, printed, never asserted.
 *
 *   npm run bench                         # SQLite in a temporary directory
 *   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test npm run bench
 *
 * (a) CSR mode:   the signing path alone (CSR check, proxy TBS, RSA signature, PEM),
 *                 then the whole pipeline with the database (issueProxy: identity,
 *                 user credential, sign, store + audit in one transaction).
 * (b) server key: issueProxy with keys from the pool; the pool's hit rate in a
 *                 burst that fits the pool and in a sustained run that does not.
 */
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createPgDatabase } from "../test/helpers";
import { loadConfig } from "../lib/config";
import { startCertbridge, type Certbridge } from "../lib/certbridge";
import { issueProxy } from "../lib/issuance/issueProxy";
import { ensureIdentity } from "../lib/issuance/identity";
import { parseProxyPublicKey } from "../lib/pki/publicKey";
import { buildProxyCertificate, randomProxySerial } from "../lib/pki/proxy";
import { toPem } from "../lib/pki/der";

const CONCURRENCY = 64;

async function runConcurrent(n: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  const latencies: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await task(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
  return { perSecond: n / seconds, p50: q(0.5), p99: q(0.99) };
}

function line(label: string, r: { perSecond: number; p50: string; p99: string }, extra = "") {
  console.log(`${label.padEnd(48)} ${r.perSecond.toFixed(0).padStart(6)} /s   p50 ${r.p50} ms   p99 ${r.p99} ms${extra}`);
}

async function database(dir: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = process.env.BENCH_DATABASE_URL;
  return base ? createPgDatabase(base) : { url: `file:${path.join(dir, "bench.db")}`, drop: async () => {} };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-bench-"));
  const db = await database(dir);
  const config = loadConfig(
    {
      CERTBRIDGE_DATA_DIR: dir,
      DATABASE_URL: db.url,
      CERTBRIDGE_CA_KEY_PASSPHRASE: "bench-passphrase-only",
      CERTBRIDGE_KEK: crypto.randomBytes(32).toString("base64"),
      CERTBRIDGE_KEY_POOL_SIZE: String(CONCURRENCY),
    },
    () => {},
  );
  let cb: Certbridge | undefined;
  try {
    cb = await startCertbridge(config, { keyPool: true, log: () => {} });
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(dir, "k.pem"), "-subj", "/CN=x", "-out", path.join(dir, "r.csr")], { stdio: "pipe" });
    const csr = fs.readFileSync(path.join(dir, "r.csr"), "utf8");
    console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model}), database: ${db.url.startsWith("file:") ? "SQLite" : "PostgreSQL"}`);

    const claims = { iss: "https://idp.example.org", sub: "bench", name: "Bench User" };
    const identity = await ensureIdentity({ db: cb.db, clock: cb.clock, policy: config.subject }, claims, "bench");
    const user = await cb.authority.userCredentials.ensure(identity, new Date(Date.now() + 86400_000), { actor: "bench" });
    const now = new Date();

    // warm-up (JIT, OpenSSL tables)
    for (let i = 0; i < 200; i++) await issueProxy(cb, { claims, publicKey: csr, actor: "bench" });

    line(
      "(a) CSR: check + sign + PEM (no database)",
      await runConcurrent(20_000, CONCURRENCY, async () => {
        const key = parseProxyPublicKey(csr);
        const der = await buildProxyCertificate({ issuer: user.parts, issuerKey: user.key, spki: key.spki, notBefore: now, notAfter: new Date(now.getTime() + 43_200_000), serial: randomProxySerial() });
        toPem("CERTIFICATE", der);
      }),
    );
    line("(a) CSR: issueProxy, stored + audited", await runConcurrent(5_000, CONCURRENCY, () => issueProxy(cb!, { claims, publicKey: csr, actor: "bench" })));
    line("(a) CSR: issueProxy, one at a time", await runConcurrent(1_000, 1, () => issueProxy(cb!, { claims, publicKey: csr, actor: "bench" })));

    await cb.keyPool.filled();
    const before = cb.keyPool.stats();
    line("(b) server key: burst of 64 (pool full)", await runConcurrent(CONCURRENCY, CONCURRENCY, () => issueProxy(cb!, { claims, actor: "bench" })), `   pool hits ${cb.keyPool.stats().hits - before.hits}/${CONCURRENCY}`);
    await cb.keyPool.filled();
    const mid = cb.keyPool.stats();
    const sustained = await runConcurrent(400, 16, () => issueProxy(cb!, { claims, actor: "bench" }));
    const s = cb.keyPool.stats();
    const hits = s.hits - mid.hits;
    const misses = s.misses - mid.misses;
    line("(b) server key: sustained 400 at 16 concurrent", sustained, `   pool hit rate ${((100 * hits) / (hits + misses)).toFixed(0)}% (${hits}/${hits + misses})`);
  } finally {
    await cb?.close();
    await db.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
