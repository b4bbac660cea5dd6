/**
 * Configuration: the only module that reads process.env. It is validated once,
 * at boot, into a typed object that the composition root passes down.
 * Development defaults let `npm start` work on a fresh machine; each one warns,
 * and with NODE_ENV=production each one is refused (cf. oidc-provider's
 * "mustChange" pattern).
 */
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { invalidConfig } from "./errors";
import { parseDuration } from "./duration";
import { parseSlashDn } from "./pki/dn";
import type { SigningThread } from "./pki/custody";
import { MIN_PROXY_SECONDS } from "./limits";
import { setsHeapCeiling } from "./nodeFlags";
import type { UpstreamTuning } from "./upstream";
import { operationsConfig, operationsEnv, type OperationsConfig } from "./limits/settings";

/** Dev-only secrets: harmless on a laptop, fatal in production. */
export const DEV_CA_PASSPHRASE = "certbridge-dev-ca-passphrase-change-me";
export const DEV_KEK = Buffer.alloc(32, 0x42).toString("base64");
export const DEV_COOKIE_KEYS = "certbridge-dev-cookie-key-change-me";

/** The issue's path already names the variable: the message says only what is wrong. */
const duration = () =>
  z.string().transform((s, ctx) => {
    try {
      return parseDuration(s);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  });

/** A duration that may be "0" (a feature switched off). */
const durationOrZero = () => z.union([z.literal("0").transform(() => 0), duration()]);

const dn = z.string().refine((s) => {
  try {
    parseSlashDn(s);
    return true;
  } catch {
    return false;
  }
}, "must be a DN in slash form, e.g. /DC=org/DC=example/CN=Name");

/** Comma- or whitespace-separated values. */
const list = z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean));

const oid = z.string().regex(/^[0-2](\.(0|[1-9][0-9]*))+$/, "must be a dotted OID");


const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  CERTBRIDGE_DATA_DIR: z.string().min(1).default("./data"),
  DATABASE_URL: z
    .string()
    .regex(/^(file:|postgres(ql)?:\/\/)/, "must start with file: (SQLite) or postgresql:// (PostgreSQL)")
    .optional(),
  // Unset: http://localhost:<CERTBRIDGE_PORT>, so changing the port alone gives a working portal.
  CERTBRIDGE_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  CERTBRIDGE_CA_SUBJECT: dn.default("/DC=org/DC=certbridge/CN=Certbridge Online CA"),
  CERTBRIDGE_CA_CERT_FILE: z.string().min(1).optional(),
  CERTBRIDGE_CA_KEY_FILE: z.string().min(1).optional(),
  CERTBRIDGE_CA_KEY_PASSPHRASE: z.string().min(12, "must be at least 12 characters").optional(),
  CERTBRIDGE_CA_KEY_BITS: z.coerce.number().int().refine((n) => [3072, 4096].includes(n), "must be 3072 or 4096").default(3072),
  CERTBRIDGE_CA_LIFETIME: duration().prefault("3650d"),
  CERTBRIDGE_CA_EMAIL: z.email().optional(),
  CERTBRIDGE_PKCS11_MODULE: z.string().min(1).optional(),
  CERTBRIDGE_PKCS11_PIN: z.string().min(1).optional(),
  CERTBRIDGE_PKCS11_PIN_FILE: z.string().min(1).optional(),
  CERTBRIDGE_KEK: z
    .string()
    .refine((s) => Buffer.from(s, "base64").length === 32, "must be 32 bytes, base64-encoded (openssl rand -base64 32)")
    .optional(),
  CERTBRIDGE_SUBJECT_BASE: dn.default("/DC=org/DC=certbridge/DC=users"),
  CERTBRIDGE_IDP_NAME: z.string().min(1).default("Certbridge Users"),
  CERTBRIDGE_CERT_POLICY_OID: oid.default("2.25.141105318398215245305837624359461290813"),
  CERTBRIDGE_USER_KEY_BITS: z.coerce.number().int().refine((n) => [2048, 3072, 4096].includes(n), "must be 2048, 3072 or 4096").default(2048),
  CERTBRIDGE_USER_CERT_LIFETIME: duration().prefault("11d"),
  CERTBRIDGE_USER_CERT_RENEW_BEFORE: duration().prefault("1d"),
  CERTBRIDGE_PROXY_DEFAULT_LIFETIME: duration().prefault("12h"),
  CERTBRIDGE_PROXY_MAX_LIFETIME: duration().prefault("10d"),
  CERTBRIDGE_CRL_LIFETIME: duration().prefault("7d"),
  // Server-made proxy keys kept ready in the database (lib/pki/keyPool.ts): ~2.5 KB a row, filled while the machine is idle.
  CERTBRIDGE_KEY_POOL_SIZE: z.coerce.number().int().min(0).max(100_000).default(1000),
  // The share of one core the filling may use on average (it also waits for the machine to be idle).
  CERTBRIDGE_KEY_POOL_CPU: z.coerce.number().gt(0, "must be above 0").max(1, "must be at most 1 (one core)").default(0.5),
  CERTBRIDGE_ALLOW_DEV_SECRETS: z.enum(["0", "1"]).default("0"),
  CERTBRIDGE_PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  CERTBRIDGE_LISTEN_HOST: z.string().min(1).default("localhost"),
  CERTBRIDGE_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  // A worker's V8 old-space ceiling (MB): without one V8 lets the heap of a busy worker grow to
  // several hundred MB of garbage (bench/throughput.ts memory run). 0: V8's own sizing.
  CERTBRIDGE_WORKER_HEAP_MB: z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 128 && v <= 65_536), "must be 0 (V8's own sizing) or 128 to 65536")
    .default(256),
  // Read only to see whether the operator already set a heap size there (it then wins).
  NODE_OPTIONS: z.string().optional(),
  // SIGTERM: how long requests in flight may take to finish before their connections are closed.
  CERTBRIDGE_SHUTDOWN_GRACE: duration().prefault("20s"),
  CERTBRIDGE_COOKIE_KEYS: z.string().min(1).optional(),
  CERTBRIDGE_ACCESS_TOKEN_TTL: duration().prefault("1h"),
  CERTBRIDGE_REFRESH_TOKEN_TTL: duration().prefault("30d"),
  // WLCG Common JWT Profile §3.3: a rotated refresh token stays usable for a while (lost responses, parallel workers).
  CERTBRIDGE_REFRESH_TOKEN_GRACE: durationOrZero().prefault("1d"),
  // RFC 7591 dynamic client registration (oidc-gen): off unless the operator switches it on.
  CERTBRIDGE_DYNAMIC_REGISTRATION: z.enum(["0", "1"]).default("0"),
  CERTBRIDGE_REGISTRATION_SCOPES: z
    .string()
    .min(1)
    .default("openid profile offline_access")
    .refine((s) => s.split(/\s+/).filter(Boolean).every((w) => /^[A-Za-z0-9._:-]+$/.test(w)), "scopes are words of A-Z a-z 0-9 . _ : -"),
  CERTBRIDGE_REGISTRATION_MAX_CLIENTS: z.coerce.number().int().min(1).max(100000).default(500),
  // WLCG token signing keys: a new one every period, published a period ahead, kept a period after.
  CERTBRIDGE_TOKEN_KEY_ROTATION: duration()
    .prefault("180d")
    .refine((s) => s >= 7 * 86400, "CERTBRIDGE_TOKEN_KEY_ROTATION must be at least 7d (relying parties cache keys for up to 2 days)"),
  CERTBRIDGE_CONSENT_TTL: duration().prefault("90d"),
  CERTBRIDGE_UPSTREAM_ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  CERTBRIDGE_UPSTREAM_CLIENT_ID: z.string().min(1).optional(),
  CERTBRIDGE_UPSTREAM_CLIENT_SECRET: z.string().min(1).optional(),
  CERTBRIDGE_UPSTREAM_SCOPES: z.string().min(1).default("openid profile email eduperson_entitlement eduperson_unique_id voperson_id"),
  CERTBRIDGE_UPSTREAM_TOKEN_AUTH: z.enum(["client_secret_basic", "client_secret_post", "private_key_jwt"]).default("client_secret_basic"),
  CERTBRIDGE_UPSTREAM_BASIC_ENCODING: z.enum(["form", "raw"]).default("form"),
  CERTBRIDGE_UPSTREAM_PRIVATE_KEY_FILE: z.string().min(1).optional(),
  CERTBRIDGE_UPSTREAM_CLOCK_TOLERANCE: z.coerce.number().int().min(0).max(600).default(30),
  CERTBRIDGE_UPSTREAM_MAX_AGE: duration().optional(),
  CERTBRIDGE_UPSTREAM_METADATA_TTL: duration().prefault("1h"),
  CERTBRIDGE_UPSTREAM_PROBE_INTERVAL: z.coerce.number().int().min(0).max(86400).default(30),
  CERTBRIDGE_UPSTREAM_TIMEOUT: z.coerce.number().int().min(1).max(120).default(10),
  CERTBRIDGE_UPSTREAM_RETRIES: z.coerce.number().int().min(0).max(5).default(2),
  CERTBRIDGE_DEV_USERS_FILE: z.string().min(1).default("examples/dev-users.json"),
  CERTBRIDGE_ALLOW_DEV_IDP: z.enum(["0", "1"]).default("0"),
  CERTBRIDGE_CLIENTS_FILE: z.string().min(1).optional(),
  CERTBRIDGE_VOS_FILE: z.string().min(1).optional(),
  CERTBRIDGE_AA_SUBJECT_BASE: dn.default("/DC=org/DC=certbridge/OU=VOMS"),
  CERTBRIDGE_ADMIN_SUBS: list.optional(),
  CERTBRIDGE_ADMIN_ENTITLEMENTS: list.optional(),
  CERTBRIDGE_SESSION_TTL: duration().prefault("8h"),
  CERTBRIDGE_SSH_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  CERTBRIDGE_SSH_LISTEN_HOST: z.string().min(1).optional(),
  CERTBRIDGE_SSH_HOST_KEY_FILE: z.string().min(1).optional(),
  CERTBRIDGE_MYPROXY_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  CERTBRIDGE_MYPROXY_LISTEN_HOST: z.string().min(1).optional(),
  CERTBRIDGE_MYPROXY_HOST_CERT_FILE: z.string().min(1).optional(),
  CERTBRIDGE_MYPROXY_HOST_KEY_FILE: z.string().min(1).optional(),
  // Limits, client addresses behind proxies, metrics, request logs (lib/limits/settings.ts).
  ...operationsEnv,
});

/** A key location: a URI with a scheme (pkcs11:…, file:…) as given, a plain path made absolute. */
function keyUri(value: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(value);
  return m && m[1]!.length > 1 ? value : path.resolve(value);
}

export interface Config {
  env: "development" | "production" | "test";
  dataDir: string;
  databaseUrl: string;
  publicUrl: string;
  ca: {
    subject: string;
    certFile: string;
    keyFile: string;
    /** true when the operator supplied the files (never generated over them) */
    external: boolean;
    keyPassphrase: string;
    keyBits: number;
    lifetimeSeconds: number;
    crlLifetimeSeconds: number;
    crlUrl: string;
    /** The CA's contact address, written as `email` in the trust directory's `<hash>.info`. */
    email: string;
  };
  /** PKCS#11 module and user PIN for `pkcs11:` key URIs (lib/kms/pkcs11.ts); the URI's module-path / pin-source win. */
  pkcs11: { module?: string; pin?: string; pinFile?: string };
  kek: Buffer;
  subject: { base: string; defaultOrganisation: string };
  userCert: { keyBits: number; lifetimeSeconds: number; renewBeforeSeconds: number; policyOid: string };
  /**
   * keyPoolCpu: the share of one core the key pool's filling may use, 0 < share ≤ 1. signOn: where
   * user keys sign proxies (lib/pki/custody.ts), from the workers and the cores (proxySigningThread).
   */
  proxy: { defaultLifetimeSeconds: number; maxLifetimeSeconds: number; keyPoolSize: number; keyPoolCpu: number; signOn: SigningThread };
  portal: {
    port: number;
    listenHost: string;
    /** Server processes sharing the port (node:cluster); each runs its own event loop. */
    workers: number;
    /** --max-old-space-size of each worker (MB); 0: none given (V8's sizing, or the operator's NODE_OPTIONS). */
    workerHeapMb: number;
    /** SIGTERM/SIGINT: the longest wait for requests in flight (lib/shutdown.ts). */
    shutdownGraceSeconds: number;
    /** The OIDC issuer gateways see (discovery at /.well-known/openid-configuration); endpoints live under /oidc/ */
    issuer: string;
    cookieKeys: string[];
    accessTokenTtlSeconds: number;
    refreshTokenTtlSeconds: number;
    /** How long a rotated refresh token may still be used (0: reuse revokes the grant at once). */
    refreshTokenGraceSeconds: number;
    /** Rotation period of the WLCG access token signing keys (lib/oidc/tokenKeys.ts). */
    tokenKeyRotationSeconds: number;
    consentTtlSeconds: number;
    /** Registered at every start (create or update): the operator's declarative client list. */
    clientsFile: string | null;
  };
  /** The upstream OP (EGI Check-in in production); null runs the embedded development IdP. clientSecret is null with private_key_jwt. */
  upstream: { issuer: string; clientId: string; clientSecret: string | null; scopes: string } | null;
  /** How the portal talks to the upstream OP (lib/upstream.ts). */
  upstreamTuning: UpstreamTuning;
  devIdp: { usersFile: string; issuer: string } | null;
  /** RFC 7591 dynamic client registration (lib/oidc/registration.ts); null: off. */
  registration: { scopes: string[]; maxClients: number } | null;
  console: {
    /** Upstream `sub` values of administrators. */
    adminSubs: string[];
    /** Entitlements (eduperson_entitlement values) that make their holder an administrator. */
    adminEntitlements: string[];
    /** Lifetime of a browser session on the account and admin pages. */
    sessionTtlSeconds: number;
  };
  /** `ssh proxy@portal`: null when off. */
  ssh: { port: number; listenHost: string; hostKeyFile: string } | null;
  /**
   * The MyProxy-protocol listener (myproxy-logon): null when off (off unless CERTBRIDGE_MYPROXY_PORT is set).
   * Host certificate: the operator's files, or (null) one the portal's CA issues at start for the public host name.
   */
  myproxy: { port: number; listenHost: string; hostName: string; hostCertFile: string | null; hostKeyFile: string | null } | null;
  /** Rate limits, trusted proxies, SSH connection limits, metrics listener, request log (lib/limits/settings.ts). */
  operations: OperationsConfig;
  voms: {
    /** JSON list of VOs (see lib/voms/vos.ts); null: no VOMS attributes. */
    vosFile: string | null;
    /** DN prefix of the built-in attribute authorities' certificates. */
    aaSubjectBase: string;
  };
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Where proxies are signed (lib/pki/custody.ts): on each worker's event loop when every core has a
 * worker already — the thread pool would add a hand-off per signature and no parallelism — else in
 * the thread pool, so fewer processes than cores still sign on every core.
 */
export function proxySigningThread(workers: number, cores: number): SigningThread {
  return workers >= cores ? "event-loop" : "thread-pool";
}

/**
 * The port a loopback public URL points at when it is not the listen port, else null. Behind a
 * reverse proxy the public URL names another host, and any port is fine.
 */
export function localPortMismatch(publicUrl: string, listenPort: number): number | null {
  const u = new URL(publicUrl);
  if (!LOOPBACK_HOSTS.has(u.hostname)) return null;
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return port === listenPort ? null : port;
}

/**
 * Validate an environment (process.env by default) into a Config. Every
 * problem is reported at once, each naming its variable.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  warn: (msg: string) => void = (m) => console.warn(`certbridge: warning: ${m}`),
): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".") || "environment"}: ${i.message}`);
    throw invalidConfig(`invalid configuration: ${lines.join("; ")}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === "production";
  const allowDev = e.CERTBRIDGE_ALLOW_DEV_SECRETS === "1";
  const problems: string[] = [];
  const warnings: string[] = [];
  /** Development defaults in use: reported together, on one line. */
  const devDefaults: string[] = [];
  let devAdmin = false;

  /**
   * A secret with a published development value: the default when unset (refused in production),
   * and refused in production when set explicitly to that same public value (or, for a list, when
   * any entry is it) — an operator who copied the development value has no secret at all.
   */
  function devDefault(name: string, value: string | undefined, fallback: string, isPublic: (v: string) => boolean = (v) => v === fallback): string {
    if (value !== undefined) {
      if (production && !allowDev && isPublic(value)) problems.push(`${name} is the published development value: set a secret of your own when NODE_ENV=production`);
      else if (isPublic(value)) devDefaults.push(name);
      return value;
    }
    if (production && !allowDev) problems.push(`${name} must be set when NODE_ENV=production (the development default is public)`);
    else devDefaults.push(name);
    return fallback;
  }

  if (e.CERTBRIDGE_PKCS11_PIN !== undefined && e.CERTBRIDGE_PKCS11_PIN_FILE !== undefined) {
    problems.push("CERTBRIDGE_PKCS11_PIN and CERTBRIDGE_PKCS11_PIN_FILE are alternatives: set one");
  }
  if ((e.CERTBRIDGE_CA_CERT_FILE === undefined) !== (e.CERTBRIDGE_CA_KEY_FILE === undefined)) {
    problems.push("CERTBRIDGE_CA_CERT_FILE and CERTBRIDGE_CA_KEY_FILE must be given together");
  }
  if ((e.CERTBRIDGE_MYPROXY_HOST_CERT_FILE === undefined) !== (e.CERTBRIDGE_MYPROXY_HOST_KEY_FILE === undefined)) {
    problems.push("CERTBRIDGE_MYPROXY_HOST_CERT_FILE and CERTBRIDGE_MYPROXY_HOST_KEY_FILE must be given together");
  }
  for (const name of ["CERTBRIDGE_PROXY_DEFAULT_LIFETIME", "CERTBRIDGE_PROXY_MAX_LIFETIME"] as const) {
    if (e[name] < MIN_PROXY_SECONDS) problems.push(`${name} must be at least ${MIN_PROXY_SECONDS} seconds`);
  }
  if (e.CERTBRIDGE_PROXY_DEFAULT_LIFETIME > e.CERTBRIDGE_PROXY_MAX_LIFETIME) {
    problems.push("CERTBRIDGE_PROXY_DEFAULT_LIFETIME exceeds CERTBRIDGE_PROXY_MAX_LIFETIME");
  }
  if (e.CERTBRIDGE_USER_CERT_RENEW_BEFORE >= e.CERTBRIDGE_USER_CERT_LIFETIME) {
    problems.push("CERTBRIDGE_USER_CERT_RENEW_BEFORE must be shorter than CERTBRIDGE_USER_CERT_LIFETIME");
  }

  const caPassphrase =
    e.CERTBRIDGE_CA_CERT_FILE !== undefined && e.CERTBRIDGE_CA_KEY_PASSPHRASE === undefined
      ? "" // an operator's own unencrypted key needs none; a generated one always gets one
      : devDefault("CERTBRIDGE_CA_KEY_PASSPHRASE", e.CERTBRIDGE_CA_KEY_PASSPHRASE, DEV_CA_PASSPHRASE);
  // The KEK is compared as bytes (the same 32 bytes in another base64 spelling are still the public value).
  const kek = devDefault("CERTBRIDGE_KEK", e.CERTBRIDGE_KEK, DEV_KEK, (v) => Buffer.from(v, "base64").equals(Buffer.from(DEV_KEK, "base64")));
  const cookieKeys = devDefault("CERTBRIDGE_COOKIE_KEYS", e.CERTBRIDGE_COOKIE_KEYS, DEV_COOKIE_KEYS, (v) => v.split(",").some((k) => k.trim() === DEV_COOKIE_KEYS));
  const keyAuth = e.CERTBRIDGE_UPSTREAM_TOKEN_AUTH === "private_key_jwt";
  // With private_key_jwt the portal proves itself with its key: no client secret.
  const upstreamParts = [e.CERTBRIDGE_UPSTREAM_ISSUER, e.CERTBRIDGE_UPSTREAM_CLIENT_ID, ...(keyAuth ? [] : [e.CERTBRIDGE_UPSTREAM_CLIENT_SECRET])];
  if (upstreamParts.some((v) => v !== undefined) && !upstreamParts.every((v) => v !== undefined)) {
    problems.push(
      keyAuth
        ? "CERTBRIDGE_UPSTREAM_ISSUER and CERTBRIDGE_UPSTREAM_CLIENT_ID must be given together"
        : "CERTBRIDGE_UPSTREAM_ISSUER, CERTBRIDGE_UPSTREAM_CLIENT_ID and CERTBRIDGE_UPSTREAM_CLIENT_SECRET must be given together",
    );
  }
  if (keyAuth && e.CERTBRIDGE_UPSTREAM_CLIENT_SECRET !== undefined) {
    warnings.push("CERTBRIDGE_UPSTREAM_CLIENT_SECRET is ignored: CERTBRIDGE_UPSTREAM_TOKEN_AUTH=private_key_jwt authenticates with the portal's key");
  }
  const devIdp = e.CERTBRIDGE_UPSTREAM_ISSUER === undefined;
  if (devIdp && production && e.CERTBRIDGE_ALLOW_DEV_IDP !== "1") {
    problems.push("CERTBRIDGE_UPSTREAM_ISSUER must be set when NODE_ENV=production: the embedded development IdP logs anyone in (CERTBRIDGE_ALLOW_DEV_IDP=1 overrides, for demos only)");
  }
  if (!e.CERTBRIDGE_UPSTREAM_SCOPES.split(/\s+/).includes("openid")) problems.push("CERTBRIDGE_UPSTREAM_SCOPES must include openid");
  let adminSubs = e.CERTBRIDGE_ADMIN_SUBS ?? [];
  const adminEntitlements = e.CERTBRIDGE_ADMIN_ENTITLEMENTS ?? [];
  if (!adminSubs.length && !adminEntitlements.length) {
    if (devIdp && !production) {
      adminSubs = ["alice"];
      devAdmin = true;
    } else {
      warnings.push("neither CERTBRIDGE_ADMIN_SUBS nor CERTBRIDGE_ADMIN_ENTITLEMENTS is set: nobody can use the admin console.");
    }
  }
  const localMismatch = e.CERTBRIDGE_PUBLIC_URL === undefined ? null : localPortMismatch(e.CERTBRIDGE_PUBLIC_URL, e.CERTBRIDGE_PORT);
  if (localMismatch !== null) {
    warnings.push(
      `CERTBRIDGE_PUBLIC_URL ${e.CERTBRIDGE_PUBLIC_URL} names port ${localMismatch} on this machine, but the portal listens on ${e.CERTBRIDGE_PORT} (CERTBRIDGE_PORT): ` +
        "browsers and gateways will be sent to whatever listens there. Unset CERTBRIDGE_PUBLIC_URL, or make the ports agree.",
    );
  }
  if (problems.length) throw invalidConfig(`invalid configuration: ${problems.join("; ")}`);
  if (devDefaults.length || devAdmin) {
    const parts = [
      ...(devDefaults.length ? [`public development values for ${devDefaults.join(", ")} (never use them for real certificates)`] : []),
      ...(devAdmin ? ["the development user alice administers this portal (CERTBRIDGE_ADMIN_SUBS is not set)"] : []),
    ];
    warnings.unshift(`development defaults: ${parts.join("; ")}`);
  }
  for (const w of warnings) warn(w);
  // SSH retrieval is on in the embedded defaults and off unless configured in production.
  const sshPort = e.CERTBRIDGE_SSH_PORT ?? (production ? 0 : 2222);

  const dataDir = path.resolve(e.CERTBRIDGE_DATA_DIR);
  const external = e.CERTBRIDGE_CA_CERT_FILE !== undefined;
  const publicUrl = (e.CERTBRIDGE_PUBLIC_URL ?? `http://localhost:${e.CERTBRIDGE_PORT}`).replace(/\/+$/, "");
  return {
    env: e.NODE_ENV,
    dataDir,
    databaseUrl: e.DATABASE_URL ?? `file:${path.join(dataDir, "certbridge.db")}`,
    publicUrl,
    ca: {
      subject: e.CERTBRIDGE_CA_SUBJECT,
      certFile: path.resolve(e.CERTBRIDGE_CA_CERT_FILE ?? path.join(dataDir, "ca", "ca.pem")),
      keyFile: keyUri(e.CERTBRIDGE_CA_KEY_FILE ?? path.join(dataDir, "ca", "ca-key.pem")),
      external,
      keyPassphrase: caPassphrase,
      keyBits: e.CERTBRIDGE_CA_KEY_BITS,
      lifetimeSeconds: e.CERTBRIDGE_CA_LIFETIME,
      crlLifetimeSeconds: e.CERTBRIDGE_CRL_LIFETIME,
      crlUrl: `${publicUrl}/ca/crl.der`,
      email: e.CERTBRIDGE_CA_EMAIL ?? `ca@${new URL(publicUrl).hostname}`,
    },
    pkcs11: {
      ...(e.CERTBRIDGE_PKCS11_MODULE ? { module: e.CERTBRIDGE_PKCS11_MODULE } : {}),
      ...(e.CERTBRIDGE_PKCS11_PIN ? { pin: e.CERTBRIDGE_PKCS11_PIN } : {}),
      ...(e.CERTBRIDGE_PKCS11_PIN_FILE ? { pinFile: path.resolve(e.CERTBRIDGE_PKCS11_PIN_FILE) } : {}),
    },
    kek: Buffer.from(kek, "base64"),
    subject: { base: e.CERTBRIDGE_SUBJECT_BASE, defaultOrganisation: e.CERTBRIDGE_IDP_NAME },
    userCert: {
      keyBits: e.CERTBRIDGE_USER_KEY_BITS,
      lifetimeSeconds: e.CERTBRIDGE_USER_CERT_LIFETIME,
      renewBeforeSeconds: e.CERTBRIDGE_USER_CERT_RENEW_BEFORE,
      policyOid: e.CERTBRIDGE_CERT_POLICY_OID,
    },
    proxy: {
      defaultLifetimeSeconds: e.CERTBRIDGE_PROXY_DEFAULT_LIFETIME,
      maxLifetimeSeconds: e.CERTBRIDGE_PROXY_MAX_LIFETIME,
      keyPoolSize: e.CERTBRIDGE_KEY_POOL_SIZE,
      keyPoolCpu: e.CERTBRIDGE_KEY_POOL_CPU,
      signOn: proxySigningThread(e.CERTBRIDGE_WORKERS, os.availableParallelism()),
    },
    portal: {
      port: e.CERTBRIDGE_PORT,
      listenHost: e.CERTBRIDGE_LISTEN_HOST,
      workers: e.CERTBRIDGE_WORKERS,
      workerHeapMb: setsHeapCeiling((e.NODE_OPTIONS ?? "").split(/\s+/)) ? 0 : e.CERTBRIDGE_WORKER_HEAP_MB,
      shutdownGraceSeconds: e.CERTBRIDGE_SHUTDOWN_GRACE,
      issuer: publicUrl,
      cookieKeys: cookieKeys.split(",").map((k) => k.trim()).filter(Boolean),
      accessTokenTtlSeconds: e.CERTBRIDGE_ACCESS_TOKEN_TTL,
      refreshTokenTtlSeconds: e.CERTBRIDGE_REFRESH_TOKEN_TTL,
      refreshTokenGraceSeconds: e.CERTBRIDGE_REFRESH_TOKEN_GRACE,
      tokenKeyRotationSeconds: e.CERTBRIDGE_TOKEN_KEY_ROTATION,
      consentTtlSeconds: e.CERTBRIDGE_CONSENT_TTL,
      clientsFile: e.CERTBRIDGE_CLIENTS_FILE ? path.resolve(e.CERTBRIDGE_CLIENTS_FILE) : null,
    },
    registration:
      e.CERTBRIDGE_DYNAMIC_REGISTRATION === "1"
        ? { scopes: e.CERTBRIDGE_REGISTRATION_SCOPES.split(/\s+/).filter(Boolean), maxClients: e.CERTBRIDGE_REGISTRATION_MAX_CLIENTS }
        : null,
    upstream: devIdp
      ? null
      : {
          issuer: e.CERTBRIDGE_UPSTREAM_ISSUER!,
          clientId: e.CERTBRIDGE_UPSTREAM_CLIENT_ID!,
          clientSecret: keyAuth ? null : e.CERTBRIDGE_UPSTREAM_CLIENT_SECRET!,
          scopes: e.CERTBRIDGE_UPSTREAM_SCOPES,
        },
    upstreamTuning: {
      tokenAuth: e.CERTBRIDGE_UPSTREAM_TOKEN_AUTH,
      basicEncoding: e.CERTBRIDGE_UPSTREAM_BASIC_ENCODING,
      privateKeyFile: keyAuth ? path.resolve(e.CERTBRIDGE_UPSTREAM_PRIVATE_KEY_FILE ?? path.join(dataDir, "upstream", "rp-key.pem")) : null,
      clockToleranceSeconds: e.CERTBRIDGE_UPSTREAM_CLOCK_TOLERANCE,
      maxAgeSeconds: e.CERTBRIDGE_UPSTREAM_MAX_AGE ?? null,
      metadataTtlSeconds: e.CERTBRIDGE_UPSTREAM_METADATA_TTL,
      probeIntervalSeconds: e.CERTBRIDGE_UPSTREAM_PROBE_INTERVAL,
      timeoutSeconds: e.CERTBRIDGE_UPSTREAM_TIMEOUT,
      retries: e.CERTBRIDGE_UPSTREAM_RETRIES,
    },
    devIdp: devIdp ? { usersFile: path.resolve(e.CERTBRIDGE_DEV_USERS_FILE), issuer: `${publicUrl}/dev-idp` } : null,
    console: { adminSubs, adminEntitlements, sessionTtlSeconds: e.CERTBRIDGE_SESSION_TTL },
    ssh: sshPort
      ? {
          port: sshPort,
          listenHost: e.CERTBRIDGE_SSH_LISTEN_HOST ?? e.CERTBRIDGE_LISTEN_HOST,
          hostKeyFile: path.resolve(e.CERTBRIDGE_SSH_HOST_KEY_FILE ?? path.join(dataDir, "ssh", "host_ed25519_key")),
        }
      : null,
    myproxy: e.CERTBRIDGE_MYPROXY_PORT !== undefined
      ? {
          port: e.CERTBRIDGE_MYPROXY_PORT,
          listenHost: e.CERTBRIDGE_MYPROXY_LISTEN_HOST ?? e.CERTBRIDGE_LISTEN_HOST,
          hostName: new URL(publicUrl).hostname,
          hostCertFile: e.CERTBRIDGE_MYPROXY_HOST_CERT_FILE ? path.resolve(e.CERTBRIDGE_MYPROXY_HOST_CERT_FILE) : null,
          hostKeyFile: e.CERTBRIDGE_MYPROXY_HOST_KEY_FILE ? path.resolve(e.CERTBRIDGE_MYPROXY_HOST_KEY_FILE) : null,
        }
      : null,
    operations: operationsConfig(e, publicUrl),
    voms: {
      // The development setup serves the example VOs, matching the test users' entitlements.
      vosFile: e.CERTBRIDGE_VOS_FILE ? path.resolve(e.CERTBRIDGE_VOS_FILE) : devIdp ? path.resolve("examples/vos.json") : null,
      aaSubjectBase: e.CERTBRIDGE_AA_SUBJECT_BASE,
    },
  };
}
