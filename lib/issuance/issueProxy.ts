/**
 * Proxy issuance as an ordered pipeline of small typed steps (cf. smallstep
 * authority/tls.go):
 *   1. template   — the person and their subject, from verified claims only
 *   2. modifiers  — defaults (lifetime)
 *   3. validators — the caller's public key (CSR proof of possession, RSA ≥ 2048)
 *   4. policy     — lifetime caps; extension hooks (VOMS membership) may refuse
 *   5. sign       — with the person's user key, renewed when it would not cover the proxy
 *   6. store      — certificate + audit event in one transaction
 * A refusal in steps 1-4 is audited and changes nothing else.
 */
import * as der from "../pki/der";
import { parseProxyPublicKey } from "../pki/publicKey";
import { buildProxyCertificate, PROXY_BACKDATE_SECONDS, randomProxySerial } from "../pki/proxy";
import type { Extension, CertificateParts } from "../pki/x509";
import { isUniqueViolation, recordAudit, type KeySource } from "../db";
import { CertbridgeError, asCertbridgeError } from "../errors";
import type { VerifiedClaims } from "../identity/subject";
import type { Certbridge } from "../certbridge";
import { ensureIdentity, type Identity } from "./identity";
import { ensureUserCredential } from "./userCertificate";
import { decideLifetime, type LifetimeDecision } from "./policy";

/** A hook that adds extensions to a proxy (VOMS ACs) and may refuse the request. */
export interface ProxyExtensionHook {
  /** Policy step: may refuse (throw a CertbridgeError) before anything is signed. */
  authorize?(ctx: { identity: Identity; claims: VerifiedClaims }): void;
  /** Recorded with the certificate, e.g. the VO. */
  describe(): { vo?: string; fqans?: string[] };
  extensions(ctx: { identity: Identity; claims: VerifiedClaims; issuer: CertificateParts; serial: number; notBefore: Date; notAfter: Date }): Promise<Extension[]>;
}

export interface ProxyIssuanceRequest {
  /** Claims of a verified identity (an ID token or userinfo the caller has validated). */
  claims: VerifiedClaims;
  /** PKCS#10 CSR or SPKI (PEM, base64 DER or DER). Absent: the server makes the key. */
  publicKey?: string | Uint8Array;
  /** Requested lifetime in seconds; absent: the configured default. */
  lifetimeSeconds?: number;
  /** The gateway's id and its own cap, when issued through a client. */
  client?: { id: string; maxLifetimeSeconds?: number };
  extension?: ProxyExtensionHook;
  /** Who asked, for the audit trail ("cli:root", "client:<id>", "user:<id>"). */
  actor: string;
  ip?: string;
  /** More for the audit record, e.g. the channel and the SSH key's fingerprint. */
  auditDetails?: Record<string, unknown>;
}

export interface IssuedProxy {
  certificateId: string;
  /** The X509_USER_PROXY file: proxy cert, proxy key (server keys only), user cert. */
  pem: string;
  subject: string;
  serial: number;
  notBefore: Date;
  notAfter: Date;
  lifetime: LifetimeDecision;
  keySource: KeySource;
  keyBits: number;
}

const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

export async function issueProxy(cb: Certbridge, req: ProxyIssuanceRequest): Promise<IssuedProxy> {
  let identity: Identity | undefined;
  let stage = "identity";
  try {
    // 1. template from the verified identity
    identity = await ensureIdentity(
      { db: cb.db, clock: cb.clock, policy: cb.config.subject, identities: cb.identities },
      req.claims,
      req.actor,
    );
    // 2-3. modifiers and validators: the public key is checked before any signing work
    stage = "public key";
    const callerKey = req.publicKey === undefined ? undefined : parseProxyPublicKey(req.publicKey);
    // 4. policy
    stage = "policy";
    const now = cb.clock();
    const lifetime = decideLifetime({
      requestedSeconds: req.lifetimeSeconds,
      defaultSeconds: cb.config.proxy.defaultLifetimeSeconds,
      maxSeconds: cb.config.proxy.maxLifetimeSeconds,
      clientMaxSeconds: req.client?.maxLifetimeSeconds,
    });
    // DER times carry whole seconds; fix them now so what is stored is what was signed.
    const start = wholeSeconds(now.getTime());
    const notBefore = new Date(start.getTime() - PROXY_BACKDATE_SECONDS * 1000);
    req.extension?.authorize?.({ identity, claims: req.claims });
    let notAfter = new Date(start.getTime() + lifetime.seconds * 1000);
    // 5. sign with the user key; a user certificate that would end first is renewed
    stage = "sign";
    const user = await ensureUserCredential(cb, identity, notAfter, { actor: req.actor, ip: req.ip, clientId: req.client?.id });
    if (user.parts.notAfter < notAfter) notAfter = user.parts.notAfter; // CA ends before the proxy would
    const serverKey = callerKey ? undefined : await cb.keyPool.take();
    const spki = callerKey?.spki ?? serverKey!.spki;
    const keySource: KeySource = callerKey ? callerKey.form : "server";
    const keyBits = callerKey?.bits ?? 2048;

    for (let attempt = 0; ; attempt++) {
      const serial = randomProxySerial();
      const extraExtensions = req.extension
        ? await req.extension.extensions({ identity, claims: req.claims, issuer: user.parts, serial, notBefore, notAfter })
        : [];
      const certDer = await buildProxyCertificate({ issuer: user.parts, issuerKey: user.key, spki, notBefore, notAfter, serial, extraExtensions });
      const certPem = der.toPem("CERTIFICATE", certDer);
      const subject = `${identity.subject}/CN=${serial}`;
      // 6. store + audit, one transaction
      stage = "store";
      try {
        const certificateId = await cb.issuances.store(
          {
            kind: "proxy",
            serialHex: serial.toString(16),
            serialDec: String(serial),
            subject,
            issuer: identity.subject,
            identityId: identity.id,
            parentId: user.id,
            notBefore,
            notAfter,
            pem: certPem,
            keySource,
            keyBits,
            clientId: req.client?.id ?? null,
            ...(req.extension?.describe() ?? {}),
          },
          {
            action: "proxy.issue",
            actor: req.actor,
            clientId: req.client?.id ?? null,
            ip: req.ip ?? null,
            details: {
              serial,
              subject,
              keySource,
              lifetimeSeconds: (notAfter.getTime() - start.getTime()) / 1000,
              requestedSeconds: req.lifetimeSeconds ?? null,
              clamped: lifetime.clamped,
              ...(req.extension?.describe() ?? {}),
              ...req.auditDetails,
            },
          },
        );
        const pem = certPem + (serverKey ? serverKey.privateKeyPem : "") + user.pem;
        return { certificateId, pem, subject, serial, notBefore, notAfter, lifetime, keySource, keyBits };
      } catch (e) {
        // Proxy serials are 31-bit (Globus style): a repeat under the same user certificate is possible, so draw again.
        if (isUniqueViolation(e) && attempt < 3) continue;
        throw e;
      }
    }
  } catch (e) {
    const err = asCertbridgeError(e);
    if (err instanceof CertbridgeError && err.status < 500) {
      await recordAudit(cb.db, {
        action: "proxy.refuse",
        actor: req.actor,
        outcome: "refused",
        identityId: identity?.id ?? null,
        clientId: req.client?.id ?? null,
        ip: req.ip ?? null,
        details: { stage, error: err.code, reason: err.message, ...req.auditDetails },
      });
    }
    throw e;
  }
}
