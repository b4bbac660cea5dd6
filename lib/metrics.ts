/**
 * Prometheus metrics (text exposition format 0.0.4), served on their own
 * listener (CERTBRIDGE_METRICS_PORT, loopback by default, off unless set),
 * as step-ca and Keycloak do: the public port never shows them.
 *
 * A small registry of counters, gauges and histograms with labels. Label
 * values are bounded by construction: channels and limits are names from
 * code, clients are registered clients (or "none"/"unknown"), routes are
 * path templates (routeOf), never raw paths or query strings, so no token
 * can become a label.
 *
 * The registry lives on globalThis (like lib/runtime.ts): Next bundles its own
 * copy of lib/, and both copies must count into the same numbers.
 */
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (names: readonly string[], values: Labels, extra = ""): string => {
  const parts = names.map((n) => `${n}="${escapeLabel(values[n] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
};
const keyOf = (names: readonly string[], values: Labels) => names.map((n) => values[n] ?? "").join("\u0000");
const valuesOf = (names: readonly string[], key: string): Labels => Object.fromEntries(key.split("\u0000").map((v, i) => [names[i]!, v]));
const num = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN");

interface Metric {
  name: string;
  render(): string;
}

/** More label combinations than this per metric are folded into one "other" series (a runaway label is a bug, not a crash). */
const MAX_SERIES = 2000;

export class Counter implements Metric {
  private readonly series = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[] = [],
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    let key = keyOf(this.labelNames, labels);
    if (!this.series.has(key) && this.series.size >= MAX_SERIES) key = keyOf(this.labelNames, Object.fromEntries(this.labelNames.map((n) => [n, "other"])));
    this.series.set(key, (this.series.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.series.get(keyOf(this.labelNames, labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.labelNames.length === 0 && this.series.size === 0) lines.push(`${this.name} 0`);
    for (const [key, v] of this.series) lines.push(`${this.name}${labelText(this.labelNames, valuesOf(this.labelNames, key))} ${num(v)}`);
    return lines.join("\n");
  }
}

/** A gauge read when scraped (the key pool, connection counts): nothing to keep in sync. */
export class Gauge implements Metric {
  private readonly sources = new Map<string, () => number | null>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[] = [],
  ) {}

  /** Report `read()` for these labels at each scrape (null: no sample). Replaces an earlier source for the same labels. */
  collect(read: () => number | null, labels: Labels = {}): void {
    this.sources.set(keyOf(this.labelNames, labels), read);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [key, read] of this.sources) {
      let v: number | null;
      try {
        v = read();
      } catch {
        v = null;
      }
      if (v !== null) lines.push(`${this.name}${labelText(this.labelNames, valuesOf(this.labelNames, key))} ${num(v)}`);
    }
    return lines.join("\n");
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    let key = keyOf(this.labelNames, labels);
    if (!this.series.has(key) && this.series.size >= MAX_SERIES) key = keyOf(this.labelNames, Object.fromEntries(this.labelNames.map((n) => [n, "other"])));
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) s.buckets[i]!++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels): number {
    return this.series.get(keyOf(this.labelNames, labels))?.count ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const labels = valuesOf(this.labelNames, key);
      this.bounds.forEach((b, i) => lines.push(`${this.name}_bucket${labelText(this.labelNames, labels, `le="${num(b)}"`)} ${s.buckets[i]}`));
      lines.push(`${this.name}_bucket${labelText(this.labelNames, labels, 'le="+Inf"')} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(this.labelNames, labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${labelText(this.labelNames, labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function createMetrics() {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const startedAt = Date.now() / 1000;
  const m = {
    issuance: new Counter("certbridge_proxy_issuance_total", "Proxy requests that reached the authority, by channel, client and outcome (issued, refused, error).", ["channel", "client", "outcome"]),
    issuanceSeconds: new Histogram("certbridge_proxy_issuance_duration_seconds", "Time to authorize-checked issuance: policy, signing and storing, by channel.", ["channel"], LATENCY_BUCKETS),
    tokenGrants: new Counter("certbridge_token_grants_total", "Token endpoint grants by grant type, client and outcome (issued, refused).", ["grant_type", "client", "outcome"]),
    refusals: new Counter("certbridge_refusals_total", "Requests refused before or by the authority, by channel and reason (an OAuth error code).", ["channel", "reason"]),
    httpSeconds: new Histogram("certbridge_http_request_duration_seconds", "HTTP request latency by route template, method and status class.", ["route", "method", "status"], LATENCY_BUCKETS),
    databaseErrors: new Counter("certbridge_database_errors_total", "Database operations that failed (not refusals): issuance stores, counters.", ["operation"]),
    signerErrors: new Counter("certbridge_signer_errors_total", "Signing operations that failed (CA or user key, HSM).", ["operation"]),
    rateLimited: new Counter("certbridge_rate_limited_total", "Requests refused by a rate limit or lockout, by limit name (lib/limits/rules.ts).", ["limit"]),
    limiterErrors: new Counter("certbridge_rate_limiter_errors_total", "Rate-limit counter updates that failed (the request was let through)."),
    sshConnectionsRefused: new Counter("certbridge_ssh_connections_refused_total", "SSH connections closed by a limit: per_ip, global, handshake_timeout, auth_attempts.", ["reason"]),
    keyPool: new Gauge("certbridge_key_pool_keys", "Pre-generated proxy keys ready (state=available) and the pool's capacity (state=capacity).", ["state"]),
    checkpointSeconds: new Histogram("certbridge_database_checkpoint_duration_seconds", "SQLite WAL checkpoints that copied pages, on the checkpoint thread (lib/db/walCheckpoints.ts).", [], LATENCY_BUCKETS),
    dbPool: new Gauge("certbridge_database_pool_connections", "PostgreSQL pool connections by state (total, idle, waiting).", ["state"]),
    sshConnections: new Gauge("certbridge_ssh_connections", "Open SSH connections."),
    eventLoopDelay: new Gauge("certbridge_event_loop_delay_seconds", "Event loop delay, 99th percentile since the last scrape."),
    residentMemory: new Gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
    startTime: new Gauge("process_start_time_seconds", "Start time of the process since the epoch in seconds."),
    render(): string {
      const all = Object.values(m).filter((x): x is Counter | Gauge | Histogram => typeof x === "object");
      return `${all.map((x) => x.render()).join("\n")}\n`;
    },
  };
  m.eventLoopDelay.collect(() => {
    const v = loopDelay.percentile(99) / 1e9;
    loopDelay.reset();
    return v;
  });
  m.residentMemory.collect(() => process.memoryUsage.rss());
  m.startTime.collect(() => startedAt);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
const KEY = Symbol.for("certbridge.metrics");
type Slot = { [KEY]?: Metrics };
export const metrics: Metrics = ((globalThis as Slot)[KEY] ??= createMetrics());

/** Prometheus' content type for the text format. */
export const EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A route template for labels and logs: the first path segment if it is one of the portal's,
 * else "other"; segments that look like identifiers become ":id"; at most three segments. The
 * query string (where access tokens travel) is never part of it.
 */
const KNOWN_ROOTS = new Set(["getproxy", "oidc", "api", "interaction", "account", "admin", "ca", "dev-idp", "device", ".well-known", "upstream", "voms", "_next", "login", "logout", "healthz", "readyz"]);
export function routeOf(url: string): string {
  const path = url.split("?")[0]!.split("#")[0]!;
  const segments = path.split("/").filter(Boolean);
  if (segments.length === 0) return "/";
  if (!KNOWN_ROOTS.has(segments[0]!)) return "other";
  if (segments[0] === "_next") return "/_next";
  const out = segments.slice(0, 3).map((s, i) => (i > 0 && (/\d/.test(s) && s.length >= 8 || s.length > 24 || !/^[A-Za-z][A-Za-z0-9._-]*$/.test(s)) ? ":id" : s));
  return `/${out.join("/")}${segments.length > 3 ? "/…" : ""}`;
}

/** The metrics listener: GET /metrics only. */
export function createMetricsServer(render: () => string = () => metrics.render()): http.Server {
  return http.createServer((req, res) => {
    if ((req.url ?? "").split("?")[0] !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    res.writeHead(200, { "content-type": EXPOSITION_TYPE, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : render());
  });
}
