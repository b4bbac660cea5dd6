/**
 * The portal's web-facing operations, built once by the server entry around
 * the composition root (Certbridge + the OpenID provider + the upstream RP).
 * Next's pages and route handlers reach it through lib/runtime.ts and only
 * call these methods: they never import Prisma, oidc-provider or keys.
 */
import { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import type Provider from "oidc-provider";
import type { Certbridge } from "./certbridge";
import { CertbridgeError, invalidRequest } from "./errors";
import { findClient } from "./oidc/clients";
import { findIdentity, recordAudit } from "./db";
import { ensureIdentity } from "./issuance/identity";
import { Upstream, loginState, type LoginState } from "./upstream";
import { openSealedKey, sealKey } from "./pki/seal";
import { bearerToken, getProxy, GetProxyCaches, verifyProxyBearer, type HttpRequestParts, type HttpResult } from "./getproxy";
import { gatewayToken, type GatewayRequester, type GatewayTokenInput } from "./authority/provisioners/gatewayToken";
import type { Channel } from "./authority/authority";
import type { Crl } from "./ca/revocation";
import type { VerifiedClaims } from "./identity/subject";
import { formatDuration } from "./duration";
import { LOGIN_COOKIE, type CookieSpec } from "./http";
import { Consoles } from "./console";
import { safeReturnPath, SESSION_COOKIE } from "./console/session";
import { lscFile, vomsesLine } from "./voms/vos";
import { formatUserCode } from "./oidc/deviceFlow";
import { renewalInfoHttp } from "./renewal";

const LOGIN_COOKIE_CONTEXT = "certbridge:login-cookie";

/** A login started in a terminal (RFC 8628 device flow): the code it shows, so the person can compare. */
export interface TerminalLogin {
  userCode: string;
  /** Where the terminal's request came from, as the portal saw it. */
  ip: string | null;
}

export type InteractionView =
  | { kind: "login"; uid: string; clientName: string; idpName: string; terminal: TerminalLogin | null }
  | {
      kind: "consent";
      terminal: TerminalLogin | null;
      uid: string;
      client: { id: string; name: string; homepage: string | null };
      scopes: string[];
      proxyAccess: boolean;
      maxProxyLifetime: string;
      offline: boolean;
      refreshUntil: string | null;
      person: { name: string; subject: string };
    };

export interface Redirect {
  location: string;
  cookies?: CookieSpec[];
}

/** A Node request/response pair carrying only a cookie header, for oidc-provider's interaction helpers. */
function nodeReqRes(cookie: string, url = "/") {
  const req = new IncomingMessage(new Socket());
  req.method = "GET";
  req.url = url;
  req.headers = { cookie, host: "localhost" };
  return { req, res: new ServerResponse(req) };
}

export class Portal {
  readonly upstream: Upstream;
  readonly console: Consoles;

  constructor(
    readonly cb: Certbridge,
    readonly provider: Provider,
    upstream: { issuer: string; clientId: string; clientSecret: string; scopes: string },
    readonly devIdpEnabled: boolean,
  ) {
    this.upstream = new Upstream({ ...upstream, redirectUri: `${cb.config.publicUrl}/interaction/callback` });
    this.console = new Consoles(cb);
    this.gatewayToken = cb.authority.register(gatewayToken({ db: cb.db, kek: cb.config.kek, provider, caches: this.getProxyCaches }));
  }

  get secureCookies() {
    return this.cb.config.publicUrl.startsWith("https:");
  }

  private readonly getProxyCaches = new GetProxyCaches();
  /** /getproxy's channel: the gateway-token provisioner, registered with the authority. */
  private readonly gatewayToken: Channel<GatewayTokenInput, GatewayRequester>;

  getProxy(req: HttpRequestParts): Promise<HttpResult> {
    return getProxy(this.cb.authority, this.gatewayToken, this.cb.db, req);
  }

  /** POST /api/renewal-info: until when a refresh token can keep renewing proxies (lib/renewal.ts). */
  renewalInfo(req: HttpRequestParts): Promise<HttpResult> {
    return renewalInfoHttp(this.cb, this.provider, req);
  }

  private async details(cookie: string, uid: string) {
    const { req, res } = nodeReqRes(cookie, `/interaction/${uid}`);
    try {
      const details = await this.provider.interactionDetails(req, res);
      if (details.uid !== uid) throw new Error("interaction mismatch");
      return { details, req, res };
    } catch (e) {
      throw new CertbridgeError("invalid_request", "This sign-in session has expired or was opened in another browser. Start again from the gateway.", { cause: e, status: 400 });
    }
  }

  async interactionView(cookie: string, uid: string): Promise<InteractionView> {
    const { details } = await this.details(cookie, uid);
    const clientId = String(details.params.client_id);
    const client = await findClient(this.cb.db, clientId);
    if (!client) throw invalidRequest("unknown client");
    const terminal = await this.terminalLogin(details.deviceCode);
    if (details.prompt.name === "login") {
      return { kind: "login", uid, clientName: client.name, idpName: this.devIdpEnabled ? "the development IdP" : new URL(this.upstream.settings.issuer).host, terminal };
    }
    const identity = details.session?.accountId ? await findIdentity(this.cb.db, details.session.accountId) : null;
    if (!identity) throw invalidRequest("no signed-in person for this request");
    const scopes = String(details.params.scope ?? "").split(" ").filter(Boolean);
    const offline = scopes.includes("offline_access");
    const maxSeconds = this.cb.authority.maxLifetimeSeconds(client.maxProxyLifetime);
    return {
      kind: "consent",
      terminal,
      uid,
      client: { id: client.id, name: client.name, homepage: client.homepage },
      scopes,
      proxyAccess: scopes.includes("proxy") || scopes.includes("edu.uiuc.ncsa.myproxy.getcert"),
      maxProxyLifetime: formatDuration(maxSeconds),
      offline,
      refreshUntil: offline ? new Date(Date.now() + this.cb.config.portal.refreshTokenTtlSeconds * 1000).toISOString() : null,
      person: { name: identity.displayName, subject: identity.subject },
    };
  }

  /** The device code behind an interaction, if it is a terminal login (RFC 8628 §3.3: the user code, to compare). */
  private async terminalLogin(deviceCodeId: string | undefined): Promise<TerminalLogin | null> {
    if (!deviceCodeId) return null;
    const code = await this.provider.DeviceCode.find(deviceCodeId, { ignoreExpiration: true });
    if (!code) throw invalidRequest("this terminal login has expired: run certbridge-proxy-init again");
    const ip = code.deviceInfo && typeof code.deviceInfo.ip === "string" ? code.deviceInfo.ip : null;
    return { userCode: formatUserCode(code.userCode), ip };
  }

  /** Leave for the upstream IdP, keeping PKCE verifier, state and nonce in a sealed cookie. */
  async startLogin(cookie: string, uid: string): Promise<Redirect> {
    const { details } = await this.details(cookie, uid);
    const hint = (k: string) => (typeof details.params[k] === "string" ? (details.params[k] as string) : undefined);
    const { url, state } = await this.upstream.startLogin(uid, { idpHint: hint("idp_hint") ?? hint("idphint"), loginHint: hint("login_hint") });
    return { location: url, cookies: [this.loginCookie(state)] };
  }

  private loginCookie(state: LoginState): CookieSpec {
    const value = sealKey(this.cb.config.kek, Buffer.from(JSON.stringify(state)), LOGIN_COOKIE_CONTEXT);
    return { name: LOGIN_COOKIE, value, path: "/interaction", maxAge: 600, secure: this.secureCookies };
  }

  /** Sign in to the account or admin console (no gateway involved): the same upstream login, returning to `next`. */
  async startConsoleLogin(next: string | null): Promise<Redirect> {
    const { url, state } = await this.upstream.startLogin("console", {}, safeReturnPath(next));
    return { location: url, cookies: [this.loginCookie(state)] };
  }

  /** End the console session (the upstream IdP's own session is its business). */
  logout(): Redirect {
    return { location: "/", cookies: [{ name: SESSION_COOKIE, value: "", path: "/", maxAge: 0, secure: this.secureCookies }] };
  }

  /** Back from the IdP: verify, record the person, and resume the gateway's authorization request. */
  async finishLogin(callbackUrl: URL, sealedState: string | undefined, ip: string | null): Promise<Redirect> {
    let state;
    try {
      state = loginState.parse(JSON.parse(Buffer.from(openSealedKey(this.cb.config.kek, sealedState ?? "", LOGIN_COOKIE_CONTEXT)).toString("utf8")));
    } catch (e) {
      throw new CertbridgeError("invalid_request", "Your sign-in session has expired or cookies are blocked. Start again from the gateway.", { cause: e });
    }
    const claims = (await this.upstream.finishLogin(callbackUrl, state)) as VerifiedClaims;
    const identity = await ensureIdentity({ db: this.cb.db, clock: this.cb.clock, policy: this.cb.config.subject, identities: this.cb.identities }, claims, "login");
    const clearLogin: CookieSpec = { name: LOGIN_COOKIE, value: "", path: "/interaction", maxAge: 0, secure: this.secureCookies };
    if (state.returnTo !== undefined) {
      await recordAudit(this.cb.db, { action: "console.login", actor: `user:${identity.id}`, identityId: identity.id, ip, details: { issuer: claims.iss } });
      return { location: safeReturnPath(state.returnTo), cookies: [clearLogin, { ...this.console.startSession(identity.id), path: "/", secure: this.secureCookies }] };
    }
    const interaction = await this.provider.Interaction.find(state.uid);
    if (!interaction) throw new CertbridgeError("invalid_request", "The sign-in took too long and the gateway's request expired. Start again from the gateway.");
    await recordAudit(this.cb.db, { action: "login", actor: `user:${identity.id}`, identityId: identity.id, clientId: String(interaction.params.client_id), ip, details: { issuer: claims.iss } });
    interaction.result = { login: { accountId: identity.id } };
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return { location: interaction.returnTo, cookies: [clearLogin] };
  }

  /** Allow or deny at the consent screen; returns where the browser continues. */
  async decideConsent(cookie: string, uid: string, allow: boolean, ip: string | null): Promise<Redirect> {
    const { details, req, res } = await this.details(cookie, uid);
    if (details.prompt.name !== "consent") throw invalidRequest("this request is not waiting for consent");
    const accountId = details.session!.accountId;
    const clientId = String(details.params.client_id);
    if (!allow) {
      await recordAudit(this.cb.db, { action: "consent.deny", actor: `user:${accountId}`, identityId: accountId, clientId, ip });
      const location = await this.provider.interactionResult(req, res, { error: "access_denied", error_description: "the user denied the request" }, { mergeWithLastSubmission: false });
      return { location };
    }
    const grant = details.grantId ? ((await this.provider.Grant.find(details.grantId)) ?? new this.provider.Grant({ accountId, clientId })) : new this.provider.Grant({ accountId, clientId });
    const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(" "));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(" "));
    const grantId = await grant.save();
    await recordAudit(this.cb.db, { action: "consent.grant", actor: `user:${accountId}`, identityId: accountId, clientId, ip, details: { scopes: d.missingOIDCScope ?? [], grantId } });
    const location = await this.provider.interactionResult(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return { location };
  }

  /**
   * The person behind a gateway's bearer token (RFC 6750), for the API: the
   * token must be live, its client active, its consent standing and its scope
   * include proxy access.
   */
  async personFromAccessToken(authorization: string | null): Promise<{ identityId: string; clientId: string }> {
    const { at, client } = await verifyProxyBearer(this.cb.db, this.provider, bearerToken(authorization, undefined));
    if (!at.accountId) throw new CertbridgeError("invalid_token", "the access token names no person");
    return { identityId: at.accountId, clientId: client.id };
  }

  /** Relying-party trust material per VO: "<vo>.lsc" or "<vo>.vomses"; null when unknown. */
  vomsFile(name: string): string | null {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\.(lsc|vomses)$/.exec(name);
    const vo = m ? this.cb.vos.get(m[1]!) : undefined;
    if (!m || !vo) return null;
    return m[2] === "lsc" ? lscFile(vo) : vomsesLine(vo);
  }

  caCertificatePem(): string {
    return this.cb.ca.certPem;
  }

  /** A refresh of a CRL past its nextUpdate, shared by the requests that find it so (the timer normally prevents that). */
  private crlRefresh: Promise<Crl | null> | null = null;

  /**
   * GET /ca/crl.der: the stored CRL, never signed here (except the very
   * first, or a late re-signing when the schedule has not run). Cacheable
   * until its nextUpdate; revalidation by ETag gets a 304.
   */
  async crl(ifNoneMatch: string | null): Promise<{ status: 200 | 304; headers: Record<string, string>; body: Uint8Array | null }> {
    let crl = await this.cb.authority.currentCrl();
    if (crl.nextUpdate.getTime() <= this.cb.clock().getTime()) {
      this.crlRefresh ??= this.cb.authority.refreshCrlIfDue().finally(() => (this.crlRefresh = null));
      crl = (await this.crlRefresh) ?? (await this.cb.authority.currentCrl());
    }
    const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - this.cb.clock().getTime()) / 1000));
    const etag = `"crl-${this.cb.ca.fingerprint.slice(0, 16)}-${crl.number}"`;
    const headers = {
      "content-type": "application/pkix-crl",
      "cache-control": `public, max-age=${maxAge}`,
      "last-modified": crl.issuedAt.toUTCString(),
      expires: crl.nextUpdate.toUTCString(),
      etag,
    };
    if (ifNoneMatch && ifNoneMatch.split(",").some((t) => t.trim() === etag || t.trim() === "*")) return { status: 304, headers, body: null };
    return { status: 200, headers, body: crl.der };
  }
}
