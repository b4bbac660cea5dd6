/**
 * Token issuance in the audit trail, through oidc-provider's events: every successful token
 * response (authorization code, refresh, device code) is recorded with its client, person, grant
 * type, scope, audience, subject and lifetime — never the tokens themselves. A refused token request of an
 * authenticated client (a reused refresh token, an expired device code) is recorded too; an
 * unauthenticated stranger's is not, so nobody can fill the log from outside.
 */
import type Provider from "oidc-provider";
import type { KoaContextWithOIDC } from "oidc-provider";
import { recordAudit, type AuditInput, type Db } from "../db";

const ipOf = (ctx: KoaContextWithOIDC): string | null => {
  const ip = ctx.req.headers["x-certbridge-client-ip"];
  return typeof ip === "string" && ip ? ip : null;
};

/** The person a token request concerns, whatever the grant. */
function accountOf(ctx: KoaContextWithOIDC): string | null {
  const e = ctx.oidc.entities as { Account?: { accountId: string }; Grant?: { accountId?: string } };
  return e.Account?.accountId ?? e.Grant?.accountId ?? null;
}

/** The access token a successful token request issued (any grant). */
function issuedAccessToken(ctx: KoaContextWithOIDC): { jti?: string; resourceServer?: { audience?: string; accessTokenFormat?: string } } | undefined {
  const e = ctx.oidc.entities as Record<string, unknown>;
  return (e.AccessToken ?? e.ClientCredentials) as ReturnType<typeof issuedAccessToken>;
}

export function auditTokenEvents(provider: Provider, db: Db, log: (m: string) => void = (m) => console.error(`certbridge: ${m}`)): void {
  const write = (what: AuditInput) => void recordAudit(db, what).catch((e: unknown) => log(`token audit failed: ${(e as Error).message}`));

  provider.on("grant.success", (ctx: KoaContextWithOIDC) => {
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    const clientId = ctx.oidc.client?.clientId ?? null;
    const identityId = accountOf(ctx);
    const token = issuedAccessToken(ctx);
    const jwt = token?.resourceServer?.accessTokenFormat === "jwt";
    write({
      action: "token.issue",
      actor: clientId ? `client:${clientId}` : "anonymous",
      clientId,
      identityId,
      ip: ipOf(ctx),
      details: {
        grantType: String(ctx.oidc.params?.grant_type ?? ""),
        scope: typeof body.scope === "string" ? body.scope : null,
        expiresIn: typeof body.expires_in === "number" ? body.expires_in : null,
        // whom the token names (a robot's is its client id), for whom it is, in which format;
        // a JWT's jti identifies it in relying parties' logs (an opaque token's id is the token: never logged)
        subject: identityId ?? clientId,
        audience: token?.resourceServer?.audience ?? null,
        format: jwt ? "wlcg-jwt" : "opaque",
        ...(jwt && token?.jti ? { jti: token.jti } : {}),
        refreshToken: typeof body.refresh_token === "string",
        idToken: typeof body.id_token === "string",
      },
    });
  });

  provider.on("grant.error", (ctx: KoaContextWithOIDC, error: { error?: string; error_description?: string }) => {
    const clientId = ctx.oidc?.client?.clientId;
    if (!clientId) return; // not authenticated: counted nowhere, as the issue on limits asks
    write({
      action: "token.refuse",
      actor: `client:${clientId}`,
      outcome: "refused",
      clientId,
      identityId: accountOf(ctx),
      ip: ipOf(ctx),
      details: { grantType: String(ctx.oidc.params?.grant_type ?? ""), error: error.error ?? "error", reason: error.error_description ?? null },
    });
  });
}
