/**
 * The gateway registry's rows (OAuth clients of the portal). The sealed
 * client secret is selected only by `findClientWithSealedSecret`.
 */
import { recordAudit, type AuditInput } from "./audit";
import type { Db } from "./client";

export const clientSelect = {
  id: true,
  name: true,
  homepage: true,
  contact: true,
  isPublic: true,
  redirectUris: true,
  scopes: true,
  maxProxyLifetime: true,
  allowedVos: true,
  tokenPolicy: true,
  compatProfile: true,
  status: true,
  createdAt: true,
  updatedAt: true,
} as const;

/** A client's stored fields. `secretEnc` absent: keep the stored secret; null: none. */
export interface ClientData {
  name: string;
  homepage: string | null;
  contact: string | null;
  isPublic: boolean;
  redirectUris: string;
  scopes: string;
  maxProxyLifetime: number;
  allowedVos: string | null;
  /** JSON token policy (lib/oidc/scopePolicy.ts); absent: keep the stored one. */
  tokenPolicy?: string | null;
  /** Compatibility profile ("masterportal"), or null for the strict default; absent: keep the stored one. */
  compatProfile?: string | null;
  secretEnc?: string | null;
  status?: string;
}

export function findClientRow(db: Db, id: string) {
  return db.gatewayClient.findUnique({ where: { id }, select: clientSelect });
}

/** The row with its sealed secret: for oidc-provider's metadata and for registration (does it have one?). */
export function findClientWithSealedSecret(db: Db, id: string) {
  return db.gatewayClient.findUnique({ where: { id }, select: { ...clientSelect, secretEnc: true } });
}

export function listClientRows(db: Db) {
  return db.gatewayClient.findMany({ orderBy: { createdAt: "asc" }, select: clientSelect });
}

/** Create or change a client with its audit event. */
export async function upsertClient(db: Db, id: string, data: ClientData, audit: AuditInput) {
  const [client] = await db.$transaction([
    db.gatewayClient.upsert({ where: { id }, create: { id, ...data }, update: data, select: clientSelect }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
  return client;
}

/** Create a client row unless it exists (the built-in client's, made at start). */
export async function ensureClient(db: Db, id: string, data: ClientData & { createdAt?: Date; updatedAt?: Date }): Promise<void> {
  await db.gatewayClient.upsert({ where: { id }, create: { id, ...data }, update: {}, select: { id: true } });
}

export async function replaceClientSealedSecret(db: Db, id: string, secretEnc: string, audit: AuditInput): Promise<void> {
  await db.$transaction([
    db.gatewayClient.update({ where: { id }, data: { secretEnc }, select: { id: true } }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
}

/** Replace a client's token policy (JSON, or null for none) with its audit event. */
export async function updateClientTokenPolicy(db: Db, id: string, tokenPolicy: string | null, audit: AuditInput): Promise<void> {
  await db.$transaction([
    db.gatewayClient.update({ where: { id }, data: { tokenPolicy }, select: { id: true } }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
}

/** Set (or with null clear) a client's compatibility profile with its audit event. */
export async function updateClientCompatProfile(db: Db, id: string, compatProfile: string | null, audit: AuditInput): Promise<void> {
  await db.$transaction([
    db.gatewayClient.update({ where: { id }, data: { compatProfile }, select: { id: true } }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
}

export async function updateClientStatus(db: Db, id: string, status: "active" | "suspended", audit: AuditInput): Promise<void> {
  await db.$transaction([
    db.gatewayClient.update({ where: { id }, data: { status }, select: { id: true } }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
}

/** Delete a client, and with it every grant and token issued to it (by the payloads' clientId column). */
export async function deleteClientWithPayloads(db: Db, id: string, audit: AuditInput): Promise<void> {
  await db.$transaction([
    db.gatewayClient.delete({ where: { id }, select: { id: true } }),
    db.oidcPayload.deleteMany({ where: { clientId: id } }),
    recordAudit(db, { ...audit, clientId: id }),
  ]);
}

/** How many clients have ids starting with `prefix` (dynamically registered ones: `dyn-`). */
export function countClientsWithIdPrefix(db: Db, prefix: string): Promise<number> {
  return db.gatewayClient.count({ where: { id: { startsWith: prefix } } });
}
