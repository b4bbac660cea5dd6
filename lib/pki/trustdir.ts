/**
 * What a relying party needs to trust our CA from an X.509 "trust directory"
 * (/etc/grid-security/certificates): the file names OpenSSL looks certificates
 * up by (`<hash>.0`, found through X509_LOOKUP_hash_dir), and the two grid
 * policy files that restrict which subjects the CA may sign:
 *
 * - `<hash>.signing_policy`, the Globus EACL format (checked by Globus GSI,
 *   jGlobus, ARC, canl);
 * - `<hash>.namespaces`, the EUGridPMA/IGTF namespaces format (checked by
 *   canl-java/-c, LCMAPS, dCache, StoRM).
 *
 * Everything here is a pure function of its arguments: no file I/O.
 */
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import { concat, tlv } from "./der";
import { formatSlashDn, parseSlashDn } from "./dn";

// ---------------------------------------------------------------------------
// Subject hashes
// ---------------------------------------------------------------------------

/** Universal tag numbers (X.680 §8.4) of the string types OpenSSL canonicalises. */
const TAG = {
  UTF8String: 12,
  PrintableString: 19,
  T61String: 20,
  IA5String: 22,
  VisibleString: 26,
  UniversalString: 28,
  BMPString: 30,
} as const;

/**
 * How ASN1_STRING_to_UTF8 reads each canonicalised type: its tag2nbyte table
 * (crypto/asn1/a_strex.c) gives 1 byte per character for PrintableString,
 * T61String, IA5String and VisibleString (each byte is taken as the code point
 * U+0000..U+00FF, i.e. Latin-1, with no check of the type's character set),
 * 2 for BMPString (UCS-2 big-endian), 4 for UniversalString (UCS-4
 * big-endian), and 0 (already UTF-8) for UTF8String. VisibleString is in
 * ASN1_MASK_CANON too, but a decoded Name never holds one (see
 * ACCEPTED_VALUE_TAGS); it is listed so the table mirrors the mask.
 */
const CHAR_WIDTH = new Map<number, 0 | 1 | 2 | 4>([
  [TAG.UTF8String, 0],
  [TAG.PrintableString, 1],
  [TAG.T61String, 1],
  [TAG.IA5String, 1],
  [TAG.VisibleString, 1],
  [TAG.BMPString, 2],
  [TAG.UniversalString, 4],
]);

/**
 * Universal tags an X509_NAME_ENTRY value may carry. The value is an
 * ASN1_PRINTABLE MSTRING (x_name.c), so d2i accepts only tags whose
 * ASN1_tag2bit is in B_ASN1_PRINTABLE (include/openssl/asn1.h): Numeric-,
 * Printable-, T61-, IA5-, Universal-, BMP- and UTF8String, BIT STRING,
 * SEQUENCE, and the B_ASN1_UNKNOWN tags 7-9, 11, 13-15 and 29. Everything
 * else (OCTET STRING, VisibleString, GraphicString, a context tag, ...) makes
 * OpenSSL reject the whole certificate, so we refuse it rather than invent a
 * hash OpenSSL would never print.
 */
const ACCEPTED_VALUE_TAGS = new Set([3, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 28, 29, 30]);

/** One parsed BER/DER element: its tag and its raw bytes (whole TLV and content only). */
interface Element {
  block: asn1js.BaseBlock;
  tlv: Uint8Array;
  content: Uint8Array;
}

function element(block: asn1js.BaseBlock, what: string): Element {
  const tlvBytes = block.valueBeforeDecodeView;
  if (block.lenBlock.isIndefiniteForm) throw new Error(`${what} uses an indefinite length: not DER`);
  const header = block.idBlock.blockLength + block.lenBlock.blockLength;
  return { block, tlv: tlvBytes, content: tlvBytes.subarray(header) };
}

const isUniversal = (b: asn1js.BaseBlock, tag: number, constructed: boolean) =>
  b.idBlock.tagClass === 1 && b.idBlock.tagNumber === tag && b.idBlock.isConstructed === constructed;

/**
 * Parse a DER Name into its RDNs, each a list of [type OID TLV, value element].
 * Only the structure is checked (SEQUENCE OF SET OF SEQUENCE { OID, value }),
 * like OpenSSL's X509_NAME_INTERNAL template; values are not interpreted here.
 */
function parseName(nameDer: Uint8Array): { oid: Uint8Array; value: Element }[][] {
  const parsed = asn1js.fromBER(nameDer);
  if (parsed.offset === -1) throw new Error(`Name is not valid DER: ${parsed.result.error}`);
  if (parsed.offset !== nameDer.byteLength) throw new Error("Name DER has trailing bytes");
  const name = parsed.result;
  if (!isUniversal(name, 16, true) || !(name instanceof asn1js.Sequence)) throw new Error("Name is not a SEQUENCE");
  element(name, "Name"); // rejects an indefinite length
  return name.valueBlock.value.map((rdn, i) => {
    if (!isUniversal(rdn, 17, true) || !(rdn instanceof asn1js.Set)) throw new Error(`RDN ${i + 1} is not a SET`);
    element(rdn, `RDN ${i + 1}`); // rejects an indefinite length
    return rdn.valueBlock.value.map((atv) => {
      const parts = atv instanceof asn1js.Sequence && isUniversal(atv, 16, true) ? atv.valueBlock.value : [];
      const [type, value] = parts;
      if (parts.length !== 2 || !type || !value || !isUniversal(type, 6, false)) {
        throw new Error(`RDN ${i + 1} has an attribute that is not SEQUENCE { OBJECT IDENTIFIER, value }`);
      }
      const { tagClass, tagNumber, isConstructed } = value.idBlock;
      if (tagClass !== 1 || !ACCEPTED_VALUE_TAGS.has(tagNumber)) {
        throw new Error(`RDN ${i + 1} has a value of class ${tagClass} tag ${tagNumber}, which OpenSSL does not accept in a Name`);
      }
      // OpenSSL would also collect a BER constructed string (asn1_collect in
      // tasn_dec.c), but certificates are DER (RFC 5280 §4.1): refused.
      if (isConstructed !== (tagNumber === 16)) {
        throw new Error(`RDN ${i + 1} has a ${isConstructed ? "constructed" : "primitive"} value of tag ${tagNumber}: not DER`);
      }
      return { oid: element(type, "attribute type").tlv, value: element(value, "attribute value") };
    });
  });
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * ASN1_STRING_to_UTF8 (crypto/asn1/a_strex.c, through ASN1_mbstring_copy in
 * a_mbstr.c): the value's characters as UTF-8. OpenSSL fails, and with it the
 * whole certificate decode (x509_name_ex_d2i calls x509_name_canon), on
 * malformed UTF-8, on a BMPString/UniversalString whose length is not a
 * multiple of the character width, and on code points that are surrogates or
 * above U+10FFFF (UTF8_getc / is_unicode_valid); so do we.
 */
function toUtf8(tag: number, width: 0 | 1 | 2 | 4, content: Uint8Array): Uint8Array {
  if (width === 0) {
    try {
      utf8Strict.decode(content); // validation only: valid UTF-8 re-encodes to the same bytes
    } catch (cause) {
      throw new Error("UTF8String value is not valid UTF-8", { cause });
    }
    return content;
  }
  if (content.length % width !== 0) throw new Error(`string of tag ${tag} has a length that is not a multiple of ${width}`);
  const codePoints: number[] = [];
  for (let i = 0; i < content.length; i += width) {
    let cp = 0;
    for (let j = 0; j < width; j++) cp = cp * 256 + content[i + j]!;
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      throw new Error(`string of tag ${tag} holds U+${cp.toString(16).toUpperCase()}, which is not a Unicode scalar value`);
    }
    codePoints.push(cp);
  }
  return new TextEncoder().encode(String.fromCodePoint(...codePoints));
}

/** ossl_isspace (crypto/ctype.c): ASCII space, \t, \n, \v, \f, \r only. */
const isSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * asn1_string_canon (crypto/x509/x_name.c) on UTF-8 bytes: drop leading and
 * trailing ossl_isspace bytes, turn each inner run of them into one 0x20,
 * ossl_tolower ASCII letters; bytes with the high bit set (all of a non-ASCII
 * character's UTF-8 sequence) are copied unchanged, so "É" stays "É" and a
 * no-break space U+00A0 is neither trimmed nor collapsed.
 */
function canonBytes(utf8: Uint8Array): Uint8Array {
  let start = 0;
  let end = utf8.length;
  while (start < end && isSpace(utf8[start]!)) start++;
  while (end > start && isSpace(utf8[end - 1]!)) end--;
  const out: number[] = [];
  for (let i = start; i < end; i++) {
    const b = utf8[i]!;
    if (b >= 0x80) out.push(b);
    else if (isSpace(b)) {
      out.push(0x20);
      while (isSpace(utf8[i + 1]!)) i++; // the run ends before `end`: the last byte is not a space
    } else out.push(b >= 0x41 && b <= 0x5a ? b + 0x20 : b);
  }
  return Uint8Array.from(out);
}

/**
 * The DER of one AttributeValue in canonical form: the string types in
 * x_name.c's ASN1_MASK_CANON become a canonicalised UTF8String; anything else
 * (NumericString, SEQUENCE, ...) is ASN1_STRING_copy'd and so re-encoded
 * byte-for-byte as it came.
 */
function canonValue(value: Element): Uint8Array {
  const { idBlock } = value.block;
  const width = idBlock.tagClass === 1 ? CHAR_WIDTH.get(idBlock.tagNumber) : undefined;
  if (width === undefined) return value.tlv;
  return tlv(0x0c, canonBytes(toUtf8(idBlock.tagNumber, width, value.content)));
}

/** DER SET OF order (X.690 §11.6) as OpenSSL's der_cmp (crypto/asn1/tasn_enc.c) implements it. */
function derCompare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The canonical encoding x509_name_canon (crypto/x509/x_name.c) caches in
 * X509_NAME.canon_enc: each RDN re-encoded as a SET OF canonical
 * AttributeTypeAndValue (i2d_name_canon encodes through the X509_NAME_ENTRIES
 * SET OF template, so a multi-valued RDN is re-sorted after canonicalisation),
 * the SETs concatenated without the outer SEQUENCE header. x509_name_canon
 * walks name entries grouped by their `set` index, so an empty RDN SET
 * contributes nothing, and a name without entries has an empty encoding.
 */
export function canonicalNameEncoding(nameDer: Uint8Array): Uint8Array {
  const sets = parseName(nameDer)
    .filter((rdn) => rdn.length > 0)
    .map((rdn) => {
      const atvs = rdn.map(({ oid, value }) => tlv(0x30, concat([oid, canonValue(value)])));
      return tlv(0x31, concat(atvs.sort(derCompare)));
    });
  return concat(sets);
}

/** X509_NAME_hash_ex / X509_NAME_hash_old: first four digest bytes as a little-endian unsigned long. */
function hashName(algorithm: "sha1" | "md5", data: Uint8Array): string {
  const digest = createHash(algorithm).update(data).digest();
  return digest.readUInt32LE(0).toString(16).padStart(8, "0");
}

/**
 * `openssl x509 -subject_hash`: X509_NAME_hash_ex (crypto/x509/x509_cmp.c),
 * SHA-1 over the canonical encoding. Independent of string types, case and
 * whitespace, so it is the same for a Name built by encodeName and for the
 * "same" Name OpenSSL wrote with PrintableString/T61String/BMPString.
 */
export function subjectHash(nameDer: Uint8Array): string {
  return hashName("sha1", canonicalNameEncoding(nameDer));
}

/**
 * `openssl x509 -subject_hash_old`: X509_NAME_hash_old, MD5 over
 * i2d_X509_NAME. For a decoded name that is the cached encoding, i.e. exactly
 * the bytes the certificate carried, so string types and spacing matter.
 */
export function subjectHashOld(nameDer: Uint8Array): string {
  // x509_name_ex_d2i canonicalises while decoding: a Name that cannot be
  // canonicalised never loads, so OpenSSL would print no hash for it at all.
  canonicalNameEncoding(nameDer);
  return hashName("md5", nameDer);
}

// ---------------------------------------------------------------------------
// Policy files
// ---------------------------------------------------------------------------

/** Control characters (and DEL): no line-oriented policy parser can carry them. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A slash-form DN, validated through dn.ts and written back by formatSlashDn. */
function slashDn(dn: string, what: string, forbidden: RegExp, why: string): string {
  let canonical: string;
  try {
    canonical = formatSlashDn(parseSlashDn(dn));
  } catch (cause) {
    throw new Error(`${what} "${dn}" is not a slash-form DN`, { cause });
  }
  if (CONTROL.test(canonical)) throw new Error(`${what} "${dn}" contains a control character`);
  const bad = forbidden.exec(canonical);
  if (bad) throw new Error(`${what} "${dn}" contains ${JSON.stringify(bad[0])}: ${why}`);
  return canonical;
}

function namespaceList(namespaces: readonly string[], check: (ns: string) => string): string[] {
  if (namespaces.length === 0) throw new Error("at least one subject namespace is required");
  return namespaces.map(check);
}

/**
 * `<hash>.signing_policy` in the Globus EACL format, as IGTF distributes it:
 * the CA may sign subjects under each namespace (Globus wildcard `<ns>/*`).
 *
 * The value syntax has no escapes: jGlobus SigningPolicyParser.getCA takes
 * the CA DN up to the next `'` (then trims it), getAllowedDNs each subject
 * pattern between a pair of `"` inside the single-quoted cond_subjects value
 * (canl GlobusNamespacesParser reads the same shape). So `'` and `"` are
 * refused, as is trailing whitespace on the CA DN. In patterns `*` and `?`
 * are wildcards (getPattern), so a namespace containing them would silently
 * widen the policy: refused too.
 */
export function signingPolicy(caSubjectSlash: string, subjectNamespaces: readonly string[]): string {
  const ca = slashDn(caSubjectSlash, "CA subject", /['"]|\s$/, "signing_policy has no quoting and trims the CA DN");
  const patterns = namespaceList(subjectNamespaces, (ns) =>
    slashDn(ns, "subject namespace", /['"*?]/, "signing_policy cannot quote it, and * and ? are wildcards there"),
  ).map((ns) => `"${ns}/*"`);
  return [
    `# EACL for ${ca}`,
    "# Globus signing policy: this CA may sign only subjects under the namespaces below.",
    "# Generated by Certbridge.",
    `access_id_CA      X509         '${ca}'`,
    "pos_rights        globus        CA:sign",
    `cond_subjects     globus       '${patterns.join(" ")}'`,
    "",
  ].join("\n");
}

/**
 * Escape a literal DN for a namespaces Subject pattern. Subjects are regular
 * expressions matched against the whole slash-form DN (canl-java
 * OpensslNamespacePolicyImpl: Pattern.compile(subject, CASE_INSENSITIVE),
 * matcher(...).matches()); `\` before each of these metacharacters makes it
 * literal in Java and PCRE, and in POSIX ERE as GNU regcomp reads it. IGTF's
 * own files mostly leave dots bare ("Digital Trust L.L.C."), which works only
 * because "." also matches itself; escaping keeps the namespace exactly as
 * narrow as the DN says.
 */
function namespaceRegex(slash: string): string {
  return slash.replace(/[.[\]{}()*+?^$|]/g, "\\$&");
}

/**
 * `<hash>.namespaces` in the EUGridPMA format (Namespaces Format
 * Specification 1.0, as read by canl EuGridPmaNamespacesParser): one
 * `TO Issuer "<CA DN>" PERMIT Subject "<regex>"` entry per namespace, the
 * Issuer a literal DN, the Subject `<escaped namespace>/.*`.
 *
 * Inside the quotes `\` escapes the next character but is kept in the value,
 * and an unescaped `#` starts a comment even inside quotes (stripComments runs
 * before the quoted string is read), so an Issuer containing `"`, `\` or `#`
 * cannot be written to match: those characters are refused in every DN.
 */
export function namespacesPolicy(caSubjectSlash: string, subjectNamespaces: readonly string[]): string {
  const why = "the namespaces format cannot carry it inside a quoted DN";
  const ca = slashDn(caSubjectSlash, "CA subject", /["\\#]/, why);
  const namespaces = namespaceList(subjectNamespaces, (ns) => slashDn(ns, "subject namespace", /["\\#]/, why));
  const header = [
    "##############################################################################",
    "#NAMESPACES-VERSION: 1.0",
    "#",
    `#    subjectDN: ${ca}`,
    "#    Generated by Certbridge: this CA may sign only subjects under the namespaces below.",
    "#",
  ];
  const entries = namespaces.map((ns) => `TO Issuer "${ca}" \\\n  PERMIT Subject "${namespaceRegex(ns)}/.*"\n`);
  return `${header.join("\n")}\n${entries.join("\n")}`;
}

// ---------------------------------------------------------------------------
// CRL metadata for fetch-crl
// ---------------------------------------------------------------------------

/** One line of a line-oriented metadata file: no control characters (a newline would start a new key). */
function oneLine(value: string, what: string): string {
  if (CONTROL.test(value)) throw new Error(`${what} ${JSON.stringify(value)} contains a control character`);
  if (value.trim() !== value || value === "") throw new Error(`${what} ${JSON.stringify(value)} is empty or has surrounding whitespace`);
  return value;
}

/** An absolute http(s) URL without whitespace or `;` (fetch-crl splits URL lists on both). */
function crlUrlValue(url: string): string {
  oneLine(url, "CRL URL");
  if (!/^https?:\/\/[^\s;]+$/.test(url)) throw new Error(`CRL URL ${JSON.stringify(url)} is not an http(s) URL without spaces or ";"`);
  return url;
}

/**
 * `<hash>.crl_url`: one URL a line, where fetch-crl (and the older
 * `fetch-crl` 2.x, and CA RPM/Debian packages) retrieve the CA's CRL from.
 */
export function crlUrlFile(crlUrl: string): string {
  return `${crlUrlValue(crlUrl)}\n`;
}

export interface IgtfInfo {
  /** Short name of the trust anchor (fetch-crl's @ALIAS@): letters, digits, `.`, `_`, `-`. */
  alias: string;
  /** Where people read about the CA. */
  url: string;
  crlUrl: string;
  email: string;
  /** IGTF status, e.g. `accredited:classic`, `experimental`, `unaccredited`. */
  status: string;
  /** DER of the CA certificate (for sha1fp.0). */
  certDer: Uint8Array;
  /** Slash-form subject, written as `subjectdn`. */
  subject: string;
}

/**
 * An alias for the `.info` file from a CA subject: its last CN (else the
 * whole DN), characters outside `[A-Za-z0-9._-]` as `-`, as IGTF aliases look
 * (`AEGIS`, `DFN-GridGermany-Root`, `UKeScienceCA-2B`).
 */
export function infoAlias(caSubjectSlash: string): string {
  const rdns = parseSlashDn(caSubjectSlash);
  const cn = rdns.filter((a) => a.type === "CN").pop()?.value ?? caSubjectSlash;
  const alias = cn.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return alias || "certbridge-ca";
}

/**
 * `<hash>.info` as the IGTF distribution writes it (one `key = value` a line,
 * read by fetch-crl 3 with Config::Tiny semantics: `alias` and `crl_url` are
 * required there, `crl_url` may list several URLs separated by `;`),
 * with the CA certificate's SHA-1 fingerprint in OpenSSL's
 * `x509 -fingerprint -sha1` form (`XX:XX:…`, upper case).
 */
export function igtfInfoFile(info: IgtfInfo): string {
  const alias = oneLine(info.alias, "alias");
  if (!/^[A-Za-z0-9._-]+$/.test(alias)) throw new Error(`alias ${JSON.stringify(alias)} must be letters, digits, ".", "_" or "-"`);
  const sha1fp = createHash("sha1").update(info.certDer).digest("hex").toUpperCase().match(/../g)!.join(":");
  const subject = slashDn(info.subject, "CA subject", /"/, "subjectdn is written in double quotes");
  return [
    `alias = ${alias}`,
    `url = ${oneLine(info.url, "url")}`,
    `crl_url = ${crlUrlValue(info.crlUrl)}`,
    `email = ${oneLine(info.email, "email")}`,
    `status = ${oneLine(info.status, "status")}`,
    `sha1fp.0 = ${sha1fp}`,
    `subjectdn = "${subject}"`,
    "",
  ].join("\n");
}
