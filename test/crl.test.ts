/**
 * The stored CRL: signed on revocation and on schedule by one writer, served
 * as stored. Reading it (GET /ca/crl.der, `ca crl`, `ca bundle`) never signs
 * or bumps the number. With CERTBRIDGE_TEST_POSTGRES, two instances on one
 * PostgreSQL database revoke concurrently and the numbers still strictly
 * increase with no repeat.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { claimsFor, createPgDatabase, opensslCsr, startTestPortal, tempDir, testEnvironment, type TestPortal } from "./helpers";
import { startPortalServer, type PortalServer } from "./portalHarness";
import { issueProxy } from "../lib/issuance/issueProxy";
import { currentCrl, refreshCrlIfDue, revokeUserCertificate } from "../lib/ca/revocation";
import { findCurrentCrl } from "../lib/db";
import { loadConfig } from "../lib/config";
import { startCertbridge, type Certbridge } from "../lib/certbridge";
import * as pkijs from "pkijs";

const crlNumberOf = (der: Uint8Array) => {
  const crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(der));
  const ext = crl.crlExtensions!.extensions.find((e) => e.extnID === "2.5.29.20")!;
  return Number((ext.parsedValue as { valueBlock: { valueDec: number } }).valueBlock.valueDec);
};
const serialsOf = (der: Uint8Array) =>
  (pkijs.CertificateRevocationList.fromBER(new Uint8Array(der)).revokedCertificates ?? []).map((r) => Buffer.from(r.userCertificate.valueBlock.valueHexView).toString("hex").replace(/^(00)+(?=.)/, ""));

async function userCertOf(cb: Certbridge, sub: string, csrPem: string) {
  await issueProxy(cb, { claims: claimsFor(sub, `Person ${sub}`), publicKey: csrPem, actor: "test" });
  const row = await cb.db.certificate.findFirst({ where: { kind: "user", identity: { sub } }, select: { id: true, serialHex: true } });
  return row!;
}

describe("the stored CRL", () => {
  let portal: TestPortal;
  let csrPem: string;
  before(async () => {
    portal = await startTestPortal();
    csrPem = opensslCsr(tempDir()).csrPem;
  });
  after(() => portal.cleanup());

  test("revoking a certificate updates the stored CRL at once: the serial is listed, the number is one more", async () => {
    const before = await currentCrl(portal.cb);
    const cert = await userCertOf(portal.cb, "crl-revokee", csrPem);
    await revokeUserCertificate(portal.cb, { id: cert.id }, "keyCompromise", { actor: "test", comment: "test" });
    const stored = await findCurrentCrl(portal.cb.db, portal.cb.ca.fingerprint);
    assert.equal(stored!.number, before.number + 1);
    assert.equal(crlNumberOf(stored!.der), before.number + 1);
    assert.ok(serialsOf(stored!.der).includes(cert.serialHex), "the revoked serial is on the stored CRL");
    assert.equal(stored!.revokedCount, 1);
  });

  test("reading the CRL does not sign: currentCrl returns the stored bytes; the schedule re-signs only when due", async () => {
    const a = await currentCrl(portal.cb);
    const b = await currentCrl(portal.cb);
    assert.equal(b.number, a.number);
    assert.deepEqual(Buffer.from(b.der), Buffer.from(a.der));
    assert.equal(await refreshCrlIfDue(portal.cb), null, "fresh: nothing to do");
    // Near the end of its lifetime (less than a third left), the schedule signs the next one.
    const late = { ...portal.cb, clock: () => new Date(a.nextUpdate.getTime() - 60_000) };
    const next = await refreshCrlIfDue(late);
    assert.equal(next?.number, a.number + 1);
    assert.ok(next!.nextUpdate > a.nextUpdate, "the new CRL overlaps the old one");
  });
});

describe("GET /ca/crl.der through the running portal", () => {
  let server: PortalServer;
  before(async () => {
    server = await startPortalServer();
  });
  after(() => server.cleanup());

  test("a thousand downloads leave the CRL number unchanged and return identical bytes; caches must revalidate (a revocation shows at once)", async () => {
    const first = await fetch(`${server.url}/ca/crl.der`);
    assert.equal(first.status, 200);
    const bytes = Buffer.from(await first.arrayBuffer());
    const number = crlNumberOf(bytes);
    assert.equal(first.headers.get("content-type"), "application/pkix-crl");
    assert.ok(first.headers.get("last-modified"));
    // No freshness lifetime: fetch-crl and HTTP caches would otherwise keep the old CRL after a revocation.
    assert.equal(first.headers.get("cache-control"), "public, no-cache");
    assert.equal(first.headers.get("expires"), null);
    const etag = first.headers.get("etag");
    assert.ok(etag);

    for (let round = 0; round < 10; round++) {
      const bodies = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const r = await fetch(`${server.url}/ca/crl.der`);
          assert.equal(r.status, 200);
          assert.equal(r.headers.get("etag"), etag);
          return Buffer.from(await r.arrayBuffer());
        }),
      );
      for (const b of bodies) assert.ok(b.equals(bytes), "identical bytes");
    }
    const last = Buffer.from(await (await fetch(`${server.url}/ca/crl.der`)).arrayBuffer());
    assert.equal(crlNumberOf(last), number, "no download signed a new CRL");
    const revalidated = await fetch(`${server.url}/ca/crl.der`, { headers: { "if-none-match": etag! } });
    assert.equal(revalidated.status, 304);
  });
});

describe("two instances on one PostgreSQL database", { skip: process.env.CERTBRIDGE_TEST_POSTGRES ? false : "CERTBRIDGE_TEST_POSTGRES is not set" }, () => {
  test("revoking concurrently gives strictly increasing CRL numbers with no repeat, and the last lists every serial", async () => {
    const pgDb = await createPgDatabase(process.env.CERTBRIDGE_TEST_POSTGRES!);
    const t = await testEnvironment({ DATABASE_URL: pgDb.url });
    const config = loadConfig(t.env, () => {});
    const one = await startCertbridge(config, { log: () => {} });
    const two = await startCertbridge(config, { log: () => {}, createCa: false });
    try {
      const csrPem = opensslCsr(t.dir).csrPem;
      const certs = [];
      for (let i = 0; i < 8; i++) certs.push(await userCertOf(i % 2 ? two : one, `pg-crl-${i}`, csrPem));
      const results = await Promise.all(
        certs.map((c, i) => revokeUserCertificate(i % 2 ? two : one, { id: c.id }, "superseded", { actor: "test", comment: "concurrent" })),
      );
      const numbers = results.map((r) => r.crl.number);
      assert.equal(new Set(numbers).size, numbers.length, `no CRL number repeats: ${numbers.join(",")}`);
      const rows = await one.db.crlRecord.findMany({ where: { caId: one.ca.fingerprint }, orderBy: { number: "asc" }, select: { number: true, der: true, revokedCount: true } });
      for (let i = 1; i < rows.length; i++) {
        assert.ok(rows[i]!.number > rows[i - 1]!.number);
        assert.ok(rows[i]!.revokedCount >= rows[i - 1]!.revokedCount, "a later CRL never lists fewer");
      }
      for (const r of rows) assert.equal(crlNumberOf(r.der), r.number, "the signed number is the stored one");
      const newest = rows[rows.length - 1]!;
      assert.equal(newest.number, Math.max(...numbers));
      assert.deepEqual(new Set(serialsOf(newest.der)), new Set(certs.map((c) => c.serialHex)));
    } finally {
      await one.close();
      await two.close();
      await t.cleanup();
      await pgDb.drop();
    }
  });
});
