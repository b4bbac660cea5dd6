/**
 * The composition root: config → database (migrated) → CA custody → key pool
 * → the issuing authority and its channels, built once per process and
 * passed down. The CLI and the server entry both
 * start here; nothing else opens the database or loads the CA.
 */
import fs from "node:fs";
import * as pkijs from "pkijs";
import { webcrypto } from "node:crypto";
import type { Config } from "./config";
import { systemClock, type Clock } from "./clock";
import { invalidConfig } from "./errors";
import { closeDatabase, dbKindOf, findFirstCaRecord, hasCaRecord, openDatabase, openMigratedDatabase, upsertCaRecord, IssuanceWriter, type Db } from "./db";
import { initCaFiles, loadCaFiles, settleHalfMadeCa, type CertificateAuthority } from "./ca/authority";
import { KeyPool } from "./pki/keyPool";
import { IdentityCache } from "./issuance/identity";
import { Authority, type Channel } from "./authority/authority";
import { operatorClaims, type OperatorClaimsInput } from "./authority/provisioners/operatorClaims";
import { consoleSession, type ConsoleSessionInput } from "./authority/provisioners/consoleSession";
import { sshKey, type SshKeyInput } from "./authority/provisioners/sshKey";
import { protectStoredArtefacts } from "./oidc/adapter";
import { loadVoConfig, openAttributeAuthorities, type ServedVo } from "./voms/vos";

// pkijs runs on Node's WebCrypto (used when it verifies signatures it parsed).
pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto as unknown as Crypto }));

export interface Certbridge {
  config: Config;
  db: Db;
  ca: CertificateAuthority;
  keyPool: KeyPool;
  clock: Clock;
  identities: IdentityCache;
  issuances: IssuanceWriter;
  /** VOs served by the built-in attribute authority, by name. */
  vos: Map<string, ServedVo>;
  /** The issuing authority: proxies, revocation, the CRL, the trust directory. */
  authority: Authority;
  /** The ways of asking for a proxy that need only the core (the gateway-token channel is the portal's). */
  channels: {
    operatorClaims: Channel<OperatorClaimsInput>;
    consoleSession: Channel<ConsoleSessionInput>;
    sshKey: Channel<SshKeyInput>;
  };
  close(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  /**
   * Fill the server-key pool in the background (one-shot CLI commands don't; the server starts it
   * itself once it knows its leadership). Every process takes from the pool either way.
   */
  keyPool?: boolean;
  /** Create the CA when none exists (first start). */
  createCa?: boolean;
  log?: (msg: string) => void;
}

/**
 * Open or create the CA files according to configuration. `caInUse` (whether the database has
 * registered a CA) lets a half-made CA from an interrupted first start be set aside and made anew;
 * without it a half-made CA is reported with the fix (lib/ca/authority.ts settleHalfMadeCa).
 */
export async function openCa(config: Config, clock: Clock, create: boolean, log: (m: string) => void, caInUse: (() => Promise<boolean>) | null = null) {
  const files = { certFile: config.ca.certFile, keyFile: config.ca.keyFile, keyPassphrase: config.ca.keyPassphrase, pkcs11: config.pkcs11 };
  if (!config.ca.external && create) for (const note of await settleHalfMadeCa(files, caInUse, clock())) log(note);
  if (!config.ca.external && create && !fs.existsSync(files.certFile) && !fs.existsSync(files.keyFile)) {
    const ca = await initCaFiles(files, { subject: config.ca.subject, keyBits: config.ca.keyBits, lifetimeSeconds: config.ca.lifetimeSeconds }, clock);
    log(`created a new CA "${ca.subject}" in ${files.certFile}`);
    return { ca, created: true };
  }
  return { ca: loadCaFiles(files), created: false };
}

export async function startCertbridge(config: Config, opts: StartOptions = {}): Promise<Certbridge> {
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? ((m: string) => console.error(`certbridge: ${m}`));
  const { db, applied } = await openMigratedDatabase(config.databaseUrl, (url) => openDatabase(url, { checkpointThread: true }));
  try {
    if (applied.length) log(`applied database migrations: ${applied.join(", ")}`);
    // Another instance of this deployment already set the database up with its CA: a new one here
    // would sign certificates nobody else's CRL or trust bundle knows. Say what to share instead.
    const known = await findFirstCaRecord(db);
    if (known && !config.ca.external && !fs.existsSync(config.ca.certFile) && !fs.existsSync(config.ca.keyFile)) {
      throw invalidConfig(
        `this database already serves the CA "${known.subject}" (SHA-256 ${known.id}), whose certificate is not at ${config.ca.certFile}: ` +
          "give every instance the same CA (copy the first instance's ca/ directory, or set CERTBRIDGE_CA_CERT_FILE and CERTBRIDGE_CA_KEY_FILE)",
      );
    }
    // Data migration (issue 12): bearer artefacts stored in clear by earlier releases get hashed ids and sealed payloads.
    if (opts.createCa ?? true) {
      const rewritten = await protectStoredArtefacts(db, config.kek);
      if (rewritten) log(`stored tokens, codes and sessions now kept by keyed hash: ${rewritten} rows rewritten`);
    }
    const { ca, created } = await openCa(config, clock, opts.createCa ?? true, log, () => hasCaRecord(db));
    await upsertCaRecord(
      db,
      { fingerprint: ca.fingerprint, subject: ca.subject, certPem: ca.certPem, notAfter: ca.parts.notAfter },
      { action: created ? "ca.create" : "ca.register", actor: "system", details: { subject: ca.subject, fingerprint: ca.fingerprint } },
    );
    const vos = await openAttributeAuthorities({
      vos: loadVoConfig(config.voms.vosFile),
      ca,
      dataDir: config.dataDir,
      passphrase: config.ca.keyPassphrase,
      aaBase: config.voms.aaSubjectBase,
      clock,
      create: opts.createCa ?? true,
      pkcs11: config.pkcs11,
      log,
    });
    // The pool is in the database: every process takes from it, the ones asked to (the server) fill it.
    // SQLite has no leadership (every worker leads, lib/db/leadership.ts), so each of the workers
    // filling gets its part of the CPU share and together they stay within it.
    const fillers = dbKindOf(config.databaseUrl) === "sqlite" ? config.portal.workers : 1;
    const keyPool = new KeyPool({ db, kek: config.kek, capacity: config.proxy.keyPoolSize, cpuShare: config.proxy.keyPoolCpu / fillers, log });
    if (opts.keyPool) keyPool.start();
    const identities = new IdentityCache();
    const issuances = new IssuanceWriter(db);
    const authority = new Authority({ db, ca, config, clock, keyPool, issuances, identities, vos });
    // One line per channel (lib/authority/provisioners/); the gateway-token one is registered by the portal (it needs the OpenID provider).
    const channels = {
      operatorClaims: authority.register(operatorClaims({ db, clock, config, identities })),
      consoleSession: authority.register(consoleSession),
      sshKey: authority.register(sshKey({ db })),
    };
    return {
      config,
      db,
      ca,
      keyPool,
      clock,
      identities,
      issuances,
      vos,
      authority,
      channels,
      async close() {
        await keyPool.stop();
        await closeDatabase(db);
      },
    };
  } catch (e) {
    await closeDatabase(db);
    throw e;
  }
}
