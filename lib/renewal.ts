/**
 * Renewal info: how long a refresh token can keep renewing proxies (the
 * myproxy-info of this world). A service that keeps a proxy fresh
 * (certbridge-proxy-init --renew, a VO box, DIRAC's ProxyManager) asks this to
 * warn its operator before the person has to log in again.
 *
 *   POST /api/renewal-info   refresh_token=…&client_id=…   (client_secret or HTTP Basic for confidential clients)
 *
 * Renewal ends at the earliest of:
 * - the refresh token's expiry. Each use rotates the token and the new one
 *   gets a full CERTBRIDGE_REFRESH_TOKEN_TTL, so this moves on while the
 *   service keeps renewing;
 * - the consent (grant) expiry, CERTBRIDGE_CONSENT_TTL after the person
 *   allowed it. Renewing never extends it.
 *
 * The token is only looked up, never used: asking does not rotate it.
 * Client authentication is that of the token endpoint (RFC 6749 §2.3), and
 * errors use its codes (RFC 6749 §5.2): invalid_request, invalid_client
 * (401), invalid_grant (400).
 */
import type Provider from "oidc-provider";
import { z } from "zod";
import type { Certbridge } from "./certbridge";
import { CertbridgeError } from "./errors";
import { secretsEqual } from "./pki/seal";
import { findIdentity } from "./db";
import { findClient, findGatewayClientMetadata } from "./oidc/clients";
import { errorResult, type HttpRequestParts, type HttpResult } from "./http";
import { parseBasicCredentials } from "./basicAuth";

export interface RenewalInfo {
  renewable_until: string;
  /** Seconds from now until renewable_until (0 when already past). */
  renewable_for: number;
  refresh_token_expires_at: string;
  consent_expires_at: string | null;
  max_proxy_lifetime: number;
  /** The certificate subject (DN) proxies are issued for. */
  subject: string;
  client_id: string;
  scopes: string[];
}


const params = z.object({
  refresh_token: z.string({ error: "refresh_token is required" }).min(1, "refresh_token is required").max(512, "refresh_token is too long"),
  client_id: z.string().min(1).max(128).optional(),
  client_secret: z.string().min(1).max(512).optional(),
});

function parseParams(list: [string, string][]) {
  const seen = new Map<string, string>();
  for (const [k, v] of list) {
    if (!["refresh_token", "client_id", "client_secret"].includes(k)) continue; // RFC 6749 §3.2: unknown parameters are ignored
    if (seen.has(k)) throw new CertbridgeError("invalid_request", `parameter ${k} was given more than once`);
    seen.set(k, v);
  }
  const r = params.safeParse(Object.fromEntries(seen));
  if (!r.success) throw new CertbridgeError("invalid_request", r.error.issues.map((i) => i.message).join("; "));
  return r.data;
}

/** HTTP Basic client credentials (lib/basicAuth.ts); any other Authorization header is refused here. */
function basicCredentials(authorization: string | null): { id: string; secret: string } | null {
  if (!authorization) return null;
  const basic = parseBasicCredentials(authorization);
  if (basic === null) throw new CertbridgeError("invalid_client", "the Authorization header must be HTTP Basic client credentials");
  if (basic === "malformed") throw new CertbridgeError("invalid_client", "malformed HTTP Basic credentials");
  return { id: basic.clientId, secret: basic.clientSecret };
}

async function authenticateClient(cb: Certbridge, req: HttpRequestParts, p: z.infer<typeof params>): Promise<string> {
  const basic = basicCredentials(req.authorization);
  if (basic && (p.client_id !== undefined || p.client_secret !== undefined)) {
    throw new CertbridgeError("invalid_request", "client credentials were given both in the Authorization header and in the body");
  }
  const id = basic?.id ?? p.client_id;
  const secret = basic?.secret ?? p.client_secret;
  if (!id) throw new CertbridgeError("invalid_client", "client_id is required (the client the refresh token was issued to)");
  const meta = await findGatewayClientMetadata(cb.db, cb.config.kek, id);
  if (!meta) throw new CertbridgeError("invalid_client", `unknown or suspended client ${id}`);
  const expected = meta.client_secret;
  if (expected !== undefined && (secret === undefined || !secretsEqual(expected, secret))) {
    throw new CertbridgeError("invalid_client", "client authentication failed");
  }
  return id;
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

export async function renewalInfo(cb: Certbridge, provider: Provider, req: HttpRequestParts): Promise<RenewalInfo> {
  const p = parseParams(req.params);
  const clientId = await authenticateClient(cb, req, p);
  const rt = await provider.RefreshToken.find(p.refresh_token, { ignoreExpiration: true });
  if (!rt) throw new CertbridgeError("invalid_grant", "the refresh token is unknown or was revoked");
  if (rt.clientId !== clientId) throw new CertbridgeError("invalid_grant", "the refresh token was issued to another client");
  if (rt.isExpired || rt.exp === undefined) throw new CertbridgeError("invalid_grant", "the refresh token has expired: log in again");
  // A rotated token must not be used again: the token endpoint would treat that as theft and revoke the grant.
  if (rt.consumed) throw new CertbridgeError("invalid_grant", "this refresh token was already used and replaced by a newer one: use the newest");
  const grant = rt.grantId ? await provider.Grant.find(rt.grantId) : undefined;
  if (!grant) throw new CertbridgeError("invalid_grant", "the person's consent for this client was revoked or has expired: log in again");
  const [client, identity] = await Promise.all([findClient(cb.db, clientId), rt.accountId ? findIdentity(cb.db, rt.accountId) : null]);
  if (!client || !identity) throw new CertbridgeError("invalid_grant", "the account or client behind this refresh token no longer exists");
  const untilSeconds = Math.min(rt.exp, grant.exp ?? Infinity);
  return {
    renewable_until: iso(untilSeconds),
    renewable_for: Math.max(0, untilSeconds - Math.floor(cb.clock().getTime() / 1000)),
    refresh_token_expires_at: iso(rt.exp),
    consent_expires_at: grant.exp === undefined ? null : iso(grant.exp),
    max_proxy_lifetime: cb.authority.maxLifetimeSeconds(client.maxProxyLifetime),
    subject: identity.subject,
    client_id: clientId,
    scopes: (rt.scope ?? "").split(" ").filter(Boolean),
  };
}

/** The HTTP exchange: 200 JSON, or an OAuth error body from the error edge; never a 500 for a caller's mistake. */
export async function renewalInfoHttp(cb: Certbridge, provider: Provider, req: HttpRequestParts): Promise<HttpResult> {
  try {
    return { status: 200, headers: { "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(await renewalInfo(cb, provider, req)) };
  } catch (e) {
    return errorResult(e, "json");
  }
}
