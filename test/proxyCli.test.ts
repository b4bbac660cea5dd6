/**
 * certbridge-proxy-init / certbridge-proxy-info without a portal: option
 * tables (voms-proxy-init's --valid HH:MM and --voms forms, bad values are
 * usage errors with exit status 2), the atomic credential writer, the
 * renewal schedule and backoff, and the CSR builder against the portal's own
 * CSR checks and OpenSSL.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { normalizeDashes, parseProxyInfoArgs, parseProxyInitArgs, parseValidity, UsageError } from "../packages/proxy-cli/src/proxyOptions";
import { loginScopes, prepareRefreshTokenDir } from "../packages/proxy-cli/src/proxyInit";
import { CredentialError, shortAcWarnings } from "../packages/proxy-cli/src/credentials";
import { backoffDelay, renewalDueAt } from "../packages/proxy-cli/src/renewer";
import type { ProxyToolEnvironment } from "../packages/proxy-cli/src/env";
import { writeFileAtomic } from "../lib/files";
import { SoftwareKey } from "../lib/pki/custody";
import { createCsr } from "../lib/pki/csr";
import { parseProxyPublicKey } from "../lib/pki/publicKey";
import type { ProxyFileInfo } from "../lib/inspect/proxyFile";
import { run, tempDir } from "./helpers";
import { PROXY_INFO, PROXY_INIT } from "./deviceHarness";
import { freePort } from "./portalHarness";

const env: ProxyToolEnvironment = { x509UserProxy: undefined, portal: "https://portal.example.org", defaultProxyFile: "/tmp/x509up_u1000", hostname: "test" };

describe("certbridge-proxy-init options", () => {
  test("--valid: HH:MM and the unit sums of every other Certbridge tool (lib/duration.ts)", () => {
    for (const [text, seconds] of [
      ["12:00", 43200],
      ["0:01", 60],
      ["00:30", 1800],
      ["168:00", 604800],
      [" 1:30 ", 5400],
      ["24h", 86400],
      ["1d12h", 129600],
      ["90m", 5400],
    ] as const) {
      assert.equal(parseValidity(text), seconds, text);
    }
    for (const bad of ["12:60", "1:5", "12x", "-1:00", "00:00", "0h", "1:00:00", "", "a:bc"]) {
      assert.throws(() => parseValidity(bad), UsageError, bad);
    }
  });

  test("--voms forms, repeatable, passed on as written", () => {
    const o = parseProxyInitArgs(["--voms", "biomed", "--voms", "atlas:/atlas/Role=production", "--voms", "biomed:/biomed/lab1"], env);
    assert.notEqual(o, "help");
    if (o === "help") return;
    assert.deepEqual(o.voms, ["biomed", "atlas:/atlas/Role=production", "biomed:/biomed/lab1"]);
    for (const bad of ["", "bio med", "biomed:/atlas", "biomed:biomed", "biomed:/biomed/Role=", "/biomed"]) {
      assert.throws(() => parseProxyInitArgs(["--voms", bad], env), UsageError, bad);
    }
  });

  test("defaults and sources: --out, X509_USER_PROXY, /tmp/x509up_u<uid>; --portal, CERTBRIDGE_PORTAL", () => {
    const a = parseProxyInitArgs([], env);
    assert.ok(a !== "help");
    assert.equal(a.out, "/tmp/x509up_u1000");
    assert.equal(a.portal, "https://portal.example.org");
    assert.equal(a.clientId, "certbridge-cli");
    assert.equal(a.mode, "login");
    assert.equal(a.lifetimeSeconds, undefined);
    const b = parseProxyInitArgs(["--portal", "http://localhost:3000/", "--valid", "1:00"], { ...env, x509UserProxy: "/home/u/proxy.pem" });
    assert.ok(b !== "help");
    assert.equal(b.out, "/home/u/proxy.pem");
    assert.equal(b.portal, "http://localhost:3000");
    assert.equal(b.lifetimeSeconds, 3600);
    const r = parseProxyInitArgs(["--renew", "--refresh-token-file", "rt.json", "--once", "--renew-fraction", "0.5", "--warn-before", "72h"], { ...env, portal: undefined });
    assert.ok(r !== "help");
    assert.equal(r.mode, "renew");
    assert.equal(r.portal, undefined); // taken from the refresh-token file
    assert.equal(r.renewFraction, 0.5);
    assert.equal(r.warnBeforeSeconds, 72 * 3600);
    assert.equal(r.refreshTokenFile, path.resolve("rt.json"));
  });

  test("bad combinations and values are usage errors naming the option", () => {
    const cases: [string[], RegExp, Partial<ProxyToolEnvironment>?][] = [
      [[], /no portal/, { portal: undefined }],
      [["--portal", "ftp://x"], /--portal/],
      [["--portal", "not a url"], /--portal/],
      [["--valid", "soon"], /--valid: "soon" is not a duration/],
      [["--renew"], /--renew needs --refresh-token-file/],
      [["--once"], /--once only applies with --renew/],
      [["--renew", "--refresh-token-file", "f", "--renew-fraction", "1.5"], /--renew-fraction: must be below 1/],
      [["--renew", "--refresh-token-file", "f", "--renew-fraction", "zero"], /--renew-fraction/],
      [["--renew", "--refresh-token-file", "f", "--warn-before", "soon"], /--warn-before/],
      [["--renew", "--refresh-token-file", "f", "--webhook", "javascript:alert(1)"], /--webhook/],
      [["--renew", "--refresh-token-file", "f", "--qr"], /--qr only applies/],
      [["--client-id", "a b"], /--client-id/],
      [["--bogus"], /Unknown option '--bogus'/],
      [["extra"], /unexpected argument "extra"/],
    ];
    for (const [argv, re, e] of cases) {
      assert.throws(() => parseProxyInitArgs(argv, { ...env, ...e }), (err: Error) => err instanceof UsageError && re.test(err.message), argv.join(" "));
    }
  });

  test("certbridge-proxy-info options", () => {
    const o = parseProxyInfoArgs(["--exists", "--valid", "1:30", "--file", "p.pem"], env);
    assert.ok(o !== "help");
    assert.deepEqual(o, { file: path.resolve("p.pem"), exists: true, validSeconds: 5400, timeleft: false, fqan: false });
    assert.deepEqual(parseProxyInfoArgs(["--fqan", "-f", "p.pem"], env), { file: path.resolve("p.pem"), exists: false, validSeconds: undefined, timeleft: false, fqan: true });
    assert.throws(() => parseProxyInfoArgs(["--valid", "1:5"], env), UsageError);
    for (const bad of [["--timeleft", "--exists"], ["--fqan", "--exists"], ["--fqan", "--valid", "1:00"], ["--fqan", "--timeleft"]]) {
      assert.throws(() => parseProxyInfoArgs(bad, env), UsageError, bad.join(" "));
    }
  });

  test("voms-proxy-init / voms-proxy-info spellings: -all, -file, -valid, -voms, -out with one dash", () => {
    const cases: [string[], Partial<{ file: string; exists: boolean; validSeconds: number | undefined; timeleft: boolean }>][] = [
      [["-all"], { file: "/tmp/x509up_u1000" }],
      [["-all", "-file", "p.pem"], { file: path.resolve("p.pem") }],
      [["-file=p.pem"], { file: path.resolve("p.pem") }],
      [["-exists", "-valid", "12:00"], { exists: true, validSeconds: 43200 }],
      [["-exists", "-valid", "24h"], { exists: true, validSeconds: 86400 }],
      [["-timeleft"], { timeleft: true }],
      [["--all", "--file", "p.pem", "-e"], { file: path.resolve("p.pem"), exists: true }],
    ];
    for (const [argv, want] of cases) {
      const o = parseProxyInfoArgs(argv, env);
      assert.ok(o !== "help", argv.join(" "));
      for (const [k, v] of Object.entries(want)) assert.deepEqual(o[k as keyof typeof o], v, `${argv.join(" ")}: ${k}`);
    }
    const init = parseProxyInitArgs(["-voms", "biomed", "-valid", "24:00", "-out", "p.pem", "-q"], env);
    assert.ok(init !== "help");
    assert.deepEqual([init.voms, init.lifetimeSeconds, init.out, init.quiet], [["biomed"], 86400, path.resolve("p.pem"), true]);
    assert.equal((parseProxyInitArgs(["--valid", "1d12h"], env) as { lifetimeSeconds: number }).lifetimeSeconds, 129600);
    // unknown single-dash words stay errors; arguments after -- are left alone
    assert.throws(() => parseProxyInfoArgs(["-bogus"], env), UsageError);
    assert.deepEqual(normalizeDashes(["-all", "--", "-all"], { all: { type: "boolean" } }), ["--all", "--", "-all"]);
  });

  test("offline_access (a refresh token, a lasting consent) is asked for only with --refresh-token-file", () => {
    assert.equal(loginScopes(undefined), "openid profile proxy");
    assert.equal(loginScopes("/home/u/.certbridge/rt.json"), "openid profile offline_access proxy");
  });

  test("the refresh-token directory is made (0700) or the problem reported before the browser step", () => {
    const dir = tempDir("rtdir");
    const file = path.join(dir, "a", "b", "rt.json");
    prepareRefreshTokenDir(file);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const blocker = path.join(dir, "plain-file");
    fs.writeFileSync(blocker, "");
    assert.throws(() => prepareRefreshTokenDir(path.join(blocker, "rt.json")), (e: Error) => e instanceof CredentialError && /ENOTDIR|EEXIST/.test(e.message) && /nothing was sent/.test(e.message));
    assert.throws(() => prepareRefreshTokenDir(dir), (e: Error) => e instanceof CredentialError && /EISDIR/.test(e.message));
  });

  test("a warning when the VOMS attributes end before the proxy", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    const at = (h: number) => new Date(now + h * 3600_000);
    const ac = (vo: string, end: number) => ({ vo, notAfter: at(end) }) as ProxyFileInfo["voms"][number];
    const info = { notAfter: at(24), voms: [ac("biomed", 12), ac("atlas", 24)] } as unknown as ProxyFileInfo;
    const w = shortAcWarnings(info, now);
    assert.equal(w.length, 1);
    assert.match(w[0]!, /VOMS attributes of biomed end at 2026-01-01T12:00:00.000Z \(in 12h\), 12h before the proxy/);
  });

  test("the programs exit 2 with one clear line for usage errors, 1 for runtime errors", async () => {
    const usage = run(process.execPath, [PROXY_INIT, "--portal", "http://localhost:9", "--valid", "12x"]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /^certbridge-proxy-init: --valid: "12x" is not a duration \(use seconds, 12h, 1d12h, 90m or HH:MM\)\n/);
    const runtime = run(process.execPath, [PROXY_INIT, "--renew", "--once", "--refresh-token-file", "/nonexistent/rt.json"]);
    assert.equal(runtime.status, 1);
    assert.equal(runtime.stderr, "certbridge-proxy-init: no refresh token in /nonexistent/rt.json: log in first with certbridge-proxy-init --refresh-token-file /nonexistent/rt.json\n");
    const closed = await freePort(); // nothing listens there
    const refused = run(process.execPath, [PROXY_INIT, "--portal", `http://127.0.0.1:${closed}`]);
    assert.equal(refused.status, 1);
    assert.equal(refused.stderr, `certbridge-proxy-init: http://127.0.0.1:${closed} is unreachable (ECONNREFUSED)\n`);
    const info = run(process.execPath, [PROXY_INFO, "--file", "/nonexistent/proxy"]);
    assert.equal(info.status, 1);
    assert.match(info.stderr, /cannot read \/nonexistent\/proxy: ENOENT/);
    assert.equal(run(process.execPath, [PROXY_INFO, "--exists", "--file", "/nonexistent/proxy"]).status, 1);
    assert.equal(run(process.execPath, [PROXY_INFO, "--valid", "99x"]).status, 2);
  });
});

describe("writeFileAtomic", () => {
  test("the target has mode 0600 whatever the umask, and replaces the old content whole", () => {
    const dir = tempDir();
    const file = path.join(dir, "x509up");
    fs.writeFileSync(file, "old", { mode: 0o644 });
    const old = process.umask(0);
    try {
      writeFileAtomic(file, "new content", 0o600);
    } finally {
      process.umask(old);
    }
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file, "utf8"), "new content");
    assert.deepEqual(fs.readdirSync(dir), ["x509up"]); // no temporary file left
    fs.rmSync(dir, { recursive: true });
  });

  test("while it writes, the temporary file is 0600 from its creation and the target is old or new, never partial", async () => {
    const dir = tempDir();
    const file = path.join(dir, "x509up");
    const size = 64 * 1024 * 1024;
    fs.writeFileSync(file, Buffer.alloc(size, 0x61), { mode: 0o600 });
    // The writer runs in a worker; this thread watches the directory meanwhile.
    const worker = new Worker(
      `const { register } = require("tsx/cjs/api"); register();
       const { writeFileAtomic } = require(${JSON.stringify(path.resolve(import.meta.dirname, "../lib/files.ts"))});
       const { parentPort, workerData } = require("node:worker_threads");
       parentPort.postMessage("start");
       for (let i = 0; i < 3; i++) writeFileAtomic(workerData.file, Buffer.alloc(workerData.size, 0x62 + i), 0o600);
       parentPort.postMessage("done");`,
      { eval: true, workerData: { file, size } },
    );
    const done = new Promise<void>((resolve, reject) => {
      worker.on("message", (m) => m === "done" && resolve());
      worker.on("error", reject);
    });
    let finished = false;
    void done.then(() => (finished = true));
    const tempModes = new Set<number>();
    let targetChecks = 0;
    while (!finished) {
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        try {
          if (name === "x509up") {
            // a complete file is `size` bytes of one letter; a partial one would be shorter or mixed
            const fd = fs.openSync(p, "r");
            const st = fs.fstatSync(fd);
            const head = Buffer.alloc(1);
            const tail = Buffer.alloc(1);
            fs.readSync(fd, head, 0, 1, 0);
            fs.readSync(fd, tail, 0, 1, st.size - 1);
            fs.closeSync(fd);
            assert.equal(st.size, size, "the target is never partially written");
            assert.equal(head[0], tail[0], "the target is never a mix of old and new");
            assert.equal(st.mode & 0o777, 0o600);
            targetChecks++;
          } else {
            tempModes.add(fs.statSync(p).mode & 0o777);
          }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; // renamed away meanwhile
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    await done;
    await worker.terminate();
    assert.ok(targetChecks > 0);
    assert.ok(tempModes.size > 0, "the temporary file was seen while being written");
    assert.deepEqual([...tempModes], [0o600], "the temporary file is never looser than 0600");
    assert.deepEqual(fs.readdirSync(dir), ["x509up"]);
    assert.equal(fs.readFileSync(file).subarray(0, 1).toString(), "d");
    fs.rmSync(dir, { recursive: true });
  });

  test("on error the temporary file is removed and the target is untouched", () => {
    const dir = tempDir();
    // rename(2) onto a non-empty directory fails after the data was written
    const target = path.join(dir, "target");
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "keep"), "x");
    assert.throws(() => writeFileAtomic(target, "secret", 0o600), /EISDIR|ENOTEMPTY|EEXIST/);
    assert.deepEqual(fs.readdirSync(dir), ["target"]);
    assert.deepEqual(fs.readdirSync(target), ["keep"]);
    // a missing directory: nothing is created
    assert.throws(() => writeFileAtomic(path.join(dir, "missing", "f"), "secret", 0o600), /ENOENT/);
    assert.deepEqual(fs.readdirSync(dir), ["target"]);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("renewal schedule", () => {
  const proxy = (notBefore: string, notAfter: string, keyMatches = true) => ({ notBefore: new Date(notBefore), notAfter: new Date(notAfter), keyMatches }) as ProxyFileInfo;

  test("due when less than the fraction of the granted lifetime (after the 5-minute back-dating) is left, or when missing", () => {
    // a 12 h proxy issued at 12:00 (notBefore back-dated to 11:55)
    const p = proxy("2026-01-01T11:55:00Z", "2026-01-02T00:00:00Z");
    assert.equal(new Date(renewalDueAt(p, 0.25)).toISOString(), "2026-01-01T21:00:00.000Z");
    assert.equal(new Date(renewalDueAt(p, 0.5)).toISOString(), "2026-01-01T18:00:00.000Z");
    assert.equal(renewalDueAt(null, 0.25), -Infinity);
    assert.equal(renewalDueAt(proxy("2026-01-01T11:55:00Z", "2026-01-02T00:00:00Z", false), 0.25), -Infinity);
  });

  test("exponential backoff with jitter, capped", () => {
    assert.deepEqual([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 600_000, () => 0)), [500, 1000, 2000, 4000, 300_000]);
    assert.deepEqual([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 600_000, () => 1)), [1000, 2000, 4000, 8000, 600_000]);
    assert.equal(backoffDelay(40, 10_000, () => 1), 10_000);
  });
});

describe("CSR", () => {
  test("createCsr makes a SHA-256 PKCS#10 request that the portal and OpenSSL accept", async () => {
    const key = await SoftwareKey.generate(2048);
    const csr = await createCsr(key);
    const parsed = parseProxyPublicKey(csr.pem);
    assert.equal(parsed.form, "csr");
    assert.equal(parsed.bits, 2048);
    assert.deepEqual(Buffer.from(parsed.spki), Buffer.from(key.publicKeySpki));
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "req.csr"), csr.pem);
    const openssl = run("openssl", ["req", "-in", path.join(dir, "req.csr"), "-noout", "-verify", "-text"]);
    assert.equal(openssl.status, 0, openssl.stderr);
    assert.match(openssl.stdout, /sha256WithRSAEncryption/);
    fs.rmSync(dir, { recursive: true });
    // a tampered request fails proof of possession
    const der = Buffer.from(csr.der);
    der[der.length - 1]! ^= 1;
    assert.throws(() => parseProxyPublicKey(der), /proof of possession/);
  });
});
