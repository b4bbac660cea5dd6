/**
 * Issue 12: a first start is crash-safe. Key and certificate files are written durably (write,
 * fsync, link); a process killed between the CA's (or an AA's) key and its certificate leaves a
 * half-made CA, which the next start sets aside and makes anew — or, when that could replace a
 * trust anchor in use, refuses with the fix.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, testEnvironment } from "./helpers";
import { loadConfig } from "../lib/config";
import { startCertbridge } from "../lib/certbridge";
import { CertbridgeError } from "../lib/errors";
import * as der from "../lib/pki/der";

/** Run a first start in a child process and SIGKILL it once it has written the key (`which`) but not its certificate. */
async function killBetweenKeyAndCertificate(env: Record<string, string>, which: "ca" | "aa"): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "test/fixtures/interruptedStart.ts"), which], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: "test", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("key-written")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`the first start ended (${code}) before the hook: ${out} ${err}`)));
  });
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

const certSpki = (file: string) => Buffer.from(der.pemBlocks(fs.readFileSync(file, "utf8"))[0]!.der).toString("base64");

async function startAndStop(env: Record<string, string>): Promise<{ log: string[]; caSubject: string }> {
  const log: string[] = [];
  const cb = await startCertbridge(loadConfig(env, () => {}), { log: (m) => log.push(m) });
  const caSubject = cb.ca.subject;
  await cb.close();
  return { log, caSubject };
}

describe("crash-safe first start", () => {
  test("killed between the CA key and its certificate: the next start sets the key aside and makes the CA", async () => {
    const { env, dir, cleanup } = await testEnvironment();
    try {
      await killBetweenKeyAndCertificate(env, "ca");
      const keyFile = path.join(dir, "ca", "ca-key.pem");
      assert.ok(fs.existsSync(keyFile), "the key was written");
      assert.ok(!fs.existsSync(path.join(dir, "ca", "ca.pem")), "the certificate was not");
      const orphan = fs.readFileSync(keyFile, "utf8");
      // A temporary file as a kill inside a write leaves it.
      fs.writeFileSync(path.join(dir, "ca", ".ca.pem.0123456789ab.tmp"), "-----BEGIN CERT");

      const { log } = await startAndStop(env);
      assert.ok(log.some((l) => /removed .*\.ca\.pem\.0123456789ab\.tmp, left by an interrupted write/.test(l)), log.join("\n"));
      assert.ok(log.some((l) => /the CA key .* had no certificate \(an interrupted first start\): set it aside/.test(l)), log.join("\n"));
      assert.ok(log.some((l) => /created a new CA/.test(l)), log.join("\n"));
      const names = fs.readdirSync(path.join(dir, "ca")).sort();
      assert.deepEqual(names.filter((n) => !n.startsWith("ca-key.pem.incomplete-")), ["ca-key.pem", "ca.pem"]);
      const aside = names.find((n) => n.startsWith("ca-key.pem.incomplete-"));
      assert.ok(aside, names.join(" "));
      assert.equal(fs.readFileSync(path.join(dir, "ca", aside), "utf8"), orphan, "the orphan key is kept, not deleted");
      // The new pair belongs together, and a second start simply opens it.
      const cert = certSpki(path.join(dir, "ca", "ca.pem"));
      const again = await startAndStop(env);
      assert.ok(!again.log.some((l) => /set it aside|created a new CA/.test(l)), again.log.join("\n"));
      assert.equal(certSpki(path.join(dir, "ca", "ca.pem")), cert);
    } finally {
      await cleanup();
    }
  });

  test("killed between an AA key and its certificate: the next start makes that AA anew", async () => {
    const { env, dir, cleanup } = await testEnvironment();
    try {
      await killBetweenKeyAndCertificate(env, "aa");
      const vomsDir = path.join(dir, "voms");
      const half = fs.readdirSync(vomsDir).filter((vo) => fs.existsSync(path.join(vomsDir, vo, "aa-key.pem")) && !fs.existsSync(path.join(vomsDir, vo, "aa.pem")));
      assert.equal(half.length, 1, "one AA is half made");
      const { log } = await startAndStop(env);
      assert.ok(log.some((l) => new RegExp(`VO ${half[0]}: the AA key had no certificate`).test(l)), log.join("\n"));
      assert.ok(fs.existsSync(path.join(vomsDir, half[0]!, "aa.pem")));
    } finally {
      await cleanup();
    }
  });

  test("a half-made CA that could be in use is refused with the fix, and nothing is changed", async () => {
    const { env, dir, cleanup } = await testEnvironment();
    try {
      await startAndStop(env); // a CA the database now knows
      const certFile = path.join(dir, "ca", "ca.pem");
      const keyFile = path.join(dir, "ca", "ca-key.pem");
      const certPem = fs.readFileSync(certFile, "utf8");
      const keyPem = fs.readFileSync(keyFile, "utf8");
      const refusal = async (pattern: RegExp) => {
        await assert.rejects(startAndStop(env), (e: unknown) => {
          assert.ok(e instanceof CertbridgeError && e.code === "invalid_config", String(e));
          assert.match(e.message, pattern);
          return true;
        });
      };
      // The certificate lost (not an interrupted start: the database serves a CA): restore it, never a new CA.
      fs.rmSync(certFile);
      await refusal(/CA key .* exists but its certificate .* does not and this database already serves a CA: restore .*ca\.pem from your backup/);
      assert.equal(fs.readFileSync(keyFile, "utf8"), keyPem, "the key is left where it is");
      assert.ok(!fs.existsSync(certFile));
      // The key lost: restore it.
      fs.writeFileSync(certFile, certPem);
      fs.rmSync(keyFile);
      await refusal(/CA certificate .*ca\.pem exists but its key .* does not: restore the key from your backup/);
      fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
      await startAndStop(env);
    } finally {
      await cleanup();
    }
  });
});
