/**
 * The operators' certificate search: filters, and keyset pages that neither
 * skip nor repeat rows while issuance goes on (SQLite here; PostgreSQL via
 * test/postgres.test.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startTestPortal, claimsFor, type TestPortal } from "./helpers";
import { issueProxy } from "../lib/issuance/issueProxy";
import { searchCertificates } from "../lib/admin/certificates";
import { revokeUserCertificate } from "../lib/ca/revocation";
import { CertbridgeError } from "../lib/errors";

let portal: TestPortal;
const serials: number[] = [];

before(async () => {
  portal = await startTestPortal({ keyPool: true });
  for (let i = 0; i < 12; i++) {
    const p = await issueProxy(portal.cb, { claims: claimsFor(`search-${i % 3}`, `Searcher ${"ABC"[i % 3]}`), client: { id: i % 2 ? "gw-odd" : "gw-even" }, actor: "test" });
    serials.push(p.serial);
  }
});
after(async () => portal?.cleanup());

describe("searchCertificates", () => {
  test("keyset pages cover every row once, newest first, even when new rows arrive between pages", async () => {
    const now = portal.cb.clock();
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await searchCertificates(portal.cb.db, { limit: 4, cursor }, now);
      seen.push(...page.rows.map((r) => r.id));
      if (pages === 0) await issueProxy(portal.cb, { claims: claimsFor("late"), actor: "test" }); // newer than page 1: must not shift later pages
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length, "no repeats");
    assert.equal(seen.length, 12 + 3, "12 proxies and 3 user certificates");
  });

  test("filters: part of a subject, kind, client, serial (hex or decimal), status", async () => {
    const now = portal.cb.clock();
    const b = await searchCertificates(portal.cb.db, { subject: "Searcher B", kind: "proxy", limit: 50 }, now);
    assert.equal(b.rows.length, 4);
    assert.ok(b.rows.every((r) => r.subject.includes("CN=Searcher B ") && r.kind === "proxy"));
    assert.equal((await searchCertificates(portal.cb.db, { clientId: "gw-odd", limit: 50 }, now)).rows.length, 6);
    const byCn = await searchCertificates(portal.cb.db, { subject: `/CN=${serials[2]}`, limit: 50 }, now);
    assert.deepEqual(byCn.rows.map((r) => r.serialDec), [String(serials[2])], "a proxy found by its own last RDN");
    const one = await searchCertificates(portal.cb.db, { serial: String(serials[5]), limit: 50 }, now);
    assert.deepEqual(one.rows.map((r) => r.serialDec), [String(serials[5])]);
    const hex = await searchCertificates(portal.cb.db, { serial: serials[5]!.toString(16).toUpperCase(), limit: 50 }, now);
    assert.deepEqual(hex.rows.map((r) => r.serialDec), [String(serials[5])]);
    const user = (await searchCertificates(portal.cb.db, { subject: "Searcher C", kind: "user", limit: 5 }, now)).rows[0]!;
    await revokeUserCertificate(portal.cb, { id: user.id }, "superseded", { actor: "test", comment: "test" });
    const revoked = await searchCertificates(portal.cb.db, { status: "revoked", limit: 50 }, now);
    assert.deepEqual(revoked.rows.map((r) => r.id), [user.id]);
    const later = new Date(now.getTime() + 30 * 86400_000);
    assert.ok((await searchCertificates(portal.cb.db, { status: "expired", kind: "proxy", limit: 50 }, later)).rows.every((r) => r.state === "expired"));
  });

  test("bad input is a clear invalid_request", async () => {
    const now = portal.cb.clock();
    await assert.rejects(searchCertificates(portal.cb.db, { cursor: "not-a-cursor" }, now), (e: unknown) => e instanceof CertbridgeError && /cursor is invalid/.test(e.message));
    await assert.rejects(searchCertificates(portal.cb.db, { limit: 5000 }, now), /limit/);
    await assert.rejects(searchCertificates(portal.cb.db, { serial: "xyz" }, now), /serial is hex/);
  });
});
