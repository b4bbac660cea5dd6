/**
 * /getproxy: a gateway presents a user's access token and receives a proxy.
 * Compatible with what MasterPortal clients send (GET or POST, `access_token`
 * parameter or `Authorization: Bearer`, `proxylifetime` in seconds, optional
 * `client_id`/`client_secret`, `info`), plus Certbridge's CSR mode
 * (`certreq` or `public_key`): the proxy's private key never leaves the
 * gateway. Errors are RFC 6750 / RFC 6749 style JSON.
 */
import { z } from "zod";
import { CertbridgeError, asCertbridgeError, invalidRequest } from "./errors";
import { recordAudit, type Db } from "./db";
import type { Authority, Channel } from "./authority/authority";
import type { GatewayRequester, GatewayTokenInput } from "./authority/provisioners/gatewayToken";
import { errorResult, type HttpRequestParts, type HttpResult } from "./http";
import { parseVomsRequests } from "./voms/proxyExtension";
import { limitedResult, type RateLimiter } from "./limits/limiter";
import { metrics } from "./metrics";
import { formatRfc4514, parseSlashDn } from "./pki/dn";
import { parseBasicCredentials, type BasicCredentials } from "./basicAuth";

const rfc2253 = (slash: string) => formatRfc4514(parseSlashDn(slash));

export type { HttpRequestParts, HttpResult } from "./http";

const KNOWN = ["access_token", "proxylifetime", "certreq", "public_key", "client_id", "client_secret", "info", "voname", "vomses", "fqans"] as const;

const params = z.object({
  access_token: z.string().min(1).optional(),
  proxylifetime: z
    .string()
    .regex(/^\d{1,9}$/, "proxylifetime must be a whole number of seconds")
    .transform(Number)
    .optional(),
  certreq: z.string().min(1).optional(),
  public_key: z.string().min(1).optional(),
  client_id: z.string().min(1).optional(),
  client_secret: z.string().min(1).optional(),
  info: z.string().optional(),
  voname: z.string().optional(),
  vomses: z.string().optional(),
  fqans: z.string().optional(),
});

/** Parameters that may repeat: one VO (or FQAN) each, as voms-proxy-init --voms does. */
const REPEATABLE = new Set(["voname", "fqans"]);

function parseParams(list: [string, string][]) {
  const seen = new Map<string, string>();
  for (const [k, v] of list) {
    if (!(KNOWN as readonly string[]).includes(k)) continue; // unknown parameters are ignored (RFC 6749 §3.1)
    if (REPEATABLE.has(k)) {
      seen.set(k, seen.has(k) ? `${seen.get(k)},${v}` : v);
      continue;
    }
    if (seen.has(k)) throw invalidRequest(`parameter ${k} was given more than once`);
    seen.set(k, v);
  }
  const r = params.safeParse(Object.fromEntries(seen));
  if (!r.success) throw invalidRequest(r.error.issues.map((i) => i.message).join("; "));
  if (r.data.certreq && r.data.public_key) throw invalidRequest("give either certreq or public_key, not both");
  return r.data;
}

/**
 * HTTP Basic client authentication on /getproxy (as the MasterPortal accepts it): the client's id
 * and secret; null when the header is not Basic (lib/basicAuth.ts decodes).
 */
export function basicClientCredentials(authorization: string | null): BasicCredentials | null {
  const basic = parseBasicCredentials(authorization);
  if (basic === "malformed" || basic?.clientId === "") throw invalidRequest("the Basic Authorization header must hold client_id:client_secret, each form-urlencoded");
  return basic;
}

export function bearerToken(authorization: string | null, param: string | undefined): string {
  let header: string | undefined;
  if (authorization) {
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
    if (!m) throw invalidRequest("the Authorization header must be a single Bearer token");
    header = m[1];
  }
  if (header && param) throw invalidRequest("the access token was given both in the header and as a parameter");
  const token = header ?? param;
  if (!token) throw new CertbridgeError("invalid_token", "an access token is required (Authorization: Bearer, or access_token)");
  return token;
}


export { GetProxyCaches, verifyProxyBearer } from "./authority/provisioners/gatewayToken";

/** HTTP in, HTTP out: the gateway-token provisioner authorizes, the authority issues. */
export async function getProxy(authority: Authority, channel: Channel<GatewayTokenInput, GatewayRequester>, db: Db, req: HttpRequestParts, limiter?: RateLimiter): Promise<HttpResult> {
  /** The token's client, once known: named in the audit record of a refusal. */
  const seen = { clientId: null as string | null };
  const ip = req.ip ?? "unknown";
  // Per IP: a lockout after too many refusals (random tokens, wrong secrets), and a request rate.
  const refused = limiter && (await limiter.firstRefusal([() => limiter.blocked("getproxy.ip_fail", ip), () => limiter.hit("getproxy.ip", ip)]));
  if (refused) return limitedResult(refused);
  try {
    const p = parseParams(req.params);
    // The client may authenticate with Basic (the token then comes as the access_token parameter) or
    // with client_id/client_secret parameters; never both ways at once.
    const basic = basicClientCredentials(req.authorization);
    if (basic && (p.client_id !== undefined || p.client_secret !== undefined)) throw invalidRequest("client credentials were given both in the Authorization header and as parameters");
    if (basic && !p.access_token) throw new CertbridgeError("invalid_token", "with Basic client authentication the access token goes in the access_token parameter");
    const requester = await channel.authorize({
      token: basic ? p.access_token! : bearerToken(req.authorization, p.access_token),
      clientId: basic?.clientId ?? p.client_id,
      clientSecret: basic?.clientSecret ?? p.client_secret,
      requireSecret: basic !== null,
      ip: req.ip,
      seen,
    });
    const perClient = limiter && (await limiter.hit("getproxy.client", requester.client.id));
    if (perClient && !perClient.allowed) return limitedResult(perClient);
    // voname=vo[:fqan] (repeatable, or comma-separated); fqans=/vo/group/Role=r picks within a VO.
    // vomses (the MasterPortal's server line) is accepted and ignored: the portal is its own AA.
    const voms = parseVomsRequests([
      ...(p.voname ? [p.voname] : []),
      ...(p.fqans ?? "").split(",").filter(Boolean).map((f) => `${f.split("/")[1] ?? ""}:${f}`),
    ]);
    if (p.info !== undefined) {
      // The MasterPortal's INFO fields (seconds). Its timeleft is what is left of the long-lived
      // credential it stores; Certbridge renews the user certificate on demand, so what is left is
      // the longest proxy it would issue now, and no lifetime is refused for being close to it
      // (tolerance 0).
      const max = authority.maxLifetimeSeconds(requester.client.maxLifetimeSeconds);
      return json(200, {
        username: requester.identity.subject,
        timeleft: max,
        tolerance: 0,
        max_proxy_lifetime: max,
        default_proxy_lifetime: Math.min(authority.deps.config.proxy.defaultLifetimeSeconds, max),
        subject_rfc2253: rfc2253(requester.identity.subject),
        client_id: requester.client.id,
        token_expires_in: Math.max(0, requester.tokenExpiresAt - Math.floor(Date.now() / 1000)),
      });
    }
    const proxy = await authority.issueProxy(requester, { publicKey: p.certreq ?? p.public_key, lifetimeSeconds: p.proxylifetime, voms });
    return {
      status: 200,
      headers: {
        "content-type": "application/x-pem-file",
        "cache-control": "no-store",
        "x-proxy-serial": String(proxy.serial),
        "x-proxy-lifetime": String(proxy.lifetime.seconds),
        "x-proxy-lifetime-clamped": String(proxy.lifetime.clamped),
        "x-proxy-not-after": proxy.notAfter.toISOString(),
        // e.g. VOMS attributes that end before the proxy (the CLI prints it; gateways may show it).
        ...(proxy.warnings.length ? { "x-certbridge-warning": proxy.warnings.join("; ") } : {}),
      },
      body: proxy.pem,
    };
  } catch (e) {
    const err = asCertbridgeError(e);
    if (err.code === "invalid_token" || err.code === "insufficient_scope" || err.status === 401) {
      // Refusals before issuance are audited here; the authority audits its own.
      const { clientId } = seen;
      metrics.refusals.inc({ channel: "gateway-token", reason: err.code });
      const failures = limiter ? await limiter.fail("getproxy.ip_fail", ip) : 1;
      // A stranger's refusals (a random token) are counted per IP and window (RateCounter), not each
      // audited: the first of a window is, and the one that reaches the lockout. A known client's always are.
      const lockout = limiter?.rules["getproxy.ip_fail"].limit ?? 0;
      if (clientId || failures <= 1 || failures === lockout) {
        const aggregate = clientId ? {} : { anonymousRefusalsInWindow: failures, countedNotAudited: "later anonymous refusals from this IP in this window are counted in RateCounter getproxy.ip_fail" };
        await recordAudit(db, { action: "proxy.refuse", actor: clientId ? `client:${clientId}` : "anonymous", outcome: "refused", clientId, ip: req.ip, details: { error: err.code, reason: err.message, ...aggregate } }).catch(() => {});
      }
    }
    return errorResult(err, "json");
  }
}

function json(status: number, body: unknown): HttpResult {
  return { status, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(body) };
}
