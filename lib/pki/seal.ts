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

export function openSealedKey(kek: Buffer, envelope: string, context: string): Uint8Array {
  const [version, iv, tag, ct] = envelope.split(".");
  if (version !== VERSION || !iv || !tag || !ct) throw new Error("sealed key has an unknown format");
  const decipher = crypto.createDecipheriv("aes-256-gcm", kek, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(context, "utf8"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  try {
    return new Uint8Array(Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]));
  } catch (e) {
    throw new Error("sealed key does not open: wrong key-encryption key or tampered record", { cause: e });
  }
}
