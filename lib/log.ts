/**
 * Structured request logs: one JSON line per HTTP request, written when the
 * response ends — request id (also sent back as X-Request-Id), method, route
 * template, status, outcome, duration, client IP. By construction it never
 * holds a token, secret, key or CSR: only the route template (lib/metrics.ts
 * routeOf: no query string, identifiers folded to ":id") is logged, never the
 * URL, headers or body.
 */
import { pooledRandomBytes } from "./random";
import type { IncomingMessage, ServerResponse } from "node:http";
import { metrics, routeOf } from "./metrics";

export type LogSink = (line: string) => void;
export const stdoutSink: LogSink = (line) => process.stdout.write(`${line}\n`);

export type Outcome = "ok" | "refused" | "limited" | "error" | "aborted";
export function outcomeOf(status: number, finished: boolean): Outcome {
  if (!finished) return "aborted";
  if (status === 429) return "limited";
  if (status >= 500) return "error";
  if (status >= 400) return "refused";
  return "ok";
}

export const REQUEST_ID_HEADER = "x-request-id";

/**
 * Start timing a request: gives it an id, and logs and measures it when the response is finished
 * (or the connection closes first). `sink` null: measure only.
 */
export function trackRequest(req: IncomingMessage, res: ServerResponse, ip: string, sink: LogSink | null): string {
  const started = process.hrtime.bigint();
  const id = pooledRandomBytes(9).toString("base64url");
  res.setHeader(REQUEST_ID_HEADER, id);
  const route = routeOf(req.url ?? "/");
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = res.statusCode;
    const outcome = outcomeOf(status, res.writableFinished);
    metrics.httpSeconds.observe({ route, method: req.method ?? "", status: `${Math.floor(status / 100)}xx` }, seconds);
    sink?.(
      JSON.stringify({
        time: new Date().toISOString(),
        level: outcome === "error" ? "error" : "info",
        msg: "request",
        request_id: id,
        method: req.method,
        route,
        status,
        outcome,
        duration_ms: Math.round(seconds * 1e4) / 10,
        ip,
      }),
    );
  };
  res.once("finish", end);
  res.once("close", end);
  return id;
}

/** An event outside a request (an SSH connection refused, a lockout): one JSON line with a message and plain fields. */
export function logEvent(sink: LogSink | null, msg: string, fields: Record<string, string | number | boolean | null> = {}): void {
  sink?.(JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...fields }));
}
