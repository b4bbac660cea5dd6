/**
 * How close /getproxy comes to the machine's limits, in one run, printed, never asserted:
 *
 *   node --import tsx bench/throughput.ts                      # SQLite in a temporary directory
 *   CERTBRIDGE_TEST_DATABASE=postgresql://postgres@127.0.0.1:5432/test node --import tsx bench/throughput.ts
 *
 * Needs `npx next build` first (.next/BUILD_ID) and the load generator `hey` (Debian package hey,
 * scripts/setup.sh installs it). In order, on one machine:
 *
 *   1. OpenSSL alone: RSA-2048 signatures per second (`openssl speed -multi <cores> rsa2048`) and
 *      key generations per second (`openssl genpkey … rsa_keygen_bits:2048` in <cores> loops); then the
 *      same through node:crypto, whose OpenSSL (Node's own) is the server's and can be faster than the
 *      command's (Node 22's OpenSSL 3.5 against Debian's 3.0 on the development machine: RSA key
 *      generation about 4× faster).
 *   2. CSR mode: the production server entry (test/portalHarness.ts, CERTBRIDGE_WORKERS=2, a key pool
 *      of 8, which CSR mode leaves alone) after one OAuth login and a warm-up; `hey` POSTs /getproxy
 *      (form body with certreq, Authorization: Bearer, keep-alive) at 1, 16 and 64 concurrent clients.
 *      Latencies and status codes come from hey's CSV output; every response must be 200, others are
 *      counted and printed with the end of the server's log.
 *   3. Where myproxy-server is installed: Debian's myproxy-server on loopback (bench/lib/myproxyServer.ts,
 *      as bench/myproxy.ts starts it) delivers as many proxies as one CSR level did, at its concurrency,
 *      each over a fresh TLS connection as myproxy-logon does.
 *   4. Memory: resident size (VmRSS) of the cluster's primary and of each worker before and after
 *      every quarter of BENCH_ISSUANCES more CSR-mode issuances (64 concurrent), and whether it stays
 *      flat over the second half (warm-up levels off; a leak keeps growing).
 *   5. Server-key mode (no certreq) on a second portal with a key pool of BENCH_KEY_POOL_SIZE: the time
 *      until the pool is full (the gauge certbridge_key_pool_keys on each worker's metrics port,
 *      CERTBRIDGE_METRICS_PORT + worker − 1: every port must report available ≥ capacity, which holds
 *      for pools per worker and for one pool they share), a burst of BENCH_BURST requests at 16
 *      concurrent, then, once the pool is drained, a sustained run at 16 concurrent: its rate is key
 *      generation's, compared with OpenSSL's.
 *      Then HTTP alone: the same POST against a bare node:http server (as many workers) that answers
 *      with as many bytes as a proxy; with node:crypto's signing rate it bounds what one signature and
 *      one HTTP exchange per request allow on this machine.
 *   6. The ratios: CSR rate / OpenSSL signatures, server-key sustained / OpenSSL key generations (and
 *      both to node:crypto's), Certbridge / myproxy-server.
 *
 * Options (environment):
 *   BENCH_REQUESTS="1000,4000,16000" CSR-mode requests at 1, 16 and 64 concurrent (64: some seconds, so a pause of the machine weighs less)
 *   BENCH_OPENSSL_SECONDS=5           each OpenSSL measurement
 *   BENCH_MYPROXY_LEVEL=16            the CSR level (1, 16 or 64) myproxy-server repeats; 0 skips it
 *   BENCH_ISSUANCES=100000            CSR-mode issuances of the memory run (in 4 steps); 0 skips it
 *   BENCH_KEY_POOL_SIZE=1024          CERTBRIDGE_KEY_POOL_SIZE of the server-key portal (filled with
 *                                     CERTBRIDGE_KEY_POOL_CPU=1: the bench waits for it);
 *                                     0 skips server-key mode
 *   BENCH_BURST=1000                  server-key burst (16 concurrent)
 *   BENCH_POOL_FILL_SECONDS=600       how long to wait for the pool to fill
 *   BENCH_SUSTAINED_SECONDS=30        the sustained server-key run's expected length (requests =
 *                                     OpenSSL's key generations per second × this)
 *   CERTBRIDGE_WORKERS=2              the portal's workers
 *   CERTBRIDGE_RATE_LIMITS=…          the portal's limits (default: /getproxy's per-IP and per-client limits
 *                                     too high to refuse, still counted, as bench/getproxy-http.ts)
 *   BENCH_CPU_PROF=<dir>              profile the CSR portal's workers (node:inspector, preloaded) during the
 *                                     three CSR levels only (started and stopped with SIGUSR2), write the
 *                                     profiles into <dir> and print where the time goes
 *                                     (bench/lib/cpuProfile.ts; bench/profile-summary.ts reads them again)
 *
 * The default run takes about 6–8 minutes on 2 cores, most of it the memory run and the pool fill.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { pemBlocks } from "../lib/pki/der";
import { opensslCsr, ROOT, run, tempDir, TEST_DATABASE } from "../test/helpers";
import { freePort, loginThroughPortal, redeem, startPortalServer, type PortalServer } from "../test/portalHarness";
import { formatSummary, summarizeFiles } from "./lib/cpuProfile";
import { childrenOf, cpuByProcessNamed, cpuSecondsBetween, machineCpuSeconds, processCpuSeconds, rssMb } from "./lib/proc";
import { measure as measureMyProxy, myproxyServerVersion, startRealMyProxyServer, type Level as MyProxyLevel } from "./lib/myproxyServer";

const env = process.env;
const CSR_LEVELS = [1, 16, 64];
const REQUESTS = (env.BENCH_REQUESTS ?? "1000,4000,16000").split(",").map(Number);
const OPENSSL_SECONDS = Number(env.BENCH_OPENSSL_SECONDS ?? 5);
const MYPROXY_LEVEL = Number(env.BENCH_MYPROXY_LEVEL ?? 16);
const ISSUANCES = Number(env.BENCH_ISSUANCES ?? 100_000);
const KEY_POOL_SIZE = Number(env.BENCH_KEY_POOL_SIZE ?? 1024);
const BURST = Number(env.BENCH_BURST ?? 1000);
const POOL_FILL_SECONDS = Number(env.BENCH_POOL_FILL_SECONDS ?? 600);
const SUSTAINED_SECONDS = Number(env.BENCH_SUSTAINED_SECONDS ?? 30);
const WORKERS = Number(env.CERTBRIDGE_WORKERS ?? 2);
const PROF_DIR = env.BENCH_CPU_PROF ? path.resolve(env.BENCH_CPU_PROF) : undefined;
const CORES = os.availableParallelism();
const WARMUP = 300;
const PROXY_LIFETIME = "43200";

/**
 * Loaded into the server with NODE_OPTIONS=--import: the first SIGUSR2 starts sampling, the next (or the
 * exit) stops it and writes the profile, so that start-up and warm-up stay out of it.
 */
const PROFILE_PRELOAD = `
import inspector from "node:inspector";
import fs from "node:fs";
import path from "node:path";
const session = new inspector.Session();
session.connect();
let running = false;
const stop = () => {
  running = false;
  session.post("Profiler.stop", (err, r) => {
    if (!err) fs.writeFileSync(path.join(process.env.BENCH_CPU_PROF_DIR, "server-" + process.pid + "-" + Date.now() + ".cpuprofile"), JSON.stringify(r.profile));
  });
};
process.on("SIGUSR2", () => {
  if (running) return stop();
  running = true;
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 500 });
  session.post("Profiler.start");
});
process.on("exit", () => {
  if (running) stop();
});
`;

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "?");
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : "?");
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** Whether a program is on the PATH (it may exit with an error: only "not found" counts). */
const installed = (cmd: string) => (spawnSync(cmd, ["-h"], { stdio: "ignore" }).error as NodeJS.ErrnoException | undefined)?.code !== "ENOENT";

/** Children a cleanup must stop (hey, openssl) besides the portals. */
const running = new Set<ChildProcess>();

function spawnCollect(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", (e) => err.push(Buffer.from(String(e))));
    child.on("close", (status) => {
      running.delete(child);
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

// ---- OpenSSL

async function opensslSignRate(): Promise<{ sign: number; verify: number }> {
  const r = await spawnCollect("openssl", ["speed", "-multi", String(CORES), "-seconds", String(OPENSSL_SECONDS), "rsa2048"]);
  // "rsa 2048 bits 0.000134s 0.000005s   7460.0 200000.0" (sign, verify, sign/s, verify/s)
  const m = /^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/m.exec(r.stdout);
  if (!m) {
    console.log(`  openssl speed printed no rsa 2048 line (exit ${r.status}): ${(r.stdout + r.stderr).slice(-500)}`);
    return { sign: NaN, verify: NaN };
  }
  return { sign: Number(m[1]), verify: Number(m[2]) };
}

async function opensslKeygenRate(): Promise<number> {
  const start = performance.now();
  const deadline = start + OPENSSL_SECONDS * 1000;
  let keys = 0;
  let failed = "";
  await Promise.all(
    Array.from({ length: CORES }, async () => {
      while (performance.now() < deadline && !failed) {
        const r = await spawnCollect("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        if (r.status === 0) keys++;
        else failed = r.stderr.slice(0, 300);
      }
    }),
  );
  if (failed) console.log(`  openssl genpkey failed: ${failed}`);
  return keys / ((performance.now() - start) / 1000);
}

/**
 * The same two operations through node:crypto, the OpenSSL the server is linked with (Node's own, often
 * newer than the command's): <cores> at once on libuv's thread pool.
 */
async function nodeCryptoRates(): Promise<{ sign: number; keygen: number }> {
  const generate = promisify(crypto.generateKeyPair);
  const { privateKey } = await generate("rsa", { modulusLength: 2048 });
  const data = crypto.randomBytes(1024);
  const perSecond = async (op: () => Promise<unknown>) => {
    const start = performance.now();
    const deadline = start + OPENSSL_SECONDS * 1000;
    let n = 0;
    await Promise.all(
      Array.from({ length: CORES }, async () => {
        while (performance.now() < deadline) {
          await op();
          n++;
        }
      }),
    );
    return n / ((performance.now() - start) / 1000);
  };
  const sign = await perSecond(() => new Promise((resolve, reject) => crypto.sign("sha256", data, privateKey, (e, sig) => (e ? reject(e) : resolve(sig)))));
  const keygen = await perSecond(() => generate("rsa", { modulusLength: 2048 }));
  return { sign, keygen };
}

// ---- hey

interface HeyRun {
  concurrency: number;
  requested: number;
  /** responses by status code (200 is success) */
  statuses: Map<number, number>;
  /** requests hey got no response for (connection errors, its timeout): requested − rows of its CSV */
  noResponse: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU of the server (primary and workers) per second of wall time; 1.0 = one core busy */
  serverCpu: number;
  serverCpuMsPerRequest: number;
  /** The same for PostgreSQL's processes (server and backends), when the portal uses it; NaN otherwise */
  databaseCpu: number;
  databaseCpuMsPerRequest: number;
  /** The whole machine's busy share, all cores (1.0 = every core busy) */
  machineBusy: number;
  heyError?: string;
}

const failures = (r: HeyRun) => r.requested - (r.statuses.get(200) ?? 0);

/** hey POSTing `bodyFile` to /getproxy with the token, keep-alive; latencies from its CSV output (-o csv). */
function hey(portal: PortalServer, token: string, bodyFile: string, concurrency: number, n: number): Promise<HeyRun> {
  return heyAt(portal.url, portal.process()?.pid, token, bodyFile, concurrency, n);
}

async function heyAt(url: string, serverPid: number | undefined, token: string, bodyFile: string, concurrency: number, n: number): Promise<HeyRun> {
  // hey gives each of its workers n / c requests, rounded down (and refuses n < c): ask a multiple of c.
  n = Math.max(1, Math.ceil(n / concurrency)) * concurrency;
  const cpu0 = serverPid ? processCpuSeconds(serverPid) : NaN;
  // PostgreSQL on this machine serves the portal: its CPU is part of each request's cost.
  const onPostgres = TEST_DATABASE.startsWith("postgres");
  const db0 = cpuByProcessNamed("postgres");
  const machine0 = machineCpuSeconds();
  const wall0 = performance.now();
  const r = await spawnCollect("hey", [
    ...["-m", "POST", "-T", "application/x-www-form-urlencoded", "-D", bodyFile, "-H", `Authorization: Bearer ${token}`],
    ...["-c", String(concurrency), "-n", String(n), "-t", "60", "-o", "csv", `${url}/getproxy`],
  ]);
  const wall = (performance.now() - wall0) / 1000;
  const serverCpuSeconds = serverPid ? processCpuSeconds(serverPid) - cpu0 : NaN;
  const databaseCpuSeconds = onPostgres ? cpuSecondsBetween(db0, cpuByProcessNamed("postgres")) : NaN;
  const machine1 = machineCpuSeconds();
  // response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset (seconds)
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let end = 0;
  for (const line of r.stdout.split("\n")) {
    const f = line.split(",");
    if (f.length < 8 || !/^\d/.test(f[0]!)) continue;
    const latency = Number(f[0]) * 1000;
    latencies.push(latency);
    statuses.set(Number(f[6]), (statuses.get(Number(f[6])) ?? 0) + 1);
    end = Math.max(end, Number(f[7]) + Number(f[0]));
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const seconds = end > 0 ? end : wall;
  return {
    concurrency,
    requested: n,
    statuses,
    noResponse: n - latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: latencies.at(-1) ?? NaN,
    serverCpu: serverCpuSeconds / wall,
    serverCpuMsPerRequest: (1000 * serverCpuSeconds) / n,
    databaseCpu: databaseCpuSeconds / wall,
    databaseCpuMsPerRequest: (1000 * databaseCpuSeconds) / n,
    machineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
    heyError: r.status === 0 ? undefined : `hey exited ${r.status}: ${r.stderr.slice(0, 500)}`,
  };
}

function printRun(r: HeyRun, label = `${String(r.concurrency).padStart(3)} concurrent`) {
  const cpu =
    (Number.isFinite(r.serverCpu) ? `   server CPU ${(100 * r.serverCpu).toFixed(0)} % (${r.serverCpuMsPerRequest.toFixed(2)} ms/request)` : "") +
    (Number.isFinite(r.databaseCpu) ? `, PostgreSQL ${(100 * r.databaseCpu).toFixed(0)} % (${r.databaseCpuMsPerRequest.toFixed(2)} ms/request)` : "") +
    (Number.isFinite(r.machineBusy) ? `, machine ${(100 * r.machineBusy).toFixed(0)} % of ${CORES} cores busy` : "");
  console.log(
    `  ${label}  ${String(r.requested).padStart(6)} req  ${fmt(r.perSecond).padStart(6)} /s   p50 ${ms(r.p50).padStart(9)}  p90 ${ms(r.p90).padStart(9)}  p99 ${ms(r.p99).padStart(9)}  max ${ms(r.max).padStart(9)}   failures ${failures(r)}${cpu}`,
  );
  const bad = [...r.statuses].filter(([s]) => s !== 200);
  if (bad.length || r.noResponse) console.log(`      not 200: ${bad.map(([s, c]) => `${c} × ${s}`).join(", ") || "none"}; no response: ${r.noResponse}`);
  if (r.heyError) console.log(`      ${r.heyError}`);
}

// ---- the HTTP floor

/**
 * A bare node:http server, as many workers as the portal, that reads the same POST and answers with
 * as many bytes as a proxy: what HTTP alone costs hey and Node on this machine. With the signing
 * rate it bounds what any Node server issuing one signature per request can do here.
 */
const BARE_SERVER = `
import cluster from "node:cluster";
import http from "node:http";
const [workers, bytes] = process.argv.slice(1).map(Number);
if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  let listening = 0;
  cluster.on("listening", (_w, address) => { if (++listening === workers) console.log("port " + address.port); });
} else {
  const answer = Buffer.alloc(bytes, 65);
  const server = http.createServer((req, res) => {
    req.on("data", () => {});
    req.on("end", () => { res.writeHead(200, { "content-type": "application/x-pem-file", "cache-control": "no-store" }); res.end(answer); });
  });
  server.keepAliveTimeout = 65000;
  server.listen(Number(process.env.BARE_PORT), "127.0.0.1");
}
`;

async function httpFloor(bodyFile: string, answerBytes: number, n: number): Promise<HeyRun> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--input-type=module", "-e", BARE_SERVER, String(WORKERS), String(answerBytes)], { env: { ...env, BARE_PORT: String(port) }, stdio: ["ignore", "pipe", "inherit"] });
  running.add(child);
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => (String(d).includes("port") ? resolve() : undefined));
      child.once("exit", (code) => reject(new Error(`the bare HTTP server exited (${code})`)));
    });
    await heyAt(`http://127.0.0.1:${port}`, child.pid, "bench", bodyFile, 64, 2000);
    return await heyAt(`http://127.0.0.1:${port}`, child.pid, "bench", bodyFile, 64, n);
  } finally {
    child.kill("SIGTERM");
    running.delete(child);
  }
}

// ---- the portal

interface Session {
  portal: PortalServer;
  /** Stop the portal and remove its data, once (at the end of its phase, or by the cleanup after an error or a signal). */
  stop: () => Promise<void>;
  token: () => Promise<string>;
}

async function startSession(extraEnv: Record<string, string>): Promise<Session> {
  const portal = await startPortalServer({
    CERTBRIDGE_ACCESS_TOKEN_TTL: "1h",
    CERTBRIDGE_WORKERS: String(WORKERS),
    // One client from one IP at full speed: limits high enough never to refuse, still counted (their cost is measured).
    CERTBRIDGE_RATE_LIMITS: env.CERTBRIDGE_RATE_LIMITS ?? "getproxy.ip=100000000/1m,getproxy.client=100000000/1m",
    ...extraEnv,
  });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= portal.cleanup());
  // A fresh access token per phase: the memory run and the pool fill can outlast one (1 h).
  return { portal, stop, token: async () => (await redeem(await loginThroughPortal(portal.url))).access_token };
}

/** The cluster's workers: the server's node children (not tsx's esbuild service, also its child). */
function workerPids(portal: PortalServer): number[] {
  const pid = portal.process()?.pid;
  return (pid ? childrenOf(pid) : []).filter((c) => {
    try {
      return !fs.readFileSync(`/proc/${c}/cmdline`, "utf8").includes("esbuild");
    } catch {
      return false;
    }
  });
}

/** A free port with the next `count − 1` free too (the workers' metrics ports). */
async function freePorts(count: number): Promise<number> {
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const base = await freePort();
    let ok = base + count - 1 <= 65535;
    for (let p = base + 1; ok && p < base + count; p++) ok = await bindable(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

/** certbridge_key_pool_keys{state=…} per worker metrics port; a port that does not answer is left out. */
async function poolGauges(base: number): Promise<{ port: number; available: number; capacity: number }[]> {
  const out: { port: number; available: number; capacity: number }[] = [];
  for (let port = base; port < base + WORKERS; port++) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
      const gauge = (state: string) => {
        for (const m of text.matchAll(/^certbridge_key_pool_keys\{([^}]*)\}\s+(\S+)/gm)) if (m[1]!.includes(`state="${state}"`)) return Number(m[2]);
        return NaN;
      };
      out.push({ port, available: gauge("available"), capacity: gauge("capacity") });
    } catch {
      // this worker's port is not (yet) listening
    }
  }
  return out;
}

const gaugeText = (g: { port: number; available: number; capacity: number }[]) => g.map((x) => `${x.available}/${x.capacity} on :${x.port}`).join(", ") || "no metrics port answered";

// ---- the run

interface Results {
  sign: number;
  verify: number;
  keygen: number;
  nodeSign: number;
  nodeKeygen: number;
  csr: HeyRun[];
  /** hey against the bare server (64 concurrent) and the proxy's size. */
  floor?: { run: HeyRun; bytes: number };
  myproxy?: { level: number; certbridge: HeyRun; theirs: MyProxyLevel; version: string };
  memory?: { flat: boolean; text: string };
  fill?: { seconds: number; full: boolean; text: string };
  burst?: HeyRun;
  sustained?: HeyRun;
}

async function csrPhase(dir: string, results: Results, stack: (() => Promise<void> | void)[]) {
  const extra: Record<string, string> = { CERTBRIDGE_KEY_POOL_SIZE: "8" };
  if (PROF_DIR) {
    fs.mkdirSync(PROF_DIR, { recursive: true });
    // --cpu-prof is refused in NODE_OPTIONS: preload a module that profiles through node:inspector instead.
    const preload = path.join(PROF_DIR, "cpu-profile-preload.mjs");
    fs.writeFileSync(preload, PROFILE_PRELOAD);
    extra.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import ${pathToFileURL(preload).href}`.trim();
    extra.BENCH_CPU_PROF_DIR = PROF_DIR;
  }
  const { portal, token, stop } = await startSession(extra);
  stack.push(stop);
  const csr = opensslCsr(dir, "bench");
  const bodyFile = path.join(dir, "csr-body");
  fs.writeFileSync(bodyFile, new URLSearchParams({ certreq: csr.csrPem, proxylifetime: PROXY_LIFETIME }).toString());
  const access = await token();
  const probe = await hey(portal, access, bodyFile, 1, 1);
  if (failures(probe)) {
    printRun(probe, "probe");
    console.log(portal.output().slice(-3000).replace(/^/gm, "  | "));
    throw new Error("the first CSR-mode /getproxy request failed; not measuring");
  }
  const warm = await hey(portal, access, bodyFile, 16, WARMUP);
  console.log(`\nCSR mode: POST /getproxy (certreq RSA 2048, proxylifetime ${PROXY_LIFETIME}) driven by hey, keep-alive, ${WORKERS} workers; warm-up ${warm.requested} requests, ${failures(warm)} failures`);
  const profiled = PROF_DIR ? workerPids(portal) : [];
  for (const pid of profiled) process.kill(pid, "SIGUSR2");
  for (const [i, concurrency] of CSR_LEVELS.entries()) {
    const r = await hey(portal, access, bodyFile, concurrency, REQUESTS[i] ?? REQUESTS.at(-1)!);
    printRun(r);
    results.csr.push(r);
  }
  if (profiled.length) {
    const before = new Set(fs.readdirSync(PROF_DIR!));
    for (const pid of profiled) process.kill(pid, "SIGUSR2");
    for (let i = 0; i < 100 && fs.readdirSync(PROF_DIR!).filter((f) => f.endsWith(".cpuprofile") && !before.has(f)).length < profiled.length; i++) await sleep(100);
  }
  // HTTP alone, same request, an answer the size of this proxy, at 64 concurrent (the portal idles meanwhile).
  const sample = await fetch(`${portal.url}/getproxy`, { method: "POST", headers: { authorization: `Bearer ${access}`, "content-type": "application/x-www-form-urlencoded" }, body: fs.readFileSync(bodyFile) });
  const bytes = (await sample.arrayBuffer()).byteLength;
  const floor = await httpFloor(bodyFile, bytes, REQUESTS.at(-1)! * 2);
  results.floor = { run: floor, bytes };
  printRun(floor, `bare node:http, same POST, ${fmt(bytes)} bytes back, 64 concurrent`);
  const failed = results.csr.reduce((s, r) => s + failures(r), failures(warm));
  if (failed) console.log(`${failed} requests did not get 200; the server's log ends:\n${portal.output().slice(-4000).replace(/^/gm, "  | ")}`);

  // myproxy-server: as many proxies as one CSR level, at its concurrency
  const levelIndex = CSR_LEVELS.indexOf(MYPROXY_LEVEL);
  if (MYPROXY_LEVEL === 0) console.log("\nmyproxy-server: skipped (BENCH_MYPROXY_LEVEL=0)");
  else if (levelIndex < 0) console.log(`\nmyproxy-server: skipped (BENCH_MYPROXY_LEVEL=${MYPROXY_LEVEL} is none of the CSR levels ${CSR_LEVELS.join(", ")})`);
  else if (!installed("myproxy-server")) console.log("\nmyproxy-server: not installed (Debian package myproxy-server), skipped");
  else {
    const ours = results.csr[levelIndex]!;
    const version = myproxyServerVersion();
    console.log(`\nDebian myproxy-server ${version} on loopback: the same number of proxies as the ${MYPROXY_LEVEL}-concurrent CSR level, same CSR, a fresh TLS 1.2 connection each (myproxy-logon's GET), 20 to warm up`);
    const real = startRealMyProxyServer(fs.mkdtempSync(path.join(dir, "myproxy-")));
    stack.push(() => real.stop());
    const der = Buffer.from(pemBlocks(csr.csrPem)[0]!.der);
    const [theirs] = await measureMyProxy(real.port, real.request, der, real.certs, [{ concurrency: MYPROXY_LEVEL, n: ours.requested }]);
    real.stop();
    console.log(
      `  ${String(theirs!.concurrency).padStart(3)} concurrent  ${String(theirs!.n).padStart(6)} req  ${fmt(theirs!.rate).padStart(6)} /s   p50 ${ms(theirs!.p50).padStart(9)}  p99 ${ms(theirs!.p99).padStart(9)}   failures ${theirs!.failures}`,
    );
    results.myproxy = { level: MYPROXY_LEVEL, certbridge: ours, theirs: theirs!, version };
  }

  if (ISSUANCES > 0) await memoryRun(portal, token, bodyFile, results);
  await stop();
}

async function memoryRun(portal: PortalServer, token: () => Promise<string>, bodyFile: string, results: Results) {
  const step = Math.ceil(ISSUANCES / 4);
  const primary = portal.process()?.pid ?? NaN;
  const snapshot = () => {
    const workers = workerPids(portal);
    return { workers, rss: new Map([primary, ...workers].map((pid) => [pid, rssMb(pid)])) };
  };
  const line = (issued: string, s: ReturnType<typeof snapshot>, extra = "") => {
    const total = [...s.rss.values()].reduce((a, b) => a + b, 0);
    console.log(`  ${issued.padStart(9)}   primary ${fmt(s.rss.get(primary)!).padStart(4)} MB   ${s.workers.map((w) => `worker ${w} ${fmt(s.rss.get(w)!).padStart(4)} MB`).join("   ")}   total ${fmt(total)} MB${extra}`);
  };
  console.log(`\nmemory: resident size (VmRSS) of each server process, before and after every ${fmt(step)} CSR-mode issuances at 64 concurrent`);
  const snaps = [snapshot()];
  line("before", snaps[0]!);
  let failed = 0;
  let issued = 0;
  const counts = [0];
  for (let i = 1; i <= 4; i++) {
    const r = await hey(portal, await token(), bodyFile, 64, step);
    failed += failures(r);
    issued += r.requested;
    counts.push(issued);
    snaps.push(snapshot());
    line(fmt(issued), snaps[i]!, `   (${fmt(r.perSecond)} /s, p99 ${ms(r.p99)}, failures ${failures(r)})`);
    if (failures(r)) printRun(r);
  }
  // A leak grows with every issuance; warm-up (V8's heap settling at its working size, SQLite's page cache,
  // JIT code) levels off. So the verdict is on the second half (half → all issuances), and the growth from
  // the first quarter on is printed beside it.
  const growthBetween = (from: ReturnType<typeof snapshot>, to: ReturnType<typeof snapshot>) =>
    [primary, ...to.workers].map((pid) => {
      const a = from.rss.get(pid);
      const b = to.rss.get(pid)!;
      return { pid, a, b, pct: a === undefined ? NaN : (100 * (b - a)) / a };
    });
  const describe = (growth: ReturnType<typeof growthBetween>) =>
    growth
      .map((g) => `${g.pid === primary ? "primary" : `worker ${g.pid}`} ${g.a === undefined ? "(new process)" : `${g.b - g.a >= 0 ? "+" : ""}${fmt(g.b - g.a, 1)} MB (${g.pct >= 0 ? "+" : ""}${fmt(g.pct, 1)} %)`}`)
      .join(", ");
  const secondHalf = growthBetween(snaps[2]!, snaps[4]!);
  const flat = secondHalf.every((g) => Number.isFinite(g.pct) && Math.abs(g.pct) <= 5);
  console.log(`  ${fmt(counts[1]!)} → ${fmt(counts[4]!)} issuances: ${describe(growthBetween(snaps[1]!, snaps[4]!))}`);
  const text = `${fmt(counts[2]!)} → ${fmt(counts[4]!)} issuances: ${describe(secondHalf)}`;
  console.log(`  ${text}: ${flat ? "flat (every process within 5 % over the second half)" : "NOT flat (a process grew by more than 5 % over the second half, or was replaced)"}${failed ? `; ${failed} failures` : ""}`);
  results.memory = { flat, text: `RSS ${text}` };
}

async function serverKeyPhase(dir: string, results: Results, stack: (() => Promise<void> | void)[]) {
  const metricsBase = await freePorts(WORKERS);
  // The bench waits for the fill: the filler may use a whole core (the default is half of one).
  const { portal, token, stop } = await startSession({ CERTBRIDGE_KEY_POOL_SIZE: String(KEY_POOL_SIZE), CERTBRIDGE_KEY_POOL_CPU: "1", CERTBRIDGE_METRICS_PORT: String(metricsBase) });
  stack.push(stop);
  const started = performance.now();
  const csrBody = path.join(dir, "csr-body");
  const keyBody = path.join(dir, "server-key-body");
  fs.writeFileSync(keyBody, new URLSearchParams({ proxylifetime: PROXY_LIFETIME }).toString());
  let access = await token();
  console.log(`\nserver-key mode (no certreq: the server makes the proxy's key), CERTBRIDGE_KEY_POOL_SIZE=${KEY_POOL_SIZE}, ${WORKERS} workers, metrics on ports ${metricsBase}–${metricsBase + WORKERS - 1}`);
  const probe = await hey(portal, access, keyBody, 1, 1);
  if (failures(probe)) {
    printRun(probe, "probe");
    console.log(portal.output().slice(-3000).replace(/^/gm, "  | "));
    throw new Error("the first server-key /getproxy request failed; not measuring");
  }
  // Warm the workers up with CSR requests, which leave the pool alone.
  await hey(portal, access, csrBody, 16, WARMUP);

  let gauges = await poolGauges(metricsBase);
  const full = () => gauges.length > 0 && gauges.every((g) => g.capacity > 0 && g.available >= g.capacity);
  let lastNote = performance.now();
  while (!full() && performance.now() - started < POOL_FILL_SECONDS * 1000) {
    await sleep(1000);
    gauges = await poolGauges(metricsBase);
    if (performance.now() - lastNote > 30_000) {
      lastNote = performance.now();
      console.log(`  filling … ${fmt((performance.now() - started) / 1000)} s: ${gaugeText(gauges)} (available/capacity per worker port)`);
    }
  }
  const fillSeconds = (performance.now() - started) / 1000;
  if (full()) console.log(`  pool full ${fmt(fillSeconds, 1)} s after the portal answered: ${gaugeText(gauges)} (available/capacity per worker port)`);
  else
    console.log(
      `  the key pool did not fill within BENCH_POOL_FILL_SECONDS=${POOL_FILL_SECONDS} s: ${gaugeText(gauges)} (certbridge_key_pool_keys available/capacity per worker port); the burst runs on what is there`,
    );
  results.fill = { seconds: fillSeconds, full: full(), text: gaugeText(gauges) };

  access = await token();
  const burst = await hey(portal, access, keyBody, 16, BURST);
  printRun(burst, `burst, 16 concurrent`);
  results.burst = burst;
  gauges = await poolGauges(metricsBase);
  console.log(`  after the burst: ${gaugeText(gauges)}`);

  // Drain what is left (pools per worker keep about half of it) so that key generation limits the next run;
  // the largest count asks no more than is there, whether the workers share one pool or have one each.
  for (let i = 0; i < 40; i++) {
    const left = Math.max(0, ...gauges.map((g) => g.available));
    if (left <= 1) break;
    await hey(portal, access, keyBody, Math.min(16, left), left);
    gauges = await poolGauges(metricsBase);
  }
  const n = Math.max(64, Math.round((Number.isFinite(results.keygen) ? results.keygen : 10) * SUSTAINED_SECONDS));
  console.log(`  pool drained (${gaugeText(gauges)}); sustained run, ${n} requests ≈ ${SUSTAINED_SECONDS} s of OpenSSL's key generation:`);
  const sustained = await hey(portal, access, keyBody, 16, n);
  printRun(sustained, `sustained, 16 concurrent`);
  results.sustained = sustained;
  if (failures(burst) + failures(sustained)) console.log(`the server's log ends:\n${portal.output().slice(-4000).replace(/^/gm, "  | ")}`);
  await stop();
}

function printSummary(r: Results) {
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
  console.log("\nsummary (same machine, same run)");
  console.log(`  OpenSSL RSA-2048 signatures (${CORES} processes)            ${fmt(r.sign).padStart(8)} /s   (verifications ${fmt(r.verify)} /s)`);
  console.log(`  OpenSSL RSA-2048 key generation (${CORES} genpkey loops)       ${fmt(r.keygen, 1).padStart(8)} keys/s`);
  console.log(`  node:crypto RSA-2048 signatures, key generation         ${fmt(r.nodeSign).padStart(8)} /s, ${fmt(r.nodeKeygen, 1)} keys/s`);
  for (const c of r.csr)
    console.log(
      `  Certbridge CSR mode, ${String(c.concurrency).padStart(2)} concurrent                   ${fmt(c.perSecond).padStart(8)} /s   p50 ${ms(c.p50)}, p99 ${ms(c.p99)}   = ${pct(c.perSecond, r.sign)} of OpenSSL's signing rate (${pct(c.perSecond, r.nodeSign)} of node:crypto's)`,
    );
  if (r.floor) {
    // Per request a proxy needs one signature and one HTTP exchange: on these cores, the two alone allow this many.
    const bound = 1 / (1 / r.nodeSign + 1 / r.floor.run.perSecond);
    console.log(`  HTTP alone (bare node:http, hey, 64 concurrent)         ${fmt(r.floor.run.perSecond).padStart(8)} /s`);
    console.log(`  bound: one node:crypto signature + that HTTP exchange   ${fmt(bound).padStart(8)} /s   (Certbridge at 64 concurrent: ${pct(r.csr.at(-1)?.perSecond ?? NaN, bound)} of it)`);
  }
  const top = r.csr.at(-1);
  if (top && Number.isFinite(top.databaseCpuMsPerRequest)) {
    // On PostgreSQL the database's own processes share the cores: what one proxy costs all of them together bounds the rate.
    const perProxy = top.serverCpuMsPerRequest + top.databaseCpuMsPerRequest;
    console.log(
      `  CPU per proxy at ${top.concurrency} concurrent: portal ${top.serverCpuMsPerRequest.toFixed(2)} ms + PostgreSQL ${top.databaseCpuMsPerRequest.toFixed(2)} ms = ${perProxy.toFixed(2)} ms   → at most ${fmt((CORES * 1000) / perProxy).padStart(6)} /s on ${CORES} cores (before hey's share)`,
    );
  }
  if (r.myproxy) {
    const m = r.myproxy;
    console.log(`  myproxy-server ${m.version}, ${m.level} concurrent, ${fmt(m.theirs.n)} proxies          ${fmt(m.theirs.rate, 1).padStart(8)} /s   Certbridge / myproxy-server = ${(m.certbridge.perSecond / m.theirs.rate).toFixed(1)}×`);
  }
  if (r.fill) console.log(`  server-key pool fill (${KEY_POOL_SIZE} per pool)                ${r.fill.full ? `${fmt(r.fill.seconds, 1)} s` : `not full after ${fmt(r.fill.seconds)} s`}`);
  if (r.burst) console.log(`  server-key burst, 16 concurrent, ${fmt(r.burst.requested)} requests      ${fmt(r.burst.perSecond).padStart(8)} /s   p50 ${ms(r.burst.p50)}, p99 ${ms(r.burst.p99)}`);
  if (r.sustained)
    console.log(
      `  server-key sustained (pool empty), 16 concurrent    ${fmt(r.sustained.perSecond, 1).padStart(8)} /s   p99 ${ms(r.sustained.p99)}   = ${(r.sustained.perSecond / r.keygen).toFixed(2)}× OpenSSL genpkey's rate (${(r.sustained.perSecond / r.nodeKeygen).toFixed(2)}× node:crypto's)`,
    );
  if (r.memory) console.log(`  memory: ${r.memory.text}: ${r.memory.flat ? "flat" : "NOT flat"}`);
}

async function main() {
  if (!fs.existsSync(path.join(ROOT, ".next", "BUILD_ID"))) {
    console.error("the Next app is not built: run `NEXT_TELEMETRY_DISABLED=1 npx next build` first");
    process.exitCode = 1;
    return;
  }
  if (!installed("hey")) {
    console.error("the load generator hey is not installed (Debian package hey; scripts/setup.sh installs it)");
    process.exitCode = 1;
    return;
  }
  const cpus = os.cpus();
  console.log(`node ${process.version}, ${CORES} cores (${cpus[0]?.model ?? "?"}), database: ${TEST_DATABASE.startsWith("postgres") ? "PostgreSQL" : "SQLite"}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  console.log("hey, OpenSSL and the portal share this machine");

  const dir = tempDir("certbridge-bench-throughput-");
  const stack: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const child of running) child.kill("SIGTERM");
    while (stack.length) await stack.pop()!();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const results: Results = { sign: NaN, verify: NaN, keygen: NaN, nodeSign: NaN, nodeKeygen: NaN, csr: [] };
  // profiles of earlier runs in the same directory stay out of this run's summary
  const earlierProfiles = new Set(PROF_DIR && fs.existsSync(PROF_DIR) ? fs.readdirSync(PROF_DIR) : []);
  try {
    console.log(`\nOpenSSL ${run("openssl", ["version"]).stdout.trim()}, ${OPENSSL_SECONDS} s each, nothing else of the bench running:`);
    Object.assign(results, await opensslSignRate());
    console.log(`  openssl speed -multi ${CORES} rsa2048: ${fmt(results.sign)} signatures/s, ${fmt(results.verify)} verifications/s`);
    results.keygen = await opensslKeygenRate();
    console.log(`  openssl genpkey RSA 2048 in ${CORES} loops: ${fmt(results.keygen, 1)} keys/s`);
    const node = await nodeCryptoRates();
    results.nodeSign = node.sign;
    results.nodeKeygen = node.keygen;
    console.log(`  node:crypto (OpenSSL ${process.versions.openssl}, the server's), ${CORES} at once: ${fmt(node.sign)} signatures/s, ${fmt(node.keygen, 1)} keys/s`);

    await csrPhase(dir, results, stack);
    if (KEY_POOL_SIZE > 0) await serverKeyPhase(dir, results, stack);
    printSummary(results);
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (PROF_DIR) {
    const files = fs.readdirSync(PROF_DIR).filter((f) => f.endsWith(".cpuprofile") && !earlierProfiles.has(f));
    console.log(`\nCPU profile of the CSR portal's workers during the three CSR levels (${PROF_DIR}: ${files.join(", ") || "none written"}):`);
    if (files.length) for (const line of formatSummary(summarizeFiles(files.map((f) => path.join(PROF_DIR, f)), ROOT))) console.log(`  ${line}`);
  }
}

await main();
