/**
 * Token issuance in the audit trail, through oidc-provider's events: every successful token
 * response (authorization code, refresh, device code) is recorded with its client, person, grant
 * type, scope and lifetime — never the tokens themselves. A refused token request of an
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

export function auditTokenEvents(provider: Provider, db: Db, log: (m: string) => void = (m) => console.error(`certbridge: ${m}`)): void {
  const write = (what: AuditInput) => void recordAudit(db, what).catch((e: unknown) => log(`token audit failed: ${(e as Error).message}`));

  provider.on("grant.success", (ctx: KoaContextWithOIDC) => {
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    const clientId = ctx.oidc.client?.clientId ?? null;
    const identityId = accountOf(ctx);
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
