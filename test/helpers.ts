/**
 * Test fixtures: every test that needs a portal gets its own data directory
 * and its own database. CERTBRIDGE_TEST_DATABASE selects the engine:
 * unset/"sqlite" → a file in the temporary data directory; a postgresql:// URL
 * → a fresh database created on that server (dropped again in cleanup).
 */
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { Agent, setGlobalDispatcher } from "undici";
import { loadConfig, type Config } from "../lib/config";
import { startCertbridge, type Certbridge } from "../lib/certbridge";
import type { Clock } from "../lib/clock";

// The test process's fetch drops idle connections after 1 s. The portal keeps them 65 s (for load
// balancers); a test process whose event loop was busy (RSA key generation) could otherwise reuse a
// socket in the instant the portal closes it, and fail with "other side closed".
setGlobalDispatcher(new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 }));

export const TEST_DATABASE = process.env.CERTBRIDGE_TEST_DATABASE ?? "sqlite";
export const ROOT = path.resolve(import.meta.dirname, "..");

export function tempDir(prefix = "certbridge-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A fresh, uniquely named PostgreSQL database on the server of `baseUrl`, and how to drop it. */
export async function createPgDatabase(baseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `certbridge_test_${crypto.randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestPortal {
  cb: Certbridge;
  config: Config;
  dir: string;
  env: Record<string, string>;
  cleanup: () => Promise<void>;
}

/** Environment for a fresh portal (also used to run the CLI as a child process). */
export async function testEnvironment(extra: Record<string, string> = {}) {
  const dir = tempDir();
  let drop = async () => {};
  const env: Record<string, string> = {
    CERTBRIDGE_DATA_DIR: dir,
    CERTBRIDGE_CA_KEY_PASSPHRASE: "test-passphrase-not-secret",
    CERTBRIDGE_KEK: crypto.randomBytes(32).toString("base64"),
    CERTBRIDGE_SUBJECT_BASE: "/DC=org/DC=certbridge-test/DC=users",
    CERTBRIDGE_CA_SUBJECT: "/DC=org/DC=certbridge-test/CN=Certbridge Test CA",
    CERTBRIDGE_KEY_POOL_SIZE: "2",
    CERTBRIDGE_COOKIE_KEYS: "test-cookie-key-not-secret",
    // SSH retrieval listens on a fixed port by default; tests that need it pick a free one.
    CERTBRIDGE_SSH_PORT: "0",
    CERTBRIDGE_ADMIN_SUBS: "alice",
    ...extra,
  };
  if (TEST_DATABASE.startsWith("postgres")) {
    const db = await createPgDatabase(TEST_DATABASE);
    env.DATABASE_URL = db.url;
    drop = db.drop;
  }
  return {
    dir,
    env,
    cleanup: async () => {
      await drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startTestPortal(opts: { clock?: Clock; env?: Record<string, string>; keyPool?: boolean } = {}): Promise<TestPortal> {
  const t = await testEnvironment(opts.env);
  const config = loadConfig(t.env, () => {});
  const cb = await startCertbridge(config, { clock: opts.clock, keyPool: opts.keyPool ?? false, log: () => {} });
  return {
    cb,
    config,
    dir: t.dir,
    env: t.env,
    cleanup: async () => {
      await cb.close();
      await t.cleanup();
    },
  };
}

/** An RSA key and a PKCS#10 request for it, made by OpenSSL (the way a gateway would). */
export function opensslCsr(dir: string, name = "req", bits = 2048, extra: string[] = []): { csrPem: string; keyPem: string; keyFile: string } {
  const keyFile = path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  execFileSync("openssl", ["req", "-new", "-newkey", `rsa:${bits}`, "-nodes", "-keyout", keyFile, "-subj", "/CN=ignored by the CA", "-out", csrFile, ...extra], {
    stdio: "pipe",
  });
  return { csrPem: fs.readFileSync(csrFile, "utf8"), keyPem: fs.readFileSync(keyFile, "utf8"), keyFile };
}

/** The proxy file a gateway assembles in CSR mode: proxy cert, its own key, then the chain. */
export function assembleProxyFile(issuedPem: string, keyPem: string): string {
  const certs = issuedPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
  return certs[0] + keyPem + certs.slice(1).join("");
}

export function certificatesOf(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

export const claimsFor = (sub: string, name = "Alice Example", extra: Record<string, unknown> = {}) => ({
  iss: "https://idp.example.org/oidc",
  sub,
  name,
  idp_name: "Example University",
  ...extra,
});

/** Run a command; return status and output instead of throwing. With timeoutMs, a command still running then is killed (status 1). */
export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string; timeoutMs?: number } = {}) {
  try {
    const stdout = execFileSync(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      input: opts.input,
      stdio: ["pipe", "pipe", "pipe"],
      encoding: "utf8",
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: "SIGKILL" as const } : {}),
    });
    return { status: 0, stdout, stderr: "" };
  } catch (e) {
    const err = e as { status?: number | null; stdout?: string; stderr?: string; code?: string };
    const timedOut = err.code === "ETIMEDOUT" ? `\n(killed after ${opts.timeoutMs} ms)` : "";
    return { status: err.status ?? 1, stdout: err.stdout ?? "", stderr: (err.stderr ?? "") + timedOut };
  }
}

/** The first certificate of a proxy file, written next to it in `work` (what openssl verify takes as the target). */
export function proxyLeafFile(file: string, work: string): string {
  const leaf = path.join(work, `${path.basename(file)}.leaf.pem`);
  fs.writeFileSync(leaf, certificatesOf(fs.readFileSync(file, "utf8"))[0]!);
  return leaf;
}

/** `openssl verify -allow_proxy_certs` of a proxy file against a trust directory. */
export function opensslVerifyProxy(file: string, trust: string, work: string, extra: string[] = []) {
  return run("openssl", ["verify", "-allow_proxy_certs", ...extra, "-CApath", trust, "-untrusted", file, proxyLeafFile(file, work)]);
}

/** `grid-proxy-init -verify` (Globus GSI, signing_policy) deriving a further proxy from a proxy file. */
export function globusVerifyProxy(file: string, certdir: string, work: string) {
  const out = path.join(work, `derived-${Math.random().toString(16).slice(2)}.pem`);
  const r = run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", certdir, "-valid", "0:30", "-out", out]);
  return { ...r, derived: out };
}
