/**
 * The persistent server-key pool (lib/pki/keyPool.ts, lib/db/pooledKeys.ts): keys sealed at rest,
 * each handed out once across processes, filled only while the machine is idle and only up to the
 * configured size. The CPU counters and the pauses are injected, so no test waits on an idle
 * probe's wall-clock second. RSA-1024 keeps the generation cheap (the pool does not care).
 * test/postgresKeyPool.test.ts runs the same on PostgreSQL.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { closeDatabase, countPooledKeys, openDatabase, type Db } from "../lib/db";
import { openSealedKey } from "../lib/pki/seal";
import { KeyPool, KEY_POOL_MIN_PAUSE_MS, pooledKeyContext, type CpuTimes, type KeyPoolOptions } from "../lib/pki/keyPool";
import { issueProxy } from "../lib/issuance/issueProxy";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { certificateParts } from "../lib/pki/x509";
import { pemBlocks } from "../lib/pki/der";
import { claimsFor, opensslVerifyProxy, startTestPortal, TEST_DATABASE, type TestPortal } from "./helpers";

const BITS = 1024;

/** Machine CPU counters that advance by one second of two cores per reading: all idle, or all busy. */
function fakeCpu() {
  const state = { busy: false, reads: 0, idleMs: 0, totalMs: 0 };
  const cpuTimes = (): CpuTimes => {
    state.reads++;
    state.totalMs += 2000;
    if (!state.busy) state.idleMs += 2000;
    return { idleMs: state.idleMs, totalMs: state.totalMs };
  };
  return { state, cpuTimes };
}

let portal: TestPortal;
let db: Db;
const pools: KeyPool[] = [];
const dbs: Db[] = [];

/** A pool on the test database whose pauses last 1 ms (the loop still yields to the event loop). */
function pool(opts: Partial<KeyPoolOptions> = {}): KeyPool {
  const p = new KeyPool({ db, kek: portal.config.kek, capacity: 3, bits: BITS, cpuTimes: fakeCpu().cpuTimes, sleep: () => new Promise((r) => setTimeout(r, 1)), log: () => {}, ...opts });
  pools.push(p);
  return p;
}

async function until(cond: () => Promise<boolean>, what: string, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function emptyPool() {
  await db.$executeRawUnsafe(`DELETE FROM "PooledKey"`);
}

async function stopAll() {
  await Promise.all(pools.splice(0).map((p) => p.stop()));
}

before(async () => {
  portal = await startTestPortal();
  db = portal.cb.db;
});

after(async () => {
  await stopAll();
  for (const d of dbs) await closeDatabase(d);
  await portal.cleanup();
});

describe("key pool", () => {
  // Each test starts from an empty table with no filler left running by an earlier one (even a failed one).
  beforeEach(async () => {
    await stopAll();
    await emptyPool();
  });

  test("a taken key is the private key of its public key, and its row is gone", async () => {
    const p = pool().start();
    await p.filled();
    await p.stop();
    assert.equal(await countPooledKeys(db, BITS), 3);
    const key = await p.take();
    const derived = crypto.createPublicKey(crypto.createPrivateKey(key.privateKeyPem)).export({ type: "spki", format: "der" });
    assert.ok(derived.equals(Buffer.from(key.spki)), "the spki is the private key's public key");
    assert.match(key.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(crypto.createPrivateKey(key.privateKeyPem).asymmetricKeyDetails?.modulusLength, BITS);
    assert.equal(await countPooledKeys(db, BITS), 2);
    assert.deepEqual({ ...p.stats(), capacity: 3 }, { size: 2, capacity: 3, hits: 1, misses: 0 });
    await emptyPool();
    const missed = await p.take();
    assert.equal(p.stats().misses, 1, "an empty pool: the request generates its own key");
    assert.equal(p.stats().size, 0);
    assert.ok(crypto.createPublicKey(crypto.createPrivateKey(missed.privateKeyPem)).export({ type: "spki", format: "der" }).equals(Buffer.from(missed.spki)));
  });

  test("the stored rows hold no clear private key", async () => {
    const p = pool().start();
    await p.filled();
    await p.stop();
    const rows = await db.$queryRawUnsafe<{ id: string; spki: Uint8Array; keyEnc: string }[]>(`SELECT "id", "spki", "keyEnc" FROM "PooledKey"`);
    assert.equal(rows.length, 3);
    // The test holds the KEK, so it can find out what must not be there.
    const secrets = rows.map((r) => {
      const der = Buffer.from(openSealedKey(portal.config.kek, r.keyEnc, pooledKeyContext(r.id)));
      const pem = crypto.createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }) as string;
      return { der, pemLine: pem.split("\n")[1]!, hex: der.subarray(0, 64).toString("hex") };
    });
    // A database dump, as an operator's backup would hold it.
    let dump: Buffer;
    if (TEST_DATABASE.startsWith("postgres")) {
      dump = execFileSync("pg_dump", ["--data-only", "--table", '"PooledKey"', portal.config.databaseUrl], { maxBuffer: 64 << 20 });
    } else {
      // The database's own bytes, pages and write-ahead log: what a copy of the file would give away.
      const file = portal.config.databaseUrl.replace(/^file:/, "");
      dump = Buffer.concat([file, `${file}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
    }
    assert.ok(dump.includes(Buffer.from(rows[0]!.keyEnc)), "the dump has the sealed rows");
    for (const s of secrets) {
      assert.ok(!dump.includes(s.der.subarray(0, 64)), "no PKCS#8 DER");
      assert.ok(!dump.includes(Buffer.from(s.pemLine)), "no PEM");
      assert.ok(!dump.includes(Buffer.from(s.hex)), "no hex-encoded DER");
    }
    // OpenSSL finds no key in a sealed row, whichever way it is read.
    const dir = fs.mkdtempSync(path.join(portal.dir, "sealed-"));
    const envelope = rows[0]!.keyEnc;
    const candidates: [string, Buffer, string][] = [
      ["envelope.pem", Buffer.from(envelope), "PEM"],
      ...envelope.split(".").slice(1).map((part, i): [string, Buffer, string] => [`part${i}.der`, Buffer.from(part, "base64url"), "DER"]),
    ];
    for (const [name, bytes, form] of candidates) {
      fs.writeFileSync(path.join(dir, name), bytes);
      assert.throws(() => execFileSync("openssl", ["pkey", "-inform", form, "-in", path.join(dir, name), "-noout"], { stdio: "pipe" }), `openssl pkey -inform ${form} ${name}`);
    }
  });

  test("a row sealed for another row does not open: the take generates instead", async () => {
    const p = pool({ capacity: 2 }).start();
    await p.filled();
    await p.stop();
    const rows = await db.$queryRawUnsafe<{ id: string; keyEnc: string }[]>(`SELECT "id", "keyEnc" FROM "PooledKey"`);
    // Swap the sealed keys: each now sits under the wrong row id (associated data).
    await db.$executeRaw`UPDATE "PooledKey" SET "keyEnc" = ${rows[1]!.keyEnc} WHERE "id" = ${rows[0]!.id}`;
    const before = p.stats();
    const key = await p.take();
    const after = p.stats();
    assert.equal(after.hits + after.misses - before.hits - before.misses, 1);
    assert.ok(crypto.createPublicKey(crypto.createPrivateKey(key.privateKeyPem)).export({ type: "spki", format: "der" }).equals(Buffer.from(key.spki)));
  });

  test("filling stops at the configured size", async () => {
    const cpu = fakeCpu();
    const p = pool({ capacity: 4, cpuTimes: cpu.cpuTimes }).start();
    await p.filled();
    // The last key's rest (its idle probe) may still be under way when filled() sees the count.
    await new Promise((r) => setTimeout(r, 50));
    const reads = cpu.state.reads;
    // Let the loop go round a good many times more (each pause is 1 ms): it only recounts.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await countPooledKeys(db, BITS), 4);
    assert.equal(cpu.state.reads, reads, "a full pool does not even probe the CPU");
    // A take makes room; the filler refills it.
    await p.take();
    await until(async () => (await countPooledKeys(db, BITS)) === 4, "the refill");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await countPooledKeys(db, BITS), 4);
    await p.stop();
  });

  test("filling pauses while the machine is busy and resumes when it is idle", async () => {
    const cpu = fakeCpu();
    cpu.state.busy = true;
    const p = pool({ capacity: 2, cpuTimes: cpu.cpuTimes }).start();
    await until(async () => cpu.state.reads >= 20, "probes of a busy machine");
    assert.equal(await countPooledKeys(db, BITS), 0, "nothing generated on a busy machine");
    cpu.state.busy = false;
    await p.filled();
    assert.equal(await countPooledKeys(db, BITS), 2);
    await p.stop();
  });

  test("generation is duty-cycled to the CPU share; the idle probe watches the pauses", async () => {
    for (const [share, spentMs, restMs] of [
      [0.5, 100, 100],
      [0.25, 100, 300],
      [1, 100, KEY_POOL_MIN_PAUSE_MS],
    ] as const) {
      await emptyPool();
      const pauses: number[] = [];
      let t = 0;
      // The clock is read at the start and at the end of each key: each reading moves it by the generation time.
      const p = pool({ capacity: 2, cpuShare: share, now: () => (t += spentMs), sleep: (ms) => (pauses.push(ms), new Promise((r) => setTimeout(r, 1))) }).start();
      await p.filled();
      await p.stop();
      assert.ok(pauses.includes(restMs), `share ${share}: a key of ${spentMs} ms is followed by a rest of ${restMs} ms (pauses: ${pauses.join(", ")})`);
    }
  });

  test("a database error pauses filling (said once) and it resumes", async () => {
    let failures = 3;
    // The pool's count fails three times, as during a database restart.
    const flaky = new Proxy(db, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== "pooledKey") return value;
        return new Proxy(value as object, {
          get: (model, name) =>
            name === "count" && failures > 0
              ? async () => {
                  failures--;
                  throw new Error("the database is restarting (test)");
                }
              : (Reflect.get(model, name) as unknown),
        });
      },
    });
    const logs: string[] = [];
    const p = pool({ capacity: 2, db: flaky, log: (m) => logs.push(m) }).start();
    await p.filled();
    await p.stop();
    assert.equal(failures, 0);
    assert.deepEqual(logs, ["key pool: filling failed (retrying every 5 s): the database is restarting (test)"]);
    assert.equal(await countPooledKeys(db, BITS), 2);
  });

  test("only while fillWhen holds (the leader fills)", async () => {
    let leader = false;
    const cpu = fakeCpu();
    const p = pool({ capacity: 2, cpuTimes: cpu.cpuTimes }).start(() => leader);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await countPooledKeys(db, BITS), 0);
    assert.equal(cpu.state.reads, 0);
    leader = true;
    await p.filled();
    await p.stop();
  });

  test("two fillers on one database overshoot the size by at most one key each", async () => {
    const other = await openDatabase(portal.config.databaseUrl);
    dbs.push(other);
    const a = pool({ capacity: 10 }).start();
    const b = pool({ capacity: 10, db: other }).start();
    await until(async () => (await countPooledKeys(db, BITS)) >= 10, "the fill");
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all([a.stop(), b.stop()]);
    const n = await countPooledKeys(db, BITS);
    assert.ok(n >= 10 && n <= 11, `${n} keys for a size of 10`);
  });

  test("a server-key proxy made with a pooled key verifies, and its key is the pooled one", async () => {
    // The portal's own pool takes; a test pool of its size (RSA-2048) fills the table.
    const p = pool({ capacity: 1, bits: 2048 }).start();
    await p.filled();
    await p.stop();
    const [row] = await db.$queryRawUnsafe<{ spki: Uint8Array }[]>(`SELECT "spki" FROM "PooledKey"`);
    const before = portal.cb.keyPool.stats();
    const issued = await issueProxy(portal.cb, { claims: claimsFor("pooled"), actor: "test" });
    assert.equal(portal.cb.keyPool.stats().hits, before.hits + 1, "the key came from the pool");
    assert.equal(await countPooledKeys(db, 2048), 0);
    const proxyCert = pemBlocks(issued.pem)[0]!.der;
    assert.ok(Buffer.from(certificateParts(proxyCert).spki).equals(Buffer.from(row!.spki)), "the proxy certifies the pooled public key");
    const keyPem = issued.pem.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)![0];
    assert.ok(crypto.createPublicKey(keyPem).export({ type: "spki", format: "der" }).equals(Buffer.from(row!.spki)), "the file's private key is the pooled one");
    const work = fs.mkdtempSync(path.join(portal.dir, "pooled-"));
    const trust = (await exportTrustDirectory(portal.cb, path.join(work, "certificates"))).directory;
    const file = path.join(work, "proxy.pem");
    fs.writeFileSync(file, issued.pem, { mode: 0o600 });
    const r = opensslVerifyProxy(file, trust, work);
    assert.equal(r.status, 0, r.stderr + r.stdout);
  });

  test("each key is handed out once: two processes' pools take 200 keys at once", async () => {
    const filler = pool({ capacity: 200, cpuShare: 1 }).start();
    await filler.filled();
    await filler.stop();
    assert.equal(await countPooledKeys(db, BITS), 200);
    // Two clients of the database, as two instances have: their own connections (PostgreSQL: pools).
    const otherDbs = [await openDatabase(portal.config.databaseUrl), await openDatabase(portal.config.databaseUrl)];
    dbs.push(...otherDbs);
    const takers = otherDbs.map((d) => pool({ db: d, capacity: 0 }));
    const keys = await Promise.all(Array.from({ length: 200 }, (_, i) => takers[i % 2]!.take()));
    const spkis = new Set(keys.map((k) => Buffer.from(k.spki).toString("base64")));
    const privates = new Set(keys.map((k) => k.privateKeyPem));
    assert.equal(spkis.size, 200, "200 different public keys");
    assert.equal(privates.size, 200, "200 different private keys");
    assert.deepEqual(
      takers.map((t) => t.stats().misses),
      [0, 0],
      "every take found a key",
    );
    assert.equal(takers[0]!.stats().hits + takers[1]!.stats().hits, 200);
    assert.equal(await countPooledKeys(db, BITS), 0, "the table is empty: every key handed out was deleted");
    await takers[0]!.take();
    assert.equal(takers[0]!.stats().misses, 1, "the 201st is a miss");
  });

  test("a burst bigger than the pool: the pool's keys go in one group take, the other requests make their own", async () => {
    await emptyPool();
    const filler = pool({ capacity: 5, cpuShare: 1 }).start();
    await filler.filled();
    await filler.stop();
    const taker = pool({ capacity: 0 });
    const keys = await Promise.all(Array.from({ length: 20 }, () => taker.take()));
    assert.equal(new Set(keys.map((k) => k.privateKeyPem)).size, 20, "20 different keys");
    assert.deepEqual({ hits: taker.stats().hits, misses: taker.stats().misses }, { hits: 5, misses: 15 });
    assert.equal(await countPooledKeys(db, BITS), 0);
  });
});
