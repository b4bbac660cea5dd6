/**
 * Certificates: user (end-entity) certificates and proxies. Sealed private
 * keys are selected only by `findUserCertificateWithKey`. Issuance stores a
 * certificate together with its audit event, alone or in group commits
 * (IssuanceWriter). The statements of the issuance hot path run on the
 * driver (lib/db/direct.ts).
 */
import { auditRow, recordAudit, type AuditInput } from "./audit";
import { directSqlOf, newId, newTimeOrderedId, type Db } from "./client";
import { statement, type DirectSql, type SqlParam } from "./direct";

export type CertificateKind = "user" | "proxy";
export type KeySource = "csr" | "spki" | "server" | "ca";

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

const certificateRow = (cert: NewCertificate & { id: string }) => ({ ...cert, fqans: cert.fqans ? JSON.stringify(cert.fqans) : null });
const issuanceAudit = (cert: NewCertificate & { id: string }, audit: AuditInput): AuditInput => ({ ...audit, certificateId: cert.id, identityId: cert.identityId });

/** Store a certificate and its issuance event atomically; returns the new id. */
export async function storeIssuedCertificate(db: Db, cert: NewCertificate & { id?: string }, audit: AuditInput): Promise<string> {
  const row = { ...cert, id: cert.id ?? newId() };
  await db.$transaction([db.certificate.create({ data: certificateRow(row), select: { id: true } }), recordAudit(db, issuanceAudit(row, audit))]);
  return row.id;
}

type PendingIssuance = {
  cert: NewCertificate & { id: string };
  audit: AuditInput;
  resolve: (id: string) => void;
  reject: (e: unknown) => void;
};

const CERTIFICATE_COLUMNS = ["id", "kind", "serialHex", "serialDec", "subject", "issuer", "identityId", "parentId", "notBefore", "notAfter", "pem", "keyEnc", "keySource", "keyBits", "clientId", "vo", "fqans", "status", "createdAt"] as const;
const AUDIT_COLUMNS = ["id", "at", "action", "actor", "outcome", "identityId", "certificateId", "clientId", "ip", "details"] as const;
const quoted = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(", ");
const INSERT_CERTIFICATE = statement("insert_certificate", `INSERT INTO "Certificate" (${quoted(CERTIFICATE_COLUMNS)}) VALUES (${CERTIFICATE_COLUMNS.map(() => "?").join(", ")})`);
const INSERT_AUDIT = statement("insert_audit_event", `INSERT INTO "AuditEvent" (${quoted(AUDIT_COLUMNS)}) VALUES (${AUDIT_COLUMNS.map(() => "?").join(", ")})`);
/** PostgreSQL: every certificate of a batch and every audit event in one statement (one round trip, atomic), from column arrays. */
const PG_CERTIFICATE_TYPES = ["text", "text", "text", "text", "text", "text", "text", "text", "timestamp(3)", "timestamp(3)", "text", "text", "text", "int4", "text", "text", "text", "text", "timestamp(3)"];
const PG_AUDIT_TYPES = ["text", "timestamp(3)", "text", "text", "text", "text", "text", "text", "text", "text"];
const INSERT_ISSUANCES = statement(
  "insert_issuances",
  "",
  `WITH certificates AS (
     INSERT INTO "Certificate" (${quoted(CERTIFICATE_COLUMNS)})
     SELECT * FROM unnest(${PG_CERTIFICATE_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(", ")}) RETURNING 1)
   INSERT INTO "AuditEvent" (${quoted(AUDIT_COLUMNS)})
   SELECT * FROM unnest(${PG_AUDIT_TYPES.map((t, i) => `$${PG_CERTIFICATE_TYPES.length + i + 1}::${t}[]`).join(", ")})`,
);

function certificateValues(cert: NewCertificate & { id: string }, at: Date): SqlParam[] {
  const r = certificateRow(cert);
  return [r.id, r.kind, r.serialHex, r.serialDec, r.subject, r.issuer, r.identityId, r.parentId ?? null, r.notBefore, r.notAfter, r.pem, r.keyEnc ?? null, r.keySource, r.keyBits, r.clientId ?? null, r.vo ?? null, r.fqans, "valid", at];
}

function auditValues(a: AuditInput, at: Date): SqlParam[] {
  const r = auditRow(a);
  return [r.id, at, r.action, r.actor, r.outcome, r.identityId, r.certificateId, r.clientId, r.ip, r.details];
}

/** Columns of rows (row-major to column-major) for PostgreSQL's unnest. */
const columnsOf = (rows: SqlParam[][], width: number) => Array.from({ length: width }, (_, c) => rows.map((r) => r[c]));

/** Certificates with their issuance events, all or none, through the driver (lib/db/direct.ts). */
async function insertIssuances(direct: DirectSql, batch: readonly { cert: NewCertificate & { id: string }; audit: AuditInput }[], at: Date): Promise<void> {
  const certs = batch.map(({ cert }) => certificateValues(cert, at));
  const audits = batch.map(({ cert, audit }) => auditValues(issuanceAudit(cert, audit), at));
  await direct.write({
    sqlite: [...certs.map((params) => ({ stmt: INSERT_CERTIFICATE, params })), ...audits.map((params) => ({ stmt: INSERT_AUDIT, params }))],
    pg: { stmt: INSERT_ISSUANCES, params: [...columnsOf(certs, CERTIFICATE_COLUMNS.length), ...columnsOf(audits, AUDIT_COLUMNS.length)] },
  });
}

/**
 * Group commit for proxy issuance: certificates stored while a write is in
 * flight are written together in the next transaction. Each certificate still
 * commits together with its own audit event, so the audit trail never
 * describes state that does not exist, and a caller hears "stored" only after
 * the COMMIT. If a batch fails (say, one repeated serial), its members are
 * retried one by one so only the offender sees the error.
 */
export class IssuanceWriter {
  private queue: PendingIssuance[] = [];
  private writing = false;
  private readonly direct: DirectSql;

  constructor(db: Db, private readonly maxBatch = 256) {
    this.direct = directSqlOf(db);
  }

  store(cert: NewCertificate, audit: AuditInput): Promise<string> {
    return new Promise((resolve, reject) => {
      this.queue.push({ cert: { ...cert, id: newTimeOrderedId() }, audit, resolve, reject });
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
        await insertIssuances(this.direct, batch, new Date());
        for (const p of batch) p.resolve(p.cert.id);
      } catch (e) {
        if (batch.length === 1) {
          batch[0]!.reject(e);
          continue;
        }
        for (const p of batch) await insertIssuances(this.direct, [p], new Date()).then(() => p.resolve(p.cert.id), p.reject);
      }
    }
    this.writing = false;
  }
}

/**
 * Only the id of the newest valid user certificate of a person that lasts at
 * least until `minNotAfter`: the hot path's question (has it been revoked or
 * renewed?) when the key is already open in memory. Raw SQL, the same
 * statement on SQLite and PostgreSQL, to skip Prisma's per-query compile.
 */
export async function findCurrentUserCertificateId(db: Db, identityId: string, minNotAfter: Date): Promise<string | null> {
  const rows = await directSqlOf(db).all<{ id: string }>(FIND_CURRENT_USER_CERTIFICATE_ID, [identityId, minNotAfter]);
  return rows[0]?.id ?? null;
}

const FIND_CURRENT_USER_CERTIFICATE_ID = statement(
  "find_current_user_certificate_id",
  `SELECT "id" FROM "Certificate" WHERE "identityId" = ? AND "kind" = 'user' AND "status" = 'valid' AND "notAfter" >= ? ORDER BY "notAfter" DESC LIMIT 1`,
);

/** That certificate itself, with its sealed key. */
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
    recordAudit(db, { ...audit, certificateId: id }),
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

/** Proxies issued per client in [from, to). */
export async function countProxiesByClient(db: Db, from: Date, to: Date) {
  const rows = await db.certificate.groupBy({
    by: ["clientId"],
    where: { kind: "proxy", createdAt: { gte: from, lt: to } },
    _count: { _all: true },
  });
  return rows.map((r) => ({ clientId: r.clientId, count: r._count._all }));
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

/* ---------- search (the admin console's and the CLI's "who got which certificate") ---------- */

export interface CertificateFilter {
  /** Part of the subject DN (case as stored). */
  subject?: string;
  /** Normalised hex serial (lower case, no colons, no leading zeros). */
  serialHex?: string;
  /** A decimal serial (proxies), matched besides the hex one. */
  serialDec?: string;
  kind?: CertificateKind;
  status?: "valid" | "expired" | "revoked";
  clientId?: string;
  vo?: string;
  keySource?: KeySource;
  identityId?: string;
  issuedAfter?: Date;
  issuedBefore?: Date;
  /** Keyset: certificates strictly older than this (createdAt, id). */
  after?: { createdAt: Date; id: string };
}

/** Certificates, newest first (createdAt then id), by keyset pages. */
export async function searchCertificateRows(db: Db, f: CertificateFilter, take: number, now: Date) {
  // Every certificate's subject starts with its person's DN, and people are
  // far fewer than certificates: match the part of a subject against people
  // (a scan of thousands, not of millions), then fetch their certificates by
  // the identity index. Too broad a term falls back to scanning certificates.
  let subjectFilter: object = {};
  if (f.subject) {
    const people = await db.identity.findMany({ where: { subject: { contains: f.subject } }, select: { id: true }, take: 1001 });
    // Only a term that could lie in a proxy's own last RDN ("/CN=<serial>") needs the certificate scan too.
    const proxyCn = /^(\/?CN=)?\d+$/.test(f.subject) ? [{ kind: "proxy", subject: { endsWith: f.subject } }] : [];
    subjectFilter =
      people.length <= 1000 ? { OR: [{ identityId: { in: people.map((p) => p.id) } }, ...proxyCn] } : { subject: { contains: f.subject } };
  }
  const after = f.after;
  return db.certificate.findMany({
    where: {
      AND: [
        subjectFilter,
        // Only serialHex is indexed (with the issuer, serial first): a decimal serial is looked up as its hex form.
        f.serialHex ? { serialHex: { in: [f.serialHex, ...(f.serialDec ? [BigInt(f.serialDec).toString(16)] : [])] } } : {},
        f.kind ? { kind: f.kind } : {},
        f.clientId ? { clientId: f.clientId } : {},
        f.vo ? { vo: { contains: f.vo } } : {},
        f.keySource ? { keySource: f.keySource } : {},
        f.identityId ? { identityId: f.identityId } : {},
        f.issuedAfter ? { createdAt: { gte: f.issuedAfter } } : {},
        f.issuedBefore ? { createdAt: { lt: f.issuedBefore } } : {},
        f.status === "revoked"
          ? { status: "revoked" }
          : f.status === "valid"
            ? { status: "valid", notAfter: { gt: now } }
            : f.status === "expired"
              ? { status: "valid", notAfter: { lte: now } }
              : {},
        after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {},
      ],
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take,
    select: certificateSelect,
  });
}
