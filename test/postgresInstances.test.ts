/**
 * Several instances (issue 13, point 5): two portal processes of the
 * production server entry on two ports, one PostgreSQL database, the same CA
 * key and secrets, as a load balancer would spread them. Tokens, consoles
 * sessions, revocations and suspensions cross between them; serials never
 * collide under concurrent load on both; the CRL has one writer; the
 * scheduled jobs run in the leader only, and the other instance takes over
 * when the leader is killed; both serve SSH with one host key.
 *
 * Instance A is "the first one installed": it makes the CA, the AA keys and
 * the SSH host key; B gets a copy of A's ca/ and voms/ directories (as an
 * operator copies key material to a new host) and the same settings, except
 * its ports and data directory. Both keep A's public URL (the load
 * balancer's, in production), so logins go through A.
 */
import "./onPostgres.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import * as client from "openid-client";
import { openDatabase, type Db, JOBS_LOCK_KEY, LEADER_APPLICATION_NAME } from "../lib/db";
import { loadConfig } from "../lib/config";
import { CLIENT_CACHE_MS } from "../lib/authority/provisioners/gatewayToken";
import { certificateParts, serialHex } from "../lib/pki/x509";
import { pemBlocks } from "../lib/pki/der";
import { certificatesOf, opensslCsr, run, tempDir, testEnvironment, ROOT } from "./helpers";
import { Browser, consoleLogin, freePort, GATEWAY, loginThroughPortal, OTHER_GATEWAY, redeem } from "./portalHarness";

interface Instance {
  name: string;
  url: string;
  env: Record<string, string>;
  child: ChildProcess;
  output: () => string;
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

/** Run server.ts with `env`; resolves once /api/health answers on its own port. */
async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const url = `http://localhost:${env.CERTBRIDGE_PORT}`;
  let log = "";
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server.ts")], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`instance ${name} exited (${child.exitCode}):\n${log}`);
    try {
      if ((await fetch(`${url}/api/health`)).ok) return { name, url, env, child, output: () => log, kill };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  await kill("SIGKILL");
  throw new Error(`instance ${name} did not start:\n${log}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let a: Instance;
let b: Instance;
let db: Db;
let sql: pg.Client;
let cleanupEnv: () => Promise<void>;
let dirB: string;
let csrPem: string;
let alice: Awaited<ReturnType<typeof consoleLogin>>;
const OTHER_SCOPE = "openid profile offline_access proxy";

before(async () => {
  const t = await testEnvironment();
  cleanupEnv = t.cleanup;
  const portA = await freePort();
  const clientsFile = path.join(t.dir, "clients.json");
  fs.writeFileSync(
    clientsFile,
    JSON.stringify([
      { id: GATEWAY.id, name: "Test Gateway", secret: GATEWAY.secret, redirectUris: [GATEWAY.redirect], maxProxyLifetimeSeconds: 86400 },
      { id: OTHER_GATEWAY.id, name: "Other Gateway", secret: OTHER_GATEWAY.secret, redirectUris: [OTHER_GATEWAY.redirect], scopes: ["openid", "profile", "offline_access", "proxy"], maxProxyLifetimeSeconds: 3600 },
    ]),
  );
  const shared = { ...t.env, CERTBRIDGE_PUBLIC_URL: `http://localhost:${portA}`, CERTBRIDGE_CLIENTS_FILE: clientsFile, NEXT_TELEMETRY_DISABLED: "1" };
  a = await startInstance("A", { ...shared, CERTBRIDGE_PORT: String(portA), CERTBRIDGE_SSH_PORT: String(await freePort()) });
  // B: a copy of A's key material, its own data directory and ports, everything else equal.
  dirB = tempDir("certbridge-instance-b-");
  for (const sub of ["ca", "voms"]) fs.cpSync(path.join(t.dir, sub), path.join(dirB, sub), { recursive: true });
  b = await startInstance("B", { ...shared, CERTBRIDGE_DATA_DIR: dirB, CERTBRIDGE_PORT: String(await freePort()), CERTBRIDGE_SSH_PORT: String(await freePort()) });
  db = await openDatabase(loadConfig(t.env, () => {}).databaseUrl);
  sql = new pg.Client({ connectionString: t.env.DATABASE_URL });
  await sql.connect();
  csrPem = opensslCsr(t.dir, "load").csrPem;
  alice = await consoleLogin(a.url, "alice", "/account");
});

after(async () => {
  await a?.kill();
  await b?.kill();
  await sql?.end();
  await db?.$disconnect();
  if (dirB) fs.rmSync(dirB, { recursive: true, force: true });
  await cleanupEnv?.();
});

const getproxy = (at: Instance, token: string, params: Record<string, string> = {}) =>
  fetch(`${at.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new URLSearchParams(params) });

/** A console form posted to `at` with the session cookie the browser got from A (one site behind a load balancer). */
async function post(who: { browser: Browser }, at: Instance, pathName: string, form: Record<string, string>) {
  const cookie = (who.browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(a.url + pathName));
  const res = await fetch(at.url + pathName, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie }, body: new URLSearchParams(form) });
  return { status: res.status, location: decodeURIComponent(res.headers.get("location") ?? "") };
}

/** Which process holds the jobs lock in this database (pg_locks: advisory, bigint key split over classid/objid). */
async function jobsLeader(): Promise<string | null> {
  const { rows } = await sql.query<{ application_name: string }>(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1 AND l.classid = 0
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [JOBS_LOCK_KEY],
  );
  assert.ok(rows.length <= 1, `one holder at most: ${JSON.stringify(rows)}`);
  return rows[0]?.application_name ?? null;
}

describe("two instances on one PostgreSQL database", () => {
  test("a second instance without the CA's files refuses to start instead of making another CA", async () => {
    const empty = tempDir("certbridge-instance-c-");
    try {
      const r = run(process.execPath, ["--import", "tsx", path.join(ROOT, "server.ts")], {
        cwd: ROOT,
        env: { ...a.env, CERTBRIDGE_DATA_DIR: empty, CERTBRIDGE_PORT: String(await freePort()), CERTBRIDGE_SSH_PORT: "0" },
        timeoutMs: 60_000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /this database already serves the CA "\/DC=org\/DC=certbridge-test\/CN=Certbridge Test CA".*give every instance the same CA/);
      assert.equal(fs.existsSync(path.join(empty, "ca", "ca.pem")), false);
      assert.equal(await db.caRecord.count(), 1);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test("a token issued by one is honoured by the other: access token at /getproxy, refresh at the token endpoint", async () => {
    const tokens = await redeem(await loginThroughPortal(a.url, { user: "alice" }));
    const atB = await getproxy(b, tokens.access_token, { certreq: csrPem });
    assert.equal(atB.status, 200, await atB.clone().text());
    const proxyB = certificatesOf(await atB.text());
    // the user certificate B signed with is the one A made for alice, if any, or B's; either way one CA
    const caPem = fs.readFileSync(path.join(a.env.CERTBRIDGE_DATA_DIR!, "ca", "ca.pem"), "utf8");
    const chainFile = path.join(dirB, "chain.pem");
    fs.writeFileSync(chainFile, proxyB.slice(1).join(""));
    fs.writeFileSync(path.join(dirB, "proxy.pem"), proxyB[0]!);
    const caFile = path.join(dirB, "ca-copy.pem");
    fs.writeFileSync(caFile, caPem);
    const verified = run("openssl", ["verify", "-allow_proxy_certs", "-CAfile", caFile, "-untrusted", chainFile, path.join(dirB, "proxy.pem")]);
    assert.equal(verified.status, 0, verified.stderr + verified.stdout);

    // the refresh token from A's login, redeemed at B's token endpoint; its access token used at A
    const refreshed = await fetch(`${b.url}/oidc/token`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${GATEWAY.id}:${GATEWAY.secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }),
    });
    const body = (await refreshed.json()) as { access_token?: string; error?: string };
    assert.equal(refreshed.status, 200, JSON.stringify(body));
    assert.ok(body.access_token && body.access_token !== tokens.access_token);
    assert.equal((await getproxy(a, body.access_token!, { certreq: csrPem })).status, 200);
    // the console session made at A is good at B (same cookie keys, sessions in the database)
    const cookie = (alice.browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(`${a.url}/account`));
    const page = await fetch(`${b.url}/account`, { headers: { cookie }, redirect: "manual" });
    assert.equal(page.status, 200);
  });

  test("serials never collide under concurrent load on both; every certificate returned is stored with its audit event", async () => {
    const people = await Promise.all(["alice", "bob", "zoe"].map(async (user) => (await redeem(await loginThroughPortal(a.url, { user }))).access_token));
    const N = 240;
    const before = await db.certificate.count();
    // all at once, alternating instances and people (bob and zoe have no user certificate yet: both instances race to make one)
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const res = await getproxy(i % 2 ? b : a, people[i % 3]!, { certreq: csrPem });
        const text = await res.text();
        assert.equal(res.status, 200, text);
        return certificatesOf(text);
      }),
    );
    // proxies carry Globus-style 31-bit serials (stored in decimal too); user certificates 20 random bytes
    const serialOf = (pem: string) => BigInt(`0x${serialHex(certificateParts(pemBlocks(pem)[0]!.der).serial)}`).toString();
    const proxySerials = results.map((chain) => serialOf(chain[0]!));
    assert.equal(new Set(proxySerials).size, N, "every proxy has its own serial");
    const rows = await db.certificate.findMany({ where: { serialDec: { in: proxySerials }, kind: "proxy" }, select: { id: true } });
    assert.equal(rows.length, N, "every returned proxy is stored");
    const audited = await db.auditEvent.findMany({ where: { action: "proxy.issue", certificateId: { in: rows.map((r) => r.id) } }, select: { certificateId: true } });
    assert.equal(new Set(audited.map((e) => e.certificateId)).size, N, "each with its proxy.issue event");
    // across the whole database (user certificates too), no issuer repeats a serial
    const { rows: dup } = await sql.query(`SELECT "issuer", "serialHex", count(*) FROM "Certificate" GROUP BY "issuer", "serialHex" HAVING count(*) > 1`);
    assert.deepEqual(dup, []);
    assert.ok((await db.certificate.count()) >= before + N);
    // every user certificate a proxy was signed with is stored, valid and audited
    const userSerials = new Set(results.map((chain) => serialOf(chain[1]!)));
    for (const s of userSerials) {
      const row = await db.certificate.findFirst({ where: { serialDec: s, kind: "user" }, select: { id: true, status: true } });
      assert.equal(row?.status, "valid", s);
      assert.equal(await db.auditEvent.count({ where: { action: "certificate.issue", certificateId: row!.id } }), 1, s);
    }
  });

  test("a consent revoked through one instance stops the other at once", async () => {
    const login = await loginThroughPortal(a.url, { user: "bob", scope: OTHER_SCOPE, gw: OTHER_GATEWAY });
    const tokens = await redeem(login);
    assert.equal((await getproxy(a, tokens.access_token)).status, 200);
    const bob = await consoleLogin(a.url, "bob", "/account");
    const page = await bob.browser.go(`${a.url}/account`);
    const grantId = [...page.html.matchAll(/href="\/account\/consents\/([^"/]+)\/revoke"/g)].map((m) => m[1]!);
    assert.ok(grantId.length >= 1);
    // revoke every consent bob gave, through B
    for (const id of grantId) {
      const r = await post(bob, b, `/account/consents/${id}`, { csrf: bob.csrf!, confirm: "yes" });
      assert.match(r.location, /revoked/);
    }
    const refused = await getproxy(a, tokens.access_token);
    assert.equal(refused.status, 401);
    assert.match(((await refused.json()) as { error_description: string }).error_description, /invalid, expired or revoked|consent/);
    await assert.rejects(client.refreshTokenGrant(login.config, tokens.refresh_token!), (e: { error?: string }) => e.error === "invalid_grant");
  });

  test(`a client suspended through one instance is refused by the other within the documented window (${CLIENT_CACHE_MS} ms)`, async () => {
    const tokens = await redeem(await loginThroughPortal(a.url, { user: "zoe", scope: OTHER_SCOPE, gw: OTHER_GATEWAY }));
    // B has the client row cached now
    assert.equal((await getproxy(b, tokens.access_token)).status, 200);
    const r = await post(alice, a, `/admin/clients/${OTHER_GATEWAY.id}/action/suspend`, { reason: "incident 7", csrf: alice.csrf! });
    assert.match(r.location, /Gateway suspended/);
    await sleep(CLIENT_CACHE_MS + 100);
    const refused = await getproxy(b, tokens.access_token);
    assert.equal(refused.status, 401);
    assert.match(((await refused.json()) as { error_description: string }).error_description, /suspended/);
    const back = await post(alice, b, `/admin/clients/${OTHER_GATEWAY.id}/action/activate`, { reason: "resolved", csrf: alice.csrf! });
    assert.match(back.location, /activated|Gateway/);
    await sleep(CLIENT_CACHE_MS + 100);
    assert.equal((await getproxy(a, tokens.access_token)).status, 200);
  });

  test("both instances serve SSH with the one host key kept in the database", async () => {
    const fingerprint = (i: Instance) => /ssh proxy retrieval on .* host key (SHA256:\S+?)\)/.exec(i.output())?.[1];
    assert.ok(fingerprint(a));
    assert.equal(fingerprint(b), fingerprint(a));
    const scanned = [a, b].map((i) => {
      const r = run("ssh-keyscan", ["-t", "ed25519", "-p", i.env.CERTBRIDGE_SSH_PORT!, "127.0.0.1"], { timeoutMs: 20_000 });
      const line = r.stdout.split("\n").find((l) => l.includes("ssh-ed25519"));
      assert.ok(line, r.stderr);
      return line.split(" ").slice(1).join(" ");
    });
    assert.equal(scanned[1], scanned[0]);
    assert.equal(await db.oidcPayload.count({ where: { model: "CertbridgeSshHostKey" } }), 1);
  });

  test("concurrent revocations through both instances: one CRL writer, strictly increasing numbers, the last CRL lists them all", async () => {
    const users = await db.certificate.findMany({ where: { kind: "user", status: "valid" }, select: { id: true, serialHex: true } });
    assert.ok(users.length >= 3, `${users.length} user certificates`);
    const firstNumber = (await db.crlRecord.findFirst({ orderBy: { number: "desc" }, select: { number: true } }))?.number ?? 0;
    const outcomes = await Promise.all(
      users.map((u, i) => post(alice, i % 2 ? b : a, `/admin/certificates/${u.id}/revocation`, { reason: "superseded", comment: `instance test ${i}`, confirm: "yes", csrf: alice.csrf! })),
    );
    for (const o of outcomes) assert.match(o.location, /revoked \(superseded\)/);
    const crls = await db.crlRecord.findMany({ where: { number: { gt: firstNumber } }, orderBy: { number: "asc" }, select: { number: true, issuedAt: true, thisUpdate: true, revokedCount: true } });
    assert.ok(crls.length >= users.length, `one CRL per revocation at least: ${crls.length}`);
    for (let i = 1; i < crls.length; i++) {
      assert.equal(crls[i]!.number, crls[i - 1]!.number + 1, "numbers follow each other");
      assert.ok(crls[i]!.issuedAt >= crls[i - 1]!.issuedAt, "a later number is never signed earlier");
      assert.ok(crls[i]!.revokedCount >= crls[i - 1]!.revokedCount, "a later number never lists less");
    }
    // both instances serve the same, newest CRL, signed by the CA, listing every revoked serial
    const crlOf = async (i: Instance) => Buffer.from(await (await fetch(`${i.url}/ca/crl.der`)).arrayBuffer());
    const [crlA, crlB] = [await crlOf(a), await crlOf(b)];
    assert.ok(crlA.equals(crlB));
    const crlFile = path.join(dirB, "crl.der");
    fs.writeFileSync(crlFile, crlA);
    // openssl reports the signature check on stderr: both streams, in order
    const text = run("sh", ["-c", 'openssl crl -inform DER -in "$1" -noout -text -CAfile "$2" 2>&1', "sh", crlFile, path.join(dirB, "ca", "ca.pem")]);
    assert.equal(text.status, 0, text.stdout);
    assert.match(text.stdout, /verify OK/);
    assert.match(text.stdout, new RegExp(`CRL Number:[^\\n]*\\n\\s*${crls[crls.length - 1]!.number}\\b`));
    for (const u of users) assert.match(text.stdout, new RegExp(`Serial Number: 0*${u.serialHex}`, "i"));
  });

  test("the scheduled jobs run in one instance; when it is killed the other takes over and runs them", async () => {
    const leaderA = `${LEADER_APPLICATION_NAME} pid=${a.child.pid}`;
    const leaderB = `${LEADER_APPLICATION_NAME} pid=${b.child.pid}`;
    assert.equal(await waitFor("a leader", jobsLeader), leaderA, "the first instance started leads");
    assert.match(a.output(), /jobs: this instance .* is the leader/);
    assert.doesNotMatch(b.output(), /is the leader|CRL #\d+ signed/, "the follower runs no job");
    const before = (await db.crlRecord.findFirst({ orderBy: { number: "desc" }, select: { number: true } }))!.number;

    await a.kill("SIGKILL");
    // The CRL is now due (less than a third of its lifetime left): the new leader re-signs it at once.
    await sql.query(`UPDATE "CrlRecord" SET "nextUpdate" = now() + interval '1 minute' WHERE "number" = $1`, [before]);
    assert.equal(await waitFor("B to take over", async () => ((await jobsLeader()) === leaderB ? leaderB : null)), leaderB);
    await waitFor("the new leader to re-sign the CRL", async () => new RegExp(`CRL #${before + 1} signed`).test(b.output()));
    assert.equal(await db.crlRecord.count({ where: { number: { gt: before } } }), 1, "once");
    assert.match(b.output(), /jobs: this instance .* is the leader/);
    // and B still serves
    const crl = await fetch(`${b.url}/ca/crl.der`);
    assert.equal(crl.status, 200);
    assert.equal(crl.headers.get("etag")?.endsWith(`-${before + 1}"`), true);

    // A leader whose database session is cut steps down at once, then takes the lock again (nobody else is left).
    await sql.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [leaderB]);
    await waitFor("B to notice", async () => /jobs: no longer the leader/.test(b.output()));
    await waitFor("B to lead again", async () => (await jobsLeader()) === leaderB);
    assert.equal(b.output().match(/jobs: this instance .* is the leader/g)?.length, 2);
  });
});
