/**
 * /getproxy served straight from Node's HTTP server: the hot path skips
 * Next.js (about 0.6 ms a request here). Still only an adapter: read the
 * query and a form body, hand them to Portal.getProxy, write the result.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server } from "node:net";
import type { Portal } from "./portal";
import { CertbridgeError, invalidConfig, invalidRequest } from "./errors";
import { errorResult, type HttpResult } from "./http";
import { readBoundedBody } from "./requestBody";

/**
 * Listen, turning the usual operator mistakes into one line that names the setting to change
 * (a port in use, or one that needs privileges) instead of an 'error' event's stack trace.
 */
export function listenOn(server: Server, port: number, host: string, setting: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(invalidConfig(`port ${port} on ${host} is already in use (another portal?): stop it, or set ${setting} to a free port`, e));
      else if (e.code === "EACCES") reject(invalidConfig(`not allowed to listen on port ${port} on ${host}: set ${setting} to a port above 1023`, e));
      else if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") reject(invalidConfig(`cannot listen on ${host}:${port} (${e.code}): check the listen host for ${setting}`, e));
      else reject(e);
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

const MAX_BODY = 64 * 1024;

/** Write a transport-neutral result to a Node response. */
export function writeResult(res: ServerResponse, r: HttpResult): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

/** The error edge for the server entry's own handlers: the same mapping the Next routes use. */
export function writeError(res: ServerResponse, e: unknown, as: "json" | "html" = "json"): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeResult(res, errorResult(e, as));
}

export async function serveGetProxy(portal: Portal, req: IncomingMessage, res: ServerResponse, clientIp: string | null): Promise<void> {
  if (req.method !== "GET" && req.method !== "POST") {
    res.setHeader("allow", "GET, POST");
    return writeError(res, new CertbridgeError("invalid_request", "use POST (or GET) for /getproxy", { status: 405 }));
  }
  const rawUrl = req.url ?? "/";
  // Most calls carry no query string: no URL to parse then.
  const params: [string, string][] = rawUrl.includes("?") ? [...new URL(rawUrl, "http://localhost").searchParams.entries()] : [];
  if (req.method === "POST") {
    const read = await readBoundedBody(req, MAX_BODY);
    if ("tooLarge" in read) return writeError(res, new CertbridgeError("invalid_request", `the request body exceeds ${MAX_BODY} bytes`, { status: 413 }));
    const body = read.body.toString("utf8");
    const type = String(req.headers["content-type"] ?? "");
    if (body.length > 0) {
      if (!type.startsWith("application/x-www-form-urlencoded")) {
        return writeError(res, invalidRequest("POST bodies must be application/x-www-form-urlencoded"));
      }
      params.push(...new URLSearchParams(body).entries());
    }
  }
  writeResult(res, await portal.getProxy({ authorization: req.headers.authorization ?? null, params, ip: clientIp }));
}
