/**
 * Limits, client addresses, metrics and request logs, in process: the
 * X-Forwarded-For rule as a table, limit settings and their validation, the
 * rate limiter on the real database with an injected clock (two limiters on
 * two connections count together), the Prometheus text format, and request
 * log lines that hold no token or secret whatever the request carried.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { clientIpOf, TrustedProxies } from "../lib/limits/clientIp";
import { DEFAULT_LIMITS, parseLimitRules } from "../lib/limits/rules";
import { FLUSH_MS, RateLimiter, limitedResult } from "../lib/limits/limiter";
import { loadConfig } from "../lib/config";
import { openDatabase, readRateCounter, purgeRateCounters, type Db } from "../lib/db";
import { Counter, Histogram, metrics, routeOf, createMetricsServer } from "../lib/metrics";
import { trackRequest, outcomeOf } from "../lib/log";
import { startTestPortal, tempDir, type TestPortal } from "./helpers";

describe("X-Forwarded-For: right-most untrusted hop, only through trusted proxies (table)", () => {
  const trusted = new TrustedProxies(["10.0.0.0/8", "192.0.2.10", "2001:db8:1::/48"]);
  const cases: [string, string | undefined, string | undefined, string][] = [
    // name, socket peer, header, expected client
    ["no header: the peer", "198.51.100.7", undefined, "198.51.100.7"],
    ["untrusted peer: its header is ignored", "198.51.100.7", "203.0.113.1", "198.51.100.7"],
    ["untrusted peer cannot forge a trusted chain", "198.51.100.7", "203.0.113.1, 10.0.0.1", "198.51.100.7"],
    ["trusted proxy: the address it reports", "10.1.2.3", "203.0.113.1", "203.0.113.1"],
    ["a forged left-most entry is not the client", "10.1.2.3", "6.6.6.6, 203.0.113.1", "203.0.113.1"],
    ["two trusted hops are skipped", "10.1.2.3", "6.6.6.6, 203.0.113.1, 192.0.2.10", "203.0.113.1"],
    ["all trusted: the left-most", "10.1.2.3", "10.9.9.9, 192.0.2.10", "10.9.9.9"],
    ["several headers joined", "10.1.2.3", "6.6.6.6,203.0.113.9 ,  10.0.0.5", "203.0.113.9"],
    ["IPv4-mapped peer address", "::ffff:10.1.2.3", "203.0.113.1", "203.0.113.1"],
    ["IPv6 trusted proxy", "2001:db8:1::5", "2001:db8:99::1", "2001:db8:99::1"],
    ["IPv6 outside the trusted block", "2001:db8:2::5", "203.0.113.1", "2001:db8:2::5"],
    ["garbage hop: stop at the proxy that reported it", "10.1.2.3", "6.6.6.6, not-an-ip", "10.1.2.3"],
    ["empty header", "10.1.2.3", "", "10.1.2.3"],
  ];
  for (const [name, peer, header, expected] of cases) {
    test(name, () => assert.equal(clientIpOf(peer, header, trusted), expected));
  }
  test("no trusted proxies: the header never counts", () => {
    assert.equal(clientIpOf("127.0.0.1", "203.0.113.1", new TrustedProxies([])), "127.0.0.1");
  });
});

describe("settings", () => {
  test("CERTBRIDGE_RATE_LIMITS overrides named limits and can turn one off", () => {
    const r = parseLimitRules("token.ip_fail=5/1m, getproxy.ip=off user_code.ip_fail=3/15m");
    assert.deepEqual(r["token.ip_fail"], { limit: 5, windowSeconds: 60 });
    assert.equal(r["getproxy.ip"].limit, 0);
    assert.deepEqual(r["user_code.ip_fail"], { limit: 3, windowSeconds: 900 });
    assert.deepEqual(r["token.client_fail"], DEFAULT_LIMITS["token.client_fail"]);
  });
  test("malformed limits, proxies and ports are configuration errors that name the variable", () => {
    const base = { CERTBRIDGE_KEK: Buffer.alloc(32, 1).toString("base64") };
    for (const [env, pattern] of [
      [{ CERTBRIDGE_RATE_LIMITS: "token.ip=lots" }, /CERTBRIDGE_RATE_LIMITS: "token.ip=lots" is not name=count\/window/],
      [{ CERTBRIDGE_RATE_LIMITS: "tokens.ip=1/1m" }, /CERTBRIDGE_RATE_LIMITS: unknown limit "tokens.ip"/],
      [{ CERTBRIDGE_TRUSTED_PROXIES: "10.0.0.0/33" }, /CERTBRIDGE_TRUSTED_PROXIES: "10.0.0.0\/33" has an invalid prefix length/],
      [{ CERTBRIDGE_TRUSTED_PROXIES: "proxy.example.org" }, /CERTBRIDGE_TRUSTED_PROXIES: "proxy.example.org" is not an IP address/],
      [{ CERTBRIDGE_METRICS_PORT: "70000" }, /CERTBRIDGE_METRICS_PORT/],
      [{ CERTBRIDGE_SSH_MAX_AUTH_TRIES: "0" }, /CERTBRIDGE_SSH_MAX_AUTH_TRIES/],
    ] as const) {
      assert.throws(() => loadConfig({ ...base, ...env }, () => {}), pattern, JSON.stringify(env));
    }
  });
  test("defaults: metrics off, request log on, no trusted proxy on http and loopback only behind https, device polling every 5 s", () => {
    const c = loadConfig({}, () => {}).operations;
    assert.equal(c.metrics, null);
    assert.equal(c.requestLog, "json");
    assert.equal(c.trustedProxies.has("127.0.0.1"), false);
    assert.equal(c.devicePollIntervalSeconds, 5);
    assert.deepEqual(c.limits.device_poll, { limit: 2, windowSeconds: 10 });
    const https = loadConfig({ CERTBRIDGE_PUBLIC_URL: "https://portal.example.org" }, () => {}).operations;
    assert.equal(https.trustedProxies.has("127.0.0.1"), true);
    assert.equal(https.trustedProxies.has("10.0.0.1"), false);
    const m = loadConfig({ CERTBRIDGE_METRICS_PORT: "9464" }, () => {}).operations.metrics;
    assert.deepEqual(m, { port: 9464, listenHost: "127.0.0.1" });
  });
});

describe("the rate limiter on the database (injected clock)", () => {
  let portal: TestPortal;
  let second: Db;
  let now = new Date("2030-01-01T00:00:00Z");
  const clock = () => now;
  before(async () => {
    portal = await startTestPortal();
    second = await openDatabase(portal.config.databaseUrl);
  });
  after(async () => {
    await second?.$disconnect();
    await portal?.cleanup();
  });

  test("hit: the limit+1-th request in a window is refused until the window ends, then allowed again", async () => {
    const limiter = new RateLimiter(portal.cb.db, parseLimitRules("getproxy.ip=3/1m"), clock);
    now = new Date("2030-01-01T00:00:10Z");
    for (let i = 1; i <= 3; i++) assert.equal((await limiter.hit("getproxy.ip", "198.51.100.1")).allowed, true, `request ${i}`);
    const refused = await limiter.hit("getproxy.ip", "198.51.100.1");
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterSeconds, 50);
    // another subject is unaffected
    assert.equal((await limiter.hit("getproxy.ip", "198.51.100.2")).allowed, true);
    now = new Date("2030-01-01T00:01:00Z");
    assert.equal((await limiter.hit("getproxy.ip", "198.51.100.1")).allowed, true);
    const r = limitedResult(refused);
    assert.equal(r.status, 429);
    assert.equal(r.headers["retry-after"], "50");
    assert.equal(JSON.parse(r.body as string).error, "too_many_requests");
  });

  test("fail + blocked: a lockout after N failures; two limiters on two connections count together", async () => {
    const rules = parseLimitRules("token.client_fail=4/5m");
    const a = new RateLimiter(portal.cb.db, rules, clock);
    const b = new RateLimiter(second, rules, clock);
    now = new Date("2030-01-01T01:00:00Z");
    assert.equal((await a.blocked("token.client_fail", "gw")).allowed, true);
    await a.fail("token.client_fail", "gw");
    await b.fail("token.client_fail", "gw");
    await a.fail("token.client_fail", "gw");
    assert.equal((await b.blocked("token.client_fail", "gw")).allowed, true, "3 of 4 failures used");
    await b.fail("token.client_fail", "gw");
    assert.equal((await b.blocked("token.client_fail", "gw")).allowed, false, "b's own failure locks out at once");
    assert.equal((await a.blocked("token.client_fail", "gw")).allowed, true, "a read the shared count less than FLUSH_MS ago");
    assert.ok(FLUSH_MS <= 1000);
    now = new Date(now.getTime() + 1000);
    const d = await a.blocked("token.client_fail", "gw");
    assert.equal(d.allowed, false, "a sees b's failures once its read is FLUSH_MS old");
    assert.equal(d.count, 4);
    assert.equal(d.retryAfterSeconds, 299);
    now = new Date("2030-01-01T01:05:00Z");
    assert.equal((await b.blocked("token.client_fail", "gw")).allowed, true, "a new window");
  });

  test("request counts are batched: another instance's hits count once written (flush)", async () => {
    const rules = parseLimitRules("getproxy.client=4/1m");
    const a = new RateLimiter(portal.cb.db, rules, clock);
    const b = new RateLimiter(second, rules, clock);
    now = new Date("2030-01-01T02:00:00Z");
    for (let i = 0; i < 3; i++) assert.equal((await a.hit("getproxy.client", "gw")).allowed, true);
    await a.flush();
    assert.equal(await readRateCounter(second, "getproxy.client:gw", Math.floor(now.getTime() / 1000)), 3, "written as one increment");
    assert.equal((await b.hit("getproxy.client", "gw")).allowed, true);
    await b.flush();
    const refused = await b.hit("getproxy.client", "gw");
    assert.equal(refused.allowed, false, "b now knows of a's three");
    assert.equal(refused.count, 5);
  });

  test("concurrent hits from two connections lose no count", async () => {
    const rules = parseLimitRules("token.ip=1000/1h");
    const a = new RateLimiter(portal.cb.db, rules, clock);
    const b = new RateLimiter(second, rules, clock);
    now = new Date("2030-01-02T00:00:00Z");
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).hit("token.ip", "203.0.113.50")));
    await Promise.all([a.flush(), b.flush()]);
    assert.equal(await readRateCounter(portal.cb.db, "token.ip:203.0.113.50", Math.floor(now.getTime() / 1000)), 40);
  });

  test("long subjects are hashed, an off limit writes nothing, ended windows are purged", async () => {
    const limiter = new RateLimiter(portal.cb.db, parseLimitRules("token.client=2/1m,renewal.ip=off"), clock);
    now = new Date("2030-01-03T00:00:00Z");
    const long = "x".repeat(5000);
    await limiter.hit("token.client", long);
    await limiter.flush();
    const rows = await portal.cb.db.rateCounter.findMany({ where: { key: { startsWith: "token.client:" } }, select: { key: true } });
    assert.ok(rows.every((r) => r.key.length < 100), JSON.stringify(rows));
    const before = await portal.cb.db.rateCounter.count();
    assert.equal((await limiter.hit("renewal.ip", "1.2.3.4")).allowed, true);
    assert.equal(await portal.cb.db.rateCounter.count(), before);
    const purged = await purgeRateCounters(portal.cb.db, Math.floor(new Date("2030-01-03T00:01:01Z").getTime() / 1000));
    assert.ok(purged >= 1);
    assert.equal(await portal.cb.db.rateCounter.count({ where: { key: { startsWith: "token.client:" } } }), 0);
  });

  test("a store failure lets requests through and is counted", async () => {
    // A real database without the table: every counter statement fails.
    const dir = tempDir("certbridge-limits-");
    const unmigrated = await openDatabase(`file:${path.join(dir, "empty.db")}`);
    try {
      const limiter = new RateLimiter(unmigrated, parseLimitRules("token.ip=1/1m"), clock);
      const before = metrics.limiterErrors.get();
      assert.equal((await limiter.blocked("token.ip", "1.2.3.4")).allowed, true);
      assert.equal(await limiter.fail("token.ip", "1.2.3.4"), 0);
      await limiter.hit("token.ip", "1.2.3.4");
      await limiter.flush();
      assert.equal(metrics.limiterErrors.get(), before + 3);
    } finally {
      await unmigrated.$disconnect();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Prometheus text format", () => {
  test("counters, histograms with cumulative buckets, escaped labels", () => {
    const c = new Counter("t_total", "A test.", ["who"]);
    c.inc({ who: 'a"b\\c' });
    c.inc({ who: 'a"b\\c' }, 2);
    assert.equal(c.render(), '# HELP t_total A test.\n# TYPE t_total counter\nt_total{who="a\\"b\\\\c"} 3');
    const h = new Histogram("t_seconds", "Latency.", ["route"], [0.1, 1]);
    h.observe({ route: "/x" }, 0.05);
    h.observe({ route: "/x" }, 0.5);
    h.observe({ route: "/x" }, 5);
    assert.deepEqual(h.render().split("\n").slice(2), [
      't_seconds_bucket{route="/x",le="0.1"} 1',
      't_seconds_bucket{route="/x",le="1"} 2',
      't_seconds_bucket{route="/x",le="+Inf"} 3',
      't_seconds_sum{route="/x"} 5.55',
      't_seconds_count{route="/x"} 3',
    ]);
  });
  test("route templates never carry a query string or an identifier (table)", () => {
    for (const [url, route] of [
      ["/getproxy?access_token=secret-token-value", "/getproxy"],
      ["/oidc/token", "/oidc/token"],
      ["/interaction/Xk3v9QpL2mZt8rWq1yBn4", "/interaction/:id"],
      ["/admin/certificates/cm3f2k9a0000abcd1234/revocation", "/admin/certificates/:id/…"],
      ["/oidc/device?user_code=BCDF-GHJK", "/oidc/device"],
      ["/wp-login.php", "other"],
      ["/", "/"],
      ["/_next/static/chunks/abc.js", "/_next"],
    ] as const) {
      assert.equal(routeOf(url), route, url);
    }
  });
  test("the metrics listener answers GET /metrics only, in the text format", async () => {
    const server = createMetricsServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      for (const name of ["certbridge_proxy_issuance_total", "certbridge_rate_limited_total", "certbridge_http_request_duration_seconds", "process_resident_memory_bytes"]) {
        assert.match(text, new RegExp(`# TYPE ${name} `), name);
      }
      assert.equal((await fetch(`${base}/`)).status, 404);
    } finally {
      server.close();
    }
  });
});

describe("request logs", () => {
  test("one JSON line per request with id, route, status, outcome, duration — and no token or secret from the query, headers or body", async () => {
    const lines: string[] = [];
    const server = http.createServer((req, res) => {
      trackRequest(req, res, "203.0.113.9", (l) => lines.push(l));
      req.resume();
      req.on("end", () => res.writeHead(req.url?.startsWith("/oidc") ? 401 : 200).end("{}"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const secrets = ["at-SECRET-access-token-0123456789", "cs-SECRET-client-secret-abcdef", "rt-SECRET-refresh-token-xyz", "MIICSECRETCSRBASE64"];
    try {
      const r1 = await fetch(`${base}/getproxy?access_token=${secrets[0]}`, { method: "POST", headers: { authorization: `Bearer ${secrets[0]}`, "content-type": "application/x-www-form-urlencoded" }, body: `client_secret=${secrets[1]}&certreq=${secrets[3]}` });
      await r1.text();
      const r2 = await fetch(`${base}/oidc/token`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`gw:${secrets[1]}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" }, body: `grant_type=refresh_token&refresh_token=${secrets[2]}` });
      await r2.text();
      assert.ok(r1.headers.get("x-request-id"));
    } finally {
      server.close();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lines.length, 2);
    const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(a!.route, "/getproxy");
    assert.equal(a!.status, 200);
    assert.equal(a!.outcome, "ok");
    assert.equal(a!.method, "POST");
    assert.equal(a!.ip, "203.0.113.9");
    assert.equal(typeof a!.duration_ms, "number");
    assert.match(String(a!.request_id), /^[A-Za-z0-9_-]{12}$/);
    assert.equal(b!.outcome, "refused");
    for (const s of secrets) assert.ok(!lines.join("\n").includes(s), `a log line holds ${s}`);
  });
  test("outcomes (table)", () => {
    assert.deepEqual(
      [outcomeOf(200, true), outcomeOf(302, true), outcomeOf(401, true), outcomeOf(429, true), outcomeOf(503, true), outcomeOf(200, false)],
      ["ok", "ok", "refused", "limited", "error", "aborted"],
    );
  });
});
