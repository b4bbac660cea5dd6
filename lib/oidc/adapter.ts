/**
 * oidc-provider's storage adapter on Prisma (one table, OidcPayload), so all
 * protocol state survives restarts and is shared by every instance on one
 * PostgreSQL. The "Client" model is served from the operator's registry
 * (GatewayClient) instead, read-only: clients are managed by the CLI and the
 * admin console, never by the protocol.
 */
import type { Adapter, AdapterPayload } from "oidc-provider";
import {
  consumeOidcPayload,
  deleteOidcPayload,
  deleteOidcPayloadsOfGrant,
  findOidcPayload,
  findOidcPayloadBy,
  findBearerSnapshot,
  findUnhashedOidcPayloads,
  rewriteOidcPayloadIds,
  upsertOidcPayload,
  type Db,
  type OidcPayloadRow,
} from "../db";
import { findGatewayClientMetadata } from "./clients";
import { HASHED_ID_PREFIX, SECRET_ID_MODELS, TokenVault } from "./tokenVault";
import { Lru } from "../lru";

/**
 * What the portal's provider read with an access token (lib/db findBearerSnapshot: its grant's row
 * and its person's current user certificate, in the same statement), for the bearer check that
 * follows at once (verifyProxyBearer) and the issuance after it: keyed by the token as presented,
 * taken once, believed for SNAPSHOT_MS at most. A caller that finds nothing here asks the database.
 */
export interface BearerReadings {
  /** The grant stood (its row is there and has not expired). */
  grantLive: boolean;
  /** The person's newest valid user certificate when the token was read (null: none). */
  userCertificate: { id: string; notAfter: Date } | null;
}
const snapshots = new Map<string, BearerReadings & { grantId: string | null; at: number }>();
export const SNAPSHOT_MS = 1_000;

/** What was read with the access token `token` just now, for its grant `grantId`; undefined when not on record (another path, too long ago, another grant). */
export function takeBearerReadings(token: string, grantId: string, now: number = Date.now()): BearerReadings | undefined {
  const seen = snapshots.get(token);
  if (!seen) return undefined;
  snapshots.delete(token);
  if (seen.grantId !== grantId || now - seen.at > SNAPSHOT_MS || now < seen.at) return undefined;
  return { grantLive: seen.grantLive, userCertificate: seen.userCertificate };
}

function noteBearerReadings(token: string, grantId: string | null, readings: BearerReadings, at: number): void {
  // Lookups nobody takes (userinfo, introspection) are dropped once stale; the map stays small.
  if (snapshots.size >= 1_000) for (const [k, v] of snapshots) if (at - v.at > SNAPSHOT_MS) snapshots.delete(k);
  if (snapshots.size >= 10_000) snapshots.clear();
  snapshots.set(token, { ...readings, grantId, at });
}

/** How the adapter treats used refresh tokens, and its clock (tests inject one). */
export interface AdapterOptions {
  /**
   * A rotated refresh token still counts as unused for this long after its first use (WLCG
   * Common JWT Profile §3.3, about a day): a retry after a lost response, or a second worker of
   * the same gateway, gets a fresh pair instead of oidc-provider's reuse detection revoking the
   * whole grant. Later reuse is reported as `consumed`, and oidc-provider revokes the grant
   * (OAuth 2.0 Security BCP §4.14.2). 0: no grace.
   */
  refreshTokenGraceSeconds?: number;
  now?: () => number;
}

/**
 * @param namespace separates a second provider's rows (the development IdP);
 *   only the portal (no namespace) serves clients from the gateway registry.
 *
 * Bearer artefacts (tokens, codes, sessions, interactions) are stored by keyed hash with a sealed
 * payload (lib/oidc/tokenVault.ts); a find hashes the value it is given.
 */
export function prismaAdapterFactory(db: Db, kek: Buffer, namespace = "", opts: AdapterOptions = {}) {
  const now = opts.now ?? Date.now;
  const graceMs = (opts.refreshTokenGraceSeconds ?? 0) * 1000;
  const expiry = (expiresIn?: number) => (expiresIn ? new Date(now() + expiresIn * 1000) : null);
  const vault = new TokenVault(kek);
  /**
   * Access tokens opened before, by stored id: every /getproxy call still reads the token's row
   * (revocation and expiry are the row's), and a row holding the same sealed text opens to the
   * same JSON, so AES-GCM runs once per token and process. Memory only, bounded.
   */
  const openedAccessTokens = new Lru<{ sealed: string; json: string }>(10_000);

  function toPayload(model: string, row: OidcPayloadRow | null | undefined, open: (stored: string) => string): AdapterPayload | undefined {
    if (!row || (row.expiresAt && new Date(row.expiresAt).getTime() <= now())) return undefined;
    const payload = JSON.parse(open(row.payload)) as AdapterPayload;
    if (!row.consumedAt) return payload;
    const consumedAt = new Date(row.consumedAt).getTime();
    if (model === "RefreshToken" && now() < consumedAt + graceMs) return payload; // within the grace period
    return { ...payload, consumed: Math.floor(consumedAt / 1000) };
  }

  return class PrismaOidcAdapter implements Adapter {
    private readonly model: string;
    private readonly kind: string;
    private readonly registryClients: boolean;
    private readonly protect: boolean;

    constructor(model: string) {
      this.kind = model;
      this.model = namespace ? `${namespace}.${model}` : model;
      this.registryClients = !namespace && model === "Client";
      this.protect = TokenVault.protects(model);
    }

    private stored(id: string): string {
      return this.protect ? vault.index(id) : id;
    }

    private opener(storedId: string) {
      if (this.kind !== "AccessToken") return (payload: string) => vault.open(this.model, storedId, payload);
      return (sealed: string) => {
        const hit = openedAccessTokens.get(storedId);
        if (hit?.sealed === sealed) return hit.json;
        const json = vault.open(this.model, storedId, sealed);
        openedAccessTokens.set(storedId, { sealed, json });
        return json;
      };
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const storedId = this.stored(id);
      const json = JSON.stringify(payload);
      await upsertOidcPayload(db, this.model, storedId, {
        payload: this.protect ? vault.seal(this.model, storedId, json) : json,
        grantId: payload.grantId ?? null,
        accountId: payload.accountId ?? null,
        clientId: payload.clientId ?? null,
        userCode: payload.userCode ? (this.protect ? vault.index(payload.userCode) : payload.userCode) : null,
        uid: payload.uid ?? null,
        expiresAt: expiry(expiresIn),
      });
    }

    private async findWhere(where: { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
      const row = await findOidcPayloadBy(db, this.model, where);
      return toPayload(this.kind, row, row ? this.opener(row.id) : (p) => p);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.registryClients) return (await findGatewayClientMetadata(db, kek, id)) as AdapterPayload | undefined;
      const storedId = this.stored(id);
      if (this.kind === "AccessToken" && !namespace) {
        const row = await findBearerSnapshot(db, this.model, storedId, "Grant");
        const payload = toPayload(this.kind, row, this.opener(storedId));
        if (row && payload) {
          const at = now();
          const grantLive = row.grant !== null && (row.grant.expiresAt === null || row.grant.expiresAt.getTime() > at);
          noteBearerReadings(id, row.grantId, { grantLive, userCertificate: row.userCertificate }, at);
        }
        return payload;
      }
      return toPayload(this.kind, await findOidcPayload(db, this.model, storedId), this.opener(storedId));
    }

    findByUid(uid: string) {
      return this.findWhere({ uid });
    }

    findByUserCode(userCode: string) {
      return this.findWhere({ userCode: this.protect ? vault.index(userCode) : userCode });
    }

    async consume(id: string): Promise<void> {
      await consumeOidcPayload(db, this.model, this.stored(id), new Date(now()));
    }

    async destroy(id: string): Promise<void> {
      const storedId = this.stored(id);
      await deleteOidcPayload(db, this.model, storedId);
      openedAccessTokens.delete(storedId);
    }

    /** Revoking a grant takes every token issued under it (RFC 7009 §2.1, cascading). */
    async revokeByGrantId(grantId: string): Promise<void> {
      await deleteOidcPayloadsOfGrant(db, grantId, namespace);
    }
  };
}

/**
 * Rows written before issue 12 (a token's value as the row id, its payload in clear) are rewritten
 * in place — id hashed, payload sealed, user code hashed — at start, in batches, each in one
 * transaction. Idempotent: hashed rows are never selected again. Returns how many were rewritten.
 */
export async function protectStoredArtefacts(db: Db, kek: Buffer): Promise<number> {
  const vault = new TokenVault(kek);
  const models = [...SECRET_ID_MODELS].flatMap((m) => [m, ...ADAPTER_NAMESPACES.map((n) => `${n}.${m}`)]);
  let total = 0;
  for (;;) {
    const rows = await findUnhashedOidcPayloads(db, models, HASHED_ID_PREFIX, 500);
    if (!rows.length) return total;
    await rewriteOidcPayloadIds(
      db,
      rows.map((r) => {
        const storedId = vault.index(r.id);
        return {
          model: r.model,
          oldId: r.id,
          id: storedId,
          payload: vault.seal(r.model, storedId, vault.open(r.model, r.id, r.payload)),
          userCode: r.userCode ? vault.index(r.userCode) : null,
        };
      }),
    );
    total += rows.length;
  }
}

/** The namespaces adapters are made with (lib/devIdp.ts: the development IdP's rows). */
const ADAPTER_NAMESPACES = ["DevIdp"];

/** Housekeeping: drop expired artefacts (called periodically by the server). */
export { purgeExpiredOidcPayloads } from "../db";
