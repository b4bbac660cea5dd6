/**
 * Faults are normal (issue 12, points 1, 2 and 7), against the production server entry under
 * concurrent /getproxy load, on real databases:
 * - PostgreSQL: the portal's connections terminated again and again (pg_terminate_backend), then
 *   the database closed to connections altogether (ALLOW_CONNECTIONS false) and opened again;
 * - SQLite: its filesystem (a small tmpfs in a private mount namespace) filled up, then freed;
 * - kill -9 under load, and SIGTERM with requests in flight.
 * Expected each time: every request ends within a bound (no hang); while the database cannot serve,
 * 503 `temporarily_unavailable` with Retry-After (never a 500) and /readyz 503; afterwards 200 again
 * without a restart; no uncaughtException; every proxy a client received is stored with its audit
 * event. The figures (requests, 200/503, recovery time) are printed as diagnostics.
 */
import { after, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import pg from "pg";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { openDatabase, closeDatabase, type Db } from "../lib/db";
import { createPgDatabase, opensslCsr, tempDir } from "./helpers";
import { GATEWAY, loginThroughPortal, redeem, startPortalServer, type PortalServer } from "./portalHarness";

// The load here is one client on loopback, far above the default per-IP limits: these tests are about
// database faults, so /getproxy's limits are off (test/limitsPortal.test.ts tests them).
const UNLIMITED = { CERTBRIDGE_RATE_LIMITS: "getproxy.ip=off,getproxy.client=off,getproxy.ip_fail=off" };
const PG_BASE = process.env.CERTBRIDGE_TEST_POSTGRES ?? "postgresql://postgres@127.0.0.1:5432/postgres";
/** Longer than any wait the portal allows itself (10 s connection acquire, 8 s SQLite slot): past it a request counts as hung. */
const REQUEST_BOUND_MS = 20_000;
const WORKERS = 8;

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 3_000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

function canUnshare(): boolean {
  try {
    execFileSync("unshare", ["-m", "--propagation", "private", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

interface Outcome {
  at: number;
  status: number | "hung" | "error";
  ms: number;
  serial?: string;
  problem?: string;
}

/** Concurrent /getproxy callers and a /readyz poller, recording every outcome until stopped. */
class Load {
  readonly proxies: Outcome[] = [];
  readonly ready: Outcome[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly csrPem: string,
    workers = WORKERS,
  ) {
    this.loops = [...Array.from({ length: workers }, () => this.proxyLoop()), this.readyLoop()];
  }

  private async timed(record: Outcome[], run: (signal: AbortSignal) => Promise<Response>, read: (res: Response, o: Outcome) => Promise<void>) {
    const start = Date.now();
    const o: Outcome = { at: start, status: "error", ms: 0 };
    try {
      const res = await run(AbortSignal.timeout(REQUEST_BOUND_MS));
      o.status = res.status;
      await read(res, o);
    } catch (e) {
      o.status = (e as Error).name === "TimeoutError" ? "hung" : "error";
      o.problem = String((e as Error).message);
    }
    o.ms = Date.now() - start;
    record.push(o);
  }

  private async proxyLoop() {
    while (this.running) {
      await this.timed(
        this.proxies,
        (signal) => fetch(`${this.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${this.token}` }, body: new URLSearchParams({ certreq: this.csrPem, proxylifetime: "3600" }), signal }),
        async (res, o) => {
          const body = await res.text();
          if (res.status === 200) o.serial = res.headers.get("x-proxy-serial") ?? undefined;
          else if (res.status === 503) {
            const err = JSON.parse(body) as { error: string };
            if (err.error !== "temporarily_unavailable" || res.headers.get("retry-after") === null) o.problem = `503 without temporarily_unavailable/Retry-After: ${body}`;
          } else o.problem = `${res.status}: ${body.slice(0, 300)}`;
        },
      );
      // An outage answers fast: do not spin.
      if (this.proxies.at(-1)!.status !== 200) await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async readyLoop() {
    while (this.running) {
      await this.timed(
        this.ready,
        (signal) => fetch(`${this.url}/readyz`, { signal }),
        async (res, o) => {
          const body = (await res.json()) as { status: string };
          if ((res.status === 200) !== (body.status === "pass")) o.problem = `readyz ${res.status} with ${JSON.stringify(body)}`;
        },
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop() {
    this.running = false;
    await Promise.all(this.loops);
  }
}

const count = (xs: Outcome[], from: number, to: number, status: Outcome["status"]) => xs.filter((o) => o.at >= from && o.at < to && o.status === status).length;
const endedBefore = (xs: Outcome[], to: number) => xs.filter((o) => o.at + o.ms < to);
const within = (xs: Outcome[], from: number, to = Infinity) => xs.filter((o) => o.at >= from && o.at < to);

/** Every request ended within the bound with 200 or a proper 503: no hang, no 500, no transport error. */
function assertNoHangNo500(load: Load) {
  const bad = [...load.proxies, ...load.ready].filter((o) => o.status === "hung" || o.status === "error" || o.problem !== undefined || (o.status !== 200 && o.status !== 503));
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} requests hung, failed in transport or got another status`);
}

/** First time after `from` when /getproxy answered 200 and every later call did too. */
function recoveredAt(xs: Outcome[], from: number): number | null {
  const after = within(xs, from).sort((a, b) => a.at - b.at);
  let candidate: number | null = null;
  for (const o of after) {
    if (o.status === 200) candidate ??= o.at + o.ms;
    else candidate = null;
  }
  return candidate;
}

function figures(t: TestContext, label: string, load: Load, from: number, to: number) {
  const p = within(load.proxies, from, to);
  const r = within(load.ready, from, to);
  const max = Math.max(0, ...p.map((o) => o.ms));
  t.diagnostic(`${label}: /getproxy ${p.length} requests, ${count(p, from, to, 200)} × 200, ${count(p, from, to, 503)} × 503, slowest ${max} ms; /readyz ${count(r, from, to, 200)} × 200, ${count(r, from, to, 503)} × 503`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every proxy a client received is in the database, with its proxy.issue audit event. */
async function assertStored(t: TestContext, databaseUrl: string, serials: string[]) {
  const db: Db = await openDatabase(databaseUrl);
  try {
    const unique = [...new Set(serials)];
    assert.equal(unique.length, serials.length, "no serial was handed out twice");
    const found = new Map<string, string>();
    // Small slices: SQLite's driver adapter binds at most 999 parameters per statement.
    for (let i = 0; i < unique.length; i += 200) {
      const slice = unique.slice(i, i + 200);
      const rows = await db.certificate.findMany({ where: { OR: [{ serialDec: { in: slice } }, { serialHex: { in: slice } }] }, select: { id: true, serialDec: true, serialHex: true } });
      for (const r of rows) found.set(slice.includes(r.serialDec) ? r.serialDec : r.serialHex, r.id);
    }
    const missing = unique.filter((s) => !found.has(s));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} of ${unique.length} proxies a client received are not in the database`);
    const ids = [...found.values()];
    let audited = 0;
    for (let i = 0; i < ids.length; i += 200) audited += await db.auditEvent.count({ where: { action: "proxy.issue", certificateId: { in: ids.slice(i, i + 200) } } });
    assert.equal(audited, ids.length, "every stored proxy has its proxy.issue audit event");
    t.diagnostic(`${unique.length} proxies received by clients: all stored, all with their audit event`);
  } finally {
    await closeDatabase(db);
  }
}

/** Register a new SSH key through the gateway API (an audited write in one transaction). */
async function addSshKey(url: string, token: string, dir: string, label: string): Promise<Response> {
  const file = path.join(dir, `ssh-${label}`);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", label, "-f", file]);
  const publicKey = fs.readFileSync(`${file}.pub`, "utf8").trim();
  return fetch(`${url}/api/ssh-keys`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ publicKey, label }) });
}

/** One issuance first: the person's user certificate is made (an RSA key) before the load starts. */
async function warmUp(url: string, token: string, csrPem: string) {
  const res = await fetch(`${url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new URLSearchParams({ certreq: csrPem }) });
  assert.equal(res.status, 200, await res.text());
}

async function tokenFor(portal: PortalServer): Promise<string> {
  const tokens = await redeem(await loginThroughPortal(portal.url));
  return tokens.access_token;
}

function assertNoUncaught(portal: PortalServer) {
  assert.doesNotMatch(portal.output(), /uncaughtException|unhandledRejection/i, "no uncaught exception in the server log");
}

describe("PostgreSQL faults under load", { timeout: 300_000 }, async () => {
  const reachable = await pgReachable();
  let portal: PortalServer | undefined;
  let drop = async () => {};
  after(async () => {
    await portal?.cleanup();
    await drop();
  });

  test("connections terminated 30 times, then the database closed to connections and opened again: 503 during, 200 after, no restart", { skip: !reachable && "no PostgreSQL" }, async (t) => {
    const created = await createPgDatabase(PG_BASE);
    drop = created.drop;
    const dbName = new URL(created.url).pathname.slice(1);
    portal = await startPortalServer({ DATABASE_URL: created.url, ...UNLIMITED, CERTBRIDGE_ACCESS_TOKEN_TTL: "1h" });
    const csr = opensslCsr(portal.dir);
    const tokens = await redeem(await loginThroughPortal(portal.url));
    const token = tokens.access_token;
    const admin = new pg.Client({ connectionString: PG_BASE });
    await admin.connect();
    const terminate = () => admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
    await warmUp(portal.url, token, csr.csrPem);
    const t0 = Date.now();
    const load = new Load(portal.url, token, csr.csrPem);
    try {
      await sleep(3_000);
      // 1. Terminated connections, 30 rounds 0.2 s apart.
      const t1 = Date.now();
      let killed = 0;
      for (let round = 0; round < 30; round++) {
        killed += (await terminate()).rowCount ?? 0;
        await sleep(200);
      }
      const t2 = Date.now();
      await sleep(3_000);
      const t3 = Date.now();
      // 2. No connection at all for 4 s.
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
      await terminate();
      await sleep(1_500);
      // oidc-provider's endpoints answer the same way: the token endpoint in JSON, the authorization endpoint with a page.
      const refresh = await fetch(`${portal.url}/oidc/token`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from(`${GATEWAY.id}:${GATEWAY.secret}`).toString("base64")}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens.refresh_token! }),
      });
      const refreshBody = await refresh.text();
      assert.equal(refresh.status, 503, refreshBody);
      assert.equal((JSON.parse(refreshBody) as { error: string }).error, "temporarily_unavailable");
      assert.equal(refresh.headers.get("retry-after"), "5");
      const auth = new URL(`${portal.url}/oidc/auth`);
      auth.search = new URLSearchParams({ client_id: GATEWAY.id, redirect_uri: GATEWAY.redirect, response_type: "code", scope: "openid proxy", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256", state: "s" }).toString();
      const page = await fetch(auth, { redirect: "manual", headers: { accept: "text/html" } });
      assert.equal(page.status, 503, await page.text());
      assert.match(String(page.headers.get("content-type")), /text\/html/);
      assert.equal(page.headers.get("retry-after"), "5");
      await sleep(2_500);
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
      const t4 = Date.now();
      await sleep(4_000);
      const t5 = Date.now();
      await load.stop();

      figures(t, "before", load, t0, t1);
      figures(t, `during 30 rounds of pg_terminate_backend (${killed} backends terminated)`, load, t1, t2);
      figures(t, "after the terminations", load, t2, t3);
      figures(t, "database closed to connections (4 s)", load, t3, t4);
      figures(t, "after it was opened again", load, t4, t5);
      const back = recoveredAt(load.proxies, t4);
      const readyBack = recoveredAt(load.ready, t4);
      t.diagnostic(`recovery after re-allowing connections: /getproxy ${back === null ? "never" : `${back - t4} ms`}, /readyz ${readyBack === null ? "never" : `${readyBack - t4} ms`}`);

      t.diagnostic(`server log: ${portal.output().split("\n").filter((l) => /database (unavailable|connection lost)/.test(l)).length} lines about the database (at most one per 5-10 s each)`);
      assertNoHangNo500(load);
      assert.ok(endedBefore(load.proxies, t1).length > 0, "load before the fault");
      assert.equal(endedBefore(load.proxies, t1).filter((o) => o.status !== 200).length, 0, "all 200 before the fault");
      assert.ok(killed > 0, "the portal had connections to terminate");
      assert.ok(count(load.proxies, t1, t4, 503) > 0, "the faults were felt: some 503s");
      assert.ok(count(load.ready, t3, t4, 503) > 0, "readiness failed while the database refused connections");
      assert.ok(count(load.proxies, t2, t3, 200) > 0, "served again between the two faults");
      assert.notEqual(back, null, "/getproxy recovered by itself");
      assert.notEqual(readyBack, null, "/readyz recovered by itself");
      const last = within(load.proxies, t4 + 2_000, t5);
      assert.ok(last.length > 0 && last.every((o) => o.status === 200), "all 200 once recovered");
      assertNoUncaught(portal);
      await assertStored(t, created.url, load.proxies.filter((o) => o.status === 200).map((o) => o.serial!));
    } finally {
      await load.stop();
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`).catch(() => {});
      await admin.end();
    }
  });
});


describe("SQLite on a full filesystem under load", { timeout: 300_000 }, () => {
  const available = canUnshare();
  let portal: PortalServer | undefined;
  const dbDir = tempDir("certbridge-fault-db-");
  after(async () => {
    await portal?.cleanup();
    fs.rmSync(dbDir, { recursive: true, force: true });
  });

  test("the database's filesystem filled up, then freed: 503 and readiness failing during, writes work again after, no restart", { skip: !available && "unshare -m is not permitted here" }, async (t) => {
    // The server runs in its own mount namespace with its database on a 128 MB tmpfs (room for the
    // seconds of load before the fault on a fast machine); the test reaches that filesystem through
    // /proc/<pid>/root (the server's view of the file tree) to fill and free it.
    const wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs -o size=128m,mode=0700 tmpfs "$0" && exec "$@"', dbDir];
    portal = await startPortalServer({ ...UNLIMITED, CERTBRIDGE_ACCESS_TOKEN_TTL: "1h", DATABASE_URL: `file:${path.join(dbDir, "certbridge.db")}` }, [], { wrap });
    const inServer = (p: string) => path.join(`/proc/${portal!.process()!.pid}/root`, p);
    const fill = inServer(path.join(dbDir, "fill"));
    assert.ok(fs.existsSync(inServer(path.join(dbDir, "certbridge.db"))), "the database lives on the server's tmpfs");
    assert.ok(!fs.existsSync(path.join(dbDir, "certbridge.db")), "and not in the directory the test sees");
    const csr = opensslCsr(portal.dir);
    const token = await tokenFor(portal);
    await warmUp(portal.url, token, csr.csrPem);
    const t0 = Date.now();
    const load = new Load(portal.url, token, csr.csrPem);
    let filled = 0;
    try {
      await sleep(3_000);
      const t1 = Date.now();
      const sizes = () => ["certbridge.db", "certbridge.db-wal"].map((f) => `${f} ${(fs.statSync(inServer(path.join(dbDir, f)), { throwIfNoEntry: false })?.size ?? 0) / 1048576 | 0} MB`).join(", ");
      t.diagnostic(`before the fault: ${sizes()}`);
      // Fill the filesystem to the last byte.
      const fd = fs.openSync(fill, "w");
      try {
        const chunk = Buffer.alloc(1 << 20);
        for (;;) filled += fs.writeSync(fd, chunk);
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, "ENOSPC");
      } finally {
        fs.closeSync(fd);
      }
      await sleep(2_000);
      // Another audited write, through a Next route handler: the SSH-key API.
      // A small write may still fit (SQLite reuses WAL and free pages already on disk): then it is
      // stored for good; otherwise it is a 503 with Retry-After and nothing is stored. Never a hang or 500.
      const keyWhileFull = await addSshKey(portal.url, token, portal.dir, "while-full");
      const keyWhileFullBody = await keyWhileFull.text();
      assert.ok([201, 503].includes(keyWhileFull.status), `${keyWhileFull.status} ${keyWhileFullBody}`);
      if (keyWhileFull.status === 503) assert.equal(keyWhileFull.headers.get("retry-after"), "5");
      await sleep(2_000);
      fs.rmSync(fill);
      const t2 = Date.now();
      await sleep(4_000);
      const t3 = Date.now();
      t.diagnostic(`at the end: ${sizes()}`);
      await load.stop();

      figures(t, "before", load, t0, t1);
      figures(t, `filesystem full (${(filled / 1048576).toFixed(1)} MB of filler, 4 s)`, load, t1, t2);
      figures(t, "after the space was freed", load, t2, t3);
      const back = recoveredAt(load.proxies, t2);
      const readyBack = recoveredAt(load.ready, t2);
      t.diagnostic(`recovery after freeing the space: /getproxy ${back === null ? "never" : `${back - t2} ms`}, /readyz ${readyBack === null ? "never" : `${readyBack - t2} ms`}`);

      assertNoHangNo500(load);
      assert.ok(endedBefore(load.proxies, t1).length > 0, "load before the fault");
      assert.equal(endedBefore(load.proxies, t1).filter((o) => o.status !== 200).length, 0, "all 200 before the fault");
      assert.ok(count(load.proxies, t1, t2, 503) > 0, "writes failed with 503 while the disk was full");
      assert.ok(count(load.ready, t1, t2, 503) > 0, "readiness failed while the disk was full");
      assert.notEqual(back, null, "/getproxy recovered by itself");
      assert.notEqual(readyBack, null, "/readyz recovered by itself");
      const last = within(load.proxies, t2 + 2_000, t3);
      assert.ok(last.length > 0 && last.every((o) => o.status === 200), "all 200 once recovered");
      // Other transactional writes too (the issue: SSH-key registration froze): one through the API.
      const keyAfter = await addSshKey(portal.url, token, portal.dir, "after");
      assert.equal(keyAfter.status, 201, await keyAfter.text());
      const keys = await fetch(`${portal.url}/api/ssh-keys`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(keys.status, 200);
      const labels = JSON.stringify(await keys.json());
      assert.ok(labels.includes('"after"'), labels);
      assert.equal(labels.includes('"while-full"'), keyWhileFull.status === 201, `the key sent while full is stored exactly when it was acknowledged: ${labels}`);
      assertNoUncaught(portal);
      // SQLite resolves /proc/<pid>/root to "/" (a symbolic link): read a copy of the idle database instead.
      const copy = tempDir("certbridge-fault-copy-");
      for (const f of ["certbridge.db", "certbridge.db-wal"]) if (fs.existsSync(inServer(path.join(dbDir, f)))) fs.copyFileSync(inServer(path.join(dbDir, f)), path.join(copy, f));
      try {
        await assertStored(t, `file:${path.join(copy, "certbridge.db")}`, load.proxies.filter((o) => o.status === 200).map((o) => o.serial!));
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
      }
    } finally {
      await load.stop();
      fs.rmSync(fill, { force: true });
    }
  });
});

describe("kill -9 under load", { timeout: 400_000 }, async () => {
  const reachable = await pgReachable();
  const portals: PortalServer[] = [];
  let drop = async () => {};
  after(async () => {
    for (const p of portals) await p.cleanup();
    await drop();
  });

  async function killUnderLoad(t: TestContext, env: Record<string, string>, rounds: number) {
    const portal = await startPortalServer({ ...UNLIMITED, CERTBRIDGE_ACCESS_TOKEN_TTL: "1h", ...env });
    portals.push(portal);
    const csr = opensslCsr(portal.dir);
    const token = await tokenFor(portal);
    await warmUp(portal.url, token, csr.csrPem);
    const serials: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const load: Load = new Load(portal.url, token, csr.csrPem, 12);
      await sleep(2_500);
      const child = portal.process()!;
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once("exit", (_code, signal) => r(signal)));
      child.kill("SIGKILL");
      assert.equal(await exited, "SIGKILL");
      await load.stop();
      const ok = load.proxies.filter((o) => o.status === 200);
      const cut = load.proxies.filter((o) => o.status === "error").length;
      t.diagnostic(`round ${round + 1}: ${load.proxies.length} requests, ${ok.length} × 200 before the kill, ${cut} cut off by it`);
      assert.ok(ok.length > 0, "proxies were issued before the kill");
      assert.equal(load.proxies.filter((o) => o.status !== 200 && o.status !== "error").length, 0, "only 200s, and connections cut by the kill");
      serials.push(...ok.map((o) => o.serial!));
      await portal.start();
    }
    // The restarted portal serves.
    const res = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new URLSearchParams({ certreq: csr.csrPem }) });
    assert.equal(res.status, 200);
    assertNoUncaught(portal);
    await portal.stop();
    await assertStored(t, portal.env.DATABASE_URL ?? `file:${path.join(portal.dir, "certbridge.db")}`, serials);
  }

  test("SQLite: the portal killed (SIGKILL) twice under concurrent /getproxy: after each restart every proxy a client received is stored with its audit event", async (t) => {
    await killUnderLoad(t, {}, 2);
  });

  test("PostgreSQL: the same, once", { skip: !reachable && "no PostgreSQL" }, async (t) => {
    const created = await createPgDatabase(PG_BASE);
    drop = created.drop;
    await killUnderLoad(t, { DATABASE_URL: created.url }, 1);
  });
});

describe("graceful shutdown", { timeout: 300_000 }, () => {
  let portal: PortalServer | undefined;
  after(async () => portal?.cleanup());

  /** A /getproxy whose body arrives in two parts: in flight from the first byte until `finish` sends the rest. */
  function slowRequest(url: string, token: string, body: string) {
    const u = new URL(url);
    const half = Math.floor(body.length / 2);
    const req = http.request({ hostname: u.hostname, port: u.port, path: "/getproxy", method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) } });
    const response = new Promise<{ status: number; serial: string | null; connection: string | undefined }>((resolve, reject) => {
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode!, serial: (res.headers["x-proxy-serial"] as string | undefined) ?? null, connection: res.headers.connection }));
      });
      req.on("error", reject);
    });
    req.write(body.slice(0, half));
    return { response, finish: () => req.end(body.slice(half)), abandon: () => req.destroy() };
  }

  test("SIGTERM with requests in flight: they complete with their proxies, a request that never finishes is cut at the grace period, exit 0, nothing lost", async (t) => {
    portal = await startPortalServer({ ...UNLIMITED, CERTBRIDGE_ACCESS_TOKEN_TTL: "1h", CERTBRIDGE_SHUTDOWN_GRACE: "6s" });
    const csr = opensslCsr(portal.dir);
    const token = await tokenFor(portal);
    // The probes while all is well: liveness, readiness with a pass per check, /api/health with its earlier fields.
    const live = await fetch(`${portal.url}/healthz`);
    assert.equal(live.status, 200);
    assert.equal(((await live.json()) as { status: string }).status, "pass");
    const ready = await fetch(`${portal.url}/readyz`);
    const readyBody = (await ready.json()) as { status: string; checks: Record<string, { status: string; detail?: string }> };
    assert.equal(ready.status, 200, JSON.stringify(readyBody));
    assert.deepEqual(Object.keys(readyBody.checks).sort(), ["database", "disk", "shutdown", "signer", "upstream"]);
    assert.ok(Object.values(readyBody.checks).every((c) => c.status === "pass"), JSON.stringify(readyBody));
    assert.match(String(readyBody.checks.upstream!.detail), /development IdP/);
    const legacy = (await (await fetch(`${portal.url}/api/health`)).json()) as { ok: boolean; issuer: string; ca: string; status: string };
    assert.equal(legacy.ok, true);
    assert.equal(legacy.status, "pass");
    assert.equal(legacy.issuer, portal.url);
    assert.match(legacy.ca, /Certbridge Test CA/);
    assert.equal((await fetch(`${portal.url}/readyz`, { method: "POST" })).status, 405);
    const body = new URLSearchParams({ certreq: csr.csrPem, proxylifetime: "3600" }).toString();
    const inFlight = Array.from({ length: 6 }, () => slowRequest(portal!.url, token, body));
    const stuck = slowRequest(portal.url, token, body);
    const stuckOutcome = stuck.response.then(
      () => "answered",
      (e: Error) => `cut: ${e.message}`,
    );
    await sleep(500);
    const child = portal.process()!;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const signalled = Date.now();
    child.kill("SIGTERM");
    await sleep(1_000);
    // The listener is closed: a new connection is refused...
    await assert.rejects(fetch(`${portal.url}/healthz`), "no new connections while draining");
    // ...and the requests in flight complete.
    for (const r of inFlight) r.finish();
    const answers = await Promise.all(inFlight.map((r) => r.response));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
    assert.ok(answers.every((a) => a.connection === "close"), "responses written while draining close their connection");
    const code = await exited;
    const took = Date.now() - signalled;
    assert.equal(code, 0, portal.output());
    assert.match(await stuckOutcome, /^cut/, "the request that never finished was cut at the grace period");
    assert.match(portal.output(), /SIGTERM: stopping \(7 requests in flight/);
    assert.match(portal.output(), /grace period over: closing 1 request still in flight/);
    t.diagnostic(`SIGTERM with 7 requests in flight: 6 completed (200), 1 unfinished upload cut at the 6 s grace period; exit code ${code} after ${took} ms`);
    assertNoUncaught(portal);
    await assertStored(t, portal.env.DATABASE_URL ?? `file:${path.join(portal.dir, "certbridge.db")}`, answers.map((a) => a.serial!));
  });
});
