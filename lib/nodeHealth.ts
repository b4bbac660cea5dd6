/**
 * The health endpoints, served by the server entry itself (like /getproxy): they must answer
 * while Next.js or the database is in trouble. `GET /healthz` is liveness, `GET /readyz`
 * readiness; `GET /api/health` is readiness too, with the fields it always had (lib/health.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Health } from "./health";
import type { Portal } from "./portal";
import { RETRY_AFTER_SECONDS } from "./errors";

const PATHS = new Set(["/healthz", "/readyz", "/api/health"]);

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...extra });
  res.end(JSON.stringify(body));
}

/** Answer a health request; false when `req` is not one. */
export function serveHealth(health: Health, portal: Portal, req: IncomingMessage, res: ServerResponse): boolean {
  const pathname = (req.url ?? "/").split("?")[0]!;
  if (!PATHS.has(pathname)) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, { error: "invalid_request", error_description: `use GET for ${pathname}` }, { allow: "GET, HEAD" });
    return true;
  }
  if (pathname === "/healthz") {
    send(res, 200, health.liveness());
    return true;
  }
  void health.readiness().then(
    (ready) => {
      const legacy = pathname === "/api/health" ? { ...portal.health(), ok: ready.status === "pass" } : {};
      const status = ready.status === "pass" ? 200 : 503;
      send(res, status, { ...legacy, ...ready }, status === 503 ? { "retry-after": String(RETRY_AFTER_SECONDS) } : {});
    },
    (e: unknown) => send(res, 503, { status: "fail", error: String(e) }, { "retry-after": String(RETRY_AFTER_SECONDS) }),
  );
  return true;
}
