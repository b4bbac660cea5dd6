/**
 * The portal as a relying party of the upstream OP (EGI Check-in, INDIGO IAM, or the embedded
 * development IdP): discovery, authorization code flow with PKCE, state and nonce (openid-client).
 * Claims are taken from the verified ID token and completed from userinfo (Check-in releases
 * entitlements there).
 *
 * Every way the upstream can fail is named (UpstreamFailure.reason), so that the person gets a page
 * saying what to do and the operator a log line and an audit event with the IdP's own words.
 * Discovery (and with it the IdP's key set, which openid-client caches per configuration) is kept
 * and refreshed; before sending a person to the IdP its discovery document is re-fetched when the
 * last contact is older than the probe interval, so an IdP that is down gives a page here instead
 * of a browser error at the IdP's address.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as client from "openid-client";
import { z } from "zod";
import { CertbridgeError } from "./errors";
import { LOGGED } from "./http";

export type TokenAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt";

/** How the relying party talks to the IdP (lib/config.ts: CERTBRIDGE_UPSTREAM_*). */
export interface UpstreamTuning {
  tokenAuth: TokenAuthMethod;
  /**
   * client_secret_basic: "form" encodes id and secret as RFC 6749 §2.3.1 requires before base64;
   * "raw" sends them as they are, for IdPs that do not decode (Glewlwyd 2.7).
   */
  basicEncoding: "form" | "raw";
  /** private_key_jwt: the PEM file of the portal's key (created when absent). */
  privateKeyFile: string | null;
  clockToleranceSeconds: number;
  /** max_age sent to the IdP and auth_time checked against it; null: neither. */
  maxAgeSeconds: number | null;
  metadataTtlSeconds: number;
  probeIntervalSeconds: number;
  timeoutSeconds: number;
  /** Further attempts of a failed discovery, with back-off. */
  retries: number;
}

export const DEFAULT_TUNING: UpstreamTuning = {
  tokenAuth: "client_secret_basic",
  basicEncoding: "form",
  privateKeyFile: null,
  clockToleranceSeconds: 30,
  maxAgeSeconds: null,
  metadataTtlSeconds: 3600,
  probeIntervalSeconds: 30,
  timeoutSeconds: 10,
  retries: 2,
};

export interface UpstreamSettings extends UpstreamTuning {
  issuer: string;
  clientId: string;
  /** null with private_key_jwt */
  clientSecret: string | null;
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

/** Where in the exchange with the IdP something went wrong. */
export type UpstreamStage = "discovery" | "preflight" | "authorization" | "token" | "id_token" | "userinfo" | "callback";

/**
 * The named causes. The first part is the stage; the page's advice follows from it:
 * the person can try again (transient, or their own session), or only the operator can fix it.
 */
export type UpstreamReason =
  | "idp_unreachable"
  | "idp_metadata_invalid"
  | "cancelled"
  | "idp_refused"
  | "state_mismatch"
  | "login_session_lost"
  | "client_credentials_refused"
  | "token_client_auth_refused"
  | "token_code_rejected"
  | "token_error"
  | "token_http_error"
  | "id_token_issuer"
  | "id_token_audience"
  | "id_token_nonce"
  | "id_token_signature"
  | "id_token_keys"
  | "id_token_expired"
  | "id_token_not_yet_valid"
  | "id_token_auth_time"
  | "id_token_invalid"
  | "userinfo_error"
  | "userinfo_subject";

/** Facts for the operator: the IdP's own error words, HTTP status, transport error, measured clock skew. Never secrets or codes. */
export interface FailureDetails {
  error?: string;
  error_description?: string;
  status?: number;
  transport?: string;
  claim?: string;
  skewSeconds?: number;
  toleranceSeconds?: number;
  message?: string;
}

const FAILURE = Symbol.for("certbridge.upstream-failure");

/** An upstream failure: a CertbridgeError (the page) that also carries its reason and a reference for the log. */
export class UpstreamFailure extends CertbridgeError {
  readonly [FAILURE] = true;
  /** Logged by Upstream.fail: the error edge does not log it again. */
  readonly [LOGGED] = true;
  constructor(
    readonly stage: UpstreamStage,
    readonly reason: UpstreamReason,
    readonly ref: string,
    readonly details: FailureDetails,
    code: ConstructorParameters<typeof CertbridgeError>[0],
    message: string,
    status: number,
    cause: unknown,
  ) {
    super(code, message, { cause, status });
  }
}

export const isUpstreamFailure = (e: unknown): e is UpstreamFailure => typeof e === "object" && e !== null && (e as { [FAILURE]?: boolean })[FAILURE] === true;

const newRef = () => crypto.randomBytes(6).toString("hex");

const TRY_AGAIN = "Please try again in a few minutes.";
const TELL_OPERATOR = "This is not something you can fix: please contact the operator of this portal";

/** The page text and status for a reason (the person reads this; the operator gets the details). */
function advice(reason: UpstreamReason, issuer: string, ref: string): { code: ConstructorParameters<typeof CertbridgeError>[0]; status: number; message: string } {
  const quote = `and quote reference ${ref}.`;
  const idp = new URL(issuer).host;
  switch (reason) {
    case "cancelled":
      return { code: "access_denied", status: 403, message: "You cancelled the sign-in at your identity provider." };
    case "idp_refused":
      return { code: "access_denied", status: 403, message: `Your identity provider (${idp}) refused the sign-in. If you think it should not have, contact your identity provider's help desk or the operator of this portal ${quote}` };
    case "state_mismatch":
      return { code: "invalid_request", status: 400, message: `The sign-in response from your identity provider could not be verified (expired, replayed or tampered). Please start again. (Reference ${ref}.)` };
    case "login_session_lost":
      return { code: "invalid_request", status: 400, message: `Your sign-in session has expired or cookies are blocked. Start again from the gateway. (Reference ${ref}.)` };
    case "token_code_rejected":
      return { code: "invalid_request", status: 400, message: `Your identity provider (${idp}) no longer accepts this sign-in (it took too long, or the page was reloaded). Please start again. (Reference ${ref}.)` };
    case "idp_unreachable":
      return { code: "temporarily_unavailable", status: 503, message: `The identity provider at ${issuer} cannot be reached. ${TRY_AGAIN} If it persists, contact the operator of this portal ${quote}` };
    case "token_http_error":
      return { code: "temporarily_unavailable", status: 502, message: `Your identity provider (${idp}) did not complete the sign-in (it answered with an error). ${TRY_AGAIN} If it persists, contact the operator of this portal ${quote}` };
    case "id_token_auth_time":
      return { code: "access_denied", status: 403, message: `This portal needs a recent sign-in, and your identity provider (${idp}) reported an older one. Sign out at your identity provider and try again; if it persists, contact the operator of this portal ${quote}` };
    case "id_token_expired":
    case "id_token_not_yet_valid":
      return { code: "temporarily_unavailable", status: 502, message: `The sign-in from your identity provider (${idp}) could not be accepted: the clocks of this portal and of the identity provider disagree. ${TELL_OPERATOR} ${quote}` };
    default:
      return { code: "temporarily_unavailable", status: 502, message: `The sign-in could not be completed because this portal and your identity provider (${idp}) do not work together as configured. ${TELL_OPERATOR} ${quote}` };
  }
}

/** A fetch that failed below HTTP: the transport's own words (ECONNREFUSED, timeout, DNS). */
function transportError(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  if (e.name === "TimeoutError" || e.name === "AbortError") return `timeout (${e.message})`;
  if (e instanceof TypeError && /fetch failed|network/i.test(e.message)) {
    const c = e.cause as { code?: string; message?: string } | undefined;
    return [c?.code, c?.message].filter(Boolean).join(": ") || e.message;
  }
  const cause = (e as { cause?: unknown }).cause;
  return cause && cause !== e ? transportError(cause) : null;
}

/** The response status behind an openid-client ClientError about a non-conforming response. */
function responseStatus(e: unknown): number | undefined {
  const c = (e as { cause?: unknown }).cause;
  return c instanceof Response ? c.status : undefined;
}

interface OpeCause {
  claim?: string;
  claims?: Record<string, unknown>;
  now?: number;
  tolerance?: number;
}

/** Classify an error from the code exchange (token endpoint + ID token validation). */
function classifyTokenError(e: unknown, tolerance: number): { stage: UpstreamStage; reason: UpstreamReason; details: FailureDetails } {
  const transport = transportError(e);
  if (transport) return { stage: "token", reason: "idp_unreachable", details: { transport } };
  if (e instanceof client.AuthorizationResponseError) {
    const details = { error: e.error, ...(e.error_description ? { error_description: e.error_description } : {}) };
    return { stage: "authorization", reason: e.error === "access_denied" ? "cancelled" : "idp_refused", details };
  }
  if (e instanceof client.ResponseBodyError) {
    const details: FailureDetails = { error: e.error, status: e.status, ...(e.error_description ? { error_description: e.error_description } : {}) };
    if (e.error === "invalid_client" || e.error === "unauthorized_client" || e.status === 401) return { stage: "token", reason: "token_client_auth_refused", details };
    if (e.error === "invalid_grant") return { stage: "token", reason: "token_code_rejected", details };
    return { stage: "token", reason: "token_error", details };
  }
  if (e instanceof client.WWWAuthenticateChallengeError) {
    return { stage: "token", reason: "token_client_auth_refused", details: { status: e.status, error: e.cause[0]?.parameters.error ?? e.cause[0]?.scheme } };
  }
  if (e instanceof client.ClientError) {
    const inner = (e.cause instanceof Error ? e.cause : undefined) as (Error & { code?: string; cause?: unknown }) | undefined;
    const ope = (inner?.cause ?? {}) as OpeCause;
    const msg = { message: (inner ?? e).message };
    switch (e.code) {
      case "OAUTH_RESPONSE_IS_NOT_CONFORM":
      case "OAUTH_RESPONSE_IS_NOT_JSON": {
        const status = responseStatus(e);
        // Several IdPs answer a refused client authentication with a bare 401/403.
        if (status === 401 || status === 403) return { stage: "token", reason: "token_client_auth_refused", details: { status, ...msg } };
        return { stage: "token", reason: "token_http_error", details: { ...(status ? { status } : {}), ...msg } };
      }
      case "OAUTH_JWT_CLAIM_COMPARISON_FAILED": {
        const claim = ope.claim;
        const reason: UpstreamReason = claim === "iss" ? "id_token_issuer" : claim === "aud" || claim === "azp" ? "id_token_audience" : claim === "nonce" ? "id_token_nonce" : "id_token_invalid";
        return { stage: "id_token", reason, details: { ...(claim ? { claim } : {}), ...msg } };
      }
      case "OAUTH_JWT_TIMESTAMP_CHECK_FAILED": {
        const claim = ope.claim;
        const iat = typeof ope.claims?.iat === "number" ? ope.claims.iat : undefined;
        const skew = iat !== undefined && ope.now !== undefined ? iat - ope.now : undefined;
        const reason: UpstreamReason = claim === "auth_time" ? "id_token_auth_time" : claim === "nbf" ? "id_token_not_yet_valid" : "id_token_expired";
        return { stage: "id_token", reason, details: { ...(claim ? { claim } : {}), ...(skew !== undefined ? { skewSeconds: skew } : {}), toleranceSeconds: ope.tolerance ?? tolerance, ...msg } };
      }
      case "OAUTH_KEY_SELECTION_FAILED":
        return { stage: "id_token", reason: "id_token_keys", details: msg };
      case "OAUTH_INVALID_RESPONSE": {
        if (/signature verification failed/i.test(msg.message)) return { stage: "id_token", reason: "id_token_signature", details: msg };
        if (/"state"/.test(msg.message)) return { stage: "callback", reason: "state_mismatch", details: msg };
        return { stage: "id_token", reason: "id_token_invalid", details: msg };
      }
      default:
        return { stage: "token", reason: "id_token_invalid", details: { ...msg, ...(e.code ? { error: e.code } : {}) } };
    }
  }
  return { stage: "token", reason: "id_token_invalid", details: { message: e instanceof Error ? e.message : String(e) } };
}

/** The portal's private_key_jwt key: from the file, or created there on first use (0600). */
function loadOrCreateKey(file: string): crypto.KeyObject {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    try {
      fs.linkSync(tmp, file); // never over a key another process made first
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  return crypto.createPrivateKey(fs.readFileSync(file));
}

export interface UpstreamStatus {
  issuer: string;
  /** fresh: discovery younger than its TTL; stale: older, or the last refresh failed; missing: never fetched. */
  metadata: "fresh" | "stale" | "missing";
  fetchedAt: string | null;
  lastContactAt: string | null;
  /** The IdP's answer to the portal's client authentication, tested with a token request for a made-up code. */
  clientAuth: "accepted" | "refused" | "unknown";
  lastError: { at: string; reason: string; detail: string } | null;
}

interface Discovered {
  config: client.Configuration;
  fetchedAt: number;
}

export class Upstream {
  private current: Discovered | null = null;
  private inflight: Promise<Discovered> | null = null;
  private lastContact = 0;
  /** When re-fetching discovery last failed (the cached metadata is then stale). */
  private discoveryFailedAt = 0;
  private lastError: UpstreamStatus["lastError"] = null;
  private credentials: { state: UpstreamStatus["clientAuth"]; details: FailureDetails } = { state: "unknown", details: {} };
  private readonly signingKey: { key: crypto.KeyObject; jwk: crypto.JsonWebKey & { kid: string } } | null;
  private cryptoKey: Promise<CryptoKey> | null = null;

  constructor(
    readonly settings: UpstreamSettings,
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    if (settings.tokenAuth === "private_key_jwt") {
      if (!settings.privateKeyFile) throw new CertbridgeError("invalid_config", "private_key_jwt needs a key file (CERTBRIDGE_UPSTREAM_PRIVATE_KEY_FILE)");
      const key = loadOrCreateKey(settings.privateKeyFile);
      const pub = crypto.createPublicKey(key).export({ format: "jwk" });
      const kid = crypto.createHash("sha256").update(JSON.stringify({ e: pub.e, kty: pub.kty, n: pub.n })).digest("base64url"); // RFC 7638
      this.signingKey = { key, jwk: { ...pub, kid, use: "sig", alg: "RS256" } };
    } else {
      this.signingKey = null;
    }
  }

  /** The public key set for private_key_jwt (register this URL, or its content, at the IdP); null with a client secret. */
  jwks(): { keys: object[] } | null {
    return this.signingKey ? { keys: [this.signingKey.jwk] } : null;
  }

  status(now = Date.now()): UpstreamStatus {
    const c = this.current;
    const fresh = c !== null && now - c.fetchedAt < this.settings.metadataTtlSeconds * 1000 && this.discoveryFailedAt <= c.fetchedAt;
    return {
      issuer: this.settings.issuer,
      metadata: c === null ? "missing" : fresh ? "fresh" : "stale",
      fetchedAt: c ? new Date(c.fetchedAt).toISOString() : null,
      lastContactAt: this.lastContact ? new Date(this.lastContact).toISOString() : null,
      clientAuth: this.credentials.state,
      lastError: this.lastError,
    };
  }

  private clientAuth(): client.ClientAuth {
    const s = this.settings;
    switch (s.tokenAuth) {
      case "client_secret_post":
        return client.ClientSecretPost(s.clientSecret!);
      case "private_key_jwt":
        return async (as, c, body, headers) => {
          this.cryptoKey ??= crypto.webcrypto.subtle.importKey("jwk", this.signingKey!.key.export({ format: "jwk" }), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
          const key = await this.cryptoKey;
          // OIDC Core §9: the audience is the token endpoint (openid-client would put the issuer).
          const auth = client.PrivateKeyJwt({ key, kid: this.signingKey!.jwk.kid }, { [client.modifyAssertion]: (_h, p) => void (p.aud = String(as.token_endpoint ?? as.issuer)) });
          return auth(as, c, body, headers);
        };
      case "client_secret_basic":
        if (s.basicEncoding === "raw") {
          return (_as, c, _body, headers) => {
            headers.set("authorization", `Basic ${Buffer.from(`${c.client_id}:${s.clientSecret}`).toString("base64")}`);
          };
        }
        return client.ClientSecretBasic(s.clientSecret!);
    }
  }

  private async fetchDiscovery(): Promise<Discovered> {
    const s = this.settings;
    const attempts = 1 + s.retries;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250 * 3 ** (i - 1)));
      try {
        const config = await client.discovery(
          new URL(s.issuer),
          s.clientId,
          { [client.clockTolerance]: s.clockToleranceSeconds, ...(s.maxAgeSeconds !== null ? { default_max_age: s.maxAgeSeconds } : {}) },
          this.clientAuth(),
          {
            timeout: s.timeoutSeconds,
            // Verify ID token signatures with the IdP's published keys even over TLS (openid-client would
            // rely on TLS alone): a key problem is then named here, not discovered later.
            // Loopback development IdPs speak plain http; real issuers must not.
            execute: [client.enableNonRepudiationChecks, ...(new URL(s.issuer).protocol === "http:" ? [client.allowInsecureRequests] : [])],
          },
        );
        config.timeout = s.timeoutSeconds;
        // Keep the IdP's keys across refreshes (openid-client refetches them on an unknown kid).
        const jwks = this.current ? client.getJwksCache(this.current.config) : undefined;
        if (jwks) client.setJwksCache(config, jwks);
        const now = Date.now();
        this.lastContact = now;
        return { config, fetchedAt: now };
      } catch (e) {
        last = e;
        if (!transportError(e) && !(e instanceof client.ClientError && e.code === "OAUTH_RESPONSE_IS_NOT_CONFORM")) break; // only transient failures are retried
      }
    }
    throw last;
  }

  /**
   * The IdP's configuration, (re)discovered when missing, older than its TTL, or when the IdP has
   * not been heard from for the probe interval and a person is about to be sent there.
   */
  private async config(probe: boolean, warmUp = false): Promise<client.Configuration> {
    const now = Date.now();
    const c = this.current;
    const s = this.settings;
    const needed =
      c === null ||
      now - c.fetchedAt >= s.metadataTtlSeconds * 1000 ||
      (probe && (now - this.lastContact >= s.probeIntervalSeconds * 1000 || this.credentials.state === "refused"));
    if (!needed) return c.config;
    this.inflight ??= this.fetchDiscovery()
      .then(async (d) => {
        // The client's credentials, whenever they are not known to work or the metadata is renewed.
        if (this.credentials.state !== "accepted" || c === null || now - c.fetchedAt >= s.metadataTtlSeconds * 1000) await this.checkCredentials(d.config);
        return d;
      })
      .finally(() => (this.inflight = null));
    try {
      this.current = await this.inflight;
    } catch (e) {
      this.discoveryFailedAt = Date.now();
      const transport = transportError(e);
      if (warmUp) {
        // Nobody is signing in yet: a line for the operator and readiness, no reference, no page.
        const detail = transport ?? (e instanceof Error ? e.message : String(e));
        this.lastError = { at: new Date().toISOString(), reason: transport ? "idp_unreachable" : "idp_metadata_invalid", detail };
        this.log(JSON.stringify({ level: "warn", event: "upstream.discovery_failed", idp: s.issuer, reason: this.lastError.reason, detail }));
        throw e;
      }
      throw this.fail("discovery", transport ? "idp_unreachable" : "idp_metadata_invalid", transport ? { transport } : { message: e instanceof Error ? e.message : String(e), ...(responseStatus(e) ? { status: responseStatus(e) } : {}) }, e);
    }
    // Never send a person to sign in when the IdP will refuse the portal at the end (a wrong client id or secret).
    if (probe && this.credentials.state === "refused") throw this.fail("preflight", "client_credentials_refused", this.credentials.details, null);
    return this.current.config;
  }

  /**
   * Ask the token endpoint to redeem a code that does not exist, authenticating as the portal:
   * invalid_grant (or any error about the code) means the IdP accepted the client; invalid_client,
   * unauthorized_client or a 401/403 without an OAuth error means it did not. Nothing is logged in
   * the log but the outcome, never the credentials.
   */
  private async checkCredentials(config: client.Configuration): Promise<void> {
    try {
      await client.genericGrantRequest(config, "authorization_code", {
        code: `certbridge-credential-check-${crypto.randomBytes(8).toString("hex")}`,
        redirect_uri: this.settings.redirectUri,
        code_verifier: client.randomPKCECodeVerifier(),
      });
      this.credentials = { state: "accepted", details: {} }; // an IdP that accepts any code: nothing to learn
    } catch (e) {
      const transport = transportError(e);
      if (transport) return; // unknown: the IdP went away between discovery and now
      const c = classifyTokenError(e, this.settings.clockToleranceSeconds);
      const was = this.credentials.state;
      this.credentials = c.reason === "token_client_auth_refused" ? { state: "refused", details: c.details } : { state: "accepted", details: {} };
      if (this.credentials.state === "refused" && was !== "refused") {
        this.lastError = { at: new Date().toISOString(), reason: "client_credentials_refused", detail: c.details.error_description ?? c.details.error ?? c.details.message ?? "" };
        this.log(JSON.stringify({ level: "error", event: "upstream.client_auth_refused", idp: this.settings.issuer, clientId: this.settings.clientId, tokenAuth: this.settings.tokenAuth, ...c.details }));
      }
    }
  }

  /** Fetch discovery at start-up (readiness), without failing anything. */
  warmUp(): void {
    void this.config(false, true).catch(() => {});
  }

  private fail(stage: UpstreamStage, reason: UpstreamReason, details: FailureDetails, cause: unknown): UpstreamFailure {
    const ref = newRef();
    const a = advice(reason, this.settings.issuer, ref);
    const f = new UpstreamFailure(stage, reason, ref, details, a.code, a.message, a.status, cause);
    this.lastError = { at: new Date().toISOString(), reason, detail: details.error_description ?? details.error ?? details.transport ?? details.message ?? "" };
    // One JSON line for the operator: the IdP's words or the transport error, never secrets, codes or tokens.
    this.log(JSON.stringify({ level: "error", event: "upstream.login_failed", ref, stage, reason, idp: this.settings.issuer, clientId: this.settings.clientId, tokenAuth: this.settings.tokenAuth, ...details }));
    return f;
  }

  /** A failure found by the caller (an unreadable login cookie): logged the same way. */
  callbackFailure(reason: "login_session_lost", message: string, cause: unknown): UpstreamFailure {
    return this.fail("callback", reason, { message }, cause);
  }

  /**
   * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where to end the person's
   * session at the upstream IdP, coming back to `postLogoutRedirectUri`; null when the IdP
   * offers no end_session_endpoint.
   */
  async endSessionUrl(postLogoutRedirectUri: string): Promise<string | null> {
    const config = await this.config(false);
    if (!config.serverMetadata().end_session_endpoint) return null;
    return client.buildEndSessionUrl(config, { client_id: this.settings.clientId, post_logout_redirect_uri: postLogoutRedirectUri, state: "upstream" }).href;
  }

  /** Where to send the browser, and the state to keep until it comes back. */
  async startLogin(uid: string, hints: { idpHint?: string; loginHint?: string }, returnTo?: string): Promise<{ url: string; state: LoginState }> {
    const config = await this.config(true);
    const verifier = client.randomPKCECodeVerifier();
    const state: LoginState = { uid, verifier, state: client.randomState(), nonce: client.randomNonce(), ...(returnTo !== undefined ? { returnTo } : {}) };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state: state.state,
      nonce: state.nonce,
      ...(this.settings.maxAgeSeconds !== null ? { max_age: String(this.settings.maxAgeSeconds) } : {}),
      // AARC-G049 IdP hinting, as the MasterPortal passes it on.
      ...(hints.idpHint ? { idp_hint: hints.idpHint } : {}),
      ...(hints.loginHint ? { login_hint: hints.loginHint } : {}),
    });
    return { url: url.href, state };
  }

  /** Complete the code flow; returns the verified claims (iss and sub always present). */
  async finishLogin(callbackUrl: URL, state: LoginState): Promise<Record<string, unknown> & { iss: string; sub: string }> {
    const config = await this.config(false);
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: state.verifier,
        expectedState: state.state,
        expectedNonce: state.nonce,
        idTokenExpected: true,
        ...(this.settings.maxAgeSeconds !== null ? { maxAge: this.settings.maxAgeSeconds } : {}),
      });
    } catch (e) {
      const c = classifyTokenError(e, this.settings.clockToleranceSeconds);
      throw this.fail(c.stage, c.reason, c.details, e);
    }
    this.lastContact = Date.now();
    const idClaims = tokens.claims()!;
    let userinfo: Record<string, unknown> = {};
    if (config.serverMetadata().userinfo_endpoint) {
      try {
        userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      } catch (e) {
        // Entitlements (VO membership, admin rights) come from userinfo at Check-in: never carry on without them.
        const transport = transportError(e);
        if (transport) throw this.fail("userinfo", "idp_unreachable", { transport }, e);
        if (e instanceof client.ClientError && e.code === "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED") throw this.fail("userinfo", "userinfo_subject", { message: e.message }, e);
        const details: FailureDetails =
          e instanceof client.ResponseBodyError || e instanceof client.WWWAuthenticateChallengeError
            ? { status: e.status, ...(e instanceof client.ResponseBodyError ? { error: e.error, ...(e.error_description ? { error_description: e.error_description } : {}) } : { error: e.cause[0]?.parameters.error ?? e.cause[0]?.scheme }) }
            : { message: e instanceof Error ? e.message : String(e), ...(responseStatus(e) ? { status: responseStatus(e) } : {}) };
        throw this.fail("userinfo", "userinfo_error", details, e);
      }
    }
    const { aud: _aud, exp: _exp, iat: _iat, nonce: _nonce, at_hash: _ah, c_hash: _ch, azp: _azp, auth_time: _at, sid: _sid, ...claims } = { ...userinfo, ...idClaims };
    return { ...claims, iss: idClaims.iss, sub: idClaims.sub };
  }
}
