/**
 * Virtual organisations served by the built-in attribute authority. Each VO
 * has an AA certificate and key: issued by Certbridge's own CA on first start
 * (kept in the data directory, key encrypted like the CA's, or with `aaKey` a
 * key URI: `pkcs11:` keeps it in a token, made there on first start), or
 * supplied by the operator (`aaKeyFile` may be a `pkcs11:` URI too). The AC never outlives the proxy, the VO's AC cap, or the AA
 * certificate itself.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { invalidConfig } from "../errors";
import { parseDuration } from "../duration";
import type { KeyCustody } from "../pki/custody";
import { createSigner, openSigner, parseKeyUri, type OpenOptions, type Pkcs11Settings } from "../kms";
import * as der from "../pki/der";
import { encodeName, parseSlashDn, formatSlashDn, decodeName } from "../pki/dn";
import { certificateParts, encodeTbsCertificate, ext, keyIdentifier, KeyUsage, randomSerial, signStructure, OID } from "../pki/x509";
import type { CertificateAuthority } from "../ca/authority";
import type { Clock } from "../clock";
import { removeStaleTemporaries, writeFileExclusive } from "../files";
import type { AttributeAuthority } from "./ac";

const voEntry = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "VO names are letters, digits, . _ -"),
  host: z.string().regex(/^[A-Za-z0-9.-]+$/, "host must be a DNS name"),
  port: z.number().int().min(1).max(65535).default(15000),
  acMaxLifetime: z.string().default("12h"),
  aaCertFile: z.string().optional(),
  aaKeyFile: z.string().optional(),
  aaKeyPassphrase: z.string().optional(),
  /** The built-in AA's key by URI (lib/kms): `pkcs11:token=…;object=…` keeps it in the token. Default: <data>/voms/<vo>/aa-key.pem. */
  aaKey: z.string().min(1).optional(),
  /** Operator-kept extra FQANs per person (by identity subject DN). */
  members: z.record(z.string(), z.array(z.string())).default({}),
});
export type VoConfig = z.infer<typeof voEntry> & { acMaxLifetimeSeconds: number };

export function loadVoConfig(file: string | null): VoConfig[] {
  if (!file) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw invalidConfig(`CERTBRIDGE_VOS_FILE: cannot read ${file}: ${(e as Error).message}`, e);
  }
  const r = z.array(voEntry).safeParse(raw);
  if (!r.success) throw invalidConfig(`CERTBRIDGE_VOS_FILE: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const names = new Set<string>();
  return r.data.map((v) => {
    if (names.has(v.name)) throw invalidConfig(`CERTBRIDGE_VOS_FILE: VO ${v.name} is declared twice`);
    names.add(v.name);
    if ((v.aaCertFile === undefined) !== (v.aaKeyFile === undefined)) throw invalidConfig(`CERTBRIDGE_VOS_FILE: VO ${v.name}: aaCertFile and aaKeyFile go together`);
    if (v.aaKey !== undefined && v.aaKeyFile !== undefined) {
      throw invalidConfig(`CERTBRIDGE_VOS_FILE: VO ${v.name}: aaKey (the built-in AA's key) and aaCertFile/aaKeyFile (your own AA) are alternatives`);
    }
    let acMaxLifetimeSeconds: number;
    try {
      acMaxLifetimeSeconds = parseDuration(v.acMaxLifetime);
    } catch (e) {
      throw invalidConfig(`CERTBRIDGE_VOS_FILE: VO ${v.name}: acMaxLifetime: ${(e as Error).message}`);
    }
    return { ...v, acMaxLifetimeSeconds };
  });
}

export interface ServedVo {
  config: VoConfig;
  aa: AttributeAuthority;
  /** AA subject, then its issuer (the CA), Globus slash form: the .lsc file's lines. */
  lsc: string[];
}

const AA_LIFETIME_SECONDS = 365 * 86400;

/** Subject of a built-in AA certificate: under the AA namespace, one per VO. */
export const aaSubject = (aaBase: string, vo: string, host: string) => `${aaBase}/OU=${vo}/CN=${host}`;

/** A built-in AA certificate for `spki` (deterministic given the serial and the time: known-answer tests use it). */
export async function buildAaCertificate(ca: CertificateAuthority, spki: Uint8Array, subject: string, now: Date, serial: Uint8Array = randomSerial()): Promise<Uint8Array> {
  const tbs = encodeTbsCertificate({
    serial,
    issuer: ca.parts.subject,
    subject: encodeName(parseSlashDn(subject)),
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(Math.min(now.getTime() + AA_LIFETIME_SECONDS * 1000, ca.parts.notAfter.getTime())),
    spki,
    signatureAlgorithm: ca.custody.signatureAlgorithm,
    extensions: [
      ext.basicConstraints(false),
      ext.keyUsage([KeyUsage.digitalSignature, KeyUsage.keyEncipherment]),
      // voms-api-java matches the AC's AKID against this SKID: it is required.
      ext.subjectKeyIdentifier(keyIdentifier(spki)),
      ext.authorityKeyIdentifier(ca.keyId),
    ],
  });
  return signStructure(tbs, ca.custody);
}

async function createAa(ca: CertificateAuthority, vo: VoConfig, aaBase: string, clock: Clock, keyUri: string, opts: OpenOptions) {
  // The key first: written exclusively (encrypted PKCS#8, 0600) by its backend, or generated inside the token.
  // A token that already holds the key (another instance made it, or the certificate file was lost) keeps it:
  // the new certificate is for that key.
  let key: KeyCustody;
  if (parseKeyUri(keyUri).scheme === "pkcs11") {
    try {
      key = openSigner(keyUri, opts);
    } catch {
      key = await createSigner(keyUri, { bits: 2048, ...opts });
    }
  } else key = await createSigner(keyUri, { bits: 2048, ...opts });
  return { certDer: await buildAaCertificate(ca, key.publicKeySpki, aaSubject(aaBase, vo.name, vo.host), clock()), key };
}

/** Test hook: the moment between an AA key's write and its certificate's. */
let beforeAaCertificateWrite: () => Promise<void> = async () => {};
export function setBeforeAaCertificateWrite(hook: (() => Promise<void>) | null): void {
  beforeAaCertificateWrite = hook ?? (async () => {});
}

/** Load (or, in the primary process, create) the AA of every configured VO. */
export async function openAttributeAuthorities(opts: {
  vos: VoConfig[];
  ca: CertificateAuthority;
  dataDir: string;
  passphrase: string;
  aaBase: string;
  clock: Clock;
  create: boolean;
  /** Module and PIN for AA keys in a token (CERTBRIDGE_PKCS11_*, as for the CA key). */
  pkcs11?: Pkcs11Settings;
  log?: (msg: string) => void;
}): Promise<Map<string, ServedVo>> {
  const served = new Map<string, ServedVo>();
  for (const vo of opts.vos) {
    const certFile = vo.aaCertFile ?? path.join(opts.dataDir, "voms", vo.name, "aa.pem");
    const keyFile = vo.aaKeyFile ?? vo.aaKey ?? path.join(opts.dataDir, "voms", vo.name, "aa-key.pem");
    const inToken = parseKeyUri(keyFile).scheme === "pkcs11";
    const passphrase = vo.aaKeyFile ? (vo.aaKeyPassphrase ?? "") : opts.passphrase;
    const keyOptions: OpenOptions = { passphrase, ...(opts.pkcs11 ? { pkcs11: opts.pkcs11 } : {}) };
    // The key just made is used as it is: opening the file again would cost another 600,000 PBKDF2 rounds.
    let created: KeyCustody | undefined;
    if (!vo.aaCertFile && opts.create && !fs.existsSync(certFile)) {
      if (!passphrase && !inToken) throw invalidConfig(`VO ${vo.name}: CERTBRIDGE_CA_KEY_PASSPHRASE is needed to encrypt the new AA key`);
      if (!inToken) {
        for (const f of [certFile, keyFile]) removeStaleTemporaries(f);
        // A key without its certificate is an interrupted first start: an AA is only ever loaded with
        // its certificate, so that key never signed anything. Set it aside (kept) and make the AA anew.
        if (!vo.aaKeyFile && fs.existsSync(keyFile)) {
          const aside = `${keyFile}.incomplete-${opts.clock().toISOString().replace(/[:.]/g, "-")}`;
          fs.renameSync(keyFile, aside);
          opts.log?.(`VO ${vo.name}: the AA key had no certificate (an interrupted first start): set it aside as ${aside}; creating the AA anew`);
        }
      }
      let certDer: Uint8Array;
      try {
        ({ certDer, key: created } = await createAa(opts.ca, vo, opts.aaBase, opts.clock, keyFile, keyOptions));
      } catch (e) {
        throw invalidConfig(`VO ${vo.name}: cannot make the AA key ${keyFile}: ${(e as Error).message}`, e);
      }
      fs.mkdirSync(path.dirname(certFile), { recursive: true, mode: 0o755 });
      await beforeAaCertificateWrite();
      writeFileExclusive(certFile, der.toPem("CERTIFICATE", certDer), 0o644);
    }
    let key: KeyCustody;
    let certDer: Uint8Array;
    try {
      certDer = der.pemBlocks(fs.readFileSync(certFile, "utf8")).find((b) => b.label === "CERTIFICATE")!.der;
      key = created ?? openSigner(keyFile, keyOptions);
    } catch (e) {
      throw invalidConfig(`VO ${vo.name}: cannot load the AA certificate and key (${certFile}, ${keyFile}): ${(e as Error).message}`, e);
    }
    const parts = certificateParts(certDer);
    if (!Buffer.from(parts.spki).equals(Buffer.from(key.publicKeySpki))) throw invalidConfig(`VO ${vo.name}: the AA key does not belong to ${certFile}`);
    const ski = skidOf(certDer);
    if (!ski) throw invalidConfig(`VO ${vo.name}: the AA certificate has no subjectKeyIdentifier (voms-api-java requires one)`);
    served.set(vo.name, {
      config: vo,
      aa: { vo: vo.name, host: vo.host, port: vo.port, cert: parts, keyId: ski, key },
      lsc: [formatSlashDn(decodeName(parts.subject)), formatSlashDn(decodeName(parts.issuer))],
    });
  }
  return served;
}

/** The subjectKeyIdentifier extension's key id, read with the DER walker. */
function skidOf(certDer: Uint8Array): Uint8Array | undefined {
  const top = der.readTlv(certDer);
  const tbs = der.children(certDer, top)[0]!;
  const exts = der.children(certDer, tbs).find((t) => t.tag === 0xa3);
  if (!exts) return undefined;
  const list = der.children(certDer, der.readTlv(certDer, exts.contentStart, exts.end));
  for (const e of list) {
    const [oid, ...rest] = der.children(certDer, e);
    if (oid && der.oidToString(der.content(certDer, oid)) === OID.subjectKeyIdentifier) {
      const octets = rest[rest.length - 1]!;
      const inner = der.readTlv(certDer, octets.contentStart, octets.end);
      return new Uint8Array(der.content(certDer, inner));
    }
  }
  return undefined;
}

/** The `.lsc` file (one DN per line: AA subject, then its CA), and the vomses line. */
export const lscFile = (vo: ServedVo) => `${vo.lsc.join("\n")}\n`;
export const vomsesLine = (vo: ServedVo) => `"${vo.config.name}" "${vo.config.host}" "${vo.config.port}" "${vo.lsc[0]}" "${vo.config.name}"\n`;
