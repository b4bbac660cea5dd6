/**
 * oidc-provider's stored artefacts (one table, OidcPayload): sessions,
 * grants, codes, tokens, interactions. The payload is opaque here (a string
 * the adapter in lib/oidc/ writes and reads); the columns beside it (grantId,
 * accountId, clientId, userCode, uid) are what this module queries by.
 */
import { recordAudit, type AuditInput } from "./audit";
import { directSqlOf, type Db } from "./client";
import { dateOf, statement } from "./direct";

export interface OidcPayloadRow {
  payload: string;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

export interface OidcPayloadData {
  payload: string;
  grantId: string | null;
  accountId: string | null;
  clientId: string | null;
  userCode: string | null;
  uid: string | null;
  expiresAt: Date | null;
}

export async function upsertOidcPayload(db: Db, model: string, id: string, data: OidcPayloadData): Promise<void> {
  await db.oidcPayload.upsert({
    where: { model_id: { model, id } },
    create: { model, id, ...data },
    update: data,
    select: { id: true },
  });
}

const FIND_OIDC_PAYLOAD = statement("find_oidc_payload", `SELECT "payload", "expiresAt", "consumedAt" FROM "OidcPayload" WHERE "model" = ? AND "id" = ? LIMIT 1`);

/**
 * One artefact by id. Every /getproxy call looks up a token and its grant: a
 * prepared statement on the driver (lib/db/direct.ts), the same on SQLite and
 * PostgreSQL.
 */
export async function findOidcPayload(db: Db, model: string, id: string): Promise<OidcPayloadRow | undefined> {
  const [row] = await directSqlOf(db).all<{ payload: string; expiresAt: unknown; consumedAt: unknown }>(FIND_OIDC_PAYLOAD, [model, id]);
  return row && { payload: row.payload, expiresAt: dateOf(row.expiresAt), consumedAt: dateOf(row.consumedAt) };
}

/** The token's person's newest valid user certificate (one column of it). */
const CURRENT_USER_CERTIFICATE = `SELECT u.$column FROM "Certificate" u WHERE u."identityId" = t."accountId" AND u."kind" = 'user' AND u."status" = 'valid' ORDER BY u."notAfter" DESC LIMIT 1`;

const FIND_BEARER_SNAPSHOT = statement(
  "find_bearer_snapshot",
  // Scalar subqueries, each one probe of Certificate's (identityId, kind, notAfter) index: a join on
  // a correlated subquery made PostgreSQL's plan scan the table.
  `SELECT t."payload", t."expiresAt", t."consumedAt", t."grantId",
          g."id" AS "grantRowId", g."expiresAt" AS "grantExpiresAt",
          (${CURRENT_USER_CERTIFICATE.replace("$column", `"id"`)}) AS "userCertificateId",
          (${CURRENT_USER_CERTIFICATE.replace("$column", `"notAfter"`)}) AS "userCertificateNotAfter"
     FROM "OidcPayload" t
     LEFT JOIN "OidcPayload" g ON g."model" = ? AND g."id" = t."grantId"
    WHERE t."model" = ? AND t."id" = ? LIMIT 1`,
);

/** What one statement tells about a bearer token: its row, its grant's row, its person's newest valid user certificate. */
export type BearerSnapshot = OidcPayloadRow & {
  grantId: string | null;
  /** Null when the token names no grant or the grant's row is gone. */
  grant: { expiresAt: Date | null } | null;
  /** The newest valid user certificate of the token's account (null: none), as findCurrentUserCertificateId would choose. */
  userCertificate: { id: string; notAfter: Date } | null;
};

/**
 * One access token by stored id, with the consent it stands on (in `grantModel`) and its person's
 * newest valid user certificate, as of one moment, in one statement: /getproxy's reads in one
 * round trip instead of three.
 */
export async function findBearerSnapshot(db: Db, model: string, id: string, grantModel: string): Promise<BearerSnapshot | undefined> {
  const [row] = await directSqlOf(db).all<{
    payload: string;
    expiresAt: unknown;
    consumedAt: unknown;
    grantId: string | null;
    grantRowId: string | null;
    grantExpiresAt: unknown;
    userCertificateId: string | null;
    userCertificateNotAfter: unknown;
  }>(FIND_BEARER_SNAPSHOT, [grantModel, model, id]);
  if (!row) return undefined;
  const userCertificateNotAfter = dateOf(row.userCertificateNotAfter);
  return {
    payload: row.payload,
    expiresAt: dateOf(row.expiresAt),
    consumedAt: dateOf(row.consumedAt),
    grantId: row.grantId,
    grant: row.grantRowId === null ? null : { expiresAt: dateOf(row.grantExpiresAt) },
    userCertificate: row.userCertificateId !== null && userCertificateNotAfter ? { id: row.userCertificateId, notAfter: userCertificateNotAfter } : null,
  };
}

const FIND_OIDC_PAYLOAD_EXPIRY = statement("find_oidc_payload_expiry", `SELECT "expiresAt" FROM "OidcPayload" WHERE "model" = ? AND "id" = ? LIMIT 1`);

/**
 * Whether an artefact exists and has not expired at `now`, without reading its payload: the
 * consent check every /getproxy call makes on the token's grant (a revoked grant's row is gone).
 */
export async function isOidcPayloadLive(db: Db, model: string, id: string, now: Date): Promise<boolean> {
  const [row] = await directSqlOf(db).all<{ expiresAt: unknown }>(FIND_OIDC_PAYLOAD_EXPIRY, [model, id]);
  if (!row) return false;
  const expiresAt = dateOf(row.expiresAt);
  return expiresAt === null || expiresAt.getTime() > now.getTime();
}

/** One artefact by its session uid or (hashed) device user code, with its stored id. */
export function findOidcPayloadBy(db: Db, model: string, where: { uid: string } | { userCode: string }) {
  return db.oidcPayload.findFirst({ where: { model, ...where }, select: { id: true, payload: true, expiresAt: true, consumedAt: true } });
}

/** Rows of `models` whose id does not start with `hashedPrefix` (written before ids were hashed). */
export function findUnhashedOidcPayloads(db: Db, models: string[], hashedPrefix: string, take: number) {
  return db.oidcPayload.findMany({
    where: { model: { in: models }, NOT: { id: { startsWith: hashedPrefix } } },
    select: { model: true, id: true, payload: true, userCode: true },
    take,
  });
}

/** Rewrite rows under new ids (and payloads, user codes), all in one transaction. */
export async function rewriteOidcPayloadIds(db: Db, rows: { model: string; oldId: string; id: string; payload: string; userCode: string | null }[]): Promise<void> {
  await db.$transaction(
    rows.map((r) => db.oidcPayload.updateMany({ where: { model: r.model, id: r.oldId }, data: { id: r.id, payload: r.payload, userCode: r.userCode } })),
  );
}

/** Marks an artefact used; the first use counts (a refresh token's grace period runs from it). */
export async function consumeOidcPayload(db: Db, model: string, id: string, at: Date): Promise<void> {
  await db.oidcPayload.updateMany({ where: { model, id, consumedAt: null }, data: { consumedAt: at } });
}

export async function deleteOidcPayload(db: Db, model: string, id: string): Promise<void> {
  await db.oidcPayload.deleteMany({ where: { model, id } });
}

/** Every artefact issued under a grant, in models starting with `modelPrefix` (RFC 7009 §2.1 cascading). */
export async function deleteOidcPayloadsOfGrant(db: Db, grantId: string, modelPrefix: string): Promise<void> {
  await db.oidcPayload.deleteMany({ where: { grantId, model: { startsWith: modelPrefix } } });
}

/** Housekeeping: drop expired artefacts. */
export async function purgeExpiredOidcPayloads(db: Db, now = new Date()): Promise<number> {
  const r = await db.oidcPayload.deleteMany({ where: { expiresAt: { lt: now } } });
  return r.count;
}

/** A person's unexpired grants (payload opaque), each with the count and latest expiry of its live refresh tokens. */
export async function listGrantPayloadsOfAccount(db: Db, accountId: string, now: Date) {
  const grants = await db.oidcPayload.findMany({
    where: { accountId, model: "Grant", OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    select: { id: true, payload: true, clientId: true, expiresAt: true },
  });
  if (!grants.length) return [];
  const tokens = await db.oidcPayload.groupBy({
    by: ["grantId"],
    where: { grantId: { in: grants.map((g) => g.id) }, model: "RefreshToken", expiresAt: { gt: now } },
    _max: { expiresAt: true },
    _count: { _all: true },
  });
  const byGrant = new Map(tokens.map((t) => [t.grantId, t]));
  return grants.map((g) => {
    const t = byGrant.get(g.id);
    return {
      grantId: g.id,
      clientId: g.clientId,
      payload: g.payload,
      expiresAt: g.expiresAt,
      refreshTokens: t?._count._all ?? 0,
      refreshUntil: t?._max.expiresAt ?? null,
    };
  });
}

/**
 * Delete one of a person's grants and every artefact issued under it, with
 * its audit event, in one transaction; returns the grant's client (null when
 * unknown), or undefined when the grant is not theirs (or is gone).
 */
export async function deleteGrantAndTokensOfAccount(
  db: Db,
  accountId: string,
  grantId: string,
  audit: AuditInput,
): Promise<{ clientId: string | null; tokens: Record<string, number> } | undefined> {
  const grant = await db.oidcPayload.findFirst({ where: { model: "Grant", id: grantId, accountId }, select: { clientId: true } });
  if (!grant) return undefined;
  // What the withdrawal ends, for the person's confirmation and the audit record: live tokens by kind.
  const live = await db.oidcPayload.groupBy({ by: ["model"], where: { grantId, model: { not: "Grant" }, consumedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] }, _count: { _all: true } });
  const tokens = Object.fromEntries(live.map((t) => [t.model, t._count._all]));
  await db.$transaction([
    db.oidcPayload.deleteMany({ where: { grantId, model: { not: "Grant" } } }),
    db.oidcPayload.deleteMany({ where: { model: "Grant", id: grantId, accountId } }),
    recordAudit(db, { ...audit, clientId: grant.clientId, identityId: accountId, details: { ...audit.details, grantId, tokens } }),
  ]);
  return { clientId: grant.clientId, tokens };
}

/**
 * One consent per person and client: once a new grant is saved, the person's other grants for
 * that client go, with every token issued under them. Returns the ids withdrawn.
 */
export async function withdrawOtherGrants(db: Db, accountId: string, clientId: string, keepGrantId: string): Promise<string[]> {
  const grants = await db.oidcPayload.findMany({ where: { model: "Grant", accountId, clientId, id: { not: keepGrantId } }, select: { id: true } });
  const ids = grants.map((g) => g.id);
  if (!ids.length) return [];
  await db.$transaction([
    db.oidcPayload.deleteMany({ where: { grantId: { in: ids }, model: { not: "Grant" } } }),
    db.oidcPayload.deleteMany({ where: { model: "Grant", id: { in: ids }, accountId } }),
  ]);
  return ids;
}

/* The provider's own secrets, kept in the same table under a model of their own. */

export async function findSealedSigningKey(db: Db, model: string, name: string): Promise<string | undefined> {
  const row = await db.oidcPayload.findUnique({ where: { model_id: { model, id: name } }, select: { payload: true } });
  return row?.payload;
}

/** Store a sealed signing key; a unique violation when another instance stored one first. */
export async function createSealedSigningKey(db: Db, model: string, name: string, sealed: string): Promise<void> {
  await db.oidcPayload.create({ data: { model, id: name, payload: sealed }, select: { id: true } });
}
