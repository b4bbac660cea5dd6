/**
 * Renewal for services, against the production server entry: a terminal
 * login stores a refresh token; /api/renewal-info says until when it can
 * renew; `certbridge-proxy-init --renew` replaces a short-lived proxy before
 * it expires, again and again, keeps going through a portal restart, and stops
 * with a clear message once the consent is revoked. The login is approved
 * through the real pages (code, confirmation, development IdP, consent).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { startPortalServer, type PortalServer } from "./portalHarness";
import { approveDeviceLogin, loginPrompt, PROXY_INIT, startCli } from "./deviceHarness";
import { run } from "./helpers";
import { inspectProxyFile } from "../lib/inspect/proxyFile";

let portal: PortalServer;
let rtFile: string;
let subject: string;
/** Consent lasts 2 h here, so renewal ends long before the 30-day refresh token would. */
const CONSENT_TTL_SECONDS = 2 * 3600;

const readRefreshToken = () => (JSON.parse(fs.readFileSync(rtFile, "utf8")) as { refresh_token: string }).refresh_token;

function renewalInfo(form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${portal.url}/api/renewal-info`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(form) });
}

before(async () => {
  portal = await startPortalServer({ CERTBRIDGE_CONSENT_TTL: `${CONSENT_TTL_SECONDS}s` });
  rtFile = path.join(portal.dir, "refresh-token.json");
  const out = path.join(portal.dir, "login-proxy.pem");
  const cli = startCli(PROXY_INIT, ["--portal", portal.url, "--out", out, "--refresh-token-file", rtFile]);
  const { url } = await loginPrompt(cli);
  await approveDeviceLogin(url, { user: "alice" });
  assert.equal(await cli.exited, 0, cli.stderr());
  assert.equal(fs.statSync(rtFile).mode & 0o777, 0o600);
  subject = inspectProxyFile(fs.readFileSync(out, "utf8")).identity;
});

after(async () => {
  await portal?.cleanup();
});

test("renewal-info: until when the refresh token can renew, and OAuth errors for bad requests", async () => {
  const before = Date.now();
  const res = await renewalInfo({ refresh_token: readRefreshToken(), client_id: "certbridge-cli" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const info = (await res.json()) as Record<string, unknown>;
  assert.equal(info.client_id, "certbridge-cli");
  assert.equal(info.subject, subject);
  assert.equal(info.max_proxy_lifetime, 10 * 86400);
  assert.deepEqual([...(info.scopes as string[])].sort(), ["offline_access", "openid", "profile", "proxy"]);
  // the earliest of refresh-token expiry (30 d) and consent expiry (2 h): the consent
  assert.equal(info.renewable_until, info.consent_expires_at);
  const until = Date.parse(info.renewable_until as string);
  assert.ok(until > before + CONSENT_TTL_SECONDS * 1000 - 120_000 && until <= Date.now() + CONSENT_TTL_SECONDS * 1000, `renewable_until ${info.renewable_until}`);
  assert.ok(Date.parse(info.refresh_token_expires_at as string) > until + 29 * 86400_000 - CONSENT_TTL_SECONDS * 1000);

  const cases: [Record<string, string>, Record<string, string>, number, string][] = [
    [{ refresh_token: "not-a-token", client_id: "certbridge-cli" }, {}, 400, "invalid_grant"],
    [{ refresh_token: readRefreshToken() }, {}, 401, "invalid_client"],
    [{ refresh_token: readRefreshToken(), client_id: "test-gateway" }, {}, 401, "invalid_client"], // confidential: needs its secret
    [{ refresh_token: readRefreshToken(), client_id: "test-gateway", client_secret: "test-gateway-secret-0123456789abcdef" }, {}, 400, "invalid_grant"], // not its token
    [{ refresh_token: readRefreshToken(), client_id: "no-such-client" }, {}, 401, "invalid_client"],
    [{ client_id: "certbridge-cli" }, {}, 400, "invalid_request"],
    [{ refresh_token: readRefreshToken() }, { authorization: "Bearer abc" }, 401, "invalid_client"],
  ];
  for (const [form, headers, status, error] of cases) {
    const r = await renewalInfo(form, headers);
    const body = (await r.json()) as { error: string; error_description: string };
    assert.equal(r.status, status, JSON.stringify({ form, body }));
    assert.equal(body.error, error, JSON.stringify(form));
    assert.ok(body.error_description.length > 10);
  }
  const repeated = await fetch(`${portal.url}/api/renewal-info`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "refresh_token=a&refresh_token=b&client_id=certbridge-cli" });
  assert.equal(repeated.status, 400);
  assert.equal(((await repeated.json()) as { error: string }).error, "invalid_request");
  const json = await fetch(`${portal.url}/api/renewal-info`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(json.status, 400);
  assert.equal((await fetch(`${portal.url}/api/renewal-info`)).status, 405);
  // asking does not spend the token
  assert.equal((await renewalInfo({ refresh_token: readRefreshToken(), client_id: "certbridge-cli" })).status, 200);
});

test("--renew --once: renews a missing proxy, warns that renewal ends within --warn-before (exit 3, webhook)", async () => {
  const received: unknown[] = [];
  const hook = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  const webhook = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  const out = path.join(portal.dir, "once.pem");
  const spent = readRefreshToken();
  const once = startCli(PROXY_INIT, ["--renew", "--once", "--refresh-token-file", rtFile, "--out", out, "--warn-before", "3h", "--webhook", webhook]);
  const status = await once.exited;
  hook.close();
  assert.equal(status, 3, once.stderr());
  assert.match(once.stderr(), /renewed .*once\.pem: serial \d+, valid until/);
  assert.match(once.stderr(), /WARNING: renewal for .* is possible only until \S+ \(in 1h5\dm\d*s?; the consent expires\)\. Log in again before then/);
  for (const line of once.stderr().trimEnd().split("\n")) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z certbridge-proxy-init: /);
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);
  assert.equal(run("grid-proxy-info", ["-f", out, "-exists", "-valid", "1:00"]).status, 0);
  // the token was rotated, and the new one stored
  assert.notEqual(readRefreshToken(), spent);
  assert.equal(received.length, 1);
  const event = received[0] as Record<string, unknown>;
  assert.equal(event.event, "certbridge.renewal_ending");
  assert.equal(event.subject, subject);
  assert.equal(event.proxy_file, out);
  assert.ok(typeof event.renewable_until === "string" && typeof event.seconds_left === "number" && event.seconds_left <= CONSENT_TTL_SECONDS);

  // not due: nothing renewed, exit 0 without the warning threshold
  const quiet = startCli(PROXY_INIT, ["--renew", "--once", "--refresh-token-file", rtFile, "--out", out, "--warn-before", "1h"]);
  assert.equal(await quiet.exited, 0, quiet.stderr());
  assert.match(quiet.stderr(), /is valid until .*; not due before/);
  assert.doesNotMatch(quiet.stderr(), /renewed|WARNING/);
});

test("--renew: replaces the proxy before it expires, survives a portal restart, stops when consent is revoked", async () => {
  const out = path.join(portal.dir, "service-proxy.pem");
  // 60 s proxies renewed when less than 90 % is left: a renewal about every 6 s
  const daemon = startCli(PROXY_INIT, ["--renew", "--refresh-token-file", rtFile, "--out", out, "--valid", "0:01", "--renew-fraction", "0.9", "--max-backoff", "2s", "--warn-before", "1m"]);
  try {
    const renewed = /renewed \S+: serial (\d+), valid until (\S+)/g;
    await daemon.waitFor(/(?:renewed [^\n]*\n[\s\S]*?){3}/, "stderr");
    const serials = [...daemon.stderr().matchAll(renewed)].map((m) => m[1]);
    assert.ok(new Set(serials).size >= 3, `distinct serials: ${serials.join(" ")}`);
    // each replacement happened while the proxy it replaced was still valid
    for (const m of daemon.stderr().matchAll(/^(\S+) certbridge-proxy-init: \S+ expires (\S+): renewing$/gm)) {
      assert.ok(Date.parse(m[1]!) < Date.parse(m[2]!), m[0]);
    }
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    assert.equal(inspectProxyFile(fs.readFileSync(out, "utf8")).serial, serials[serials.length - 1]);

    // the portal goes away: the renewer backs off and keeps the current proxy
    await portal.stop();
    const lastBefore = [...daemon.stderr().matchAll(renewed)].length;
    await daemon.waitFor(/portal unavailable \(.*unreachable \(.*\)\), attempt 2\n.*retrying in \d+s; the current proxy stays in place/, "stderr");
    const kept = inspectProxyFile(fs.readFileSync(out, "utf8"));
    assert.equal(kept.serial, serials[serials.length - 1]);
    assert.ok(kept.notAfter.getTime() > Date.now());
    // same port, same data and database: the stored refresh token is still good
    await portal.restart();
    await daemon.waitFor(new RegExp(`(?:renewed [^\\n]*\\n[\\s\\S]*?){${lastBefore + 1}}`), "stderr");
    assert.ok(daemon.child.exitCode === null, "the renewer is still running");

    // the person revokes the consent (RFC 7009 revocation of the refresh token takes the whole grant)
    const revoke = await fetch(`${portal.url}/oidc/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: readRefreshToken(), token_type_hint: "refresh_token", client_id: "certbridge-cli" }),
    });
    assert.equal(revoke.status, 200);
    const status = await daemon.exited;
    assert.equal(status, 1);
    assert.match(daemon.stderr(), /renewal stopped: the portal refused the refresh token \(invalid_grant: [^)]*\)\. The consent was revoked or has expired; log in again with: certbridge-proxy-init --refresh-token-file /);
    for (const line of daemon.stderr().trimEnd().split("\n")) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z certbridge-proxy-init: /);
    assert.ok(!fs.existsSync(`${rtFile}.lock`), "the lock is released");
    // and renewal-info agrees
    const info = await renewalInfo({ refresh_token: readRefreshToken(), client_id: "certbridge-cli" });
    assert.equal(info.status, 400);
    assert.equal(((await info.json()) as { error: string }).error, "invalid_grant");
  } finally {
    if (daemon.child.exitCode === null) daemon.child.kill("SIGTERM");
  }
});
