/**
 * Issue 14 (5–7): clients nobody here wrote. oidc-agent's own oidc-gen/oidc-token (Debian
 * oidc-agent-cli) through the device flow and the code flow with public clients (it sends
 * `Authorization: Basic base64(id:)`, an empty secret) and with a confidential client allowed the
 * device grant, its token used at /getproxy; refresh-token rotation with a grace period (two
 * refreshes with one token both succeed and the grant survives; with no grace, reuse revokes the
 * grant); offline_access without prompt=consent; userinfo claims per scope; introspection only
 * by the owner or a resource server; RFC 7591 registration off (404) and on (restricted).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import * as client from "openid-client";
import { approveDeviceLogin } from "./deviceHarness";
import { ROOT, run, tempDir } from "./helpers";
import { Browser, consoleLogin, freePort, GATEWAY, loginThroughPortal, OTHER_GATEWAY, redeem, startPortalServer, type PortalServer } from "./portalHarness";

const PUBLIC = { id: "oa-public" };
const CONFIDENTIAL = { id: "oa-confidential", secret: "oa-confidential-secret-0123456789" };
const NO_DEVICE = { id: "no-device", secret: "no-device-secret-0123456789abcdef" };
const RESOURCE_SERVER = { id: "resource-server", secret: "resource-server-secret-0123456789", redirect: "http://localhost:9/rs" };
const CLAIMS_GW = { id: "claims-gateway", secret: "claims-gateway-secret-0123456789ab", redirect: "http://localhost:9/claims" };
const AGENT_SCOPE = "openid profile offline_access proxy";
/** Self-registered clients this portal takes (two are registered before the limit test). */
const MAX_REGISTERED = 4;

let portal: PortalServer;
let noGrace: PortalServer;
let redirectPort: number;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

async function post(url: string, form: Record<string, string>, auth?: string) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(auth ? { authorization: auth } : {}) },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const userinfo = async (base: string, token: string) => {
  const res = await fetch(`${base}/oidc/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: res.status === 200 ? ((await res.json()) as Record<string, unknown>) : null };
};

/** A proxy from /getproxy with the token; returns the PEM. */
async function getproxy(base: string, token: string) {
  const res = await fetch(`${base}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new URLSearchParams({ proxylifetime: "3600" }) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text;
}

before(async () => {
  redirectPort = await freePort();
  const agentRedirect = `http://localhost:${redirectPort}`;
  const clients = [
    { id: PUBLIC.id, name: "oidc-agent (public)", public: true, redirectUris: [agentRedirect], scopes: AGENT_SCOPE.split(" "), tokenPolicy: { deviceGrant: true } },
    { id: CONFIDENTIAL.id, name: "oidc-agent (confidential)", secret: CONFIDENTIAL.secret, redirectUris: [agentRedirect], scopes: AGENT_SCOPE.split(" "), tokenPolicy: { deviceGrant: true } },
    { id: NO_DEVICE.id, name: "No device grant", secret: NO_DEVICE.secret, redirectUris: ["http://localhost:9/nodevice"], scopes: AGENT_SCOPE.split(" ") },
    { id: RESOURCE_SERVER.id, name: "Resource server", secret: RESOURCE_SERVER.secret, redirectUris: [RESOURCE_SERVER.redirect], scopes: ["openid"], tokenPolicy: { introspection: true } },
    {
      id: CLAIMS_GW.id,
      name: "Claims gateway",
      secret: CLAIMS_GW.secret,
      redirectUris: [CLAIMS_GW.redirect],
      scopes: ["openid", "profile", "proxy", "edu.uiuc.ncsa.myproxy.getcert", "eduperson_entitlement", "wlcg.groups"],
    },
  ];
  portal = await startPortalServer({ CERTBRIDGE_DYNAMIC_REGISTRATION: "1", CERTBRIDGE_REGISTRATION_MAX_CLIENTS: String(MAX_REGISTERED) }, clients);
  noGrace = await startPortalServer({ CERTBRIDGE_REFRESH_TOKEN_GRACE: "0" });
});

after(async () => {
  await portal?.cleanup();
  await noGrace?.cleanup();
});

// --- oidc-agent itself ---------------------------------------------------------------------------

interface Tool {
  child: ChildProcess;
  output: () => string;
  waitFor: (re: RegExp) => Promise<RegExpMatchArray>;
  exited: Promise<number>;
}

function startTool(cmd: string, args: string[], env: Record<string, string>): Tool {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
  return {
    child,
    output: () => out,
    exited,
    waitFor: (re) =>
      Promise.race([
        new Promise<RegExpMatchArray>((resolve) => {
          const m = out.match(re);
          if (m) resolve(m);
          else waiters.push({ re, resolve });
        }),
        exited.then((code): never => {
          throw new Error(`${cmd} exited (${code}) before printing ${re}:\n${out}`);
        }),
      ]),
  };
}

describe("oidc-agent (oidc-gen, oidc-token)", () => {
  let home: string;
  let env: Record<string, string>;
  let agent: ChildProcess;

  before(async () => {
    home = tempDir("certbridge-oidc-agent-");
    const socket = path.join(home, "agent.sock");
    // its own agent: a temporary HOME (its configuration directory ~/.oidc-agent) and socket
    env = { HOME: home, OIDC_SOCK: socket, OIDC_ENCRYPTION_PW: "agent-test-password" };
    agent = spawn("oidc-agent", ["--console", "--no-autoload", "--socket-path", socket], { env: { ...process.env, ...env }, stdio: "ignore" });
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.existsSync(socket), "oidc-agent did not create its socket");
  });

  after(() => {
    agent?.kill("SIGTERM");
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  const genArgs = ["--prompt=none", "--confirm-default", "--no-url-call", "--pw-env=OIDC_ENCRYPTION_PW", `--scope=${AGENT_SCOPE}`];

  /** oidc-token's access token for an account, used at /getproxy; the proxy is the person's. */
  async function tokenGetsProxy(account: string) {
    const t = run("oidc-token", [account], { env });
    assert.equal(t.status, 0, t.stderr);
    const token = t.stdout.trim();
    const info = await userinfo(portal.url, token);
    assert.equal(info.status, 200);
    const pem = await getproxy(portal.url, token);
    const leaf = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
    const subject = run("openssl", ["x509", "-noout", "-subject", "-nameopt", "compat"], { input: leaf });
    assert.equal(subject.status, 0, subject.stderr);
    assert.ok(subject.stdout.includes(String(info.body!.cert_subject_dn)), `${subject.stdout} is a proxy of ${String(info.body!.cert_subject_dn)}`);
    // a forced refresh (oidc-token -f) goes through the refresh grant with the same empty Basic secret
    const refreshed = run("oidc-token", ["-f", account], { env });
    assert.equal(refreshed.status, 0, refreshed.stderr);
    assert.notEqual(refreshed.stdout.trim(), token);
    assert.equal((await userinfo(portal.url, refreshed.stdout.trim())).status, 200);
  }

  async function deviceFlow(account: string, clientArgs: string[]) {
    const gen = startTool("oidc-gen", [account, `--iss=${portal.url}`, ...clientArgs, "--flow=device", ...genArgs], env);
    const code = (await gen.waitFor(/enter the code:\s*([A-Z]{4}-[A-Z]{4})/))[1]!;
    await approveDeviceLogin(`${portal.url}/oidc/device?user_code=${code}`, { user: "alice" });
    assert.equal(await gen.exited, 0, gen.output());
    assert.match(gen.output(), /Everything setup correctly/);
  }

  test("device flow with the built-in public client certbridge-cli: oidc-gen, then oidc-token's token gets a proxy", async () => {
    await deviceFlow("cb-device", ["--client-id=certbridge-cli", "--client-secret="]);
    await tokenGetsProxy("cb-device");
  });

  test("device flow with a confidential client the operator allowed the device grant", async () => {
    await deviceFlow("cb-confidential", [`--client-id=${CONFIDENTIAL.id}`, `--client-secret=${CONFIDENTIAL.secret}`]);
    await tokenGetsProxy("cb-confidential");
  });

  test("dynamic registration: oidc-gen registers itself, signs in with the device flow; no proxies until the operator allows them", async () => {
    const gen = startTool("oidc-gen", ["cb-registered", `--iss=${portal.url}`, "--flow=device", ...genArgs], env);
    const code = (await gen.waitFor(/enter the code:\s*([A-Z]{4}-[A-Z]{4})/))[1]!;
    assert.match(gen.output(), /The following are missing: proxy/, "oidc-gen warns that proxy was withheld");
    const approved = await approveDeviceLogin(`${portal.url}/oidc/device?user_code=${code}`, { user: "alice" });
    assert.match(approved.confirmHtml, /\(self-registered\)/);
    assert.equal(await gen.exited, 0, gen.output());
    const t = run("oidc-token", ["cb-registered"], { env });
    assert.equal(t.status, 0, t.stderr);
    assert.equal((await userinfo(portal.url, t.stdout.trim())).status, 200);
    const proxy = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${t.stdout.trim()}` } });
    assert.equal(proxy.status, 403, await proxy.text());
  });

  test("code flow with a public client: oidc-gen's auth URL, the portal's pages, its localhost redirect", async () => {
    const redirect = `http://localhost:${redirectPort}`;
    const gen = startTool(
      "oidc-gen",
      ["cb-code", `--iss=${portal.url}`, `--client-id=${PUBLIC.id}`, "--client-secret=", "--flow=code", `--redirect-uri=${redirect}`, "--no-scheme", ...genArgs],
      env,
    );
    const authUrl = (await gen.waitFor(/(http\S+\/oidc\/auth\?\S+)/))[1]!;
    assert.match(authUrl, /code_challenge_method=S256/, "oidc-gen uses PKCE");
    const browser = new Browser();
    const atAgent = (u: string) => u.startsWith(redirect);
    let page = await browser.go(authUrl, {}, atAgent);
    if (/Continue to sign in/.test(page.html)) {
      page = await browser.submit(page, /\/login$/, {}, atAgent);
      page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: "alice" }, atAgent);
    }
    if (!atAgent(page.url)) page = await browser.submit(page, /\/confirm$/, { decision: "allow" }, atAgent);
    assert.ok(atAgent(page.url), `redirected to the agent: ${page.url}`);
    // the browser's last step: oidc-agent's own web server on the redirect port exchanges the code
    const res = await fetch(page.url);
    assert.match(await res.text(), /Successfully performed code exchange/);
    assert.equal(await gen.exited, 0, gen.output());
    await tokenGetsProxy("cb-code");
  });
});

// --- empty Basic secrets and the device grant, at the protocol level --------------------------

describe("client authentication and the device grant", () => {
  test("an empty Basic secret is no secret: a public client is served, a confidential one is refused", async () => {
    const pub = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic("certbridge-cli", ""));
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    assert.ok(pub.body.device_code);
    const conf = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic(CONFIDENTIAL.id, ""));
    assert.equal(conf.status, 401, JSON.stringify(conf.body));
    assert.equal(conf.body.error, "invalid_client");
    const mismatch = await post(`${portal.url}/oidc/device/auth`, { client_id: "other", scope: "openid" }, basic("certbridge-cli", ""));
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.error, "invalid_request");
  });

  test("the device grant only for clients whose policy allows it", async () => {
    const allowed = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic(CONFIDENTIAL.id, CONFIDENTIAL.secret));
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    const refused = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic(NO_DEVICE.id, NO_DEVICE.secret));
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, "invalid_request");
    assert.match(String(refused.body.error_description), /device_code is not allowed for this client/);
  });
});

describe("operator CLI", () => {
  test("client add --device-grant --public: a terminal client without redirect URIs that can start a device login", async () => {
    const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), ...args], { env: portal.env });
    const bad = cli("client", "add", "--id", "cli-terminal", "--public", "--name", "Terminal");
    assert.equal(bad.status, 2, "no redirect URI and no device grant is a usage error");
    assert.match(bad.stderr, /--device-grant/);
    const r = cli("client", "add", "--id", "cli-terminal", "--public", "--device-grant", "--name", "Terminal", "--scope", "openid offline_access proxy");
    assert.equal(r.status, 0, r.stderr);
    const device = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic("cli-terminal", ""));
    assert.equal(device.status, 200, JSON.stringify(device.body));
  });
});

describe("admin console", () => {
  test("the token policy editor switches the device grant on for a gateway, with a reason", async () => {
    const { browser, page, csrf } = await consoleLogin(portal.url, "alice", `/admin/clients/${NO_DEVICE.id}`);
    const text = (html: string) => html.replace(/<!-- -->/g, "");
    assert.match(text(page.html), /device flow off/);
    assert.match(page.html, /name="device_grant"/);
    const form = {
      csrf: csrf!, format: "opaque", compute_groups: "", audiences: "", lifetime: "1h", device_grant: "on",
      exchange_clients: "", exchange_audiences: "", exchange_scopes: "", reason: "oidc-agent for the lab",
    };
    const saved = await browser.go(`${portal.url}/admin/clients/${NO_DEVICE.id}/action/token_policy`, { method: "POST", form });
    assert.match(text(saved.html), /device flow allowed/, saved.html.slice(0, 1500));
    const device = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic(NO_DEVICE.id, NO_DEVICE.secret));
    assert.equal(device.status, 200, JSON.stringify(device.body));
  });
});

// --- refresh-token rotation with a grace period ----------------------------------------------

async function gatewayRefreshToken(base: string, user = "alice") {
  const tokens = await redeem(await loginThroughPortal(base, { user, scope: "openid profile offline_access proxy" }));
  assert.ok(tokens.refresh_token);
  return tokens.refresh_token!;
}

const refresh = (base: string, rt: string) => post(`${base}/oidc/token`, { grant_type: "refresh_token", refresh_token: rt }, basic(GATEWAY.id, GATEWAY.secret));

describe("refresh-token rotation", () => {
  test("within the grace period: two refreshes with one token both succeed and the grant survives", async () => {
    const rt = await gatewayRefreshToken(portal.url);
    const [a, b] = await Promise.all([refresh(portal.url, rt), refresh(portal.url, rt)]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.notEqual(a.body.refresh_token, rt, "rotated");
    assert.notEqual(a.body.refresh_token, b.body.refresh_token);
    // a retry after the first response was lost: the same old token once more
    const retry = await refresh(portal.url, rt);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    for (const r of [a, b, retry]) {
      assert.equal((await userinfo(portal.url, String(r.body.access_token))).status, 200, "the new access token works");
      const next = await refresh(portal.url, String(r.body.refresh_token));
      assert.equal(next.status, 200, `the new refresh token works: ${JSON.stringify(next.body)}`);
    }
  });

  test("after the grace period (here none): reuse revokes the grant, and the winner's tokens die with it", async () => {
    const rt = await gatewayRefreshToken(noGrace.url);
    const first = await refresh(noGrace.url, rt);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((await userinfo(noGrace.url, String(first.body.access_token))).status, 200);
    const reuse = await refresh(noGrace.url, rt);
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, "invalid_grant");
    assert.equal((await refresh(noGrace.url, String(first.body.refresh_token))).body.error, "invalid_grant", "the grant is revoked");
    assert.equal((await userinfo(noGrace.url, String(first.body.access_token))).status, 401);
  });
});

// --- offline_access without prompt=consent ----------------------------------------------------

/** An authorization request with prompt=login (a gateway forcing a fresh sign-in), in the given browser. */
async function loginPromptLogin(base: string, browser: Browser, user: string) {
  const config = await client.discovery(new URL(base), GATEWAY.id, GATEWAY.secret, client.ClientSecretBasic(GATEWAY.secret), { execute: [client.allowInsecureRequests] });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: GATEWAY.redirect,
    scope: "openid offline_access proxy",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    prompt: "login",
  });
  const at = (u: string) => u.startsWith(GATEWAY.redirect);
  let page = await browser.go(url.href, {}, at);
  if (/Continue to sign in/.test(page.html)) page = await browser.submit(page, /\/login$/, {}, at);
  if (!at(page.url)) page = await browser.submit(page, /\/dev-idp\/interaction\/.+\/login$/, { sub: user }, at);
  const consentShown = !at(page.url);
  if (consentShown) page = await browser.submit(page, /\/confirm$/, { decision: "allow" }, at);
  assert.ok(at(page.url), `back at the gateway: ${page.url}\n${page.html.slice(0, 1500)}`);
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { tokens, consentShown };
}

describe("offline_access without prompt=consent", () => {
  test("honoured when the person's consent already covers it", async () => {
    const browser = new Browser();
    await redeem(await loginThroughPortal(portal.url, { user: "zoe", browser, scope: "openid offline_access proxy" }));
    const { tokens, consentShown } = await loginPromptLogin(portal.url, browser, "zoe");
    assert.equal(consentShown, false, "no new consent needed");
    assert.ok(tokens.refresh_token, "a refresh token with prompt=login");
    assert.match(String(tokens.scope), /offline_access/);
  });

  test("still dropped when no consent covers it (no refresh token without a consent that named it)", async () => {
    const { tokens } = await loginPromptLogin(portal.url, new Browser(), "bob");
    assert.equal(tokens.refresh_token, undefined);
    assert.doesNotMatch(String(tokens.scope), /offline_access/);
  });
});

// --- userinfo and introspection -----------------------------------------------------------------

async function claimsFor(scope: string, user: string) {
  const tokens = await redeem(await loginThroughPortal(portal.url, { user, scope, gw: { ...CLAIMS_GW } }));
  const info = await userinfo(portal.url, tokens.access_token);
  assert.equal(info.status, 200);
  return info.body!;
}

describe("userinfo claims per scope", () => {
  test("proxy and the MasterPortal scope release the DN in slash and RFC 2253 form, nothing else", async () => {
    for (const scope of ["openid proxy", "openid edu.uiuc.ncsa.myproxy.getcert"]) {
      const c = await claimsFor(scope, "alice");
      assert.match(String(c.cert_subject_dn), /^\/DC=org\/DC=certbridge-test\/DC=users\/.*\/CN=Alice Example/);
      const reversed = String(c.cert_subject_dn).split("/").filter(Boolean).reverse().join(",");
      assert.equal(c.cert_subject_dn_rfc2253, reversed, scope);
      assert.equal(c.name, undefined, `${scope}: no profile claims`);
      assert.equal(c.eduperson_entitlement, undefined);
    }
  });

  test("profile: names where the IdP gave them", async () => {
    const c = await claimsFor("openid profile", "bob");
    assert.equal(c.given_name, "Bob");
    assert.equal(c.family_name, "Ünlü");
    assert.ok(c.cert_subject_dn);
    assert.equal(c.eduperson_entitlement, undefined);
  });

  test("eduperson_entitlement and wlcg.groups release the person's entitlements and groups", async () => {
    const c = await claimsFor("openid eduperson_entitlement wlcg.groups", "alice");
    assert.deepEqual(c.eduperson_entitlement, [
      "urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu",
      "urn:mace:egi.eu:group:biomed:lab1:role=member#aai.egi.eu",
      "urn:mace:egi.eu:group:biomed:role=pilot#aai.egi.eu",
    ]);
    const groups = c["wlcg.groups"] as string[];
    assert.ok(groups.includes("/biomed") && groups.includes("/biomed/lab1"), JSON.stringify(groups));
    assert.ok(!groups.includes("/biomed/pilot"), "a role is an optional group, not a default one");
    assert.equal(c.cert_subject_dn, undefined);
  });
});

describe("introspection", () => {
  test("answers the client that owns the token and a resource server; anyone else learns nothing", async () => {
    const tokens = await redeem(await loginThroughPortal(portal.url, { user: "alice", scope: "openid proxy" }));
    const introspect = (id: string, secret: string) => post(`${portal.url}/oidc/token/introspection`, { token: tokens.access_token }, basic(id, secret));
    const owner = await introspect(GATEWAY.id, GATEWAY.secret);
    assert.equal(owner.body.active, true);
    assert.equal(owner.body.client_id, GATEWAY.id);
    const stranger = await introspect(OTHER_GATEWAY.id, OTHER_GATEWAY.secret);
    assert.equal(stranger.status, 200);
    assert.deepEqual(stranger.body, { active: false });
    const rs = await introspect(RESOURCE_SERVER.id, RESOURCE_SERVER.secret);
    assert.equal(rs.body.active, true);
  });
});

// --- RFC 7591 dynamic registration ----------------------------------------------------------------

const register = (base: string, body: unknown) =>
  fetch(`${base}/oidc/reg`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** What oidc-gen sends for a device-flow account. */
const OIDC_GEN_REGISTRATION = {
  application_type: "web",
  client_name: "oidc-agent:laptop",
  grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
  response_types: ["code"],
  scope: "openid profile offline_access proxy",
  redirect_uris: ["edu.kit.data.oidc-agent:/redirect"],
};

describe("dynamic client registration (RFC 7591)", () => {
  test("off by default: no endpoint, none in discovery", async () => {
    const res = await register(noGrace.url, OIDC_GEN_REGISTRATION);
    assert.equal(res.status, 404);
    const discovery = (await (await fetch(`${noGrace.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(discovery.registration_endpoint, undefined);
  });

  test("on: a restricted, self-registered client that can start a device login", async () => {
    const discovery = (await (await fetch(`${portal.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(discovery.registration_endpoint, `${portal.url}/oidc/reg`);
    const res = await register(portal.url, OIDC_GEN_REGISTRATION);
    const reg = (await res.json()) as Record<string, string>;
    assert.equal(res.status, 201, JSON.stringify(reg));
    assert.match(reg.client_id!, /^dyn-/);
    assert.equal(reg.scope, "openid profile offline_access", "proxy is withheld until the operator grants it");
    assert.equal(reg.client_name, "oidc-agent:laptop", "answered as sent (oidc-gen compares it)");
    assert.ok(reg.client_secret);
    const device = await post(`${portal.url}/oidc/device/auth`, { scope: "openid offline_access" }, basic(reg.client_id!, reg.client_secret!));
    assert.equal(device.status, 200, JSON.stringify(device.body));
    // people see that a stranger chose the name: on the code confirmation and on the consent page
    const approved = await approveDeviceLogin(String(device.body.verification_uri_complete), { user: "bob" });
    assert.match(approved.confirmHtml, /oidc-agent:laptop \(self-registered\)/);
    assert.match(approved.consentHtml.replace(/<!-- -->/g, ""), /oidc-agent:laptop \(self-registered\)/);
    const proxy = await post(`${portal.url}/oidc/device/auth`, { scope: "openid proxy" }, basic(reg.client_id!, reg.client_secret!));
    assert.equal(proxy.body.error, "invalid_scope");
  });

  test("on: bad registrations are refused with RFC 7591 errors and register nothing", async () => {
    const cases: [unknown, string][] = [
      [{ ...OIDC_GEN_REGISTRATION, scope: "proxy compute.create" }, "invalid_client_metadata"],
      [{ ...OIDC_GEN_REGISTRATION, grant_types: ["authorization_code"], redirect_uris: ["http://gateway.example.org/cb"] }, "invalid_redirect_uri"],
      [{ ...OIDC_GEN_REGISTRATION, grant_types: ["client_credentials"] }, "invalid_client_metadata"],
      [{ ...OIDC_GEN_REGISTRATION, redirect_uris: "not a list" }, "invalid_client_metadata"],
    ];
    for (const [body, error] of cases) {
      const res = await register(portal.url, body);
      const out = (await res.json()) as Record<string, string>;
      assert.equal(res.status, 400, JSON.stringify(out));
      assert.equal(out.error, error, JSON.stringify(body));
    }
    const notJson = await fetch(`${portal.url}/oidc/reg`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    assert.equal(notJson.status, 400);
  });

  test("on: strangers cannot register without end (CERTBRIDGE_REGISTRATION_MAX_CLIENTS)", async () => {
    let accepted = 0;
    let last: Response | undefined;
    for (let i = 0; i < MAX_REGISTERED + 1; i++) {
      last = await register(portal.url, OIDC_GEN_REGISTRATION);
      if (last.status !== 201) break;
      accepted++;
    }
    assert.ok(accepted < MAX_REGISTERED, `only up to the limit: ${accepted} more accepted`);
    assert.equal(last!.status, 403);
    const body = (await last!.json()) as Record<string, string>;
    assert.equal(body.error, "invalid_request");
    assert.match(body.error_description!, /no more registrations/);
  });
});
