/**
 * The migrations are what a database gets (lib/db/migrate.ts); the schema is what the code is
 * generated from. Prisma's own diff replays each engine's migrations into an empty database and
 * compares: a migration written by hand (say, an index moved) must leave no difference.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createPgDatabase, ROOT } from "./helpers";
import { openDatabase } from "../lib/db";
import { openMigratedDatabase } from "../lib/db/migrate";

function migrateDiff(databaseUrl: string, migrations: string, schema: string) {
  return spawnSync(
    process.execPath,
    [path.join(ROOT, "node_modules/prisma/build/index.js"), "migrate", "diff", "--from-migrations", migrations, "--to-schema-datamodel", schema, "--exit-code"],
    { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: "1", CHECKPOINT_DISABLE: "1" }, encoding: "utf8", timeout: 120_000 },
  );
}

describe("migrations match the schema", () => {
  test("SQLite: prisma/migrations replayed give prisma/schema.prisma", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-migrate-diff-"));
    try {
      const r = migrateDiff(`file:${path.join(dir, "base.db")}`, "prisma/migrations", "prisma/schema.prisma");
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /No difference detected/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("PostgreSQL: prisma/pg/migrations replayed give prisma/pg/schema.prisma", () => {
    const r = migrateDiff(process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres", "prisma/pg/migrations", "prisma/pg/schema.prisma");
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /No difference detected/);
  });

  test("PostgreSQL: every migration deploys on a new database, as the server applies them (its driver splits scripts at each semicolon, even in a comment)", async () => {
    const { url, drop } = await createPgDatabase(process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres");
    try {
      const { db, applied } = await openMigratedDatabase(url, openDatabase);
      await db.$disconnect();
      assert.deepEqual(applied, fs.readdirSync(path.join(ROOT, "prisma/pg/migrations")).filter((m) => /^\d/.test(m)).sort());
    } finally {
      await drop();
    }
  });
});
