/**
 * Adding a way of asking for a proxy is one provisioner file and one
 * registration line: here a test-only provisioner (a "badge reader" that maps
 * a badge to a person by id) issues through the authority, audited like the
 * other channels. Also: channels that resolve the person by id issue with the
 * stored DN even when the stored claims would no longer yield a name.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { claimsFor, certificatesOf, opensslCsr, startTestPortal, tempDir, type TestPortal } from "./helpers";
import { issueProxy } from "../lib/issuance/issueProxy";
import { CertbridgeError } from "../lib/errors";
import { findIdentityClaims } from "../lib/db";
import { ensureIdentity } from "../lib/issuance/identity";
import type { Provisioner } from "../lib/authority/types";
import type { VerifiedClaims } from "../lib/identity/subject";

let portal: TestPortal;
let csrPem: string;

before(async () => {
  portal = await startTestPortal();
  csrPem = opensslCsr(tempDir()).csrPem;
});
after(() => portal.cleanup());

async function personId(sub: string) {
  const p = await issueProxy(portal.cb, { claims: claimsFor(sub, `Badge Holder ${sub}`), publicKey: csrPem, actor: "test" });
  const row = await portal.cb.db.identity.findFirst({ where: { sub }, select: { id: true, subject: true } });
  return { ...row!, first: p };
}

describe("a channel defined outside lib/", () => {
  test("a test-only provisioner issues through the authority, with the actor, IP and audit row of the others", async () => {
    const holder = await personId("badge-1");
    const badges = new Map([["B-0001", holder.id]]);
    // The provisioner file: authorize the input, return the Requester.
    const badgeReader: Provisioner<{ badge: string; terminal: string }> = {
      name: "test-badge-reader",
      async authorize({ badge, terminal }) {
        const id = badges.get(badge);
        if (!id) throw new CertbridgeError("access_denied", `unknown badge ${badge}`);
        const row = (await findIdentityClaims(portal.cb.db, id))!;
        return {
          identity: { id: row.id, subject: row.subject },
          claims: JSON.parse(row.claims) as VerifiedClaims,
          actor: `badge:${badge}`,
          channel: "test-badge-reader",
          ip: terminal,
          client: { id: "badge-kiosk", maxLifetimeSeconds: 3600 },
          allowedVos: [],
          auditDetails: { channel: "badge", terminal },
        };
      },
    };
    // The registration line.
    const badgeChannel = portal.cb.authority.register(badgeReader);
    assert.ok(portal.cb.authority.channelNames.includes("test-badge-reader"));
    assert.throws(() => portal.cb.authority.register(badgeReader), /already registered/);

    const proxy = await badgeChannel.issueProxy({ badge: "B-0001", terminal: "198.51.100.4" }, { publicKey: csrPem, lifetimeSeconds: 86400 });
    assert.equal(proxy.subject, `${holder.subject}/CN=${proxy.serial}`);
    assert.deepEqual(proxy.lifetime, { seconds: 3600, clamped: true, cappedBy: "client" }, "the client's cap, decided by the authority's policy step");
    assert.equal(certificatesOf(proxy.pem)[1], certificatesOf(holder.first.pem)[1], "signed by the person's user certificate");

    const audit = await portal.cb.db.auditEvent.findFirst({ where: { action: "proxy.issue", certificateId: proxy.certificateId }, select: { actor: true, outcome: true, ip: true, clientId: true, identityId: true, details: true } });
    assert.ok(audit, "the issuance is audited");
    assert.equal(audit.actor, "badge:B-0001");
    assert.equal(audit.outcome, "success");
    assert.equal(audit.ip, "198.51.100.4");
    assert.equal(audit.clientId, "badge-kiosk");
    assert.equal(audit.identityId, holder.id);
    assert.deepEqual(JSON.parse(audit.details).terminal, "198.51.100.4");
    const stored = await portal.cb.db.certificate.findUnique({ where: { id: proxy.certificateId }, select: { kind: true, identityId: true, clientId: true } });
    assert.deepEqual(stored, { kind: "proxy", identityId: holder.id, clientId: "badge-kiosk" });

    // A refusal at the policy step (an empty VO allow-list) is audited by the authority, nothing is stored.
    const before = await portal.cb.db.certificate.count();
    await assert.rejects(
      badgeChannel.issueProxy({ badge: "B-0001", terminal: "198.51.100.4" }, { publicKey: csrPem, voms: [{ vo: "biomed", fqan: null }] }),
      (e: unknown) => e instanceof CertbridgeError && e.status < 500,
    );
    assert.equal(await portal.cb.db.certificate.count(), before);
    const refusal = await portal.cb.db.auditEvent.findFirst({ where: { action: "proxy.refuse", actor: "badge:B-0001" }, select: { outcome: true, details: true } });
    assert.equal(refusal?.outcome, "refused");
    assert.match(refusal!.details, /"stage":"policy"/);
    // The provisioner's own refusal.
    await assert.rejects(badgeChannel.issueProxy({ badge: "B-9999", terminal: "x" }, {}), /unknown badge B-9999/);
  });
});

describe("channels resolve the person by id", () => {
  test("claims that no longer yield a name do not stop an issuance: the DN is the stored one", async () => {
    const holder = await personId("nameless-later");
    // The IdP stopped sending a name: rebuilding the DN from these claims would fail.
    await portal.cb.db.identity.update({ where: { id: holder.id }, data: { claims: JSON.stringify({ iss: "https://idp.example.org/oidc", sub: "nameless-later" }) } });
    for (const issue of [
      () => issueProxy(portal.cb, { claims: { iss: "https://idp.example.org/oidc", sub: "nameless-later" }, publicKey: csrPem, actor: "test" }),
      () => portal.cb.channels.sshKey.issueProxy({ identityId: holder.id, fingerprint: "SHA256:test", ip: "192.0.2.1" }, { publicKey: csrPem }),
      async () => {
        const row = (await findIdentityClaims(portal.cb.db, holder.id))!;
        return portal.cb.channels.consoleSession.issueProxy({ identity: row, claims: JSON.parse(row.claims) as Record<string, unknown>, ip: "192.0.2.2" }, { publicKey: csrPem });
      },
    ]) {
      const p = await issue();
      assert.equal(p.subject, `${holder.subject}/CN=${p.serial}`);
    }
    // A person never seen before still needs claims that make a DN.
    await assert.rejects(issueProxy(portal.cb, { claims: { iss: "https://idp.example.org/oidc", sub: "nameless-new" }, actor: "test" }), (e: unknown) => e instanceof CertbridgeError && e.status === 400);
  });
});

describe("activity", () => {
  test("a proxy on a channel that resolves by id moves the person's last-seen time (for 'active people'), at most once per interval", async () => {
    // A person who signed in once (no proxy yet), last seen 40 days ago.
    const holder = await ensureIdentity({ db: portal.cb.db, clock: portal.cb.clock, policy: portal.cb.config.subject }, claimsFor("badge-activity", "Badge Activity"), "test");
    const old = new Date(Date.now() - 40 * 86400_000);
    await portal.cb.db.identity.update({ where: { id: holder.id }, data: { lastSeenAt: old } });
    const row = (await findIdentityClaims(portal.cb.db, holder.id))!;
    const channel = portal.cb.authority.register<{ id: string }, import("../lib/authority/types").Requester>({
      name: "test-activity",
      async authorize() {
        return { identity: { id: row.id, subject: row.subject }, claims: JSON.parse(row.claims) as VerifiedClaims, actor: "test:activity", channel: "test-activity", allowedVos: null };
      },
    });
    await channel.issueProxy({ id: holder.id }, { publicKey: csrPem });
    const seen = async () => (await portal.cb.db.identity.findUnique({ where: { id: holder.id }, select: { lastSeenAt: true } }))!.lastSeenAt;
    for (let i = 0; i < 50 && (await seen()).getTime() === old.getTime(); i++) await new Promise((r) => setTimeout(r, 20));
    const first = await seen();
    assert.ok(first.getTime() > old.getTime() + 39 * 86400_000, `last seen ${first.toISOString()}`);
    await channel.issueProxy({ id: holder.id }, { publicKey: csrPem });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await seen()).getTime(), first.getTime(), "a second proxy within the interval writes nothing");
  });
});
