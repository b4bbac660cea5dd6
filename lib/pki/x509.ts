/**
 * X.509 v3 certificates and v2 CRLs (RFC 5280), encoded with ./der and signed
 * through KeyCustody. One encoder for the CA, user and proxy certificates keeps
 * the output byte-exact and fast; pkijs parses everything back (here and in
 * the tests) and OpenSSL, Globus and VOMS check it in the interop tests.
 */
import crypto from "node:crypto";
import * as asn1js from "asn1js";
import type { KeyCustody } from "./custody";
import * as der from "./der";

export const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  crlDistributionPoints: "2.5.29.31",
  certificatePolicies: "2.5.29.32",
  cRLNumber: "2.5.29.20",
  reasonCode: "2.5.29.21",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  commonName: "2.5.4.3",
  /** RFC 3820 §3.8 */
  proxyCertInfo: "1.3.6.1.5.5.7.1.14",
  /** RFC 3820 §3.8.1: the proxy inherits all rights of its issuer. */
  inheritAll: "1.3.6.1.5.5.7.21.1",
} as const;

export interface Extension {
  oid: string;
  critical: boolean;
  /** DER of the extension's value (what goes inside extnValue's OCTET STRING). */
  value: Uint8Array;
}

function encodeExtensions(exts: readonly Extension[]): Uint8Array {
  return der.sequence(
    ...exts.map((e) =>
      e.critical
        ? der.sequence(der.oid(e.oid), der.boolean(true), der.octetString(e.value))
        : der.sequence(der.oid(e.oid), der.octetString(e.value)),
    ),
  );
}

/** KeyUsage bits (RFC 5280 §4.2.1.3), DER named-bit encoding (trailing zero bits dropped). */
export const KeyUsage = { digitalSignature: 0, keyEncipherment: 2, dataEncipherment: 3, keyCertSign: 5, cRLSign: 6 } as const;

export function keyUsage(bits: readonly number[]): Uint8Array {
  let mask = 0;
  for (const b of bits) mask |= 0x80 >> b;
  const last = Math.max(...bits);
  return der.tlv(0x03, Uint8Array.of(7 - last, mask));
}

/** Method 1 of RFC 5280 §4.2.1.2: SHA-1 of the subjectPublicKey BIT STRING's value. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const parsed = asn1js.fromBER(spki);
  const bits = (parsed.result as asn1js.Sequence).valueBlock.value[1] as asn1js.BitString;
  return new Uint8Array(crypto.createHash("sha1").update(bits.valueBlock.valueHexView).digest());
}

export const ext = {
  basicConstraints: (ca: boolean): Extension => ({
    oid: OID.basicConstraints,
    critical: true,
    value: ca ? der.sequence(der.boolean(true)) : der.sequence(),
  }),
  keyUsage: (bits: readonly number[]): Extension => ({ oid: OID.keyUsage, critical: true, value: keyUsage(bits) }),
  clientAuth: (): Extension => ({ oid: OID.extKeyUsage, critical: false, value: der.sequence(der.oid(OID.clientAuth)) }),
  subjectKeyIdentifier: (keyId: Uint8Array): Extension => ({
    oid: OID.subjectKeyIdentifier,
    critical: false,
    value: der.octetString(keyId),
  }),
  authorityKeyIdentifier: (keyId: Uint8Array): Extension => ({
    oid: OID.authorityKeyIdentifier,
    critical: false,
    value: der.sequence(der.tlv(0x80, keyId)),
  }),
  crlDistributionPoint: (uri: string): Extension => ({
    oid: OID.crlDistributionPoints,
    critical: false,
    // DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
    value: der.sequence(der.sequence(der.tlv(0xa0, der.tlv(0xa0, der.tlv(0x86, new TextEncoder().encode(uri)))))),
  }),
  certificatePolicy: (policyOid: string): Extension => ({
    oid: OID.certificatePolicies,
    critical: false,
    value: der.sequence(der.sequence(der.oid(policyOid))),
  }),
  /** RFC 3820 §3.8: critical, so that relying parties that do not understand proxies refuse them. */
  proxyCertInfoInheritAll: (): Extension => ({
    oid: OID.proxyCertInfo,
    critical: true,
    value: der.sequence(der.sequence(der.oid(OID.inheritAll))),
  }),
};

export interface TbsFields {
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: readonly Extension[];
  /** The signer's AlgorithmIdentifier (KeyCustody.signatureAlgorithm): must match what signStructure writes. */
  signatureAlgorithm: Uint8Array;
}

export function encodeTbsCertificate(f: TbsFields): Uint8Array {
  return der.sequence(
    der.explicit(0, der.smallInteger(2)),
    der.unsignedInteger(f.serial),
    f.signatureAlgorithm,
    f.issuer,
    der.sequence(der.time(f.notBefore), der.time(f.notAfter)),
    f.subject,
    f.spki,
    der.explicit(3, encodeExtensions(f.extensions)),
  );
}

/** Sign a TBSCertificate or TBSCertList and wrap it (RFC 5280 §4.1 / §5.1). */
export async function signStructure(tbs: Uint8Array, signer: KeyCustody): Promise<Uint8Array> {
  const signature = await signer.sign(tbs);
  return der.sequence(tbs, signer.signatureAlgorithm, der.bitString(signature));
}

export interface RevokedEntry {
  serial: Uint8Array;
  revokedAt: Date;
  /** CRLReason (RFC 5280 §5.3.1); 0 (unspecified) is omitted as the RFC asks. */
  reason: number;
}

export function encodeTbsCrl(f: {
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: readonly RevokedEntry[];
  authorityKeyId: Uint8Array;
  crlNumber: number;
  /** The CA signer's AlgorithmIdentifier (KeyCustody.signatureAlgorithm). */
  signatureAlgorithm: Uint8Array;
}): Uint8Array {
  const entries = f.revoked.map((r) =>
    r.reason === 0
      ? der.sequence(der.unsignedInteger(r.serial), der.time(r.revokedAt))
      : der.sequence(
          der.unsignedInteger(r.serial),
          der.time(r.revokedAt),
          encodeExtensions([{ oid: OID.reasonCode, critical: false, value: der.tlv(0x0a, Uint8Array.of(r.reason)) }]),
        ),
  );
  return der.sequence(
    der.smallInteger(1),
    f.signatureAlgorithm,
    f.issuer,
    der.time(f.thisUpdate),
    der.time(f.nextUpdate),
    ...(entries.length ? [der.sequence(...entries)] : []),
    der.explicit(
      0,
      encodeExtensions([
        ext.authorityKeyIdentifier(f.authorityKeyId),
        { oid: OID.cRLNumber, critical: false, value: der.smallInteger(f.crlNumber) },
      ]),
    ),
  );
}

/** The parts of a certificate the issuance path needs, as raw DER slices. */
export interface CertificateParts {
  der: Uint8Array;
  serial: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
}

function timeOf(block: asn1js.BaseBlock): Date {
  if (block instanceof asn1js.UTCTime || block instanceof asn1js.GeneralizedTime) return block.toDate();
  throw new Error("certificate validity is not a Time");
}

/** Split a DER certificate into its fields without re-encoding them (names stay byte-identical). */
export function certificateParts(certDer: Uint8Array): CertificateParts {
  const parsed = asn1js.fromBER(certDer);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) throw new Error("not a DER certificate");
  const tbs = parsed.result.valueBlock.value[0];
  if (!(tbs instanceof asn1js.Sequence)) throw new Error("certificate has no TBSCertificate");
  const f = tbs.valueBlock.value;
  const hasVersion = f[0]?.idBlock.tagClass === 3 && f[0].idBlock.tagNumber === 0;
  const at = (i: number) => {
    const b = f[i + (hasVersion ? 1 : 0)];
    if (!b) throw new Error("certificate TBS is truncated");
    return b;
  };
  const validity = at(3) as asn1js.Sequence;
  const [nb, na] = validity.valueBlock.value;
  if (!nb || !na) throw new Error("certificate validity is malformed");
  return {
    der: certDer,
    serial: new Uint8Array((at(0) as asn1js.Integer).valueBlock.valueHexView),
    issuer: new Uint8Array(at(2).valueBeforeDecodeView),
    subject: new Uint8Array(at(4).valueBeforeDecodeView),
    spki: new Uint8Array(at(5).valueBeforeDecodeView),
    notBefore: timeOf(nb),
    notAfter: timeOf(na),
  };
}

export const serialHex = (serial: Uint8Array) => Buffer.from(serial).toString("hex").replace(/^(00)+(?=.)/, "");
export const serialDec = (serial: Uint8Array) => BigInt(`0x${Buffer.from(serial).toString("hex") || "0"}`).toString(10);

/** A random positive serial of `bytes` octets (RFC 5280 §4.1.2.2: at most 20 octets, unpredictable). */
export function randomSerial(bytes = 20, random: (n: number) => Uint8Array = (n) => crypto.randomBytes(n)): Uint8Array {
  const s = new Uint8Array(random(bytes));
  s[0] = (s[0]! & 0x7f) | 0x40; // positive and exactly `bytes` long
  return s;
}
