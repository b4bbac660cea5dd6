/**
 * A minimal DER writer (X.690 §10) for the proxy hot path. Building a proxy
 * through pkijs' object model costs ~1.5 ms of pure JavaScript per
 * certificate, three times the RSA signature itself; the proxy TBS is a fixed
 * shape, so it is written directly here. Everything produced is parsed back
 * by pkijs and checked by OpenSSL in the tests.
 */

function lengthBytes(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Uint8Array.of(0x80 | out.length, ...out);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Tag-length-value with an already encoded content. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(tag), lengthBytes(content.length), content]);
}

export const sequence = (...items: Uint8Array[]) => tlv(0x30, concat(items));
export const set = (...items: Uint8Array[]) => tlv(0x31, concat(items));
export const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner);
export const octetString = (content: Uint8Array) => tlv(0x04, content);
export const boolean = (v: boolean) => tlv(0x01, Uint8Array.of(v ? 0xff : 0x00));
export const nullValue = () => Uint8Array.of(0x05, 0x00);
export const printableString = (s: string) => tlv(0x13, new TextEncoder().encode(s));
export const utf8String = (s: string) => tlv(0x0c, new TextEncoder().encode(s));

/** BIT STRING with zero unused bits (signatures, public keys). */
export const bitString = (content: Uint8Array) => tlv(0x03, concat([Uint8Array.of(0), content]));

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, sign-safe). */
export function unsignedInteger(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return tlv(0x02, m.length > 0 && (m[0]! & 0x80) !== 0 ? concat([Uint8Array.of(0), m]) : m.length ? m : Uint8Array.of(0));
}

export function smallInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error("smallInteger takes a non-negative safe integer");
  return unsignedInteger(bigIntToBytes(BigInt(n)));
}

export function bigIntToBytes(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

const oidCache = new Map<string, Uint8Array>();

/** OBJECT IDENTIFIER (X.690 §8.19), memoised: the same dozen OIDs are written on every proxy. */
export function oid(dotted: string): Uint8Array {
  const hit = oidCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`bad OID ${dotted}`);
  const body: number[] = [];
  const push = (v: bigint) => {
    const bytes = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) bytes.unshift(Number(x & 0x7fn) | 0x80);
    body.push(...bytes);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const enc = tlv(0x06, Uint8Array.from(body));
  oidCache.set(dotted, enc);
  return enc;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/**
 * Time (RFC 5280 §4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050,
 * whole seconds, always "Z".
 */
export function time(d: Date): Uint8Array {
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, new TextEncoder().encode(`${pad(y % 100)}${rest}`));
  return generalizedTime(d);
}

/** GeneralizedTime, whole seconds, "Z" (RFC 5280 §4.1.2.5.2; VOMS ACs require this form). */
export function generalizedTime(d: Date): Uint8Array {
  const s = `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return tlv(0x18, new TextEncoder().encode(s));
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** All PEM blocks of a text, in order, with their labels. */
export function pemBlocks(text: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    out.push({ label: m[1]!, der: Uint8Array.from(Buffer.from(m[2]!.replace(/\s+/g, ""), "base64")) });
  }
  return out;
}

/** Content octets of one DER TLV (its header stripped). */
export function contentOf(tlvBytes: Uint8Array): Uint8Array {
  const first = tlvBytes[1];
  if (first === undefined) throw new Error("truncated DER");
  if (first < 0x80) return tlvBytes.subarray(2, 2 + first);
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + tlvBytes[2 + i]!;
  return tlvBytes.subarray(2 + n, 2 + n + len);
}

/** One decoded DER element: its tag, and where its header and content lie in `bytes`. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/**
 * Read the element at `offset` (definite lengths only, as DER requires).
 * Throws on truncation; used on the hot path where a full asn1js parse of a
 * CSR costs ~130 µs.
 */
export function readTlv(bytes: Uint8Array, offset = 0, limit = bytes.length): Tlv {
  if (offset + 2 > limit) throw new Error("truncated DER");
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("multi-byte DER tags are not supported");
  let len = bytes[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("indefinite or oversized DER length");
    if (p + n > limit) throw new Error("truncated DER");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p + i]!;
    // DER (X.690 §10.1): the shortest length form only.
    if (len < 0x80 || bytes[p] === 0) throw new Error("non-minimal DER length");
    p += n;
  }
  if (p + len > limit) throw new Error("truncated DER");
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The children of a constructed element. */
export function children(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const t = readTlv(bytes, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

export const slice = (bytes: Uint8Array, t: Tlv) => bytes.subarray(t.start, t.end);
export const content = (bytes: Uint8Array, t: Tlv) => bytes.subarray(t.contentStart, t.end);

/** Dotted form of an OBJECT IDENTIFIER's content octets. */
export function oidToString(c: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of c) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (arcs.length === 0) throw new Error("empty OID");
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}
