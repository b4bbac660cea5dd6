/**
 * A client's token policy, set by the administrator (clients file, admin console): which access
 * tokens it gets (the portal's opaque ones, or WLCG Common JWT Profile tokens), for which
 * audiences, whether compute.* scopes may be issued to it at all (robots: client credentials) and
 * to which people (user tokens: members of the groups named), and whether it may exchange tokens
 * (RFC 8693). Deny is the default everywhere: no policy means opaque tokens and no compute scopes,
 * as INDIGO IAM's usual "deny compute.* to everyone, permit to wlcg/pilots" does. Pure: no I/O.
 */
import { z } from "zod";

/** Client metadata property carrying the client's token policy (JSON text, as stored). */
export const TOKEN_POLICY_PROPERTY = "certbridge_token_policy";
/** RFC 8693 token exchange (tokenExchange.ts). */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";

export const COMPUTE_SCOPES = ["compute.read", "compute.modify", "compute.create", "compute.cancel"] as const;
/** Scopes of the WLCG Common JWT Profile a client may be allowed (storage.* is not served here). */
export const WLCG_SCOPES = [...COMPUTE_SCOPES, "wlcg", "wlcg.groups"] as const;
/** `aud` when the client names none: any relying party (WLCG profile §2.3). */
export const WLCG_ANY_AUDIENCE = "https://wlcg.cern.ch/jwt/v1/any";
/** The profile's bounds on access token lifetimes: 15 min to 6 h, 1 h by default. */
export const ACCESS_TOKEN_LIFETIME = { min: 900, max: 21600, default: 3600 } as const;

const groupPath = z.string().regex(/^\/[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/, "groups are paths like /vo or /vo/group");
const audience = z.string().trim().min(1).max(200).regex(/^[^\s#]+$/, "an audience is one word without spaces or #");

export const tokenPolicySchema = z.strictObject({
  /** `wlcg`: JWT access tokens of the WLCG profile (and client credentials for confidential clients). */
  format: z.enum(["opaque", "wlcg"]).default("opaque"),
  /** Audiences the client may ask for (`audience` or `resource`); absent: any. */
  audiences: z.array(audience).max(64).optional(),
  /** compute.* for this client at all (the administrator's permission). */
  compute: z.boolean().default(false),
  /** compute.* in user tokens only for members of one of these groups (WLCG paths); empty: never in user tokens. */
  computeGroups: z.array(groupPath).max(64).default([]),
  /**
   * The device authorization grant (RFC 8628) for this client: oidc-agent, and other terminal
   * tools registered as gateways. Off by default: a device login is phishable (RFC 8628 §5.4),
   * so the operator decides which clients may start one.
   */
  deviceGrant: z.boolean().default(false),
  /** A registered resource server: may introspect (RFC 7662) tokens issued to other clients. */
  introspection: z.boolean().default(false),
  accessTokenLifetimeSeconds: z.number().int().min(ACCESS_TOKEN_LIFETIME.min).max(ACCESS_TOKEN_LIFETIME.max).default(ACCESS_TOKEN_LIFETIME.default),
  /** RFC 8693 token exchange; absent: off. */
  exchange: z
    .strictObject({
      /** Subject tokens issued to these clients may be exchanged (this client's own always may). */
      subjectClients: z.array(z.string().min(1).max(64)).max(64).default([]),
      /** Audiences of the exchanged tokens; absent: the client's audiences. */
      audiences: z.array(audience).max(64).optional(),
      /** Scopes the exchanged tokens may carry (never more than the subject token's). */
      scopes: z.array(z.string().min(1).max(200)).max(64).default([]),
    })
    .optional(),
});
export type TokenPolicy = z.output<typeof tokenPolicySchema>;
export type TokenPolicyInput = z.input<typeof tokenPolicySchema>;

export const DEFAULT_TOKEN_POLICY: TokenPolicy = tokenPolicySchema.parse({});

/** The stored JSON (or none) as a policy; a damaged value denies (the default policy). */
export function parseStoredTokenPolicy(json: string | null | undefined): TokenPolicy {
  if (!json) return DEFAULT_TOKEN_POLICY;
  try {
    const r = tokenPolicySchema.safeParse(JSON.parse(json));
    return r.success ? r.data : DEFAULT_TOKEN_POLICY;
  } catch {
    return DEFAULT_TOKEN_POLICY;
  }
}

export const isComputeScope = (s: string): boolean => s.startsWith("compute.");

export type ScopeDecision = { ok: true } | { ok: false; scope: string; reason: string };

/**
 * May these requested scopes be issued? compute.* needs the administrator's permission for the
 * client and, in a user token, membership of one of the policy's groups. A refusal names the
 * first scope refused (the token endpoint answers invalid_scope; nothing is dropped silently).
 */
export function decideScopes(policy: TokenPolicy, requested: readonly string[], subject: { kind: "client" } | { kind: "user"; groups: readonly string[] }): ScopeDecision {
  const compute = requested.find(isComputeScope);
  if (!compute) return { ok: true };
  if (!policy.compute) return { ok: false, scope: compute, reason: "compute scopes are not permitted for this client" };
  if (subject.kind === "user" && !policy.computeGroups.some((g) => subject.groups.includes(g))) {
    return { ok: false, scope: compute, reason: "compute scopes are only issued to members of the groups the policy names" };
  }
  return { ok: true };
}

/** May the client ask for this audience? */
export function audienceAllowed(policy: TokenPolicy, aud: string): boolean {
  return !policy.audiences || policy.audiences.includes(aud);
}
