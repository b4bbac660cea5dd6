/**
 * The software key backend: an RSA key in a PEM file (PKCS#8, plain or
 * encrypted with a passphrase, or PKCS#1), opened into process memory.
 * New keys are written only as encrypted PKCS#8 (PBES2/AES-256-CBC), mode 0600.
 */
import fs from "node:fs";
import path from "node:path";
import { SoftwareKey } from "../pki/custody";
import type { KeyManager } from "./types";

export const softwareKeys: KeyManager = {
  open(location, opts) {
    return SoftwareKey.fromPem(fs.readFileSync(location, "utf8"), opts.passphrase);
  },
  async create(location, opts) {
    if (!opts.passphrase) throw new Error("a passphrase is needed to write a new software key");
    const key = await SoftwareKey.generate(opts.bits);
    fs.mkdirSync(path.dirname(location), { recursive: true, mode: 0o700 });
    // Exclusively: two processes racing to create the key cannot both win.
    fs.writeFileSync(location, key.exportEncryptedPem(opts.passphrase), { mode: 0o600, flag: "wx" });
    return key;
  },
};
