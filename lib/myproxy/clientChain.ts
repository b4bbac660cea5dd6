/**
 * The client's certificate chain on the MyProxy listener (myproxy-info
 * authenticates with the person's proxy). Node cannot let OpenSSL accept
 * proxy certificates (X509_V_FLAG_ALLOW_PROXY_CERTS), so the TLS layer asks
 * for a certificate without judging it and the chain is checked here
 * (RFC 3820 §4): each proxy is signed by the certificate after it, named
 * after it plus one CN, and current; the end-entity certificate is one this
 * portal's CA issued, current, and not revoked (OpenSSL relying parties skip
 * CRLs on the proxy part too: revocation is of end-entity certificates).
 */
import crypto from "node:crypto";
import type { CertificateAuthority } from "../ca/authority";
import { findCertificate, type Db } from "../db";
import { accessDenied } from "../errors";
import { decodeCertificate, type DecodedCertificate } from "../inspect/certificate";

export interface ClientIdentity {
  /** The end-entity subject (slash form): the person's DN. */
  subject: string;
  identityId: string;
  /** The earliest end of the chain. */
  notAfter: Date;
  /** The end-entity (user) certificate's validity. */
  userNotBefore: Date;
  userNotAfter: Date;
}

const refuse = (why: string) => accessDenied(`your certificate chain is not acceptable: ${why}`);

export interface ChainCertificate {
  decoded: DecodedCertificate;
  x509: crypto.X509Certificate;
}

/**
 * The proxy part of a chain, leaf first (RFC 3820 §4.1): each proxy is current, signed by the
 * certificate after it and named after it plus one CN. Returns the end-entity certificate's index
 * and the earliest end of the chain up to it. `refuse` words the error for the caller's protocol.
 */
export function walkProxies(ders: readonly Uint8Array[], now: Date, refuse: (why: string) => Error): { certs: ChainCertificate[]; eec: number; notAfter: Date } {
  if (ders.length > 10) throw refuse("too many certificates");
  const certs = ders.map((d) => {
    try {
      return { decoded: decodeCertificate(d), x509: new crypto.X509Certificate(Buffer.from(d)) };
    } catch {
      throw refuse("a certificate in it cannot be parsed");
    }
  });
  let notAfter = new Date(8640000000000000);
  for (let i = 0; ; i++) {
    const c = certs[i];
    if (!c) throw refuse("no end-entity certificate in the chain");
    const { decoded, x509 } = c;
    if (decoded.notBefore > now || decoded.notAfter < now) throw refuse(`${decoded.subject} is not valid now (${decoded.notAfter < now ? "expired" : "not yet valid"})`);
    if (decoded.notAfter < notAfter) notAfter = decoded.notAfter;
    if (!decoded.proxy) return { certs, eec: i, notAfter };
    const issuer = certs[i + 1];
    if (!issuer) throw refuse("the proxy's issuer was not sent");
    if (decoded.issuer !== issuer.decoded.subject || !decoded.subject.startsWith(`${issuer.decoded.subject}/CN=`) || decoded.subject.slice(issuer.decoded.subject.length + 1).includes("/")) {
      throw refuse(`${decoded.subject} is not a proxy of ${issuer.decoded.subject}`);
    }
    if (!x509.verify(issuer.x509.publicKey)) throw refuse(`the signature on ${decoded.subject} does not verify`);
  }
}

export async function verifyClientChain(db: Db, ca: CertificateAuthority, ders: readonly Uint8Array[], now: Date): Promise<ClientIdentity> {
  if (ders.length === 0) throw accessDenied("this command needs your proxy certificate (X509_USER_PROXY) for authentication");
  const { certs, eec, notAfter } = walkProxies(ders, now, refuse);
  const { decoded, x509 } = certs[eec]!;
  // The end-entity certificate: this portal's CA's, and still standing.
  if (decoded.issuer !== ca.subject || !x509.verify(crypto.createPublicKey({ key: Buffer.from(ca.parts.spki), format: "der", type: "spki" }))) {
    throw refuse(`${decoded.subject} was not issued by this portal's CA`);
  }
  const row = await findCertificate(db, { serialHex: decoded.serialHex });
  if (!row || row.kind !== "user" || row.subject !== decoded.subject || !row.identityId) throw refuse(`${decoded.subject} is not a certificate this portal issued`);
  if (row.status !== "valid") throw refuse(`${decoded.subject} (serial ${decoded.serialHex}) is revoked`);
  return { subject: decoded.subject, identityId: row.identityId, notAfter, userNotBefore: decoded.notBefore, userNotAfter: decoded.notAfter };
}
