/**
 * Proxies per second with the CA key in SoftHSM2 (PKCS#11) and in software,
 * in the same run. Printed, never asserted.
 *
 *   node --import tsx bench/hsm.ts        # needs softhsm2 (scripts/setup.sh)
 *
 * Where the HSM sits on the hot path: a proxy is signed by the user's key
 * (software, in the database), never by the CA. The CA signs a person's user
 * certificate (once per CERTBRIDGE_USER_CERT_LIFETIME, 11 days by default),
 * the CRL and the AA certificates. So a returning person's proxies never touch
 * the HSM; a person's first proxy (or the first after their user certificate
 * is renewed) waits for one CA signature, queued through the token's session.
 */
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { softHsm, SOFTHSM_MODULE, haveSoftHsm } from "../test/softhsm";
import { loadConfig } from "../lib/config";
import { startCertbridge, type Certbridge } from "../lib/certbridge";
import { initCaFiles } from "../lib/ca/authority";
import { issueProxy } from "../lib/issuance/issueProxy";
import { systemClock } from "../lib/clock";

const CONCURRENCY = 16;
const PIN = "bench-pin-1234";

async function runConcurrent(n: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

async function instance(dir: string, hsmKey: string | null): Promise<Certbridge> {
  fs.mkdirSync(dir, { recursive: true });
  const env: Record<string, string> = {
    CERTBRIDGE_DATA_DIR: dir,
    CERTBRIDGE_CA_KEY_PASSPHRASE: "bench-passphrase-only",
    CERTBRIDGE_KEK: crypto.randomBytes(32).toString("base64"),
    CERTBRIDGE_KEY_POOL_SIZE: "0",
  };
  if (hsmKey) {
    const certFile = path.join(dir, "ca.pem");
    const pkcs11 = { module: SOFTHSM_MODULE, pin: PIN };
    await initCaFiles({ certFile, keyFile: hsmKey, keyPassphrase: "", pkcs11 }, { subject: "/DC=org/DC=certbridge/CN=Bench HSM CA", keyBits: 3072, lifetimeSeconds: 86400 * 365 }, systemClock);
    Object.assign(env, { CERTBRIDGE_CA_CERT_FILE: certFile, CERTBRIDGE_CA_KEY_FILE: hsmKey, CERTBRIDGE_PKCS11_MODULE: SOFTHSM_MODULE, CERTBRIDGE_PKCS11_PIN: PIN });
  }
  return startCertbridge(loadConfig(env, () => {}), { keyPool: false, log: () => {} });
}

async function main() {
  if (!haveSoftHsm) throw new Error(`${SOFTHSM_MODULE} is missing: apt-get install softhsm2`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-bench-hsm-"));
  const hsm = softHsm();
  hsm.addToken("Bench CA", PIN);
  process.env.SOFTHSM2_CONF = hsm.conf; // read by SoftHSM when the module initialises
  const instances: Certbridge[] = [];
  try {
    const software = await instance(path.join(dir, "software"), null);
    instances.push(software);
    const token = await instance(path.join(dir, "hsm"), "pkcs11:token=Bench%20CA;object=ca-key");
    instances.push(token);
    execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(dir, "k.pem"), "-subj", "/CN=x", "-out", path.join(dir, "r.csr")], { stdio: "pipe" });
    const csr = fs.readFileSync(path.join(dir, "r.csr"), "utf8");
    console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model}), CA keys RSA-3072, ${CONCURRENCY} concurrent, SQLite`);
    console.log("A proxy is signed by the user key; the CA (HSM) signs only a person's user certificate (first proxy, or after renewal).");
    console.log(`${"".padEnd(58)} ${"software".padStart(10)} ${"SoftHSM".padStart(10)}`);
    const row = (label: string, a: number, b: number) => console.log(`${label.padEnd(58)} ${a.toFixed(0).padStart(8)}/s ${b.toFixed(0).padStart(8)}/s`);

    const results: number[][] = [[], [], []];
    for (const [i, cb] of [software, token].entries()) {
      const claims = { iss: "https://idp.example.org", sub: "bench-returning", name: "Bench User" };
      for (let w = 0; w < 50; w++) await issueProxy(cb, { claims, publicKey: csr, actor: "bench" }); // warm-up
      const data = crypto.randomBytes(512);
      results[0]![i] = await runConcurrent(2_000, CONCURRENCY, () => cb.ca.custody.sign(data));
      results[1]![i] = await runConcurrent(2_000, CONCURRENCY, () => issueProxy(cb, { claims, publicKey: csr, actor: "bench" }));
      const tag = i === 0 ? "sw" : "hsm";
      results[2]![i] = await runConcurrent(100, CONCURRENCY, (n) =>
        issueProxy(cb, { claims: { iss: "https://idp.example.org", sub: `bench-new-${tag}-${n}`, name: `Bench Person ${n}` }, publicKey: csr, actor: "bench" }),
      );
    }
    row("CA signatures (custody.sign, sha256WithRSA)", results[0]![0]!, results[0]![1]!);
    row("proxies, returning person (CA not on the path)", results[1]![0]!, results[1]![1]!);
    row("proxies, new person each (+1 CA sig, +1 user key generation)", results[2]![0]!, results[2]![1]!);
  } finally {
    for (const cb of instances) await cb.close();
    fs.rmSync(dir, { recursive: true, force: true });
    hsm.cleanup();
  }
}

await main();
