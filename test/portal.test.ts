/**
 * The portal over real HTTP, against the production server entry: discovery,
 * PKCE, codes, consent, refresh, and every /getproxy refusal a gateway can
 * meet. test/postgresPortal.test.ts runs this file again on PostgreSQL.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import * as client from "openid-client";
import { opensslCsr, assembleProxyFile, certificatesOf, run, ROOT } from "./helpers";
import { startPortalServer, loginThroughPortal, redeem, gatewayConfig, Browser, GATEWAY, OTHER_GATEWAY, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let csr: { csrPem: string; keyPem: string };
let consentHtml = "";
/** A fresh login's tokens: access tokens live 8 s here, so each test signs in anew. */
const fresh = async (opts: Parameters<typeof loginThroughPortal>[1] = {}) => redeem(await loginThroughPortal(portal.url, opts));

const getproxy = (token: string | null, params: Record<string, string> = {}, init: { header?: boolean; method?: string } = {}) => {
  const body = new URLSearchParams(params);
  if (token && init.header === false) body.set("access_token", token);
  return fetch(`${portal.url}/getproxy`, {
    method: init.method ?? "POST",
    headers: token && init.header !== false ? { authorization: `Bearer ${token}` } : {},
    body: (init.method ?? "POST") === "POST" ? body : undefined,
  });
};

async function expectError(res: Response, status: number, error: string, description?: RegExp) {
  const body = (await res.json()) as { error: string; error_description: string };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error, error);
  if (description) assert.match(body.error_description, description);
  return body;
}

before(async () => {
  // no refresh-token grace: a reused refresh token is refused at once (the grace period: test/oidcAgent.test.ts)
  portal = await startPortalServer({ CERTBRIDGE_ACCESS_TOKEN_TTL: "8s", CERTBRIDGE_REFRESH_TOKEN_GRACE: "0" });
  csr = opensslCsr(portal.dir);
  const flow = await loginThroughPortal(portal.url);
  consentHtml = flow.consentHtml.replace(/<!-- -->/g, "");
  await redeem(flow);
});
after(async () => portal?.cleanup());

describe("discovery and the authorization endpoint", () => {
  test("the discovery document is valid and advertises code flow with S256 PKCE only", async () => {
    const res = await fetch(`${portal.url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const d = (await res.json()) as Record<string, unknown>;
    assert.equal(d.issuer, portal.url);
    for (const k of ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"]) {
      assert.match(String(d[k]), new RegExp(`^${portal.url}/oidc/`), k);
    }
    assert.deepEqual(d.response_types_supported, ["code"]);
    assert.deepEqual(d.code_challenge_methods_supported, ["S256"]);
    assert.ok((d.scopes_supported as string[]).includes("edu.uiuc.ncsa.myproxy.getcert"));
    const jwks = (await (await fetch(String(d.jwks_uri))).json()) as { keys: { kty: string; d?: string }[] };
    assert.equal(jwks.keys[0]!.kty, "RSA");
    assert.equal(jwks.keys[0]!.d, undefined, "no private parts published");
  });

  test("PKCE is enforced: an authorization request without code_challenge is refused", async () => {
    const url = new URL(`${portal.url}/oidc/auth`);
    url.search = new URLSearchParams({ client_id: GATEWAY.id, response_type: "code", redirect_uri: GATEWAY.redirect, scope: "openid proxy", state: "s1" }).toString();
    const res = await fetch(url, { redirect: "manual" });
    const location = new URL(res.headers.get("location")!);
    assert.equal(location.origin + location.pathname, GATEWAY.redirect);
    assert.equal(location.searchParams.get("error"), "invalid_request");
    assert.match(location.searchParams.get("error_description")!, /PKCE/);
  });

  test("the consent screen names the gateway, the proxy lifetime and until when", () => {
    assert.match(consentHtml, /Allow Test Gateway to act in your name\?/);
    assert.match(consentHtml, /obtain certificates in your name, each valid for up to.*1d/s);
    assert.match(consentHtml, /without asking you again until/);
    assert.match(consentHtml, /Development mode/);
  });

  test("an authorization code cannot be redeemed twice", async () => {
    const flow = await loginThroughPortal(portal.url);
    await redeem(flow);
    await assert.rejects(redeem(flow), (e: unknown) => e instanceof client.ResponseBodyError && e.error === "invalid_grant");
  });

  test("deny at consent returns access_denied to the gateway", async () => {
    const flow = await loginThroughPortal(portal.url, { decision: "deny" });
    assert.equal(flow.callback.searchParams.get("error"), "access_denied");
    assert.equal(flow.callback.searchParams.get("state"), flow.state);
  });
});

describe("/getproxy", () => {
  let trust: string;
  before(() => {
    trust = path.join(portal.dir, "certificates");
    const r = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env });
    assert.equal(r.status, 0, r.stderr);
  });

  test("CSR mode: the proxy verifies with OpenSSL and Globus against the exported trust directory", async () => {
    const tokens = await fresh();
    const res = await getproxy(tokens.access_token, { certreq: csr.csrPem, proxylifetime: "7200" });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("content-type"), "application/x-pem-file");
    assert.equal(res.headers.get("x-proxy-lifetime"), "7200");
    const pem = await res.text();
    assert.equal(certificatesOf(pem).length, 2);
    assert.doesNotMatch(pem, /PRIVATE KEY/, "the key stays with the gateway");
    const file = path.join(portal.dir, "csr-proxy.pem");
    fs.writeFileSync(file, assembleProxyFile(pem, csr.keyPem), { mode: 0o600 });
    const leaf = path.join(portal.dir, "leaf.pem");
    fs.writeFileSync(leaf, certificatesOf(pem)[0]!);
    assert.equal(run("openssl", ["verify", "-allow_proxy_certs", "-CApath", trust, "-untrusted", file, leaf]).status, 0);
    const g = run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:10", "-out", path.join(portal.dir, "derived.pem")]);
    assert.equal(g.status, 0, g.stderr + g.stdout);
  });

  test("server-key mode returns cert, key and chain; GET with access_token (MasterPortal style) works too", async () => {
    const tokens = await fresh();
    const res = await fetch(`${portal.url}/getproxy?access_token=${encodeURIComponent(tokens.access_token)}&proxylifetime=3600`);
    assert.equal(res.status, 200);
    const pem = await res.text();
    assert.match(pem, /-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----[\s\S]+-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----/);
  });

  test("a lifetime above the client's cap is clamped and reported", async () => {
    const tokens = await fresh();
    const res = await getproxy(tokens.access_token, { certreq: csr.csrPem, proxylifetime: String(30 * 86400) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-proxy-lifetime"), "86400");
    assert.equal(res.headers.get("x-proxy-lifetime-clamped"), "true");
  });

  test("bad requests get specific OAuth-style errors", async () => {
    const tokens = await fresh();
    await expectError(await getproxy(null), 401, "invalid_token", /access token is required/);
    await expectError(await getproxy("not-a-token"), 401, "invalid_token", /invalid, expired or revoked/);
    await expectError(await getproxy(tokens.access_token, { certreq: "garbage" }), 400, "invalid_csr", /not valid DER/);
    await expectError(await getproxy(tokens.access_token, { certreq: "not base64!" }), 400, "invalid_csr", /neither PEM nor base64/);
    await expectError(await getproxy(tokens.access_token, { proxylifetime: "12h" }), 400, "invalid_request", /whole number of seconds/);
    const both = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${tokens.access_token}` }, body: new URLSearchParams({ access_token: tokens.access_token }) });
    await expectError(both, 400, "invalid_request", /both in the header and as a parameter/);
    const res = await getproxy("not-a-token");
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer error="invalid_token"/);
  });

  test("a token presented with another client's id is refused (audience mismatch)", async () => {
    const tokens = await fresh();
    await expectError(await getproxy(tokens.access_token, { client_id: OTHER_GATEWAY.id }), 401, "invalid_token", /issued to another client/);
    await expectError(await getproxy(tokens.access_token, { client_id: GATEWAY.id, client_secret: "wrong-secret-wrong-secret" }), 401, "invalid_client", /client authentication failed/);
    const ok = await getproxy(tokens.access_token, { client_id: GATEWAY.id, client_secret: GATEWAY.secret, certreq: csr.csrPem });
    assert.equal(ok.status, 200);
  });

  test("a token without the proxy scope gets insufficient_scope", async () => {
    const flow = await loginThroughPortal(portal.url, { scope: "openid profile" });
    const t = await redeem(flow);
    const res = await getproxy(t.access_token, { certreq: csr.csrPem });
    await expectError(res, 403, "insufficient_scope", /proxy scope/);
  });

  test("a revoked token is refused", async () => {
    const flow = await loginThroughPortal(portal.url);
    const t = await redeem(flow);
    assert.equal((await getproxy(t.access_token, { certreq: csr.csrPem })).status, 200);
    await client.tokenRevocation(flow.config, t.access_token);
    await expectError(await getproxy(t.access_token, { certreq: csr.csrPem }), 401, "invalid_token");
  });

  test("after the access token expires, it is refused, and the refresh token obtains a fresh proxy", async () => {
    const flow = await loginThroughPortal(portal.url);
    const t = await redeem(flow);
    assert.ok(t.refresh_token);
    await new Promise((r) => setTimeout(r, 9_000)); // CERTBRIDGE_ACCESS_TOKEN_TTL=8s
    await expectError(await getproxy(t.access_token, { certreq: csr.csrPem }), 401, "invalid_token", /expired/);
    const refreshed = await client.refreshTokenGrant(flow.config, t.refresh_token!);
    assert.notEqual(refreshed.refresh_token, t.refresh_token, "refresh tokens rotate on use");
    assert.equal((await getproxy(refreshed.access_token, { certreq: csr.csrPem })).status, 200);
    await assert.rejects(client.refreshTokenGrant(flow.config, t.refresh_token!), (e: unknown) => e instanceof client.ResponseBodyError && e.error === "invalid_grant");
  });

  test("the same person through two clients and two sessions gets proxies with the same subject", async () => {
    const tokens = await fresh();
    const subjectOf = async (token: string) => {
      const pem = await (await getproxy(token, { certreq: csr.csrPem })).text();
      const leaf = path.join(portal.dir, "s.pem");
      fs.writeFileSync(leaf, certificatesOf(pem)[0]!);
      return run("openssl", ["x509", "-in", leaf, "-noout", "-issuer", "-nameopt", "RFC2253"]).stdout.trim();
    };
    const a = await redeem(await loginThroughPortal(portal.url, { user: "bob", browser: new Browser() }));
    const b = await redeem(await loginThroughPortal(portal.url, { user: "bob", gw: OTHER_GATEWAY, browser: new Browser(), scope: "openid profile offline_access proxy" }));
    const sa = await subjectOf(a.access_token);
    assert.match(sa, /CN=Bob Unlu [A-Za-z0-9-]{16},O=Example Institute of Physics,/);
    assert.equal(await subjectOf(b.access_token), sa);
    assert.notEqual(await subjectOf(tokens.access_token), sa, "and Alice's differs");
  });

  test("info returns JSON about the user and the limits", async () => {
    const tokens = await fresh();
    const res = await getproxy(tokens.access_token, { info: "" });
    const j = (await res.json()) as { username: string; max_proxy_lifetime: number };
    assert.equal(res.status, 200);
    assert.match(j.username, /^\/DC=org\/DC=certbridge-test\/DC=users\/O=Example University\/CN=Alice Example /);
    assert.equal(j.max_proxy_lifetime, 86400);
  });
});

describe("/getproxy with VOMS attributes (the development setup serves examples/vos.json)", () => {
  test("voname=biomed: the AC carries the development IdP user's entitlements, and the downloads configure validation", async () => {
    const tokens = await fresh();
    const res = await getproxy(tokens.access_token, { voname: "biomed", proxylifetime: "3600" });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("x-certbridge-warning"), null, "the AC covers a 1 h proxy");
    // biomed caps its AC at 12 h: a 24 h proxy comes with a warning header saying when the attributes end.
    const long = await getproxy((await fresh()).access_token, { voname: "biomed", proxylifetime: "86400" });
    assert.equal(long.status, 200, await long.clone().text());
    assert.match(long.headers.get("x-certbridge-warning") ?? "", /^the VOMS attributes of biomed end at \S+, before the proxy \(\S+\): the VO's maximum AC lifetime is 12h$/);
    const file = path.join(portal.dir, "voms-proxy.pem");
    fs.writeFileSync(file, await res.text(), { mode: 0o600 });
    const vomsdir = path.join(portal.dir, "dl-vomsdir");
    fs.mkdirSync(path.join(vomsdir, "biomed"), { recursive: true });
    const lsc = await (await fetch(`${portal.url}/voms/biomed.lsc`)).text();
    fs.writeFileSync(path.join(vomsdir, "biomed", "voms.certbridge.example.lsc"), lsc);
    assert.match(await (await fetch(`${portal.url}/voms/biomed.vomses`)).text(), /^"biomed" "voms\.certbridge\.example" "15000" "\/DC=org\/DC=certbridge\/OU=VOMS\/OU=biomed\/CN=voms\.certbridge\.example" "biomed"\n$/);
    assert.equal((await fetch(`${portal.url}/voms/nope.lsc`)).status, 404);
    const info = run("voms-proxy-info2", ["-all", "-file", file], { env: { X509_CERT_DIR: path.join(portal.dir, "certificates"), X509_VOMS_DIR: vomsdir } });
    // the groups only: alice's role pilot is in the AC only when asked for
    assert.deepEqual([...info.stdout.matchAll(/attribute : (.+)/g)].map((m) => m[1]), ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    const role = await getproxy((await fresh()).access_token, { voname: "biomed:/biomed/Role=pilot", proxylifetime: "3600" });
    assert.equal(role.status, 200, await role.clone().text());
    fs.writeFileSync(file, await role.text(), { mode: 0o600 });
    const fqan = run("voms-proxy-info2", ["-fqan", "-file", file], { env: { X509_CERT_DIR: path.join(portal.dir, "certificates"), X509_VOMS_DIR: vomsdir } });
    assert.deepEqual(fqan.stdout.trim().split("\n"), ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
  });

  test("a VO or role the user lacks: 403 access_denied with the reason, and nothing issued", async () => {
    const tokens = await fresh();
    await expectError(await getproxy(tokens.access_token, { voname: "atlas" }), 403, "access_denied", /not a member of VO atlas/);
    await expectError(await getproxy(tokens.access_token, { voname: "biomed:/biomed/Role=admin" }), 403, "access_denied", /do not hold the role \/biomed\/Role=admin/);
    await expectError(await getproxy(tokens.access_token, { voname: "biomed:/atlas" }), 400, "invalid_request", /not an FQAN of VO biomed/);
  });
});

describe("state survives a restart", () => {
  test("a refresh token issued before a restart still works after it", async () => {
    const flow = await loginThroughPortal(portal.url);
    const t = await redeem(flow);
    await portal.restart();
    const config = await gatewayConfig(portal.url);
    const refreshed = await client.refreshTokenGrant(config, t.refresh_token!);
    assert.equal((await getproxy(refreshed.access_token, { certreq: csr.csrPem })).status, 200);
  });
});
