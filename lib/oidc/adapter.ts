/**
 * oidc-provider's storage adapter on Prisma (one table, OidcPayload), so all
 * protocol state survives restarts and is shared by every instance on one
 * PostgreSQL. The "Client" model is served from the operator's registry
 * (GatewayClient) instead, read-only: clients are managed by the CLI and the
 * admin console, never by the protocol.
 */
import type { Adapter, AdapterPayload } from "oidc-provider";
import type { Db } from "../db";
import { findGatewayClientMetadata } from "./clients";

const expiry = (expiresIn?: number) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

function toPayload(row: { payload: string; expiresAt: Date | null; consumedAt: Date | null } | null | undefined): AdapterPayload | undefined {
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
      const data = {
        payload: JSON.stringify(payload),
        grantId: payload.grantId ?? null,
        accountId: payload.accountId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expiresAt: expiry(expiresIn),
      };
      await db.oidcPayload.upsert({
        where: { model_id: { model: this.model, id } },
        create: { model: this.model, id, ...data },
        update: data,
        select: { id: true },
      });
    }

    private async findWhere(where: { id: string } | { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
      const row = await db.oidcPayload.findFirst({
        where: { model: this.model, ...where },
        select: { payload: true, expiresAt: true, consumedAt: true },
      });
      return toPayload(row);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.registryClients) return (await findGatewayClientMetadata(db, kek, id)) as AdapterPayload | undefined;
      // Every /getproxy call looks up a token and its grant: raw SQL skips Prisma's per-query
      // compilation (about 40 % of a lookup's CPU here). Same statement on SQLite and PostgreSQL.
      const rows = await db.$queryRaw<{ payload: string; expiresAt: Date | null; consumedAt: Date | null }[]>`
        SELECT "payload", "expiresAt", "consumedAt" FROM "OidcPayload" WHERE "model" = ${this.model} AND "id" = ${id} LIMIT 1`;
      return toPayload(rows[0]);
    }

    findByUid(uid: string) {
      return this.findWhere({ uid });
    }

    findByUserCode(userCode: string) {
      return this.findWhere({ userCode });
    }

    async consume(id: string): Promise<void> {
      await db.oidcPayload.updateMany({ where: { model: this.model, id }, data: { consumedAt: new Date() } });
    }

    async destroy(id: string): Promise<void> {
      await db.oidcPayload.deleteMany({ where: { model: this.model, id } });
    }

    /** Revoking a grant takes every token issued under it (RFC 7009 §2.1, cascading). */
    async revokeByGrantId(grantId: string): Promise<void> {
      await db.oidcPayload.deleteMany({ where: { grantId, model: { startsWith: namespace } } });
    }
  };
}

/** Housekeeping: drop expired artefacts (called periodically by the server). */
export async function purgeExpiredOidcPayloads(db: Db, now = new Date()): Promise<number> {
  const r = await db.oidcPayload.deleteMany({ where: { expiresAt: { lt: now } } });
  return r.count;
}
