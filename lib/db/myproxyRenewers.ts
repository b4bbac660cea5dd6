/**
 * MyProxy renewers (registered by an administrator) and the renewal consents people give them
 * on /account. Every change commits with its audit event.
 */
import { recordAudit, type AuditInput } from "./audit";
import { newId, type Db } from "./client";

export const renewerSelect = { id: true, subject: true, label: true, caPem: true, crlPem: true, createdAt: true, updatedAt: true } as const;
const renewerSummary = { id: true, subject: true, label: true, createdAt: true, updatedAt: true } as const;

export interface RenewerInput {
  subject: string;
  label: string;
  caPem: string;
  crlPem: string;
}

/** Register a renewer, or replace the CA certificates and CRLs of one already registered (same subject). */
export async function saveMyProxyRenewer(db: Db, r: RenewerInput, audit: AuditInput): Promise<{ id: string; created: boolean }> {
  const existing = await db.myProxyRenewer.findUnique({ where: { subject: r.subject }, select: { id: true } });
  const id = existing?.id ?? newId();
  const details = { ...audit.details, renewerId: id, subject: r.subject, label: r.label, caCertificates: (r.caPem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length, crls: (r.crlPem.match(/-----BEGIN X509 CRL-----/g) ?? []).length };
  await db.$transaction([
    existing
      ? db.myProxyRenewer.update({ where: { id }, data: { label: r.label, caPem: r.caPem, crlPem: r.crlPem }, select: { id: true } })
      : db.myProxyRenewer.create({ data: { id, ...r }, select: { id: true } }),
    recordAudit(db, { ...audit, action: existing ? "myproxy.renewer.update" : "myproxy.renewer.add", details }),
  ]);
  return { id, created: !existing };
}

/** Remove a renewer; the consents people gave it go with it. Returns false when there was none. */
export async function removeMyProxyRenewer(db: Db, subjectOrId: string, audit: AuditInput): Promise<boolean> {
  const r = await db.myProxyRenewer.findFirst({ where: { OR: [{ id: subjectOrId }, { subject: subjectOrId }] }, select: { id: true, subject: true } });
  if (!r) return false;
  const consents = await db.myProxyRenewalConsent.count({ where: { renewerId: r.id, revokedAt: null } });
  await db.$transaction([
    db.myProxyRenewer.delete({ where: { id: r.id }, select: { id: true } }),
    recordAudit(db, { ...audit, action: "myproxy.renewer.remove", details: { ...audit.details, renewerId: r.id, subject: r.subject, consentsDropped: consents } }),
  ]);
  return true;
}

export function listMyProxyRenewers(db: Db) {
  return db.myProxyRenewer.findMany({ orderBy: { subject: "asc" }, select: renewerSummary });
}

/** The renewer with this host subject, with its CA certificates and CRLs (for chain validation). */
export function findMyProxyRenewerBySubject(db: Db, subject: string) {
  return db.myProxyRenewer.findUnique({ where: { subject }, select: renewerSelect });
}

const consentSelect = { id: true, identityId: true, renewerId: true, vo: true, role: true, createdAt: true, expiresAt: true, revokedAt: true } as const;

/** A person's consent to renewal by one renewer, with its audit event. */
export async function addRenewalConsent(db: Db, c: { identityId: string; renewerId: string; vo: string; role: string | null; expiresAt: Date }, audit: AuditInput): Promise<string> {
  const id = newId();
  await db.$transaction([
    db.myProxyRenewalConsent.create({ data: { id, ...c }, select: { id: true } }),
    recordAudit(db, { ...audit, identityId: c.identityId, details: { ...audit.details, consentId: id, renewerId: c.renewerId, vo: c.vo, role: c.role, expiresAt: c.expiresAt.toISOString() } }),
  ]);
  return id;
}

/** Withdraw one of the person's own consents (only theirs, only if still standing); false when there was none. */
export async function revokeRenewalConsent(db: Db, identityId: string, consentId: string, now: Date, audit: AuditInput): Promise<boolean> {
  const standing = await db.myProxyRenewalConsent.findFirst({ where: { id: consentId, identityId, revokedAt: null }, select: { id: true, renewerId: true, vo: true, role: true } });
  if (!standing) return false;
  await db.$transaction([
    db.myProxyRenewalConsent.updateMany({ where: { id: consentId, identityId, revokedAt: null }, data: { revokedAt: now } }),
    recordAudit(db, { ...audit, identityId, details: { ...audit.details, consentId, renewerId: standing.renewerId, vo: standing.vo, role: standing.role } }),
  ]);
  return true;
}

/** The person's consents that still stand (not revoked, not ended), with the renewer's name. */
export function listLiveRenewalConsents(db: Db, identityId: string, now: Date) {
  return db.myProxyRenewalConsent.findMany({
    where: { identityId, revokedAt: null, expiresAt: { gt: now } },
    orderBy: { expiresAt: "asc" },
    select: { ...consentSelect, renewer: { select: { subject: true, label: true } } },
  });
}

/** Every consent of a person for one renewer (standing or not): the provisioner decides and names why not. */
export function findRenewalConsents(db: Db, identityId: string, renewerId: string) {
  return db.myProxyRenewalConsent.findMany({ where: { identityId, renewerId }, orderBy: { expiresAt: "desc" }, select: consentSelect });
}
