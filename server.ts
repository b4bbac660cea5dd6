/**
 * The portal's server entry and composition root: configuration, database,
 * CA, key pool, OpenID provider, upstream relying party (or the embedded
 * development IdP) are built here once; Next.js serves the pages and route
 * handlers, oidc-provider the protocol endpoints, on one port.
 *
 *   npm start            (NODE_ENV=production after `npm run build`)
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { loadConfig } from "./lib/config";
import { startCertbridge } from "./lib/certbridge";
import { createProvider } from "./lib/oidc/provider";
import { registerClient, type ClientInput } from "./lib/oidc/clients";
import { purgeExpiredOidcPayloads } from "./lib/oidc/adapter";
import { createDevIdp } from "./lib/devIdp";
import { Portal } from "./lib/portal";
import { publishPortal } from "./lib/runtime";
import { asCertbridgeError } from "./lib/errors";

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const log = (m: string) => console.error(`certbridge: ${m}`);

async function main() {
  const config = loadConfig();
  const cb = await startCertbridge(config, { keyPool: true, log });

  if (config.portal.clientsFile) {
    const clients = JSON.parse(fs.readFileSync(config.portal.clientsFile, "utf8")) as ClientInput[];
    for (const c of clients) {
      const { client, secret } = await registerClient(cb.db, config.kek, c, { actor: "config" }, { upsert: true });
      log(`client ${client.id} (${client.name}) registered${secret ? `; generated secret: ${secret}` : ""}`);
    }
  }

  const provider = await createProvider(config, cb.db);
  const devIdp = config.devIdp
    ? createDevIdp({ issuer: config.devIdp.issuer, usersFile: config.devIdp.usersFile, redirectUri: `${config.publicUrl}/interaction/callback`, cookieKeys: config.portal.cookieKeys })
    : null;
  if (devIdp) log(`DEVELOPMENT IdP at ${config.devIdp!.issuer} with ${devIdp.users.length} test users: never use it in production`);
  const upstream = devIdp
    ? { issuer: config.devIdp!.issuer, clientId: devIdp.clientId, clientSecret: devIdp.clientSecret, scopes: "openid profile email eduperson_entitlement eduperson_unique_id voperson_id" }
    : config.upstream!;
  publishPortal(new Portal(cb, provider, upstream, devIdp !== null));

  const app = next({ dev: false, dir: ROOT, hostname: config.portal.listenHost, port: config.portal.port });
  await app.prepare();
  const nextHandler = app.getRequestHandler();
  const oidc = provider.callback();
  const devOidc = devIdp?.provider.callback();

  const behindProxy = config.publicUrl.startsWith("https:");
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    // The audit trail's IP: the socket's, or behind a TLS proxy the client's as the proxy reports it.
    const forwarded = behindProxy ? String(req.headers["x-forwarded-for"] ?? "").split(",")[0]?.trim() : "";
    req.headers["x-certbridge-client-ip"] = forwarded || req.socket.remoteAddress || "";
    if (url.startsWith("/oidc/") || url.startsWith("/.well-known/openid-configuration")) return oidc(req, res);
    if (devOidc && (url === "/dev-idp" || url.startsWith("/dev-idp/") || url.startsWith("/dev-idp?"))) {
      // oidc-provider derives its mount path from originalUrl vs url.
      (req as http.IncomingMessage & { originalUrl?: string }).originalUrl = url;
      req.url = url.slice("/dev-idp".length) || "/";
      return devOidc(req, res);
    }
    nextHandler(req, res).catch((e: unknown) => {
      log(`request failed: ${asCertbridgeError(e).message}`);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(config.portal.port, config.portal.listenHost, resolve));
  log(`portal at ${config.publicUrl} (listening on ${config.portal.listenHost}:${config.portal.port}), database ${config.databaseUrl.startsWith("file:") ? "SQLite" : "PostgreSQL"}`);

  const purge = setInterval(() => void purgeExpiredOidcPayloads(cb.db).catch(() => {}), 10 * 60_000);
  purge.unref();
  const stop = async () => {
    clearInterval(purge);
    server.close();
    server.closeAllConnections();
    await cb.close();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((e: unknown) => {
  const err = asCertbridgeError(e);
  console.error(`certbridge: ${err.code === "server_error" ? (e as Error).stack : err.message}`);
  process.exit(1);
});
