/**
 * The one Prisma module: verb-noun functions with explicit selects. Sealed
 * private keys are selected only by `findUserCertificateWithKey`. Every state
 * change that must be audited takes its audit event and writes both in one
 * transaction.
 */
import crypto from "node:crypto";
import type { Db } from "./client";

export type { Db } from "./client";
export { openDatabase, dbKindOf } from "./client";
export { openMigratedDatabase } from "./migrate";
export { findCurrentCrl, findCurrentCrlInfo, latestRevocationAt, withCrlWriterLock, type StoredCrl, type CrlTx } from "./crl";

export type CertificateKind = "user" | "proxy";
export type KeySource = "csr" | "spki" | "server" | "ca";

export interface AuditInput {
  action: string;
  actor: string;
  outcome?: "success" | "refused" | "failure";
  identityId?: string | null;
  certificateId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
}

export const newId = () => crypto.randomUUID();

function auditData(a: AuditInput, overrides: { identityId?: string; certificateId?: string } = {}) {
  return {
    id: newId(),
    action: a.action,
    actor: a.actor,
    outcome: a.outcome ?? "success",
    identityId: overrides.identityId ?? a.identityId ?? null,
    certificateId: overrides.certificateId ?? a.certificateId ?? null,
    clientId: a.clientId ?? null,
    ip: a.ip ?? null,
    details: JSON.stringify(a.details ?? {}),
  };
}

/* ---------- CA ---------- */

export const caRecordSelect = {
  id: true,
  subject: true,
  certPem: true,
  fingerprint: true,
  notAfter: true,
  crlNumber: true,
  crlIssuedAt: true,
  crlNextUpdate: true,
  createdAt: true,
} as const;

export async function upsertCaRecord(
  db: Db,
  ca: { fingerprint: string; subject: string; certPem: string; notAfter: Date },
  audit: AuditInput | null,
) {
  const existing = await db.caRecord.findUnique({ where: { id: ca.fingerprint }, select: { id: true } });
  if (existing) return;
  await db.$transaction([
    db.caRecord.create({ data: { id: ca.fingerprint, ...ca } }),
    ...(audit ? [db.auditEvent.create({ data: auditData(audit) })] : []),
  ]);
}

export function getCaRecord(db: Db, fingerprint: string) {
  return db.caRecord.findUnique({ where: { id: fingerprint }, select: caRecordSelect });
}

/** Reserve the next CRL number (RFC 5280 §5.2.3: monotonically increasing) and record the publication. */
export async function recordCrlPublication(db: Db, fingerprint: string, issuedAt: Date, nextUpdate: Date): Promise<number> {
  const row = await db.caRecord.update({
    where: { id: fingerprint },
    data: { crlNumber: { increment: 1 }, crlIssuedAt: issuedAt, crlNextUpdate: nextUpdate },
    select: { crlNumber: true },
  });
  return row.crlNumber;
}

/* ---------- identities ---------- */

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
    db.auditEvent.create({ data: auditData(audit, { identityId: id }) }),
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

/** The person's last verified claims (what proxies are issued from). */
export function findIdentityClaims(db: Db, id: string) {
  return db.identity.findUnique({ where: { id }, select: { ...identitySelect, claims: true } });
}

export function findIdentity(db: Db, id: string) {
  return db.identity.findUnique({ where: { id }, select: identitySelect });
}

/* ---------- certificates ---------- */

export const certificateSelect = {
  id: true,
  kind: true,
  serialHex: true,
  serialDec: true,
  subject: true,
  issuer: true,
  identityId: true,
  parentId: true,
  notBefore: true,
  notAfter: true,
  keySource: true,
  keyBits: true,
  clientId: true,
  vo: true,
  fqans: true,
  status: true,
  revokedAt: true,
  revocationReason: true,
  createdAt: true,
} as const;

export interface NewCertificate {
  kind: CertificateKind;
  serialHex: string;
  serialDec: string;
  subject: string;
  issuer: string;
  identityId: string;
  parentId?: string | null;
  notBefore: Date;
  notAfter: Date;
  pem: string;
  keyEnc?: string | null;
  keySource: KeySource;
  keyBits: number;
  clientId?: string | null;
  vo?: string | null;
  fqans?: string[] | null;
}

/** Store a certificate and its issuance event atomically; returns the new id. */
export async function storeIssuedCertificate(db: Db, cert: NewCertificate & { id?: string }, audit: AuditInput): Promise<string> {
  const id = cert.id ?? newId();
  await db.$transaction([
    db.certificate.create({
      data: { ...cert, id, fqans: cert.fqans ? JSON.stringify(cert.fqans) : null },
      select: { id: true },
    }),
    db.auditEvent.create({ data: auditData(audit, { certificateId: id, identityId: cert.identityId }) }),
  ]);
  return id;
}

type PendingIssuance = {
  cert: NewCertificate & { id: string };
  audit: AuditInput;
  resolve: (id: string) => void;
  reject: (e: unknown) => void;
};

/**
 * Group commit for proxy issuance: certificates stored while a write is in
 * flight are written together in the next transaction (one createMany per
 * table). Each certificate still commits together with its own audit event,
 * so the audit trail never describes state that does not exist. If a batch
 * fails (say, one repeated serial), its members are retried one by one so
 * only the offender sees the error.
 */
export class IssuanceWriter {
  private queue: PendingIssuance[] = [];
  private writing = false;

  constructor(private readonly db: Db, private readonly maxBatch = 256) {}

  store(cert: NewCertificate, audit: AuditInput): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ cert: { ...cert, id: newId() }, audit, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    // Let the callers that are ready in this turn of the event loop join the batch.
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        if (batch.length === 1) {
          const [one] = batch;
          one!.resolve(await storeIssuedCertificate(this.db, one!.cert, one!.audit));
          continue;
        }
        await this.db.$transaction([
          this.db.certificate.createMany({
            data: batch.map(({ cert }) => ({ ...cert, fqans: cert.fqans ? JSON.stringify(cert.fqans) : null })),
          }),
          this.db.auditEvent.createMany({
            data: batch.map(({ cert, audit }) => auditData(audit, { certificateId: cert.id, identityId: cert.identityId })),
          }),
        ]);
        for (const p of batch) p.resolve(p.cert.id);
      } catch (e) {
        if (batch.length === 1) {
          batch[0]!.reject(e);
          continue;
        }
        for (const p of batch) {
          await storeIssuedCertificate(this.db, p.cert, p.audit).then(p.resolve, p.reject);
        }
      }
    }
    this.writing = false;
  }
}

/** The newest valid user certificate of a person that lasts at least until `minNotAfter`, with its sealed key. */
/**
 * Only the id of that certificate: the hot path's question (has it been
 * revoked or renewed?) when the key is already open in memory. Raw SQL, the
 * same statement on SQLite and PostgreSQL, to skip Prisma's per-query compile.
 */
export async function findCurrentUserCertificateId(db: Db, identityId: string, minNotAfter: Date): Promise<string | null> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT "id" FROM "Certificate"
    WHERE "identityId" = ${identityId} AND "kind" = 'user' AND "status" = 'valid' AND "notAfter" >= ${minNotAfter}
    ORDER BY "notAfter" DESC LIMIT 1`;
  return rows[0]?.id ?? null;
}

export function findUserCertificateWithKey(db: Db, identityId: string, minNotAfter: Date) {
  return db.certificate.findFirst({
    where: { identityId, kind: "user", status: "valid", notAfter: { gte: minNotAfter } },
    orderBy: { notAfter: "desc" },
    select: { ...certificateSelect, pem: true, keyEnc: true },
  });
}

export function findCertificate(db: Db, where: { id: string } | { serialHex: string }) {
  return "id" in where
    ? db.certificate.findUnique({ where: { id: where.id }, select: { ...certificateSelect, pem: true } })
    : db.certificate.findFirst({ where: { serialHex: where.serialHex.toLowerCase() }, select: { ...certificateSelect, pem: true } });
}

export async function revokeCertificate(
  db: Db,
  id: string,
  revocation: { at: Date; reason: number },
  audit: AuditInput,
): Promise<boolean> {
  const [updated] = await db.$transaction([
    db.certificate.updateMany({
      where: { id, status: "valid" },
      data: { status: "revoked", revokedAt: revocation.at, revocationReason: revocation.reason },
    }),
    db.auditEvent.create({ data: auditData(audit, { certificateId: id }) }),
  ]);
  return updated.count === 1;
}

/** Revoked user certificates of one CA that have not yet expired (expired ones may leave the CRL, RFC 5280 §3.3). */
export function listRevokedForCrl(db: Pick<Db, "certificate">, issuer: string, now: Date) {
  return db.certificate.findMany({
    where: { issuer, kind: "user", status: "revoked", notAfter: { gt: now } },
    orderBy: { revokedAt: "asc" },
    select: { serialHex: true, revokedAt: true, revocationReason: true },
  });
}

/* ---------- audit ---------- */

export function recordAudit(db: Db, audit: AuditInput) {
  return db.auditEvent.create({ data: auditData(audit), select: { id: true } });
}

export const auditSelect = {
  id: true,
  at: true,
  action: true,
  actor: true,
  outcome: true,
  identityId: true,
  certificateId: true,
  clientId: true,
  ip: true,
  details: true,
} as const;

export function listAuditEvents(db: Db, f: { certificateId?: string; identityId?: string; action?: string; limit: number }) {
  return db.auditEvent.findMany({
    where: { certificateId: f.certificateId, identityId: f.identityId, action: f.action },
    orderBy: [{ at: "desc" }, { id: "desc" }],
    take: f.limit,
    select: auditSelect,
  });
}

export function isUniqueViolation(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: string }).code === "P2002";
}

/* ---------- consoles: grants, audit search, overview ---------- */

/** A person's consents: oidc-provider Grant rows, with the latest expiry of their refresh tokens. */
export async function listGrantsOfAccount(db: Db, accountId: string, now: Date) {
  const grants = await db.oidcPayload.findMany({
    where: { accountId, model: "Grant", OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
    select: { id: true, payload: true, expiresAt: true },
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
    const p = JSON.parse(g.payload) as { clientId?: string; iat?: number; openid?: { scope?: string } };
    const t = byGrant.get(g.id);
    return {
      grantId: g.id,
      clientId: p.clientId ?? "?",
      scopes: (p.openid?.scope ?? "").split(" ").filter(Boolean),
      grantedAt: p.iat ? new Date(p.iat * 1000) : null,
      expiresAt: g.expiresAt,
      refreshTokens: t?._count._all ?? 0,
      refreshUntil: t?._max.expiresAt ?? null,
    };
  });
}

/**
 * Withdraw a consent: the grant and every token issued under it (RFC 7009
 * §2.1 cascading), with its audit event, in one transaction. Only the
 * grant's own person may do this; returns the grant's client, or null when
 * the grant is not theirs (or is gone).
 */
export async function deleteGrantOfAccount(db: Db, accountId: string, grantId: string, audit: AuditInput): Promise<string | null> {
  const grant = await db.oidcPayload.findFirst({ where: { model: "Grant", id: grantId, accountId }, select: { payload: true } });
  if (!grant) return null;
  const clientId = (JSON.parse(grant.payload) as { clientId?: string }).clientId ?? null;
  await db.$transaction([
    db.oidcPayload.deleteMany({ where: { grantId, model: { not: "Grant" } } }),
    db.oidcPayload.deleteMany({ where: { model: "Grant", id: grantId, accountId } }),
    db.auditEvent.create({ data: auditData({ ...audit, clientId, identityId: accountId, details: { ...audit.details, grantId } }) }),
  ]);
  return clientId;
}


export interface AuditFilter {
  /** An exact action ("proxy.issue") or a family ("proxy."). */
  action?: string;
  actor?: string;
  outcome?: string;
  clientId?: string;
  identityId?: string;
  certificateId?: string;
  from?: Date;
  to?: Date;
  /** Keyset: events strictly older than this (at, id). */
  before?: { at: Date; id: string };
}

/** Audit events, newest first, by keyset pages (index at / action,at / clientId,at / actor,at / identityId,at). */
export function searchAuditEvents(db: Db, f: AuditFilter, take: number) {
  return db.auditEvent.findMany({
    where: {
      AND: [
        f.action ? (f.action.endsWith(".") ? { action: { startsWith: f.action } } : { action: f.action }) : {},
        f.actor ? { actor: f.actor } : {},
        f.outcome ? { outcome: f.outcome } : {},
        f.clientId ? { clientId: f.clientId } : {},
        f.identityId ? { identityId: f.identityId } : {},
        f.certificateId ? { certificateId: f.certificateId } : {},
        f.from ? { at: { gte: f.from } } : {},
        f.to ? { at: { lt: f.to } } : {},
        f.before ? { OR: [{ at: { lt: f.before.at } }, { at: f.before.at, id: { lt: f.before.id } }] } : {},
      ],
    },
    orderBy: [{ at: "desc" }, { id: "desc" }],
    take,
    select: auditSelect,
  });
}

/** Proxies issued per client in [from, to). */
export async function countProxiesByClient(db: Db, from: Date, to: Date) {
  const rows = await db.certificate.groupBy({
    by: ["clientId"],
    where: { kind: "proxy", createdAt: { gte: from, lt: to } },
    _count: { _all: true },
  });
  return rows.map((r) => ({ clientId: r.clientId, count: r._count._all }));
}

/** People seen (signed in or obtained a proxy) since `since`, and all people. */
export async function countIdentities(db: Db, since: Date) {
  const [active, total] = await Promise.all([db.identity.count({ where: { lastSeenAt: { gte: since } } }), db.identity.count()]);
  return { active, total };
}

/** Valid user certificates that end within [now, until), soonest first. */
export function listUserCertificatesEndingBefore(db: Db, now: Date, until: Date, take: number) {
  return db.certificate.findMany({
    where: { kind: "user", status: "valid", notAfter: { gt: now, lt: until } },
    orderBy: { notAfter: "asc" },
    take,
    select: certificateSelect,
  });
}

export function countRevokedCertificates(db: Db, issuer: string, now: Date) {
  return db.certificate.count({ where: { issuer, kind: "user", status: "revoked", notAfter: { gt: now } } });
}

/* ---------- SSH keys ---------- */

export const sshKeySelect = { id: true, identityId: true, label: true, algorithm: true, fingerprint: true, createdAt: true, lastUsedAt: true } as const;

export function listSshKeys(db: Db, identityId: string) {
  return db.sshKey.findMany({ where: { identityId }, orderBy: { createdAt: "asc" }, select: sshKeySelect });
}

export function countSshKeys(db: Db, identityId: string) {
  return db.sshKey.count({ where: { identityId } });
}

/** Register a key with its audit event; a fingerprint already registered (by anyone) is a unique violation. */
export async function addSshKey(db: Db, key: { identityId: string; label: string; algorithm: string; fingerprint: string; publicKey: string }, audit: AuditInput) {
  const id = newId();
  const [row] = await db.$transaction([
    db.sshKey.create({ data: { id, ...key }, select: sshKeySelect }),
    db.auditEvent.create({ data: auditData({ ...audit, identityId: key.identityId, details: { ...audit.details, fingerprint: key.fingerprint, label: key.label, algorithm: key.algorithm } }) }),
  ]);
  return row;
}

/** Delete one of a person's keys with its audit event; false when it is not theirs (or gone). */
export async function deleteSshKey(db: Db, identityId: string, id: string, audit: AuditInput): Promise<boolean> {
  const key = await db.sshKey.findFirst({ where: { id, identityId }, select: { fingerprint: true, label: true } });
  if (!key) return false;
  const [deleted] = await db.$transaction([
    db.sshKey.deleteMany({ where: { id, identityId } }),
    db.auditEvent.create({ data: auditData({ ...audit, identityId, details: { ...audit.details, fingerprint: key.fingerprint, label: key.label } }) }),
  ]);
  return deleted.count === 1;
}

/** The owner of a key presented at the SSH server (the blob must match, not only the fingerprint). */
export function findSshKeyByFingerprint(db: Db, fingerprint: string) {
  return db.sshKey.findUnique({ where: { fingerprint }, select: { ...sshKeySelect, publicKey: true } });
}

export function touchSshKey(db: Db, id: string, at: Date) {
  return db.sshKey.updateMany({ where: { id }, data: { lastUsedAt: at } });
}
