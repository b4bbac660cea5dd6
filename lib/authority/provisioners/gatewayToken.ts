/**
 * /getproxy: a gateway presents a person's access token (RFC 6750). The
 * token must be live, its client registered and active, the person's consent
 * standing and its scope include proxy access; MasterPortal-style, a
 * `client_id` must name the token's own client and a `client_secret` must be
 * that client's. The person is the token's account, by id: their DN is
 * fixed, so it is never rebuilt from claims here.
 */
import type Provider from "oidc-provider";
import { CertbridgeError, invalidClient } from "../../errors";
import { findIdentityClaims, isOidcPayloadLive, type Db } from "../../db";
import { allowedVosOf, findClient, findGatewayClientMetadata, PROXY_SCOPES } from "../../oidc/clients";
import { secretsEqual } from "../../pki/seal";
import { takeBearerReadings } from "../../oidc/adapter";
import { TtlCache } from "../../lru";
import { personOf, type Provisioner, type Requester } from "../types";

const invalidToken = (message: string) => new CertbridgeError("invalid_token", message);

type GatewayClient = NonNullable<Awaited<ReturnType<typeof findClient>>>;

/**
 * How long a gateway client's row is reused per process: a client's suspension (or deletion, or a
 * changed lifetime cap or VO list) reaches every instance of a deployment within this window.
 */
export const CLIENT_CACHE_MS = 2_000;
/** How long a person's stored claims are reused per process: new claims from a fresh login reach every instance within this. */
export const IDENTITY_CACHE_MS = 30_000;

/**
 * Short-lived caches for rows read on every call, bounded by the windows
 * above (README, "Running several instances"). Tokens, grants (consent) and
 * the user certificate (revocation) are always read from the database, so
 * revoking a token, a consent or a certificate through any instance stops
 * every other instance at once.
 */
export class GetProxyCaches {
  readonly clients = new TtlCache<GatewayClient>(1024, CLIENT_CACHE_MS);
  readonly identities = new TtlCache<NonNullable<Awaited<ReturnType<typeof findIdentityClaims>>>>(10_000, IDENTITY_CACHE_MS);
}

/**
 * The bearer checks every proxy-granting API shares (RFC 6750 §3.1): a live
 * access token, its client still registered and active, the person's consent
 * standing, and a proxy scope. `seen.clientId` is filled as soon as the token
 * names its client, for the audit record of a refusal.
 */
export async function verifyProxyBearer(
  db: Db,
  provider: Provider,
  token: string,
  opts: { loadClient?: (id: string) => Promise<GatewayClient | null | undefined>; seen?: { clientId: string | null } } = {},
) {
  const at = await provider.AccessToken.find(token);
  if (!at || at.isExpired) throw invalidToken("the access token is invalid, expired or revoked");
  const clientId = at.clientId ?? null;
  if (opts.seen) opts.seen.clientId = clientId;
  const client = clientId ? await (opts.loadClient ?? ((id: string) => findClient(db, id)))(clientId) : null;
  if (!client) throw invalidToken("the client this token was issued to no longer exists");
  if (client.status !== "active") throw invalidToken(`the client ${client.id} is suspended`);
  // The grant's row only (existence and expiry, as Grant.find decides), mostly read with the token
  // just now (lib/oidc/adapter.ts); its payload is not needed here.
  const revoked = () => invalidToken("the user's consent for this client was revoked");
  if (!at.grantId) throw revoked();
  const readings = takeBearerReadings(token, at.grantId);
  if (!(readings?.grantLive ?? (await isOidcPayloadLive(db, "Grant", at.grantId, new Date())))) throw revoked();
  const scopes = new Set((at.scope ?? "").split(" "));
  if (!PROXY_SCOPES.some((s) => scopes.has(s))) {
    throw new CertbridgeError("insufficient_scope", `the token lacks the proxy scope (${PROXY_SCOPES.join(" or ")})`);
  }
  // The person's current user certificate as read with the token, when it was (the issuance's revocation check).
  return { at, client, userCertificateSeen: readings?.userCertificate };
}

export interface GatewayTokenInput {
  token: string;
  /** MasterPortal's second factor, when the gateway sends it. */
  clientId?: string;
  clientSecret?: string;
  /** HTTP Basic client authentication: the secret must be given and right (an empty one is wrong). */
  requireSecret?: boolean;
  ip: string | null;
  /** Filled as soon as the token names its client, for the audit record of a refusal. */
  seen?: { clientId: string | null };
}

export interface GatewayRequester extends Requester {
  client: { id: string; maxLifetimeSeconds: number };
  /** The access token's expiry (seconds since the epoch), for `info`. */
  tokenExpiresAt: number;
}

export function gatewayToken(deps: { db: Db; kek: Buffer; provider: Provider; caches: GetProxyCaches }): Provisioner<GatewayTokenInput, GatewayRequester> {
  const { db, caches } = deps;
  return {
    name: "gateway-token",
    async authorize(input) {
      const { at, client, userCertificateSeen } = await verifyProxyBearer(db, deps.provider, input.token, {
        loadClient: (id) => caches.clients.getOrLoad(id, () => findClient(db, id)),
        seen: input.seen,
      });
      if (input.clientId && input.clientId !== client.id) throw invalidToken("the token was issued to another client (audience mismatch)");
      if (input.clientSecret || input.requireSecret) {
        const meta = await findGatewayClientMetadata(db, deps.kek, client.id);
        const expected = meta && "client_secret" in meta ? meta.client_secret : undefined;
        if (!expected || !input.clientSecret || !secretsEqual(expected, input.clientSecret)) throw invalidClient("client authentication failed");
      }
      const accountId = at.accountId;
      const row = accountId ? await caches.identities.getOrLoad(accountId, () => findIdentityClaims(db, accountId)) : null;
      if (!row) throw invalidToken("the account behind this token no longer exists");
      return {
        ...personOf(row),
        actor: `client:${client.id}`,
        channel: "gateway-token",
        ip: input.ip,
        client: { id: client.id, maxLifetimeSeconds: client.maxProxyLifetime },
        allowedVos: allowedVosOf(client),
        tokenExpiresAt: at.exp ?? 0,
        userCertificateSeen,
      };
    },
  };
}
