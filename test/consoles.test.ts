/**
 * The consoles' server side over real HTTP, against the production server
 * entry: who may do what (sessions, CSRF, the admin role decided per
 * request), that refused and invalid submissions change nothing, and that
 * each admin action has the effect it claims at /getproxy, the token
 * endpoint and the audit log. test/postgresPortal.test.ts runs it on PostgreSQL.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { decodeCertificate } from "../lib/inspect/certificate";
import { pemBlocks } from "../lib/pki/der";
import { isAdministrator, safeReturnPath } from "../lib/console/session";
import { FormMemory } from "../lib/console/forms";
import { certificatesOf } from "./helpers";
import { startPortalServer, loginThroughPortal, redeem, consoleLogin, gatewayConfig, Browser, GATEWAY, OTHER_GATEWAY, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let db: Db;
let alice: Awaited<ReturnType<typeof consoleLogin>>;
let bob: Awaited<ReturnType<typeof consoleLogin>>;

const OTHER_SCOPE = "openid profile offline_access proxy";

before(async () => {
  portal = await startPortalServer();
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  alice = await consoleLogin(portal.url, "alice", "/account");
  bob = await consoleLogin(portal.url, "bob", "/account");
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

/** POST a console form as a signed-in browser; returns the status and where it was sent. */
async function post(who: { browser: Browser } | null, path: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  const cookie = who ? ((who.browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(portal.url + path))) : "";
  const res = await fetch(portal.url + path, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie, ...headers }, body });
  const location = res.headers.get("location") ?? "";
  return { status: res.status, location, text: await res.text(), headers: res.headers, flash: formFlashOf(res.headers, location) };
}

/** A refused form's one-shot cookie (message, field, typed values), opened with the portal's key. */
function formFlashOf(headers: Headers, location: string) {
  const sealed = /certbridge_form=([^;]+)/.exec(headers.get("set-cookie") ?? "")?.[1];
  if (!sealed || !location) return null;
  return new FormMemory(loadConfig(portal.env, () => {}).kek, false).recall(sealed, new URL(location, portal.url).pathname);
}

const clientStatus = async (id: string) => (await db.gatewayClient.findUnique({ where: { id }, select: { status: true } }))?.status;
const auditCount = (action: string) => db.auditEvent.count({ where: { action } });

describe("who may use the consoles", () => {
  test("without a session, pages send the browser to sign in and come back; mutations go the same way", async () => {
    for (const path of ["/admin", "/admin/certificates", "/account"]) {
      const res = await fetch(portal.url + path, { redirect: "manual" });
      assert.equal(res.status, 307, path);
      assert.equal(res.headers.get("location"), `/login?next=${encodeURIComponent(path)}`);
    }
    const r = await post(null, `/admin/clients/${GATEWAY.id}/action/suspend`, { reason: "no session" });
    assert.equal(r.status, 303);
    assert.match(r.location, /^\/login\?next=/);
    assert.equal(await clientStatus(GATEWAY.id), "active");
  });

  test("a person who is not an administrator gets 403 pages and 403 for every admin action, even with their own valid CSRF token", async () => {
    assert.ok(bob.csrf);
    for (const path of ["/admin", "/admin/clients", "/admin/audit", "/admin/audit/export?format=csv", "/admin/clients/new"]) {
      assert.equal((await bob.browser.go(portal.url + path)).status, 403, path);
    }
    const refusedBefore = await auditCount("admin.refuse");
    const attempts: [string, Record<string, string>][] = [
      [`/admin/clients/${GATEWAY.id}/action/suspend`, { reason: "take over" }],
      [`/admin/clients/${GATEWAY.id}/action/rotate`, { reason: "take over" }],
      [`/admin/clients/${GATEWAY.id}/action/delete`, { reason: "take over", confirm: GATEWAY.id }],
      ["/admin/clients/register", { name: "Evil", type: "public", redirect_uris: "https://evil.example/cb", scopes: "proxy", max_lifetime: "1d", reason: "take over" }],
    ];
    for (const [path, form] of attempts) {
      const r = await post(bob, path, { ...form, csrf: bob.csrf! });
      assert.equal(r.status, 403, path);
      assert.match(r.text, /Only administrators/);
    }
    assert.equal(await clientStatus(GATEWAY.id), "active");
    assert.equal(await db.gatewayClient.count({ where: { name: "Evil" } }), 0);
    assert.equal(await auditCount("admin.refuse"), refusedBefore + attempts.length);
  });

  test("an administrator's form without the session's CSRF token, or from another origin, is refused and changes nothing", async () => {
    const path = `/admin/clients/${GATEWAY.id}/action/suspend`;
    assert.equal((await post(alice, path, { reason: "csrf test" })).status, 403);
    assert.equal((await post(alice, path, { reason: "csrf test", csrf: bob.csrf! })).status, 403);
    assert.equal((await post(alice, path, { reason: "csrf test", csrf: alice.csrf! }, { origin: "https://evil.example" })).status, 403);
    assert.equal(await clientStatus(GATEWAY.id), "active");
  });

  test("a forged or expired session cookie is no session", async () => {
    const res = await fetch(`${portal.url}/account`, { redirect: "manual", headers: { cookie: "certbridge_session=AAAA" } });
    assert.equal(res.status, 307);
  });

  test("administrators are the configured subs or entitlement holders (table)", () => {
    const policy = { adminSubs: ["alice"], adminEntitlements: ["urn:mace:egi.eu:group:certbridge:role=admin#aai.egi.eu"] };
    const cases: [string, Record<string, unknown>, boolean][] = [
      ["alice", {}, true],
      ["bob", {}, false],
      ["bob", { eduperson_entitlement: ["urn:mace:egi.eu:group:certbridge:role=admin#aai.egi.eu"] }, true],
      ["bob", { eduperson_entitlement: "urn:mace:egi.eu:group:certbridge:role=admin#aai.egi.eu" }, true],
      ["bob", { entitlements: ["urn:mace:egi.eu:group:certbridge:role=admin#aai.egi.eu"] }, true],
      ["bob", { eduperson_entitlement: ["urn:mace:egi.eu:group:certbridge:role=member#aai.egi.eu"] }, false],
      ["ALICE", {}, false],
    ];
    for (const [sub, claims, expected] of cases) assert.equal(isAdministrator(policy, { sub, claims }), expected, `${sub} ${JSON.stringify(claims)}`);
    assert.equal(isAdministrator({ adminSubs: [], adminEntitlements: [] }, { sub: "alice", claims: {} }), false);
  });

  test("a sign-in only returns to paths on this portal (table)", () => {
    const cases: [string | null, string][] = [
      ["/admin/certificates?kind=user", "/admin/certificates?kind=user"],
      ["//evil.example/x", "/account"],
      ["/\\evil.example", "/account"],
      ["https://evil.example/", "/account"],
      ["admin", "/account"],
      ["/a b", "/account"],
      [null, "/account"],
    ];
    for (const [input, expected] of cases) assert.equal(safeReturnPath(input), expected, String(input));
  });

  test("the login endpoint refuses to send people elsewhere afterwards", async () => {
    const b = new Browser();
    let page = await b.go(`${portal.url}/login?next=${encodeURIComponent("https://evil.example/")}`);
    page = await b.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: "zoe" });
    assert.equal(new URL(page.url).pathname, "/account");
  });
});

describe("admin actions have their effect", () => {
  test("a suspended gateway's tokens stop working at /getproxy and the token endpoint; reactivation restores them", async () => {
    const tokens = await redeem(await loginThroughPortal(portal.url, { gw: OTHER_GATEWAY, scope: OTHER_SCOPE }));
    const proxy = () => fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal((await proxy()).status, 200);
    const r = await post(alice, `/admin/clients/${OTHER_GATEWAY.id}/action/suspend`, { reason: "incident 42", csrf: alice.csrf! });
    assert.equal(r.status, 303);
    assert.match(decodeURIComponent(r.location), /Gateway suspended/);
    assert.equal(await clientStatus(OTHER_GATEWAY.id), "suspended");
    let status = 0;
    for (let i = 0; i < 40 && status !== 401; i++) {
      status = (await proxy()).status;
      if (status !== 401) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(status, 401);
    const event = await db.auditEvent.findFirst({ where: { action: "client.suspend", clientId: OTHER_GATEWAY.id }, orderBy: { at: "desc" } });
    assert.match(event!.details, /incident 42 \(by Alice Example \(alice\)\)/);
    assert.match(event!.actor, /^admin:/);
    await post(alice, `/admin/clients/${OTHER_GATEWAY.id}/action/activate`, { reason: "resolved", csrf: alice.csrf! });
    assert.equal(await clientStatus(OTHER_GATEWAY.id), "active");
  });

  test("registering shows the secret once; rotating it stops the old one at the token endpoint at once", async () => {
    const gw = { id: "rotating-gw", secret: "", redirect: "http://localhost:9/rotating" };
    /** Follow a redirect to the show-once page carrying its cookie, as a browser would. */
    const secretPage = async (r: Awaited<ReturnType<typeof post>>) => {
      (alice.browser as unknown as { store(u: URL, res: Response): void }).store(new URL(portal.url + r.location), new Response(null, { headers: r.headers }));
      return alice.browser.go(portal.url + r.location);
    };
    const created = await post(alice, "/admin/clients/register", {
      csrf: alice.csrf!, id: gw.id, name: "Rotating", type: "confidential", redirect_uris: gw.redirect,
      scopes: ["openid", "profile", "offline_access", "proxy"], max_lifetime: "1d", reason: "rotation test",
    });
    assert.equal(created.location, `/admin/clients/${gw.id}/secret`);
    const first = await secretPage(created);
    gw.secret = /<code class="secret">([^<]+)<\/code>/.exec(first.html)?.[1] ?? "";
    assert.match(gw.secret, /^[A-Za-z0-9_-]{43}$/);
    const again = await alice.browser.go(portal.url + created.location);
    assert.doesNotMatch(again.html, /class="secret"/);
    assert.match(again.html, /already shown/);
    assert.equal((await bob.browser.go(portal.url + created.location)).status, 403);

    const login = await loginThroughPortal(portal.url, { gw, scope: OTHER_SCOPE });
    const tokens = await redeem(login);
    const rotated = await post(alice, `/admin/clients/${gw.id}/action/rotate`, { reason: "yearly rotation", csrf: alice.csrf! });
    const secret = /<code class="secret">([^<]+)<\/code>/.exec((await secretPage(rotated)).html)?.[1];
    assert.ok(secret && secret !== gw.secret);
    await assert.rejects(client.refreshTokenGrant(login.config, tokens.refresh_token!), (e: { error?: string; status?: number }) => e.error === "invalid_client" || e.status === 401);
    const refreshed = await client.refreshTokenGrant(await gatewayConfig(portal.url, { ...gw, secret }), tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    assert.equal(await auditCount("client.rotate_secret"), 1);
  });

  test("a gateway limited to some VOs cannot obtain attributes of others; the refusal is audited", async () => {
    const update = await post(alice, `/admin/clients/${OTHER_GATEWAY.id}/action/update`, {
      csrf: alice.csrf!, name: "Other Gateway", type: "confidential", redirect_uris: OTHER_GATEWAY.redirect,
      scopes: ["openid", "profile", "offline_access", "proxy"], vo_policy: "listed", allowed_vos: ["atlas"], max_lifetime: "1h", reason: "atlas only",
    });
    assert.equal(update.status, 303, update.text);
    assert.match(decodeURIComponent(update.location), /Changes saved/);
    const tokens = await redeem(await loginThroughPortal(portal.url, { gw: OTHER_GATEWAY, scope: OTHER_SCOPE }));
    await new Promise((r) => setTimeout(r, 2100)); // the client row cache
    const res = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` }, body: new URLSearchParams({ voname: "biomed" }) });
    const body = (await res.json()) as { error: string; error_description: string };
    assert.equal(res.status, 403);
    assert.equal(body.error, "access_denied");
    assert.match(body.error_description, /not allowed to request attributes of VO biomed/);
    const refused = await db.auditEvent.findFirst({ where: { action: "proxy.refuse", clientId: OTHER_GATEWAY.id }, orderBy: { at: "desc" } });
    assert.match(refused!.details, /VO biomed/);
    const row = await db.gatewayClient.findUnique({ where: { id: OTHER_GATEWAY.id }, select: { allowedVos: true, maxProxyLifetime: true } });
    assert.deepEqual(row, { allowedVos: '["atlas"]', maxProxyLifetime: 3600 });
    const event = await db.auditEvent.findFirst({ where: { action: "client.update", clientId: OTHER_GATEWAY.id }, orderBy: { at: "desc" } });
    assert.match(event!.details, /"changed":\[[^\]]*"allowedVos"/);
  });

  test("the built-in terminal client is listed and can be suspended (device logins refused), never edited or deleted", async () => {
    const deviceAuth = () => fetch(`${portal.url}/oidc/device/auth`, { method: "POST", body: new URLSearchParams({ client_id: "certbridge-cli", scope: "openid proxy" }) });
    assert.equal((await deviceAuth()).status, 200);
    const list = await alice.browser.go(`${portal.url}/admin/clients`);
    assert.match(list.html, /href="\/admin\/clients\/certbridge-cli"/);
    const page = await alice.browser.go(`${portal.url}/admin/clients/certbridge-cli`);
    assert.match(page.html, /cannot be edited or deleted/);
    assert.doesNotMatch(page.html, /Delete gateway/);
    for (const op of ["delete", "rotate"]) {
      const r = await post(alice, `/admin/clients/certbridge-cli/action/${op}`, { reason: "test", confirm: "certbridge-cli", csrf: alice.csrf! });
      assert.match(r.flash?.error ?? "", /built-in command-line client cannot be/, op);
    }
    const suspended = await post(alice, "/admin/clients/certbridge-cli/action/suspend", { reason: "no terminal logins during the audit", csrf: alice.csrf! });
    assert.match(decodeURIComponent(suspended.location), /Gateway suspended/);
    const refused = await deviceAuth();
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, "invalid_client");
    await post(alice, "/admin/clients/certbridge-cli/action/activate", { reason: "audit over", csrf: alice.csrf! });
    assert.equal((await deviceAuth()).status, 200);
  });

  test("invalid client forms come back with a specific message and register nothing", async () => {
    const before = await db.gatewayClient.count();
    const cases: [Record<string, string | string[]>, RegExp][] = [
      [{ name: "X", type: "confidential", redirect_uris: "http://evil.example/cb", scopes: "proxy", max_lifetime: "1d", reason: "test" }, /redirect URIs must be https/],
      [{ name: "X", type: "confidential", redirect_uris: "https://ok.example/cb", scopes: "proxy", max_lifetime: "forever", reason: "test" }, /maximum proxy lifetime: "forever" is not a duration/],
      [{ name: "X", type: "confidential", redirect_uris: "https://ok.example/cb", scopes: "proxy", max_lifetime: "1d", reason: "" }, /reason: say why/],
      [{ name: "X", type: "weird", redirect_uris: "https://ok.example/cb", scopes: "proxy", max_lifetime: "1d", reason: "test" }, /type/],
      [{ name: "X", type: "public", redirect_uris: "https://ok.example/cb", scopes: "admin", max_lifetime: "1d", reason: "test" }, /scopes/],
      [{ name: "X", type: "public", redirect_uris: "https://ok.example/cb", scopes: "proxy", vo_policy: "listed", allowed_vos: "nosuchvo", max_lifetime: "1d", reason: "test" }, /nosuchvo not served/],
      [{ id: GATEWAY.id, name: "X", type: "public", redirect_uris: "https://ok.example/cb", scopes: "proxy", max_lifetime: "1d", reason: "test" }, /already exists/],
    ];
    for (const [form, message] of cases) {
      const r = await post(alice, "/admin/clients/register", { ...form, csrf: alice.csrf! });
      assert.equal(r.status, 303);
      assert.match(r.flash?.error ?? "", message, JSON.stringify(form));
    }
    assert.equal(await db.gatewayClient.count(), before);
    const del = await post(alice, `/admin/clients/${GATEWAY.id}/action/delete`, { reason: "test", confirm: "wrong", csrf: alice.csrf! });
    assert.match(del.flash?.error ?? "", /type the client id/);
    assert.equal(await clientStatus(GATEWAY.id), "active");
    assert.equal((await post(alice, `/admin/clients/${GATEWAY.id}/action/explode`, { reason: "test", csrf: alice.csrf! })).status, 303);
  });

  test("revocation needs a reason, a comment and the confirmation; then the CRL lists the serial", async () => {
    const tokens = await redeem(await loginThroughPortal(portal.url, { user: "zoe" }));
    assert.equal((await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);
    const cert = (await db.certificate.findFirst({ where: { kind: "user", subject: { contains: "Zoe" } }, select: { id: true, serialHex: true } }))!;
    const path = `/admin/certificates/${cert.id}/revocation`;
    const invalid: Record<string, string>[] = [{ reason: "keyCompromise", comment: "x", confirm: "yes" }, { reason: "keyCompromise", comment: "lost laptop" }, { reason: "bogus", comment: "lost laptop", confirm: "yes" }];
    for (const form of invalid) {
      const r = await post(alice, path, { ...form, csrf: alice.csrf! });
      assert.ok(r.flash?.error, JSON.stringify(form));
    }
    assert.equal((await db.certificate.findUnique({ where: { id: cert.id }, select: { status: true } }))!.status, "valid");
    assert.equal((await post(bob, path, { reason: "keyCompromise", comment: "lost laptop", confirm: "yes", csrf: bob.csrf! })).status, 403);
    const ok = await post(alice, path, { reason: "affiliationChanged", comment: "left the lab", confirm: "yes", csrf: alice.csrf! });
    assert.match(decodeURIComponent(ok.location), /revoked \(affiliationChanged\)/);
    const crl = Buffer.from(await (await fetch(`${portal.url}/ca/crl.der`)).arrayBuffer());
    assert.ok(crl.includes(Buffer.from(cert.serialHex.length % 2 ? `0${cert.serialHex}` : cert.serialHex, "hex")));
    // twice is a conflict, not a second revocation
    const again = await post(alice, path, { reason: "affiliationChanged", comment: "left the lab", confirm: "yes", csrf: alice.csrf! });
    assert.match(again.flash?.error ?? "", /already revoked/);
    assert.equal(await db.auditEvent.count({ where: { action: "certificate.revoke", identityId: { not: null }, details: { contains: cert.serialHex } } }), 1);
  });
});

describe("the audit log", () => {
  test("filters, pages and exports as CSV and JSON lines; the export is itself audited", async () => {
    const page = await alice.browser.go(`${portal.url}/admin/audit?action=client.`);
    assert.equal(page.status, 200);
    const csv = await alice.browser.go(`${portal.url}/admin/audit/export?format=csv&action=client.`);
    assert.equal(csv.status, 200);
    const lines = csv.html.trimEnd().split("\r\n");
    assert.equal(lines[0], "at,action,outcome,actor,identityId,clientId,certificateId,ip,details");
    const expected = await db.auditEvent.count({ where: { action: { startsWith: "client." } } });
    assert.equal(lines.length - 1, expected);
    assert.ok(lines.slice(1).every((l) => /^\d{4}-\d\d-\d\dT[^,]+,client\./.test(l)));
    const jsonl = await alice.browser.go(`${portal.url}/admin/audit/export?format=jsonl&action=login`);
    const records = jsonl.html.trimEnd().split("\n").map((l) => JSON.parse(l) as { action: string; details: object });
    assert.ok(records.length >= 3);
    assert.ok(records.every((r) => r.action === "login" && typeof r.details === "object"));
    const exported = await db.auditEvent.findFirst({ where: { action: "audit.export" }, orderBy: { at: "desc" } });
    assert.match(exported!.details, /"format":"jsonl"/);
    for (const bad of ["format=xml", "format=csv&from=yesterday", "format=csv&action=DROP TABLE"]) {
      assert.equal((await alice.browser.go(`${portal.url}/admin/audit/export?${bad}`)).status, 400, bad);
    }
    const badPage = await alice.browser.go(`${portal.url}/admin/audit?cursor=nonsense`);
    assert.equal(badPage.status, 200);
    assert.match(badPage.html, /the page cursor is invalid/);
  });
});

describe("the person's own account", () => {
  test("consents are listed per gateway; another person cannot revoke them; revoking ends /getproxy and refresh", async () => {
    const login = await loginThroughPortal(portal.url, { user: "bob" });
    const tokens = await redeem(login);
    const page = await bob.browser.go(`${portal.url}/account`);
    assert.match(page.html, /Test Gateway/);
    const grantId = /href="\/account\/consents\/([^"/]+)\/revoke"/.exec(page.html)![1]!;
    // alice tries bob's grant: not found, nothing revoked
    const foreign = await post(alice, `/account/consents/${grantId}`, { csrf: alice.csrf!, confirm: "yes" });
    assert.match(foreign.flash?.error ?? "", /no such consent/);
    assert.equal((await alice.browser.go(`${portal.url}/account/consents/${grantId}/revoke`)).status, 404);
    assert.equal((await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);

    // revoking asks first: without confirm=yes the form goes to the confirmation page, which says what goes
    const unconfirmed = await post(bob, `/account/consents/${grantId}`, { csrf: bob.csrf! });
    assert.equal(unconfirmed.location, `/account/consents/${grantId}/revoke`);
    assert.equal((await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);
    const confirm = await bob.browser.go(`${portal.url}/account/consents/${grantId}/revoke`);
    assert.match(confirm.html, /Revoke your consent for <!-- -->Test Gateway|Revoke your consent for Test Gateway/);
    assert.match(confirm.html, /Valid refresh tokens<\/th><td>1</);

    const mine = await post(bob, `/account/consents/${grantId}`, { csrf: bob.csrf!, confirm: "yes" });
    assert.match(decodeURIComponent(mine.location), /Consent for Test Gateway \(test-gateway\) revoked, with 1 refresh token and 1 access token: it can no longer obtain proxies/);
    const res = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(res.status, 401);
    await assert.rejects(client.refreshTokenGrant(login.config, tokens.refresh_token!), (e: { error?: string }) => e.error === "invalid_grant");
    assert.equal(await db.oidcPayload.count({ where: { grantId } }), 0);
    const event = await db.auditEvent.findFirst({ where: { action: "consent.revoke" }, orderBy: { at: "desc" } });
    assert.equal(event!.clientId, GATEWAY.id);
  });

  test("one consent per person and gateway: a new consent replaces the earlier one and its tokens; the consent screen says so, with the consent's real end", async () => {
    const zoe = async () => (await db.identity.findFirstOrThrow({ where: { sub: "zoe" } })).id;
    const grants = async () => (await db.oidcPayload.findMany({ where: { model: "Grant", accountId: await zoe() } })).filter((g) => (JSON.parse(g.payload) as { clientId: string }).clientId === OTHER_GATEWAY.id);
    const first = await loginThroughPortal(portal.url, { user: "zoe", gw: OTHER_GATEWAY, scope: OTHER_SCOPE });
    const t1 = await redeem(first);
    assert.equal((await grants()).length, 1);
    assert.doesNotMatch(first.consentHtml, /This replaces the consent/);
    // the end date shown is the consent's (CERTBRIDGE_CONSENT_TTL), not the refresh token's
    const until = Date.parse(/without asking you again until <strong>([^<]+)<\/strong>/.exec(first.consentHtml.replace(/<!-- -->/g, ""))![1]!);
    const consentTtl = loadConfig(portal.env, () => {}).portal.consentTtlSeconds * 1000;
    assert.ok(Math.abs(until - (Date.now() + consentTtl)) < 120_000, new Date(until).toISOString());

    const second = await loginThroughPortal(portal.url, { user: "zoe", gw: OTHER_GATEWAY, scope: OTHER_SCOPE });
    const html = second.consentHtml.replace(/<!-- -->/g, "");
    assert.match(html, /This replaces the consent you gave Other Gateway/);
    assert.match(html, /its 1 refresh token \(for example a service renewing proxies\) will stop working/);
    const t2 = await redeem(second);
    assert.equal((await grants()).length, 1);
    await assert.rejects(client.refreshTokenGrant(first.config, t1.refresh_token!), (e: { error?: string }) => e.error === "invalid_grant");
    await client.refreshTokenGrant(second.config, t2.refresh_token!);
    const event = await db.auditEvent.findFirst({ where: { action: "consent.grant", clientId: OTHER_GATEWAY.id, identityId: await zoe() }, orderBy: { at: "desc" } });
    assert.match(event!.details, /"replaced":\["/);
  });

  test("'get a proxy now' downloads a proxy with its key and VOMS attributes, decoded like the detail view shows them", async () => {
    const refused = await post(alice, "/account/proxy", { csrf: alice.csrf!, lifetime: "12h", vo: "biomed" });
    assert.match(refused.flash?.error ?? "", /acknowledge/);
    const notMember = await post(alice, "/account/proxy", { csrf: alice.csrf!, lifetime: "12h", vo: "atlas", acknowledge: "yes" });
    assert.match(notMember.flash?.error ?? "", /not a member of VO atlas/);
    const r = await post(alice, "/account/proxy", { csrf: alice.csrf!, lifetime: "12h", vo: "biomed", acknowledge: "yes" });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-disposition") ?? "", /attachment; filename="x509up_certbridge_\d+\.pem"/);
    assert.equal(r.headers.get("cache-control"), "no-store");
    assert.equal(pemBlocks(r.text).map((b) => b.label).join(","), "CERTIFICATE,PRIVATE KEY,CERTIFICATE");
    const decoded = decodeCertificate(pemBlocks(certificatesOf(r.text)[0]!)[0]!.der);
    assert.equal(decoded.proxy?.policyLanguage, "inheritAll (id-ppl-inheritAll)");
    assert.deepEqual(decoded.attributeCertificates[0]!.fqans, ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"], "the groups; a role only when chosen");
    const page = (await alice.browser.go(`${portal.url}/account`)).html.replace(/<!-- -->/g, "");
    assert.match(page, /<option value="biomed">biomed \(your groups, no role\)<\/option>/);
    assert.match(page, /<option value="biomed:\/biomed\/Role=pilot\/Capability=NULL">\/biomed\/Role=pilot\/Capability=NULL \(role, with your groups\)<\/option>/);
    const withRole = await post(alice, "/account/proxy", { csrf: alice.csrf!, lifetime: "12h", vo: "biomed:/biomed/Role=pilot/Capability=NULL", acknowledge: "yes" });
    assert.equal(withRole.status, 200);
    assert.deepEqual(decodeCertificate(pemBlocks(certificatesOf(withRole.text)[0]!)[0]!.der).attributeCertificates[0]!.fqans, ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    assert.match(decoded.attributeCertificates[0]!.policyAuthority, /^biomed:\/\//);
    assert.equal(decoded.publicKey.bits, 2048);
    assert.equal(Math.round((decoded.notAfter.getTime() - decoded.notBefore.getTime()) / 1000), 12 * 3600 + 300);
    const issued = await db.auditEvent.findFirst({ where: { action: "proxy.issue" }, orderBy: { at: "desc" } });
    assert.match(issued!.actor, /^user:/);
  });

  test("a person sees only their own certificates", async () => {
    const other = (await db.certificate.findFirst({ where: { subject: { contains: "Bob" } }, select: { id: true } }))!;
    assert.equal((await alice.browser.go(`${portal.url}/account/certificates/${other.id}`)).status, 404);
    assert.equal((await alice.browser.go(`${portal.url}/account/certificates/${other.id}/pem`)).status, 404);
    assert.equal((await bob.browser.go(`${portal.url}/account/certificates/${other.id}`)).status, 200);
    assert.equal((await bob.browser.go(`${portal.url}/admin/certificates/${other.id}/pem`)).status, 403);
  });
});
