/** One-time MyProxy retrieval codes (stored as SHA-256 hashes only; single use, short-lived). */
import { recordAudit, type AuditInput } from "./audit";
import { newId, type Db } from "./client";

/** Store a new code's hash with its audit event. */
export async function addMyProxyCode(db: Db, code: { identityId: string; codeHash: string; expiresAt: Date }, audit: AuditInput) {
  const id = newId();
  await db.$transaction([
    db.myProxyCode.create({ data: { id, ...code }, select: { id: true } }),
    recordAudit(db, { ...audit, identityId: code.identityId, details: { ...audit.details, codeId: id, expiresAt: code.expiresAt.toISOString() } }),
  ]);
  return id;
}

/**
 * Use a code: marks it used if it is unused and current, in one conditional update (two
 * retrievals racing with the same code cannot both win). Returns its owner, or null.
 */
export async function consumeMyProxyCode(db: Db, codeHash: string, now: Date): Promise<{ id: string; identityId: string } | null> {
  const { count } = await db.myProxyCode.updateMany({ where: { codeHash, usedAt: null, expiresAt: { gt: now } }, data: { usedAt: now } });
  if (count !== 1) return null;
  return db.myProxyCode.findUnique({ where: { codeHash }, select: { id: true, identityId: true } });
}

/** Codes not yet used and not expired, for the account page. */
export function listLiveMyProxyCodes(db: Db, identityId: string, now: Date) {
  return db.myProxyCode.findMany({ where: { identityId, usedAt: null, expiresAt: { gt: now } }, orderBy: { createdAt: "asc" }, select: { id: true, createdAt: true, expiresAt: true } });
}

/** Drop used and expired codes (housekeeping). */
export function purgeMyProxyCodes(db: Db, now: Date) {
  return db.myProxyCode.deleteMany({ where: { OR: [{ usedAt: { not: null } }, { expiresAt: { lte: now } }] } });
}
