/**
 * oidc-provider's hooks for WLCG profile tokens (resource indicators, the JWT customizer and the
 * token request rewrite), with the database behind them: a client's token policy comes with its
 * metadata (`certbridge_token_policy`), a person's groups from their verified claims.
 */
import type { IncomingMessage } from "node:http";
import type { KoaContextWithOIDC, ResourceServer } from "oidc-provider";
import { errors } from "oidc-provider";
import { findIdentityClaims, type Db } from "../db";
import { audienceAllowed, decideScopes, parseStoredTokenPolicy, TOKEN_POLICY_PROPERTY, WLCG_ANY_AUDIENCE, WLCG_SCOPES, type TokenPolicy } from "./scopePolicy";
import { rewriteTokenRequest, tokenGroups, wlcgGroupsFromClaims, wlcgRequestOf } from "./wlcg";
import { FORM_BODY_LIMIT, readBoundedBody } from "../requestBody";

export { TOKEN_POLICY_PROPERTY };

export const policyOfClient = (client: unknown): TokenPolicy =>
  parseStoredTokenPolicy((client as Record<string, unknown> | undefined)?.[TOKEN_POLICY_PROPERTY] as string | undefined);

/** Backdating of `nbf` against clock skew at relying parties (WLCG profile: about 60 s). */
export const NBF_BACKDATE_SECONDS = 60;

type Ctx = KoaContextWithOIDC;

const entities = (ctx: Ctx) =>
  ctx.oidc.entities as {
    Account?: { accountId: string };
    RefreshToken?: { scope?: string; accountId?: string };
    AuthorizationCode?: { scope?: string; accountId?: string };
    Grant?: { accountId?: string };
  };

/** The scopes a token request (or authorization request) asks for. */
function requestedScopes(ctx: Ctx): string[] {
  const e = entities(ctx);
  const s = (ctx.oidc.params?.scope as string | undefined) ?? e.RefreshToken?.scope ?? e.AuthorizationCode?.scope ?? "";
  return s.split(" ").filter(Boolean);
}

const accountOf = (ctx: Ctx): string | null => {
  const e = entities(ctx);
  return e.Account?.accountId ?? e.RefreshToken?.accountId ?? e.AuthorizationCode?.accountId ?? null;
};

/** The groups computed for this request's token, for the JWT customizer. */
const groupsOfRequest = new WeakMap<object, string[]>();
/** A token exchange's subject and actor (tokenExchange.ts), for the JWT customizer. */
const exchanges = new WeakMap<object, { sub: string; groups: string[]; act: { sub: string } }>();

export type WlcgTokenHooks = ReturnType<typeof wlcgTokenHooks>;

/**
 * @param signingKid the key that signs WLCG tokens now (tokenKeys.ts: rotated with overlap)
 */
export function wlcgTokenHooks(db: Db, staticFqansOf: (subjectDn: string) => string[], signingKid: () => string) {
  async function heldGroups(accountId: string) {
    const identity = await findIdentityClaims(db, accountId);
    if (!identity) return { groups: [], optional: [] };
    let claims: Record<string, unknown> = {};
    try {
      claims = JSON.parse(identity.claims) as Record<string, unknown>;
    } catch {
      // no claims recorded: no groups
    }
    return wlcgGroupsFromClaims(claims, staticFqansOf(identity.subject));
  }

  return {
    heldGroups,
    signingKid,

    setExchange(ctx: object, what: { sub: string; groups: string[]; act: { sub: string } }) {
      exchanges.set(ctx, what);
    },

    /** WLCG clients always get a token for a resource (their audience); others keep the portal's opaque tokens. */
    defaultResource(_ctx: Ctx, client: unknown, oneOf?: readonly string[]): string | undefined {
      if (oneOf) return oneOf.includes(WLCG_ANY_AUDIENCE) ? WLCG_ANY_AUDIENCE : oneOf[0];
      return policyOfClient(client).format === "wlcg" ? WLCG_ANY_AUDIENCE : undefined;
    },

    useGrantedResource(ctx: Ctx): boolean {
      return policyOfClient(ctx.oidc.client).format === "wlcg";
    },

    async getResourceServerInfo(ctx: Ctx, resource: string, client: unknown): Promise<ResourceServer> {
      const policy = policyOfClient(client);
      if (policy.format !== "wlcg") throw new errors.InvalidTarget("this client is not configured for audience-restricted (WLCG) tokens");
      const asked = wlcgRequestOf(ctx);
      const audiences = asked?.audience ?? [resource];
      if (audiences.length !== 1) throw new errors.InvalidTarget("one audience per token");
      const audience = audiences[0]!;
      if (!audienceAllowed(policy, audience)) throw new errors.InvalidTarget(`the audience ${audience} is not permitted for this client`);
      const scopes = requestedScopes(ctx);
      const grantType = ctx.oidc.params?.grant_type as string | undefined;
      const accountId = grantType === "client_credentials" ? null : accountOf(ctx);
      let groups: string[] = [];
      if (accountId) {
        const held = await heldGroups(accountId);
        const wantGroups = scopes.includes("wlcg.groups");
        const chosen = tokenGroups(held, asked?.groups ?? [], asked ? asked.plainGroups : wantGroups);
        if (!chosen.ok) throw new errors.InvalidScope(`you are not a member of the group ${chosen.group}`, `wlcg.groups:${chosen.group}`);
        groups = wantGroups ? chosen.groups : [];
        const decision = decideScopes(policy, scopes, { kind: "user", groups: [...held.groups, ...held.optional] });
        if (!decision.ok) throw new errors.InvalidScope(decision.reason, decision.scope);
      } else {
        // a robot (client credentials); at the authorization endpoint only the client's permission
        // is known yet, and the person's groups are checked when the token is issued
        const decision = decideScopes(policy, scopes, { kind: "client" });
        if (!decision.ok) throw new errors.InvalidScope(decision.reason, decision.scope);
      }
      groupsOfRequest.set(ctx, groups);
      const wlcgScopes = new Set<string>(WLCG_SCOPES);
      return {
        scope: scopes.filter((s) => wlcgScopes.has(s)).join(" "),
        audience,
        accessTokenTTL: policy.accessTokenLifetimeSeconds,
        accessTokenFormat: "jwt" as const,
        jwt: { sign: { alg: "RS256", kid: signingKid() } },
      };
    },

    /** The profile's claims on top of oidc-provider's (iss, sub, aud, iat, exp, jti, scope, client_id). */
    customizeJwt(ctx: Ctx, _token: unknown, jwt: { header?: Record<string, unknown>; payload: Record<string, unknown> }) {
      const iat = jwt.payload.iat as number;
      jwt.payload["wlcg.ver"] = "1.0";
      jwt.payload.nbf = iat - NBF_BACKDATE_SECONDS;
      const scope = String(jwt.payload.scope ?? "").split(" ");
      const exchange = exchanges.get(ctx);
      if (exchange) {
        jwt.payload.sub = exchange.sub;
        jwt.payload.act = exchange.act;
      }
      const groups = exchange?.groups ?? groupsOfRequest.get(ctx);
      if (scope.includes("wlcg.groups") && groups) jwt.payload["wlcg.groups"] = groups;
    },

    /**
     * Koa middleware in front of the token endpoint: DIRAC's `audience` and parametric group
     * scopes (see wlcg.ts). oidc-provider reads an already-read body from `req.body`.
     */
    tokenRequestMiddleware(tokenPath: string) {
      return async (
        ctx: {
          method: string;
          path: string;
          req: IncomingMessage & { body?: unknown };
          request: { body?: unknown };
          status: number;
          body: unknown;
          is: (t: string) => string | false | null;
        },
        next: () => Promise<unknown>,
      ) => {
        if (ctx.method !== "POST" || ctx.path !== tokenPath || !ctx.is("application/x-www-form-urlencoded")) return next();
        const read = await readBoundedBody(ctx.req, FORM_BODY_LIMIT);
        if ("tooLarge" in read) {
          ctx.status = 413;
          ctx.body = { error: "invalid_request", error_description: "request entity too large" };
          return;
        }
        const body = read.body.toString("utf8");
        const rewritten = rewriteTokenRequest(ctx, body);
        if (rewritten && "error" in rewritten) {
          ctx.status = 400;
          ctx.body = { error: "invalid_scope", error_description: rewritten.error };
          return;
        }
        // oidc-provider takes `req.body || request.body`: both, so an empty body stays an empty form
        ctx.req.body = ctx.request.body = rewritten ? rewritten.body : body;
        return next();
      };
    },
  };
}
