/**
 * Command lines of certbridge-proxy-init and certbridge-proxy-info, in the
 * spirit of voms-proxy-init / voms-proxy-info. Pure: argv and the
 * environment in, validated options out, or a UsageError (exit status 2)
 * naming the one thing that is wrong.
 */
import path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { z } from "zod";
import { parseDuration } from "../lib/duration";
import { parseVomsRequest } from "../lib/voms/membership";
import { CLI_CLIENT_ID } from "../lib/oidc/cliClient";
import type { ProxyToolEnvironment } from "./env";

export class UsageError extends Error {}

export const PROXY_INIT_USAGE = `usage: certbridge-proxy-init [options]            log in in a browser, get a proxy
       certbridge-proxy-init --renew --refresh-token-file F [options]   keep a proxy fresh

  --portal URL               the Certbridge portal (default: $CERTBRIDGE_PORTAL)
  --voms VO[:FQAN]           VOMS attributes (repeatable): biomed (your groups), or
                             biomed:/biomed/Role=pilot (that role, then your groups)
  --valid HH:MM              proxy lifetime (default: the portal's, usually 12:00)
  --out FILE                 proxy file (default: $X509_USER_PROXY or /tmp/x509up_u<uid>)
  --qr                       also show the login URL as a QR code
  --quiet                    print only the login code and URL
  --client-id ID             OAuth client (default: ${CLI_CLIENT_ID})
  --refresh-token-file F     at login: keep a refresh token in F (mode 0600) for --renew
renewal:
  --renew                    renew the proxy in --out with the refresh token in F
  --once                     renew once if due, then exit (for cron); without it, run until stopped
  --renew-fraction X         renew when less than X of the proxy's lifetime is left (default 0.25)
  --warn-before DURATION     warn this long before renewal stops being possible (default 72h)
  --webhook URL              POST a JSON warning there as well
  --max-backoff DURATION     longest wait between retries while the portal is unreachable (default 10m)

exit status: 0 ok, 1 error, 2 usage, 3 (--renew --once) renewed or fresh, but renewal ends within --warn-before`;

export const PROXY_INFO_USAGE = `usage: certbridge-proxy-info [--file FILE] [--exists] [--valid HH:MM] [--timeleft | --fqan]

  --file FILE     proxy file (default: $X509_USER_PROXY or /tmp/x509up_u<uid>)
  --exists        print nothing; exit 0 if the proxy exists and has not expired, 1 otherwise
  --valid HH:MM   print nothing; exit 0 if the proxy is valid for at least HH:MM, 1 otherwise
  --timeleft      print the seconds left (0 when expired)
  --fqan          print the VOMS FQANs, one a line, as the ACs carry them (exit 1 if there are none)`;

/** voms-proxy-init's -valid: hours and minutes, hours may exceed 24 (e.g. 168:00 for a week). */
export function parseValidity(text: string, option = "--valid"): number {
  const m = /^(\d{1,4}):([0-5]\d)$/.exec(text.trim());
  if (!m) throw new UsageError(`${option} must be HH:MM, e.g. 12:00 (got "${text}")`);
  const seconds = Number(m[1]) * 3600 + Number(m[2]) * 60;
  if (seconds <= 0) throw new UsageError(`${option} must be longer than 00:00`);
  return seconds;
}

/** A --voms value, checked as voms-proxy-init would: "vo" or "vo:/vo[/group][/Role=r]". */
export function parseVomsOption(text: string): string {
  try {
    parseVomsRequest(text.trim());
  } catch (e) {
    throw new UsageError(`--voms ${text}: ${(e as Error).message}`);
  }
  return text.trim();
}

const portalUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).transform((u) => u.replace(/\/+$/, ""));
const fraction = z.coerce.number({ error: "must be a number" }).gt(0, "must be above 0").lt(1, "must be below 1");
const clientId = z.string().regex(/^[A-Za-z0-9._-]{3,64}$/, "must be 3-64 of A-Z a-z 0-9 . _ -");

function check<T>(schema: z.ZodType<T>, value: unknown, option: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(`${option}: ${r.error.issues[0]?.message ?? "invalid value"}`);
  return r.data;
}

function duration(text: string, option: string): number {
  try {
    return parseDuration(text);
  } catch (e) {
    throw new UsageError(`${option}: ${(e as Error).message}`);
  }
}

function parse(argv: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    // node:util's messages are clear but long; keep their first sentence.
    throw new UsageError((e as Error).message.split(". ")[0]!.replace(/\.$/, ""));
  }
}

export interface ProxyInitOptions {
  mode: "login" | "renew";
  /** From --portal or CERTBRIDGE_PORTAL; in renew mode the refresh-token file may supply it. */
  portal: string | undefined;
  clientId: string;
  voms: string[];
  lifetimeSeconds: number | undefined;
  out: string;
  quiet: boolean;
  qr: boolean;
  refreshTokenFile: string | undefined;
  once: boolean;
  renewFraction: number;
  warnBeforeSeconds: number;
  webhook: string | undefined;
  maxBackoffSeconds: number;
}

export function parseProxyInitArgs(argv: string[], env: ProxyToolEnvironment): ProxyInitOptions | "help" {
  const v = parse(argv, {
    portal: { type: "string" },
    voms: { type: "string", multiple: true },
    valid: { type: "string" },
    out: { type: "string" },
    qr: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    "client-id": { type: "string" },
    "refresh-token-file": { type: "string" },
    renew: { type: "boolean" },
    once: { type: "boolean" },
    "renew-fraction": { type: "string" },
    "warn-before": { type: "string" },
    webhook: { type: "string" },
    "max-backoff": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (v.help) return "help";
  const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
  const mode = v.renew ? "renew" : "login";
  const refreshTokenFile = str("refresh-token-file");
  if (mode === "renew" && !refreshTokenFile) throw new UsageError("--renew needs --refresh-token-file F (made at login with the same option)");
  for (const k of ["once", "renew-fraction", "warn-before", "webhook", "max-backoff"]) {
    if (mode === "login" && v[k] !== undefined) throw new UsageError(`--${k} only applies with --renew`);
  }
  if (mode === "renew" && v.qr) throw new UsageError("--qr only applies to a browser login, not to --renew");
  const portalText = str("portal") ?? env.portal;
  const portal = portalText === undefined ? undefined : check(portalUrl, portalText, str("portal") ? "--portal" : "CERTBRIDGE_PORTAL");
  if (mode === "login" && !portal) throw new UsageError("no portal: give --portal URL or set CERTBRIDGE_PORTAL");
  const out = str("out") ?? env.x509UserProxy ?? env.defaultProxyFile;
  if (out.length === 0 || out.endsWith("/")) throw new UsageError("--out must name a file");
  return {
    mode,
    portal,
    clientId: check(clientId, str("client-id") ?? CLI_CLIENT_ID, "--client-id"),
    voms: (Array.isArray(v.voms) ? v.voms : []).map(parseVomsOption),
    lifetimeSeconds: str("valid") === undefined ? undefined : parseValidity(str("valid")!),
    out: path.resolve(out),
    quiet: v.quiet === true,
    qr: v.qr === true,
    refreshTokenFile: refreshTokenFile === undefined ? undefined : path.resolve(refreshTokenFile),
    once: v.once === true,
    renewFraction: str("renew-fraction") === undefined ? 0.25 : check(fraction, str("renew-fraction"), "--renew-fraction"),
    warnBeforeSeconds: duration(str("warn-before") ?? "72h", "--warn-before"),
    webhook: str("webhook") === undefined ? undefined : check(z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }), str("webhook"), "--webhook"),
    maxBackoffSeconds: duration(str("max-backoff") ?? "10m", "--max-backoff"),
  };
}

export interface ProxyInfoOptions {
  file: string;
  exists: boolean;
  validSeconds: number | undefined;
  timeleft: boolean;
  fqan: boolean;
}

export function parseProxyInfoArgs(argv: string[], env: ProxyToolEnvironment): ProxyInfoOptions | "help" {
  const v = parse(argv, {
    file: { type: "string", short: "f" },
    exists: { type: "boolean", short: "e" },
    valid: { type: "string" },
    timeleft: { type: "boolean" },
    fqan: { type: "boolean" },
    all: { type: "boolean" }, // voms-proxy-info's -all: everything is shown anyway
    help: { type: "boolean", short: "h" },
  });
  if (v.help) return "help";
  const file = typeof v.file === "string" ? v.file : (env.x509UserProxy ?? env.defaultProxyFile);
  if (file.length === 0) throw new UsageError("--file must name a file");
  for (const k of ["timeleft", "fqan"]) {
    if (v[k] && (v.exists || v.valid !== undefined)) throw new UsageError(`--${k} cannot be combined with --exists or --valid`);
  }
  if (v.timeleft && v.fqan) throw new UsageError("--timeleft cannot be combined with --fqan");
  return {
    file: path.resolve(file),
    exists: v.exists === true,
    validSeconds: typeof v.valid === "string" ? parseValidity(v.valid) : undefined,
    timeleft: v.timeleft === true,
    fqan: v.fqan === true,
  };
}
