/**
 * The admin console's certificate search on a seeded 100,000-certificate
 * database: server-side time of typical filtered pages (median of 7 runs),
 * printed, never asserted. Goal (issue 5): under 200 ms.
 *
 *   node --import tsx bench/admin-query.ts
 *   BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test node --import tsx bench/admin-query.ts
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createPgDatabase } from "../test/helpers";
import { openDatabase, openMigratedDatabase, newId, searchAuditEvents, countProxiesByClient, countIdentities, listUserCertificatesEndingBefore, type AuditFilter } from "../lib/db";
import { searchCertificates, type CertificateSearch } from "../lib/admin/certificates";

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const PEOPLE = 5_000;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-admin-bench-"));
  const pg = process.env.BENCH_DATABASE_URL ? await createPgDatabase(process.env.BENCH_DATABASE_URL) : null;
  const url = pg?.url ?? `file:${path.join(dir, "bench.db")}`;
  const { db } = await openMigratedDatabase(url, openDatabase);
  try {
    const t0 = performance.now();
    const identities = Array.from({ length: PEOPLE }, (_, i) => ({
      id: newId(),
      identifierHash: crypto.createHash("sha256").update(`p${i}`).digest("hex"),
      issuer: "https://idp.example.org",
      sub: `p${i}`,
      subject: `/DC=org/DC=certbridge/DC=users/O=Org ${i % 50}/CN=Person ${i} ${crypto.randomBytes(12).toString("base64url").slice(0, 16)}`,
      displayName: `Person ${i}`,
      organisation: `Org ${i % 50}`,
      claims: "{}",
    }));
    for (let i = 0; i < identities.length; i += 1000) await db.identity.createMany({ data: identities.slice(i, i + 1000) });
    const start = Date.now() - 30 * 86400_000;
    const batch = [];
    const events: { id: string; at: Date; action: string; actor: string; identityId: string; clientId: string | null; ip: string; details: string }[] = [];
    for (let i = 0; i < ROWS; i++) {
      const who = identities[i % PEOPLE]!;
      const proxy = i % 10 !== 0;
      const created = new Date(start + Math.floor((i / ROWS) * 30 * 86400_000));
      const serial = proxy ? 1 + crypto.randomInt(2 ** 31 - 2) : 0;
      batch.push({
        id: newId(),
        kind: proxy ? "proxy" : "user",
        serialHex: proxy ? serial.toString(16) : crypto.randomBytes(20).toString("hex"),
        serialDec: proxy ? String(serial) : "0",
        subject: proxy ? `${who.subject}/CN=${serial}` : who.subject,
        issuer: proxy ? who.subject : "/DC=org/DC=certbridge/CN=Certbridge Online CA",
        identityId: who.id,
        notBefore: created,
        notAfter: new Date(created.getTime() + (proxy ? 12 * 3600_000 : 11 * 86400_000)),
        pem: "-----BEGIN CERTIFICATE-----\n" + "A".repeat(1400) + "\n-----END CERTIFICATE-----\n",
        keySource: proxy ? (i % 3 ? "csr" : "server") : "ca",
        keyBits: 2048,
        clientId: proxy ? `gw-${i % 7}` : null,
        vo: proxy && i % 4 === 0 ? "biomed" : null,
        status: i % 997 === 0 ? "revoked" : "valid",
        createdAt: created,
      });
      events.push({ id: newId(), at: created, action: proxy ? "proxy.issue" : "certificate.issue", actor: proxy ? `client:gw-${i % 7}` : "login", identityId: who.id, clientId: proxy ? `gw-${i % 7}` : null, ip: "192.0.2.1", details: "{}" });
      if (batch.length === 2000) {
        await db.certificate.createMany({ data: batch.splice(0) });
        await db.auditEvent.createMany({ data: events.splice(0) });
      }
    }
    if (batch.length) await db.certificate.createMany({ data: batch });
    if (events.length) await db.auditEvent.createMany({ data: events });
    console.log(`seeded ${ROWS} certificates for ${PEOPLE} people in ${((performance.now() - t0) / 1000).toFixed(1)} s (${pg ? "PostgreSQL" : "SQLite"})`);

    const now = new Date();
    const sample = await db.certificate.findFirst({ where: { kind: "proxy" }, skip: 54_321 % ROWS, select: { serialDec: true } });
    const deep = await (async () => {
      let cursor: string | undefined;
      for (let i = 0; i < 20; i++) cursor = (await searchCertificates(db, { limit: 50, cursor }, now)).nextCursor ?? undefined;
      return cursor;
    })();
    const queries: [string, CertificateSearch][] = [
      ["first page, no filter", { limit: 50 }],
      ["page 21 (keyset cursor)", { limit: 50, cursor: deep }],
      ["part of a subject (\"Person 4242 \")", { subject: "Person 4242 ", limit: 50 }],
      ["part of a subject, proxies, valid", { subject: "Org 7/", kind: "proxy", status: "valid", limit: 50 }],
      ["client gw-3, last 7 days", { clientId: "gw-3", issuedAfter: new Date(Date.now() - 7 * 86400_000), limit: 50 }],
      ["serial (decimal)", { serial: sample!.serialDec, limit: 50 }],
      ["revoked", { status: "revoked", limit: 50 }],
      ["VO biomed, server keys", { vo: "biomed", keySource: "server", limit: 50 }],
    ];
    const measure = async (name: string, run: () => Promise<number>) => {
      const times: number[] = [];
      let n = 0;
      for (let i = 0; i < 7; i++) {
        const t = performance.now();
        n = await run();
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      console.log(`${name.padEnd(44)} median ${times[3]!.toFixed(1).padStart(7)} ms   max ${times[6]!.toFixed(1).padStart(7)} ms   rows ${n}`);
    };
    console.log("certificates (the admin table):");
    for (const [name, q] of queries) await measure(name, async () => (await searchCertificates(db, q, now)).rows.length);

    console.log(`audit log (${ROWS} events):`);
    const audits: [string, AuditFilter][] = [
      ["first page, no filter", {}],
      ["action proxy.issue", { action: "proxy.issue" }],
      ["family proxy.*, gateway gw-3", { action: "proxy.", clientId: "gw-3" }],
      ["one person", { identityId: identities[4242]!.id }],
      ["last 24 hours", { from: new Date(Date.now() - 86400_000) }],
    ];
    for (const [name, f] of audits) await measure(name, async () => (await searchAuditEvents(db, f, 101)).length);

    console.log("overview:");
    await measure("issuance per day by gateway (30 days)", async () => {
      const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      const days = await Promise.all(Array.from({ length: 30 }, (_, i) => countProxiesByClient(db, new Date(today - (29 - i) * 86400_000), new Date(today - (28 - i) * 86400_000))));
      return days.length;
    });
    await measure("active people, near-expiry list", async () => {
      const [a] = await Promise.all([countIdentities(db, new Date(Date.now() - 30 * 86400_000)), listUserCertificatesEndingBefore(db, now, new Date(Date.now() + 2 * 86400_000), 10)]);
      return a.active;
    });
  } finally {
    await db.$disconnect();
    await pg?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
