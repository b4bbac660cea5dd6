/**
 * The seams of the portal, over HTTP against the production server entry: the one error edge
 * (the same failure is the same answer everywhere), the console gate (admin refusals audited for
 * reads as well as writes), and token issuance audited through the provider's events.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";
import { loadConfig } from "../lib/config";
import { openDatabase, type Db } from "../lib/db";
import { consoleLogin, GATEWAY, loginThroughPortal, redeem, startPortalServer, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let db: Db;

before(async () => {
  // no refresh-token grace: a reused refresh token is refused at once (the grace period: test/oidcAgent.test.ts)
  portal = await startPortalServer({ CERTBRIDGE_REFRESH_TOKEN_GRACE: "0" });
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
});

const events = (action: string) => db.auditEvent.findMany({ where: { action }, orderBy: { at: "asc" }, select: { actor: true, clientId: true, identityId: true, details: true, outcome: true } });

describe("one error edge", () => {
  test("a wrong client secret is 401 invalid_client at /getproxy and at renewal-info, with a Basic challenge", async () => {
    const flow = await loginThroughPortal(portal.url);
    const tokens = await redeem(flow);
    const getproxy = await fetch(`${portal.url}/getproxy`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.access_token}` },
      body: new URLSearchParams({ client_id: GATEWAY.id, client_secret: "wrong-secret-wrong-secret" }),
    });
    const renewal = await fetch(`${portal.url}/api/renewal-info`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ refresh_token: tokens.refresh_token!, client_id: GATEWAY.id, client_secret: "wrong-secret-wrong-secret" }),
    });
    for (const [name, res] of [["getproxy", getproxy], ["renewal-info", renewal]] as const) {
      assert.equal(res.status, 401, name);
      assert.equal(res.headers.get("content-type"), "application/json", name);
      const body = (await res.json()) as { error: string };
      assert.equal(body.error, "invalid_client", name);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Basic /, name);
    }
  });

  test("a method /getproxy does not take and an over-long body are JSON errors from the same edge", async () => {
    const put = await fetch(`${portal.url}/getproxy`, { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(((await put.json()) as { error: string }).error, "invalid_request");
    const big = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "x=" + "a".repeat(70_000) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: string }).error, "invalid_request");
  });
});

describe("the console gate", () => {
  test("a non-administrator's GET of admin pages and downloads is refused with 403 and audited as a read", async () => {
    const bob = await consoleLogin(portal.url, "bob", "/account");
    const before = (await events("admin.refuse")).length;
    for (const path of ["/admin", "/admin/audit/export?format=csv", "/admin/clients/test-gateway/secret"]) {
      assert.equal((await bob.browser.go(portal.url + path)).status, 403, path);
    }
    const refused = (await events("admin.refuse")).slice(before);
    assert.equal(refused.length, 3);
    assert.ok(refused.every((e) => e.outcome === "refused" && /"read":true/.test(e.details) && e.actor.startsWith("user:")), JSON.stringify(refused));
    assert.deepEqual(refused.map((e) => (JSON.parse(e.details) as { attempted: string }).attempted), ["view /admin", "audit.export", "client.secret.view"]);
  });

  test("without a session, admin downloads are 401 and nothing is audited", async () => {
    const before = (await events("admin.refuse")).length;
    const r = await fetch(`${portal.url}/admin/audit/export?format=csv`);
    assert.equal(r.status, 401);
    assert.equal((await events("admin.refuse")).length, before);
  });
});

describe("token issuance is audited through the provider's events", () => {
  test("code, then refresh: one token.issue each, with client, person and grant type; a reused refresh token is audited as refused", async () => {
    const before = (await events("token.issue")).length;
    const flow = await loginThroughPortal(portal.url, { user: "zoe" });
    const tokens = await redeem(flow);
    const refreshed = await client.refreshTokenGrant(flow.config, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    const issued = (await events("token.issue")).slice(before);
    assert.equal(issued.length, 2, JSON.stringify(issued));
    assert.deepEqual(issued.map((e) => (JSON.parse(e.details) as { grantType: string }).grantType), ["authorization_code", "refresh_token"]);
    const zoe = await db.identity.findFirst({ where: { sub: "zoe" }, select: { id: true } });
    for (const e of issued) {
      assert.equal(e.clientId, GATEWAY.id);
      assert.equal(e.actor, `client:${GATEWAY.id}`);
      assert.equal(e.identityId, zoe!.id);
      assert.doesNotMatch(e.details, new RegExp(tokens.access_token.slice(0, 20)));
      assert.match(e.details, /"refreshToken":true/);
    }
    const refusedBefore = (await events("token.refuse")).length;
    await assert.rejects(client.refreshTokenGrant(flow.config, tokens.refresh_token!));
    const refused = (await events("token.refuse")).slice(refusedBefore);
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.details, /"grantType":"refresh_token".*"error":"invalid_grant"/);
  });
});
