/**
 * Browser sessions of the account and admin consoles: a sealed cookie
 * (AES-256-GCM under the KEK, bound to its purpose) holding the person's id,
 * a per-session CSRF token and an expiry. Roles are not stored in it: whether
 * someone administers the portal is decided on every request from the
 * configuration and their latest claims, so removing an administrator takes
 * effect at once.
 */
import crypto from "node:crypto";
import { z } from "zod";
import { openSealedKey, sealKey, secretsEqual } from "../pki/seal";

export const SESSION_COOKIE = "certbridge_session";
const CONTEXT = "certbridge:console-session";

const sessionShape = z.object({ sid: z.string().min(16), identityId: z.string().min(1), csrf: z.string().min(16), exp: z.number().int() });
export type ConsoleSession = z.infer<typeof sessionShape>;

export function newSession(identityId: string, now: Date, ttlSeconds: number): ConsoleSession {
  return {
    sid: crypto.randomBytes(16).toString("base64url"),
    identityId,
    csrf: crypto.randomBytes(24).toString("base64url"),
    exp: Math.floor(now.getTime() / 1000) + ttlSeconds,
  };
}

export const sealSession = (kek: Buffer, s: ConsoleSession) => sealKey(kek, Buffer.from(JSON.stringify(s), "utf8"), CONTEXT);

/** The session in a cookie value, or null when absent, tampered with or expired. */
export function openSession(kek: Buffer, value: string | undefined, now: Date): ConsoleSession | null {
  if (!value) return null;
  try {
    const s = sessionShape.parse(JSON.parse(Buffer.from(openSealedKey(kek, value, CONTEXT)).toString("utf8")));
    return s.exp * 1000 > now.getTime() ? s : null;
  } catch {
    return null;
  }
}

/** One cookie's value out of a Cookie header. */
export function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(/;\s*/)) {
    if (part.startsWith(`${name}=`)) return decodeURIComponent(part.slice(name.length + 1));
  }
  return undefined;
}

/** Synchronizer-token check (OWASP CSRF cheat sheet), constant time. */
export function csrfMatches(session: ConsoleSession, presented: unknown): boolean {
  return typeof presented === "string" && presented.length > 0 && secretsEqual(session.csrf, presented);
}

/**
 * Administrators: an upstream `sub` listed in the configuration, or an
 * entitlement (eduperson_entitlement / entitlements) on the configured list.
 */
export function isAdministrator(policy: { adminSubs: readonly string[]; adminEntitlements: readonly string[] }, person: { sub: string; claims: Record<string, unknown> }): boolean {
  if (policy.adminSubs.includes(person.sub)) return true;
  if (!policy.adminEntitlements.length) return false;
  const held = [person.claims.eduperson_entitlement, person.claims.entitlements].flatMap((v) => (Array.isArray(v) ? v : typeof v === "string" ? [v] : []));
  return held.some((e) => typeof e === "string" && policy.adminEntitlements.includes(e));
}

/** Where a login may return to: a path on this portal, never another site ("//evil", "/\\evil"). */
export function safeReturnPath(candidate: string | null | undefined, fallback = "/account"): string {
  if (!candidate || !/^\/(?![/\\])[\x21-\x7e]*$/.test(candidate)) return fallback;
  return candidate;
}
