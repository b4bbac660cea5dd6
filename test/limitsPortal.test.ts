/**
 * Limits, client addresses, metrics and request logs against the production
 * server entry (test/portalHarness.ts), with small limits. The test talks
 * through a trusted proxy (loopback, CERTBRIDGE_TRUSTED_PROXIES) and names a
 * different client address per test in X-Forwarded-For, which is also how it
 * shows the right-most-untrusted-hop rule end to end.
 * test/postgresLimitsShared.test.ts runs two portals on one PostgreSQL database.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { CLI_CLIENT_ID, CLI_CLIENT_SCOPES, DEVICE_CODE_GRANT } from "../lib/oidc/cliClient";
import { startPortalServer, loginThroughPortal, redeem, GATEWAY, type PortalServer } from "./portalHarness";

const LOCKED = { id: "lockout-gateway", secret: "lockout-gateway-secret-0123456789abcdef" };
const LIMITS = [
  "token.client_fail=3/5m",
  "token.ip_fail=6/5m",
  "getproxy.ip_fail=5/5m",
  "device_auth.ip=4/10m",
  "user_code.ip_fail=3/15m",
  "renewal.ip=4/1m",
  "authorize.ip=5/1m",
].join(",");

let portal: PortalServer;
let db: Db;
let metricsUrl: string;
/** Every secret a request of this file carried: none may appear in the server's output. */
const secretsSent = new Set<string>();

const basic = (id: string, secret: string) => {
  secretsSent.add(secret);
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
};
const from = (xff: string, headers: Record<string, string> = {}) => ({ "x-forwarded-for": xff, ...headers });
const form = (fields: Record<string, string>) => new URLSearchParams(fields);

async function tokenRequest(xff: string, auth: string | null, fields: Record<string, string>) {
  return fetch(`${portal.url}/oidc/token`, { method: "POST", headers: from(xff, auth ? { authorization: auth } : {}), body: form(fields) });
}

async function getproxyWith(xff: string, token: string) {
  secretsSent.add(token);
  return fetch(`${portal.url}/getproxy`, { method: "POST", headers: from(xff, { authorization: `Bearer ${token}` }), body: form({}) });
}

async function expectLimited(res: Response, error = "too_many_requests", status = 429) {
  const body = (await res.json()) as { error: string; error_description: string };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error, error);
  const retry = Number(res.headers.get("retry-after"));
  assert.ok(retry >= 1 && retry <= 900, `Retry-After ${res.headers.get("retry-after")}`);
  return body;
}

before(async () => {
  portal = await startPortalServer(
    { CERTBRIDGE_RATE_LIMITS: LIMITS, CERTBRIDGE_TRUSTED_PROXIES: "127.0.0.1/32, ::1", CERTBRIDGE_METRICS_PORT: "0" },
    [{ id: LOCKED.id, name: "Lockout Gateway", secret: LOCKED.secret, redirectUris: ["http://localhost:9/lock"] }],
  );
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  const m = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(portal.output());
  assert.ok(m, portal.output());
  metricsUrl = m[1]!;
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

describe("token endpoint", () => {
  test("wrong client secrets lock the client out (429, Retry-After), even with the right secret and from another address", async () => {
    for (let i = 1; i <= 3; i++) {
      const res = await tokenRequest("198.51.100.11", basic(LOCKED.id, `wrong-secret-${i}`), { grant_type: "client_credentials" });
      assert.equal(res.status, 401, `attempt ${i}`);
      await res.text();
    }
    await expectLimited(await tokenRequest("198.51.100.11", basic(LOCKED.id, "wrong-secret-4"), { grant_type: "client_credentials" }));
    await expectLimited(await tokenRequest("198.51.100.12", basic(LOCKED.id, LOCKED.secret), { grant_type: "client_credentials" }));
    // The client_id in the body (client_secret_post) is the same client.
    secretsSent.add("wrong-in-body");
    await expectLimited(await tokenRequest("198.51.100.13", null, { grant_type: "client_credentials", client_id: LOCKED.id, client_secret: "wrong-in-body" }));
    // Other clients are not affected.
    const other = await tokenRequest("198.51.100.12", basic(GATEWAY.id, GATEWAY.secret), { grant_type: "refresh_token", refresh_token: "no-such-token" });
    assert.equal(other.status, 400);
    assert.equal(((await other.json()) as { error: string }).error, "invalid_grant");
  });

  test("wrong credentials from one address lock that address out, whichever client it names", async () => {
    for (let i = 1; i <= 6; i++) {
      const res = await tokenRequest("198.51.100.14", basic(`made-up-client-${i}`, "guess"), { grant_type: "client_credentials" });
      assert.equal(res.status, 401, `attempt ${i}`);
      await res.text();
    }
    await expectLimited(await tokenRequest("198.51.100.14", basic(GATEWAY.id, GATEWAY.secret), { grant_type: "refresh_token", refresh_token: "x" }));
    // A forged left-most X-Forwarded-For entry does not get the client out of its lockout.
    await expectLimited(await tokenRequest("203.0.113.200, 198.51.100.14", basic(GATEWAY.id, GATEWAY.secret), { grant_type: "refresh_token", refresh_token: "x" }));
  });
});

describe("/getproxy", () => {
  test("random tokens: 401 until the lockout, then 429; counted per IP, not one audit row each", async () => {
    const ip = "198.51.100.20";
    for (let i = 1; i <= 5; i++) {
      // The left-most entry is the client's own claim and is ignored: the proxy saw 198.51.100.20.
      const res = await getproxyWith(`10.66.66.${i}, ${ip}`, `random-token-${i}-${"x".repeat(20)}`);
      assert.equal(res.status, 401, `attempt ${i}`);
      await res.text();
    }
    await expectLimited(await getproxyWith(ip, "random-token-6-xxxxxxxxxxxxxxxxxxxx"));
    const other = await getproxyWith("198.51.100.21", "random-token-7-xxxxxxxxxxxxxxxxxxxx");
    assert.equal(other.status, 401, "another address is not locked out");
    await other.text();
    const audited = await db.auditEvent.findMany({ where: { action: "proxy.refuse", ip }, select: { details: true, actor: true } });
    assert.equal(audited.length, 2, "the first refusal of the window and the one that reached the lockout");
    assert.ok(audited.every((a) => a.actor === "anonymous"));
    assert.equal(await db.auditEvent.count({ where: { ip: { startsWith: "10.66.66." } } }), 0, "the forged addresses are nowhere");
    const counter = await db.rateCounter.findFirst({ where: { key: `getproxy.ip_fail:${ip}` }, select: { count: true } });
    assert.equal(counter?.count, 5);
  });

  test("issuances still work from a clean address, and metrics count them by channel, client and outcome", async () => {
    const tokens = await redeem(await loginThroughPortal(portal.url));
    secretsSent.add(tokens.access_token);
    if (tokens.refresh_token) secretsSent.add(tokens.refresh_token);
    for (let i = 0; i < 2; i++) {
      const res = await getproxyWith("198.51.100.30", tokens.access_token);
      assert.equal(res.status, 200, await res.clone().text());
      assert.match(await res.text(), /BEGIN CERTIFICATE/);
    }
    const text = await (await fetch(metricsUrl)).text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"[\]()+.]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    assert.equal(value(`certbridge_proxy_issuance_total{channel="gateway-token",client="${GATEWAY.id}",outcome="issued"}`), 2, text);
    assert.ok(value(`certbridge_token_grants_total{grant_type="authorization_code",client="${GATEWAY.id}",outcome="issued"}`) >= 1);
    assert.ok(value(`certbridge_rate_limited_total{limit="getproxy.ip_fail"}`) >= 1);
    assert.ok(value(`certbridge_rate_limited_total{limit="token.client_fail"}`) >= 1);
    assert.ok(value(`certbridge_refusals_total{channel="gateway-token",reason="invalid_token"}`) >= 5);
    assert.ok(value(`certbridge_proxy_issuance_duration_seconds_count{channel="gateway-token"}`) >= 2);
    assert.ok(value(`certbridge_http_request_duration_seconds_count{route="/getproxy",method="POST",status="2xx"}`) >= 2);
    assert.ok(value(`certbridge_key_pool_keys{state="capacity"}`) >= 1);
    for (const family of ["certbridge_database_errors_total", "certbridge_signer_errors_total", "certbridge_database_pool_connections"]) assert.match(text, new RegExp(`^# TYPE ${family} `, "m"));
    assert.ok(!text.includes(tokens.access_token));
    // SQLite has no connection pool: the family is declared, without samples.
    assert.doesNotMatch(text, /^certbridge_database_pool_connections\{/m);
  });
});

describe("device flow (RFC 8628)", () => {
  const deviceAuth = (xff: string) =>
    fetch(`${portal.url}/oidc/device/auth`, { method: "POST", headers: from(xff), body: form({ client_id: CLI_CLIENT_ID, scope: CLI_CLIENT_SCOPES }) });

  test("the device authorization response names the polling interval; requests per address are limited", async () => {
    for (let i = 1; i <= 4; i++) {
      const res = await deviceAuth("198.51.100.40");
      const body = (await res.json()) as { device_code: string; interval: number };
      assert.equal(res.status, 200);
      assert.equal(body.interval, 5);
      secretsSent.add(body.device_code);
    }
    await expectLimited(await deviceAuth("198.51.100.40"));
  });

  test("polling faster than the interval is answered slow_down", async () => {
    const auth = (await (await deviceAuth("198.51.100.41")).json()) as { device_code: string };
    secretsSent.add(auth.device_code);
    const poll = () => tokenRequest("198.51.100.41", null, { grant_type: DEVICE_CODE_GRANT, device_code: auth.device_code, client_id: CLI_CLIENT_ID });
    const first = await poll();
    assert.equal(((await first.json()) as { error: string }).error, "authorization_pending");
    await (await poll()).text();
    await expectLimited(await poll(), "slow_down", 400);
  });

  /** The code entry page as a person's browser uses it: each answer re-renders the form with a new XSRF token and cookies. */
  async function codePage(xff: string) {
    const cookies = new Map<string, string>();
    let xsrf = "";
    const take = async (res: Response) => {
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        const eq = pair!.indexOf("=");
        cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
      }
      const html = await res.text();
      xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1] ?? xsrf;
      return new Response(html, { status: res.status, headers: res.headers });
    };
    await take(await fetch(`${portal.url}/oidc/device`, { headers: from(xff) }));
    assert.ok(xsrf);
    const cookie = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    return async (userCode: string) => take(await fetch(`${portal.url}/oidc/device`, { method: "POST", headers: from(xff, { cookie: cookie() }), body: form({ xsrf, user_code: userCode }) }));
  }

  test("the confirmation page says where the request came from: the right-most untrusted hop", async () => {
    const res = await fetch(`${portal.url}/oidc/device/auth`, { method: "POST", headers: from("6.6.6.6, 203.0.113.77"), body: form({ client_id: CLI_CLIENT_ID, scope: CLI_CLIENT_SCOPES }) });
    const { user_code } = (await res.json()) as { user_code: string };
    const enter = await codePage("198.51.100.43");
    const page = await (await enter(user_code)).text();
    assert.match(page, /The request came from <code>203\.0\.113\.77<\/code>/);
    assert.ok(!page.includes("6.6.6.6"));
  });

  test("wrong user codes lock the address out (RFC 8628 §5.1), even for a right code; other addresses are unaffected", async () => {
    const { user_code } = (await (await deviceAuth("198.51.100.44")).json()) as { user_code: string };
    const enter = await codePage("198.51.100.45");
    for (const guess of ["BCDF-GHJK", "LMNP-QRST", "VWXZ-BCDF"]) {
      const res = await enter(guess);
      assert.notEqual(res.status, 429);
      assert.match(await res.text(), /This code is not known/);
    }
    const locked = await enter(user_code);
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get("retry-after")) > 0);
    assert.match(await locked.text(), /Too many wrong codes/);
    const elsewhere = await codePage("198.51.100.46");
    const ok = await (await elsewhere(user_code)).text();
    assert.match(ok, /Is this your terminal\?/);
  });
});

describe("authorization endpoint", () => {
  test("requests per address are limited: the one over the limit stores no interaction", async () => {
    const url = `${portal.url}/oidc/auth?${new URLSearchParams({ client_id: GATEWAY.id, response_type: "code", scope: "openid", redirect_uri: GATEWAY.redirect, code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" })}`;
    const interactions = () => db.oidcPayload.count({ where: { model: "Interaction" } });
    const start = await interactions();
    for (let i = 1; i <= 5; i++) {
      const res = await fetch(url, { headers: from("198.51.100.70"), redirect: "manual" });
      assert.equal(res.status, 303, `request ${i}`);
      await res.text();
    }
    const before = await interactions();
    assert.equal(before, start + 5, "each allowed request stores an interaction");
    const res = await fetch(url, { headers: from("198.51.100.70"), redirect: "manual" });
    await expectLimited(res);
    assert.equal(await interactions(), before);
  });

  test("wrong client credentials at introspection count towards the same lockout", async () => {
    for (let i = 1; i <= 6; i++) {
      const res = await fetch(`${portal.url}/oidc/token/introspection`, { method: "POST", headers: from("198.51.100.71", { authorization: basic(`nobody-${i}`, "guess") }), body: form({ token: "x" }) });
      assert.equal(res.status, 401, `attempt ${i}`);
      await res.text();
    }
    await expectLimited(await tokenRequest("198.51.100.71", basic(GATEWAY.id, GATEWAY.secret), { grant_type: "refresh_token", refresh_token: "x" }));
  });
});

describe("renewal-info", () => {
  test("requests per address are limited", async () => {
    const ask = () => fetch(`${portal.url}/api/renewal-info`, { method: "POST", headers: from("198.51.100.50", { authorization: basic(GATEWAY.id, GATEWAY.secret) }), body: form({ refresh_token: "not-a-token" }) });
    for (let i = 1; i <= 4; i++) {
      const res = await ask();
      assert.equal(res.status, 400, `request ${i}`);
      await res.text();
    }
    await expectLimited(await ask());
  });
});

describe("request logs", () => {
  test("one JSON line per request, and no token, secret or code the tests sent appears anywhere in the server's output", async () => {
    // Let the last responses' log lines be written.
    await new Promise((r) => setTimeout(r, 200));
    const out = portal.output();
    const lines = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "request");
    const getproxy = lines.filter((l) => l.route === "/getproxy");
    assert.ok(getproxy.length >= 9, `${getproxy.length} /getproxy lines`);
    assert.ok(getproxy.some((l) => l.outcome === "limited" && l.status === 429 && l.ip === "198.51.100.20"));
    assert.ok(getproxy.some((l) => l.outcome === "ok" && l.status === 200));
    for (const l of lines) {
      assert.match(String(l.request_id), /^[A-Za-z0-9_-]{12}$/);
      assert.equal(typeof l.duration_ms, "number");
    }
    assert.ok(secretsSent.size >= 10);
    for (const s of secretsSent) assert.ok(!out.includes(s), `the server output holds a secret (${s.slice(0, 6)}…)`);
  });
});
