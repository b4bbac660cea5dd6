/**
 * Issue 14: MasterPortal / OA4MP gateways log in unchanged. The requests are
 * the ones DIRAC's MasterPortal client and the OA4MP 4.x client library send
 * (authorize without PKCE, `scope=+openid+…`, `GET /token` with every
 * parameter in the query, the ID token's auth_time, revocation with
 * `?token=`, /getproxy with HTTP Basic client authentication and `info`),
 * against the production server entry, for a client the operator gave the
 * "masterportal" profile; a default client keeps PKCE and strict parsing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as client from "openid-client";
import { certificatesOf, run, ROOT } from "./helpers";
import { startPortalServer, consoleLogin, Browser, GATEWAY, type PortalServer } from "./portalHarness";

const MP = { id: "mp-gateway", secret: "mp-gateway-secret-0123456789abcdefgh", redirect: "http://localhost:9/mp/ready" };

let portal: PortalServer;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

/** The browser's walk from an authorization URL to the gateway's redirect URI (sign-in at the development IdP, consent). */
async function walk(authUrl: string, redirect: string, browser = new Browser()): Promise<URL> {
  const atCallback = (u: string) => u.startsWith(redirect);
  let page = await browser.go(authUrl, {}, atCallback);
  if (/Continue to sign in/.test(page.html)) {
    page = await browser.submit(page, /\/login$/, {}, atCallback);
    page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: "alice" }, atCallback);
  }
  if (!atCallback(page.url)) {
    assert.match(page.html, /Allow/, `expected the consent page at ${page.url}: ${page.html.slice(0, 1500)}`);
    page = await browser.submit(page, /\/confirm$/, { decision: "allow" }, atCallback);
  }
  assert.ok(atCallback(page.url), `did not return to the gateway: ${page.status} ${page.url}`);
  return new URL(page.url);
}

/**
 * DIRAC's MasterPortal client: a plain query string it builds itself, the scope
 * joined with `+` and starting with one, no code_challenge.
 */
function diracAuthorizationUrl(state: string, scope = "+openid+profile+email+offline_access+edu.uiuc.ncsa.myproxy.getcert") {
  return `${portal.url}/oidc/auth?response_type=code&client_id=${MP.id}&redirect_uri=${encodeURIComponent(MP.redirect)}&scope=${scope}&state=${state}`;
}

async function diracCode(): Promise<string> {
  const state = `dirac-${Math.random().toString(36).slice(2)}`;
  const back = await walk(diracAuthorizationUrl(state), MP.redirect);
  assert.equal(back.searchParams.get("state"), state);
  assert.equal(back.searchParams.get("error"), null, back.searchParams.get("error_description") ?? "");
  return back.searchParams.get("code")!;
}

/** The OA4MP 4.x client's token request: GET, every parameter (the client secret too) in the query. */
async function oa4mpToken(code: string, pathName = "/token") {
  const q = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: MP.redirect, client_id: MP.id, client_secret: MP.secret });
  return fetch(`${portal.url}${pathName}?${q}`);
}

const payloadOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;

async function tokensByOa4mp(): Promise<{ access_token: string; id_token: string; scope: string }> {
  const res = await oa4mpToken(await diracCode());
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { access_token: string; id_token: string; scope: string };
}

before(async () => {
  portal = await startPortalServer({}, [
    {
      id: MP.id,
      name: "MasterPortal Gateway",
      secret: MP.secret,
      redirectUris: [MP.redirect],
      compatProfile: "masterportal",
      maxProxyLifetimeSeconds: 86400,
    },
  ]);
});
after(async () => portal?.cleanup());

describe("a client with the masterportal profile (DIRAC and OA4MP requests)", () => {
  test("authorize without PKCE and with scope=+openid+…; GET /token with every parameter in the query; the ID token carries auth_time", async () => {
    const tokens = await tokensByOa4mp();
    assert.match(tokens.access_token, /\S{20,}/);
    for (const s of ["openid", "profile", "email", "edu.uiuc.ncsa.myproxy.getcert"]) assert.ok(tokens.scope.split(" ").includes(s), tokens.scope);
    const id = payloadOf(tokens.id_token);
    assert.equal(id.iss, portal.url);
    assert.equal(id.aud, MP.id);
    assert.equal(typeof id.auth_time, "number", JSON.stringify(id));
    const now = Math.floor(Date.now() / 1000);
    assert.ok((id.auth_time as number) <= now && (id.auth_time as number) > now - 600, `auth_time ${id.auth_time}`);
    // The ID token verifies with the portal's published keys (openid-client's own validation).
    const config = await client.discovery(new URL(portal.url), MP.id, MP.secret, client.ClientSecretBasic(MP.secret), { execute: [client.allowInsecureRequests] });
    assert.equal(config.serverMetadata().issuer, portal.url);
  });

  test("the OIDC token path works too: GET /oidc/token, and POST with the parameters in the query and an empty body", async () => {
    const viaGet = await oa4mpToken(await diracCode(), "/oidc/token");
    assert.equal(viaGet.status, 200, await viaGet.clone().text());
    const code = await diracCode();
    const q = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: MP.redirect });
    const res = await fetch(`${portal.url}/oidc/token?${q}`, { method: "POST", headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(typeof payloadOf(((await res.json()) as { id_token: string }).id_token).auth_time, "number");
  });

  test("DIRAC's POST token request (Basic, form body, no code_verifier) is accepted", async () => {
    const code = await diracCode();
    const res = await fetch(`${portal.url}/oidc/token`, {
      method: "POST",
      headers: { authorization: basic(MP.id, MP.secret), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: MP.redirect }),
    });
    assert.equal(res.status, 200, await res.clone().text());
  });

  test("what stays strict for the profile: a wrong secret, a redirect URI not registered, a code used twice", async () => {
    const code = await diracCode();
    const wrong = await fetch(`${portal.url}/token?${new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: MP.redirect, client_id: MP.id, client_secret: "not-the-secret-0123456789abcdef" })}`);
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, "invalid_client");
    const ok = await oa4mpToken(code);
    assert.equal(ok.status, 200, await ok.clone().text());
    const again = await oa4mpToken(code);
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: string }).error, "invalid_grant");
    const res = await fetch(diracAuthorizationUrl("s").replace(encodeURIComponent(MP.redirect), encodeURIComponent("http://localhost:9/mp/other")), { redirect: "manual" });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /redirect_uri/);
  });

  test("/getproxy with HTTP Basic client authentication and access_token as a parameter returns a proxy that verifies", async () => {
    const { access_token } = await tokensByOa4mp();
    const res = await fetch(`${portal.url}/getproxy?${new URLSearchParams({ access_token, proxylifetime: "3600" })}`, { headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("x-proxy-lifetime"), "3600");
    const pem = await res.text();
    assert.match(pem, /PRIVATE KEY/);
    assert.equal(certificatesOf(pem).length, 2, "the proxy and the user certificate");
    const trust = path.join(portal.dir, "trust-mp");
    assert.equal(run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env }).status, 0);
    const file = path.join(portal.dir, "mp-proxy.pem");
    fs.writeFileSync(file, pem, { mode: 0o600 });
    const g = run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:10", "-out", path.join(portal.dir, "mp-derived.pem")]);
    assert.equal(g.status, 0, g.stderr + g.stdout);
    // POST form, as MasterPortal clients also send it
    const post = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: basic(MP.id, MP.secret) }, body: new URLSearchParams({ access_token }) });
    assert.equal(post.status, 200, await post.clone().text());
  });

  test("/getproxy with Basic: a wrong secret is 401 invalid_client, another client's credentials 401, no access_token 401, both Basic and client_id 400", async () => {
    const { access_token } = await tokensByOa4mp();
    const get = (auth: string, params: Record<string, string>) => fetch(`${portal.url}/getproxy?${new URLSearchParams(params)}`, { headers: { authorization: auth } });
    const wrong = await get(basic(MP.id, "wrong-secret-0123456789abcdefghij"), { access_token });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, "invalid_client");
    assert.match(wrong.headers.get("www-authenticate") ?? "", /^Basic/);
    const other = await get(basic(GATEWAY.id, GATEWAY.secret), { access_token });
    assert.equal(other.status, 401);
    assert.match(((await other.json()) as { error_description: string }).error_description, /another client/);
    const none = await get(basic(MP.id, MP.secret), {});
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: string }).error, "invalid_token");
    const twice = await get(basic(MP.id, MP.secret), { access_token, client_id: MP.id });
    assert.equal(twice.status, 400);
  });

  test("/getproxy info returns the MasterPortal fields (seconds) and Certbridge's own", async () => {
    const { access_token } = await tokensByOa4mp();
    const res = await fetch(`${portal.url}/getproxy?${new URLSearchParams({ access_token, info: "" })}`, { headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(res.status, 200, await res.clone().text());
    const info = (await res.json()) as Record<string, unknown>;
    assert.match(String(info.username), /^\/.*\/CN=Alice Example/);
    assert.match(String(info.subject_rfc2253), /^CN=Alice Example.*,DC=/);
    assert.equal(info.max_proxy_lifetime, 86400, "the client's cap (1 d) under the portal's (10 d)");
    assert.equal(info.timeleft, 86400);
    assert.equal(info.tolerance, 0);
    assert.equal(info.default_proxy_lifetime, 12 * 3600);
    assert.equal(info.client_id, MP.id);
    assert.ok(typeof info.token_expires_in === "number" && info.token_expires_in > 0);
  });

  test("revocation with the parameters in the query (POST ?token=, and GET with client_id/client_secret) revokes the token", async () => {
    const a = await tokensByOa4mp();
    const res = await fetch(`${portal.url}/oidc/token/revocation?${new URLSearchParams({ token: a.access_token, token_type_hint: "access_token" })}`, { method: "POST", headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(res.status, 200, await res.clone().text());
    const refused = await fetch(`${portal.url}/getproxy?${new URLSearchParams({ access_token: a.access_token })}`, { headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, "invalid_token");

    const b = await tokensByOa4mp();
    const viaGet = await fetch(`${portal.url}/oidc/token/revocation?${new URLSearchParams({ token: b.access_token, client_id: MP.id, client_secret: MP.secret })}`);
    assert.equal(viaGet.status, 200, await viaGet.clone().text());
    const gone = await fetch(`${portal.url}/getproxy?${new URLSearchParams({ access_token: b.access_token })}`, { headers: { authorization: basic(MP.id, MP.secret) } });
    assert.equal(gone.status, 401);
  });

  test("lenient scope separators do not widen the scope: a scope the client lacks is still invalid_scope", async () => {
    const res = await fetch(diracAuthorizationUrl("s2", "+openid++wlcg+"), { redirect: "manual" });
    const location = new URL(res.headers.get("location")!);
    assert.equal(location.searchParams.get("error"), "invalid_scope");
  });
});

describe("a default client keeps PKCE and strict parsing", () => {
  test("the same DIRAC authorization request without PKCE is refused (PKCE), and a leading + is invalid_scope", async () => {
    const url = `${portal.url}/oidc/auth?response_type=code&client_id=${GATEWAY.id}&redirect_uri=${encodeURIComponent(GATEWAY.redirect)}&scope=openid+proxy&state=s1`;
    const noPkce = new URL((await fetch(url, { redirect: "manual" })).headers.get("location")!);
    assert.equal(noPkce.searchParams.get("error"), "invalid_request");
    assert.match(noPkce.searchParams.get("error_description")!, /PKCE/);
    const challenge = await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier());
    const plus = new URL((await fetch(`${url.replace("scope=openid+proxy", "scope=+openid+proxy")}&code_challenge=${challenge}&code_challenge_method=S256`, { redirect: "manual" })).headers.get("location")!);
    assert.equal(plus.searchParams.get("error"), "invalid_scope", plus.href);
  });

  test("GET /oidc/token and /token stay 404, and query parameters on POST /oidc/token are not read", async () => {
    const q = new URLSearchParams({ grant_type: "authorization_code", code: "x", redirect_uri: GATEWAY.redirect, client_id: GATEWAY.id, client_secret: GATEWAY.secret });
    assert.equal((await fetch(`${portal.url}/oidc/token?${q}`)).status, 404);
    assert.equal((await fetch(`${portal.url}/token?${q}`)).status, 404);
    const post = await fetch(`${portal.url}/oidc/token?${new URLSearchParams({ grant_type: "authorization_code", code: "x", redirect_uri: GATEWAY.redirect })}`, { method: "POST", headers: { authorization: basic(GATEWAY.id, GATEWAY.secret) } });
    assert.equal(post.status, 400);
    assert.match(((await post.json()) as { error_description: string }).error_description, /grant_type/);
  });

  test("a default client's normal flow is untouched by the pre-processor (code, PKCE, refresh)", async () => {
    const { loginThroughPortal, redeem, gatewayConfig } = await import("./portalHarness");
    const tokens = await redeem(await loginThroughPortal(portal.url));
    assert.ok(tokens.refresh_token);
    const refreshed = await client.refreshTokenGrant(await gatewayConfig(portal.url), tokens.refresh_token!);
    assert.ok(refreshed.access_token);
  });
});

describe("setting the profile", () => {
  const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), ...args], { env: portal.env });

  test("the CLI sets and clears it on a confidential client, audited; a public client cannot have it", () => {
    const set = cli("client", "profile", GATEWAY.id, "masterportal", "--comment", "a MasterPortal");
    assert.equal(set.status, 0, set.stderr);
    assert.match(set.stdout, /now has the masterportal profile/);
    assert.match(cli("client", "list").stdout, new RegExp(`${GATEWAY.id}.*masterportal`));
    const clear = cli("client", "profile", GATEWAY.id, "none");
    assert.equal(clear.status, 0, clear.stderr);
    assert.doesNotMatch(cli("client", "list").stdout, new RegExp(`${GATEWAY.id}.*masterportal`));
    const bad = cli("client", "profile", GATEWAY.id, "oa5");
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /unknown profile "oa5"/);
    const pub = cli("client", "add", "--name", "Public MP", "--public", "--redirect-uri", "http://localhost:9/pub", "--profile", "masterportal");
    assert.notEqual(pub.status, 0);
    assert.match(pub.stderr, /confidential clients only/);
  });

  test("the admin console sets it on the gateway's page (audited), and it takes effect: PKCE optional, then required again", async () => {
    const alice = await consoleLogin(portal.url, "alice", `/admin/clients/${GATEWAY.id}`);
    assert.match(alice.page.html, /name="compat_profile" checked="" value="none"/);
    const save = async (profile: string, type = "confidential") => {
      const cookie = (alice.browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(`${portal.url}/admin/clients/${GATEWAY.id}/action/update`));
      const body = new URLSearchParams({ csrf: alice.csrf!, name: "Test Gateway", type, redirect_uris: GATEWAY.redirect, max_lifetime: "1d", compat_profile: profile, reason: `profile ${profile}` });
      for (const sc of ["openid", "profile", "email", "offline_access", "proxy"]) body.append("scopes", sc);
      const res = await fetch(`${portal.url}/admin/clients/${GATEWAY.id}/action/update`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie }, body });
      return { status: res.status, location: decodeURIComponent(res.headers.get("location") ?? "") };
    };
    const noPkce = async (scope = "+openid+proxy") => {
      await new Promise((r) => setTimeout(r, 2100)); // the profile lookup's cache
      const url = `${portal.url}/oidc/auth?response_type=code&client_id=${GATEWAY.id}&redirect_uri=${encodeURIComponent(GATEWAY.redirect)}&scope=${scope}&state=c1`;
      const res = await fetch(url, { redirect: "manual" });
      return new URL(res.headers.get("location")!, portal.url);
    };
    const saved = await save("masterportal");
    assert.equal(saved.status, 303);
    assert.match(saved.location, /Changes saved/);
    const back = await noPkce();
    assert.equal(back.searchParams.get("error"), null, back.href);
    assert.match(back.pathname, /^\/interaction\//, "on to sign-in: the request was accepted");
    assert.equal(await countEvents("client.update", /"compatProfile":"masterportal"/), 1);
    const cleared = await save("none");
    assert.equal(cleared.status, 303);
    assert.match((await noPkce("openid+proxy")).searchParams.get("error_description") ?? "", /PKCE/);
    assert.equal((await noPkce()).searchParams.get("error"), "invalid_scope", "strict scope parsing again");
    const publicWithProfile = await save("masterportal", "public");
    assert.equal(publicWithProfile.status, 303);
    assert.doesNotMatch(publicWithProfile.location, /Changes saved/);
    assert.equal(await countEvents("client.update", /"public":true/), 0, "refused: nothing changed");
  });
});

async function countEvents(action: string, details: RegExp): Promise<number> {
  const { openDatabase } = await import("../lib/db");
  const { loadConfig } = await import("../lib/config");
  const db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  try {
    return (await db.auditEvent.findMany({ where: { action, clientId: GATEWAY.id }, select: { details: true } })).filter((e) => details.test(e.details)).length;
  } finally {
    await db.$disconnect();
  }
}
