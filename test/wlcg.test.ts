/** WLCG groups from VOMS membership, parametric scopes, and the scope policy (pure functions). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fqanToWlcgGroup, requestedGroupOf, rewriteTokenRequest, tokenGroups, wlcgGroupsFromClaims, wlcgRequestOf } from "../lib/oidc/wlcg";
import { decideScopes, parseStoredTokenPolicy, tokenPolicySchema } from "../lib/oidc/scopePolicy";

describe("VOMS FQANs as WLCG groups", () => {
  test("short and long forms give the same group; roles are optional groups", () => {
    assert.deepEqual(fqanToWlcgGroup("/dteam"), { path: "/dteam", role: false });
    assert.deepEqual(fqanToWlcgGroup("/dteam/Role=NULL/Capability=NULL"), { path: "/dteam", role: false });
    assert.deepEqual(fqanToWlcgGroup("/dteam/sub/Role=NULL/Capability=NULL"), { path: "/dteam/sub", role: false });
    assert.deepEqual(fqanToWlcgGroup("/dteam/Role=pilot"), { path: "/dteam/pilot", role: true });
    assert.deepEqual(fqanToWlcgGroup("/dteam/Role=pilot/Capability=NULL"), { path: "/dteam/pilot", role: true });
    assert.equal(fqanToWlcgGroup("/Role=x"), null);
  });

  test("Check-in entitlements through the VOMS AA's membership mapping", () => {
    const claims = {
      eduperson_entitlement: [
        "urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu",
        "urn:mace:egi.eu:group:biomed:lab1:role=member#aai.egi.eu",
        "urn:mace:egi.eu:group:biomed:role=pilot#aai.egi.eu",
      ],
    };
    assert.deepEqual(wlcgGroupsFromClaims(claims), { groups: ["/biomed", "/biomed/lab1"], optional: ["/biomed/pilot"] });
    assert.deepEqual(wlcgGroupsFromClaims({}, ["/atlas/Role=NULL/Capability=NULL", "/atlas/Role=production/Capability=NULL"]), { groups: ["/atlas"], optional: ["/atlas/production"] });
  });
});

describe("requested groups", () => {
  test("parametric wlcg.groups and Check-in entitlement scopes", () => {
    assert.equal(requestedGroupOf("wlcg.groups:/dteam/pilot"), "/dteam/pilot");
    assert.equal(requestedGroupOf("eduperson_entitlement?value=urn:mace:egi.eu:group:biomed:role=pilot#aai.egi.eu"), "/biomed/pilot");
    assert.equal(requestedGroupOf("eduperson_entitlement?value=urn%3Amace%3Aegi.eu%3Agroup%3Abiomed%3Alab1%3Arole%3Dmember%23aai.egi.eu"), "/biomed/lab1");
    assert.equal(requestedGroupOf("compute.read"), null);
    assert.equal(requestedGroupOf("wlcg.groups:nonsense"), "invalid");
  });

  test("the token request is rewritten: audience remembered, parametric scopes become wlcg.groups", () => {
    const ctx = {};
    const r = rewriteTokenRequest(ctx, "grant_type=refresh_token&refresh_token=x&scope=wlcg.groups%3A%2Fdteam%2Fpilot%20compute.read&audience=ce.example.org%3A9619");
    assert.ok(r && "body" in r);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(r.body)), { grant_type: "refresh_token", refresh_token: "x", scope: "wlcg.groups compute.read" });
    assert.deepEqual(wlcgRequestOf(ctx), { audience: ["ce.example.org:9619"], groups: ["/dteam/pilot"], plainGroups: false });
    assert.equal(rewriteTokenRequest({}, "grant_type=client_credentials&scope=compute.read"), null);
  });

  test("groups in a token: those asked first, then the default ones when plain wlcg.groups was asked", () => {
    const held = { groups: ["/biomed", "/biomed/lab1"], optional: ["/biomed/pilot"] };
    assert.deepEqual(tokenGroups(held, ["/biomed/pilot"], false), { ok: true, groups: ["/biomed/pilot"] });
    assert.deepEqual(tokenGroups(held, ["/biomed/pilot"], true), { ok: true, groups: ["/biomed/pilot", "/biomed", "/biomed/lab1"] });
    assert.deepEqual(tokenGroups(held, [], true), { ok: true, groups: ["/biomed", "/biomed/lab1"] });
    assert.deepEqual(tokenGroups(held, ["/atlas"], true), { ok: false, group: "/atlas" });
  });
});

describe("scope policy", () => {
  test("deny by default; compute.* needs the client's permission and, for people, a named group", () => {
    const none = parseStoredTokenPolicy(null);
    assert.equal(none.format, "opaque");
    assert.deepEqual(decideScopes(none, ["compute.read"], { kind: "client" }), { ok: false, scope: "compute.read", reason: "compute scopes are not permitted for this client" });
    const robots = tokenPolicySchema.parse({ format: "wlcg", compute: true });
    assert.deepEqual(decideScopes(robots, ["compute.create"], { kind: "client" }), { ok: true });
    assert.equal(decideScopes(robots, ["compute.create"], { kind: "user", groups: ["/dteam"] }).ok, false);
    const pilots = tokenPolicySchema.parse({ format: "wlcg", compute: true, computeGroups: ["/dteam/pilot"] });
    assert.equal(decideScopes(pilots, ["compute.create"], { kind: "user", groups: ["/dteam", "/dteam/pilot"] }).ok, true);
    assert.equal(decideScopes(pilots, ["wlcg.groups"], { kind: "user", groups: [] }).ok, true);
  });

  test("lifetimes within the profile; a damaged stored policy denies", () => {
    assert.equal(tokenPolicySchema.safeParse({ accessTokenLifetimeSeconds: 600 }).success, false);
    assert.equal(tokenPolicySchema.safeParse({ accessTokenLifetimeSeconds: 7 * 3600 }).success, false);
    assert.equal(tokenPolicySchema.parse({}).accessTokenLifetimeSeconds, 3600);
    assert.equal(parseStoredTokenPolicy("{not json").compute, false);
    assert.equal(parseStoredTokenPolicy('{"format":"wlcg","compute":"yes"}').format, "opaque");
  });
});

describe("WLCG token signing keys rotate with overlap", () => {
  test("period n's key signs; n+1's is published ahead, n-1's kept; a restart in the next period moves on", async () => {
    const { startTestPortal } = await import("./helpers");
    const { loadTokenKeys, tokenKeyPeriod } = await import("../lib/oidc/tokenKeys");
    const p = await startTestPortal();
    try {
      const period = 7 * 86400;
      const now = 100 * period + 10;
      assert.equal(tokenKeyPeriod(now, period), 100);
      const a = await loadTokenKeys(p.cb.db, p.config.kek, period, now);
      const kids = a.jwks.map((k) => (k as { kid: string }).kid);
      assert.equal(new Set(kids).size, 3);
      assert.equal(a.signingKid(now), kids[0]);
      // the process outlives its period: the key published ahead takes over
      assert.equal(a.signingKid(now + period), kids[1]);
      // another instance (or a restart) in the next period: same keys from the database, shifted
      const b = await loadTokenKeys(p.cb.db, p.config.kek, period, now + period);
      const next = b.jwks.map((k) => (k as { kid: string }).kid);
      assert.equal(b.signingKid(now + period), kids[1]);
      assert.deepEqual([next[0], next[2]], [kids[1], kids[0]], "current = the old next; previous = the old current");
      assert.equal(b.verificationKeys.length, 3);
    } finally {
      await p.cleanup();
    }
  });
});
