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

const expiry = (expiresIn?: number) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

function toPayload(row: OidcPayloadRow | null | undefined): AdapterPayload | undefined {
  if (!row || (row.expiresAt && new Date(row.expiresAt).getTime() <= Date.now())) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  return row.consumedAt ? { ...payload, consumed: Math.floor(new Date(row.consumedAt).getTime() / 1000) } : payload;
}

/**
 * @param namespace separates a second provider's rows (the development IdP);
 *   only the portal (no namespace) serves clients from the gateway registry.
 */
export function prismaAdapterFactory(db: Db, kek: Buffer, namespace = "") {
  return class PrismaOidcAdapter implements Adapter {
    private readonly model: string;
    private readonly registryClients: boolean;

    constructor(model: string) {
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
      return toPayload(await findOidcPayloadBy(db, this.model, where));
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.registryClients) return (await findGatewayClientMetadata(db, kek, id)) as AdapterPayload | undefined;
      return toPayload(await findOidcPayload(db, this.model, id));
    }

    findByUid(uid: string) {
      return this.findWhere({ uid });
    }

    findByUserCode(userCode: string) {
      return this.findWhere({ userCode });
    }

    async consume(id: string): Promise<void> {
      await consumeOidcPayload(db, this.model, id, new Date());
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
