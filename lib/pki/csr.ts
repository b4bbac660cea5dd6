/**
 * PKCS#10 certificate requests (RFC 2986), as a proxy client makes them: the
 * key is generated locally and only this request travels to /getproxy. The
 * portal takes the public key alone (lib/pki/publicKey.ts), so the subject is
 * a placeholder. Signed sha256WithRSAEncryption: SHA-1 requests are refused.
 */
import type { SoftwareKey } from "./custody";
import * as der from "./der";
import { encodeName, type Rdn } from "./dn";
import { signStructure } from "./x509";

export const CSR_PLACEHOLDER_SUBJECT: readonly Rdn[] = [{ type: "CN", value: "certbridge-proxy-init (ignored by the CA)" }];

export async function createCsr(key: SoftwareKey, subject: readonly Rdn[] = CSR_PLACEHOLDER_SUBJECT): Promise<{ der: Uint8Array; pem: string }> {
  // CertificationRequestInfo ::= SEQUENCE { version INTEGER v1(0), subject Name, subjectPKInfo, attributes [0] IMPLICIT SET }
  const info = der.sequence(der.smallInteger(0), encodeName(subject), key.publicKeySpki, der.tlv(0xa0, new Uint8Array(0)));
  const request = await signStructure(info, key);
  return { der: request, pem: der.toPem("CERTIFICATE REQUEST", request) };
}
