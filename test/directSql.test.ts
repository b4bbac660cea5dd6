/**
 * The hot path's statements on the driver (lib/db/direct.ts) against a real
 * database (SQLite here; test/postgresDirectSql.test.ts runs this file on
 * PostgreSQL): what they write Prisma reads back unchanged and the other way
 * round, a group commit is all-or-nothing per member, and a write never joins
 * a Prisma transaction that is open on the same connection.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startTestPortal, type TestPortal } from "./helpers";
import {
  createIdentity,
  directSqlOf,
  findCurrentUserCertificateId,
  findOidcPayload,
  IssuanceWriter,
  isOidcPayloadLive,
  isUniqueViolation,
  newId,
  storeIssuedCertificate,
  upsertOidcPayload,
  type NewCertificate,
} from "../lib/db";
import { dateOf, pgTime, sqliteTime } from "../lib/db/direct";
import { closeDatabase, isDatabaseUnavailable, newTimeOrderedId, openDatabase, sqliteFilePath } from "../lib/db";
import { createRequire } from "node:module";
import { prismaAdapterFactory, SNAPSHOT_MS, takeBearerReadings } from "../lib/oidc/adapter";

let portal: TestPortal;
let identityId: string;
/** better-sqlite3 itself (it ships no types), for a second connection that holds the write lock. */
const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => { exec(sql: string): unknown; close(): void };
const TEST_ON_SQLITE = !(process.env.CERTBRIDGE_TEST_DATABASE ?? "").startsWith("postgres");
const ISSUER = "/DC=org/DC=certbridge-test/CN=direct";

before(async () => {
  portal = await startTestPortal();
  const sub = `direct-${crypto.randomUUID()}`;
  const identity = await createIdentity(
    portal.cb.db,
    { identifierHash: crypto.createHash("sha256").update(sub).digest("hex"), issuer: "https://idp.test", sub, subject: `/DC=org/CN=${sub}`, displayName: "Direct", email: null, organisation: "test", claims: {} },
    { action: "identity.create", actor: "test" },
  );
  identityId = identity.id;
});
after(async () => portal?.cleanup());

const at = (iso: string) => new Date(iso);
function proxy(serial: number, over: Partial<NewCertificate> = {}): NewCertificate {
  return {
    kind: "proxy",
    serialHex: serial.toString(16),
    serialDec: String(serial),
    subject: `/DC=org/CN=direct/CN=${serial}`,
    issuer: ISSUER,
    identityId,
    notBefore: at("2026-11-25T10:00:00.000Z"),
    notAfter: at("2026-11-25T22:00:07.250Z"),
    pem: `-----BEGIN CERTIFICATE-----\n${serial}\n-----END CERTIFICATE-----\n`,
    keySource: "csr",
    keyBits: 2048,
    clientId: "gateway",
    fqans: serial % 2 ? ["/biomed/Role=NULL/Capability=NULL"] : null,
    vo: serial % 2 ? "biomed" : null,
    ...over,
  };
}
const audit = (serial: number) => ({ action: "proxy.issue", actor: "client:gateway", clientId: "gateway", ip: "192.0.2.7", details: { serial } });

describe("time-ordered ids (UUID version 7, RFC 9562 §5.7)", () => {
  test("known answers: the milliseconds, then the version and variant bits over the random ones", () => {
    const ms = 0x0123456789ab;
    assert.equal(newTimeOrderedId(ms, new Uint8Array(10).fill(0xff)), "01234567-89ab-7fff-bfff-ffffffffffff");
    assert.equal(newTimeOrderedId(ms, new Uint8Array(10)), "01234567-89ab-7000-8000-000000000000");
    assert.match(newTimeOrderedId(), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test("they sort by time as text, whatever their random bits", () => {
    const ids = Array.from({ length: 50 }, (_, i) => newTimeOrderedId(1_795_000_000_000 + i * 7));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(Array.from({ length: 1000 }, () => newTimeOrderedId(1_795_000_000_000))).size, 1000, "random within a millisecond");
  });

  test("the rows of an issuance get them", async () => {
    const writer = new IssuanceWriter(portal.cb.db);
    const id = await writer.store(proxy(5_000_000), audit(5_000_000));
    const event = await portal.cb.db.auditEvent.findFirst({ where: { certificateId: id }, select: { id: true } });
    for (const x of [id, event!.id]) assert.match(x, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.ok(Math.abs(parseInt(id.replace(/-/g, "").slice(0, 12), 16) - Date.now()) < 60_000, "its time is now");
  });
});

describe("the driver beside Prisma", () => {
  test("an opened database has it, a transaction's client has not; the stored time forms are Prisma's adapters'", async () => {
    const direct = directSqlOf(portal.cb.db);
    await portal.cb.db.$transaction(async (tx) => assert.throws(() => directSqlOf(tx as typeof portal.cb.db), /not a transaction's/));
    assert.equal(direct.kind, portal.config.databaseUrl.startsWith("file:") ? "sqlite" : "postgresql");
    const t = at("2026-01-02T03:04:05.006Z");
    assert.equal(sqliteTime(t), "2026-01-02T03:04:05.006+00:00");
    assert.equal(pgTime(t), "2026-01-02 03:04:05.006");
    for (const text of [sqliteTime(t), pgTime(t), t.toISOString()]) assert.equal(dateOf(text)?.getTime(), t.getTime(), text);
    assert.equal(dateOf(null), null);
  });

  test("a group commit writes what Prisma reads back, field for field, each certificate with its audit event", async () => {
    const writer = new IssuanceWriter(portal.cb.db);
    const serials = Array.from({ length: 40 }, (_, i) => 1_000_000 + i);
    const ids = await Promise.all(serials.map((s) => writer.store(proxy(s), audit(s))));
    assert.equal(new Set(ids).size, serials.length);
    const rows = await portal.cb.db.certificate.findMany({ where: { id: { in: ids } }, orderBy: { serialDec: "asc" } });
    assert.equal(rows.length, serials.length);
    for (const [i, row] of rows.entries()) {
      const want = proxy(serials[i]!);
      assert.equal(row.serialHex, want.serialHex);
      assert.equal(row.notBefore.getTime(), want.notBefore.getTime());
      assert.equal(row.notAfter.getTime(), want.notAfter.getTime());
      assert.equal(row.pem, want.pem);
      assert.equal(row.keyBits, 2048);
      assert.equal(row.status, "valid");
      assert.equal(row.keyEnc, null);
      assert.deepEqual(row.fqans ? JSON.parse(row.fqans) : null, want.fqans);
      assert.ok(Math.abs(row.createdAt.getTime() - Date.now()) < 60_000, "createdAt is now");
    }
    const events = await portal.cb.db.auditEvent.findMany({ where: { certificateId: { in: ids } } });
    assert.equal(events.length, serials.length);
    for (const e of events) {
      assert.equal(e.action, "proxy.issue");
      assert.equal(e.identityId, identityId);
      assert.equal(e.ip, "192.0.2.7");
      assert.equal(e.outcome, "success");
      assert.ok(Math.abs(e.at.getTime() - Date.now()) < 60_000);
    }
    // Range queries compare the stored text: what the driver wrote sorts with what Prisma writes.
    const later = await portal.cb.db.certificate.count({ where: { id: { in: ids }, notAfter: { gt: at("2026-11-25T22:00:07.249Z") } } });
    assert.equal(later, serials.length);
    const none = await portal.cb.db.certificate.count({ where: { id: { in: ids }, notAfter: { gt: at("2026-11-25T22:00:07.250Z") } } });
    assert.equal(none, 0);
  });

  test("a repeated serial fails its own store only; the rest of the batch is stored, with no orphan audit event", async () => {
    const writer = new IssuanceWriter(portal.cb.db);
    const taken = 2_000_000;
    await writer.store(proxy(taken), audit(taken));
    const before = await portal.cb.db.auditEvent.count({ where: { action: "proxy.issue", identityId } });
    const results = await Promise.allSettled([2_000_001, taken, 2_000_002].map((s) => writer.store(proxy(s), audit(s))));
    assert.equal(results[0]!.status, "fulfilled");
    assert.equal(results[2]!.status, "fulfilled");
    assert.equal(results[1]!.status, "rejected");
    assert.ok(isUniqueViolation((results[1] as PromiseRejectedResult).reason), String((results[1] as PromiseRejectedResult).reason));
    assert.equal(await portal.cb.db.certificate.count({ where: { issuer: ISSUER, serialHex: taken.toString(16) } }), 1);
    assert.equal(await portal.cb.db.auditEvent.count({ where: { action: "proxy.issue", identityId } }), before + 2);
  });

  test("the current user certificate: the newest valid one lasting long enough, by the stored end time", async () => {
    const db = portal.cb.db;
    const user = (notAfter: string, status = "valid") => ({ ...proxy(Math.floor(Math.random() * 2 ** 30)), kind: "user" as const, keySource: "ca" as const, parentId: null, notAfter: at(notAfter), vo: null, fqans: null, status });
    const shorter = await storeIssuedCertificate(db, user("2027-01-01T00:00:00.000Z"), { action: "certificate.issue", actor: "test" });
    const longer = await storeIssuedCertificate(db, user("2027-06-01T00:00:00.500Z"), { action: "certificate.issue", actor: "test" });
    assert.equal(await findCurrentUserCertificateId(db, identityId, at("2026-12-01T00:00:00.000Z")), longer);
    assert.equal(await findCurrentUserCertificateId(db, identityId, at("2027-06-01T00:00:00.500Z")), longer, "inclusive at the millisecond");
    assert.equal(await findCurrentUserCertificateId(db, identityId, at("2027-06-01T00:00:00.501Z")), null);
    await db.certificate.update({ where: { id: longer }, data: { status: "revoked" } });
    assert.equal(await findCurrentUserCertificateId(db, identityId, at("2026-12-01T00:00:00.000Z")), shorter);
    assert.equal(await findCurrentUserCertificateId(db, "nobody", at("2026-12-01T00:00:00.000Z")), null);
  });

  test("an OpenID artefact written by Prisma is read back by the driver, times included", async () => {
    const id = `direct-${newId()}`;
    const expiresAt = at("2031-05-06T07:08:09.010Z");
    await upsertOidcPayload(portal.cb.db, "AccessToken", id, { payload: '{"kind":"AccessToken"}', grantId: "g", accountId: identityId, clientId: "gateway", userCode: null, uid: null, expiresAt });
    const row = await findOidcPayload(portal.cb.db, "AccessToken", id);
    assert.equal(row?.payload, '{"kind":"AccessToken"}');
    assert.equal(row?.expiresAt?.getTime(), expiresAt.getTime());
    assert.equal(row?.consumedAt, null);
    assert.equal(await findOidcPayload(portal.cb.db, "Grant", id), undefined, "model and id both match");
  });

  test("an access token is read with its grant and its person's current user certificate in one statement; the bearer check takes that once, for its own grant, while fresh", async () => {
    const db = portal.cb.db;
    let clock = Date.parse("2030-01-01T00:00:00Z");
    const Adapter = prismaAdapterFactory(db, portal.cb.config.kek, "", { now: () => clock });
    const tokens = new Adapter("AccessToken");
    const grants = new Adapter("Grant");
    // A person of this test's own: two user certificates, the newer one revoked.
    const sub = `snapshot-${crypto.randomUUID()}`;
    const person = (
      await createIdentity(
        db,
        { identifierHash: crypto.createHash("sha256").update(sub).digest("hex"), issuer: "https://idp.test", sub, subject: `/DC=org/CN=${sub}`, displayName: "Snapshot", email: null, organisation: "test", claims: {} },
        { action: "identity.create", actor: "test" },
      )
    ).id;
    const userCert = (notAfter: string, serial: number) =>
      storeIssuedCertificate(db, proxy(serial, { kind: "user", identityId: person, issuer: "/DC=org/CN=CA", notAfter: at(notAfter), keySource: "server", parentId: undefined }), { action: "certificate.issue", actor: "test" });
    const older = await userCert("2031-01-01T00:00:00.000Z", 0x51);
    const newer = await userCert("2031-06-01T00:00:00.000Z", 0x52);
    await db.certificate.update({ where: { id: newer }, data: { status: "revoked" } });

    const grantId = `grant-${newId()}`;
    const gone = `grant-${newId()}`;
    await grants.upsert(grantId, { kind: "Grant", jti: grantId, accountId: person, clientId: "gateway", exp: clock / 1000 + 60 }, 60);
    const issue = async (grant: string, account = person) => {
      const token = crypto.randomBytes(32).toString("base64url");
      await tokens.upsert(token, { kind: "AccessToken", jti: token, grantId: grant, accountId: account, clientId: "gateway", exp: clock / 1000 + 3600 }, 3600);
      return token;
    };
    const live = await issue(grantId);
    const orphan = await issue(gone);
    const nobody = await issue(grantId, `nobody-${newId()}`);

    assert.equal((await tokens.find(live))?.grantId, grantId);
    assert.deepEqual(takeBearerReadings(live, grantId, clock), { grantLive: true, userCertificate: { id: older, notAfter: at("2031-01-01T00:00:00.000Z") } }, "the newest valid one: not the revoked");
    assert.equal(takeBearerReadings(live, grantId, clock), undefined, "taken once");
    assert.equal((await tokens.find(orphan))?.grantId, gone);
    assert.equal(takeBearerReadings(orphan, gone, clock)?.grantLive, false, "the grant's row is gone");
    await tokens.find(nobody);
    assert.deepEqual(takeBearerReadings(nobody, grantId, clock), { grantLive: true, userCertificate: null }, "an account without a user certificate");
    await tokens.find(live);
    assert.equal(takeBearerReadings(live, "another-grant", clock), undefined, "only for the token's own grant");
    await tokens.find(live);
    assert.equal(takeBearerReadings(live, grantId, clock + SNAPSHOT_MS + 1), undefined, "not believed when stale");
    clock += 61_000; // the grant has expired, the token has not
    await tokens.find(live);
    assert.equal(takeBearerReadings(live, grantId, clock)?.grantLive, false, "an expired grant");
    assert.equal(takeBearerReadings(crypto.randomBytes(32).toString("base64url"), grantId, clock), undefined, "never looked up");
  });

  test("a grant's liveness: present and not yet expired (to the millisecond), or without an end", async () => {
    const db = portal.cb.db;
    const endsAt = at("2031-05-06T07:08:09.010Z");
    const ending = `grant-${newId()}`;
    const endless = `grant-${newId()}`;
    for (const [id, expiresAt] of [[ending, endsAt], [endless, null]] as const) {
      await upsertOidcPayload(db, "Grant", id, { payload: "{}", grantId: null, accountId: identityId, clientId: "gateway", userCode: null, uid: null, expiresAt });
    }
    const table: [id: string, model: string, now: Date, live: boolean][] = [
      [ending, "Grant", new Date(endsAt.getTime() - 1), true],
      [ending, "Grant", endsAt, false],
      [ending, "Grant", new Date(endsAt.getTime() + 1), false],
      [endless, "Grant", at("2099-01-01T00:00:00Z"), true],
      [ending, "AccessToken", new Date(endsAt.getTime() - 1), false],
      [`grant-${newId()}`, "Grant", new Date(0), false],
    ];
    for (const [id, model, now, live] of table) assert.equal(await isOidcPayloadLive(db, model, id, now), live, `${model} ${id === ending ? "ending" : id === endless ? "endless" : "missing"} at ${now.toISOString()}`);
  });

  test("a group commit waits for a Prisma transaction open on the connection instead of joining it", async () => {
    const db = portal.cb.db;
    const writer = new IssuanceWriter(db);
    const serial = 3_000_000;
    let stored: Promise<string> | undefined;
    // The transaction is rolled back after the store was started: a store that joined it would vanish with it.
    await assert.rejects(
      db.$transaction(async (tx) => {
        await tx.auditEvent.create({ data: { action: "test.rollback", actor: "test" } });
        stored = writer.store(proxy(serial), audit(serial));
        await new Promise((r) => setTimeout(r, 50));
        throw new Error("roll back");
      }),
      /roll back/,
    );
    const id = await stored!;
    assert.equal(await db.certificate.count({ where: { id } }), 1);
    assert.equal(await db.auditEvent.count({ where: { certificateId: id } }), 1);
    assert.equal(await db.auditEvent.count({ where: { action: "test.rollback" } }), 0);
  });

  test("SQLite: another process's write lock is waited for off the event loop, and for a bounded time", { skip: !TEST_ON_SQLITE }, async () => {
    const file = sqliteFilePath(portal.config.databaseUrl);
    // Another process's connection (another worker, the CLI) holding the write lock.
    const other = new Database(file);
    const db = await openDatabase(portal.config.databaseUrl, { sqliteSlotWaitMs: 400 });
    try {
      const writer = new IssuanceWriter(db);
      other.exec("BEGIN IMMEDIATE");
      const started = performance.now();
      const stored = writer.store(proxy(4_000_000), audit(4_000_000));
      // While the store waits, timers still fire on time: the thread is not asleep in SQLite's busy handler.
      const lags: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 10));
        lags.push(performance.now() - t - 10);
      }
      other.exec("COMMIT");
      const id = await stored;
      assert.ok(performance.now() - started >= 100, "it waited for the lock");
      assert.ok(Math.max(...lags) < 50, `timer lags ${lags.map((l) => l.toFixed(1)).join(", ")} ms`);
      assert.equal(await portal.cb.db.auditEvent.count({ where: { certificateId: id } }), 1);

      // Held past the bound: the store gives up with SQLite's busy error, which every transport answers with 503.
      other.exec("BEGIN IMMEDIATE");
      const refused = await writer.store(proxy(4_000_001), audit(4_000_001)).then(
        () => null,
        (e: unknown) => e,
      );
      other.exec("ROLLBACK");
      assert.ok(refused, "the store failed");
      assert.ok(isDatabaseUnavailable(refused), String(refused));
      assert.equal(await portal.cb.db.certificate.count({ where: { serialDec: "4000001" } }), 0);
      // And the connection is usable again at once.
      await writer.store(proxy(4_000_002), audit(4_000_002));
    } finally {
      other.close();
      await closeDatabase(db);
    }
  });
});
