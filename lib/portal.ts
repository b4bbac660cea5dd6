/**
 * The portal's web-facing operations, built once by the server entry around
 * the composition root (Certbridge + the OpenID provider + the upstream RP).
 * Next's pages and route handlers reach it through lib/runtime.ts and only
 * use its named services: they never import the database, oidc-provider or keys.
 */
import type Provider from "oidc-provider";
import type { Certbridge } from "./certbridge";
import { CertbridgeError } from "./errors";
import { DEFAULT_TUNING, Upstream } from "./upstream";
import { bearerToken, getProxy, GetProxyCaches, verifyProxyBearer } from "./getproxy";
import type { HttpRequestParts, HttpResult } from "./http";
import type { Crl } from "./ca/revocation";
import { gatewayToken, type GatewayRequester, type GatewayTokenInput } from "./authority/provisioners/gatewayToken";
import type { Channel } from "./authority/authority";
import { createConsoles, type Consoles } from "./console";
import { registerSshKey, removeSshKey, sshKeysOf } from "./ssh/registry";
import { masterPortalSshKeys } from "./ssh/masterPortalKeys";
import { Interactions } from "./oidc/interactions";
import { lscFile, vomsesLine } from "./voms/vos";
import { renewalInfoHttp } from "./renewal";
import { RateLimiter, limitedResult } from "./limits/limiter";

export type { InteractionView, Redirect, TerminalLogin } from "./oidc/interactions";

/**
 * What app/ may use: named services and plain values. The composition (Certbridge: database,
 * keys, configuration) and the OpenID provider stay private to lib/.
 */
export class Portal {
  private readonly upstream: Upstream;
  readonly console: Consoles;

  constructor(
    private readonly cb: Certbridge,
    private readonly provider: Provider,
    upstream: { issuer: string; clientId: string; clientSecret: string | null; scopes: string },
    readonly devIdpEnabled: boolean,
  ) {
    // The embedded development IdP is this process: its client uses the defaults, whatever the real IdP needs.
    const tuning = devIdpEnabled ? DEFAULT_TUNING : cb.config.upstreamTuning;
    this.upstream = new Upstream({ ...tuning, ...upstream, redirectUri: `${cb.config.publicUrl}/interaction/callback` });
    if (!devIdpEnabled) this.upstream.warmUp();
    this.console = createConsoles(cb);
    this.gatewayToken = cb.authority.register(gatewayToken({ db: cb.db, kek: cb.config.kek, provider, caches: this.getProxyCaches }));
    this.interactions = new Interactions(cb, provider, this.upstream, this.console.gate, devIdpEnabled);
    this.limiter = new RateLimiter(cb.db, cb.config.operations.limits, cb.clock);
  }

  /** Rate limits and lockouts, counted in the database so every instance shares them (lib/limits/). */
  readonly limiter: RateLimiter;

  /** The portal's public URL (the OIDC issuer). */
  get publicUrl(): string {
    return this.cb.config.publicUrl;
  }

  /** What the home page shows. */
  about() {
    return { publicUrl: this.cb.config.publicUrl, vos: [...this.cb.vos.keys()] };
  }

  /**
   * Liveness facts for /api/health, and readiness: `upstream` says whether the IdP's metadata is
   * fresh, stale or missing, when the IdP was last heard from and its last failure.
   */
  health() {
    return { ok: true, issuer: this.cb.config.portal.issuer, ca: this.cb.ca.subject, devIdp: this.devIdpEnabled, upstream: this.upstream.status() };
  }

  /** The key set to register at the IdP for private_key_jwt (GET /upstream/jwks.json); null with a client secret. */
  upstreamJwks(): { keys: object[] } | null {
    return this.upstream.jwks();
  }

  get secureCookies() {
    return this.cb.config.publicUrl.startsWith("https:");
  }

  private readonly getProxyCaches = new GetProxyCaches();
  /** /getproxy's channel: the gateway-token provisioner, registered with the authority. */
  private readonly gatewayToken: Channel<GatewayTokenInput, GatewayRequester>;

  getProxy(req: HttpRequestParts): Promise<HttpResult> {
    return getProxy(this.cb.authority, this.gatewayToken, this.cb.db, req, this.limiter);
  }

  /** POST /api/renewal-info: until when a refresh token can keep renewing proxies (lib/renewal.ts). */
  async renewalInfo(req: HttpRequestParts): Promise<HttpResult> {
    const ip = req.ip ?? "unknown";
    const refused = await this.limiter.firstRefusal([() => this.limiter.blocked("renewal.ip_fail", ip), () => this.limiter.hit("renewal.ip", ip)]);
    if (refused) return limitedResult(refused);
    const r = await renewalInfoHttp(this.cb, this.provider, req);
    // Wrong tokens and wrong client secrets count towards the lockout.
    if (r.status === 400 || r.status === 401) await this.limiter.fail("renewal.ip_fail", ip);
    return r;
  }

  /** Sign-in, consent and the return from the upstream IdP (lib/oidc/interactions.ts). */
  readonly interactions: Interactions;

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

  /** The SSH-key API for gateways (/api/ssh-keys): the person and client come from the bearer token. */
  readonly sshKeysApi = {
    list: async (authorization: string | null) => {
      const who = await this.personFromAccessToken(authorization);
      return sshKeysOf(this.cb.db, who.identityId);
    },
    /** `readBody` runs after the token is checked: a stranger learns nothing about the body's rules. */
    add: async (authorization: string | null, readBody: () => Promise<unknown>, ip: string | null) => {
      const who = await this.personFromAccessToken(authorization);
      return registerSshKey(this.cb.db, who.identityId, await readBody(), { actor: `client:${who.clientId}`, ip, clientId: who.clientId });
    },
    remove: async (authorization: string | null, id: string, ip: string | null) => {
      const who = await this.personFromAccessToken(authorization);
      await removeSshKey(this.cb.db, who.identityId, id, { actor: `client:${who.clientId}`, ip, clientId: who.clientId });
    },
    /** The MasterPortal's /sshkey (lib/ssh/masterPortalKeys.ts): the token as a header or the access_token parameter. */
    masterPortal: (req: HttpRequestParts): Promise<HttpResult> =>
      masterPortalSshKeys(
        {
          db: this.cb.db,
          authenticate: async (authorization, param) => {
            const { at, client } = await verifyProxyBearer(this.cb.db, this.provider, bearerToken(authorization, param));
            if (!at.accountId) throw new CertbridgeError("invalid_token", "the access token names no person");
            return { identityId: at.accountId, clientId: client.id };
          },
        },
        req,
      ),
  };

  /** Relying-party trust material per VO: "<vo>.lsc" or "<vo>.vomses"; null when unknown. */
  vomsFile(name: string): string | null {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\.(lsc|vomses)$/.exec(name);
    const vo = m ? this.cb.vos.get(m[1]!) : undefined;
    if (!m || !vo) return null;
    return m[2] === "lsc" ? lscFile(vo) : vomsesLine(vo);
  }

  /**
   * GET /ca/<hash>.<suffix>: the CA's files of the trust directory (lib/ca/trustBundle.ts) under
   * either subject hash, as the IGTF distribution publishes them next to its tarballs, so a site
   * can fetch `<hash>.info` (fetch-crl reads crlurl from it), `.crl_url`, `.signing_policy`,
   * `.namespaces`, `.0` and the current CRL `.r0` one by one. null: no such file.
   */
  async trustFile(name: string): Promise<{ body: string; contentType: string; cacheControl: string } | null> {
    const m = /^([0-9a-f]{8})\.(0|r0|info|crl_url|signing_policy|namespaces)$/.exec(name);
    if (!m) return null;
    const { hash, hashOld, content } = await this.cb.authority.trustDirectoryContents();
    if (m[1] !== hash && m[1] !== hashOld) return null;
    const body = content[name];
    if (body === undefined) return null;
    const pem = m[2] === "0" || m[2] === "r0";
    // The CRL changes on every revocation: revalidate each time, like /ca/crl.der. The rest changes with the CA.
    return { body, contentType: pem ? "application/x-pem-file" : "text/plain; charset=utf-8", cacheControl: m[2] === "r0" ? "public, no-cache" : "public, max-age=3600" };
  }

  caCertificatePem(): string {
    return this.cb.ca.certPem;
  }

  /** A refresh of a CRL past its nextUpdate, shared by the requests that find it so (the timer normally prevents that). */
  private crlRefresh: Promise<Crl | null> | null = null;

  /**
   * GET /ca/crl.der: the stored CRL, never signed here (except the very
   * first, or a late re-signing when the schedule has not run). Caches must
   * revalidate on every use (`no-cache`, and no Expires): a revocation re-signs
   * the CRL at once, and a freshness lifetime would hide it. fetch-crl, for
   * one, serves a site its cached CRL for as long as the headers allow (up to
   * 4 days). Revalidation by ETag gets a 304.
   */
  async crl(ifNoneMatch: string | null): Promise<{ status: 200 | 304; headers: Record<string, string>; body: Uint8Array | null }> {
    let crl = await this.cb.authority.currentCrl();
    if (crl.nextUpdate.getTime() <= this.cb.clock().getTime()) {
      this.crlRefresh ??= this.cb.authority.refreshCrlIfDue().finally(() => (this.crlRefresh = null));
      crl = (await this.crlRefresh) ?? (await this.cb.authority.currentCrl());
    }
    const etag = `"crl-${this.cb.ca.fingerprint.slice(0, 16)}-${crl.number}"`;
    const headers = {
      "content-type": "application/pkix-crl",
      "cache-control": "public, no-cache",
      "last-modified": crl.issuedAt.toUTCString(),
      etag,
    };
    if (ifNoneMatch && ifNoneMatch.split(",").some((t) => t.trim() === etag || t.trim() === "*")) return { status: 304, headers, body: null };
    return { status: 200, headers, body: crl.der };
  }
}
