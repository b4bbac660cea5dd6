/**
 * Distinguished names in the two forms the grid world uses: Globus/OpenSSL
 * "slash form" (/DC=org/DC=example/CN=Name, most significant RDN first) and
 * DER. Every RDN is single-valued: pkijs encodes a list of attributes as ONE
 * multi-valued RDN, which OpenSSL then rejects in proxy subject checks
 * ("proxy subject name violation", RFC 3820 §3.4), so the SEQUENCE OF SET is
 * built here by hand.
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

export interface Rdn {
  type: AttributeType;
  value: string;
}

export const ATTRIBUTE_OIDS = {
  C: "2.5.4.6",
  ST: "2.5.4.8",
  L: "2.5.4.7",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  CN: "2.5.4.3",
  DC: "0.9.2342.19200300.100.1.25",
  emailAddress: "1.2.840.113549.1.9.1",
  UID: "0.9.2342.19200300.100.1.1",
  serialNumber: "2.5.4.5",
} as const;
export type AttributeType = keyof typeof ATTRIBUTE_OIDS;

const TYPE_BY_OID = new Map<string, AttributeType>(
  Object.entries(ATTRIBUTE_OIDS).map(([k, v]) => [v, k as AttributeType]),
);

/** Parse "/DC=org/DC=example/CN=Name". Values must not contain "/" (the form cannot escape it). */
export function parseSlashDn(text: string): Rdn[] {
  if (!text.startsWith("/")) throw new Error(`DN "${text}" must start with "/"`);
  const rdns = text
    .slice(1)
    .split("/")
    .map((part) => {
      const eq = part.indexOf("=");
      if (eq <= 0) throw new Error(`DN component "${part}" is not TYPE=value`);
      const type = part.slice(0, eq);
      const value = part.slice(eq + 1);
      if (!(type in ATTRIBUTE_OIDS)) throw new Error(`DN attribute type "${type}" is not supported`);
      if (value.length === 0) throw new Error(`DN component "${part}" has an empty value`);
      return { type: type as AttributeType, value };
    });
  if (rdns.length === 0) throw new Error("DN is empty");
  return rdns;
}

export function formatSlashDn(rdns: readonly Rdn[]): string {
  return rdns.map((r) => `/${r.type}=${r.value}`).join("");
}

/** RFC 4514 order (least significant first), as `openssl -nameopt RFC2253` prints it. */
export function formatRfc4514(rdns: readonly Rdn[]): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");
  return [...rdns].reverse().map((r) => `${r.type}=${esc(r.value)}`).join(",");
}

/** DER encoding of one AttributeValue: DC and emailAddress are IA5String, C PrintableString, the rest UTF8String. */
function encodeValue(rdn: Rdn): asn1js.BaseBlock {
  switch (rdn.type) {
    case "DC":
    case "emailAddress":
      if (!/^[\x00-\x7f]*$/.test(rdn.value)) throw new Error(`${rdn.type} value must be ASCII`);
      return new asn1js.IA5String({ value: rdn.value });
    case "C":
    case "serialNumber":
      return new asn1js.PrintableString({ value: rdn.value });
    default:
      return new asn1js.Utf8String({ value: rdn.value });
  }
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName (RFC 5280 §4.1.2.4), one attribute per RDN. */
export function encodeName(rdns: readonly Rdn[]): Uint8Array {
  const seq = new asn1js.Sequence({
    value: rdns.map(
      (r) =>
        new asn1js.Set({
          value: [
            new asn1js.Sequence({
              value: [new asn1js.ObjectIdentifier({ value: ATTRIBUTE_OIDS[r.type] }), encodeValue(r)],
            }),
          ],
        }),
    ),
  });
  return new Uint8Array(seq.toBER(false));
}

/** A pkijs Name object from our RDN list, preserving the single-valued SETs. */
export function toPkijsName(rdns: readonly Rdn[]): pkijs.RelativeDistinguishedNames {
  return pkijs.RelativeDistinguishedNames.fromBER(new Uint8Array(encodeName(rdns)));
}

/**
 * Read a Name back from DER. Multi-valued RDNs are refused: nothing we issue
 * or accept as an issuer uses them, and they break proxy name checks.
 */
export function decodeName(der: Uint8Array): Rdn[] {
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1 || !(asn.result instanceof asn1js.Sequence)) throw new Error("Name is not a DER SEQUENCE");
  return asn.result.valueBlock.value.map((set) => {
    if (!(set instanceof asn1js.Set) || set.valueBlock.value.length !== 1) {
      throw new Error("Name has a multi-valued or malformed RDN");
    }
    const atv = set.valueBlock.value[0] as asn1js.Sequence;
    const [oidBlock, valueBlock] = atv.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.BaseStringBlock];
    const oid = oidBlock.valueBlock.toString();
    const type = TYPE_BY_OID.get(oid);
    if (!type) throw new Error(`Name has an unsupported attribute type ${oid}`);
    return { type, value: valueBlock.valueBlock.value };
  });
}

/** Slash form of a pkijs Name (issuer or subject of a parsed certificate). */
export function pkijsNameToSlash(name: pkijs.RelativeDistinguishedNames): string {
  return formatSlashDn(decodeName(new Uint8Array(name.toSchema().toBER(false))));
}
