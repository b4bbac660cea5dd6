/**
 * scripts/test-postgres.sh, which npm test runs before the database suites: where no server
 * answers, it starts a throwaway cluster from Debian's postgresql package (unprivileged, loopback,
 * free port), and `stop` removes it. Run here against a port where nothing listens, so the
 * throwaway path is exercised even on a machine that has a server on 5432.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { run, ROOT } from "./helpers";
import { freePort } from "./portalHarness";

const script = path.join(ROOT, "scripts/test-postgres.sh");

describe("a throwaway PostgreSQL for the tests", () => {
  test("nothing at CERTBRIDGE_TEST_POSTGRES: a cluster starts on loopback, serves, and stop removes it", async () => {
    const closed = await freePort();
    const started = run("bash", [script, "start"], { env: { CERTBRIDGE_TEST_POSTGRES: `postgresql://postgres@127.0.0.1:${closed}/postgres` } });
    assert.equal(started.status, 0, started.stderr);
    const vars = Object.fromEntries([...started.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));
    const url = new URL(vars.CERTBRIDGE_TEST_POSTGRES!);
    const dir = vars.CERTBRIDGE_TEST_POSTGRES_DIR!;
    try {
      assert.equal(url.hostname, "127.0.0.1");
      assert.notEqual(url.port, String(closed));
      assert.ok(fs.existsSync(path.join(dir, "data", "PG_VERSION")));
      if (process.getuid?.() === 0) assert.notEqual(fs.statSync(path.join(dir, "data")).uid, 0, "the cluster does not run as root");
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      const r = await c.query<{ addr: string | null }>("select inet_server_addr()::text as addr");
      assert.equal(r.rows[0]!.addr, "127.0.0.1/32");
      await c.query("create database certbridge_probe");
      await c.end();
    } finally {
      const stopped = run("bash", [script, "stop", dir]);
      assert.equal(stopped.status, 0, stopped.stderr);
    }
    assert.equal(fs.existsSync(dir), false, "the cluster's directory is removed");
    const after = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
    await assert.rejects(after.connect(), /ECONNREFUSED/);
  });

  test("a server that answers is used as it is", async () => {
    const closed = await freePort();
    const first = run("bash", [script, "start"], { env: { CERTBRIDGE_TEST_POSTGRES: `postgresql://postgres@127.0.0.1:${closed}/postgres` } });
    const vars = Object.fromEntries([...first.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));
    try {
      const again = run("bash", [script, "start"], { env: { CERTBRIDGE_TEST_POSTGRES: vars.CERTBRIDGE_TEST_POSTGRES! } });
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.stdout.trim(), `export CERTBRIDGE_TEST_POSTGRES='${vars.CERTBRIDGE_TEST_POSTGRES}'`);
    } finally {
      run("bash", [script, "stop", vars.CERTBRIDGE_TEST_POSTGRES_DIR!]);
    }
  });
});
