/**
 * Encrypted PKCS#8 key files (RFC 5958 §3 EncryptedPrivateKeyInfo, PBES2 of RFC 8018 §6.2).
 *
 * Node's KeyObject.export({ cipher, passphrase }) leaves the key derivation to OpenSSL's
 * default, PBKDF2 with 2,048 iterations: a stolen CA key file then costs an attacker about a
 * millisecond per passphrase guess. Certbridge writes PBKDF2-HMAC-SHA256 with 600,000 iterations
 * (OWASP's 2023 figure for PBKDF2-SHA256) and AES-256-CBC, which OpenSSL, Java and Node all read
 * (`openssl pkcs8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000` writes the same structure).
 * Files from older releases stay readable (the parameters travel in the file); `describeEncryptedPkcs8`
 * tells the key backend when a file is weaker than this, so it can re-encrypt it.
 */
import crypto from "node:crypto";
import * as der from "./der";

export const PBES2 = "1.2.840.113549.1.5.13";
export const PBKDF2 = "1.2.840.113549.1.5.12";
export const HMAC_WITH_SHA1 = "1.2.840.113549.2.7";
export const HMAC_WITH_SHA256 = "1.2.840.113549.2.9";
export const AES_256_CBC = "2.16.840.1.101.3.4.1.42";

/** The cost Certbridge writes, and the least it accepts without re-encrypting (RFC 8018 §4.2 leaves the count to policy). */
export const PBKDF2_ITERATIONS = 600_000;

/** What an encrypted key file's header says about its protection. */
export interface EncryptedPkcs8Parameters {
  scheme: string;
  /** For PBES2: the key derivation function (PBKDF2 or scrypt) and, for PBKDF2, its cost and PRF. */
  kdf?: string;
  iterations?: number;
  prf?: string;
  saltLength?: number;
  cipher?: string;
}

/** Encrypt an unencrypted PKCS#8 PrivateKeyInfo (DER) under `passphrase`; returns PEM. */
export async function encryptPkcs8(privateKeyInfo: Uint8Array, passphrase: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.randomBytes(16);
  // The async form runs in libuv's pool: 600,000 rounds (~0.3 s) do not stall the event loop.
  const key = await new Promise<Buffer>((resolve, reject) =>
    crypto.pbkdf2(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256", (err, k) => (err ? reject(err) : resolve(k))),
  );
  return sealPkcs8(privateKeyInfo, key, salt, iterations);
}

/** The same, blocking: for re-encrypting an old file while it is opened (once, at start). */
export function encryptPkcs8Sync(privateKeyInfo: Uint8Array, passphrase: string, iterations = PBKDF2_ITERATIONS): string {
  const salt = crypto.randomBytes(16);
  return sealPkcs8(privateKeyInfo, crypto.pbkdf2Sync(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256"), salt, iterations);
}

function sealPkcs8(privateKeyInfo: Uint8Array, key: Buffer, salt: Buffer, iterations: number): string {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv("aes-256-cbc", key, iv); // PKCS#7 padding, as RFC 8018 §6.2.1 step 4 asks
  const encrypted = Buffer.concat([cipher.update(privateKeyInfo), cipher.final()]);
  const pbkdf2Params = der.sequence(
    der.octetString(salt),
    der.smallInteger(iterations),
    der.smallInteger(32),
    der.sequence(der.oid(HMAC_WITH_SHA256), der.nullValue()),
  );
  const pbes2Params = der.sequence(der.sequence(der.oid(PBKDF2), pbkdf2Params), der.sequence(der.oid(AES_256_CBC), der.octetString(iv)));
  const info = der.sequence(der.sequence(der.oid(PBES2), pbes2Params), der.octetString(encrypted));
  return der.toPem("ENCRYPTED PRIVATE KEY", info);
}

/** The protection parameters of an ENCRYPTED PRIVATE KEY PEM, or undefined when the text holds none (plain or PKCS#1). */
export function describeEncryptedPkcs8(pem: string): EncryptedPkcs8Parameters | undefined {
  const block = der.pemBlocks(pem).find((b) => b.label === "ENCRYPTED PRIVATE KEY");
  if (!block) return undefined;
  const bytes = block.der;
  const top = der.readTlv(bytes);
  const [algorithm] = der.children(bytes, top);
  if (!algorithm) throw new Error("EncryptedPrivateKeyInfo without an algorithm");
  const [schemeOid, schemeParams] = der.children(bytes, algorithm);
  const scheme = der.oidToString(der.content(bytes, schemeOid!));
  if (scheme !== PBES2 || !schemeParams) return { scheme };
  const [kdfAlg, encAlg] = der.children(bytes, schemeParams);
  const [kdfOid, kdfParams] = der.children(bytes, kdfAlg!);
  const kdf = der.oidToString(der.content(bytes, kdfOid!));
  const cipher = encAlg ? der.oidToString(der.content(bytes, der.children(bytes, encAlg)[0]!)) : undefined;
  if (kdf !== PBKDF2 || !kdfParams) return { scheme, kdf, cipher };
  const fields = der.children(bytes, kdfParams);
  const salt = fields[0]!;
  const iterations = Number(BigInt(`0x${Buffer.from(der.content(bytes, fields[1]!)).toString("hex") || "0"}`));
  // keyLength (INTEGER) is optional; the PRF defaults to hmacWithSHA1 (RFC 8018 §A.2).
  const prfField = fields.slice(2).find((f) => f.tag === 0x30);
  const prf = prfField ? der.oidToString(der.content(bytes, der.children(bytes, prfField)[0]!)) : HMAC_WITH_SHA1;
  return { scheme, kdf, iterations, prf, saltLength: salt.end - salt.contentStart, cipher };
}

/**
 * True when a key file is encrypted more weakly than Certbridge writes today (PBES1, or PBKDF2
 * under 600,000 iterations) and should be re-encrypted. Another PBES2 KDF (scrypt, RFC 7914 §7)
 * is the operator's choice and left alone.
 */
export function isWeaklyEncrypted(p: EncryptedPkcs8Parameters): boolean {
  return p.scheme !== PBES2 || (p.kdf === PBKDF2 && (p.iterations ?? 0) < PBKDF2_ITERATIONS);
}
