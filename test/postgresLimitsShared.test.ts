/**
 * Two portal processes (the production server entry) on one PostgreSQL
 * database, as a multi-instance deployment runs them: a limit reached
 * through both together holds on both, because the counters live in the
 * shared database (RateCounter), not in either process.
 */
import "./onPostgres.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startPortalServer, GATEWAY, type PortalServer } from "./portalHarness";
import { FLUSH_MS } from "../lib/limits/limiter";

let a: PortalServer;
let b: PortalServer;

const LIMITS = "getproxy.ip_fail=4/5m,token.client_fail=3/5m";

before(async () => {
  a = await startPortalServer({ CERTBRIDGE_RATE_LIMITS: LIMITS, CERTBRIDGE_TRUSTED_PROXIES: "127.0.0.1,::1", CERTBRIDGE_METRICS_PORT: "0" });
  // The second instance: same database, data directory (CA) and secrets; its own port.
  const shared = ["DATABASE_URL", "CERTBRIDGE_DATA_DIR", "CERTBRIDGE_KEK", "CERTBRIDGE_CA_KEY_PASSPHRASE", "CERTBRIDGE_COOKIE_KEYS", "CERTBRIDGE_CLIENTS_FILE"];
  b = await startPortalServer({ ...Object.fromEntries(shared.map((k) => [k, a.env[k]!])), CERTBRIDGE_RATE_LIMITS: LIMITS, CERTBRIDGE_TRUSTED_PROXIES: "127.0.0.1,::1" });
  assert.equal(b.env.DATABASE_URL, a.env.DATABASE_URL);
});
after(async () => {
  await b?.stop();
  await a?.cleanup();
  await b?.cleanup();
});

const getproxy = (portal: PortalServer, ip: string, token: string) =>
  fetch(`${portal.url}/getproxy`, { method: "POST", headers: { "x-forwarded-for": ip, authorization: `Bearer ${token}` }, body: new URLSearchParams() });
const wrongSecret = (portal: PortalServer, ip: string) =>
  fetch(`${portal.url}/oidc/token`, {
    method: "POST",
    headers: { "x-forwarded-for": ip, authorization: `Basic ${Buffer.from(`${GATEWAY.id}:not-the-secret`).toString("base64")}` },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: "x" }),
  });

describe("limits shared by two instances on one PostgreSQL database", () => {
  test("/getproxy: 2 refusals on each instance reach the lockout of 4; both instances then answer 429", async () => {
    for (const [portal, i] of [[a, 1], [b, 2], [a, 3], [b, 4]] as const) {
      const res = await getproxy(portal, "198.51.100.60", `random-token-${i}-xxxxxxxxxxxxxxxxxxxx`);
      assert.equal(res.status, 401, `refusal ${i}`);
      await res.text();
    }
    // Each instance re-reads a shared failure count at most every FLUSH_MS (lib/limits/limiter.ts).
    await new Promise((r) => setTimeout(r, FLUSH_MS + 100));
    for (const portal of [a, b]) {
      const res = await getproxy(portal, "198.51.100.60", "random-token-5-xxxxxxxxxxxxxxxxxxxx");
      assert.equal(res.status, 429);
      assert.ok(Number(res.headers.get("retry-after")) > 0);
      assert.equal(((await res.json()) as { error: string }).error, "too_many_requests");
    }
  });

  test("token endpoint: wrong client secrets on both instances lock the client out on both", async () => {
    for (const [portal, ip] of [[a, "198.51.100.61"], [b, "198.51.100.62"], [a, "198.51.100.63"]] as const) {
      const res = await wrongSecret(portal, ip);
      assert.equal(res.status, 401);
      await res.text();
    }
    await new Promise((r) => setTimeout(r, FLUSH_MS + 100));
    for (const portal of [a, b]) {
      const res = await wrongSecret(portal, "198.51.100.64");
      assert.equal(res.status, 429);
      await res.text();
    }
  });

  test("metrics of an instance on PostgreSQL report its connection pool (total, idle, waiting)", async () => {
    const m = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(a.output());
    assert.ok(m, a.output());
    const text = await (await fetch(m[1]!)).text();
    const sample = (state: string) => Number(new RegExp(`^certbridge_database_pool_connections\\{state="${state}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
    assert.ok(sample("total") >= 1, text);
    assert.ok(sample("idle") >= 0 && sample("idle") <= sample("total"), text);
    assert.ok(sample("waiting") >= 0, text);
  });
});
