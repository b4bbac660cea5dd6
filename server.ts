/**
 * The portal's server entry and composition root: configuration, database,
 * CA, key pool, OpenID provider, upstream relying party (or the embedded
 * development IdP) are built here once; Next.js serves the pages and route
 * handlers, oidc-provider the protocol endpoints, on one port.
 *
 *   npm start     (scripts/start.mjs builds the Next app once, then runs this file)
 */
import cluster from "node:cluster";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { loadConfig, type Config } from "./lib/config";
import { startCertbridge, type Certbridge } from "./lib/certbridge";
import { createProvider } from "./lib/oidc/provider";
import { signingJwk } from "./lib/oidc/signingKeys";
import { compatProfileLookup, ensureCliClientRow, registerClient, type ClientInput } from "./lib/oidc/clients";
import { isCompatPath, serveCompatRequest } from "./lib/oidc/compatProfile";
import { createDevIdp } from "./lib/devIdp";
import { Portal } from "./lib/portal";
import { publishPortal } from "./lib/runtime";
import { listenOn, serveGetProxy, writeError } from "./lib/nodeHttp";
import { asCertbridgeError, invalidRequest, operatorMessage } from "./lib/errors";
import { startSshServer, type SshService } from "./lib/ssh/server";
import { startMyProxyServer, type MyProxyService } from "./lib/myproxy/server";
import { myproxyToken } from "./lib/authority/provisioners/myproxyToken";
import { myproxyRenewer } from "./lib/authority/provisioners/myproxyRenewer";
import { FORM_FLASH_COOKIE, FORM_FLASH_HEADER } from "./lib/console/forms";
import { cookieValue } from "./lib/console/session";
import { startScheduledJobs } from "./lib/jobs";
import { databasePoolState } from "./lib/db";
import { Health } from "./lib/health";
import { serveHealth } from "./lib/nodeHealth";
import { installGracefulShutdown, trackRequests } from "./lib/shutdown";
import { closeAfterRefusedBody, hasDuplicateAuthorization, setSecurityHeaders } from "./lib/webHardening";
import { clientIpOf } from "./lib/limits/clientIp";
import { installOidcLimits } from "./lib/limits/oidcLimits";
import { trackRequest, stdoutSink } from "./lib/log";
import { createMetricsServer, metrics } from "./lib/metrics";
import { servingExecArgv } from "./lib/nodeFlags";

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const log = (m: string) => console.error(`certbridge: ${m}`);

/**
 * One-time work before serving (startCertbridge has already migrated the
 * database and opened or created the CA): the clients file and the OIDC
 * signing keys. With several workers the primary does it first, so workers
 * never race to create anything.
 */
async function bootstrap(config: Config, cb: Certbridge) {
  if (config.portal.clientsFile) {
    const clients = JSON.parse(fs.readFileSync(config.portal.clientsFile, "utf8")) as ClientInput[];
    for (const c of clients) {
      const { client, secret } = await registerClient(cb.db, config.kek, c, { actor: "config" }, { upsert: true });
      // A generated secret is never logged (logs are kept and shipped): the operator gets one, shown once, from the CLI.
      log(`client ${client.id} (${client.name}) registered${secret && !c.secret ? `; it has a generated secret, not shown: run \`certbridge client secret ${client.id}\` to set a new one and see it once` : ""}`);
    }
  }
  await ensureCliClientRow(cb.db);
  await signingJwk(cb.db, config.kek);
  if (config.devIdp) await signingJwk(cb.db, config.kek, "dev-idp");
}

/** Serve on the port. `primary`: also do the one-time work (a single process, or the cluster's primary did it). */
async function serve(config: Config, announce: boolean, primary: boolean) {
  // Only the process that bootstraps may create the CA and the AA keys.
  // The key pool is filled by the leader only (below), once leadership is known.
  const cb = await startCertbridge(config, { keyPool: false, log, createCa: primary });
  if (primary) await bootstrap(config, cb);
  const provider = await createProvider(config, cb.db);
  const devIdp = config.devIdp
    ? await createDevIdp({ issuer: config.devIdp.issuer, usersFile: config.devIdp.usersFile, redirectUri: `${config.publicUrl}/interaction/callback`, cookieKeys: config.portal.cookieKeys, db: cb.db, kek: config.kek })
    : null;
  if (devIdp && announce) log(`DEVELOPMENT IdP at ${config.devIdp!.issuer} with ${devIdp.users.length} test users: never use it in production`);
  const upstream = devIdp
    ? { issuer: config.devIdp!.issuer, clientId: devIdp.clientId, clientSecret: devIdp.clientSecret, scopes: "openid profile email eduperson_entitlement eduperson_unique_id voperson_id" }
    : config.upstream!;
  const portal = new Portal(cb, provider, upstream, devIdp !== null);
  publishPortal(portal);
  const health = new Health({ cb, upstream: () => (devIdp ? null : portal.health().upstream) });

  const app = next({ dev: false, dir: ROOT, hostname: config.portal.listenHost, port: config.portal.port });
  await app.prepare();
  const nextHandler = app.getRequestHandler();
  // Before callback(): Koa composes the middleware when the callback is made.
  installOidcLimits(provider, portal.limiter, { devicePollIntervalSeconds: config.operations.devicePollIntervalSeconds });
  const oidc = provider.callback();
  const devOidc = devIdp?.provider.callback();
  const compatProfileOf = compatProfileLookup(cb.db);

  // HSTS only where the public URL is https (RFC 6797 §7.2: not over plain HTTP).
  const httpsPublic = config.publicUrl.startsWith("https:");
  const requestLog = config.operations.requestLog === "json" ? stdoutSink : null;
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    // The client's IP for the audit trail, the limits and the device page: X-Forwarded-For only
    // through trusted proxies, right-most untrusted hop (lib/limits/clientIp.ts). Always overwritten.
    const ip = clientIpOf(req.socket.remoteAddress, req.headers["x-forwarded-for"], config.operations.trustedProxies);
    req.headers["x-certbridge-client-ip"] = ip;
    trackRequest(req, res, ip, requestLog);
    // Issue 12 (lib/webHardening.ts): framing, CSP and HSTS on every response; 413 ends the connection; one Authorization header.
    const nextRoute = !(url.startsWith("/oidc/") || url.startsWith("/.well-known/") || url === "/getproxy" || url.startsWith("/getproxy?") || url === "/dev-idp" || url.startsWith("/dev-idp/") || url.startsWith("/dev-idp?"));
    setSecurityHeaders(res, { next: nextRoute, https: httpsPublic });
    closeAfterRefusedBody(req, res);
    if (hasDuplicateAuthorization(req)) return writeError(res, invalidRequest("more than one Authorization header"), "json");
    // Liveness and readiness (lib/health.ts); /api/health is readiness with its earlier fields.
    if (serveHealth(health, portal, req, res)) return;
    // Token, revocation and authorization requests of MasterPortal/OA4MP clients are normalized first (lib/oidc/compatProfile.ts).
    if (isCompatPath(url.split("?")[0]!)) {
      return void serveCompatRequest(req, res, { profileOf: compatProfileOf, oidc, notFound: (r, s) => nextHandler(r, s) }).catch((e: unknown) => writeError(res, e, "json"));
    }
    if (url.startsWith("/oidc/") || url.startsWith("/.well-known/openid-configuration")) return oidc(req, res);
    if (url === "/getproxy" || url.startsWith("/getproxy?")) {
      return void serveGetProxy(portal, req, res, String(req.headers["x-certbridge-client-ip"]) || null).catch((e: unknown) => writeError(res, e, "json"));
    }
    if (devOidc && (url === "/dev-idp" || url.startsWith("/dev-idp/") || url.startsWith("/dev-idp?"))) {
      // oidc-provider derives its mount path from originalUrl vs url.
      (req as http.IncomingMessage & { originalUrl?: string }).originalUrl = url;
      req.url = url.slice("/dev-idp".length) || "/";
      return devOidc(req, res);
    }
    handOverFormFlash(req, res, portal.secureCookies);
    nextHandler(req, res).catch((e: unknown) => writeError(res, e, "html"));
  });
  server.keepAliveTimeout = 65_000;
  const requests = trackRequests(server);
  await listenOn(server, config.portal.port, config.portal.listenHost, "CERTBRIDGE_PORT");
  if (announce) {
    log(`portal at ${config.publicUrl} (listening on ${config.portal.listenHost}:${config.portal.port}, ${config.portal.workers} worker${config.portal.workers > 1 ? "s" : ""}), database ${config.databaseUrl.startsWith("file:") ? "SQLite" : "PostgreSQL"}`);
  }

  // One SSH listener per process (the cluster's primary serves it for its workers); every instance of a
  // deployment may listen, with the one host key kept in the database (lib/ssh/server.ts).
  const ssh = primary && config.ssh ? await startSshServer(cb, log) : null;
  const myproxy = primary && config.myproxy ? await startMyProxy(cb, log) : null;

  // The scheduled jobs (CRL re-signing, purges) run in one process of the deployment: the leader (lib/jobs.ts).
  const jobs = startScheduledJobs(cb, log);
  // So does filling the server-key pool: one filler per deployment on PostgreSQL (on SQLite every worker, each with its part of the CPU share).
  cb.keyPool.start(() => jobs.isLeader());
  const metricsServer = await startMetrics(config, cb, primary);
  // SIGTERM/SIGINT: drain, then close the listeners and the database, exit 0 (lib/shutdown.ts).
  installGracefulShutdown(
    {
      server,
      graceMs: config.portal.shutdownGraceSeconds * 1000,
      onDrain: () => health.drain(),
      listeners: [async () => ssh?.close(), async () => myproxy?.close()],
      close: async () => {
        metricsServer?.close();
        await jobs.stop();
        health.stop();
        await cb.close();
      },
      log,
      repeatForcesExit: !cluster.isWorker,
    },
    requests,
  );
}

/**
 * The Prometheus listener (CERTBRIDGE_METRICS_PORT; off unless set, loopback unless told). With
 * several workers each has its own numbers: worker n listens on port + n − 1, the primary (SSH,
 * MyProxy) on port + workers; scrape each.
 */
async function startMetrics(config: Config, cb: Certbridge, primary: boolean, slot = cluster.worker?.id ?? 1): Promise<http.Server | null> {
  const settings = config.operations.metrics;
  if (!settings) return null;
  metrics.keyPool.collect(() => cb.keyPool.stats().size, { state: "available" });
  metrics.keyPool.collect(() => cb.keyPool.stats().capacity, { state: "capacity" });
  // PostgreSQL only: a pool stuck at its maximum with requests waiting is the first sign of a database in trouble.
  for (const state of ["total", "idle", "waiting"] as const) metrics.dbPool.collect(() => databasePoolState(cb.db)?.[state] ?? null, { state });
  const port = settings.port === 0 || primary ? settings.port : settings.port + slot - 1;
  const server = createMetricsServer();
  await listenOn(server, port, settings.listenHost, "CERTBRIDGE_METRICS_PORT");
  const actual = (server.address() as { port: number }).port;
  log(`metrics at http://${settings.listenHost}:${actual}/metrics`);
  return server;
}

/** One MyProxy listener per deployment (like SSH); its token channel checks access tokens, so it needs the OpenID provider's store. */
async function startMyProxy(cb: Certbridge, log: (m: string) => void): Promise<MyProxyService> {
  const provider = await createProvider(cb.config, cb.db);
  return startMyProxyServer(
    cb,
    {
      token: cb.authority.register(myproxyToken({ db: cb.db, provider, clock: cb.clock })),
      renewal: cb.authority.register(myproxyRenewer({ db: cb.db, ca: cb.ca, clock: cb.clock, accountUrl: `${cb.config.publicUrl}/account#myproxy-renewal` })),
    },
    log,
  );
}

async function main() {
  const config = loadConfig(undefined, cluster.isPrimary ? undefined : () => {});
  if (config.portal.workers === 1) return serve(config, true, true);
  if (!cluster.isPrimary) return serve(config, cluster.worker?.id === 1, false);
  const cb = await startCertbridge(config, { log });
  // With workers, the primary serves SSH (one listener, and it outlives worker restarts).
  let ssh: SshService | null = null;
  let myproxy: MyProxyService | null = null;
  try {
    await bootstrap(config, cb);
    if (config.ssh) ssh = await startSshServer(cb, log);
    if (config.myproxy) myproxy = await startMyProxy(cb, log);
    // The primary's own numbers (SSH, MyProxy issuance) on port + workers.
    if (ssh || myproxy) await startMetrics(config, cb, false, config.portal.workers + 1);
  } finally {
    if (!ssh && !myproxy) await cb.close();
  }
  // Several event loops share the port: the main thread, not the CPU, limits one process.
  let stopping = false;
  const listening = new Set<number>();
  cluster.setupPrimary({ execArgv: servingExecArgv(process.execArgv, undefined, { heapMb: config.portal.workerHeapMb }) });
  for (let i = 0; i < config.portal.workers; i++) cluster.fork();
  cluster.on("listening", (worker) => listening.add(worker.id));
  // Every worker meets the same start-up problem: say it once.
  let reported = false;
  cluster.on("message", (_worker, msg: { startupError?: string }) => {
    if (typeof msg?.startupError !== "string" || reported) return;
    reported = true;
    console.error(`certbridge: ${msg.startupError}`);
  });
  cluster.on("exit", (worker, code) => {
    if (stopping) return;
    if (!listening.has(worker.id)) {
      // It failed before serving (a port in use, a bad setting): another would fail the same way. It said why.
      stop(1);
      return;
    }
    log(`worker ${worker.process.pid} exited (${code}); starting another`);
    cluster.fork();
  });
  const stop = (status = 0) => {
    stopping = true;
    void Promise.all([ssh?.close(), myproxy?.close()]).then(() => cb.close());
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
    // The workers drain for up to the grace period (lib/shutdown.ts); then they are gone either way.
    setTimeout(() => process.exit(status), (config.portal.shutdownGraceSeconds + 5) * 1000).unref();
    cluster.on("exit", () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(status);
    });
  };
  process.once("SIGTERM", () => stop());
  process.once("SIGINT", () => stop());
}

main().catch((e: unknown) => {
  const err = asCertbridgeError(e);
  const message = err.code === "server_error" ? String((e as Error).stack) : operatorMessage(e);
  if (cluster.isWorker && process.send) process.send({ startupError: message }, () => process.exit(1));
  else {
    console.error(`certbridge: ${message}`);
    process.exit(1);
  }
});

/**
 * A refused console form's one-shot cookie (lib/console/forms.ts): the next page view gets its
 * value as a request header, and the same response deletes the cookie, so a reload shows the
 * clean form. A header sent by the client itself is dropped (the value is sealed anyway).
 */
function handOverFormFlash(req: http.IncomingMessage, res: http.ServerResponse, secure: boolean): void {
  delete req.headers[FORM_FLASH_HEADER];
  if (req.method !== "GET") return;
  const value = cookieValue(String(req.headers.cookie ?? ""), FORM_FLASH_COOKIE);
  if (!value) return;
  req.headers[FORM_FLASH_HEADER] = value;
  res.setHeader("set-cookie", `${FORM_FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure ? "; Secure" : ""}`);
}
