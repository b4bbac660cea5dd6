/**
 * The OpenID provider gateways talk to (oidc-provider): authorization code
 * flow with PKCE required for every client (OAuth 2.0 Security BCP §2.1.1),
 * refresh tokens for `offline_access` rotated on every use, consent remembered
 * per grant, and all state in the database through the Prisma adapter.
 * This module is the provider's one documented configuration; the account and
 * its claims are in account.ts, key storage in signingKeys.ts, the interactions
 * with people in interactions.ts, the audit of token issuance in tokenAudit.ts.
 */
import Provider, { interactionPolicy, type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import type { Config } from "../config";
import type { Db } from "../db";
import { findAccount, CLAIMS_BY_SCOPE } from "./account";
import { signingJwk } from "./signingKeys";
import { prismaAdapterFactory } from "./adapter";
import { adapterWithFaults, mapDatabaseFaults } from "./faults";
import { GATEWAY_SCOPES } from "./clients";
import { errorPage, loggedOutPage, logoutConfirmPage } from "./pages";
import { auditTokenEvents } from "./tokenAudit";
import { deviceFlowFeature, DEVICE_CODE_TTL_SECONDS } from "./deviceFlow";
import { WLCG_SCOPES } from "./scopePolicy";
import { policyOfClient, TOKEN_POLICY_PROPERTY, wlcgTokenHooks } from "./wlcgTokens";
import { registerTokenExchange } from "./tokenExchange";
import { loadTokenKeys } from "./tokenKeys";
import { loadVoConfig } from "../voms/vos";
import { publicClientBasicAuth } from "./publicClientAuth";
import { keepConsentedOfflineAccess } from "./offlineAccess";
import { registrationEndpoint } from "./registration";
import { COMPAT_PROFILE_PROPERTY, pkceRequiredFor } from "./compatProfile";

/** JWKS cache lifetime for relying parties (WLCG profile: refresh keys every 6 hours). */
export const JWKS_MAX_AGE_SECONDS = 6 * 3600;

/**
 * The default prompts, plus: a device-flow login always shows the consent
 * screen, even when an earlier consent covers the scopes. The person must see
 * the user code next to "Allow" every time, so a code relayed by someone else
 * (RFC 8628 §5.4, remote phishing) is not approved silently.
 */
function interactionPolicyWithDeviceConsent() {
  const policy = interactionPolicy.base();
  const { Check } = interactionPolicy;
  policy.get("consent")!.checks.add(
    new Check("device_flow_consent", "a terminal (device flow) login is confirmed every time", (ctx) =>
      (ctx.oidc.route === "code_verification" || ctx.oidc.route === "device_resume") && !ctx.oidc.result?.consent ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
  );
  return policy;
}

export async function createProvider(config: Config, db: Db): Promise<Provider> {
  const jwk = await signingJwk(db, config.kek);
  // The operator's static FQANs (VO configuration), as the VOMS AA uses them, for wlcg.groups.
  const vos = config.voms.vosFile ? loadVoConfig(config.voms.vosFile) : [];
  const tokenKeys = await loadTokenKeys(db, config.kek, config.portal.tokenKeyRotationSeconds, Math.floor(Date.now() / 1000));
  const wlcg = wlcgTokenHooks(
    db,
    (dn) => vos.flatMap((vo) => vo.members[dn] ?? []),
    () => tokenKeys.signingKid(Math.floor(Date.now() / 1000)),
  );
  const configuration: Configuration = {
    adapter: adapterWithFaults(prismaAdapterFactory(db, config.kek, "", { refreshTokenGraceSeconds: config.portal.refreshTokenGraceSeconds })),
    clients: [],
    findAccount: (_ctx, id) => findAccount(db, id, (accountId) => wlcg.heldGroups(accountId)),
    claims: CLAIMS_BY_SCOPE,
    scopes: [...GATEWAY_SCOPES, ...WLCG_SCOPES],
    extraClientMetadata: { properties: ["certbridge_max_proxy_lifetime", TOKEN_POLICY_PROPERTY, COMPAT_PROFILE_PROPERTY] },
    // AARC-G049 IdP hinting (the MasterPortal's `idphint`), passed on to the upstream IdP.
    // `prompt`: its check puts back an offline_access the person already consented to (offlineAccess.ts).
    extraParams: { idp_hint: null, idphint: null, prompt: keepConsentedOfflineAccess },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: interactionPolicyWithDeviceConsent() },
    // The issuer is the portal's root; protocol endpoints sit under /oidc so they never clash with pages.
    routes: {
      authorization: "/oidc/auth",
      token: "/oidc/token",
      userinfo: "/oidc/me",
      jwks: "/oidc/jwks",
      revocation: "/oidc/token/revocation",
      introspection: "/oidc/token/introspection",
      end_session: "/oidc/session/end",
      code_verification: "/oidc/device",
      device_authorization: "/oidc/device/auth",
      pushed_authorization_request: "/oidc/request",
      backchannel_authentication: "/oidc/backchannel",
      challenge: "/oidc/challenge",
      registration: "/oidc/reg",
    },
    cookies: { keys: config.portal.cookieKeys, long: { signed: true }, short: { signed: true } },
    // The ID token key first (it signs ID tokens), then the WLCG token keys (rotated with overlap).
    jwks: { keys: [jwk as never, ...(tokenKeys.jwks as never[])] },
    // Required for every client but a confidential one with the MasterPortal profile (compatProfile.ts).
    pkce: { required: (_ctx, client) => pkceRequiredFor(client) },
    // Code flow only (OAuth 2.0 Security BCP §2.1.2: no implicit grant).
    responseTypes: ["code"],
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      // Robots (DIRAC's Site Director asking for pilot tokens); only clients whose policy gives
      // them WLCG tokens are allowed this grant (lib/oidc/clients.ts).
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: wlcg.defaultResource,
        useGrantedResource: wlcg.useGrantedResource,
        getResourceServerInfo: wlcg.getResourceServerInfo,
      },
      // RFC 7662: a client may introspect its own tokens; only registered resource servers
      // (token policy `introspection`, confidential clients) those of other clients. Anyone
      // else learns nothing: `{"active": false}` (RFC 7662 §2.2).
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) =>
          token.clientId === client.clientId || (policyOfClient(client).introspection && client.clientAuthMethod !== "none"),
      },
      // Its own pages, not oidc-provider's defaults (inline styles and a web font from another site, which the CSP refuses).
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = "html";
          ctx.body = logoutConfirmPage(form);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = "html";
          ctx.body = loggedOutPage();
        },
      },
      // RFC 8628 for certbridge-proxy-init (the built-in CLI client, lib/oidc/clients.ts).
      deviceFlow: deviceFlowFeature({ devBanner: config.devIdp !== null }),
    },
    formats: { customizers: { jwt: wlcg.customizeJwt as never } },
    ttl: {
      // A WLCG token's lifetime is its client's policy (15 min to 6 h); opaque ones the portal's setting.
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.portal.accessTokenTtlSeconds,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.portal.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 86400,
      Grant: config.portal.consentTtlSeconds,
      RefreshToken: config.portal.refreshTokenTtlSeconds,
      DeviceCode: DEVICE_CODE_TTL_SECONDS,
    },
    rotateRefreshToken: true,
    async renderError(ctx: KoaContextWithOIDC, out) {
      ctx.type = "html";
      ctx.body = errorPage(out.error ?? "error", out.error_description ?? "The request could not be completed.");
    },
  };
  const provider = new Provider(config.portal.issuer, configuration);
  // Behind a TLS-terminating proxy the public URL is https; trust X-Forwarded-*.
  provider.proxy = new URL(config.publicUrl).protocol === "https:";
  // First in the chain: a database that cannot serve is a 503 with Retry-After (lib/oidc/faults.ts).
  mapDatabaseFaults(provider);
  provider.use(wlcg.tokenRequestMiddleware("/oidc/token") as never);
  // oidc-agent: `Authorization: Basic` with an empty secret from a public client (publicClientAuth.ts).
  provider.use(publicClientBasicAuth() as never);
  // RFC 7591, only where the operator switched it on (registration.ts).
  if (config.registration) provider.use(registrationEndpoint(db, config.kek, config.portal.issuer, config.registration) as never);
  // RFC 8693, for clients whose token policy allows it (off by default).
  registerTokenExchange(provider, wlcg, () => tokenKeys.verificationKeys);
  // Keys are fetched by relying parties (scitokens-cpp, ARC): let them cache the JWKS.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === "/oidc/jwks" && ctx.status === 200) ctx.set("Cache-Control", `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
  });
  auditTokenEvents(provider, db);
  return provider;
}
