/**
 * Interactions of the OpenID provider with people (oidc-provider's interaction API): the login
 * page and the hop to the upstream IdP, the return from it, and the consent screen's decision.
 * Every interaction ends the same way, in finishInteraction: the result is stored on the
 * interaction and the browser resumes the authorization (or device) request where it left off.
 * The console sign-in uses the same upstream login and ends in a console session instead.
 */
import { IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import type Provider from "oidc-provider";
import type { InteractionResults } from "oidc-provider";
import type { Certbridge } from "../certbridge";
import { CertbridgeError, invalidRequest } from "../errors";
import { displayClientName, findClient } from "./clients";
import { findIdentity, recordAudit, withdrawOtherGrants } from "../db";
import { listGrantsOfAccount } from "./grants";
import { ensureIdentity } from "../issuance/identity";
import { isUpstreamFailure, loginState, type LoginState, type Upstream } from "../upstream";
import { openSealedKey, sealKey } from "../pki/seal";
import type { VerifiedClaims } from "../identity/subject";
import { formatDuration } from "../duration";
import { LOGIN_COOKIE, type CookieSpec } from "../http";
import type { ConsoleGate } from "../console/gate";
import { safeReturnPath, SESSION_COOKIE } from "../console/session";
import { formatUserCode } from "./deviceFlow";
import { displayText } from "../displayText";

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
      /**
       * With offline_access: when the consent itself ends (the consent TTL), and how long a
       * refresh token lasts unused (each use rotates it, up to the consent's end).
       */
      refreshUntil: string | null;
      refreshTokenIdle: string | null;
      /** The person's earlier consent for this client, which this one replaces. */
      replaces: { grantedAt: string | null; scopes: string[]; refreshTokens: number } | null;
      person: { name: string; subject: string };
    };

export interface Redirect {
  location: string;
  cookies?: CookieSpec[];
}

/** The interaction's stored state expired (Interaction TTL) or never existed. */
const expired = () => new CertbridgeError("invalid_request", "The sign-in took too long and the gateway's request expired. Start again from the gateway.");

/**
 * The one way an interaction ends (as oidc-provider's interactionResult, without needing the
 * interaction cookie: the return from the upstream IdP arrives on another path). With `merge`,
 * earlier results (the login) are kept beside the new one (the consent).
 */
export async function finishInteraction(provider: Provider, uid: string, result: InteractionResults, opts: { merge: boolean }): Promise<{ returnTo: string; clientId: string }> {
  const interaction = await provider.Interaction.find(uid);
  if (!interaction) throw expired();
  interaction.result = opts.merge && !("error" in result) ? { ...interaction.lastSubmission, ...result } : result;
  await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
  return { returnTo: interaction.returnTo, clientId: String(interaction.params.client_id) };
}

/** A Node request/response pair carrying only a cookie header, for oidc-provider's interaction helpers. */
function nodeReqRes(cookie: string, url = "/") {
  const req = new IncomingMessage(new Socket());
  req.method = "GET";
  req.url = url;
  req.headers = { cookie, host: "localhost" };
  return { req, res: new ServerResponse(req) };
}

export class Interactions {
  constructor(
    private readonly cb: Certbridge,
    private readonly provider: Provider,
    private readonly upstream: Upstream,
    private readonly gate: ConsoleGate,
    private readonly devIdpEnabled: boolean,
  ) {}

  private get secureCookies() {
    return this.cb.config.publicUrl.startsWith("https:");
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

  async view(cookie: string, uid: string): Promise<InteractionView> {
    const { details } = await this.details(cookie, uid);
    const clientId = String(details.params.client_id);
    const client = await findClient(this.cb.db, clientId);
    if (!client) throw invalidRequest("unknown client");
    const terminal = await this.terminalLogin(details.deviceCode);
    if (details.prompt.name === "login") {
      return { kind: "login", uid, clientName: displayText(displayClientName(client)), idpName: this.devIdpEnabled ? "the development IdP" : new URL(this.upstream.settings.issuer).host, terminal };
    }
    const identity = details.session?.accountId ? await findIdentity(this.cb.db, details.session.accountId) : null;
    if (!identity) throw invalidRequest("no signed-in person for this request");
    const scopes = String(details.params.scope ?? "").split(" ").filter(Boolean);
    const offline = scopes.includes("offline_access");
    const maxSeconds = this.cb.authority.maxLifetimeSeconds(client.maxProxyLifetime);
    const { consentTtlSeconds, refreshTokenTtlSeconds } = this.cb.config.portal;
    const earlier = (await listGrantsOfAccount(this.cb.db, identity.id, this.cb.clock()))
      .filter((g) => g.clientId === client.id && g.grantId !== details.grantId)
      .sort((a, b) => (b.grantedAt?.getTime() ?? 0) - (a.grantedAt?.getTime() ?? 0))[0];
    return {
      kind: "consent",
      terminal,
      uid,
      client: { id: client.id, name: displayText(displayClientName(client)), homepage: client.homepage },
      scopes,
      proxyAccess: scopes.includes("proxy") || scopes.includes("edu.uiuc.ncsa.myproxy.getcert"),
      maxProxyLifetime: formatDuration(maxSeconds),
      offline,
      // The consent's end (what renewal-info reports): refresh tokens rotate on each use, so
      // renewal goes on until then as long as no token lies unused longer than its own TTL.
      refreshUntil: offline ? new Date(this.cb.clock().getTime() + consentTtlSeconds * 1000).toISOString() : null,
      refreshTokenIdle: offline && refreshTokenTtlSeconds < consentTtlSeconds ? formatDuration(refreshTokenTtlSeconds) : null,
      replaces: earlier ? { grantedAt: earlier.grantedAt?.toISOString() ?? null, scopes: earlier.scopes, refreshTokens: earlier.refreshTokens } : null,
      person: { name: displayText(identity.displayName), subject: identity.subject },
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
    const { url, state } = await this.audited(String(details.params.client_id), null, () =>
      this.upstream.startLogin(uid, { idpHint: hint("idp_hint") ?? hint("idphint"), loginHint: hint("login_hint") }),
    );
    return { location: url, cookies: [this.loginCookie(state)] };
  }

  /**
   * Run a step of the upstream login; when the upstream fails, the failure (already logged by
   * lib/upstream.ts with its reference) is also an audit event, `login.fail`, before it becomes a page.
   */
  private async audited<T>(clientId: string | null | (() => Promise<string | null>), ip: string | null, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      if (isUpstreamFailure(e)) {
        if (typeof clientId === "function") clientId = await clientId().catch(() => null);
        await recordAudit(this.cb.db, {
          action: "login.fail",
          actor: "anonymous",
          outcome: "failure",
          clientId,
          ip,
          details: { reason: e.reason, stage: e.stage, idp: this.upstream.settings.issuer, ref: e.ref, ...e.details },
        }).catch((err: unknown) => console.error("certbridge: could not record login.fail:", err));
      }
      throw e;
    }
  }

  private loginCookie(state: LoginState): CookieSpec {
    const value = sealKey(this.cb.config.kek, Buffer.from(JSON.stringify(state)), LOGIN_COOKIE_CONTEXT);
    return { name: LOGIN_COOKIE, value, path: "/interaction", maxAge: 600, secure: this.secureCookies };
  }

  /** Sign in to the account or admin console (no gateway involved): the same upstream login, returning to `next`. */
  async startConsoleLogin(next: string | null): Promise<Redirect> {
    const { url, state } = await this.audited(null, null, () => this.upstream.startLogin("console", {}, safeReturnPath(next)));
    return { location: url, cookies: [this.loginCookie(state)] };
  }

  /**
   * End the console session — server-side too (the cookie replayed later is refused: ConsoleGate
   * keeps the ended session ids) — and clear the cookie; the signed-out page offers to end the
   * upstream IdP's session too.
   */
  async logout(cookieHeader: string): Promise<Redirect> {
    await this.gate.endSession(cookieHeader);
    return { location: "/signed-out", cookies: [{ name: SESSION_COOKIE, value: "", path: "/", maxAge: 0, secure: this.secureCookies }] };
  }

  /** For the signed-out page: the IdP's name and where to end its session (RP-initiated logout), when it can. */
  async signedOut(): Promise<{ idpName: string; endSessionUrl: string | null }> {
    const idpName = this.devIdpEnabled ? "the development IdP" : new URL(this.upstream.settings.issuer).host;
    const endSessionUrl = await this.upstream.endSessionUrl(`${this.cb.config.publicUrl}/signed-out`).catch(() => null);
    return { idpName, endSessionUrl };
  }

  /** Back from the IdP: verify, record the person, and resume the gateway's authorization request. */
  async finishLogin(callbackUrl: URL, sealedState: string | undefined, ip: string | null): Promise<Redirect> {
    let parsed: LoginState | null = null;
    // The gateway whose sign-in failed, from its pending request (none for a console sign-in).
    const gateway = async () => {
      if (!parsed || parsed.returnTo !== undefined) return null;
      const interaction = await this.provider.Interaction.find(parsed.uid);
      return interaction ? String(interaction.params.client_id) : null;
    };
    const done = await this.audited(gateway, ip, async () => {
      let state: LoginState;
      try {
        state = loginState.parse(JSON.parse(Buffer.from(openSealedKey(this.cb.config.kek, sealedState ?? "", LOGIN_COOKIE_CONTEXT)).toString("utf8")));
      } catch (e) {
        throw this.upstream.callbackFailure("login_session_lost", sealedState ? "login cookie could not be opened" : "no login cookie", e);
      }
      parsed = state;
      return { state, claims: (await this.upstream.finishLogin(callbackUrl, state)) as VerifiedClaims };
    });
    return this.signedIn(done.state, done.claims, ip);
  }

  /** The upstream login succeeded: record the person, then a console session or the gateway's request. */
  private async signedIn(state: LoginState, claims: VerifiedClaims, ip: string | null): Promise<Redirect> {
    const identity = await ensureIdentity({ db: this.cb.db, clock: this.cb.clock, policy: this.cb.config.subject, identities: this.cb.identities }, claims, "login");
    const clearLogin: CookieSpec = { name: LOGIN_COOKIE, value: "", path: "/interaction", maxAge: 0, secure: this.secureCookies };
    if (state.returnTo !== undefined) {
      await recordAudit(this.cb.db, { action: "console.login", actor: `user:${identity.id}`, identityId: identity.id, ip, details: { issuer: claims.iss } });
      return { location: safeReturnPath(state.returnTo), cookies: [clearLogin, { ...this.gate.startSession(identity.id), path: "/", secure: this.secureCookies }] };
    }
    const { returnTo, clientId } = await finishInteraction(this.provider, state.uid, { login: { accountId: identity.id } }, { merge: false });
    await recordAudit(this.cb.db, { action: "login", actor: `user:${identity.id}`, identityId: identity.id, clientId, ip, details: { issuer: claims.iss } });
    return { location: returnTo, cookies: [clearLogin] };
  }

  /** Allow or deny at the consent screen; returns where the browser continues. */
  async decideConsent(cookie: string, uid: string, allow: boolean, ip: string | null): Promise<Redirect> {
    const { details } = await this.details(cookie, uid);
    if (details.prompt.name !== "consent") throw invalidRequest("this request is not waiting for consent");
    const accountId = details.session!.accountId;
    const clientId = String(details.params.client_id);
    if (!allow) {
      await recordAudit(this.cb.db, { action: "consent.deny", actor: `user:${accountId}`, identityId: accountId, clientId, ip });
      const { returnTo } = await finishInteraction(this.provider, uid, { error: "access_denied", error_description: "the user denied the request" }, { merge: false });
      return { location: returnTo };
    }
    const grant = details.grantId ? ((await this.provider.Grant.find(details.grantId)) ?? new this.provider.Grant({ accountId, clientId })) : new this.provider.Grant({ accountId, clientId });
    const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(" "));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(" "));
    const grantId = await grant.save();
    // one consent per person and client: this one replaces any earlier one (and its tokens)
    const replaced = await withdrawOtherGrants(this.cb.db, accountId, clientId, grantId);
    await recordAudit(this.cb.db, { action: "consent.grant", actor: `user:${accountId}`, identityId: accountId, clientId, ip, details: { scopes: d.missingOIDCScope ?? [], grantId, ...(replaced.length ? { replaced } : {}) } });
    const { returnTo } = await finishInteraction(this.provider, uid, { consent: { grantId } }, { merge: true });
    return { location: returnTo };
  }
}
