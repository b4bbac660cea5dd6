/**
 * End to end against a third-party OpenID provider: Glewlwyd 2.7 (Debian's `glewlwyd`, an
 * independent C implementation; test/glewlwyd.ts starts it on 127.0.0.1 with its own SQLite
 * database). The portal runs as in production (server entry, built Next app) with Glewlwyd as its
 * upstream IdP: sign-in with each token endpoint authentication method, claims to DN and VO
 * memberships on /account, a proxy checked with voms-proxy-info, and every failure the issue names
 * — wrong secret, wrong client id, the IdP down before the first login and after — each with its own
 * log line, audit event and page.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { Glewlwyd, glewlwydAvailable, type GlewlwydUser } from "./glewlwyd";
import { startPortalServer, Browser, type PortalServer } from "./portalHarness";
import { ROOT, run } from "./helpers";

/** Every RFC 3986 unreserved and sub-delim character, plus ":" and "@" (what breaks non-decoding Basic). */
const SECRET = "AZaz09-._~!$&'()*+,;=:@";
const ADMIN = "urn:mace:egi.eu:group:certbridge-admins:role=member#aai.egi.eu";

const USERS: GlewlwydUser[] = [
  {
    username: "alice",
    password: "alice-password-1",
    name: "Alice Example",
    email: "alice@example.org",
    idp_name: "Example University",
    eduperson_unique_id: "alice-7f3c@example.org",
    eduperson_entitlement: ["urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu", "urn:mace:egi.eu:group:biomed:lab1:role=member#aai.egi.eu", "urn:mace:egi.eu:group:biomed:role=pilot#aai.egi.eu", ADMIN],
  },
  {
    username: "bob",
    password: "bob-password-1",
    given_name: "Bob",
    family_name: "Ünlü",
    email: "bob@example.org",
    idp_name: "Example Institute of Physics",
    eduperson_entitlement: ["urn:mace:egi.eu:group:atlas:role=member#aai.egi.eu"],
  },
  { username: "zoe", password: "zoe-password-1", given_name: "Zoë", family_name: "Łukasiewicz", email: "zoe@example.org", idp_name: "University of Warsaw", eduperson_entitlement: [] },
];

const unavailable = glewlwydAvailable() ? false : "glewlwyd is not installed (apt-get install glewlwyd sqlite3, see scripts/setup.sh)";

let g: Glewlwyd;
const portals: PortalServer[] = [];
const dbs: Db[] = [];

before(async () => {
  if (unavailable) return;
  g = await Glewlwyd.start();
  for (const u of USERS) await g.addUser(u);
});
after(async () => {
  for (const d of dbs) await d.$disconnect();
  for (const p of portals) await p.cleanup();
  await g?.cleanup();
});

/** A portal with Glewlwyd as its upstream; the client is registered at Glewlwyd by `register` once the portal's URL is known. */
async function portalWith(env: Record<string, string>, register?: (callback: string, portalUrl: string) => Promise<void>) {
  const p = await startPortalServer({
    CERTBRIDGE_UPSTREAM_ISSUER: g.issuer,
    CERTBRIDGE_UPSTREAM_SCOPES: "openid profile email eduperson_entitlement",
    CERTBRIDGE_VOS_FILE: "examples/vos.json",
    CERTBRIDGE_ADMIN_ENTITLEMENTS: ADMIN,
    CERTBRIDGE_UPSTREAM_PROBE_INTERVAL: "0",
    CERTBRIDGE_UPSTREAM_RETRIES: "1",
    CERTBRIDGE_UPSTREAM_TIMEOUT: "5",
    ...env,
  });
  portals.push(p);
  await register?.(`${p.url}/interaction/callback`, p.url);
  const db = await openDatabase(loadConfig(p.env, () => {}).databaseUrl);
  dbs.push(db);
  return { p, db };
}

/** Sign in to the account console through Glewlwyd; stops at a portal page (the account, or an error). */
async function signIn(p: PortalServer, user: GlewlwydUser, browser = new Browser()) {
  const toIdp = await browser.go(`${p.url}/login?next=/account`, {}, (u) => u.startsWith(g.base));
  if (!toIdp.url.startsWith(g.base)) return { browser, page: toIdp, reachedIdp: false };
  const back = await g.authorize(toIdp.url, user.username, user.password);
  return { browser, page: await browser.go(back), reachedIdp: true };
}

/** The JSON log lines the portal wrote for upstream failures. */
function failureLines(p: PortalServer): Record<string, unknown>[] {
  return p
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes("upstream.login_failed"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function lastLoginFail(db: Db) {
  const e = await db.auditEvent.findFirst({ where: { action: "login.fail" }, orderBy: { at: "desc" } });
  assert.ok(e, "a login.fail audit event");
  return { ...e, details: JSON.parse(e.details) as Record<string, unknown> };
}

/** The failure's page, log line and audit event agree on reason and reference; nothing secret is logged. */
async function expectFailure(p: PortalServer, db: Db, page: { status: number; html: string }, reason: string, status: number, text: RegExp) {
  assert.equal(page.status, status, page.html.slice(0, 400));
  assert.match(page.html, text);
  assert.match(page.html, /<h1>Sign-in could not be completed<\/h1>/, "the error edge's page");
  const ref = /reference ([0-9a-f]{12})/i.exec(page.html)?.[1];
  assert.ok(ref, "the page gives a reference");
  const line = failureLines(p).find((l) => l.ref === ref);
  assert.ok(line, `a log line with reference ${ref}:\n${p.output().slice(-2000)}`);
  assert.equal(line.reason, reason);
  assert.equal(line.idp, g.issuer);
  const audit = await lastLoginFail(db);
  assert.equal(audit.details.reason, reason);
  assert.equal(audit.details.ref, ref);
  assert.equal(audit.details.idp, g.issuer);
  assert.equal(audit.outcome, "failure");
  assert.doesNotMatch(p.output(), /AZaz09|code=/, "no secret and no authorization code in the log");
  return line;
}

describe("Glewlwyd as the upstream IdP", { skip: unavailable, timeout: 300_000 }, () => {
  let post: { p: PortalServer; db: Db };

  test("client_secret_post with a secret of every unreserved and sub-delim character: claims to DN, VO memberships, admin by entitlement, a proxy voms-proxy-info reads", async () => {
    post = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-post", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post" }, (cb) =>
      g.addClient({ client_id: "portal-post", client_secret: SECRET, redirect_uri: [cb], token_endpoint_auth_method: ["client_secret_post"] }),
    );
    const health = (await (await fetch(`${post.p.url}/api/health`)).json()) as { upstream: { metadata: string; issuer: string } };
    assert.equal(health.upstream.issuer, g.issuer);
    assert.equal(health.upstream.metadata, "fresh", "discovery fetched at start");

    const { browser, page } = await signIn(post.p, USERS[0]!);
    assert.equal(page.status, 200, page.html.slice(0, 500));
    assert.match(page.url, /\/account$/);
    assert.match(page.html, /\/O=Example University\/CN=Alice Example/);
    assert.match(page.html, /<strong>biomed<\/strong>/);
    // FQANs as the AC carries them (the VOMS long form).
    for (const f of ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL", "/biomed/Role=pilot/Capability=NULL"]) assert.match(page.html, new RegExp(`<code>${f}(<!-- -->)? </code>`), f);
    assert.equal((await browser.go(`${post.p.url}/admin`)).status, 200, "administrator by entitlement");
    const login = await post.db.auditEvent.findFirst({ where: { action: "console.login" }, orderBy: { at: "desc" } });
    assert.match(login?.details ?? "", new RegExp(g.issuer.replace(/[/.]/g, "\\$&")));

    // "Get a proxy now", then voms-proxy-info with the portal's trust material.
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)?.[1];
    assert.ok(csrf);
    const cookie = (browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(`${post.p.url}/account/proxy`));
    const res = await fetch(`${post.p.url}/account/proxy`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie, origin: post.p.url },
      body: new URLSearchParams({ csrf, lifetime: "12h", vo: "biomed:/biomed/Role=pilot", acknowledge: "yes" }),
    });
    assert.equal(res.status, 200, res.headers.get("location") ?? "");
    const file = path.join(post.p.dir, "glewlwyd-proxy.pem");
    fs.writeFileSync(file, await res.text(), { mode: 0o600 });
    const vomsdir = path.join(post.p.dir, "gl-vomsdir");
    fs.mkdirSync(path.join(vomsdir, "biomed"), { recursive: true });
    fs.writeFileSync(path.join(vomsdir, "biomed", "voms.certbridge.example.lsc"), await (await fetch(`${post.p.url}/voms/biomed.lsc`)).text());
    const trust = path.join(post.p.dir, "certificates");
    const bundle = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: post.p.env });
    assert.equal(bundle.status, 0, bundle.stderr);
    const info = run("voms-proxy-info", ["-all", "-file", file], { env: { X509_CERT_DIR: trust, X509_VOMS_DIR: vomsdir } });
    assert.equal(info.status, 0, `${info.stderr}\n${fs.readFileSync(file, "utf8").slice(0, 200)}`);
    assert.match(info.stdout, /subject\s*: .*\/O=Example University\/CN=Alice Example/);
    assert.deepEqual([...info.stdout.matchAll(/attribute : (.+)/g)].map((m) => m[1]), ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
  });

  test("client_secret_basic: the RFC 6749 form-encoded secret is refused by Glewlwyd (found before the person is sent there: named, logged, audited); CERTBRIDGE_UPSTREAM_BASIC_ENCODING=raw signs in", async () => {
    const register = (cb: string) => g.addClient({ client_id: "portal-basic", client_secret: SECRET, redirect_uri: [cb], token_endpoint_auth_method: ["client_secret_basic"] });
    const form = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-basic", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET }, register);
    const refused = await signIn(form.p, USERS[1]!);
    assert.equal(refused.reachedIdp, false, "never sent to sign in where the portal will be refused");
    const line = await expectFailure(form.p, form.db, refused.page, "client_credentials_refused", 502, /not something you can fix: please contact the operator/);
    assert.equal(line.stage, "preflight");
    assert.equal(line.tokenAuth, "client_secret_basic");
    assert.equal(line.error, "unauthorized_client", "Glewlwyd's own error code is in the log");
    const health = (await (await fetch(`${form.p.url}/api/health`)).json()) as { upstream: { clientAuth: string; lastError: { reason: string } } };
    assert.equal(health.upstream.clientAuth, "refused");
    assert.equal(health.upstream.lastError.reason, "client_credentials_refused");

    const raw = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-basic", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET, CERTBRIDGE_UPSTREAM_BASIC_ENCODING: "raw" }, (cb) =>
      g.updateRedirects("portal-basic", [cb]),
    );
    const { page } = await signIn(raw.p, USERS[1]!);
    assert.equal(page.status, 200, page.html.slice(0, 500));
    assert.match(page.html, /<td>Bob Ünlü<\/td>/, "UTF-8 claims through Glewlwyd");
    assert.match(page.html, /\/O=Example Institute of Physics\/CN=Bob Unlu /);
    assert.match(page.html, /<strong>atlas<\/strong>/);
    const health2 = (await (await fetch(`${raw.p.url}/api/health`)).json()) as { upstream: { clientAuth: string } };
    assert.equal(health2.upstream.clientAuth, "accepted");
  });

  test("private_key_jwt: the portal's generated key, published at /upstream/jwks.json and registered as the client's jwks_uri", async () => {
    const pkj = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-pkj", CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "private_key_jwt" }, (cb, url) =>
      g.addClient({ client_id: "portal-pkj", redirect_uri: [cb], token_endpoint_auth_method: ["private_key_jwt"], jwks_uri: `${url}/upstream/jwks.json` }),
    );
    const jwks = (await (await fetch(`${pkj.p.url}/upstream/jwks.json`)).json()) as { keys: { kty: string; kid: string; d?: string }[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kty, "RSA");
    assert.equal(jwks.keys[0]!.d, undefined, "public part only");
    const { page } = await signIn(pkj.p, USERS[2]!);
    assert.equal(page.status, 200, page.html.slice(0, 500));
    assert.match(page.html, /\/O=University of Warsaw\/CN=Zoe Lukasiewicz /);
    assert.match(page.html, /asserted no VO memberships/);
  });

  test("max_age: sent to Glewlwyd, whose ID tokens carry auth_time 0 (so no login is recent enough): named, logged, audited", async () => {
    const strict = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-max-age", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post", CERTBRIDGE_UPSTREAM_MAX_AGE: "1h" }, (cb) =>
      g.addClient({ client_id: "portal-max-age", client_secret: SECRET, redirect_uri: [cb], token_endpoint_auth_method: ["client_secret_post"] }),
    );
    const browser = new Browser();
    const toIdp = await browser.go(`${strict.p.url}/login?next=/account`, {}, (u) => u.startsWith(g.base));
    assert.equal(new URL(toIdp.url).searchParams.get("max_age"), "3600");
    const page = await browser.go(await g.authorize(toIdp.url, "alice", USERS[0]!.password));
    const line = await expectFailure(strict.p, strict.db, page, "id_token_auth_time", 403, /needs a recent sign-in/);
    assert.equal(line.stage, "id_token");
    assert.equal(line.claim, "auth_time");
  });

  test("a wrong client secret: Glewlwyd's refusal of the portal is found before the person leaves, logged with its error, audited, and the page sends the person to the operator", async () => {
    const wrong = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-post", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: "not-the-secret", CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post" }, (cb) =>
      g.updateRedirects("portal-post", [cb]),
    );
    assert.match(wrong.p.output(), /"event":"upstream.client_auth_refused"/, "said at start-up");
    const { page, reachedIdp } = await signIn(wrong.p, USERS[0]!);
    assert.equal(reachedIdp, false);
    const line = await expectFailure(wrong.p, wrong.db, page, "client_credentials_refused", 502, /not something you can fix: please contact the operator/);
    assert.equal(line.error, "unauthorized_client");
    assert.equal(line.status, 403);
    assert.equal(line.clientId, "portal-post");
    assert.doesNotMatch(wrong.p.output(), /not-the-secret/);
  });

  test("a wrong client id: Glewlwyd would stop the person at its own 403 (RFC 6749 §4.1.2.1: no redirect back); the portal finds it first", async () => {
    const wrong = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "no-such-client", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post" });
    const stranded = await fetch(`${g.issuer}/auth?response_type=code&client_id=no-such-client&scope=openid&state=s&nonce=n&redirect_uri=${encodeURIComponent(`${wrong.p.url}/interaction/callback`)}`, { redirect: "manual" });
    assert.equal(stranded.status, 403, "what the person would see at the IdP");
    const { page, reachedIdp } = await signIn(wrong.p, USERS[0]!);
    assert.equal(reachedIdp, false);
    const line = await expectFailure(wrong.p, wrong.db, page, "client_credentials_refused", 502, /contact the operator/);
    assert.equal(line.clientId, "no-such-client");
    assert.equal(line.error, "unauthorized_client");
    // The IdP's own refusal, if a person does come back with it, is named too.
    const browser = new Browser();
    const again = await browser.go(`${wrong.p.url}/login?next=/account`);
    assert.equal(again.status, 502);
  });

  test("the IdP down before the first login: a styled 503 page, not a browser error at the IdP, and readiness says metadata is missing", async () => {
    await g.stop();
    try {
      const cold = await portalWith({ CERTBRIDGE_UPSTREAM_CLIENT_ID: "portal-post", CERTBRIDGE_UPSTREAM_CLIENT_SECRET: SECRET, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post" });
      const health = (await (await fetch(`${cold.p.url}/api/health`)).json()) as { upstream: { metadata: string; lastError: { reason: string } | null } };
      assert.equal(health.upstream.metadata, "missing");
      for (let i = 0; i < 50 && !cold.p.output().includes("upstream.discovery_failed"); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(cold.p.output(), /"event":"upstream.discovery_failed".*"reason":"idp_unreachable"/, "said at start-up");
      const { page, reachedIdp } = await signIn(cold.p, USERS[0]!);
      assert.equal(reachedIdp, false, "the browser is never sent to an IdP that does not answer");
      const line = await expectFailure(cold.p, cold.db, page, "idp_unreachable", 503, /cannot be reached/);
      assert.equal(line.stage, "discovery");
      assert.match(String(line.transport), /ECONNREFUSED/);
    } finally {
      await g.run();
    }
  });

  test("the IdP going down after a first login: the next login gets the styled page, the token step too, and readiness says stale", async () => {
    const { p, db } = post;
    assert.equal((await signIn(p, USERS[0]!)).page.status, 200, "works while the IdP is up");
    // Down between leaving for the IdP and coming back: the token request fails in transport.
    const browser = new Browser();
    const toIdp = await browser.go(`${p.url}/login?next=/account`, {}, (u) => u.startsWith(g.base));
    const back = await g.authorize(toIdp.url, "alice", USERS[0]!.password);
    await g.stop();
    try {
      const tokenStep = await browser.go(back);
      const t = await expectFailure(p, db, tokenStep, "idp_unreachable", 503, /cannot be reached/);
      assert.equal(t.stage, "token");
      const { page, reachedIdp } = await signIn(p, USERS[0]!);
      assert.equal(reachedIdp, false);
      const d = await expectFailure(p, db, page, "idp_unreachable", 503, /cannot be reached/);
      assert.equal(d.stage, "discovery");
      const health = (await (await fetch(`${p.url}/api/health`)).json()) as { upstream: { metadata: string; lastError: { reason: string } } };
      assert.equal(health.upstream.metadata, "stale");
      assert.equal(health.upstream.lastError.reason, "idp_unreachable");
    } finally {
      await g.run();
    }
    assert.equal((await signIn(p, USERS[0]!)).page.status, 200, "and recovers when the IdP is back");
  });
});
