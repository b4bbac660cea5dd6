/**
 * The caller's public key for a proxy: a PKCS#10 request (RFC 2986, with
 * proof of possession) or a bare SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
 * Only the key is taken. A CSR's subject, attributes and extensions are
 * ignored by design: the subject comes from the verified identity alone.
 */
import crypto from "node:crypto";
import { invalidCsr } from "../errors";
import * as der from "./der";

export interface ProxyPublicKey {
  /** DER SubjectPublicKeyInfo, copied byte for byte into the proxy. */
  spki: Uint8Array;
  bits: number;
  /** "csr" when possession of the private key was proven by the request's signature. */
  form: "csr" | "spki";
}

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;
const MAX_INPUT_BYTES = 16 * 1024;

const RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
/** Signature algorithms a CSR may use; SHA-1 and MD5 are refused (EL9 rejects them). */
const CSR_SIGNATURE_HASH: Record<string, string> = {
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
};
const WEAK_SIGNATURES: Record<string, string> = {
  "1.2.840.113549.1.1.5": "SHA-1",
  "1.2.840.113549.1.1.4": "MD5",
  "1.2.840.113549.1.1.2": "MD2",
};
const KEY_ALGORITHM_NAMES: Record<string, string> = {
  "1.2.840.10045.2.1": "EC",
  "1.3.101.112": "Ed25519",
  "1.3.101.113": "Ed448",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.10040.4.1": "DSA",
};

/** Accept PEM (CSR or PUBLIC KEY), base64/base64url DER, or raw DER bytes. */
function toDer(input: string | Uint8Array): { der: Uint8Array; label?: string } {
  if (input instanceof Uint8Array) return { der: input };
  const text = input.trim();
  if (text.length === 0) throw invalidCsr("the public key or certificate request is empty");
  if (text.includes("-----BEGIN")) {
    const blocks = der.pemBlocks(text);
    if (blocks.length !== 1) throw invalidCsr("expected exactly one PEM block (CERTIFICATE REQUEST or PUBLIC KEY)");
    const { label, der: body } = blocks[0]!;
    if (!["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "PUBLIC KEY"].includes(label)) {
      throw invalidCsr(`PEM block "${label}" is not a CERTIFICATE REQUEST or PUBLIC KEY`);
    }
    return { der: body, label };
  }
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) throw invalidCsr("the request is neither PEM nor base64-encoded DER");
  return { der: Uint8Array.from(Buffer.from(compact.replace(/-/g, "+").replace(/_/g, "/"), "base64")) };
}

/** SubjectPublicKeyInfo → algorithm OID and, for RSA, the key (RFC 8017 §A.1.1 RSAPublicKey). */
function readSpki(spki: Uint8Array): { algorithm: string; rsa?: { n: Uint8Array; e: Uint8Array; paramsNull: boolean } } {
  const top = der.readTlv(spki);
  if (top.tag !== 0x30 || top.end !== spki.length) throw new Error("SPKI is not one SEQUENCE");
  const [algId, keyBits, ...rest] = der.children(spki, top);
  if (!algId || algId.tag !== 0x30 || !keyBits || keyBits.tag !== 0x03 || rest.length) throw new Error("SPKI fields are malformed");
  const [oidTlv, params, ...extra] = der.children(spki, algId);
  if (!oidTlv || oidTlv.tag !== 0x06 || extra.length) throw new Error("SPKI algorithm is malformed");
  const algorithm = der.oidToString(der.content(spki, oidTlv));
  if (algorithm !== RSA_ENCRYPTION) return { algorithm };
  if (spki[keyBits.contentStart] !== 0) throw new Error("RSA key BIT STRING has unused bits");
  const rsaKey = der.readTlv(spki, keyBits.contentStart + 1, keyBits.end);
  const [n, e, ...more] = der.children(spki, rsaKey);
  if (rsaKey.tag !== 0x30 || rsaKey.end !== keyBits.end || !n || !e || more.length || n.tag !== 0x02 || e.tag !== 0x02) {
    throw new Error("RSAPublicKey is malformed");
  }
  const paramsNull = params !== undefined && params.tag === 0x05 && params.end === params.contentStart;
  return { algorithm, rsa: { n: der.content(spki, n), e: der.content(spki, e), paramsNull } };
}

const unsignedBytes = (b: Uint8Array) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/**
 * Check an RSA public key and import it. The import goes through JWK: here
 * OpenSSL 3 decodes a DER SPKI in ~100 µs but a JWK in ~8 µs.
 */
function checkRsaKey(spki: Uint8Array): { bits: number; key: crypto.KeyObject } {
  let parsed: ReturnType<typeof readSpki>;
  try {
    parsed = readSpki(spki);
  } catch (e) {
    throw invalidCsr("the public key is not a valid SubjectPublicKeyInfo", e);
  }
  if (!parsed.rsa) {
    const name = KEY_ALGORITHM_NAMES[parsed.algorithm] ?? `OID ${parsed.algorithm}`;
    throw invalidCsr(`only RSA keys are accepted for proxies (got ${name}): grid clients such as voms-proxy-init3 cannot use other key types`);
  }
  const n = unsignedBytes(parsed.rsa.n);
  const e = unsignedBytes(parsed.rsa.e);
  if ((parsed.rsa.n[0]! & 0x80) !== 0) throw invalidCsr("the RSA modulus is negative");
  if (parsed.rsa.paramsNull !== true) throw invalidCsr("the RSA algorithm identifier must have NULL parameters (RFC 3279 §2.3.1)");
  const bits = n.length * 8 - Math.clz32(n[0]!) + 24;
  if (bits < MIN_RSA_BITS) throw invalidCsr(`the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  if (bits > MAX_RSA_BITS) throw invalidCsr(`the RSA key has ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
  if ((n[n.length - 1]! & 1) === 0) throw invalidCsr("the RSA modulus is even, so it is not a valid key");
  if (e.length > 8 || (e.length === 1 && e[0]! < 3) || (e[e.length - 1]! & 1) === 0) {
    throw invalidCsr("the RSA public exponent is invalid (must be odd, at least 3 and at most 64 bits)");
  }
  try {
    const key = crypto.createPublicKey({
      key: { kty: "RSA", n: Buffer.from(n).toString("base64url"), e: Buffer.from(e).toString("base64url") },
      format: "jwk",
    });
    return { bits, key };
  } catch (err) {
    throw invalidCsr("the RSA public key is malformed", err);
  }
}

export function parseProxyPublicKey(input: string | Uint8Array): ProxyPublicKey {
  const { der: bytes, label } = toDer(input);
  if (bytes.length === 0) throw invalidCsr("the public key or certificate request is empty");
  if (bytes.length > MAX_INPUT_BYTES) throw invalidCsr(`the request is larger than ${MAX_INPUT_BYTES} bytes`);
  let top: der.Tlv;
  let fields: der.Tlv[];
  try {
    top = der.readTlv(bytes);
    if (top.tag !== 0x30) throw new Error("not a SEQUENCE");
    fields = der.children(bytes, top);
  } catch (e) {
    throw invalidCsr("the request is not valid DER (truncated or malformed)", e);
  }
  if (top.end !== bytes.length) throw invalidCsr("the request has trailing data after the DER structure");

  // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }
  const looksLikeSpki = fields.length === 2 && fields[0]!.tag === 0x30 && fields[1]!.tag === 0x03;
  if (label === "PUBLIC KEY" || (label === undefined && looksLikeSpki)) {
    const { bits } = checkRsaKey(bytes);
    return { spki: bytes, bits, form: "spki" };
  }

  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature } (RFC 2986 §4)
  const [info, sigAlg, sigBits] = fields;
  if (fields.length !== 3 || info?.tag !== 0x30 || sigAlg?.tag !== 0x30 || sigBits?.tag !== 0x03) {
    throw invalidCsr("the request is not a valid PKCS#10 certificate request");
  }
  let spki: Uint8Array;
  let sigOid: string;
  try {
    const [version, , spkiTlv] = der.children(bytes, info);
    const versionContent = version && der.content(bytes, version);
    if (version?.tag !== 0x02 || versionContent?.length !== 1 || versionContent[0] !== 0 || spkiTlv?.tag !== 0x30) {
      throw new Error("bad version or SPKI");
    }
    spki = der.slice(bytes, spkiTlv);
    const oidTlv = der.children(bytes, sigAlg)[0];
    if (oidTlv?.tag !== 0x06) throw new Error("bad signature algorithm");
    sigOid = der.oidToString(der.content(bytes, oidTlv));
  } catch (e) {
    throw invalidCsr("the request is not a valid PKCS#10 v1 certificate request", e);
  }
  const { bits, key } = checkRsaKey(spki);
  if (WEAK_SIGNATURES[sigOid]) {
    throw invalidCsr(`the request is signed with ${WEAK_SIGNATURES[sigOid]}, which is refused; sign it with SHA-256`);
  }
  const hash = CSR_SIGNATURE_HASH[sigOid];
  if (!hash) throw invalidCsr(`the request's signature algorithm ${sigOid} is not supported; use sha256WithRSAEncryption`);
  const sigContent = der.content(bytes, sigBits);
  if (sigContent[0] !== 0) throw invalidCsr("the request's signature BIT STRING is malformed");
  const signature = sigContent.subarray(1);
  if (!crypto.verify(hash, der.slice(bytes, info), key, signature)) {
    throw invalidCsr("the request's signature does not verify: proof of possession of the private key failed");
  }
  return { spki: new Uint8Array(spki), bits, form: "csr" };
}
