/**
 * The portal's edges: configuration refused at start, upstream failures shown
 * as clear pages, IdP hints passed on, the MasterPortal scope, and the audit
 * record of each /getproxy call.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { opensslCsr, testEnvironment, ROOT } from "./helpers";
import { startPortalServer, loginThroughPortal, redeem, Browser, GATEWAY, freePort, type PortalServer } from "./portalHarness";
import * as client from "openid-client";
import { loadConfig } from "../lib/config";
import { servingExecArgv } from "../lib/nodeFlags";
import { childrenOf } from "../bench/lib/proc";
import { openDatabase, type Db } from "../lib/db";

let portal: PortalServer;
let db: Db;

before(async () => {
  portal = await startPortalServer();
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

function startServerExpectingFailure(env: Record<string, string>) {
  return spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "server.ts")], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
}

describe("configuration is checked before the portal starts", () => {
  test("a bad setting stops the start with a message naming it", async () => {
    const t = await testEnvironment();
    try {
      const r = startServerExpectingFailure({ ...t.env, CERTBRIDGE_PORT: "eighty", CERTBRIDGE_PUBLIC_URL: "ftp://portal" });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /invalid configuration: .*CERTBRIDGE_PUBLIC_URL.*CERTBRIDGE_PORT|invalid configuration: .*CERTBRIDGE_PORT.*CERTBRIDGE_PUBLIC_URL/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    } finally {
      await t.cleanup();
    }
  });

  test("a port already in use: one line naming the port and the variable, exit status 1 (one process or workers)", async () => {
    const port = new URL(portal.url).port;
    for (const workers of ["1", "2"]) {
      const t = await testEnvironment();
      try {
        const r = startServerExpectingFailure({ ...t.env, CERTBRIDGE_PORT: port, CERTBRIDGE_WORKERS: workers });
        assert.equal(r.status, 1, `workers=${workers}: ${r.stderr}`);
        const lines = r.stderr.split("\n").filter((l) => /already in use/.test(l));
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, new RegExp(`^certbridge: port ${port} on localhost is already in use .*set CERTBRIDGE_PORT to a free port$`));
        assert.doesNotMatch(r.stderr, /\n\s+at |EADDRINUSE/, "no stack trace");
      } finally {
        await t.cleanup();
      }
    }
  });

  test("the SSH port in use names CERTBRIDGE_SSH_PORT", async () => {
    const t = await testEnvironment();
    const blocker = net.createServer().listen(0, "localhost");
    await once(blocker, "listening");
    try {
      const sshPort = String((blocker.address() as net.AddressInfo).port);
      const r = startServerExpectingFailure({ ...t.env, CERTBRIDGE_PORT: String(await freePort()), CERTBRIDGE_SSH_PORT: sshPort });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`certbridge: port ${sshPort} on localhost is already in use .*set CERTBRIDGE_SSH_PORT to a free port`));
    } finally {
      blocker.close();
      await t.cleanup();
    }
  });

  test("CERTBRIDGE_PORT alone: the public URL, the issuer and the development IdP follow the port", async () => {
    const only = await startPortalServer({ CERTBRIDGE_PUBLIC_URL: "" });
    try {
      const port = new URL(only.url).port;
      const discovery = (await (await fetch(`${only.url}/.well-known/openid-configuration`)).json()) as { issuer: string };
      assert.equal(discovery.issuer, `http://localhost:${port}`);
      const browser = new Browser();
      const page = await browser.go(`${only.url}/login?next=/account`);
      assert.equal(page.status, 200);
      const idp = browser.visited.find((u) => u.includes("/dev-idp/"));
      assert.ok(idp, browser.visited.join("\n"));
      assert.equal(new URL(idp).origin, `http://localhost:${port}`, "the sign-in goes to this portal's development IdP");
      assert.doesNotMatch(only.output(), /names port/);
    } finally {
      await only.cleanup();
    }
  });

  test("a loopback public URL on another port than the listen port warns at start", async () => {
    const other = await freePort();
    const mismatched = await startPortalServer({ CERTBRIDGE_PUBLIC_URL: `http://localhost:${other}` });
    try {
      assert.match(mismatched.output(), new RegExp(`warning: CERTBRIDGE_PUBLIC_URL http://localhost:${other} names port ${other} on this machine, but the portal listens on ${new URL(mismatched.url).port}`));
    } finally {
      await mismatched.cleanup();
    }
  });

  test("the development IdP refuses to run under NODE_ENV=production unless allowed", async () => {
    const t = await testEnvironment();
    try {
      const r = startServerExpectingFailure({ ...t.env, NODE_ENV: "production" });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /CERTBRIDGE_UPSTREAM_ISSUER must be set when NODE_ENV=production/);
    } finally {
      await t.cleanup();
    }
  });
});

describe("upstream problems are clear pages, never stack traces", () => {
  /** Start a flow and stop at the redirect to the IdP; returns its URL and the browser holding the cookies. */
  async function leaveForIdp(extra: Record<string, string> = {}) {
    const browser = new Browser();
    const config = await client.discovery(new URL(portal.url), GATEWAY.id, GATEWAY.secret, client.ClientSecretBasic(GATEWAY.secret), { execute: [client.allowInsecureRequests] });
    const auth = client.buildAuthorizationUrl(config, {
      redirect_uri: GATEWAY.redirect,
      scope: "openid proxy",
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
      state: "s",
      ...extra,
    });
    const loginPage = await browser.go(auth.href);
    const idp = await browser.submit(loginPage, /\/login$/, {}, (u) => u.includes("/dev-idp/"));
    return { browser, idpUrl: new URL(idp.url) };
  }

  test("idp_hint and login_hint from the gateway are passed on to the IdP", async () => {
    const { idpUrl } = await leaveForIdp({ idp_hint: "https://idp.example.org/idp/shibboleth", login_hint: "alice@example.org" });
    assert.equal(idpUrl.searchParams.get("idp_hint"), "https://idp.example.org/idp/shibboleth");
    assert.equal(idpUrl.searchParams.get("login_hint"), "alice@example.org");
    assert.ok(idpUrl.searchParams.get("code_challenge"), "the portal uses PKCE upstream too");
    assert.ok(idpUrl.searchParams.get("nonce"));
  });

  test("the user cancelling at the IdP", async () => {
    const { browser, idpUrl } = await leaveForIdp();
    const page = await browser.go(`${portal.url}/interaction/callback?error=access_denied&state=${idpUrl.searchParams.get("state")}&iss=${encodeURIComponent(`${portal.url}/dev-idp`)}`);
    assert.equal(page.status, 403);
    assert.match(page.html, /You cancelled the sign-in at your identity provider/);
  });

  test("a callback with the wrong state", async () => {
    const { browser } = await leaveForIdp();
    const page = await browser.go(`${portal.url}/interaction/callback?code=abc&state=forged&iss=${encodeURIComponent(`${portal.url}/dev-idp`)}`);
    assert.equal(page.status, 400);
    assert.match(page.html, /could not be verified/);
    assert.doesNotMatch(page.html, /at .*\.ts:\d+/);
    // The operator's side: one JSON line and a login.fail event with the same reference, naming the gateway.
    const ref = /Reference ([0-9a-f]{12})/.exec(page.html)?.[1];
    assert.ok(ref);
    const event = await db.auditEvent.findFirst({ where: { action: "login.fail" }, orderBy: { at: "desc" } });
    const details = JSON.parse(event!.details) as { reason: string; ref: string; stage: string };
    assert.equal(details.reason, "state_mismatch");
    assert.equal(details.ref, ref);
    assert.equal(event!.clientId, GATEWAY.id);
    assert.equal(event!.outcome, "failure");
    const line = portal.output().split("\n").find((l) => l.includes(`"ref":"${ref}"`));
    assert.ok(line);
    assert.equal((JSON.parse(line) as { reason: string }).reason, "state_mismatch");
  });

  test("a callback without the login cookie (another browser, or cookies blocked)", async () => {
    const page = await new Browser().go(`${portal.url}/interaction/callback?code=abc&state=x`);
    assert.equal(page.status, 400);
    assert.match(page.html, /sign-in session has expired or cookies are blocked/);
  });

  test("an unreachable upstream OP", async () => {
    const closed = await freePort();
    const other = await startPortalServer({
      CERTBRIDGE_UPSTREAM_ISSUER: `http://127.0.0.1:${closed}`,
      CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal",
      CERTBRIDGE_UPSTREAM_CLIENT_SECRET: "upstream-secret",
    });
    try {
      const browser = new Browser();
      const config = await client.discovery(new URL(other.url), GATEWAY.id, GATEWAY.secret, client.ClientSecretBasic(GATEWAY.secret), { execute: [client.allowInsecureRequests] });
      const auth = client.buildAuthorizationUrl(config, { redirect_uri: GATEWAY.redirect, scope: "openid proxy", code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256", state: "s" });
      const loginPage = await browser.go(auth.href);
      assert.doesNotMatch(loginPage.html, /Development mode/, "no development banner with a real upstream");
      const page = await browser.submit(loginPage, /\/login$/, {});
      assert.equal(page.status, 503);
      assert.match(page.html, /identity provider at http:\/\/127\.0\.0\.1:\d+ cannot be reached/);
    } finally {
      await other.cleanup();
    }
  });
});

describe("the MasterPortal scope and the audit record", () => {
  test("a token with edu.uiuc.ncsa.myproxy.getcert gets a proxy, and the call is audited with user, client, serial, lifetime, key source and IP", async () => {
    const t = await redeem(await loginThroughPortal(portal.url, { scope: "openid edu.uiuc.ncsa.myproxy.getcert" }));
    const csr = opensslCsr(portal.dir, "mp");
    const res = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${t.access_token}` }, body: new URLSearchParams({ certreq: csr.csrPem, proxylifetime: "3600" }) });
    assert.equal(res.status, 200);
    const serial = Number(res.headers.get("x-proxy-serial"));
    const event = await db.auditEvent.findFirst({ where: { action: "proxy.issue", clientId: GATEWAY.id }, orderBy: { at: "desc" }, select: { actor: true, ip: true, identityId: true, certificateId: true, details: true } });
    assert.ok(event);
    const details = JSON.parse(event.details) as { serial: number; keySource: string; lifetimeSeconds: number };
    assert.equal(details.serial, serial);
    assert.equal(details.keySource, "csr");
    assert.equal(details.lifetimeSeconds, 3600);
    assert.equal(event.actor, `client:${GATEWAY.id}`);
    assert.match(event.ip ?? "", /127\.0\.0\.1|::1/);
    assert.ok(event.identityId && event.certificateId);
  });
});

describe("revocation between two calls", () => {
  test("a user certificate revoked by another process (as another instance would) never signs the next proxy, although the token is reused", async () => {
    const t = await redeem(await loginThroughPortal(portal.url));
    const csr = opensslCsr(portal.dir, "revoked-between");
    const get = async () => {
      const res = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${t.access_token}` }, body: new URLSearchParams({ certreq: csr.csrPem }) });
      assert.equal(res.status, 200);
      const pem = await res.text();
      return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)![1]!;
    };
    const first = await get();
    const signer = await db.certificate.findFirst({ where: { kind: "user", pem: { startsWith: first } }, select: { id: true, status: true } });
    assert.equal(signer?.status, "valid");
    await db.certificate.update({ where: { id: signer!.id }, data: { status: "revoked", revokedAt: new Date(), revocationReason: 1 } });
    const second = await get();
    assert.notEqual(second, first, "a new user certificate signs");
    assert.equal((await db.certificate.findFirst({ where: { kind: "user", pem: { startsWith: second } }, select: { status: true } }))?.status, "valid");
  });
});

describe("several worker processes", () => {
  test("with CERTBRIDGE_WORKERS=2 every flow works whichever worker answers (state, keys and the dev IdP are shared)", async () => {
    const multi = await startPortalServer({ CERTBRIDGE_WORKERS: "2" });
    try {
      const csr = opensslCsr(multi.dir, "multi");
      for (let i = 0; i < 4; i++) {
        const t = await redeem(await loginThroughPortal(multi.url, { browser: new Browser() }));
        const refreshed = await client.refreshTokenGrant(await gatewayConfigFor(multi.url), t.refresh_token!);
        const res = await fetch(`${multi.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${refreshed.access_token}` }, body: new URLSearchParams({ certreq: csr.csrPem }) });
        assert.equal(res.status, 200);
      }
      assert.match(multi.output(), /2 workers/);
      // The workers run with the serving flags (lib/nodeFlags.ts), not only the primary's own.
      const workers = childrenOf(multi.process()!.pid!).map((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"));
      assert.equal(workers.length, 2, JSON.stringify(workers));
      for (const argv of workers) {
        assert.deepEqual(argv.slice(1, 1 + servingExecArgv([]).length), servingExecArgv([]), argv.join(" "));
        assert.ok(argv.includes("--max-old-space-size=256"), `the default heap ceiling: ${argv.join(" ")}`);
      }
    } finally {
      await multi.cleanup();
    }
  });
});

const gatewayConfigFor = (url: string) =>
  client.discovery(new URL(url), GATEWAY.id, GATEWAY.secret, client.ClientSecretBasic(GATEWAY.secret), { execute: [client.allowInsecureRequests] });
