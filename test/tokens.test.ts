/**
 * Tokens for compute elements over real HTTP, with the requests DIRAC (authlib) sends: pilot
 * tokens by client credentials with an audience, user tokens downscoped by refresh, revocation,
 * and the scope policy's refusals.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { loadConfig } from "../lib/config";
import { openDatabase, type Db } from "../lib/db";
import { FormMemory } from "../lib/console/forms";
import { consoleLogin, startPortalServer, loginThroughPortal, redeem, type Browser, type PortalServer } from "./portalHarness";

export const PILOTS = { id: "dirac-pilots", secret: "dirac-pilots-secret-0123456789abcdef" };
const NO_COMPUTE = { id: "robot-no-compute", secret: "robot-no-compute-secret-0123456789ab" };
const LISTED = { id: "robot-listed", secret: "robot-listed-secret-0123456789abcdef" };
const WMS = { id: "dirac-wms", secret: "dirac-wms-secret-0123456789abcdef0123", redirect: "http://localhost:9/wms" };
const COMPUTE = "compute.cancel compute.create compute.modify compute.read";
const DELEGATE = { id: "dirac-delegate", secret: "dirac-delegate-secret-0123456789abcdef" };
const RS = { id: "storage-rs", secret: "storage-rs-secret-0123456789abcdef0123" };
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** The clients file entries of the robots and the user-token gateway above. */
export const TOKEN_CLIENTS = [
  { id: PILOTS.id, name: "DIRAC Site Director", secret: PILOTS.secret, scopes: COMPUTE.split(" "), tokenPolicy: { format: "wlcg", compute: true } },
  { id: NO_COMPUTE.id, name: "Robot without compute", secret: NO_COMPUTE.secret, scopes: [...COMPUTE.split(" "), "wlcg"], tokenPolicy: { format: "wlcg" } },
  {
    id: LISTED.id,
    name: "Robot for one CE",
    secret: LISTED.secret,
    scopes: COMPUTE.split(" "),
    tokenPolicy: { format: "wlcg", compute: true, audiences: ["ce.example.org:9619"], accessTokenLifetimeSeconds: 1200 },
  },
  {
    id: WMS.id,
    name: "DIRAC WMS",
    secret: WMS.secret,
    redirectUris: [WMS.redirect],
    scopes: ["openid", "profile", "offline_access", "wlcg.groups", ...COMPUTE.split(" ")],
    tokenPolicy: { format: "wlcg", compute: true, computeGroups: ["/biomed/pilot"] },
  },
  {
    id: DELEGATE.id,
    name: "DIRAC service delegating tokens",
    secret: DELEGATE.secret,
    scopes: [...COMPUTE.split(" "), "wlcg.groups"],
    tokenPolicy: {
      format: "wlcg",
      compute: true,
      computeGroups: ["/biomed"],
      exchange: { subjectClients: [PILOTS.id, WMS.id], audiences: ["https://arc.example.org:443"], scopes: ["compute.read", "compute.create", "wlcg.groups"] },
    },
  },
  {
    id: RS.id,
    name: "A storage element (resource server)",
    secret: RS.secret,
    redirectUris: ["http://localhost:9/rs"],
    scopes: ["openid"],
    tokenPolicy: { introspection: true },
  },
];

let portal: PortalServer;
let db: Db;

export const basic = (c: { id: string; secret: string }) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString("base64")}`;

/** authlib's token request: form body, client_secret_basic. */
export async function tokenRequest(url: string, c: { id: string; secret: string }, body: string, path = "/oidc/token") {
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { authorization: basic(c), "content-type": "application/x-www-form-urlencoded" }, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export function decodeJwt(jwt: string) {
  const [h, p, s] = jwt.split(".");
  return {
    header: JSON.parse(Buffer.from(h!, "base64url").toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>,
    signed: Buffer.from(`${h}.${p}`),
    signature: Buffer.from(s!, "base64url"),
  };
}

/** Verify a token with the keys the portal publishes, as a CE would. */
async function verifyWithJwks(url: string, jwt: string) {
  const d = decodeJwt(jwt);
  const discovery = (await (await fetch(`${url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: (crypto.JsonWebKey & { kid: string })[] };
  const jwk = jwks.keys.find((k) => k.kid === d.header.kid);
  assert.ok(jwk, `kid ${String(d.header.kid)} is in the JWKS`);
  assert.ok(crypto.verify("sha256", d.signed, crypto.createPublicKey({ key: jwk, format: "jwk" }), d.signature), "RS256 signature verifies");
  return d;
}

const pilotBody = (audience: string, scope = COMPUTE) => new URLSearchParams({ grant_type: "client_credentials", scope, audience }).toString();

before(async () => {
  portal = await startPortalServer({}, TOKEN_CLIENTS);
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

describe("pilot tokens: client credentials (DIRAC's Site Director)", () => {
  test("discovery names the grant and the keys; the JWKS may be cached", async () => {
    const d = (await (await fetch(`${portal.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.ok((d.grant_types_supported as string[]).includes("client_credentials"));
    assert.ok((d.scopes_supported as string[]).includes("compute.create"));
    assert.ok(d.revocation_endpoint && d.introspection_endpoint);
    const jwks = await fetch(d.jwks_uri as string);
    assert.match(jwks.headers.get("cache-control") ?? "", /max-age=21600/);
  });

  test("HTCondor-CE audience: a WLCG profile JWT for the CE, sub = client id", async () => {
    const r = await tokenRequest(portal.url, PILOTS, pilotBody("ce.example.org:9619"));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.token_type, "Bearer");
    assert.equal(r.body.expires_in, 3600);
    assert.equal(r.body.refresh_token, undefined);
    const { header, payload } = await verifyWithJwks(portal.url, r.body.access_token as string);
    assert.equal(header.alg, "RS256");
    assert.equal(typeof header.kid, "string");
    // the ID token key and the WLCG keys of the previous, current and next periods are published
    const jwks = (await (await fetch(`${portal.url}/oidc/jwks`)).json()) as { keys: { kid: string }[] };
    assert.equal(jwks.keys.length, 4);
    assert.equal(payload["wlcg.ver"], "1.0");
    assert.equal(payload.iss, portal.url);
    assert.equal(payload.sub, PILOTS.id);
    assert.equal(payload.aud, "ce.example.org:9619");
    assert.equal(payload.nbf, (payload.iat as number) - 60);
    assert.equal((payload.exp as number) - (payload.iat as number), 3600);
    assert.equal(typeof payload.jti, "string");
    assert.deepEqual(String(payload.scope).split(" ").sort(), COMPUTE.split(" ").sort());
    assert.equal(payload["wlcg.groups"], undefined);
  });

  test("ARC REST audience (https://host:port), and the profile's default audience", async () => {
    const arc = await tokenRequest(portal.url, PILOTS, pilotBody("https://arc.example.org:443"));
    assert.equal(arc.status, 200, JSON.stringify(arc.body));
    assert.equal(decodeJwt(arc.body.access_token as string).payload.aud, "https://arc.example.org:443");
    const any = await tokenRequest(portal.url, PILOTS, new URLSearchParams({ grant_type: "client_credentials", scope: "compute.read" }).toString());
    assert.equal(any.status, 200, JSON.stringify(any.body));
    assert.equal(decodeJwt(any.body.access_token as string).payload.aud, "https://wlcg.cern.ch/jwt/v1/any");
    const resource = await tokenRequest(portal.url, PILOTS, new URLSearchParams({ grant_type: "client_credentials", scope: "compute.read", resource: "https://arc.example.org:443" }).toString());
    assert.equal(decodeJwt(resource.body.access_token as string).payload.aud, "https://arc.example.org:443");
  });

  test("compute.* for a client the administrator did not permit: invalid_scope", async () => {
    const r = await tokenRequest(portal.url, NO_COMPUTE, pilotBody("ce.example.org:9619"));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_scope");
    assert.match(String(r.body.error_description), /compute/);
    // what it is permitted still works
    const ok = await tokenRequest(portal.url, NO_COMPUTE, pilotBody("ce.example.org:9619", "wlcg"));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test("an empty token request is still an ordinary invalid_request", async () => {
    const r = await tokenRequest(portal.url, PILOTS, "");
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error, "invalid_request");
    const bad = await tokenRequest(portal.url, PILOTS, pilotBody("ce.example.org:9619", "wlcg.groups:nonsense"));
    assert.equal(bad.body.error, "invalid_scope");
  });

  test("a scope outside the client's allowed scopes: invalid_scope", async () => {
    const r = await tokenRequest(portal.url, PILOTS, pilotBody("ce.example.org:9619", "compute.read wlcg"));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_scope");
  });

  test("audiences outside the policy's list are refused; the policy's lifetime applies", async () => {
    const other = await tokenRequest(portal.url, LISTED, pilotBody("other-ce.example.org:9619"));
    assert.equal(other.status, 400);
    assert.equal(other.body.error, "invalid_target");
    const ok = await tokenRequest(portal.url, LISTED, pilotBody("ce.example.org:9619"));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.expires_in, 1200);
  });

  test("gateways without a WLCG policy have no client credentials and keep opaque tokens", async () => {
    const r = await tokenRequest(portal.url, { id: "test-gateway", secret: "test-gateway-secret-0123456789abcdef" }, pilotBody("ce.example.org:9619"));
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /invalid_request|unauthorized_client/);
    const flow = await redeem(await loginThroughPortal(portal.url));
    assert.equal(flow.access_token.split(".").length, 1, "an opaque token, as /getproxy expects");
  });

  test("issuance is audited with client, subject, grant, scope, audience and lifetime", async () => {
    const rows = await db.auditEvent.findMany({ where: { action: "token.issue", clientId: PILOTS.id }, select: { actor: true, identityId: true, details: true } });
    const events = rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
    const e = events.find((x) => x.details.audience === "ce.example.org:9619");
    assert.ok(e, JSON.stringify(events.slice(0, 3)));
    assert.equal(e.actor, `client:${PILOTS.id}`);
    assert.equal(e.identityId, null);
    const d = e.details;
    assert.equal(d.grantType, "client_credentials");
    assert.equal(d.subject, PILOTS.id);
    assert.equal(d.expiresIn, 3600);
    assert.equal(d.format, "wlcg-jwt");
    assert.equal(typeof d.jti, "string");
  });
});

describe("user tokens (DIRAC: refresh with a narrower scope) and revocation", () => {
  const wms = { ...WMS };
  const login = (user: string) =>
    loginThroughPortal(portal.url, { user, gw: wms, scope: `openid offline_access wlcg.groups ${COMPUTE}` });

  test("refresh downscopes to a group the person holds; wlcg.groups from the VOMS membership mapping", async () => {
    const tokens = await redeem(await login("alice"));
    const all = decodeJwt(tokens.access_token).payload;
    assert.notEqual(decodeJwt(tokens.id_token!).header.kid, decodeJwt(tokens.access_token).header.kid, "ID tokens keep their own key; WLCG tokens rotate");
    assert.equal(all.sub !== undefined, true);
    assert.deepEqual(all["wlcg.groups"], ["/biomed", "/biomed/lab1"], "default groups only: the role is an optional group");
    const rt = tokens.refresh_token!;
    // IAM style parametric scope, as DIRAC sends it
    const r = await tokenRequest(portal.url, wms, new URLSearchParams({ grant_type: "refresh_token", refresh_token: rt, scope: "wlcg.groups:/biomed/pilot compute.read", audience: "ce.example.org:9619" }).toString());
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = decodeJwt(r.body.access_token as string).payload;
    assert.deepEqual(p["wlcg.groups"], ["/biomed/pilot"]);
    assert.equal(p.aud, "ce.example.org:9619");
    assert.equal(p.scope, "wlcg.groups compute.read");
    // Check-in style, from the rotated refresh token
    const checkin = await tokenRequest(
      portal.url,
      wms,
      new URLSearchParams({ grant_type: "refresh_token", refresh_token: r.body.refresh_token as string, scope: "eduperson_entitlement?value=urn:mace:egi.eu:group:biomed:lab1:role=member#aai.egi.eu" }).toString(),
    );
    assert.equal(checkin.status, 200, JSON.stringify(checkin.body));
    assert.deepEqual(decodeJwt(checkin.body.access_token as string).payload["wlcg.groups"], ["/biomed/lab1"]);
    // a group the person does not hold
    const not = await tokenRequest(portal.url, wms, new URLSearchParams({ grant_type: "refresh_token", refresh_token: checkin.body.refresh_token as string, scope: "wlcg.groups:/atlas" }).toString());
    assert.equal(not.status, 400);
    assert.equal(not.body.error, "invalid_scope");
  });

  test("compute.* in user tokens only for members of the policy's groups", async () => {
    const bob = await login("bob");
    await assert.rejects(redeem(bob), (e: unknown) => (e as { error?: string }).error === "invalid_scope");
  });

  test("introspection (RFC 7662): registered resource servers see other clients' tokens, others do not", async () => {
    const tokens = await redeem(await login("alice"));
    const introspect = (c: { id: string; secret: string }, token: string) =>
      tokenRequest(portal.url, c, new URLSearchParams({ token }).toString(), "/oidc/token/introspection");
    const rs = await introspect(RS, tokens.refresh_token!);
    assert.equal(rs.status, 200);
    assert.equal(rs.body.active, true, JSON.stringify(rs.body));
    assert.equal(rs.body.client_id, WMS.id);
    const gw = await introspect({ id: "test-gateway", secret: "test-gateway-secret-0123456789abcdef" }, tokens.refresh_token!);
    assert.equal(gw.body.active, false);
    const own = await introspect(wms, tokens.refresh_token!);
    assert.equal(own.body.active, true);
  });

  test("revocation (RFC 7009) of a refresh token: it no longer refreshes", async () => {
    const tokens = await redeem(await login("alice"));
    const rev = await tokenRequest(portal.url, wms, new URLSearchParams({ token: tokens.refresh_token!, token_type_hint: "refresh_token" }).toString(), "/oidc/token/revocation");
    assert.equal(rev.status, 200);
    const r = await tokenRequest(portal.url, wms, new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }).toString());
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_grant");
  });
});

describe("token exchange (RFC 8693), per-client policy, off by default", () => {
  const exchange = (c: { id: string; secret: string }, subject: string, extra: Record<string, string> = {}) =>
    tokenRequest(portal.url, c, new URLSearchParams({ grant_type: EXCHANGE, subject_token: subject, subject_token_type: AT_TYPE, ...extra }).toString());

  test("a pilot token exchanged for an ARC CE: same subject, the exchanging client in act, no more scope", async () => {
    const pilot = (await tokenRequest(portal.url, PILOTS, pilotBody("ce.example.org:9619", "compute.read compute.create"))).body.access_token as string;
    const r = await exchange(DELEGATE, pilot, { audience: "https://arc.example.org:443", scope: "compute.read" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.issued_token_type, AT_TYPE);
    assert.equal(r.body.token_type, "Bearer");
    const { payload } = await verifyWithJwks(portal.url, r.body.access_token as string);
    assert.equal(payload.sub, PILOTS.id);
    assert.deepEqual(payload.act, { sub: DELEGATE.id });
    assert.equal(payload.aud, "https://arc.example.org:443");
    assert.equal(payload.scope, "compute.read");
    assert.equal(payload["wlcg.ver"], "1.0");
    // more than the subject token carries
    const more = await exchange(DELEGATE, pilot, { audience: "https://arc.example.org:443", scope: "compute.read compute.cancel" });
    assert.equal(more.status, 400);
    assert.equal(more.body.error, "invalid_scope");
    // an audience the policy does not name
    const aud = await exchange(DELEGATE, pilot, { audience: "ce.example.org:9619", scope: "compute.read" });
    assert.equal(aud.status, 400);
    assert.equal(aud.body.error, "invalid_target");
  });

  test("a user token delegated keeps the person and the groups", async () => {
    const login = await loginThroughPortal(portal.url, { user: "alice", gw: { ...WMS }, scope: `openid offline_access wlcg.groups ${COMPUTE}` });
    const tokens = await redeem(login);
    const r = await exchange(DELEGATE, tokens.access_token, { audience: "https://arc.example.org:443", scope: "compute.read wlcg.groups" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = decodeJwt(r.body.access_token as string).payload;
    assert.equal(p.sub, decodeJwt(tokens.access_token).payload.sub);
    assert.deepEqual(p["wlcg.groups"], ["/biomed", "/biomed/lab1"]);
  });

  test("clients without an exchange policy, or a subject token of a client not named, are refused", async () => {
    const pilot = (await tokenRequest(portal.url, PILOTS, pilotBody("ce.example.org:9619", "compute.read"))).body.access_token as string;
    const self = await exchange(PILOTS, pilot, { audience: "https://arc.example.org:443" });
    assert.equal(self.status, 400);
    assert.match(String(self.body.error), /unauthorized_client|invalid_request/);
    const listed = (await tokenRequest(portal.url, LISTED, pilotBody("ce.example.org:9619", "compute.read"))).body.access_token as string;
    const other = await exchange(DELEGATE, listed, { audience: "https://arc.example.org:443", scope: "compute.read" });
    assert.equal(other.status, 400);
    assert.equal(other.body.error, "invalid_grant");
    const garbage = await exchange(DELEGATE, "not-a-token", { audience: "https://arc.example.org:443" });
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.error, "invalid_grant");
  });
});

describe("the admin console shows and edits the token policy, with audit", () => {
  async function post(browser: Browser, path: string, form: Record<string, string>) {
    const cookie = (browser as unknown as { cookieHeader(u: URL): string }).cookieHeader(new URL(portal.url + path));
    const res = await fetch(portal.url + path, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", cookie }, body: new URLSearchParams(form) });
    const location = res.headers.get("location") ?? "";
    // A refused form's message travels in a sealed one-shot cookie, not in the URL.
    const sealed = /certbridge_form=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
    const flash = sealed && location ? new FormMemory(loadConfig(portal.env, () => {}).kek, false).recall(sealed, new URL(location, portal.url).pathname) : null;
    return { status: res.status, location, text: await res.text(), flash };
  }

  test("an administrator permits compute.* for a robot; the change is audited and takes effect", async () => {
    const { browser, page, csrf } = await consoleLogin(portal.url, "alice", `/admin/clients/${NO_COMPUTE.id}`);
    assert.match(page.html, /Tokens for compute elements/);
    assert.match(page.html, /compute scopes.{0,20}not permitted/);
    const refused = await tokenRequest(portal.url, NO_COMPUTE, pilotBody("ce.example.org:9619"));
    assert.equal(refused.body.error, "invalid_scope");
    const form = { csrf: csrf!, format: "wlcg", compute: "on", compute_groups: "", audiences: "ce.example.org:9619", lifetime: "30m", exchange_clients: "", exchange_audiences: "", exchange_scopes: "", reason: "ticket 15: pilots at our CE" };
    const r = await post(browser, `/admin/clients/${NO_COMPUTE.id}/action/token_policy`, form);
    assert.equal(r.status, 303, r.text.slice(0, 500));
    assert.match(decodeURIComponent(r.location), /Token policy saved/);
    const ok = await tokenRequest(portal.url, NO_COMPUTE, pilotBody("ce.example.org:9619"));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.expires_in, 1800);
    const audit = await db.auditEvent.findMany({ where: { action: "client.token_policy", clientId: NO_COMPUTE.id }, select: { actor: true, details: true } });
    assert.equal(audit.length, 1);
    assert.match(audit[0]!.details, /ticket 15/);
    assert.match(audit[0]!.details, /"compute":true/);
    // out of the profile's bounds: refused, nothing changes
    const bad = await post(browser, `/admin/clients/${NO_COMPUTE.id}/action/token_policy`, { ...form, lifetime: "12h" });
    assert.match(bad.flash?.error ?? "", /accessTokenLifetimeSeconds/);
    assert.equal((await tokenRequest(portal.url, NO_COMPUTE, pilotBody("ce.example.org:9619"))).body.expires_in, 1800);
  });
});
