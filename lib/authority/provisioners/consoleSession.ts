/**
 * The account page's "get a proxy now": a signed-in person with a live
 * console session (checked, with its CSRF token, by lib/console before this
 * runs). The person is the session's identity, by id.
 */
import type { VerifiedClaims } from "../../identity/subject";
import type { Provisioner, RequesterIdentity } from "../types";

export interface ConsoleSessionInput {
  /** The session's person and their stored claims, as the console's authorize() loaded them. */
  identity: RequesterIdentity;
  claims: Record<string, unknown>;
  ip: string | null;
}

export const consoleSession: Provisioner<ConsoleSessionInput> = {
  name: "console-session",
  async authorize({ identity, claims, ip }) {
    return { identity: { id: identity.id, subject: identity.subject }, claims: claims as VerifiedClaims, actor: `user:${identity.id}`, channel: "console-session", ip, allowedVos: null };
  },
};
