/**
 * The people's user (end-entity) credentials, owned by the authority: one
 * certificate per person, its RSA key made on the server and sealed with
 * AES-256-GCM before it touches the database, re-issued automatically when
 * the current one would not cover the proxy being asked for. Proxies are
 * signed with this key. The opened-key cache and the in-flight issuances
 * live here, per authority (no module-level state).
 */
import * as der from "../pki/der";
import { Lru } from "../lru";
import { SoftwareKey } from "../pki/custody";
import { openSealedKey, sealKey } from "../pki/seal";
import { certificateParts, serialDec, serialHex } from "../pki/x509";
import { findCurrentUserCertificateId, findUserCertificateWithKey, newId, storeIssuedCertificate, type Db } from "../db";
import type { CertificateAuthority } from "../ca/authority";
import type { Config } from "../config";
import type { Clock } from "../clock";
import type { RequesterIdentity as Identity } from "./types";
import { buildUserCertificate, userKeyContext, type UserCredential } from "../issuance/userCertificate";

/** Who caused an issuance, for its audit event. */
export interface IssuedBy {
  actor: string;
  ip?: string | null;
  clientId?: string | null;
}

export interface UserCredentialDeps {
  db: Db;
  ca: CertificateAuthority;
  config: Pick<Config, "kek" | "userCert" | "ca" | "proxy">;
  clock: Clock;
}

export class UserCredentials {
  /**
   * Opened user keys, by certificate id: opening a sealed key costs an AES-GCM
   * decryption and a PKCS#8 parse on every proxy otherwise. Entries are dropped
   * on revocation, and the database row (status, validity) is still read on
   * every issuance, so a revocation by another instance takes effect at once.
   */
  private readonly opened: Lru<UserCredential>;
  /** Issuances under way, by identity: concurrent callers for one person share one. */
  private readonly inFlight = new Map<string, Promise<UserCredential>>();

  constructor(private readonly deps: UserCredentialDeps, capacity = 4096) {
    this.opened = new Lru<UserCredential>(capacity);
  }

  /** Drop a credential from the cache (its certificate was revoked). */
  forget(certificateId: string): void {
    this.opened.delete(certificateId);
  }

  /**
   * The person's user credential, valid at least until `needUntil` (and for the
   * configured renewal margin); issues a new one when needed. `seen`: the person's newest valid
   * user certificate as just read with their token (Requester.userCertificateSeen), which answers
   * the same question as findCurrentUserCertificateId without another read; undefined: ask.
   */
  async ensure(identity: Identity, needUntil: Date, by: IssuedBy, seen?: { id: string; notAfter: Date } | null): Promise<UserCredential> {
    const { db, config, clock } = this.deps;
    const now = clock();
    const minNotAfter = new Date(Math.max(needUntil.getTime(), now.getTime() + config.userCert.renewBeforeSeconds * 1000));
    // The newest valid one lasts long enough, or none does.
    const currentId = seen !== undefined ? (seen && seen.notAfter.getTime() >= minNotAfter.getTime() ? seen.id : null) : await findCurrentUserCertificateId(db, identity.id, minNotAfter);
    const cached = currentId ? this.opened.get(currentId) : undefined;
    if (cached) return cached;
    const row = currentId ? await findUserCertificateWithKey(db, identity.id, minNotAfter) : null;
    if (row?.keyEnc) {
      const key = SoftwareKey.fromPkcs8(openSealedKey(config.kek, row.keyEnc, userKeyContext(row.id)), config.proxy.signOn);
      const cred = { id: row.id, parts: certificateParts(der.pemBlocks(row.pem)[0]!.der), pem: row.pem, key };
      this.opened.set(cred.id, cred);
      return cred;
    }
    const pending = this.inFlight.get(identity.id);
    if (pending) return pending;
    const p = this.issue(identity, by).finally(() => this.inFlight.delete(identity.id));
    this.inFlight.set(identity.id, p);
    return p;
  }

  private async issue(identity: Identity, by: IssuedBy): Promise<UserCredential> {
    const { config, ca, db } = this.deps;
    const now = this.deps.clock();
    const key = await SoftwareKey.generate(config.userCert.keyBits, config.proxy.signOn);
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
      db,
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
        keyEnc: sealKey(config.kek, key.exportPkcs8(), userKeyContext(id)),
        keySource: "ca",
        keyBits: key.bits,
      },
      { action: "certificate.issue", actor: by.actor, ip: by.ip ?? null, clientId: by.clientId ?? null, details: { kind: "user", serial: serialHex(parts.serial), subject: identity.subject, notAfter: parts.notAfter.toISOString() } },
    );
    const cred = { id, parts, pem, key };
    this.opened.set(cred.id, cred);
    return cred;
  }
}
