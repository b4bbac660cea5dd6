/** People, as the upstream identity provider asserted them. */
import { recordAudit, type AuditInput } from "./audit";
import { newId, type Db } from "./client";

export const identitySelect = {
  id: true,
  identifierHash: true,
  issuer: true,
  sub: true,
  subject: true,
  displayName: true,
  email: true,
  organisation: true,
  createdAt: true,
  lastSeenAt: true,
} as const;

export function findIdentityByIdentifierHash(db: Db, identifierHash: string) {
  return db.identity.findUnique({ where: { identifierHash }, select: identitySelect });
}

export function findIdentityWithClaims(db: Db, identifierHash: string) {
  return db.identity.findUnique({ where: { identifierHash }, select: { ...identitySelect, claims: true } });
}

export async function isSubjectTaken(db: Db, subject: string): Promise<boolean> {
  return (await db.identity.count({ where: { subject } })) > 0;
}

export async function createIdentity(
  db: Db,
  data: {
    identifierHash: string;
    issuer: string;
    sub: string;
    subject: string;
    displayName: string;
    email: string | null;
    organisation: string;
    claims: unknown;
  },
  audit: AuditInput,
) {
  const id = newId();
  const [identity] = await db.$transaction([
    db.identity.create({ data: { id, ...data, claims: JSON.stringify(data.claims) }, select: identitySelect }),
    recordAudit(db, { ...audit, identityId: id }),
  ]);
  return identity;
}

export function touchIdentity(db: Db, id: string, data: { displayName: string; email: string | null; claims: unknown; at: Date }) {
  return db.identity.update({
    where: { id },
    data: { displayName: data.displayName, email: data.email, claims: JSON.stringify(data.claims), lastSeenAt: data.at },
    select: { id: true },
  });
}

/** The person was active (a proxy issued on any channel): only when the record is older than `at - staleAfterMs`. */
export function markIdentitySeen(db: Db, id: string, at: Date, staleAfterMs: number) {
  return db.identity.updateMany({ where: { id, lastSeenAt: { lt: new Date(at.getTime() - staleAfterMs) } }, data: { lastSeenAt: at } });
}

/** The person's last verified claims (what proxies are issued from). */
export function findIdentityClaims(db: Db, id: string) {
  return db.identity.findUnique({ where: { id }, select: { ...identitySelect, claims: true } });
}

export function findIdentity(db: Db, id: string) {
  return db.identity.findUnique({ where: { id }, select: identitySelect });
}

/** People seen (signed in or obtained a proxy) since `since`, and all people. */
export async function countIdentities(db: Db, since: Date) {
  const [active, total] = await Promise.all([db.identity.count({ where: { lastSeenAt: { gte: since } } }), db.identity.count()]);
  return { active, total };
}

/** Display names of identities, for the consoles (audit actors). */
export async function findIdentityNames(db: Db, ids: readonly string[]): Promise<Map<string, { displayName: string; subject: string }>> {
  if (!ids.length) return new Map();
  const rows = await db.identity.findMany({ where: { id: { in: [...new Set(ids)] } }, select: { id: true, displayName: true, subject: true } });
  return new Map(rows.map((r) => [r.id, { displayName: r.displayName, subject: r.subject }]));
}

/**
 * A person named as MyProxy's USERNAME names them: their subject DN, or their account name (the
 * account id this portal's OpenID provider releases as `sub`, shown on /account).
 */
export function findIdentityClaimsByName(db: Db, name: string) {
  return db.identity.findFirst({ where: { OR: [{ subject: name }, { id: name }] }, select: { ...identitySelect, claims: true } });
}
