/**
 * The one gate in front of every console page, download and form post: a live session; for a
 * form post (a state change) the session's CSRF token and a same-site Origin; and the role,
 * decided on every request from configuration, never stored in the session. Refusals of the
 * admin role are audited for reads and writes alike, so "who tried to look" has an answer too.
 */
import { CertbridgeError, accessDenied } from "../errors";
import { findIdentityClaims, isConsoleSessionRevoked, recordAudit, revokeConsoleSession, type Db } from "../db";
import type { Config } from "../config";
import type { Clock } from "../clock";
import { csrfMatches, isAdministrator, newSession, openSession, sealSession, cookieValue, SESSION_COOKIE, type ConsoleSession } from "./session";
import { displayText } from "../displayText";

export interface Viewer {
  session: ConsoleSession;
  identity: { id: string; displayName: string; subject: string; email: string | null; issuer: string; sub: string; organisation: string; createdAt: Date; lastSeenAt: Date };
  claims: Record<string, unknown>;
  admin: boolean;
  csrf: string;
}

/** A request at the gate. A form post carries `form` (checked for the CSRF token) and `origin`. */
export interface GateRequest {
  cookie: string;
  ip: string | null;
  origin?: string | null;
  form?: URLSearchParams;
}

export type Role = "person" | "admin";

export const notSignedIn = () => new CertbridgeError("access_denied", "You are not signed in (or your session expired). Sign in again and retry.", { status: 401 });

export class ConsoleGate {
  constructor(private readonly deps: { db: Db; config: Pick<Config, "kek" | "publicUrl" | "console">; clock: Clock }) {}

  /** Start a console session for a person who just signed in. */
  startSession(identityId: string): { name: string; value: string; maxAge: number } {
    const ttl = this.deps.config.console.sessionTtlSeconds;
    return { name: SESSION_COOKIE, value: sealSession(this.deps.config.kek, newSession(identityId, this.deps.clock(), ttl)), maxAge: ttl };
  }

  /** End the session in a Cookie header server-side (logout): its cookie no longer opens the consoles. */
  async endSession(cookieHeader: string): Promise<void> {
    const session = openSession(this.deps.config.kek, cookieValue(cookieHeader, SESSION_COOKIE), this.deps.clock());
    if (session) await revokeConsoleSession(this.deps.db, session.sid, new Date(session.exp * 1000));
  }

  /** The signed-in person behind a Cookie header, or null. */
  async viewer(cookieHeader: string): Promise<Viewer | null> {
    const session = openSession(this.deps.config.kek, cookieValue(cookieHeader, SESSION_COOKIE), this.deps.clock());
    if (!session) return null;
    // A cookie kept (or stolen) after its logout is dead here, whatever its sealed expiry says.
    if (await isConsoleSessionRevoked(this.deps.db, session.sid)) return null;
    const row = await findIdentityClaims(this.deps.db, session.identityId);
    if (!row) return null;
    const { claims: claimsJson, ...stored } = row;
    const identity = { ...stored, displayName: displayText(stored.displayName) };
    const claims = JSON.parse(claimsJson) as Record<string, unknown>;
    return { session, identity, claims, admin: isAdministrator(this.deps.config.console, { sub: identity.sub, claims }), csrf: session.csrf };
  }

  /**
   * Let `req` do `action` as `role`, or throw: 401 without a session, 403 for a stale or
   * cross-site form, 403 (audited as admin.refuse) for a person who is not an administrator.
   */
  async require(req: GateRequest, role: Role, action: string): Promise<Viewer> {
    const viewer = await this.viewer(req.cookie);
    if (!viewer) throw notSignedIn();
    if (req.form) {
      const ownOrigin = new URL(this.deps.config.publicUrl).origin;
      // The token is the defence; Origin is a second check where the browser sends one ("null" comes from privacy settings).
      const origin = req.origin ?? null;
      const foreignOrigin = origin !== null && origin !== "null" && origin !== ownOrigin;
      if (foreignOrigin || !csrfMatches(viewer.session, req.form.get("csrf"))) {
        throw accessDenied("This form is stale or was sent from another site (CSRF check failed). Reload the page and try again.");
      }
    }
    if (role === "admin" && !viewer.admin) {
      await recordAudit(this.deps.db, {
        action: "admin.refuse",
        actor: `user:${viewer.identity.id}`,
        outcome: "refused",
        identityId: viewer.identity.id,
        ip: req.ip,
        details: { attempted: action, ...(req.form ? {} : { read: true }) },
      });
      throw accessDenied("Only administrators of this portal may do this.");
    }
    return viewer;
  }
}
