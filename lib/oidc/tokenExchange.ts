/**
 * RFC 8693 token exchange, as DIRAC uses it to delegate a user's token to another service:
 * `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
 * `subject_token_type=urn:ietf:params:oauth:token-type:access_token`, optional `audience` /
 * `resource` and `scope`. Off by default: only a confidential client whose token policy has an
 * `exchange` section has the grant (lib/oidc/clients.ts), and the policy says whose tokens it may
 * exchange (its own always; others' by client id), for which audiences and scopes. The new token
 * never carries more than the subject token (scopes, groups) and names the exchanging client in
 * `act` (RFC 8693 §4.1). Subject tokens are this portal's own: opaque access tokens it stores, or
 * its WLCG JWTs (signature, issuer and lifetime checked with its own keys).
 */
import crypto from "node:crypto";
import type Provider from "oidc-provider";
import type { KoaContextWithOIDC } from "oidc-provider";
import { errors } from "oidc-provider";
import { audienceAllowed, decideScopes, TOKEN_EXCHANGE_GRANT, WLCG_ANY_AUDIENCE } from "./scopePolicy";
import { wlcgRequestOf } from "./wlcg";
import { policyOfClient, type WlcgTokenHooks } from "./wlcgTokens";

export { TOKEN_EXCHANGE_GRANT };
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const EXCHANGE_PARAMETERS = ["subject_token", "subject_token_type", "requested_token_type", "resource", "scope", "actor_token", "actor_token_type"];

interface Subject {
  sub: string;
  accountId: string | null;
  clientId: string;
  scopes: string[];
  groups: string[] | null;
}

/** One of this portal's JWT access tokens, verified; null when it is not (or no longer) valid. */
function verifyOwnJwt(token: string, issuer: string, keys: crypto.KeyObject[], now: number): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString()) as { alg?: string };
    if (header.alg !== "RS256") return null;
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, "base64url");
    if (!keys.some((k) => crypto.verify("sha256", signed, k, signature))) return null;
    const p = JSON.parse(Buffer.from(parts[1]!, "base64url").toString()) as Record<string, unknown>;
    if (p.iss !== issuer || typeof p.exp !== "number" || p.exp <= now || (typeof p.nbf === "number" && p.nbf > now + 60)) return null;
    return p;
  } catch {
    return null;
  }
}

async function subjectOf(provider: Provider, ctx: KoaContextWithOIDC, value: string, keys: crypto.KeyObject[]): Promise<Subject> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = verifyOwnJwt(value, provider.issuer, keys, now);
  if (jwt) {
    const clientId = String(jwt.client_id ?? "");
    const sub = String(jwt.sub ?? "");
    return {
      sub,
      accountId: sub && sub !== clientId ? sub : null,
      clientId,
      scopes: String(jwt.scope ?? "").split(" ").filter(Boolean),
      groups: Array.isArray(jwt["wlcg.groups"]) ? (jwt["wlcg.groups"] as string[]) : null,
    };
  }
  const at = value.includes(".") ? undefined : await provider.AccessToken.find(value);
  if (!at || at.isExpired) throw new errors.InvalidGrant("subject_token is not an active access token of this portal");
  void ctx;
  return { sub: at.accountId ?? at.clientId!, accountId: at.accountId ?? null, clientId: at.clientId!, scopes: (at.scope ?? "").split(" ").filter(Boolean), groups: null };
}

/** Register the grant on the provider (every client still needs it in its grant_types). */
export function registerTokenExchange(provider: Provider, hooks: WlcgTokenHooks, verificationKeys: () => crypto.KeyObject[]): void {
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx: KoaContextWithOIDC) => {
      const client = ctx.oidc.client!;
      const policy = policyOfClient(client);
      const exchange = policy.exchange;
      if (!exchange || policy.format !== "wlcg") throw new errors.UnauthorizedClient("this client may not exchange tokens");
      const params = ctx.oidc.params as Record<string, string | undefined>;
      if (!params.subject_token) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
      if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`only ${ACCESS_TOKEN_TYPE} can be requested`);
      if (params.actor_token) throw new errors.InvalidRequest("actor tokens are not supported");

      const subject = await subjectOf(ctx.oidc.provider, ctx, params.subject_token, verificationKeys());
      if (subject.clientId !== client.clientId && !exchange.subjectClients.includes(subject.clientId)) {
        throw new errors.InvalidGrant(`this client may not exchange tokens issued to ${subject.clientId}`);
      }

      const asked = wlcgRequestOf(ctx);
      const audiences = asked?.audience ?? (params.resource ? [params.resource] : [WLCG_ANY_AUDIENCE]);
      if (audiences.length !== 1) throw new errors.InvalidTarget("one audience per token");
      const audience = audiences[0]!;
      const allowedAudiences = exchange.audiences ?? policy.audiences;
      if (allowedAudiences ? !allowedAudiences.includes(audience) : !audienceAllowed(policy, audience)) {
        throw new errors.InvalidTarget(`the audience ${audience} is not permitted for exchanged tokens of this client`);
      }

      const requested = params.scope ? params.scope.split(" ").filter(Boolean) : subject.scopes.filter((s) => exchange.scopes.includes(s));
      for (const s of requested) {
        if (!subject.scopes.includes(s)) throw new errors.InvalidScope("the subject token does not carry this scope", s);
        if (!exchange.scopes.includes(s)) throw new errors.InvalidScope("this scope may not be exchanged by this client", s);
      }
      const groupsHeld = subject.groups ?? (subject.accountId ? (await hooks.heldGroups(subject.accountId)).groups : []);
      const decision = decideScopes(policy, requested, subject.accountId ? { kind: "user", groups: groupsHeld } : { kind: "client" });
      if (!decision.ok) throw new errors.InvalidScope(decision.reason, decision.scope);
      const askedGroups = asked?.groups ?? [];
      const missing = askedGroups.find((g) => !groupsHeld.includes(g));
      if (missing) throw new errors.InvalidScope(`the subject token does not carry the group ${missing}`, `wlcg.groups:${missing}`);
      const groups = requested.includes("wlcg.groups") ? (askedGroups.length ? askedGroups : groupsHeld) : [];

      const { AccessToken, ResourceServer } = ctx.oidc.provider;
      // a robot's token has no account: the JWT's sub is then set from the subject (customizer)
      const at = new AccessToken({ client, gty: "token-exchange", ...(subject.accountId ? { accountId: subject.accountId } : {}) } as ConstructorParameters<typeof AccessToken>[0]);
      at.resourceServer = new ResourceServer(WLCG_ANY_AUDIENCE, {
        scope: requested.join(" "),
        audience,
        accessTokenTTL: policy.accessTokenLifetimeSeconds,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256", kid: hooks.signingKid() } },
      });
      at.scope = requested.join(" ");
      hooks.setExchange(ctx, { sub: subject.sub, groups, act: { sub: client.clientId } });
      ctx.oidc.entity("AccessToken", at);
      const value = await at.save();
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: at.expiration,
        ...(at.scope ? { scope: at.scope } : {}),
      };
    },
    EXCHANGE_PARAMETERS,
  );
}
