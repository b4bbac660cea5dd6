/**
 * The portal as a relying party of the upstream OP (EGI Check-in, or the
 * embedded development IdP): discovery, authorization code flow with PKCE,
 * state and nonce (openid-client). Claims are taken from the verified ID
 * token and completed from userinfo (Check-in releases entitlements there).
 */
import * as client from "openid-client";
import { z } from "zod";
import { CertbridgeError } from "./errors";

export interface UpstreamSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string;
  redirectUri: string;
}

/** What travels in the (sealed) login cookie between leaving for the IdP and coming back. */
export const loginState = z.object({
  /** The gateway's pending authorization request ("console" for a console sign-in). */
  uid: z.string().min(1),
  verifier: z.string().min(43),
  state: z.string().min(1),
  nonce: z.string().min(1),
  /** Console sign-ins only: the portal path to return to. */
  returnTo: z.string().optional(),
});
export type LoginState = z.infer<typeof loginState>;

export class Upstream {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(readonly settings: UpstreamSettings) {}

  private config(): Promise<client.Configuration> {
    this.configuration ??= client
      .discovery(new URL(this.settings.issuer), this.settings.clientId, this.settings.clientSecret, client.ClientSecretBasic(this.settings.clientSecret), {
        // Loopback development IdPs speak plain http; real issuers must not.
        execute: new URL(this.settings.issuer).protocol === "http:" ? [client.allowInsecureRequests] : [],
      })
      .catch((e: unknown) => {
        this.configuration = undefined; // retry discovery next time
        throw new CertbridgeError("temporarily_unavailable", `the identity provider at ${this.settings.issuer} cannot be reached; try again later`, { cause: e, status: 502 });
      });
    return this.configuration;
  }

  /**
   * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where to end the person's
   * session at the upstream IdP, coming back to `postLogoutRedirectUri`; null when the IdP
   * offers no end_session_endpoint.
   */
  async endSessionUrl(postLogoutRedirectUri: string): Promise<string | null> {
    const config = await this.config();
    if (!config.serverMetadata().end_session_endpoint) return null;
    return client.buildEndSessionUrl(config, { client_id: this.settings.clientId, post_logout_redirect_uri: postLogoutRedirectUri, state: "upstream" }).href;
  }

  /** Where to send the browser, and the state to keep until it comes back. */
  async startLogin(uid: string, hints: { idpHint?: string; loginHint?: string }, returnTo?: string): Promise<{ url: string; state: LoginState }> {
    const config = await this.config();
    const verifier = client.randomPKCECodeVerifier();
    const state: LoginState = { uid, verifier, state: client.randomState(), nonce: client.randomNonce(), ...(returnTo !== undefined ? { returnTo } : {}) };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: state.state,
      nonce: state.nonce,
      // AARC-G049 IdP hinting, as the MasterPortal passes it on.
      ...(hints.idpHint ? { idp_hint: hints.idpHint } : {}),
      ...(hints.loginHint ? { login_hint: hints.loginHint } : {}),
    });
    return { url: url.href, state };
  }

  /** Complete the code flow; returns the verified claims (iss and sub always present). */
  async finishLogin(callbackUrl: URL, state: LoginState): Promise<Record<string, unknown> & { iss: string; sub: string }> {
    const config = await this.config();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: state.verifier,
        expectedState: state.state,
        expectedNonce: state.nonce,
        idTokenExpected: true,
      });
    } catch (e) {
      if (e instanceof client.AuthorizationResponseError) {
        const cancelled = e.error === "access_denied";
        throw new CertbridgeError("access_denied", cancelled ? "You cancelled the sign-in at your identity provider." : `Your identity provider refused the sign-in: ${e.error_description ?? e.error}`, { cause: e });
      }
      throw new CertbridgeError("invalid_request", "The sign-in response from your identity provider could not be verified (expired, replayed or tampered). Please start again.", { cause: e });
    }
    const idClaims = tokens.claims()!;
    let userinfo: Record<string, unknown> = {};
    try {
      userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    } catch {
      // Optional: everything essential is in the ID token.
    }
    const { aud: _aud, exp: _exp, iat: _iat, nonce: _nonce, at_hash: _ah, c_hash: _ch, azp: _azp, auth_time: _at, sid: _sid, ...claims } = { ...userinfo, ...idClaims };
    return { ...claims, iss: idClaims.iss, sub: idClaims.sub };
  }
}
