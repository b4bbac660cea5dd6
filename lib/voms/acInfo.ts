/**
 * Reading VOMS attribute certificates back out of a proxy, for
 * certbridge-proxy-info (what `voms-proxy-info -all` shows). The layout is
 * the one lib/voms/ac.ts writes and VOMS AAs write
 * (../shared/notes/grid-interop.md, "VOMS AC"): extension
 * 1.3.6.1.4.1.8005.100.100.5 = SEQUENCE { SEQUENCE OF AttributeCertificate }.
 * This only parses: it does not verify the AA's signature (use voms-verify or
 * a strict validator for that).
 */
import * as der from "../pki/der";
import { decodeName, formatSlashDn } from "../pki/dn";
import { VOMS_OID } from "./ac";

export interface VomsAttributes {
  vo: string;
  /** "<vo>://<host>:<port>" */
  policyAuthority: string;
  fqans: string[];
  /** The AA's subject (slash form). */
  issuer: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function generalizedTime(bytes: Uint8Array, t: der.Tlv): Date {
  if (t.tag !== 0x18) throw new Error("AC validity is not GeneralizedTime");
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text(der.content(bytes, t)));
  if (!m) throw new Error("AC validity time is malformed");
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

function parseAttributeCertificate(bytes: Uint8Array, ac: der.Tlv): VomsAttributes {
  const [info] = der.children(bytes, ac);
  if (!info || info.tag !== 0x30) throw new Error("AC has no AttributeCertificateInfo");
  const [version, , issuer, , serial, validity, attributes] = der.children(bytes, info);
  if (version?.tag !== 0x02 || !issuer || serial?.tag !== 0x02 || validity?.tag !== 0x30 || attributes?.tag !== 0x30) {
    throw new Error("AttributeCertificateInfo is malformed");
  }
  // issuer [0] V2Form { issuerName GeneralNames { [4] Name } }
  const generalNames = der.children(bytes, issuer)[0];
  const directoryName = generalNames && der.children(bytes, generalNames).find((t) => t.tag === 0xa4);
  const nameTlv = directoryName && der.children(bytes, directoryName)[0];
  const issuerDn = nameTlv ? formatSlashDn(decodeName(der.slice(bytes, nameTlv))) : "";
  const [nb, na] = der.children(bytes, validity);
  if (!nb || !na) throw new Error("AC validity is malformed");
  let policyAuthority = "";
  const fqans: string[] = [];
  for (const attribute of der.children(bytes, attributes)) {
    const [oid, values] = der.children(bytes, attribute);
    if (!oid || oid.tag !== 0x06 || !values || der.oidToString(der.content(bytes, oid)) !== VOMS_OID.fqanAttribute) continue;
    for (const ietfAttr of der.children(bytes, values)) {
      for (const part of der.children(bytes, ietfAttr)) {
        if (part.tag === 0xa0) {
          const uri = der.children(bytes, part).find((t) => t.tag === 0x86);
          if (uri) policyAuthority = text(der.content(bytes, uri));
        } else if (part.tag === 0x30) {
          for (const v of der.children(bytes, part)) if (v.tag === 0x04) fqans.push(text(der.content(bytes, v)));
        }
      }
    }
  }
  const vo = policyAuthority.split("://")[0] || (fqans[0]?.split("/")[1] ?? "");
  return {
    vo,
    policyAuthority,
    fqans,
    issuer: issuerDn,
    serialHex: Buffer.from(der.content(bytes, serial)).toString("hex").replace(/^(00)+(?=.)/, ""),
    notBefore: generalizedTime(bytes, nb),
    notAfter: generalizedTime(bytes, na),
  };
}

/** The ACs in a VOMS extension value (SEQUENCE { SEQUENCE OF AttributeCertificate }). */
export function parseVomsExtension(value: Uint8Array): VomsAttributes[] {
  const outer = der.readTlv(value);
  if (outer.tag !== 0x30 || outer.end !== value.length) throw new Error("VOMS extension is not one SEQUENCE");
  return der.children(value, outer).flatMap((inner) => {
    if (inner.tag !== 0x30) throw new Error("VOMS extension is malformed");
    return der.children(value, inner).map((ac) => parseAttributeCertificate(value, ac));
  });
}
