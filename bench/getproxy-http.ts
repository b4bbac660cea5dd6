/**
 * /getproxy over HTTP against the production server entry, printed, never asserted.
 *
 *   node --import tsx bench/getproxy-http.ts                      # SQLite in a temporary directory
 *   CERTBRIDGE_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/test node --import tsx bench/getproxy-http.ts
 *
 * The portal runs as a child process (test/portalHarness.ts: server.ts, the
 * built Next app, its own data directory and database). One OAuth login as
 * the test gateway gives an access token (TTL 1 h), OpenSSL makes one CSR;
 * after a warm-up, POST /getproxy (CSR mode, Authorization: Bearer) is driven
 * at 1, 16 and 64 concurrent clients over keep-alive connections (node:http,
 * one socket per client, opened before timing). Every response must be 200;
 * failures are counted and printed, with the end of the server's log. Client
 * and server CPU (from /proc on Linux) show which side is the bottleneck.
 *
 * The portal runs with CERTBRIDGE_WORKERS=2 (one event loop per core) unless the
 * environment says otherwise.
 *
 * Options (environment):
 *   BENCH_REQUESTS="500,3000,4000"   requests per level (1, 16, 64 concurrent)
 *   BENCH_LEVEL_SECONDS=30           a level stops early after this long
 *   CERTBRIDGE_RATE_LIMITS=…         the portal's limits (default: /getproxy's per-IP and per-client
 *                                    limits too high to refuse, still counted; "getproxy.ip=off,
 *                                    getproxy.client=off,getproxy.ip_fail=off" measures without them)
 *   BENCH_CPU_PROF=<dir>             profile the server (node:inspector, preloaded) into <dir>
 *                                    (written when the server stops)
 *
 * Needs `npx next build` first (.next/BUILD_ID).
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { opensslCsr, ROOT, TEST_DATABASE } from "../test/helpers";
import { startPortalServer, loginThroughPortal, redeem, type PortalServer } from "../test/portalHarness";
import { childrenOf, processCpuSeconds } from "./lib/proc";

const LEVELS = [1, 16, 64];
const REQUESTS = (process.env.BENCH_REQUESTS ?? "500,3000,4000").split(",").map(Number);
const LEVEL_SECONDS = Number(process.env.BENCH_LEVEL_SECONDS ?? 30);
const WARMUP = 200;
const PROXY_LIFETIME = "43200";

/** Loaded into the server with NODE_OPTIONS=--import: samples from start to exit (the server exits on SIGTERM). */
const PROFILE_PRELOAD = `
import inspector from "node:inspector";
import fs from "node:fs";
import path from "node:path";
const session = new inspector.Session();
session.connect();
session.post("Profiler.enable");
session.post("Profiler.setSamplingInterval", { interval: 500 });
session.post("Profiler.start");
process.on("exit", () => {
  session.post("Profiler.stop", (err, r) => {
    if (!err) fs.writeFileSync(path.join(process.env.BENCH_CPU_PROF_DIR, "server-" + process.pid + ".cpuprofile"), JSON.stringify(r.profile));
  });
});
`;

interface Failure {
  status: number;
  body: string;
}

interface LevelResult {
  concurrency: number;
  requests: number;
  ok: number;
  failures: Failure[];
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  stoppedEarly: boolean;
  /** CPU time per second of wall time (1.0 = one core busy) */
  clientCpu: number;
  serverCpu: number;
  serverCpuMsPerRequest: number;
}

/** One POST /getproxy on a keep-alive socket; resolves with status and (for failures) body. */
function postOnce(agent: http.Agent, target: URL, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ agent, hostname: target.hostname, port: target.port, path: target.pathname, method: "POST", headers }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        if (status !== 200) chunks.push(c);
      });
      res.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on("error", (e) => resolve({ status: 0, body: `request error: ${e.message}` }));
    req.end(body);
  });
}

async function runLevel(target: URL, headers: http.OutgoingHttpHeaders, body: Buffer, n: number, concurrency: number, maxSeconds: number, serverPid?: number): Promise<LevelResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const latencies: number[] = [];
  const failures: Failure[] = [];
  let next = 0;
  let ok = 0;
  // Open every client's connection before timing (a cheap GET): gateways reuse their connections, and on a
  // saturated server the first request on a brand-new connection was seen to wait 1-5 s (64 fresh
  // connections at once), which would measure connection set-up under overload, not /getproxy.
  await Promise.all(
    Array.from(
      { length: concurrency },
      () =>
        new Promise<void>((resolve) =>
          http
            .get({ agent, hostname: target.hostname, port: target.port, path: "/api/health", headers: { host: headers.host } }, (res) => res.resume().on("end", resolve))
            .on("error", () => resolve()),
        ),
    ),
  );
  const cpu0 = process.cpuUsage();
  const server0 = serverPid ? processCpuSeconds(serverPid) : NaN;
  const start = performance.now();
  const deadline = start + maxSeconds * 1000;
  let stoppedEarly = false;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          if (performance.now() > deadline) {
            stoppedEarly = true;
            return;
          }
          next++;
          const t = performance.now();
          const r = await postOnce(agent, target, headers, body);
          latencies.push(performance.now() - t);
          if (r.status === 200) ok++;
          else failures.push({ status: r.status, body: r.body.slice(0, 300) });
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpuSeconds = serverPid ? processCpuSeconds(serverPid) - server0 : NaN;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    concurrency,
    requests: latencies.length,
    ok,
    failures,
    perSecond: latencies.length / seconds,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: latencies.at(-1) ?? NaN,
    stoppedEarly,
    clientCpu: (cpu.user + cpu.system) / 1e6 / seconds,
    serverCpu: serverCpuSeconds / seconds,
    serverCpuMsPerRequest: (1000 * serverCpuSeconds) / latencies.length,
  };
}

function printLevel(r: LevelResult) {
  const f = (x: number) => x.toFixed(1).padStart(7);
  console.log(
    `${String(r.concurrency).padStart(3)} concurrent  ${String(r.requests).padStart(5)} req  ${r.perSecond.toFixed(0).padStart(6)} /s   ` +
      `p50 ${f(r.p50)} ms  p90 ${f(r.p90)} ms  p99 ${f(r.p99)} ms  max ${f(r.max)} ms   failures ${r.failures.length}${r.stoppedEarly ? "   (time limit reached)" : ""}`,
  );
  console.log(
    `                 CPU: client ${(100 * r.clientCpu).toFixed(0)}%, server ${Number.isNaN(r.serverCpu) ? "?" : `${(100 * r.serverCpu).toFixed(0)}% (${r.serverCpuMsPerRequest.toFixed(2)} ms/request)`}  (100% = one core)`,
  );
  const shown = new Map<string, number>();
  for (const x of r.failures) {
    const key = `${x.status} ${x.body}`;
    shown.set(key, (shown.get(key) ?? 0) + 1);
  }
  for (const [key, count] of [...shown].slice(0, 5)) console.log(`      ${count} × ${key}`);
}

async function main() {
  if (!fs.existsSync(path.join(ROOT, ".next", "BUILD_ID"))) {
    console.error("the Next app is not built: run `NEXT_TELEMETRY_DISABLED=1 npx next build` first");
    process.exitCode = 1;
    return;
  }
  const database = TEST_DATABASE.startsWith("postgres") ? "PostgreSQL" : "SQLite";
  const cpus = os.cpus();
  console.log(`node ${process.version}, ${cpus.length} cores (${cpus[0]?.model ?? "?"}), database: ${database}`);
  console.log(`goal (issue): at least 500/s and p99 under 100 ms at 16 concurrent`);
  console.log(`client and server share this machine; the client is one Node process (node:http, keep-alive, one socket per client)`);

  const extraEnv: Record<string, string> = {
    CERTBRIDGE_ACCESS_TOKEN_TTL: "1h",
    CERTBRIDGE_KEY_POOL_SIZE: "8",
    CERTBRIDGE_WORKERS: process.env.CERTBRIDGE_WORKERS ?? "2",
    // One client from one IP at full speed: limits high enough never to refuse, still counted (their cost is measured).
    CERTBRIDGE_RATE_LIMITS: process.env.CERTBRIDGE_RATE_LIMITS ?? "getproxy.ip=100000000/1m,getproxy.client=100000000/1m",
  };
  const profDir = process.env.BENCH_CPU_PROF;
  if (profDir) {
    fs.mkdirSync(profDir, { recursive: true });
    // --cpu-prof is refused in NODE_OPTIONS: preload a module that profiles through node:inspector instead.
    const preload = path.join(path.resolve(profDir), "cpu-profile-preload.mjs");
    fs.writeFileSync(preload, PROFILE_PRELOAD);
    extraEnv.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --import ${pathToFileURL(preload).href}`.trim();
    extraEnv.BENCH_CPU_PROF_DIR = path.resolve(profDir);
  }

  let portal: PortalServer | undefined;
  const cleanup = async () => {
    const p = portal;
    portal = undefined;
    await p?.cleanup();
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    portal = await startPortalServer(extraEnv);
    const tokens = await redeem(await loginThroughPortal(portal.url));
    const csr = opensslCsr(portal.dir, "bench");
    const target = new URL(`${portal.url}/getproxy`);
    // the portal among this process's children (tsx's esbuild service is another)
    const serverPid = childrenOf(process.pid).find((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("server.ts");
      } catch {
        return false;
      }
    });
    const body = Buffer.from(new URLSearchParams({ certreq: csr.csrPem, proxylifetime: PROXY_LIFETIME }).toString());
    const headers: http.OutgoingHttpHeaders = {
      authorization: `Bearer ${tokens.access_token}`,
      "content-type": "application/x-www-form-urlencoded",
      "content-length": body.length,
      host: new URL(portal.url).host,
    };

    // a check that the request is right before timing anything
    const probe = await runLevel(target, headers, body, 1, 1, 30);
    if (probe.ok !== 1) {
      printLevel(probe);
      throw new Error("the first /getproxy request failed; not measuring");
    }
    const warm = await runLevel(target, headers, body, WARMUP, 16, 60);
    console.log(`warm-up: ${warm.requests} requests at 16 concurrent, ${warm.failures.length} failures`);
    console.log(`POST /getproxy, CSR mode (RSA 2048), proxylifetime ${PROXY_LIFETIME}; each client's connection is opened before timing:`);

    let failed = warm.failures.length;
    for (const [i, concurrency] of LEVELS.entries()) {
      const r = await runLevel(target, headers, body, REQUESTS[i] ?? REQUESTS.at(-1)!, concurrency, LEVEL_SECONDS, serverPid);
      printLevel(r);
      failed += r.failures.length;
    }
    if (failed) {
      console.log(`${failed} requests did not get 200 (see above); the server's log ends:`);
      console.log(portal.output().slice(-4000).replace(/^/gm, "  | "));
    } else if (process.env.BENCH_SHOW_SERVER_LOG) console.log(portal.output());
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (profDir) console.log(`server CPU profile(s) in ${path.resolve(profDir)}: ${fs.readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile")).join(", ")}`);
  }
}

await main();
