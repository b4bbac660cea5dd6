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
  upsertOidcPayload,
  type Db,
  type OidcPayloadRow,
} from "../db";
import { findGatewayClientMetadata } from "./clients";

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
 */
export function prismaAdapterFactory(db: Db, kek: Buffer, namespace = "", opts: AdapterOptions = {}) {
  const now = opts.now ?? Date.now;
  const graceMs = (opts.refreshTokenGraceSeconds ?? 0) * 1000;
  const expiry = (expiresIn?: number) => (expiresIn ? new Date(now() + expiresIn * 1000) : null);

  function toPayload(model: string, row: OidcPayloadRow | null | undefined): AdapterPayload | undefined {
    if (!row || (row.expiresAt && new Date(row.expiresAt).getTime() <= now())) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (!row.consumedAt) return payload;
    const consumedAt = new Date(row.consumedAt).getTime();
    if (model === "RefreshToken" && now() < consumedAt + graceMs) return payload; // within the grace period
    return { ...payload, consumed: Math.floor(consumedAt / 1000) };
  }


  return class PrismaOidcAdapter implements Adapter {
    private readonly model: string;
    private readonly kind: string;
    private readonly registryClients: boolean;

    constructor(model: string) {
      this.kind = model;
      this.model = namespace ? `${namespace}.${model}` : model;
      this.registryClients = !namespace && model === "Client";
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      await upsertOidcPayload(db, this.model, id, {
        payload: JSON.stringify(payload),
        grantId: payload.grantId ?? null,
        accountId: payload.accountId ?? null,
        clientId: payload.clientId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expiresAt: expiry(expiresIn),
      });
    }

    private async findWhere(where: { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
      return toPayload(this.kind, await findOidcPayloadBy(db, this.model, where));
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.registryClients) return (await findGatewayClientMetadata(db, kek, id)) as AdapterPayload | undefined;
      return toPayload(this.kind, await findOidcPayload(db, this.model, id));
    }

    findByUid(uid: string) {
      return this.findWhere({ uid });
    }

    findByUserCode(userCode: string) {
      return this.findWhere({ userCode });
    }

    async consume(id: string): Promise<void> {
      await consumeOidcPayload(db, this.model, id, new Date(now()));
    }

    async destroy(id: string): Promise<void> {
      await deleteOidcPayload(db, this.model, id);
    }

    /** Revoking a grant takes every token issued under it (RFC 7009 §2.1, cascading). */
    async revokeByGrantId(grantId: string): Promise<void> {
      await deleteOidcPayloadsOfGrant(db, grantId, namespace);
    }
  };
}

/** Housekeeping: drop expired artefacts (called periodically by the server). */
export { purgeExpiredOidcPayloads } from "../db";
