/**
 * The refresh-token grace period at the storage adapter, on an injected clock (issue 14.6): a
 * rotated refresh token reads as unused until its grace period after the FIRST use ends, then as
 * consumed (oidc-provider then revokes the grant); other artefacts (codes) are consumed at once.
 * The end-to-end behaviour with oidc-provider: test/oidcAgent.test.ts "refresh-token rotation".
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { AdapterPayload } from "oidc-provider";
import { startTestPortal, type TestPortal } from "./helpers";
import { prismaAdapterFactory } from "../lib/oidc/adapter";
import { loadConfig } from "../lib/config";

let portal: TestPortal;
before(async () => {
  portal = await startTestPortal();
});
after(async () => portal?.cleanup());

const T0 = Date.UTC(2030, 0, 1);
const GRACE = 3600;

test("a used refresh token reads as unused during the grace period after its first use, consumed after it", async () => {
  let now = T0;
  const Adapter = prismaAdapterFactory(portal.cb.db, portal.config.kek, "", { refreshTokenGraceSeconds: GRACE, now: () => now });
  const tokens = new Adapter("RefreshToken");
  await tokens.upsert("rt-grace", { accountId: "a", clientId: "c", grantId: "g" } as AdapterPayload, 30 * 86400);
  await tokens.consume("rt-grace");
  assert.equal((await tokens.find("rt-grace"))?.consumed, undefined, "just used: still usable");
  now = T0 + (GRACE - 1) * 1000;
  await tokens.consume("rt-grace"); // a second use inside the window does not extend it
  assert.equal((await tokens.find("rt-grace"))?.consumed, undefined, "one second before the end");
  now = T0 + GRACE * 1000;
  assert.equal((await tokens.find("rt-grace"))?.consumed, Math.floor(T0 / 1000), "consumed since its first use");

  const codes = new Adapter("AuthorizationCode");
  now = T0;
  await codes.upsert("code-1", { accountId: "a", clientId: "c", grantId: "g" } as AdapterPayload, 60);
  await codes.consume("code-1");
  assert.equal((await codes.find("code-1"))?.consumed, Math.floor(T0 / 1000), "codes get no grace");
});

test("no grace: consumed at once", async () => {
  const Adapter = prismaAdapterFactory(portal.cb.db, portal.config.kek, "", { refreshTokenGraceSeconds: 0, now: () => T0 });
  const tokens = new Adapter("RefreshToken");
  await tokens.upsert("rt-none", { accountId: "a", clientId: "c", grantId: "g" } as AdapterPayload, 86400);
  await tokens.consume("rt-none");
  assert.equal((await tokens.find("rt-none"))?.consumed, Math.floor(T0 / 1000));
});

test("CERTBRIDGE_REFRESH_TOKEN_GRACE: a day by default, 0 switches it off, nonsense is refused", () => {
  const load = (extra: Record<string, string>) => loadConfig({ ...portal.env, ...extra }, () => {});
  assert.equal(load({}).portal.refreshTokenGraceSeconds, 86400);
  assert.equal(load({ CERTBRIDGE_REFRESH_TOKEN_GRACE: "0" }).portal.refreshTokenGraceSeconds, 0);
  assert.equal(load({ CERTBRIDGE_REFRESH_TOKEN_GRACE: "2h" }).portal.refreshTokenGraceSeconds, 7200);
  for (const bad of ["-1", "soon", "1y"]) assert.throws(() => load({ CERTBRIDGE_REFRESH_TOKEN_GRACE: bad }), /CERTBRIDGE_REFRESH_TOKEN_GRACE/);
  assert.equal(load({}).registration, null, "registration off by default");
  assert.deepEqual(load({ CERTBRIDGE_DYNAMIC_REGISTRATION: "1" }).registration, { scopes: ["openid", "profile", "offline_access"], maxClients: 500 });
  assert.throws(() => load({ CERTBRIDGE_DYNAMIC_REGISTRATION: "yes" }), /CERTBRIDGE_DYNAMIC_REGISTRATION/);
});
