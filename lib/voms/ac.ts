/**
 * VOMS attribute certificates: RFC 5755 v2 ACs shaped exactly as VOMS AAs
 * write them (../shared/notes/grid-interop.md, "VOMS AC"), so that VOMS-C and
 * voms-api-java accept them:
 * - holder = baseCertificateID with the user certificate's SUBJECT (not its
 *   issuer: voms-api-java rejects that form) and serial;
 * - issuer = v2Form with the AA's subject; GeneralizedTime validity;
 * - attribute 1.3.6.1.4.1.8005.100.100.4 (IetfAttrSyntax) with policyAuthority
 *   "<vo>://<host>:<port>" and the FQANs as OCTET STRINGs, in the long form
 *   VOMS servers write (/vo/group/Role=NULL/Capability=NULL);
 * - extensions: the AA certificate sequence, noRevAvail, AKID = AA SKID;
 * - signed by the AA key, with the algorithm its signer reports
 *   (sha256WithRSAEncryption for software keys).
 * Module tagging is IMPLICIT (RFC 5755 Appendix A.1).
 */
import * as der from "../pki/der";
import type { KeyCustody } from "../pki/custody";
import { signStructure, type CertificateParts, type Extension } from "../pki/x509";

export const VOMS_OID = {
  /** The proxy extension carrying SEQUENCE OF SEQUENCE OF AttributeCertificate. */
  acSequence: "1.3.6.1.4.1.8005.100.100.5",
  fqanAttribute: "1.3.6.1.4.1.8005.100.100.4",
  certSequence: "1.3.6.1.4.1.8005.100.100.10",
  noRevAvail: "2.5.29.56",
  authorityKeyIdentifier: "2.5.29.35",
  targetInformation: "2.5.29.55",
} as const;

export interface AttributeAuthority {
  vo: string;
  host: string;
  port: number;
  /** The AA certificate (its subject is the AC issuer; it travels in the certseq extension). */
  cert: CertificateParts;
  keyId: Uint8Array;
  key: KeyCustody;
}

export interface AcRequest {
  aa: AttributeAuthority;
  holder: CertificateParts;
  fqans: readonly string[];
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Optional target hosts (targetInformation, critical when present). */
  targets?: readonly string[];
}

/** GeneralNames with one directoryName ([4], explicit because Name is a CHOICE). */
const directoryNames = (name: Uint8Array) => der.sequence(der.tlv(0xa4, name));

const ext = (oid: string, value: Uint8Array, critical = false) =>
  critical ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * The AC's `attributes` field: SEQUENCE { Attribute { 1.3.6.1.4.1.8005.100.100.4,
 * SET { IetfAttrSyntax { [0] policyAuthority { [6] "<vo>://<host>:<port>" },
 * SEQUENCE { OCTET STRING fqan, ... } } } } }.
 * FQANs must be the VOMS long form (/vo[/group]/Role=<r|NULL>/Capability=NULL,
 * lib/voms/membership.ts): XRootD's VOMS extractor denies an AC that mixes
 * /vo with /vo/Role=r, and VOMS-C requires every FQAN to start with /<vo>.
 */
export function encodeVomsAttributes(aa: Pick<AttributeAuthority, "vo" | "host" | "port">, fqans: readonly string[]): Uint8Array {
  if (fqans.length === 0) throw new Error("an AC needs at least one FQAN");
  for (const f of fqans) {
    if (!LONG_FQAN.test(f) || !f.startsWith(`/${aa.vo}/`)) throw new Error(`"${f}" is not an FQAN of VO ${aa.vo} in the VOMS long form (/${aa.vo}[/group]/Role=<role|NULL>/Capability=NULL)`);
  }
  const ietfAttr = der.sequence(
    der.tlv(0xa0, der.tlv(0x86, utf8(`${aa.vo}://${aa.host}:${aa.port}`))),
    der.sequence(...fqans.map((f) => der.octetString(utf8(f)))),
  );
  return der.sequence(der.sequence(der.oid(VOMS_OID.fqanAttribute), der.set(ietfAttr)));
}

const LONG_FQAN = /^(\/[A-Za-z0-9][A-Za-z0-9._-]*)+\/Role=[A-Za-z0-9][A-Za-z0-9._-]*\/Capability=NULL$/;

export function encodeAcInfo(r: AcRequest): Uint8Array {
  const holder = der.sequence(der.tlv(0xa0, der.concat([directoryNames(r.holder.subject), der.unsignedInteger(r.holder.serial)])));
  const issuer = der.tlv(0xa0, directoryNames(r.aa.cert.subject));
  const attributes = encodeVomsAttributes(r.aa, r.fqans);
  const extensions = [
    // AC_CERTS ::= SEQUENCE { SEQUENCE OF Certificate } (VOMS-C acstack.h): two wrappers.
    ext(VOMS_OID.certSequence, der.sequence(der.sequence(r.aa.cert.der))),
    ext(VOMS_OID.noRevAvail, der.nullValue()),
    ext(VOMS_OID.authorityKeyIdentifier, der.sequence(der.tlv(0x80, r.aa.keyId))),
    ...(r.targets?.length
      ? [ext(VOMS_OID.targetInformation, der.sequence(der.sequence(...r.targets.map((t) => der.tlv(0xa0, der.tlv(0x86, utf8(t)))))), true)]
      : []),
  ];
  return der.sequence(
    der.smallInteger(1), // v2
    holder,
    issuer,
    r.aa.key.signatureAlgorithm,
    der.unsignedInteger(r.serial),
    der.sequence(der.generalizedTime(r.notBefore), der.generalizedTime(r.notAfter)),
    attributes,
    der.sequence(...extensions),
  );
}

export async function buildAttributeCertificate(r: AcRequest): Promise<Uint8Array> {
  return signStructure(encodeAcInfo(r), r.aa.key);
}

/** The proxy extension: SEQUENCE { SEQUENCE OF AttributeCertificate }, non-critical, as VOMS writes it. */
export function vomsProxyExtension(acs: readonly Uint8Array[]): Extension {
  return { oid: VOMS_OID.acSequence, critical: false, value: der.sequence(der.sequence(...acs)) };
}
