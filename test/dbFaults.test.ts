/**
 * lib/db/faults.ts on real drivers: which errors mean "the database cannot serve now" (503),
 * and the bounded wait for SQLite's one transaction slot (the adapter's mutex), which is given back
 * afterwards. The full fault scenarios under load are in test/faults.test.ts.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import fs from "node:fs";
import pg from "pg";
import { isDatabaseUnavailable, openDatabase, openMigratedDatabase, closeDatabase, recordAudit } from "../lib/db";
import { asCertbridgeError } from "../lib/errors";
import { freePort } from "./portalHarness";
import { tempDir } from "./helpers";

const dir = tempDir("certbridge-dbfaults-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("which database errors are a 503", () => {
  test("PostgreSQL that does not answer (nothing listens on the port): unavailable, and asCertbridgeError says temporarily_unavailable", async () => {
    const port = await freePort();
    const db = await openDatabase(`postgresql://postgres@127.0.0.1:${port}/none`);
    try {
      const e = await db.auditEvent.count().then(
        () => assert.fail("no server listens there"),
        (err: unknown) => err,
      );
      assert.equal(isDatabaseUnavailable(e), true, String(e));
      const mapped = asCertbridgeError(e);
      assert.equal(mapped.code, "temporarily_unavailable");
      assert.equal(mapped.status, 503);
    } finally {
      await closeDatabase(db);
    }
  });

  test("a pg driver error for a database that refuses connections (SQLSTATE 55000) and a terminated backend (57P01)", async () => {
    const base = process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres";
    const c = new pg.Client({ connectionString: base, connectionTimeoutMillis: 3_000 });
    const reachable = await c.connect().then(
      () => true,
      () => false,
    );
    if (!reachable) return;
    try {
      const other = new pg.Client({ connectionString: base });
      await other.connect();
      other.on("error", () => {});
      const { rows } = await other.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await c.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
      const e = await other.query("SELECT 1").then(
        () => assert.fail("the backend was terminated"),
        (err: unknown) => err,
      );
      assert.equal(isDatabaseUnavailable(e), true, String(e));
      await other.end().catch(() => {});
    } finally {
      await c.end();
    }
  });

  test("user errors and bugs are not: a unique violation, a missing table, a plain Error", async () => {
    const { db } = await openMigratedDatabase(`file:${path.join(dir, "plain.db")}`, openDatabase);
    try {
      await recordAudit(db, { action: "x", actor: "t" });
      const row = await db.auditEvent.findFirst({ select: { id: true } });
      const dup = await db.auditEvent.create({ data: { id: row!.id, action: "x", actor: "t", details: "{}" } }).then(
        () => assert.fail("duplicate id"),
        (err: unknown) => err,
      );
      assert.equal((dup as { code?: string }).code, "P2002");
      assert.equal(isDatabaseUnavailable(dup), false);
      const missing = await db.$queryRawUnsafe("SELECT * FROM no_such_table").then(
        () => assert.fail("no such table"),
        (err: unknown) => err,
      );
      assert.equal(isDatabaseUnavailable(missing), false, String(missing));
      assert.equal(isDatabaseUnavailable(new Error("boom")), false);
      assert.equal(asCertbridgeError(new Error("boom")).code, "server_error");
    } finally {
      await closeDatabase(db);
    }
  });
});

describe("SQLite's transaction slot", () => {
  test("a write that cannot get the slot within the bound is refused as unavailable; the slot is usable again afterwards", async () => {
    const file = path.join(dir, "slot.db");
    await closeDatabase((await openMigratedDatabase(`file:${file}`, openDatabase)).db);
    const db = await openDatabase(`file:${file}`, { sqliteSlotWaitMs: 300 });
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      // An interactive transaction holds the slot until released.
      const holder = db.$transaction(async (tx) => {
        await tx.auditEvent.create({ data: { id: "holder", action: "hold", actor: "t", details: "{}" } });
        await held;
      }, { timeout: 20_000, maxWait: 20_000 });
      await new Promise((r) => setTimeout(r, 100));
      const refused = await db.$transaction([recordAudit(db, { action: "waiting", actor: "t" }), recordAudit(db, { action: "waiting2", actor: "t" })]).then(
        () => assert.fail("the slot is held"),
        (err: unknown) => err,
      );
      assert.equal(isDatabaseUnavailable(refused), true, String(refused));
      release();
      await holder;
      await db.$transaction([recordAudit(db, { action: "after", actor: "t" }), recordAudit(db, { action: "after2", actor: "t" })]);
      assert.equal(await db.auditEvent.count({ where: { action: { in: ["hold", "after", "after2", "waiting"] } } }), 3, "the refused write left nothing; the later one committed");
    } finally {
      await db.$disconnect();
    }
  });
});
