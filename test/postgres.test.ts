/**
 * The database-backed suites again, on PostgreSQL (the production and
 * multi-instance engine). Each test file runs in its own process under
 * `node --test`, so setting the variable here affects only these suites.
 * CERTBRIDGE_TEST_POSTGRES names the server; npm test sets it (scripts/test-postgres.sh starts a throwaway cluster when none answers).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";

process.env.CERTBRIDGE_TEST_DATABASE = process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres";

// Named in the runner's output, so a run shows where the PostgreSQL suites ran; an unreachable server fails here.
test("the database suites below run on PostgreSQL", async (t) => {
  const c = new pg.Client({ connectionString: process.env.CERTBRIDGE_TEST_DATABASE, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    const { rows } = await c.query<{ v: string }>("select current_setting('server_version') as v");
    assert.ok(rows[0]?.v);
    t.diagnostic(`PostgreSQL ${rows[0]!.v} at ${new URL(process.env.CERTBRIDGE_TEST_DATABASE!).host}`);
  } finally {
    await c.end();
  }
});

await import("./issuance.test.ts");
await import("./cli.test.ts");
await import("./portal.test.ts");
await import("./adminSearch.test.ts");
await import("./consoles.test.ts");
await import("./ssh.test.ts");
await import("./dataAccess.test.ts");

