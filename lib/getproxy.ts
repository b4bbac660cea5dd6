/**
 * /getproxy: a gateway presents a user's access token and receives a proxy.
 * Compatible with what MasterPortal clients send (GET or POST, `access_token`
 * parameter or `Authorization: Bearer`, `proxylifetime` in seconds, optional
 * `client_id`/`client_secret`, `info`), plus Certbridge's CSR mode
 * (`certreq` or `public_key`): the proxy's private key never leaves the
 * gateway. Errors are RFC 6750 / RFC 6749 style JSON.
 */
import type Provider from "oidc-provider";
import { z } from "zod";
import { CertbridgeError, asCertbridgeError, invalidClient, invalidRequest } from "./errors";
import { findIdentityClaims, recordAudit } from "./db";
import { allowedVosOf, findGatewayClientMetadata, findClient, PROXY_SCOPES } from "./oidc/clients";
import { issueProxy } from "./issuance/issueProxy";
import type { Certbridge } from "./certbridge";
import type { VerifiedClaims } from "./identity/subject";
import { TtlCache } from "./lru";
import { errorResult, type HttpRequestParts, type HttpResult } from "./http";
import { secretsEqual } from "./pki/seal";
import { parseVomsRequests, vomsExtension } from "./voms/proxyExtension";

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

const invalidToken = (message: string) => new CertbridgeError("invalid_token", message);

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

/** RFC 6750 §2: exactly one way of presenting the token. */
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


/**
 * Short-lived caches for rows read on every call. A client's suspension, or a
 * person's new claims from a fresh login, reach every instance within the TTL.
 * Tokens, grants (consent) and the user certificate (revocation) are always
 * read from the database.
 */
export class GetProxyCaches {
  readonly clients = new TtlCache<NonNullable<Awaited<ReturnType<typeof findClient>>>>(1024, 2_000);
  readonly identities = new TtlCache<NonNullable<Awaited<ReturnType<typeof findIdentityClaims>>>>(10_000, 30_000);
}

type GatewayClient = NonNullable<Awaited<ReturnType<typeof findClient>>>;

/**
 * The bearer checks every proxy-granting API shares (RFC 6750 §3.1): a live
 * access token, its client still registered and active, the person's consent
 * standing, and a proxy scope. `seen.clientId` is filled as soon as the token
 * names its client, for the audit record of a refusal.
 */
export async function verifyProxyBearer(
  cb: Certbridge,
  provider: Provider,
  token: string,
  opts: { loadClient?: (id: string) => Promise<GatewayClient | null | undefined>; seen?: { clientId: string | null } } = {},
) {
  const at = await provider.AccessToken.find(token);
  if (!at || at.isExpired) throw invalidToken("the access token is invalid, expired or revoked");
  const clientId = at.clientId ?? null;
  if (opts.seen) opts.seen.clientId = clientId;
  const client = clientId ? await (opts.loadClient ?? ((id: string) => findClient(cb.db, id)))(clientId) : null;
  if (!client) throw invalidToken("the client this token was issued to no longer exists");
  if (client.status !== "active") throw invalidToken(`the client ${client.id} is suspended`);
  if (!at.grantId || !(await provider.Grant.find(at.grantId))) throw invalidToken("the user's consent for this client was revoked");
  const scopes = new Set((at.scope ?? "").split(" "));
  if (!PROXY_SCOPES.some((s) => scopes.has(s))) {
    throw new CertbridgeError("insufficient_scope", `the token lacks the proxy scope (${PROXY_SCOPES.join(" or ")})`);
  }
  return { at, client };
}

export async function getProxy(cb: Certbridge, provider: Provider, caches: GetProxyCaches, req: HttpRequestParts): Promise<HttpResult> {
  /** The token's client, once known: named in the audit record of a refusal. */
  const seen = { clientId: null as string | null };
  try {
    const p = parseParams(req.params);
    const { at, client } = await verifyProxyBearer(cb, provider, bearerToken(req.authorization, p.access_token), {
      loadClient: (id) => caches.clients.getOrLoad(id, () => findClient(cb.db, id)),
      seen,
    });
    // The MasterPortal's second factor: a token is only good together with its own client's credentials.
    if (p.client_id && p.client_id !== client.id) throw invalidToken("the token was issued to another client (audience mismatch)");
    if (p.client_secret) {
      const meta = await findGatewayClientMetadata(cb.db, cb.config.kek, client.id);
      const expected = meta && "client_secret" in meta ? meta.client_secret : undefined;
      if (!expected || !secretsEqual(expected, p.client_secret)) throw invalidClient("client authentication failed");
    }
    // voname=vo[:fqan] (repeatable, or comma-separated); fqans=/vo/group/Role=r picks within a VO.
    // vomses (the MasterPortal's server line) is accepted and ignored: the portal is its own AA.
    const vomsRequests = parseVomsRequests([
      ...(p.voname ? [p.voname] : []),
      ...(p.fqans ?? "").split(",").filter(Boolean).map((f) => `${f.split("/")[1] ?? ""}:${f}`),
    ]);
    const accountId = at.accountId;
    const identity = accountId ? await caches.identities.getOrLoad(accountId, () => findIdentityClaims(cb.db, accountId)) : null;
    if (!identity) throw invalidToken("the account behind this token no longer exists");
    const claims = JSON.parse(identity.claims) as VerifiedClaims;

    if (p.info !== undefined) {
      return json(200, {
        username: identity.subject,
        default_proxy_lifetime: cb.config.proxy.defaultLifetimeSeconds,
        max_proxy_lifetime: Math.min(cb.config.proxy.maxLifetimeSeconds, client.maxProxyLifetime),
        token_expires_in: Math.max(0, (at.exp ?? 0) - Math.floor(Date.now() / 1000)),
      });
    }
    const proxy = await issueProxy(cb, {
      claims,
      publicKey: p.certreq ?? p.public_key,
      lifetimeSeconds: p.proxylifetime,
      client: { id: client.id, maxLifetimeSeconds: client.maxProxyLifetime },
      extension: vomsRequests.length ? vomsExtension(cb.vos, vomsRequests, cb.clock, allowedVosOf(client)) : undefined,
      actor: `client:${client.id}`,
      ip: req.ip ?? undefined,
    });
    return {
      status: 200,
      headers: {
        "content-type": "application/x-pem-file",
        "cache-control": "no-store",
        "x-proxy-serial": String(proxy.serial),
        "x-proxy-lifetime": String(proxy.lifetime.seconds),
        "x-proxy-lifetime-clamped": String(proxy.lifetime.clamped),
        "x-proxy-not-after": proxy.notAfter.toISOString(),
      },
      body: proxy.pem,
    };
  } catch (e) {
    const err = asCertbridgeError(e);
    if (err.code === "invalid_token" || err.code === "insufficient_scope" || err.status === 401) {
      // Refusals before issuance are audited here; issueProxy audits its own.
      const { clientId } = seen;
      await recordAudit(cb.db, { action: "proxy.refuse", actor: clientId ? `client:${clientId}` : "anonymous", outcome: "refused", clientId, ip: req.ip, details: { error: err.code, reason: err.message } }).catch(() => {});
    }
    return errorResult(err, "json");
  }
}

function json(status: number, body: unknown): HttpResult {
  return { status, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(body) };
}
