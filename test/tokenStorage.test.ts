/**
 * Issue 12: bearer secrets are never in the database in clear. After a person signs in through a
 * gateway, redeems the code, refreshes, and a terminal starts a device login, a full dump of the
 * database (sqlite3 .dump, or pg_dump on PostgreSQL — test/postgresTokenStorage.test.ts) contains
 * none of the values the clients and the browser hold; those values still work; and rows an older
 * release stored in clear are rewritten at the next start and keep working.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import path from "node:path";
import * as client from "openid-client";
import { opensslCsr, run } from "./helpers";
import { startPortalServer, loginThroughPortal, redeem, type Browser, type PortalServer } from "./portalHarness";
import { closeDatabase, openDatabase } from "../lib/db";
import { HASHED_ID_PREFIX, SECRET_ID_MODELS, TokenVault } from "../lib/oidc/tokenVault";

let portal: PortalServer;

before(async () => {
  // No refresh-token grace: the rotated-away token must be refused below (reuse detection, as before).
  portal = await startPortalServer({ CERTBRIDGE_REFRESH_TOKEN_GRACE: "0" });
});
after(async () => portal?.cleanup());

const databaseUrl = () => portal.env.DATABASE_URL ?? `file:${path.join(portal.dir, "certbridge.db")}`;

/** The whole database as its own tool dumps it: what a stolen backup holds. */
function dumpDatabase(): string {
  const url = databaseUrl();
  const r = url.startsWith("file:") ? run("sqlite3", [url.slice("file:".length), ".dump"]) : run("pg_dump", ["--data-only", url]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.length > 10_000, "a real dump");
  return r.stdout;
}

/** Cookie values the browser holds for the portal (session and interaction cookies of both providers). */
function cookiesOf(browser: Browser): string[] {
  const jar = (browser as unknown as { jar: Map<string, Map<string, { name: string; value: string }>> }).jar;
  return [...jar.values()].flatMap((m) => [...m.values()]).filter((c) => /session|interaction/i.test(c.name) && !c.name.endsWith(".sig")).map((c) => c.value);
}

const getproxy = (token: string, csrPem: string) =>
  fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new URLSearchParams({ certreq: csrPem, proxylifetime: "3600" }) });

describe("tokens at rest", () => {
  test("a database dump holds none of the tokens, codes or session cookies, and they all still work", async () => {
    const flow = await loginThroughPortal(portal.url);
    const code = flow.callback.searchParams.get("code")!;
    const first = await redeem(flow);
    const refreshed = await client.refreshTokenGrant(flow.config, first.refresh_token!);
    const device = (await (await fetch(`${portal.url}/oidc/device/auth`, { method: "POST", body: new URLSearchParams({ client_id: "certbridge-cli", scope: "openid proxy offline_access" }) })).json()) as {
      device_code: string;
      user_code: string;
    };
    const secrets: Record<string, string> = {
      "authorization code": code,
      "first access token": first.access_token,
      "first refresh token (rotated)": first.refresh_token!,
      "access token": refreshed.access_token,
      "refresh token": refreshed.refresh_token!,
      "device code": device.device_code,
      "user code": device.user_code,
      "user code, as stored": device.user_code.replace(/-/g, ""),
    };
    cookiesOf(flow.browser).forEach((v, i) => (secrets[`browser cookie ${i}`] = v));
    assert.ok(Object.keys(secrets).length >= 10, Object.keys(secrets).join(", "));
    for (const [name, value] of Object.entries(secrets)) assert.ok(value && value.length >= 8, `${name}: ${value}`);

    const dump = dumpDatabase();
    for (const [name, value] of Object.entries(secrets)) assert.equal(dump.includes(value), false, `the dump contains the ${name}`);
    // Nor in any other encoding a careless store might use.
    for (const [name, value] of Object.entries(secrets)) {
      assert.equal(dump.includes(Buffer.from(value).toString("base64")), false, `the dump contains the ${name}, base64`);
      assert.equal(dump.includes(crypto.createHash("sha256").update(value).digest("hex")), false, `the dump contains the ${name}'s plain SHA-256 (guessable user codes must be keyed)`);
    }

    // Every bearer row: hashed id, sealed payload.
    const db = await openDatabase(databaseUrl());
    try {
      const rows = await db.oidcPayload.findMany({ select: { model: true, id: true, payload: true, userCode: true } });
      const bearer = rows.filter((r) => SECRET_ID_MODELS.has(r.model.replace(/^DevIdp\./, "")));
      const models = new Set(bearer.map((r) => r.model));
      for (const m of ["AccessToken", "RefreshToken", "DeviceCode", "Session", "DevIdp.Session"]) assert.ok(models.has(m), `${m} rows among ${[...models].join(", ")}`);
      for (const r of bearer) {
        assert.ok(r.id.startsWith(HASHED_ID_PREFIX), `${r.model} ${r.id}`);
        assert.match(r.payload, /^v1\./, r.model);
        if (r.userCode) assert.ok(r.userCode.startsWith(HASHED_ID_PREFIX));
      }
    } finally {
      await closeDatabase(db);
    }
    // Still working: the access token gets a proxy and the person's claims, the refresh token refreshes.
    const { csrPem } = opensslCsr(portal.dir);
    const proxy = await getproxy(refreshed.access_token, csrPem);
    assert.equal(proxy.status, 200, await proxy.clone().text());
    const me = await fetch(`${portal.url}/oidc/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { sub: string }).sub.length > 0, true);
    const again = await client.refreshTokenGrant(flow.config, refreshed.refresh_token!);
    assert.ok(again.access_token);
    // The rotated-away refresh token and a made-up one are refused, as before.
    await assert.rejects(client.refreshTokenGrant(flow.config, first.refresh_token!), (e: unknown) => (e as { error?: string }).error === "invalid_grant");
    const bogus = await getproxy(crypto.randomBytes(32).toString("base64url"), csrPem);
    assert.equal(bogus.status, 401);
    // The device code polls as a pending authorization, found by its hash.
    const poll = await fetch(`${portal.url}/oidc/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: device.device_code, client_id: "certbridge-cli" }),
    });
    assert.equal(((await poll.json()) as { error: string }).error, "authorization_pending");
    // The user code is found by its hash too: entering it leads to the confirmation page; a wrong one does not.
    const enter = async (userCode: string) => {
      const form = await flow.browser.go(`${portal.url}/oidc/device`);
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(form.html)?.[1];
      assert.ok(xsrf, form.html.slice(0, 500));
      return flow.browser.submit(form, /\/oidc\/device$/, { xsrf, user_code: userCode });
    };
    assert.match((await enter(device.user_code)).html, /Is this your terminal\?/);
    assert.doesNotMatch((await enter("BCDF-GHJK")).html, /Is this your terminal\?/);
  });

  test("tokens an older release stored in clear are rewritten at the next start, and keep working", async () => {
    const flow = await loginThroughPortal(portal.url);
    const tokens = await redeem(flow);
    const vault = new TokenVault(Buffer.from(portal.env.CERTBRIDGE_KEK!, "base64"));
    await portal.stop();
    // Turn this access token and refresh token back into what earlier releases wrote: the value as the id, the payload in clear.
    const db = await openDatabase(databaseUrl());
    try {
      for (const [model, value] of [["AccessToken", tokens.access_token], ["RefreshToken", tokens.refresh_token!]] as const) {
        const storedId = vault.index(value);
        const row = await db.oidcPayload.findUnique({ where: { model_id: { model, id: storedId } } });
        assert.ok(row, `${model} row`);
        await db.oidcPayload.update({ where: { model_id: { model, id: storedId } }, data: { id: value, payload: vault.open(model, storedId, row.payload) } });
      }
    } finally {
      await closeDatabase(db);
    }
    assert.ok(dumpDatabase().includes(tokens.access_token), "the legacy row is in clear before the upgrade");
    await portal.restart();
    assert.match(portal.output(), /stored tokens, codes and sessions now kept by keyed hash: 2 rows rewritten/);
    const dump = dumpDatabase();
    assert.equal(dump.includes(tokens.access_token), false);
    assert.equal(dump.includes(tokens.refresh_token!), false);
    const { csrPem } = opensslCsr(portal.dir);
    const proxy = await getproxy(tokens.access_token, csrPem);
    assert.equal(proxy.status, 200, await proxy.clone().text());
    const refreshed = await client.refreshTokenGrant(flow.config, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    // A second start finds nothing left to rewrite.
    await portal.restart();
    assert.doesNotMatch(portal.output(), /rows rewritten/);
  });

  test("a used access token whose sealed row then changes is refused: what was opened before is not served from memory", async () => {
    const token = (await redeem(await loginThroughPortal(portal.url))).access_token;
    const { csrPem } = opensslCsr(portal.dir);
    assert.equal((await getproxy(token, csrPem)).status, 200);
    const db = await openDatabase(databaseUrl());
    try {
      const rows = await db.oidcPayload.findMany({ where: { model: "AccessToken" }, select: { id: true, payload: true } });
      assert.ok(rows.length > 0);
      // One bit of each ciphertext's first byte changed, the envelope re-encoded well-formed: GCM's tag no longer matches.
      // (Changing the last base64url character instead can touch only unused bits, which the opener refuses as a format error.)
      const flip = (sealed: string) => {
        const fields = sealed.split(".");
        const ciphertext = Buffer.from(fields[3]!, "base64url");
        ciphertext[0]! ^= 0x01;
        return [...fields.slice(0, 3), ciphertext.toString("base64url")].join(".");
      };
      for (const r of rows) await db.oidcPayload.updateMany({ where: { model: "AccessToken", id: r.id }, data: { payload: flip(r.payload) } });
      // A row that fails to open is the database's fault, not the caller's: a server error (and no proxy).
      const tampered = await getproxy(token, csrPem);
      assert.equal(tampered.status, 500, "the tampered row is opened again, and fails");
      assert.equal(((await tampered.json()) as { error: string }).error, "server_error");
      for (const r of rows) await db.oidcPayload.updateMany({ where: { model: "AccessToken", id: r.id }, data: { payload: r.payload } });
      assert.equal((await getproxy(token, csrPem)).status, 200, "the restored row works again");
    } finally {
      await closeDatabase(db);
    }
  });
});
