/**
 * Private keys at rest: AES-256-GCM under the key-encryption key from
 * configuration. The associated data binds each ciphertext to the record it
 * belongs to, so a sealed key copied into another row fails to open.
 * Envelope: "v1.<iv>.<tag>.<ciphertext>", base64url parts.
 */
import crypto from "node:crypto";

const VERSION = "v1";

export function sealKey(kek: Buffer, plaintext: Uint8Array, context: string): string {
  if (kek.length !== 32) throw new Error("the key-encryption key must be 32 bytes");
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [VERSION, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function openSealedKey(kek: Buffer, envelope: string, context: string): Uint8Array {
  if (kek.length !== 32) throw new Error("the key-encryption key must be 32 bytes");
  const parts = envelope.split(".");
  const [version, ivText, tagText, ctText] = parts;
  if (parts.length !== 4 || version !== VERSION || !ivText || !tagText || ![ivText, tagText, ctText].every((p) => p !== undefined && B64URL.test(p))) {
    throw new Error("sealed key has an unknown format");
  }
  const iv = Buffer.from(ivText!, "base64url");
  const tag = Buffer.from(tagText!, "base64url");
  const ct = Buffer.from(ctText!, "base64url");
  // One envelope, one spelling: base64url's last character can carry unused low bits
  // (RFC 4648 §3.5), and a decoder that ignores them would accept a changed record as
  // unchanged. Only the canonical encoding of the decoded bytes is accepted.
  if (iv.toString("base64url") !== ivText || tag.toString("base64url") !== tagText || ct.toString("base64url") !== ctText) {
    throw new Error("sealed key has an unknown format");
  }
  // A short tag would make forgery far easier (NIST SP 800-38D §5.2.1.2): insist on all 128 bits.
  if (iv.length !== 12 || tag.length !== 16) throw new Error("sealed key does not open: wrong key-encryption key or tampered record");
  const decipher = crypto.createDecipheriv("aes-256-gcm", kek, iv, { authTagLength: 16 });
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([decipher.update(ct), decipher.final()]));
  } catch (e) {
    throw new Error("sealed key does not open: wrong key-encryption key or tampered record", { cause: e });
  }
}

/** Constant-time comparison of two secrets of any length (both hashed first, so lengths leak nothing). */
export function secretsEqual(a: string, b: string): boolean {
  return crypto.timingSafeEqual(crypto.createHash("sha256").update(a).digest(), crypto.createHash("sha256").update(b).digest());
}
