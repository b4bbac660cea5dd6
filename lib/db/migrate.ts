/**
 * Apply pending migrations at start. The check is one query; only when a
 * migration is missing do we run the Prisma CLI (`migrate deploy`), which is
 * the one tool that keeps `_prisma_migrations` consistent for later upgrades.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { closeDatabase, dbKindOf, type Db } from "./client";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function migrationNames(url: string): string[] {
  const dir = path.join(ROOT, dbKindOf(url) === "postgresql" ? "prisma/pg/migrations" : "prisma/migrations");
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

async function appliedMigrations(db: Db): Promise<Set<string>> {
  try {
    const rows = await db.$queryRawUnsafe<{ migration_name: string }[]>(
      `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    return new Set(rows.map((r) => r.migration_name));
  } catch {
    return new Set(); // no migrations table yet: a new database
  }
}

/**
 * Bring the schema up to date. The caller's connection must be closed while
 * the CLI runs (SQLite would otherwise lock the CLI out), so this takes an
 * opener and returns a fresh connection.
 */
export async function openMigratedDatabase(url: string, open: (url: string) => Promise<Db>): Promise<{ db: Db; applied: string[] }> {
  const db = await open(url);
  const applied = await appliedMigrations(db);
  const pending = migrationNames(url).filter((m) => !applied.has(m));
  if (pending.length === 0) return { db, applied: [] };
  await closeDatabase(db);
  const cli = path.join(ROOT, "node_modules", "prisma", "build", "index.js");
  try {
    await promisify(execFile)(process.execPath, [cli, "migrate", "deploy"], {
      cwd: ROOT,
      env: { PATH: "/usr/bin:/bin", HOME: ROOT, NODE_ENV: "production", DATABASE_URL: url, CHECKPOINT_DISABLE: "1", PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`database migration failed: ${(err.stderr || err.stdout || String(e)).trim().split("\n").slice(-3).join(" ")}`, { cause: e });
  }
  return { db: await open(url), applied: pending };
}
