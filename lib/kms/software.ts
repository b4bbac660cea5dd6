/**
 * The software key backend: an RSA key in a PEM file (PKCS#8, plain or
 * encrypted with a passphrase, or PKCS#1), opened into process memory.
 * New keys are written only as encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256 with
 * 600,000 iterations, AES-256-CBC; lib/pki/pkcs8.ts), mode 0600, created durably
 * and exclusively (lib/files.ts writeFileExclusive).
 */
import fs from "node:fs";
import path from "node:path";
import { SoftwareKey } from "../pki/custody";
import { describeEncryptedPkcs8, encryptPkcs8Sync, isWeaklyEncrypted } from "../pki/pkcs8";
import { writeFileAtomic, writeFileExclusive } from "../files";
import type { KeyManager } from "./types";

export const softwareKeys: KeyManager = {
  open(location, opts) {
    const pem = fs.readFileSync(location, "utf8");
    const key = SoftwareKey.fromPem(pem, opts.passphrase);
    if (opts.passphrase) upgradeWeakEncryption(location, pem, key, opts.passphrase);
    return key;
  },
  async create(location, opts) {
    if (!opts.passphrase) throw new Error("a passphrase is needed to write a new software key");
    const key = await SoftwareKey.generate(opts.bits);
    fs.mkdirSync(path.dirname(location), { recursive: true, mode: 0o700 });
    // Exclusively: two processes racing to create the key cannot both win.
    writeFileExclusive(location, await key.exportEncryptedPem(opts.passphrase), 0o600);
    return key;
  },
};

/**
 * A key file written by an older release (PBKDF2 with OpenSSL's 2,048 iterations) is re-encrypted
 * in place, same passphrase, the first time it is opened: write-then-rename, so a crash leaves the
 * old file or the new one. A file the process may not write (an operator's read-only key) is left
 * as it is; it still opens.
 */
function upgradeWeakEncryption(location: string, pem: string, key: SoftwareKey, passphrase: string): void {
  let params;
  try {
    params = describeEncryptedPkcs8(pem);
  } catch {
    return; // OpenSSL read it; an unusual encoding is not ours to rewrite
  }
  if (!params || !isWeaklyEncrypted(params)) return;
  try {
    const mode = fs.statSync(location).mode & 0o777;
    writeFileAtomic(location, encryptPkcs8Sync(key.exportPkcs8(), passphrase), mode & 0o077 ? 0o600 : mode);
  } catch {
    // read-only file or directory: keep serving with the old file
  }
}
