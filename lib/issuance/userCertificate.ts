/**
 * One end-entity certificate per person (RFC 5280 profile, IGTF-style): the
 * encoder. Issuing, sealing, caching and renewing these credentials is the
 * authority's user-credentials component (lib/authority/userCredentials.ts).
 */
import type { KeyCustody } from "../pki/custody";
import { encodeTbsCertificate, ext, keyIdentifier, KeyUsage, randomSerial, signStructure, type CertificateParts } from "../pki/x509";
import { encodeName, parseSlashDn } from "../pki/dn";
import type { CertificateAuthority } from "../ca/authority";

export interface UserCredential {
  id: string;
  parts: CertificateParts;
  pem: string;
  key: KeyCustody;
}

const USER_KEY_USAGE = [KeyUsage.digitalSignature, KeyUsage.keyEncipherment, KeyUsage.dataEncipherment];
/** The AES-GCM associated data that binds a sealed user key to its certificate. */
export const userKeyContext = (certificateId: string) => `certbridge:user-key:${certificateId}`;

/** Build and sign a user certificate (pure apart from the signature). */
export async function buildUserCertificate(
  ca: CertificateAuthority,
  f: { subject: string; spki: Uint8Array; notBefore: Date; notAfter: Date; policyOid: string; crlUrl: string; serial?: Uint8Array },
): Promise<Uint8Array> {
  const tbs = encodeTbsCertificate({
    serial: f.serial ?? randomSerial(),
    issuer: ca.parts.subject,
    subject: encodeName(parseSlashDn(f.subject)),
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    spki: f.spki,
    signatureAlgorithm: ca.custody.signatureAlgorithm,
    extensions: [
      ext.basicConstraints(false),
      ext.keyUsage(USER_KEY_USAGE),
      ext.clientAuth(),
      ext.subjectKeyIdentifier(keyIdentifier(f.spki)),
      ext.authorityKeyIdentifier(ca.keyId),
      ext.crlDistributionPoint(f.crlUrl),
      ext.certificatePolicy(f.policyOid),
    ],
  });
  return signStructure(tbs, ca.custody);
}

