/**
 * One end-entity certificate per person (RFC 5280 profile, IGTF-style):
 * RSA key made on the server, sealed with AES-256-GCM before it touches the
 * database, re-issued automatically when the current one would not cover the
 * proxy being asked for. Proxies are signed with this key.
 */
import * as der from "../pki/der";
import { Lru } from "../lru";
import { SoftwareKey, type KeyCustody } from "../pki/custody";
import { openSealedKey, sealKey } from "../pki/seal";
import {
  certificateParts,
  encodeTbsCertificate,
  ext,
  keyIdentifier,
  KeyUsage,
  randomSerial,
  serialDec,
  serialHex,
  signStructure,
  type CertificateParts,
} from "../pki/x509";
import { encodeName, parseSlashDn } from "../pki/dn";
import { findCurrentUserCertificateId, findUserCertificateWithKey, newId, storeIssuedCertificate, type Db } from "../db";
import type { CertificateAuthority } from "../ca/authority";
import type { Config } from "../config";
import type { Clock } from "../clock";
import type { Identity } from "./identity";

export interface UserCredential {
  id: string;
  parts: CertificateParts;
  pem: string;
  key: KeyCustody;
}

/**
 * Opened user keys, by certificate id: opening a sealed key costs an AES-GCM
 * decryption and a PKCS#8 parse on every proxy otherwise. Entries are dropped
 * on revocation, and the database row (status, validity) is still read on
 * every issuance, so a revocation by another instance takes effect at once.
 */
export class UserKeyCache extends Lru<UserCredential> {
  constructor(capacity = 4096) {
    super(capacity);
  }
}

const USER_KEY_USAGE = [KeyUsage.digitalSignature, KeyUsage.keyEncipherment, KeyUsage.dataEncipherment];
const keyContext = (certificateId: string) => `certbridge:user-key:${certificateId}`;

export interface UserCertDeps {
  db: Db;
  ca: CertificateAuthority;
  config: Config;
  clock: Clock;
  userKeys: UserKeyCache;
}

/** Build and sign a user certificate (pure apart from the signature). */
export async function buildUserCertificate(
  ca: CertificateAuthority,
  f: { subject: string; spki: Uint8Array; notBefore: Date; notAfter: Date; policyOid: string; crlUrl: string; serial?: Uint8Array },
): Promise<Uint8Array> {
  const tbs = encodeTbsCertificate({
    serial: f.serial ?? randomSerial(),
    issuer: ca.parts.subject,
    subject: encodeName(parseSlashDn(f.subject)),
    notBefore: f.notBefore,
    notAfter: f.notAfter,
    spki: f.spki,
    signatureAlgorithm: ca.custody.signatureAlgorithm,
    extensions: [
      ext.basicConstraints(false),
      ext.keyUsage(USER_KEY_USAGE),
      ext.clientAuth(),
      ext.subjectKeyIdentifier(keyIdentifier(f.spki)),
      ext.authorityKeyIdentifier(ca.keyId),
      ext.crlDistributionPoint(f.crlUrl),
      ext.certificatePolicy(f.policyOid),
    ],
  });
  return signStructure(tbs, ca.custody);
}

/** Who caused an issuance, for its audit event. */
export interface Requester {
  actor: string;
  ip?: string | null;
  clientId?: string | null;
}

async function issueUserCertificate(deps: UserCertDeps, identity: Identity, by: Requester): Promise<UserCredential> {
  const { config, ca } = deps;
  const now = deps.clock();
  const key = await SoftwareKey.generate(config.userCert.keyBits);
  // Never beyond the CA's own end: a chain cannot outlive its root.
  const notAfter = new Date(Math.min(now.getTime() + config.userCert.lifetimeSeconds * 1000, ca.parts.notAfter.getTime()));
  const certDer = await buildUserCertificate(ca, {
    subject: identity.subject,
    spki: key.publicKeySpki,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter,
    policyOid: config.userCert.policyOid,
    crlUrl: config.ca.crlUrl,
  });
  const parts = certificateParts(certDer);
  const id = newId();
  const pem = der.toPem("CERTIFICATE", certDer);
  await storeIssuedCertificate(
    deps.db,
    {
      id,
      kind: "user",
      serialHex: serialHex(parts.serial),
      serialDec: serialDec(parts.serial),
      subject: identity.subject,
      issuer: ca.subject,
      identityId: identity.id,
      notBefore: parts.notBefore,
      notAfter: parts.notAfter,
      pem,
      keyEnc: sealKey(config.kek, key.exportPkcs8(), keyContext(id)),
      keySource: "ca",
      keyBits: key.bits,
    },
    { action: "certificate.issue", actor: by.actor, ip: by.ip ?? null, clientId: by.clientId ?? null, details: { kind: "user", serial: serialHex(parts.serial), subject: identity.subject, notAfter: parts.notAfter.toISOString() } },
  );
  const cred = { id, parts, pem, key };
  deps.userKeys.set(cred.id, cred);
  return cred;
}

const inFlight = new Map<string, Promise<UserCredential>>();

/**
 * The person's user credential, valid at least until `needUntil` (and for the
 * configured renewal margin); issues a new one when needed. Concurrent callers
 * for the same person in this process share one issuance.
 */
export async function ensureUserCredential(
  deps: UserCertDeps,
  identity: Identity,
  needUntil: Date,
  by: Requester,
): Promise<UserCredential> {
  const now = deps.clock();
  const minNotAfter = new Date(Math.max(needUntil.getTime(), now.getTime() + deps.config.userCert.renewBeforeSeconds * 1000));
  const currentId = await findCurrentUserCertificateId(deps.db, identity.id, minNotAfter);
  const cached = currentId ? deps.userKeys.get(currentId) : undefined;
  if (cached) return cached;
  const row = currentId ? await findUserCertificateWithKey(deps.db, identity.id, minNotAfter) : null;
  if (row?.keyEnc) {
    const key = SoftwareKey.fromPkcs8(openSealedKey(deps.config.kek, row.keyEnc, keyContext(row.id)));
    const cred = { id: row.id, parts: certificateParts(der.pemBlocks(row.pem)[0]!.der), pem: row.pem, key };
    deps.userKeys.set(cred.id, cred);
    return cred;
  }
  const pending = inFlight.get(identity.id);
  if (pending) return pending;
  const p = issueUserCertificate(deps, identity, by).finally(() => inFlight.delete(identity.id));
  inFlight.set(identity.id, p);
  return p;
}
