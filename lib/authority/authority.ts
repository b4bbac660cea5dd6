/**
 * The issuing authority (cf. smallstep authority.Authority): built once at
 * the composition root (lib/certbridge.ts) from its named dependencies. It
 * issues proxies for a requester that a provisioner has resolved and
 * authorized, revokes user certificates, returns the current CRL and
 * exports the trust directory. Every channel (/getproxy, the account page,
 * SSH, the operator CLI) issues through `issueProxy` here:
 *
 *   1. requester — resolved by the channel's provisioner (lib/authority/provisioners/)
 *   2. modifiers — defaults (lifetime)
 *   3. validators — the caller's public key (CSR proof of possession, RSA ≥ 2048)
 *   4. policy — one lifetime decision (portal max ∧ client max); extension hooks (VOMS) may refuse
 *   5. sign — with the person's user key, renewed when it would not cover the proxy
 *   6. store — certificate + audit event in one transaction
 * A refusal in steps 2-4 is audited and changes nothing else.
 */
import * as der from "../pki/der";
import { parseProxyPublicKey } from "../pki/publicKey";
import { buildProxyCertificate, PROXY_BACKDATE_SECONDS, randomProxySerial } from "../pki/proxy";
import { isUniqueViolation, markIdentitySeen, recordAudit, type Db, type IssuanceWriter, type KeySource } from "../db";
import { CertbridgeError, asCertbridgeError } from "../errors";
import type { CertificateAuthority } from "../ca/authority";
import type { Config } from "../config";
import type { Clock } from "../clock";
import type { KeyPool } from "../pki/keyPool";
import type { IdentityCache } from "../issuance/identity";
import { decideLifetime, lifetimeCap } from "../issuance/policy";
import { vomsExtension } from "../voms/proxyExtension";
import type { ServedVo } from "../voms/vos";
import { currentCrl, publishCrl, refreshCrlIfDue, revokeAndResign, type RevocationReason } from "../ca/revocation";
import { exportTrustDirectory, trustDirectoryContents } from "../ca/trustBundle";
import { UserCredentials } from "./userCredentials";
import { Lru } from "../lru";
import type { IssuedProxy, ProxyOrder, Provisioner, Requester } from "./types";
import { metrics } from "../metrics";

/** Prisma's errors, the pg driver's and better-sqlite3's: a failure of the database rather than of the signer. */
function isDatabaseError(e: unknown): boolean {
  const x = e as { name?: string; code?: unknown } | null;
  if (!x || typeof x !== "object") return false;
  return /Prisma|DatabaseError|SqliteError|DriverAdapterError/.test(x.name ?? "") || (typeof x.code === "string" && /^(P\d{4}|SQLITE_|57P|08)/.test(x.code));
}

export interface AuthorityDeps {
  db: Db;
  ca: CertificateAuthority;
  config: Config;
  clock: Clock;
  keyPool: KeyPool;
  issuances: IssuanceWriter;
  identities: IdentityCache;
  /** VOs served by the built-in attribute authority, by name. */
  vos: Map<string, ServedVo>;
}

/** A registered provisioner: authorize its input, then issue through the authority. */
export interface Channel<Input, R extends Requester = Requester> {
  readonly name: string;
  authorize(input: Input): Promise<R>;
  issueProxy(input: Input, order: ProxyOrder): Promise<IssuedProxy>;
}

const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
const ACTIVITY_INTERVAL_MS = 5 * 60_000;

export class Authority {
  readonly userCredentials: UserCredentials;
  private readonly channels = new Map<string, Channel<never, Requester>>();

  constructor(readonly deps: AuthorityDeps) {
    this.userCredentials = new UserCredentials(deps);
  }

  /** Add a way of asking (one provisioner file + this one line where the channel is wired). */
  register<Input, R extends Requester>(provisioner: Provisioner<Input, R>): Channel<Input, R> {
    if (this.channels.has(provisioner.name)) throw new Error(`a provisioner named ${provisioner.name} is already registered`);
    const channel: Channel<Input, R> = {
      name: provisioner.name,
      authorize: (input) => provisioner.authorize(input),
      issueProxy: async (input, order) => this.issueProxy(await provisioner.authorize(input), order),
    };
    this.channels.set(provisioner.name, channel as unknown as Channel<never, Requester>);
    return channel;
  }

  /** The registered channels' names. */
  get channelNames(): string[] {
    return [...this.channels.keys()];
  }

  /**
   * "Active people" in the admin overview count proxies on every channel, not only logins: the
   * person's last-seen time moves on, at most one write per person per interval and process, off
   * the response path (a failure here never fails an issuance).
   */
  private readonly lastMarked = new Lru<number>(10_000);
  private noteActivity(identityId: string): void {
    const now = this.deps.clock().getTime();
    if (now - (this.lastMarked.get(identityId) ?? 0) < ACTIVITY_INTERVAL_MS) return;
    this.lastMarked.set(identityId, now);
    void markIdentitySeen(this.deps.db, identityId, new Date(now), ACTIVITY_INTERVAL_MS).catch(() => {});
  }

  /** The longest proxy this requester's gateway may get (portal max ∧ client max). */
  maxLifetimeSeconds(clientMaxSeconds?: number): number {
    return lifetimeCap(this.deps.config.proxy.maxLifetimeSeconds, clientMaxSeconds);
  }

  /** The one issuance entry, measured (lib/metrics.ts): outcome by channel and client, latency, signer and database failures. */
  async issueProxy(requester: Requester, order: ProxyOrder): Promise<IssuedProxy> {
    const started = performance.now();
    const labels = { channel: requester.channel, client: requester.client?.id ?? "none" };
    const stage = { name: "" };
    try {
      const proxy = await this.issueProxyUnmeasured(requester, order, stage);
      metrics.issuance.inc({ ...labels, outcome: "issued" });
      return proxy;
    } catch (e) {
      const err = asCertbridgeError(e);
      if (err.status < 500) {
        metrics.issuance.inc({ ...labels, outcome: "refused" });
        metrics.refusals.inc({ channel: requester.channel, reason: err.code });
      } else {
        metrics.issuance.inc({ ...labels, outcome: "error" });
        if (stage.name === "store" || isDatabaseError(e)) metrics.databaseErrors.inc({ operation: stage.name === "store" ? "issuance_store" : "issuance_read" });
        else if (stage.name === "sign") metrics.signerErrors.inc({ operation: "proxy_sign" });
      }
      throw e;
    } finally {
      metrics.issuanceSeconds.observe({ channel: requester.channel }, (performance.now() - started) / 1000);
    }
  }

  private async issueProxyUnmeasured(requester: Requester, order: ProxyOrder, reached: { name: string }): Promise<IssuedProxy> {
    const { config, clock, keyPool, issuances, db } = this.deps;
    const { identity } = requester;
    const clientId = requester.client?.id ?? null;
    let stage = "public key";
    try {
      // 2-3. modifiers and validators: the public key is checked before any signing work
      const callerKey = order.publicKey === undefined ? undefined : parseProxyPublicKey(order.publicKey);
      // 4. policy
      stage = "policy";
      const now = clock();
      const lifetime = decideLifetime({
        requestedSeconds: order.lifetimeSeconds,
        defaultSeconds: config.proxy.defaultLifetimeSeconds,
        maxSeconds: config.proxy.maxLifetimeSeconds,
        clientMaxSeconds: requester.client?.maxLifetimeSeconds,
      });
      const extension = order.extension ?? (order.voms?.length ? vomsExtension(this.deps.vos, order.voms, clock, requester.allowedVos) : undefined);
      // DER times carry whole seconds; fix them now so what is stored is what was signed.
      const start = wholeSeconds(now.getTime());
      const notBefore = new Date(start.getTime() - PROXY_BACKDATE_SECONDS * 1000);
      extension?.authorize?.({ identity, claims: requester.claims });
      let notAfter = new Date(start.getTime() + lifetime.seconds * 1000);
      if (requester.notAfterCap && requester.notAfterCap < notAfter) notAfter = wholeSeconds(requester.notAfterCap.getTime()); // the consent ends first
      // 5. sign with the user key; a user certificate that would end first is renewed
      stage = "sign";
      reached.name = stage;
      const user = await this.userCredentials.ensure(identity, notAfter, { actor: requester.actor, ip: requester.ip, clientId }, requester.userCertificateSeen);
      if (user.parts.notAfter < notAfter) notAfter = user.parts.notAfter; // CA ends before the proxy would
      const serverKey = callerKey ? undefined : await keyPool.take();
      const spki = callerKey?.spki ?? serverKey!.spki;
      const keySource: KeySource = callerKey ? callerKey.form : "server";
      const keyBits = callerKey?.bits ?? 2048;

      for (let attempt = 0; ; attempt++) {
        const serial = randomProxySerial();
        const extraExtensions = extension ? await extension.extensions({ identity, claims: requester.claims, issuer: user.parts, serial, notBefore, notAfter }) : [];
        const certDer = await buildProxyCertificate({ issuer: user.parts, issuerKey: user.key, spki, notBefore, notAfter, serial, extraExtensions });
        const certPem = der.toPem("CERTIFICATE", certDer);
        const subject = `${identity.subject}/CN=${serial}`;
        // 6. store + audit, one transaction
        stage = "store";
        reached.name = stage;
        try {
          const certificateId = await issuances.store(
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
              clientId,
              ...(extension?.describe() ?? {}),
            },
            {
              action: "proxy.issue",
              actor: requester.actor,
              clientId,
              ip: requester.ip ?? null,
              details: {
                serial,
                subject,
                keySource,
                lifetimeSeconds: (notAfter.getTime() - start.getTime()) / 1000,
                requestedSeconds: order.lifetimeSeconds ?? null,
                clamped: lifetime.clamped,
                ...(extension?.describe() ?? {}),
                ...requester.auditDetails,
              },
            },
          );
          const pem = certPem + (serverKey ? serverKey.privateKeyPem : "") + user.pem;
          this.noteActivity(identity.id);
          return { certificateId, pem, subject, serial, notBefore, notAfter, lifetime, keySource, keyBits, extension, warnings: extension?.warnings?.() ?? [] };
        } catch (e) {
          // Proxy serials are 31-bit (Globus style): a repeat under the same user certificate is possible, so draw again.
          if (isUniqueViolation(e) && attempt < 3) continue;
          throw e;
        }
      }
    } catch (e) {
      const err = asCertbridgeError(e);
      if (err instanceof CertbridgeError && err.status < 500) {
        await recordAudit(db, {
          action: "proxy.refuse",
          actor: requester.actor,
          outcome: "refused",
          identityId: identity.id,
          clientId,
          ip: requester.ip ?? null,
          details: { stage, error: err.code, reason: err.message, ...requester.auditDetails },
        });
      }
      throw e;
    }
  }

  /** Revoke a user certificate; the stored CRL is re-signed at once (lib/ca/revocation.ts). */
  revoke(target: { id: string } | { serialHex: string }, reason: RevocationReason, audit: { actor: string; comment: string; ip?: string }) {
    return revokeAndResign(this.deps, target, reason, audit, (id) => this.userCredentials.forget(id));
  }

  /** The stored CRL (signed only if none exists yet). */
  currentCrl() {
    return currentCrl(this.deps);
  }

  /** Sign the next CRL now (the one writer, under the database lock). */
  publishCrl() {
    return publishCrl(this.deps);
  }

  /** The schedule's check: re-sign when due. */
  refreshCrlIfDue() {
    return refreshCrlIfDue(this.deps);
  }

  /** The trust directory (X509_CERT_DIR) with the current CRL. */
  exportTrustDirectory(directory: string) {
    return exportTrustDirectory(this.deps, directory);
  }

  /** The same files by name, for publishing them over HTTP. */
  trustDirectoryContents() {
    return trustDirectoryContents(this.deps);
  }
}
