/**
 * `offline_access` without `prompt=consent` (OpenID Connect Core §11). oidc-provider drops the
 * scope from any authorization request whose `prompt` lacks `consent` (e.g. `prompt=login`, as
 * gateways send to force a fresh sign-in), so such a gateway silently gets no refresh token.
 * Core §11 asks for consent to be obtained, not for the parameter: "unless other conditions for
 * processing the request permitting offline access to the requested resources are in place".
 * Here that condition is an existing consent. When the person's current grant for this client
 * already holds `offline_access` (they consented to it on the consent page, which names it), the
 * scope is put back; without such a grant it stays dropped, as before, so a refresh token is never
 * issued without a consent that named it.
 *
 * Runs as oidc-provider's validation step for the `prompt` parameter (extraParams), which comes
 * after its own scope check in the authorization request pipeline.
 */
import type { KoaContextWithOIDC } from "oidc-provider";

type Client = { clientId: string; grantTypeAllowed: (g: string) => boolean };

/** The scope words of the request as the client sent it (query for GET, form for POST). */
function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  const raw = ctx.method === "POST" ? (ctx.oidc.body as Record<string, unknown> | undefined)?.scope : ctx.query.scope;
  return typeof raw === "string" ? raw.split(" ").filter(Boolean) : [];
}

export async function keepConsentedOfflineAccess(ctx: KoaContextWithOIDC, _prompt: string | undefined, client: Client): Promise<void> {
  const params = ctx.oidc.params;
  if (ctx.oidc.route !== "authorization" || !params) return;
  const scopes = String(params.scope ?? "").split(" ").filter(Boolean);
  if (scopes.includes("offline_access") || !requestedScopes(ctx).includes("offline_access")) return;
  const responseType = String(params.response_type ?? "");
  if (!responseType.split(" ").includes("code") || !client.grantTypeAllowed("refresh_token")) return;
  const session = ctx.oidc.session;
  const grantId = session?.accountId ? session.grantIdFor(client.clientId) : undefined;
  if (!grantId) return;
  const grant = await ctx.oidc.provider.Grant.find(grantId);
  if (!grant || grant.clientId !== client.clientId || grant.accountId !== session!.accountId) return;
  if (!(grant.getOIDCScope() ?? "").split(" ").includes("offline_access")) return;
  params.scope = [...scopes, "offline_access"].join(" ");
}
