/**
 * RFC 3820 impersonation proxies, shaped as Globus and VOMS expect them
 * (../shared/notes/grid-interop.md):
 * - subject = issuer subject + one CN RDN holding the serial in decimal (§3.4);
 * - ProxyCertInfo critical, policy language id-ppl-inheritAll, no path length (§3.8);
 * - keyUsage critical digitalSignature + keyEncipherment, never CA or keyCertSign;
 * - notBefore back-dated 5 minutes against clock skew, as grid-proxy-init does.
 */
import { pooledRandomBytes } from "../random";
import type { KeyCustody } from "./custody";
import * as der from "./der";
import { OID, ext, encodeTbsCertificate, signStructure, KeyUsage, type CertificateParts, type Extension } from "./x509";

export const PROXY_BACKDATE_SECONDS = 5 * 60;

export interface ProxyRequest {
  issuer: CertificateParts;
  issuerKey: KeyCustody;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** 31-bit positive serial, as Globus uses; also the last CN of the subject. */
  serial: number;
  /** Further extensions, e.g. the VOMS attribute certificate (non-critical). */
  extraExtensions?: readonly Extension[];
}

/** A random serial in 1..2^31-1. */
export function randomProxySerial(random: (n: number) => Uint8Array = pooledRandomBytes): number {
  const b = random(4);
  const v = ((b[0]! & 0x7f) << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!;
  return v === 0 ? 1 : v;
}

/** Proxy subject: the issuer's RDNs, byte-identical, plus SET { CN=<serial> } (RFC 3820 §3.4). */
export function proxySubject(issuerSubject: Uint8Array, serial: number): Uint8Array {
  const cn = der.set(der.sequence(der.oid(OID.commonName), der.printableString(String(serial))));
  return der.sequence(der.contentOf(issuerSubject), cn);
}

const PROXY_KEY_USAGE = [KeyUsage.digitalSignature, KeyUsage.keyEncipherment];

export async function buildProxyCertificate(req: ProxyRequest): Promise<Uint8Array> {
  if (req.notAfter.getTime() <= req.notBefore.getTime()) throw new Error("proxy validity is empty");
  const tbs = encodeTbsCertificate({
    serial: der.bigIntToBytes(BigInt(req.serial)),
    issuer: req.issuer.subject,
    subject: proxySubject(req.issuer.subject, req.serial),
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    spki: req.spki,
    signatureAlgorithm: req.issuerKey.signatureAlgorithm,
    extensions: [ext.keyUsage(PROXY_KEY_USAGE), ext.proxyCertInfoInheritAll(), ...(req.extraExtensions ?? [])],
  });
  return signStructure(tbs, req.issuerKey);
}
