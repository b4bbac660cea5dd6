/**
 * Revocation of user certificates and the CRL (RFC 5280 §5). Proxies are not
 * listed: they are short-lived and signed by the user certificate, so
 * revoking that certificate invalidates every proxy under it for relying
 * parties that check the CA's CRL, and stops new ones from being issued.
 */
import { CertbridgeError, invalidRequest, notFound } from "../errors";
import * as der from "../pki/der";
import { encodeTbsCrl, signStructure } from "../pki/x509";
import { findCertificate, findCurrentCrl, findCurrentCrlInfo, latestRevocationAt, listRevokedForCrl, revokeCertificate, withCrlWriterLock, type Db, type StoredCrl } from "../db";
import type { Certbridge } from "../certbridge";

/** CRLReason values (RFC 5280 §5.3.1) an operator may give; 7 is unused and 8 (removeFromCRL) is delta-CRL only. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export function parseRevocationReason(text: string): RevocationReason {
  if (text in REVOCATION_REASONS) return text as RevocationReason;
  throw invalidRequest(`unknown revocation reason "${text}"; use one of: ${Object.keys(REVOCATION_REASONS).join(", ")}`);
}

/** Revoke through the process's authority (which also drops the cached user key). */
export function revokeUserCertificate(
  cb: Pick<Certbridge, "authority">,
  target: { id: string } | { serialHex: string },
  reason: RevocationReason,
  audit: { actor: string; comment: string; ip?: string },
) {
  return cb.authority.revoke(target, reason, audit);
}

/** The authority's revocation: mark the certificate revoked (with its audit event), forget its key, re-sign the CRL. */
export async function revokeAndResign(
  cb: CrlDeps,
  target: { id: string } | { serialHex: string },
  reason: RevocationReason,
  audit: { actor: string; comment: string; ip?: string },
  forgetKey: (certificateId: string) => void,
) {
  const cert = await findCertificate(cb.db, target);
  if (!cert) throw notFound("no certificate with that id or serial");
  if (cert.kind !== "user") throw invalidRequest("only user certificates are revoked; a proxy ends with its short lifetime (revoke its user certificate to stop it)");
  if (cert.status === "revoked") throw new CertbridgeError("conflict", `certificate ${cert.serialHex} is already revoked`);
  const at = cb.clock();
  const done = await revokeCertificate(cb.db, cert.id, { at, reason: REVOCATION_REASONS[reason] }, {
    action: "certificate.revoke",
    actor: audit.actor,
    ip: audit.ip ?? null,
    identityId: cert.identityId,
    details: { serial: cert.serialHex, subject: cert.subject, reason, comment: audit.comment },
  });
  if (!done) throw new CertbridgeError("conflict", `certificate ${cert.serialHex} was revoked concurrently`);
  forgetKey(cert.id);
  // The stored CRL is re-signed at once, right after the revocation commits, under the CRL lock (not in the
  // revocation's transaction: the revocation and its audit event stand even if signing fails, and the
  // schedule then re-signs because a revocation is newer than the CRL). Concurrent revocations each sign
  // in turn, and the later number lists both.
  const crl = await publishCrl(cb);
  return { ...cert, status: "revoked" as const, revokedAt: at, reason, crl: { number: crl.number } };
}

export const CRL_BACKDATE_SECONDS = 5 * 60;

export interface Crl {
  der: Uint8Array;
  pem: string;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  /** When it was signed (thisUpdate is back-dated). */
  issuedAt: Date;
  revokedCount: number;
}

type CrlDeps = { db: Db; ca: Certbridge["ca"]; clock: Certbridge["clock"]; config: Certbridge["config"] };

const asCrl = (c: StoredCrl): Crl => ({ ...c, der: new Uint8Array(c.der), pem: der.toPem("X509 CRL", c.der) });

/**
 * Sign a fresh CRL with the current revocations and store it: the one CRL
 * writer. The number is reserved, the revocations read and the CRL stored
 * in one transaction under the database's CRL lock (lib/db/crl.ts), so with
 * several instances numbers strictly increase and none repeats.
 */
export async function publishCrl(cb: CrlDeps): Promise<Crl> {
  const stored = await withCrlWriterLock(cb.db, cb.config.databaseUrl, cb.ca.fingerprint, async (tx, number) => {
    // Times are read under the lock: a later number never has an earlier thisUpdate.
    const signedAt = cb.clock();
    const now = new Date(Math.floor(signedAt.getTime() / 1000) * 1000);
    // Back-dated like proxies: Globus ignores a CRL whose thisUpdate is not yet
    // in the past on a relying party whose clock runs slightly behind ours.
    const thisUpdate = new Date(now.getTime() - CRL_BACKDATE_SECONDS * 1000);
    const nextUpdate = new Date(now.getTime() + cb.config.ca.crlLifetimeSeconds * 1000);
    const revoked = await listRevokedForCrl(tx, cb.ca.subject, now);
    const tbs = encodeTbsCrl({
      issuer: cb.ca.parts.subject,
      thisUpdate,
      nextUpdate,
      authorityKeyId: cb.ca.keyId,
      crlNumber: number,
      signatureAlgorithm: cb.ca.custody.signatureAlgorithm,
      revoked: revoked.map((r) => ({
        serial: Uint8Array.from(Buffer.from(r.serialHex.length % 2 ? `0${r.serialHex}` : r.serialHex, "hex")),
        revokedAt: r.revokedAt ?? thisUpdate,
        reason: r.revocationReason ?? 0,
      })),
    });
    const crlDer = await signStructure(tbs, cb.ca.custody);
    return { der: crlDer, thisUpdate, nextUpdate, issuedAt: signedAt, revokedCount: revoked.length };
  });
  return asCrl(stored);
}

/** The stored CRL as relying parties get it; signs the first one if none exists yet. */
export async function currentCrl(cb: CrlDeps): Promise<Crl> {
  const stored = await findCurrentCrl(cb.db, cb.ca.fingerprint);
  return stored ? asCrl(stored) : publishCrl(cb);
}

/** Re-sign when less than this fraction of the CRL's lifetime remains. */
export const CRL_REFRESH_FRACTION = 1 / 3;

/**
 * The schedule's check (server.ts runs it on a timer): re-sign when there is
 * no CRL, when less than a third of its lifetime remains, or when a
 * revocation is newer than it (a revocation whose immediate re-signing
 * failed). The new CRL overlaps the old one by that third: relying parties
 * that fetched the old one shortly before still hold a valid CRL, and one
 * that polls at nextUpdate finds the new one long since published. Several
 * instances may all decide to re-sign at once: the lock serialises them and
 * each one only costs a number.
 */
export async function refreshCrlIfDue(cb: CrlDeps): Promise<Crl | null> {
  const info = await findCurrentCrlInfo(cb.db, cb.ca.fingerprint);
  const now = cb.clock().getTime();
  const due =
    !info ||
    info.nextUpdate.getTime() - now < cb.config.ca.crlLifetimeSeconds * 1000 * CRL_REFRESH_FRACTION ||
    ((await latestRevocationAt(cb.db, cb.ca.subject))?.getTime() ?? -Infinity) > info.issuedAt.getTime();
  return due ? publishCrl(cb) : null;
}

/** How often the schedule checks (a query or two): a lost re-signing after a revocation is repaired within this. */
export const CRL_CHECK_INTERVAL_MS = 60_000;

/**
 * The CRL schedule of a server process: checks now and then every minute,
 * re-signing when refreshCrlIfDue says so (less than a third of the lifetime
 * left, so a new CRL overlaps the old one by at least that third). Unref'd:
 * it never keeps the process alive; `stop` ends it (on close).
 */
export function startCrlSchedule(cb: CrlDeps, log: (m: string) => void, intervalMs = CRL_CHECK_INTERVAL_MS): { stop(): void } {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = refreshCrlIfDue(cb)
      .then((crl) => crl && log(`CRL #${crl.number} signed (${crl.revokedCount} revoked), next update ${crl.nextUpdate.toISOString()}`))
      .catch((e: unknown) => log(`CRL re-signing failed (retrying in ${Math.round(intervalMs / 1000)} s): ${(e as Error).message}`))
      .finally(() => (running = null));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
