/**
 * Client-credentials tokens (WLCG profile JWTs, DIRAC's pilot-token request) per second over HTTP,
 * next to /getproxy's figure on the same portal: printed, never asserted.
 *
 *   node --import tsx bench/tokens-http.ts
 *   CERTBRIDGE_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/test node --import tsx bench/tokens-http.ts
 *
 * The portal runs as a child process (test/portalHarness.ts: server.ts, the built Next app, its own
 * data and database) with CERTBRIDGE_WORKERS=2 unless the environment says otherwise. Each level
 * runs N requests from C concurrent clients over keep-alive connections (node:http, one socket per
 * client, opened before timing): POST /oidc/token `grant_type=client_credentials&scope=compute.*&
 * audience=ce.example.org:9619` with client_secret_basic, and POST /getproxy (CSR mode, Bearer)
 * with a gateway's opaque token. Non-200 answers are counted and printed.
 *
 * Options (environment): BENCH_REQUESTS="300,3000" (1 and 16 concurrent), BENCH_LEVEL_SECONDS=30.
 * Needs `npx next build` first (.next/BUILD_ID).
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { opensslCsr, ROOT, TEST_DATABASE } from "../test/helpers";
import { startPortalServer, loginThroughPortal, redeem, type PortalServer } from "../test/portalHarness";

const LEVELS = [1, 16];
const REQUESTS = (process.env.BENCH_REQUESTS ?? "300,3000").split(",").map(Number);
const LEVEL_SECONDS = Number(process.env.BENCH_LEVEL_SECONDS ?? 30);
const PILOTS = { id: "bench-pilots", secret: "bench-pilots-secret-0123456789abcdef" };
const COMPUTE = ["compute.cancel", "compute.create", "compute.modify", "compute.read"];

function postOnce(agent: http.Agent, target: URL, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ agent, hostname: target.hostname, port: target.port, path: target.pathname, method: "POST", headers }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => status !== 200 && chunks.push(c));
      res.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on("error", (e) => resolve({ status: 0, body: `request error: ${e.message}` }));
    req.end(body);
  });
}

async function level(name: string, target: URL, headers: http.OutgoingHttpHeaders, body: Buffer, n: number, concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  await Promise.all(
    Array.from({ length: concurrency }, () => new Promise<void>((r) => http.get({ agent, hostname: target.hostname, port: target.port, path: "/api/health" }, (res) => res.resume().on("end", r)).on("error", () => r()))),
  );
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  let next = 0;
  const start = performance.now();
  const deadline = start + LEVEL_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n && performance.now() < deadline) {
        next++;
        const t = performance.now();
        const r = await postOnce(agent, target, headers, body);
        latencies.push(performance.now() - t);
        if (r.status !== 200) failures.set(`${r.status} ${r.body.slice(0, 200)}`, (failures.get(`${r.status} ${r.body.slice(0, 200)}`) ?? 0) + 1);
      }
    }),
  );
  agent.destroy();
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN).toFixed(1).padStart(7);
  const failed = [...failures.values()].reduce((a, b) => a + b, 0);
  console.log(
    `${name.padEnd(28)} ${String(concurrency).padStart(3)} concurrent ${String(latencies.length).padStart(5)} req ${(latencies.length / seconds).toFixed(0).padStart(6)} /s   p50 ${q(0.5)} ms  p99 ${q(0.99)} ms   failures ${failed}`,
  );
  for (const [k, c] of [...failures].slice(0, 3)) console.log(`      ${c} × ${k}`);
}

async function main() {
  if (!fs.existsSync(path.join(ROOT, ".next", "BUILD_ID"))) {
    console.error("the Next app is not built: run `NEXT_TELEMETRY_DISABLED=1 npx next build` first");
    process.exitCode = 1;
    return;
  }
  const cpus = os.cpus();
  console.log(`node ${process.version}, ${cpus.length} cores (${cpus[0]?.model ?? "?"}), database: ${TEST_DATABASE.startsWith("postgres") ? "PostgreSQL" : "SQLite"}`);
  console.log("client and server share this machine; the client is one Node process (node:http, keep-alive)");
  let portal: PortalServer | undefined;
  try {
    portal = await startPortalServer({ CERTBRIDGE_ACCESS_TOKEN_TTL: "1h", CERTBRIDGE_KEY_POOL_SIZE: "8", CERTBRIDGE_WORKERS: process.env.CERTBRIDGE_WORKERS ?? "2", CERTBRIDGE_RATE_LIMITS: process.env.CERTBRIDGE_RATE_LIMITS ?? "token.ip=100000000/1m,token.client=100000000/1m" }, [
      { id: PILOTS.id, name: "Bench pilot factory", secret: PILOTS.secret, scopes: COMPUTE, tokenPolicy: { format: "wlcg", compute: true } },
    ]);
    const url = new URL(portal.url);
    const tokenHeaders = {
      host: url.host,
      authorization: `Basic ${Buffer.from(`${PILOTS.id}:${PILOTS.secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    };
    const tokenBody = Buffer.from(new URLSearchParams({ grant_type: "client_credentials", scope: COMPUTE.join(" "), audience: "ce.example.org:9619" }).toString());
    const tokens = await redeem(await loginThroughPortal(portal.url));
    const csr = opensslCsr(portal.dir, "bench");
    const proxyBody = Buffer.from(new URLSearchParams({ certreq: csr.csrPem, proxylifetime: "43200" }).toString());
    const proxyHeaders = { host: url.host, authorization: `Bearer ${tokens.access_token}`, "content-type": "application/x-www-form-urlencoded" };
    // warm-up
    await level("warm-up (tokens)", new URL("/oidc/token", url), tokenHeaders, tokenBody, 100, 4);
    await level("warm-up (/getproxy)", new URL("/getproxy", url), proxyHeaders, proxyBody, 50, 4);
    console.log("---");
    for (const [i, c] of LEVELS.entries()) {
      await level("client_credentials (JWT)", new URL("/oidc/token", url), tokenHeaders, tokenBody, REQUESTS[i] ?? 1000, c);
      await level("/getproxy (CSR, opaque token)", new URL("/getproxy", url), proxyHeaders, proxyBody, REQUESTS[i] ?? 1000, c);
    }
  } finally {
    await portal?.cleanup();
  }
}

await main();
