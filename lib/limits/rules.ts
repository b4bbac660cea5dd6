/**
 * The limits strangers and careless clients meet, by name. Each is a count
 * per subject (an IP, a client id, a hashed device code, or "*" for all)
 * per fixed window; over it the caller gets 429 with Retry-After until the
 * window ends. Operators override any of them with CERTBRIDGE_RATE_LIMITS
 * ("token.ip_fail=10/5m,getproxy.ip=off"), tests make them small.
 */
import { parseDuration } from "../duration";

export interface LimitRule {
  /** Hits allowed per window; 0 turns the limit off. */
  limit: number;
  windowSeconds: number;
}

export const LIMIT_NAMES = [
  "token.ip",
  "token.client",
  "token.ip_fail",
  "token.client_fail",
  "getproxy.ip",
  "getproxy.client",
  "getproxy.ip_fail",
  "device_auth.ip",
  "device_auth.client",
  "user_code.ip_fail",
  "user_code.fail",
  "authorize.ip",
  "renewal.ip",
  "renewal.ip_fail",
  "device_poll",
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];
export type LimitRules = Record<LimitName, LimitRule>;

const r = (limit: number, windowSeconds: number): LimitRule => ({ limit, windowSeconds });

/** What a busy but honest deployment never reaches, and what stops a guessing attack early. */
export const DEFAULT_LIMITS: LimitRules = {
  // Token endpoint (/oidc/token): all requests per IP and per client; wrong client credentials lock out.
  // The request ceilings are for runaway clients, set well above a busy gateway (refreshing for many
  // people from one host); strangers meet the failure lockouts long before them.
  "token.ip": r(6000, 60),
  "token.client": r(12000, 60),
  "token.ip_fail": r(20, 300),
  "token.client_fail": r(30, 300),
  // /getproxy: per IP and per client; refused (wrong token, wrong secret) requests per IP lock out.
  // A gateway meets expired tokens now and then: the lockout is for floods of random tokens.
  // A DIRAC-style gateway asks for a proxy per job from one host: the ceilings allow ~1,000/s per IP
  // and ~2,000/s per gateway (the issuance rate the service is built for), not ten.
  "getproxy.ip": r(60000, 60),
  "getproxy.client": r(120000, 60),
  "getproxy.ip_fail": r(120, 300),
  // RFC 8628 device authorization: each request stores a device code.
  "device_auth.ip": r(30, 600),
  "device_auth.client": r(3000, 600),
  // RFC 8628 §5.1 user-code guessing: wrong codes per IP, and from everywhere together.
  "user_code.ip_fail": r(10, 900),
  "user_code.fail": r(500, 900),
  // /oidc/auth: each request stores an interaction.
  "authorize.ip": r(120, 60),
  "renewal.ip": r(120, 60),
  "renewal.ip_fail": r(30, 300),
  // RFC 8628 §3.5 polling pace per device code: 2 polls per 2 × interval (set from CERTBRIDGE_DEVICE_POLL_INTERVAL).
  "device_poll": r(2, 10),
};

/** Parse "name=count/window" items (comma- or space-separated; "name=off" turns one off) over the defaults. */
export function parseLimitRules(text: string | undefined, base: LimitRules = DEFAULT_LIMITS): LimitRules {
  const rules: LimitRules = { ...base };
  for (const item of (text ?? "").split(/[\s,]+/).filter(Boolean)) {
    const m = /^([a-z_.]+)=(?:(off)|(\d{1,9})\/([0-9a-z:]+))$/.exec(item);
    if (!m) throw new Error(`"${item}" is not name=count/window (e.g. token.ip_fail=10/5m) or name=off`);
    const name = m[1] as LimitName;
    if (!(LIMIT_NAMES as readonly string[]).includes(name)) throw new Error(`unknown limit "${m[1]}" (known: ${LIMIT_NAMES.join(", ")})`);
    rules[name] = m[2] ? r(0, 1) : r(Number(m[3]), parseDuration(m[4]!));
  }
  return rules;
}
