/**
 * Revocation of user certificates and the CRL (RFC 5280 §5). Proxies are not
 * listed: they are short-lived and signed by the user certificate, so
 * revoking that certificate invalidates every proxy under it for relying
 * parties that check the CA's CRL, and stops new ones from being issued.
 */
import { CertbridgeError, invalidRequest, notFound } from "../errors";
import * as der from "../pki/der";
import { encodeTbsCrl, signStructure } from "../pki/x509";
import { findCertificate, listRevokedForCrl, recordCrlPublication, revokeCertificate, type Db } from "../db";
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

export async function revokeUserCertificate(
  cb: Certbridge,
  target: { id: string } | { serialHex: string },
  reason: RevocationReason,
  audit: { actor: string; comment: string; ip?: string },
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
  cb.userKeys.delete(cert.id);
  return { ...cert, status: "revoked" as const, revokedAt: at, reason };
}

export const CRL_BACKDATE_SECONDS = 5 * 60;

export interface Crl {
  der: Uint8Array;
  pem: string;
  number: number;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedCount: number;
}

/** Sign a fresh CRL with the current revocations; each publication gets the next CRL number. */
export async function publishCrl(cb: { db: Db; ca: Certbridge["ca"]; clock: Certbridge["clock"]; config: Certbridge["config"] }): Promise<Crl> {
  const now = new Date(Math.floor(cb.clock().getTime() / 1000) * 1000);
  // Back-dated like proxies: Globus ignores a CRL whose thisUpdate is not yet
  // in the past on a relying party whose clock runs slightly behind ours.
  const thisUpdate = new Date(now.getTime() - CRL_BACKDATE_SECONDS * 1000);
  const nextUpdate = new Date(now.getTime() + cb.config.ca.crlLifetimeSeconds * 1000);
  const revoked = await listRevokedForCrl(cb.db, cb.ca.subject, now);
  const number = await recordCrlPublication(cb.db, cb.ca.fingerprint, thisUpdate, nextUpdate);
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
  return { der: crlDer, pem: der.toPem("X509 CRL", crlDer), number, thisUpdate, nextUpdate, revokedCount: revoked.length };
}
