/**
 * A human-readable decoding of a certificate for the consoles' detail view
 * (what `openssl x509 -text` and `voms-proxy-info -all` would show): fields,
 * every extension with its criticality, RFC 3820 ProxyCertInfo, and the VOMS
 * attribute certificates a proxy carries. Unknown extensions are listed by
 * OID with their size, never dropped: an operator must see everything signed.
 * The VOMS ACs are read by lib/voms/acInfo.ts, as certbridge-proxy-info reads them.
 */
import crypto from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import * as der from "../pki/der";
import { pkijsNameToSlash } from "../pki/dn";
import { OID } from "../pki/x509";
import { VOMS_OID } from "../voms/ac";
import { parseVomsExtension, type VomsAttributes } from "../voms/acInfo";

export interface DecodedExtension {
  oid: string;
  name: string;
  critical: boolean;
  /** One line per decoded element; empty when the value is opaque. */
  values: string[];
}

export type DecodedAttributeCertificate = VomsAttributes;

export interface DecodedCertificate {
  version: number;
  serialHex: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  signatureAlgorithm: string;
  publicKey: { algorithm: string; bits: number | null };
  /** RFC 3820 §3.8: present only on proxy certificates. */
  proxy: { policyLanguage: string; pathLength: number | null } | null;
  extensions: DecodedExtension[];
  attributeCertificates: DecodedAttributeCertificate[];
}

const ALGORITHMS: Record<string, string> = {
  "1.2.840.113549.1.1.1": "RSA",
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.2.1": "EC",
};

const EXTENSION_NAMES: Record<string, string> = {
  [OID.basicConstraints]: "Basic constraints",
  [OID.keyUsage]: "Key usage",
  [OID.extKeyUsage]: "Extended key usage",
  [OID.subjectKeyIdentifier]: "Subject key identifier",
  [OID.authorityKeyIdentifier]: "Authority key identifier",
  [OID.crlDistributionPoints]: "CRL distribution points",
  [OID.certificatePolicies]: "Certificate policies",
  [OID.proxyCertInfo]: "Proxy certificate information (RFC 3820)",
  [VOMS_OID.acSequence]: "VOMS attribute certificates",
  "2.5.29.17": "Subject alternative name",
};

const POLICY_LANGUAGES: Record<string, string> = {
  [OID.inheritAll]: "inheritAll (id-ppl-inheritAll)",
  "1.3.6.1.5.5.7.21.2": "independent (id-ppl-independent)",
  "1.3.6.1.4.1.3536.1.1.1.9": "limited (Globus)",
};

const KEY_USAGE_BITS = ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"];

const EKU_NAMES: Record<string, string> = { "1.3.6.1.5.5.7.3.1": "serverAuth", [OID.clientAuth]: "clientAuth", "1.3.6.1.5.5.7.3.4": "emailProtection" };

const hex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("hex");
const colonHex = (b: ArrayBuffer | Uint8Array) => hex(b).replace(/(..)(?!$)/g, "$1:");

function parse(der: ArrayBuffer | Uint8Array): asn1js.AsnType {
  const r = asn1js.fromBER(der instanceof Uint8Array ? der : new Uint8Array(der));
  if (r.offset === -1) throw new Error("malformed DER");
  return r.result;
}

function generalNameText(n: pkijs.GeneralName): string {
  if (n.type === 4) return pkijsNameToSlash(n.value as pkijs.RelativeDistinguishedNames);
  if (n.type === 6 || n.type === 1 || n.type === 2) return String(n.value);
  return `[${n.type}]`;
}

function decodeKeyUsage(value: ArrayBuffer): string[] {
  const bits = parse(value) as asn1js.BitString;
  const bytes = new Uint8Array(bits.valueBlock.valueHexView);
  return KEY_USAGE_BITS.filter((_, i) => ((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
}

/** ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL, proxyPolicy SEQUENCE { policyLanguage OID, policy OCTET STRING OPTIONAL } } */
function decodeProxyCertInfo(value: ArrayBuffer): { policyLanguage: string; pathLength: number | null } {
  const seq = parse(value) as asn1js.Sequence;
  let pathLength: number | null = null;
  let policy: asn1js.Sequence | undefined;
  for (const item of seq.valueBlock.value) {
    if (item instanceof asn1js.Integer) pathLength = item.valueBlock.valueDec;
    else if (item instanceof asn1js.Sequence) policy = item;
  }
  const language = policy?.valueBlock.value[0];
  const oid = language instanceof asn1js.ObjectIdentifier ? language.valueBlock.toString() : "?";
  return { policyLanguage: POLICY_LANGUAGES[oid] ?? oid, pathLength };
}

function decodeExtension(e: pkijs.Extension, out: { proxy: DecodedCertificate["proxy"]; acs: DecodedAttributeCertificate[] }): DecodedExtension {
  const raw = e.extnValue.valueBlock.valueHexView.slice().buffer as ArrayBuffer;
  const base = { oid: e.extnID, name: EXTENSION_NAMES[e.extnID] ?? e.extnID, critical: e.critical };
  try {
    switch (e.extnID) {
      case OID.basicConstraints: {
        const bc = new pkijs.BasicConstraints({ schema: parse(raw) });
        return { ...base, values: [`CA: ${bc.cA ? "yes" : "no"}`, ...(bc.pathLenConstraint !== undefined ? [`path length: ${String(bc.pathLenConstraint)}`] : [])] };
      }
      case OID.keyUsage:
        return { ...base, values: [decodeKeyUsage(raw).join(", ")] };
      case OID.extKeyUsage:
        return { ...base, values: new pkijs.ExtKeyUsage({ schema: parse(raw) }).keyPurposes.map((p) => EKU_NAMES[p] ?? p) };
      case OID.subjectKeyIdentifier:
        return { ...base, values: [colonHex((parse(raw) as asn1js.OctetString).valueBlock.valueHexView)] };
      case OID.authorityKeyIdentifier: {
        const aki = new pkijs.AuthorityKeyIdentifier({ schema: parse(raw) });
        return { ...base, values: aki.keyIdentifier ? [`key id ${colonHex(aki.keyIdentifier.valueBlock.valueHexView)}`] : [] };
      }
      case OID.crlDistributionPoints: {
        const dps = new pkijs.CRLDistributionPoints({ schema: parse(raw) });
        return { ...base, values: dps.distributionPoints.flatMap((dp) => (Array.isArray(dp.distributionPoint) ? dp.distributionPoint.map(generalNameText) : [])) };
      }
      case OID.certificatePolicies:
        return { ...base, values: policyOids(new Uint8Array(raw)) };
      case OID.proxyCertInfo: {
        out.proxy = decodeProxyCertInfo(raw);
        return { ...base, values: [`policy language: ${out.proxy.policyLanguage}`, `path length: ${out.proxy.pathLength ?? "unlimited"}`] };
      }
      case VOMS_OID.acSequence: {
        const acs = parseVomsExtension(new Uint8Array(raw));
        out.acs.push(...acs);
        return { ...base, values: acs.map((ac) => `${ac.policyAuthority ?? "?"}: ${ac.fqans.join(", ")}`) };
      }
      default:
        return { ...base, values: [`${raw.byteLength} bytes`] };
    }
  } catch {
    return { ...base, values: ["(could not be decoded)"] };
  }
}

/** Decode one DER certificate. Throws on input that is not a certificate. */
export function decodeCertificate(certDer: Uint8Array): DecodedCertificate {
  const cert = new pkijs.Certificate({ schema: parse(certDer) });
  const out: { proxy: DecodedCertificate["proxy"]; acs: DecodedAttributeCertificate[] } = { proxy: null, acs: [] };
  const extensions = (cert.extensions ?? []).map((e) => decodeExtension(e, out));
  const spkiAlg = cert.subjectPublicKeyInfo.algorithm.algorithmId;
  // Node reads the key size from the SPKI itself (RSA modulus length, EC curve size).
  const spki = crypto.createPublicKey({ key: Buffer.from(cert.subjectPublicKeyInfo.toSchema().toBER(false)), format: "der", type: "spki" });
  const bits = spki.asymmetricKeyDetails?.modulusLength ?? null;
  return {
    version: cert.version + 1,
    serialHex: hex(cert.serialNumber.valueBlock.valueHexView).replace(/^(00)+(?=.)/, ""),
    subject: pkijsNameToSlash(cert.subject),
    issuer: pkijsNameToSlash(cert.issuer),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    signatureAlgorithm: ALGORITHMS[cert.signatureAlgorithm.algorithmId] ?? cert.signatureAlgorithm.algorithmId,
    publicKey: { algorithm: ALGORITHMS[spkiAlg] ?? spkiAlg, bits },
    proxy: out.proxy,
    extensions,
    attributeCertificates: out.acs,
  };
}

/**
 * The policy OIDs of a CertificatePolicies value, dotted-decimal. asn1js prints an arc beyond
 * 2^53 (a UUID OID under 2.25) as "{hex}", so the OIDs are read here from the DER.
 */
function policyOids(bytes: Uint8Array): string[] {
  const top = der.readTlv(bytes);
  return der.children(bytes, top).map((info) => {
    const id = der.children(bytes, info)[0];
    if (!id || id.tag !== 0x06) throw new Error("a policy without an OID");
    return der.oidToString(der.content(bytes, id));
  });
}
