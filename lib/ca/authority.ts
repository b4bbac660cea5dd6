/**
 * The CA's own certificate and key: created on first start (RSA-3072+,
 * SHA-256, basicConstraints CA critical, keyCertSign+cRLSign, SKI/AKI), or
 * loaded from an operator's files. The key is opened by URI through lib/kms
 * (a path or file: URI today: encrypted PKCS#8); a generated key is written
 * only as encrypted PKCS#8 (PBES2/AES-256-CBC) with mode 0600.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as pkijs from "pkijs";
import { CertbridgeError, invalidConfig } from "../errors";
import type { KeyCustody } from "../pki/custody";
import { createSigner, openSigner, parseKeyUri, type Pkcs11Settings } from "../kms";
import * as der from "../pki/der";
import { encodeName, parseSlashDn, pkijsNameToSlash } from "../pki/dn";
import {
  certificateParts,
  encodeTbsCertificate,
  ext,
  keyIdentifier,
  KeyUsage,
  OID,
  randomSerial,
  signStructure,
  type CertificateParts,
} from "../pki/x509";
import type { Clock } from "../clock";
import { removeStaleTemporaries, writeFileExclusive } from "../files";

export interface CertificateAuthority {
  subject: string;
  parts: CertificateParts;
  certPem: string;
  keyId: Uint8Array;
  /** SHA-256 of the certificate DER, hex: also the CA's database id. */
  fingerprint: string;
  custody: KeyCustody;
}

export interface CaFiles {
  certFile: string;
  /** The key's URI (lib/kms): a path, file:…, or pkcs11:… (RFC 7512). */
  keyFile: string;
  keyPassphrase: string;
  /** Module and PIN for a pkcs11: key. */
  pkcs11?: Pkcs11Settings;
}

export interface CaCreation {
  subject: string;
  keyBits: number;
  lifetimeSeconds: number;
}

/** A CertificateAuthority from its certificate and the custody of its key. */
export function authorityFrom(parts: CertificateParts, certPem: string, custody: KeyCustody): CertificateAuthority {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(parts.der));
  return {
    subject: pkijsNameToSlash(cert.subject),
    parts,
    certPem,
    keyId: keyIdentifier(parts.spki),
    fingerprint: crypto.createHash("sha256").update(parts.der).digest("hex"),
    custody,
  };
}

/** Build a self-signed CA certificate for `key` (no file I/O). */
export async function createCaCertificate(key: KeyCustody, c: CaCreation, now: Date, serial = randomSerial()): Promise<Uint8Array> {
  const name = encodeName(parseSlashDn(c.subject));
  const keyId = keyIdentifier(key.publicKeySpki);
  const tbs = encodeTbsCertificate({
    serial,
    issuer: name,
    subject: name,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + c.lifetimeSeconds * 1000),
    spki: key.publicKeySpki,
    signatureAlgorithm: key.signatureAlgorithm,
    extensions: [
      ext.basicConstraints(true),
      ext.keyUsage([KeyUsage.keyCertSign, KeyUsage.cRLSign]),
      ext.subjectKeyIdentifier(keyId),
      ext.authorityKeyIdentifier(keyId),
    ],
  });
  return signStructure(tbs, key);
}

/** Create the CA files; refuses to overwrite an existing CA. */
export async function initCaFiles(files: CaFiles, c: CaCreation, clock: Clock): Promise<CertificateAuthority> {
  const keyPath = parseKeyUri(files.keyFile);
  if (fs.existsSync(files.certFile) || (keyPath.scheme === "file" && fs.existsSync(keyPath.location))) {
    throw new CertbridgeError("conflict", `a CA already exists at ${files.certFile}; remove it first to create a new one`);
  }
  if (keyPath.scheme === "file" && !files.keyPassphrase) throw invalidConfig("CERTBRIDGE_CA_KEY_PASSPHRASE is needed to create a CA");
  // The key first, written exclusively by its backend (a file, or generated inside a token, which
  // refuses an object that exists): two processes racing to init cannot both win.
  const key = await createSigner(files.keyFile, { bits: c.keyBits, passphrase: files.keyPassphrase, ...(files.pkcs11 ? { pkcs11: files.pkcs11 } : {}) });
  const certDer = await createCaCertificate(key, c, clock());
  const certPem = der.toPem("CERTIFICATE", certDer);
  fs.mkdirSync(path.dirname(files.certFile), { recursive: true, mode: 0o700 });
  await beforeCertificateWrite();
  writeFileExclusive(files.certFile, certPem, 0o644);
  return authorityFrom(certificateParts(certDer), certPem, key);
}

/** Test hook: the moment between the key's write and the certificate's (a crash here is what `settleHalfMadeCa` repairs). */
let beforeCertificateWrite: () => Promise<void> = async () => {};
export function setBeforeCaCertificateWrite(hook: (() => Promise<void>) | null): void {
  beforeCertificateWrite = hook ?? (async () => {});
}

/**
 * First start writes the CA key, then its certificate, each durably (write, fsync, link). A process
 * killed in between leaves a key without a certificate; one killed inside a write leaves a `.tmp`
 * file. Both used to block every later start. This runs before the CA is opened or created:
 *
 * - temporary files are removed;
 * - a key without its certificate, when the database has never registered a CA (`caInUse` false:
 *   the CA never started, so the key never signed anything), is set aside as
 *   `<key>.incomplete-<time>` — kept, not deleted — and the caller creates the CA anew;
 * - any other half (a key without certificate for a CA the database knows, or a certificate whose
 *   key file is missing) is refused with what to restore: guessing there could replace a trust anchor.
 *
 * Returns lines for the log.
 */
export async function settleHalfMadeCa(files: CaFiles, caInUse: (() => Promise<boolean>) | null, now: Date): Promise<string[]> {
  const notes: string[] = [];
  const keyPath = parseKeyUri(files.keyFile);
  if (keyPath.scheme !== "file") return notes;
  for (const f of [files.certFile, keyPath.location]) {
    for (const t of removeStaleTemporaries(f)) notes.push(`removed ${path.join(path.dirname(f), t)}, left by an interrupted write`);
  }
  const hasCert = fs.existsSync(files.certFile);
  const hasKey = fs.existsSync(keyPath.location);
  if (hasCert && !hasKey) {
    throw invalidConfig(
      `the CA certificate ${files.certFile} exists but its key ${keyPath.location} does not: restore the key from your backup. ` +
        `Only if this CA never issued anything, remove ${files.certFile} and start again to create a new CA.`,
    );
  }
  if (hasKey && !hasCert) {
    if (caInUse === null || (await caInUse())) {
      throw invalidConfig(
        `the CA key ${keyPath.location} exists but its certificate ${files.certFile} does not` +
          (caInUse === null ? "" : " and this database already serves a CA") +
          `: restore ${files.certFile} from your backup (the database's CaRecord holds a copy of the certificate). ` +
          `If the first start was interrupted and nothing was ever issued, remove ${keyPath.location} and start again.`,
      );
    }
    const aside = `${keyPath.location}.incomplete-${now.toISOString().replace(/[:.]/g, "-")}`;
    fs.renameSync(keyPath.location, aside);
    notes.push(`the CA key ${keyPath.location} had no certificate (an interrupted first start): set it aside as ${aside}; creating the CA anew`);
  }
  return notes;
}

function isCaCertificate(cert: pkijs.Certificate): boolean {
  const bc = cert.extensions?.find((e) => e.extnID === OID.basicConstraints);
  const parsed = bc?.parsedValue as pkijs.BasicConstraints | undefined;
  return Boolean(parsed?.cA);
}

/** Load an existing CA, checking that it is a CA and that the key belongs to it. */
export function loadCaFiles(files: CaFiles): CertificateAuthority {
  let certPem: string;
  const keyPath = parseKeyUri(files.keyFile);
  try {
    certPem = fs.readFileSync(files.certFile, "utf8");
    if (keyPath.scheme === "file") fs.accessSync(keyPath.location, fs.constants.R_OK);
  } catch (e) {
    throw invalidConfig(`cannot read the CA files (${files.certFile}, ${files.keyFile}): ${(e as Error).message}`, e);
  }
  const block = der.pemBlocks(certPem).find((b) => b.label === "CERTIFICATE");
  if (!block) throw invalidConfig(`${files.certFile} holds no PEM CERTIFICATE`);
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(new Uint8Array(block.der));
  } catch (e) {
    throw invalidConfig(`${files.certFile} is not a valid X.509 certificate`, e);
  }
  if (!isCaCertificate(cert)) throw invalidConfig(`${files.certFile} is not a CA certificate (basicConstraints CA:TRUE missing)`);
  let key: KeyCustody;
  try {
    key = openSigner(files.keyFile, { passphrase: files.keyPassphrase, ...(files.pkcs11 ? { pkcs11: files.pkcs11 } : {}) });
  } catch (e) {
    // A token's backend names the setting at fault itself (module, PIN, object, mechanism).
    if (keyPath.scheme !== "file") {
      const message = (e as Error).message;
      throw invalidConfig(/^CERTBRIDGE_[A-Z0-9_]+:/.test(message) ? message : `CERTBRIDGE_CA_KEY_FILE: ${message}`, e);
    }
    throw invalidConfig(`cannot open the CA key ${files.keyFile}: wrong CERTBRIDGE_CA_KEY_PASSPHRASE or not an RSA key`, e);
  }
  const parts = certificateParts(block.der);
  if (!Buffer.from(key.publicKeySpki).equals(Buffer.from(parts.spki))) {
    throw invalidConfig(`the CA key ${files.keyFile} does not belong to the certificate ${files.certFile}`);
  }
  return authorityFrom(parts, der.toPem("CERTIFICATE", block.der), key);
}

/** Day-to-day CA facts for `ca info` and the consoles. */
export function describeCa(ca: CertificateAuthority) {
  const cert = pkijs.Certificate.fromBER(new Uint8Array(ca.parts.der));
  return {
    subject: ca.subject,
    issuer: pkijsNameToSlash(cert.issuer),
    serial: Buffer.from(ca.parts.serial).toString("hex"),
    notBefore: ca.parts.notBefore,
    notAfter: ca.parts.notAfter,
    keyBits: ca.custody.bits,
    fingerprintSha256: ca.fingerprint.match(/../g)!.join(":").toUpperCase(),
    subjectKeyIdentifier: Buffer.from(ca.keyId).toString("hex"),
  };
}
