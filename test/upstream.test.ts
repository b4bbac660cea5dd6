/**
 * The relying party (lib/upstream.ts) against a scripted OP on loopback: every way the code
 * exchange can fail gets its own reason and log line (token endpoint errors, ID token issuer,
 * audience, nonce, signature, expiry with the clock skew measured, auth_time against max_age,
 * userinfo errors, transport errors), client authentication is sent as configured, discovery is
 * retried a bounded number of times and cached, and readiness reports what it knows.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { DEFAULT_TUNING, Upstream, isUpstreamFailure, type UpstreamSettings } from "../lib/upstream";
import { freePort } from "./portalHarness";

const b64u = (b: Buffer | string) => Buffer.from(b).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

const opKey = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const otherKey = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });

function jwt(claims: Record<string, unknown>, key = opKey.privateKey, kid = "op-1"): string {
  const head = b64u(JSON.stringify({ alg: "RS256", kid, typ: "JWT" }));
  const body = b64u(JSON.stringify(claims));
  return `${head}.${body}.${b64u(crypto.sign("sha256", Buffer.from(`${head}.${body}`), key))}`;
}

interface TokenRequest {
  authorization: string | undefined;
  body: URLSearchParams;
}

/** What the scripted OP does at its token and userinfo endpoints for the next login. */
interface Script {
  token?: (req: TokenRequest, nonce: string) => { status: number; body: unknown; contentType?: string } | "reset";
  userinfo?: () => { status: number; body: unknown };
  discoveryFailures?: number;
}

let server: http.Server;
let issuer: string;
let script: Script = {};
let nonce = "";
const tokenRequests: TokenRequest[] = [];
let discoveryRequests = 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-upstream-"));

const idToken = (extra: Record<string, unknown> = {}) => jwt({ iss: issuer, sub: "user-1", aud: "portal", iat: now(), exp: now() + 300, nonce, name: "Ada Lovelace", ...extra });

before(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    const json = (status: number, body: unknown, contentType = "application/json") => {
      res.writeHead(status, { "content-type": contentType });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    if (url.pathname === "/.well-known/openid-configuration") {
      discoveryRequests++;
      if ((script.discoveryFailures ?? 0) > 0) {
        script.discoveryFailures!--;
        return json(503, "down for maintenance", "text/plain");
      }
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt"],
      });
    }
    if (url.pathname === "/jwks") return json(200, { keys: [{ ...opKey.publicKey.export({ format: "jwk" }), kid: "op-1", use: "sig", alg: "RS256" }] });
    let data = "";
    req.on("data", (c: Buffer) => (data += c.toString()));
    req.on("end", () => {
      if (url.pathname === "/token") {
        const t: TokenRequest = { authorization: req.headers.authorization, body: new URLSearchParams(data) };
        tokenRequests.push(t);
        // The portal's preflight (a made-up code): the OP accepts the client and refuses the code.
        if (t.body.get("code")?.startsWith("certbridge-credential-check-")) return json(400, { error: "invalid_grant" });
        const r = script.token?.(t, nonce) ?? { status: 200, body: { access_token: "at-1", token_type: "Bearer", id_token: idToken() } };
        if (r === "reset") return req.socket.destroy();
        return json(r.status, r.body, r.contentType);
      }
      if (url.pathname === "/userinfo") {
        const r = script.userinfo?.() ?? { status: 200, body: { sub: "user-1", eduperson_entitlement: ["urn:x"] } };
        return json(r.status, r.body);
      }
      json(404, { error: "not_found" });
    });
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

function rp(over: Partial<UpstreamSettings> = {}) {
  const lines: Record<string, unknown>[] = [];
  const up = new Upstream(
    { ...DEFAULT_TUNING, issuer, clientId: "portal", clientSecret: "s3cret", scopes: "openid profile", redirectUri: "http://localhost:9/interaction/callback", retries: 0, timeoutSeconds: 3, ...over },
    (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  );
  return { up, lines };
}

/** A whole login against the scripted OP; resolves to the claims or rejects with the failure. */
async function login(up: Upstream) {
  const { url, state } = await up.startLogin("uid-1", {});
  nonce = state.nonce;
  const cb = new URL(`http://localhost:9/interaction/callback?code=the-code&state=${state.state}&iss=${encodeURIComponent(issuer)}`);
  return { url: new URL(url), claims: up.finishLogin(cb, state) };
}

async function failure(over: Partial<UpstreamSettings>, s: Script) {
  script = s;
  const { up, lines } = rp(over);
  const { claims } = await login(up);
  const e = await claims.then(
    () => assert.fail("the login should have failed"),
    (err: unknown) => err,
  );
  assert.ok(isUpstreamFailure(e), String(e));
  const line = lines.find((l) => l.event === "upstream.login_failed");
  assert.ok(line, "one JSON log line");
  assert.equal(line.ref, e.ref);
  assert.ok(e.message.includes(e.ref), "the page quotes the reference");
  assert.doesNotMatch(JSON.stringify(lines), /s3cret|the-code|at-1/, "no secret, code or token in the log");
  return { e, line, up };
}

describe("a successful login", () => {
  test("claims from the ID token completed from userinfo; the client authenticated with form-encoded Basic by default", async () => {
    script = {};
    tokenRequests.length = 0;
    const { up } = rp({ clientSecret: "a b+c:d%" });
    const { url, claims } = await login(up);
    assert.equal(url.searchParams.get("max_age"), null, "no max_age unless configured");
    const c = await claims;
    assert.equal(c.name, "Ada Lovelace");
    assert.deepEqual(c.eduperson_entitlement, ["urn:x"]);
    const auth = tokenRequests.at(-1)!.authorization!;
    assert.equal(Buffer.from(auth.replace(/^Basic /, ""), "base64").toString(), "portal:a+b%2Bc%3Ad%25", "RFC 6749 §2.3.1");
    assert.equal(up.status().metadata, "fresh");
    assert.equal(up.status().clientAuth, "accepted");
  });

  test("raw Basic, client_secret_post and private_key_jwt send what the IdP expects", async () => {
    script = {};
    tokenRequests.length = 0;
    await (await login(rp({ clientSecret: "a b+c:d%", basicEncoding: "raw" }).up)).claims;
    assert.equal(Buffer.from(tokenRequests.at(-1)!.authorization!.replace(/^Basic /, ""), "base64").toString(), "portal:a b+c:d%");
    await (await login(rp({ tokenAuth: "client_secret_post", clientSecret: "a b+c:d%" }).up)).claims;
    assert.equal(tokenRequests.at(-1)!.authorization, undefined);
    assert.equal(tokenRequests.at(-1)!.body.get("client_secret"), "a b+c:d%");

    const keyFile = path.join(dir, "rp-key.pem");
    const { up } = rp({ tokenAuth: "private_key_jwt", clientSecret: null, privateKeyFile: keyFile });
    await (await login(up)).claims;
    assert.equal((fs.statSync(keyFile).mode & 0o777).toString(8), "600");
    const body = tokenRequests.at(-1)!.body;
    assert.equal(body.get("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    const [h, p, sig] = body.get("client_assertion")!.split(".") as [string, string, string];
    const jwk = up.jwks()!.keys[0] as crypto.JsonWebKey & { kid: string };
    assert.equal(JSON.parse(Buffer.from(h, "base64url").toString()).kid, jwk.kid);
    assert.ok(crypto.verify("sha256", Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(sig, "base64url")));
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as { aud: string; iss: string; sub: string };
    assert.equal(claims.aud, `${issuer}/token`, "OIDC Core §9: the token endpoint is the audience");
    assert.equal(claims.iss, "portal");
    assert.equal(claims.sub, "portal");
    const again = rp({ tokenAuth: "private_key_jwt", clientSecret: null, privateKeyFile: keyFile }).up;
    assert.equal((again.jwks()!.keys[0] as { kid: string }).kid, jwk.kid, "the key is kept, not replaced");
  });

  test("clock tolerance: an ID token expired 20 s ago passes with the default 30 s, fails with 0 s", async () => {
    const expired20 = (): Script => ({ token: () => ({ status: 200, body: { access_token: "at-1", token_type: "Bearer", id_token: idToken({ iat: now() - 320, exp: now() - 20 }) } }) });
    script = expired20();
    assert.equal((await (await login(rp().up)).claims).name, "Ada Lovelace");
    const { line } = await failure({ clockToleranceSeconds: 0 }, expired20());
    assert.equal(line.reason, "id_token_expired");
  });
});

describe("each failure is named", () => {
  test("token endpoint: invalid_client, unauthorized_client, a bare 401, invalid_grant, another error, a 500 page", async () => {
    const cases: [number, unknown, string, string?][] = [
      [401, { error: "invalid_client", error_description: "bad secret" }, "token_client_auth_refused"],
      [400, { error: "unauthorized_client" }, "token_client_auth_refused"],
      [401, "Unauthorized", "token_client_auth_refused", "text/plain"],
      [400, { error: "invalid_grant", error_description: "code expired" }, "token_code_rejected"],
      [400, { error: "invalid_scope" }, "token_error"],
      [500, "<h1>Internal error</h1>", "token_http_error", "text/html"],
    ];
    for (const [status, body, reason, contentType] of cases) {
      const { e, line } = await failure({}, { token: () => ({ status, body, ...(contentType ? { contentType } : {}) }) });
      assert.equal(line.reason, reason, JSON.stringify(body));
      assert.equal(line.stage, "token");
      assert.equal(line.status, status);
      if (typeof body === "object") assert.equal(line.error, (body as { error: string }).error);
      if (reason === "token_code_rejected") assert.equal(e.status, 400, "the person can simply start again");
      else assert.ok(e.status >= 500, "the portal's problem, not the person's");
    }
    const desc = await failure({}, { token: () => ({ status: 401, body: { error: "invalid_client", error_description: "bad secret" } }) });
    assert.equal(desc.line.error_description, "bad secret", "the IdP's own words");
    assert.match(desc.e.message, /contact the operator/);
  });

  test("ID token: issuer, audience, nonce, signature, unknown key, expiry with the skew measured, not yet valid", async () => {
    const withToken = (extra: Record<string, unknown>, key?: crypto.KeyObject, kid?: string): Script => ({
      token: (_r, n) => ({ status: 200, body: { access_token: "at-1", token_type: "Bearer", id_token: key ? jwt({ iss: issuer, sub: "user-1", aud: "portal", iat: now(), exp: now() + 300, nonce: n, ...extra }, key, kid) : idToken(extra) } }),
    });
    assert.equal((await failure({}, withToken({ iss: "https://evil.example" }))).line.reason, "id_token_issuer");
    assert.equal((await failure({}, withToken({ aud: "someone-else" }))).line.reason, "id_token_audience");
    assert.equal((await failure({}, withToken({ nonce: "replayed" }))).line.reason, "id_token_nonce");
    assert.equal((await failure({}, withToken({}, otherKey.privateKey))).line.reason, "id_token_signature");
    assert.equal((await failure({}, withToken({}, otherKey.privateKey, "rotated-away"))).line.reason, "id_token_keys");
    const skewed = await failure({}, withToken({ iat: now() - 900, exp: now() - 600 }));
    assert.equal(skewed.line.reason, "id_token_expired");
    assert.ok(Math.abs(Number(skewed.line.skewSeconds) + 900) <= 2, `skew measured: ${String(skewed.line.skewSeconds)}`);
    assert.equal(skewed.line.toleranceSeconds, 30);
    assert.match(skewed.e.message, /clocks of this portal and of the identity provider disagree/);
    assert.equal((await failure({}, withToken({ nbf: now() + 600 }))).line.reason, "id_token_not_yet_valid");
  });

  test("max_age: sent to the IdP, and an older auth_time (or none) is refused with its own page", async () => {
    const none = await failure({ maxAgeSeconds: 600 }, {});
    assert.equal(none.line.reason, "id_token_invalid", "no auth_time at all");
    script = {};
    const { url, claims } = await login(rp({ maxAgeSeconds: 600 }).up);
    await claims.catch(() => {});
    assert.equal(url.searchParams.get("max_age"), "600");
    const old = await failure({ maxAgeSeconds: 600 }, { token: () => ({ status: 200, body: { access_token: "at-1", token_type: "Bearer", id_token: idToken({ auth_time: now() - 3600 }) } }) });
    assert.equal(old.line.reason, "id_token_auth_time");
    assert.match(old.e.message, /needs a recent sign-in/);
    script = { token: () => ({ status: 200, body: { access_token: "at-1", token_type: "Bearer", id_token: idToken({ auth_time: now() - 60 }) } }) };
    assert.equal((await (await login(rp({ maxAgeSeconds: 600 }).up)).claims).name, "Ada Lovelace");
  });

  test("userinfo: an error status and a different subject are named; the login does not go on without the entitlements", async () => {
    const err = await failure({}, { userinfo: () => ({ status: 500, body: { error: "server_error" } }) });
    assert.equal(err.line.stage, "userinfo");
    assert.equal(err.line.reason, "userinfo_error");
    const other = await failure({}, { userinfo: () => ({ status: 200, body: { sub: "someone-else" } }) });
    assert.equal(other.line.reason, "userinfo_subject");
  });

  test("transport: the IdP dropping the connection at the token endpoint", async () => {
    const { line, e } = await failure({}, { token: () => "reset" });
    assert.equal(line.reason, "idp_unreachable");
    assert.equal(line.stage, "token");
    assert.ok(line.transport);
    assert.equal(e.status, 503);
  });

  test("the IdP refusing the portal itself is found before the person is sent there", async () => {
    script = {};
    const lines: Record<string, unknown>[] = [];
    const refusing = http.createServer((req, res) => {
      const u = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`;
      res.setHeader("content-type", "application/json");
      if (req.url === "/.well-known/openid-configuration") return res.end(JSON.stringify({ issuer: u, authorization_endpoint: `${u}/auth`, token_endpoint: `${u}/token`, jwks_uri: `${u}/jwks`, response_types_supported: ["code"] }));
      res.statusCode = 401;
      res.end(JSON.stringify({ error: "invalid_client", error_description: "Invalid client credentials" }));
    });
    await new Promise<void>((r) => refusing.listen(0, "127.0.0.1", () => r()));
    try {
      const other = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`;
      const up = new Upstream({ ...DEFAULT_TUNING, issuer: other, clientId: "portal", clientSecret: "s3cret", scopes: "openid", redirectUri: "http://localhost:9/cb" }, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
      const e = await up.startLogin("uid", {}).then(() => assert.fail("must not send the person"), (x: unknown) => x);
      assert.ok(isUpstreamFailure(e));
      assert.equal(e.reason, "client_credentials_refused");
      assert.equal(e.stage, "preflight");
      assert.equal(up.status().clientAuth, "refused");
      assert.ok(lines.some((l) => l.event === "upstream.client_auth_refused" && l.error_description === "Invalid client credentials"));
    } finally {
      await new Promise((r) => refusing.close(r));
    }
  });
});

describe("discovery: retried, cached, reported", () => {
  test("a transient 503 is retried a bounded number of times; then the metadata is cached", async () => {
    script = { discoveryFailures: 2 };
    discoveryRequests = 0;
    const { up } = rp({ retries: 2, probeIntervalSeconds: 3600 });
    assert.equal(up.status().metadata, "missing");
    await up.startLogin("uid", {});
    assert.equal(discoveryRequests, 3);
    await up.startLogin("uid", {});
    assert.equal(discoveryRequests, 3, "cached");
    assert.equal(up.status().metadata, "fresh");

    script = { discoveryFailures: 5 };
    discoveryRequests = 0;
    const few = rp({ retries: 1 });
    const e = await few.up.startLogin("uid", {}).then(() => assert.fail("should fail"), (x: unknown) => x);
    assert.equal(discoveryRequests, 2, "bounded");
    assert.ok(isUpstreamFailure(e));
    assert.equal(e.reason, "idp_metadata_invalid");
    assert.equal(few.lines[0]!.status, 503);
    script = {};
  });

  test("an IdP that stops answering: the probe before leaving for it fails with a page, and the cached metadata is reported stale", async () => {
    const port = await freePort();
    const { up } = rp({ issuer: `http://127.0.0.1:${port}`, probeIntervalSeconds: 0 });
    const e = await up.startLogin("uid", {}).then(() => assert.fail("should fail"), (x: unknown) => x);
    assert.ok(isUpstreamFailure(e));
    assert.equal(e.reason, "idp_unreachable");
    assert.equal(e.status, 503);
    assert.match(e.message, new RegExp(`identity provider at http://127.0.0.1:${port} cannot be reached`));
    assert.equal(up.status().metadata, "missing");
    assert.equal(up.status().lastError?.reason, "idp_unreachable");

    const early = rp({ issuer: `http://127.0.0.1:${port}` });
    early.up.warmUp();
    for (let i = 0; i < 50 && !early.lines.length; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(early.lines.map((l) => l.event), ["upstream.discovery_failed"], "at start-up: a warning, not a failed login");
    assert.equal(early.up.status().lastError?.reason, "idp_unreachable");
  });
});
