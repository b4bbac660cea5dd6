/**
 * Configuration (lib/config.ts): development defaults warn, production
 * refuses them, and every bad value is an invalid_config naming its variable.
 * loadConfig only reads the env object it is given; nothing here touches the
 * filesystem or process.env.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import os from "node:os";
import path from "node:path";
import { CertbridgeError } from "../lib/errors";
import { DEV_CA_PASSPHRASE, DEV_COOKIE_KEYS, DEV_KEK, loadConfig, proxySigningThread, type Config } from "../lib/config";

const KEK = crypto.randomBytes(32);
/** Named administrators: without any, the console warns that nobody can use it. */
const ADMINS = { CERTBRIDGE_ADMIN_SUBS: "ops-admin" };
const SECRETS = { CERTBRIDGE_CA_KEY_PASSPHRASE: "a-real-passphrase-for-tests", CERTBRIDGE_KEK: KEK.toString("base64"), CERTBRIDGE_COOKIE_KEYS: "cookie-key-for-tests", ...ADMINS };
/** Production also needs a real upstream IdP (the development IdP is refused there). */
const UPSTREAM = {
  CERTBRIDGE_UPSTREAM_ISSUER: "https://aai.egi.eu/auth/realms/egi",
  CERTBRIDGE_UPSTREAM_CLIENT_ID: "certbridge",
  CERTBRIDGE_UPSTREAM_CLIENT_SECRET: "upstream-secret",
};
const DATA_DIR = path.join(os.tmpdir(), "certbridge-config-test-never-created");

/** loadConfig with the warnings captured instead of printed. */
function load(env: Record<string, string | undefined>): { config: Config; warnings: string[] } {
  const warnings: string[] = [];
  const config = loadConfig(env, (m) => warnings.push(m));
  return { config, warnings };
}

/** Expect an invalid_config error whose message matches every pattern. */
function assertInvalidConfig(env: Record<string, string | undefined>, patterns: RegExp[], label: string): void {
  const warnings: string[] = [];
  assert.throws(
    () => loadConfig(env, (m) => warnings.push(m)),
    (e: unknown) => {
      assert.ok(e instanceof CertbridgeError, `${label}: expected a CertbridgeError, got ${String(e)}`);
      assert.equal(e.code, "invalid_config", label);
      assert.equal(e.status, 500, label);
      for (const p of patterns) assert.match(e.message, p, label);
      return true;
    },
    label,
  );
}

const warnsAbout = (warnings: string[], name: string) =>
  warnings.some((w) => w.startsWith("development defaults: public development values for ") && w.includes(name));

describe("development defaults", () => {
  test("an empty environment works, with one warning line naming each dev secret", () => {
    const { config, warnings } = load({});
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.ok(warnings.some((w) => /the development user alice administers this portal/.test(w)), warnings.join("\n"));
    assert.ok(warnsAbout(warnings, "CERTBRIDGE_COOKIE_KEYS"), warnings.join("\n"));
    assert.ok(warnsAbout(warnings, "CERTBRIDGE_CA_KEY_PASSPHRASE"), warnings.join("\n"));
    assert.ok(warnsAbout(warnings, "CERTBRIDGE_KEK"), warnings.join("\n"));
    assert.equal(config.env, "development");
    assert.equal(config.ca.keyPassphrase, DEV_CA_PASSPHRASE);
    assert.ok(config.kek.equals(Buffer.from(DEV_KEK, "base64")));
    assert.equal(config.kek.length, 32);
    assert.equal(config.publicUrl, "http://localhost:3000");
    assert.equal(config.ca.crlUrl, "http://localhost:3000/ca/crl.der");
    assert.equal(config.ca.keyBits, 3072);
    assert.equal(config.ca.external, false);
    assert.equal(config.proxy.defaultLifetimeSeconds, 12 * 3600);
    assert.equal(config.proxy.maxLifetimeSeconds, 10 * 86400);
    assert.equal(config.dataDir, path.resolve("./data"));
  });

  test("empty-string variables count as unset", () => {
    const { config, warnings } = load({ CERTBRIDGE_KEK: "", CERTBRIDGE_CA_KEY_PASSPHRASE: "", CERTBRIDGE_PUBLIC_URL: "", ...ADMINS });
    assert.equal(warnings.length, 1);
    for (const name of ["CERTBRIDGE_KEK", "CERTBRIDGE_CA_KEY_PASSPHRASE", "CERTBRIDGE_COOKIE_KEYS"]) assert.ok(warnsAbout(warnings, name), name);
    assert.equal(config.publicUrl, "http://localhost:3000");
  });

  test("with both secrets set there is no warning and they are used", () => {
    const { config, warnings } = load({ ...SECRETS });
    assert.deepEqual(warnings, []);
    assert.ok(config.kek.equals(KEK));
    assert.equal(config.ca.keyPassphrase, SECRETS.CERTBRIDGE_CA_KEY_PASSPHRASE);
  });
});

describe("production", () => {
  test("refuses the dev passphrase, naming the variable", () => {
    assertInvalidConfig(
      { NODE_ENV: "production", CERTBRIDGE_KEK: SECRETS.CERTBRIDGE_KEK },
      [/CERTBRIDGE_CA_KEY_PASSPHRASE must be set when NODE_ENV=production/],
      "no passphrase",
    );
  });

  test("refuses the dev KEK, naming the variable", () => {
    assertInvalidConfig(
      { NODE_ENV: "production", CERTBRIDGE_CA_KEY_PASSPHRASE: SECRETS.CERTBRIDGE_CA_KEY_PASSPHRASE },
      [/CERTBRIDGE_KEK must be set when NODE_ENV=production/],
      "no KEK",
    );
  });

  test("refuses an empty environment", () => {
    assertInvalidConfig({ NODE_ENV: "production" }, [/must be set when NODE_ENV=production/], "nothing set");
  });

  test("starts with both secrets and no warnings", () => {
    const { config, warnings } = load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM });
    assert.equal(config.env, "production");
    assert.deepEqual(warnings, []);
    assert.equal(config.devIdp, null);
    assert.equal(config.upstream?.issuer, UPSTREAM.CERTBRIDGE_UPSTREAM_ISSUER);
  });

  test("refuses the development IdP unless explicitly allowed", () => {
    assertInvalidConfig({ NODE_ENV: "production", ...SECRETS }, [/CERTBRIDGE_UPSTREAM_ISSUER must be set when NODE_ENV=production/], "no upstream");
    const { config } = load({ NODE_ENV: "production", ...SECRETS, CERTBRIDGE_ALLOW_DEV_IDP: "1" });
    assert.equal(config.devIdp?.issuer, "http://localhost:3000/dev-idp");
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_UPSTREAM_ISSUER: UPSTREAM.CERTBRIDGE_UPSTREAM_ISSUER }, [/must be given together/], "partial upstream");
  });

  test("CERTBRIDGE_ALLOW_DEV_SECRETS=1 starts with warnings", () => {
    const { config, warnings } = load({ NODE_ENV: "production", CERTBRIDGE_ALLOW_DEV_SECRETS: "1", ...UPSTREAM, ...ADMINS });
    assert.equal(config.env, "production");
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.ok(warnsAbout(warnings, "CERTBRIDGE_CA_KEY_PASSPHRASE"));
    assert.ok(warnsAbout(warnings, "CERTBRIDGE_KEK"));
    assert.ok(config.kek.equals(Buffer.from(DEV_KEK, "base64")));
  });

  // Issue 12: a published development value set explicitly is no secret either.
  const publishedValues: { name: string; value: string; why: string }[] = [
    { name: "CERTBRIDGE_CA_KEY_PASSPHRASE", value: DEV_CA_PASSPHRASE, why: "as published" },
    { name: "CERTBRIDGE_KEK", value: DEV_KEK, why: "as published" },
    { name: "CERTBRIDGE_KEK", value: Buffer.from(DEV_KEK, "base64").toString("base64url"), why: "same bytes, base64url spelling" },
    { name: "CERTBRIDGE_COOKIE_KEYS", value: DEV_COOKIE_KEYS, why: "as published" },
    { name: "CERTBRIDGE_COOKIE_KEYS", value: `a-fresh-cookie-key,${DEV_COOKIE_KEYS}`, why: "as an older key in the rotation list" },
  ];
  for (const { name, value, why } of publishedValues) {
    test(`production refuses ${name} set explicitly to the development value (${why})`, () => {
      assertInvalidConfig({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM, [name]: value }, [new RegExp(`${name} is the published development value`)], `${name} ${why}`);
      // The same value outside production starts, with the development warning naming it.
      const { warnings } = load({ ...SECRETS, ...UPSTREAM, [name]: value });
      assert.ok(warnsAbout(warnings, name), warnings.join("\n"));
      // CERTBRIDGE_ALLOW_DEV_SECRETS=1 is the explicit demo override, as for unset values.
      assert.equal(load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM, CERTBRIDGE_ALLOW_DEV_SECRETS: "1", [name]: value }).config.env, "production");
    });
  }

  test("CERTBRIDGE_ALLOW_DEV_SECRETS=0 still refuses", () => {
    assertInvalidConfig({ NODE_ENV: "production", CERTBRIDGE_ALLOW_DEV_SECRETS: "0" }, [/must be set when NODE_ENV=production/], "=0");
  });

  test("an operator's own CA key needs no passphrase", () => {
    const { config, warnings } = load({
      NODE_ENV: "production",
      ...UPSTREAM,
      ...ADMINS,
      CERTBRIDGE_KEK: SECRETS.CERTBRIDGE_KEK,
      CERTBRIDGE_COOKIE_KEYS: SECRETS.CERTBRIDGE_COOKIE_KEYS,
      CERTBRIDGE_CA_CERT_FILE: "/etc/certbridge/ca.pem",
      CERTBRIDGE_CA_KEY_FILE: "/etc/certbridge/ca-key.pem",
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.ca.external, true);
    assert.equal(config.ca.keyPassphrase, "");
    assert.equal(config.ca.certFile, "/etc/certbridge/ca.pem");
    assert.equal(config.ca.keyFile, "/etc/certbridge/ca-key.pem");
  });
});

describe("bad values", () => {
  test("each bad value is an invalid_config naming its variable", () => {
    const cases: [string, string, RegExp][] = [
      ["CERTBRIDGE_PUBLIC_URL", "javascript:alert(1)", /CERTBRIDGE_PUBLIC_URL: /],
      ["CERTBRIDGE_PUBLIC_URL", "ftp://example.org", /CERTBRIDGE_PUBLIC_URL: /],
      ["CERTBRIDGE_CA_SUBJECT", "CN=no-slash", /CERTBRIDGE_CA_SUBJECT: must be a DN in slash form/],
      ["CERTBRIDGE_SUBJECT_BASE", "/XX=nope", /CERTBRIDGE_SUBJECT_BASE: must be a DN in slash form/],
      ["CERTBRIDGE_KEK", crypto.randomBytes(16).toString("base64"), /CERTBRIDGE_KEK: must be 32 bytes/],
      ["CERTBRIDGE_KEK", crypto.randomBytes(33).toString("base64"), /CERTBRIDGE_KEK: must be 32 bytes/],
      ["CERTBRIDGE_CA_KEY_PASSPHRASE", "short", /CERTBRIDGE_CA_KEY_PASSPHRASE: must be at least 12 characters/],
      ["CERTBRIDGE_PROXY_MAX_LIFETIME", "forever", /CERTBRIDGE_PROXY_MAX_LIFETIME: "forever" is not a duration/],
      ["CERTBRIDGE_PROXY_DEFAULT_LIFETIME", "0", /CERTBRIDGE_PROXY_DEFAULT_LIFETIME: .*must be a positive duration/],
      ["CERTBRIDGE_CA_KEY_BITS", "1024", /CERTBRIDGE_CA_KEY_BITS: must be 3072 or 4096/],
      ["CERTBRIDGE_USER_KEY_BITS", "1024", /CERTBRIDGE_USER_KEY_BITS: must be 2048, 3072 or 4096/],
      ["CERTBRIDGE_KEY_POOL_SIZE", "many", /CERTBRIDGE_KEY_POOL_SIZE: /],
      ["CERTBRIDGE_CERT_POLICY_OID", "1.2.x", /CERTBRIDGE_CERT_POLICY_OID: must be a dotted OID/],
      ["DATABASE_URL", "mysql://x", /DATABASE_URL: must start with file: \(SQLite\) or postgresql:\/\//],
      ["NODE_ENV", "staging", /NODE_ENV: /],
      ["CERTBRIDGE_ALLOW_DEV_SECRETS", "yes", /CERTBRIDGE_ALLOW_DEV_SECRETS: /],
    ];
    for (const [name, value, message] of cases) {
      assertInvalidConfig({ ...SECRETS, [name]: value }, [/^invalid configuration: /, message], `${name}=${value}`);
    }
  });

  test("several bad values are reported together", () => {
    assertInvalidConfig(
      { ...SECRETS, CERTBRIDGE_CA_KEY_BITS: "1024", DATABASE_URL: "mysql://x" },
      [/CERTBRIDGE_CA_KEY_BITS: /, /DATABASE_URL: /],
      "two bad values",
    );
  });

  test("a default proxy lifetime above the max is refused", () => {
    assertInvalidConfig(
      { ...SECRETS, CERTBRIDGE_PROXY_DEFAULT_LIFETIME: "2d", CERTBRIDGE_PROXY_MAX_LIFETIME: "1d" },
      [/CERTBRIDGE_PROXY_DEFAULT_LIFETIME exceeds CERTBRIDGE_PROXY_MAX_LIFETIME/],
      "default > max",
    );
    // Equal is fine.
    const { config } = load({ ...SECRETS, CERTBRIDGE_PROXY_DEFAULT_LIFETIME: "1d", CERTBRIDGE_PROXY_MAX_LIFETIME: "24h" });
    assert.equal(config.proxy.defaultLifetimeSeconds, config.proxy.maxLifetimeSeconds);
  });

  test("a max lifetime below the default 12h is refused when the default is left alone", () => {
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_PROXY_MAX_LIFETIME: "6h" }, [/exceeds CERTBRIDGE_PROXY_MAX_LIFETIME/], "max 6h");
  });

  test("a renewal window as long as the user certificate is refused", () => {
    assertInvalidConfig(
      { ...SECRETS, CERTBRIDGE_USER_CERT_LIFETIME: "1d", CERTBRIDGE_USER_CERT_RENEW_BEFORE: "1d" },
      [/CERTBRIDGE_USER_CERT_RENEW_BEFORE must be shorter than CERTBRIDGE_USER_CERT_LIFETIME/],
      "renew >= lifetime",
    );
  });

  test("a CA certificate file without its key file is refused, and vice versa", () => {
    const message = /CERTBRIDGE_CA_CERT_FILE and CERTBRIDGE_CA_KEY_FILE must be given together/;
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_CA_CERT_FILE: "/etc/certbridge/ca.pem" }, [message], "cert only");
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_CA_KEY_FILE: "/etc/certbridge/ca-key.pem" }, [message], "key only");
  });
});

describe("parsed values", () => {
  test("durations are parsed into seconds", () => {
    const { config } = load({
      ...SECRETS,
      CERTBRIDGE_CRL_LIFETIME: "12h",
      CERTBRIDGE_PROXY_DEFAULT_LIFETIME: "12:30",
      CERTBRIDGE_PROXY_MAX_LIFETIME: "1d12h",
      CERTBRIDGE_CA_LIFETIME: "43200",
      CERTBRIDGE_USER_CERT_LIFETIME: "90m",
      CERTBRIDGE_USER_CERT_RENEW_BEFORE: "30s",
    });
    assert.equal(config.ca.crlLifetimeSeconds, 43200);
    assert.equal(config.proxy.defaultLifetimeSeconds, 45000);
    assert.equal(config.proxy.maxLifetimeSeconds, 129600);
    assert.equal(config.ca.lifetimeSeconds, 43200);
    assert.equal(config.userCert.lifetimeSeconds, 5400);
    assert.equal(config.userCert.renewBeforeSeconds, 30);
  });

  test("duration defaults", () => {
    const { config } = load({ ...SECRETS });
    assert.equal(config.ca.lifetimeSeconds, 3650 * 86400);
    assert.equal(config.ca.crlLifetimeSeconds, 7 * 86400);
    assert.equal(config.userCert.lifetimeSeconds, 11 * 86400);
    assert.equal(config.userCert.renewBeforeSeconds, 86400);
  });

  test("numbers are coerced", () => {
    const { config } = load({ ...SECRETS, CERTBRIDGE_CA_KEY_BITS: "4096", CERTBRIDGE_USER_KEY_BITS: "3072", CERTBRIDGE_KEY_POOL_SIZE: "0" });
    assert.equal(config.ca.keyBits, 4096);
    assert.equal(config.userCert.keyBits, 3072);
    assert.equal(config.proxy.keyPoolSize, 0);
  });

  test("the server-key pool: size and CPU share, with their bounds", () => {
    const { config } = load({ ...SECRETS });
    assert.deepEqual([config.proxy.keyPoolSize, config.proxy.keyPoolCpu], [1000, 0.5], "defaults");
    const cases: [Record<string, string>, [number, number] | RegExp][] = [
      [{ CERTBRIDGE_KEY_POOL_SIZE: "0" }, [0, 0.5]],
      [{ CERTBRIDGE_KEY_POOL_SIZE: "2" }, [2, 0.5]],
      [{ CERTBRIDGE_KEY_POOL_SIZE: "100000" }, [100_000, 0.5]],
      [{ CERTBRIDGE_KEY_POOL_SIZE: "100001" }, /CERTBRIDGE_KEY_POOL_SIZE: /],
      [{ CERTBRIDGE_KEY_POOL_SIZE: "-1" }, /CERTBRIDGE_KEY_POOL_SIZE: /],
      [{ CERTBRIDGE_KEY_POOL_SIZE: "1.5" }, /CERTBRIDGE_KEY_POOL_SIZE: /],
      [{ CERTBRIDGE_KEY_POOL_CPU: "0.25" }, [1000, 0.25]],
      [{ CERTBRIDGE_KEY_POOL_CPU: "1" }, [1000, 1]],
      [{ CERTBRIDGE_KEY_POOL_CPU: "0" }, /CERTBRIDGE_KEY_POOL_CPU: must be above 0/],
      [{ CERTBRIDGE_KEY_POOL_CPU: "-0.5" }, /CERTBRIDGE_KEY_POOL_CPU: must be above 0/],
      [{ CERTBRIDGE_KEY_POOL_CPU: "1.5" }, /CERTBRIDGE_KEY_POOL_CPU: must be at most 1/],
      [{ CERTBRIDGE_KEY_POOL_CPU: "half" }, /CERTBRIDGE_KEY_POOL_CPU: /],
    ];
    for (const [env, want] of cases) {
      if (want instanceof RegExp) assertInvalidConfig({ ...SECRETS, ...env }, [/^invalid configuration: /, want], JSON.stringify(env));
      else {
        const { config } = load({ ...SECRETS, ...env });
        assert.deepEqual([config.proxy.keyPoolSize, config.proxy.keyPoolCpu], want, JSON.stringify(env));
      }
    }
  });

  test("DATABASE_URL defaults to a SQLite file in the data directory", () => {
    const { config } = load({ ...SECRETS, CERTBRIDGE_DATA_DIR: DATA_DIR });
    assert.equal(config.dataDir, DATA_DIR);
    assert.equal(config.databaseUrl, `file:${path.join(DATA_DIR, "certbridge.db")}`);
    assert.equal(config.ca.certFile, path.join(DATA_DIR, "ca", "ca.pem"));
    assert.equal(config.ca.keyFile, path.join(DATA_DIR, "ca", "ca-key.pem"));
  });

  test("a relative data directory is made absolute", () => {
    const { config } = load({ ...SECRETS, CERTBRIDGE_DATA_DIR: "rel/data" });
    assert.ok(path.isAbsolute(config.dataDir));
    assert.equal(config.dataDir, path.resolve("rel/data"));
    assert.equal(config.databaseUrl, `file:${path.resolve("rel/data", "certbridge.db")}`);
  });

  test("an explicit DATABASE_URL is used as given", () => {
    const url = "postgresql://certbridge@db.example.org/certbridge";
    assert.equal(load({ ...SECRETS, DATABASE_URL: url }).config.databaseUrl, url);
    assert.equal(load({ ...SECRETS, DATABASE_URL: "file:/srv/cb.db" }).config.databaseUrl, "file:/srv/cb.db");
  });

  test("the public URL follows CERTBRIDGE_PORT unless it is set; a loopback URL on another port warns", () => {
    const derived = load({ ...SECRETS, CERTBRIDGE_PORT: "3100" });
    assert.equal(derived.config.publicUrl, "http://localhost:3100");
    assert.equal(derived.config.devIdp?.issuer, "http://localhost:3100/dev-idp");
    assert.equal(derived.config.ca.crlUrl, "http://localhost:3100/ca/crl.der");
    assert.deepEqual(derived.warnings, []);
    const cases: [publicUrl: string, port: string, warns: boolean][] = [
      ["http://localhost:3000", "3100", true],
      ["http://127.0.0.1:3000", "3100", true],
      ["http://[::1]:3000", "3100", true],
      ["http://localhost", "3100", true], // port 80
      ["http://localhost:3100", "3100", false],
      ["http://localhost", "80", false],
      ["https://localhost", "443", false],
      ["https://portal.example.org", "3100", false], // behind a reverse proxy: any port
      ["http://portal.example.org:3000", "3100", false],
    ];
    for (const [url, port, warns] of cases) {
      const { config, warnings } = load({ ...SECRETS, CERTBRIDGE_PUBLIC_URL: url, CERTBRIDGE_PORT: port });
      assert.equal(config.publicUrl, url, url);
      const warned = warnings.filter((w) => /CERTBRIDGE_PUBLIC_URL .* but the portal listens on .* \(CERTBRIDGE_PORT\)/.test(w));
      assert.equal(warned.length, warns ? 1 : 0, `${url} on ${port}: ${warnings.join(" | ")}`);
    }
  });

  test("the public URL loses its trailing slashes and gives the CRL URL", () => {
    const { config } = load({ ...SECRETS, CERTBRIDGE_PUBLIC_URL: "https://ca.example.org/certbridge//" });
    assert.equal(config.publicUrl, "https://ca.example.org/certbridge");
    assert.equal(config.ca.crlUrl, "https://ca.example.org/certbridge/ca/crl.der");
  });
});

describe("consoles and SSH", () => {
  test("administrators: lists are split on commas and spaces; the development IdP makes alice one; production without any warns", () => {
    const listed = load({ ...SECRETS, CERTBRIDGE_ADMIN_SUBS: "a1, b2  c3", CERTBRIDGE_ADMIN_ENTITLEMENTS: "urn:x:admin#aai,urn:y" }).config.console;
    assert.deepEqual(listed.adminSubs, ["a1", "b2", "c3"]);
    assert.deepEqual(listed.adminEntitlements, ["urn:x:admin#aai", "urn:y"]);
    assert.equal(listed.sessionTtlSeconds, 8 * 3600);
    const dev = load({ ...SECRETS, CERTBRIDGE_ADMIN_SUBS: "" });
    assert.deepEqual(dev.config.console.adminSubs, ["alice"]);
    const prod = load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM, CERTBRIDGE_ADMIN_SUBS: "" });
    assert.deepEqual(prod.config.console.adminSubs, []);
    assert.ok(prod.warnings.some((w) => /nobody can use the admin console/.test(w)), prod.warnings.join("\n"));
    const byEntitlement = load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM, CERTBRIDGE_ADMIN_SUBS: "", CERTBRIDGE_ADMIN_ENTITLEMENTS: "urn:x" });
    assert.deepEqual(byEntitlement.warnings, []);
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_SESSION_TTL: "soon" }, [/CERTBRIDGE_SESSION_TTL/], "bad session ttl");
  });

  test("SSH retrieval is on (port 2222) in the embedded defaults, off in production unless a port is set", () => {
    const dev = load({ ...SECRETS, CERTBRIDGE_DATA_DIR: DATA_DIR }).config.ssh;
    assert.deepEqual(dev, { port: 2222, listenHost: "localhost", hostKeyFile: path.join(DATA_DIR, "ssh", "host_ed25519_key") });
    assert.equal(load({ ...SECRETS, CERTBRIDGE_SSH_PORT: "0" }).config.ssh, null);
    assert.equal(load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM }).config.ssh, null);
    assert.equal(load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM, CERTBRIDGE_SSH_PORT: "2022", CERTBRIDGE_SSH_LISTEN_HOST: "0.0.0.0" }).config.ssh?.port, 2022);
    assertInvalidConfig({ ...SECRETS, CERTBRIDGE_SSH_PORT: "70000" }, [/CERTBRIDGE_SSH_PORT/], "port out of range");
  });
});

describe("the upstream relying party's settings", () => {
  test("safe defaults: Basic with RFC 6749 encoding, 30 s clock tolerance, no max_age, metadata kept 1 h, probe after 30 s, bounded retry", () => {
    const { config } = load({ NODE_ENV: "production", ...SECRETS, ...UPSTREAM });
    assert.deepEqual(config.upstreamTuning, {
      tokenAuth: "client_secret_basic",
      basicEncoding: "form",
      privateKeyFile: null,
      clockToleranceSeconds: 30,
      maxAgeSeconds: null,
      metadataTtlSeconds: 3600,
      probeIntervalSeconds: 30,
      timeoutSeconds: 10,
      retries: 2,
    });
  });

  test("each is a setting, checked", () => {
    const { config } = load({
      ...UPSTREAM,
      CERTBRIDGE_DATA_DIR: DATA_DIR,
      CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_post",
      CERTBRIDGE_UPSTREAM_CLOCK_TOLERANCE: "120",
      CERTBRIDGE_UPSTREAM_MAX_AGE: "1h",
      CERTBRIDGE_UPSTREAM_METADATA_TTL: "10m",
      CERTBRIDGE_UPSTREAM_PROBE_INTERVAL: "0",
      CERTBRIDGE_UPSTREAM_TIMEOUT: "5",
      CERTBRIDGE_UPSTREAM_RETRIES: "0",
    });
    assert.equal(config.upstreamTuning.tokenAuth, "client_secret_post");
    assert.equal(config.upstreamTuning.clockToleranceSeconds, 120);
    assert.equal(config.upstreamTuning.maxAgeSeconds, 3600);
    assert.equal(config.upstreamTuning.metadataTtlSeconds, 600);
    assert.equal(config.upstreamTuning.probeIntervalSeconds, 0);
    assertInvalidConfig({ ...UPSTREAM, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "client_secret_jwt" }, [/CERTBRIDGE_UPSTREAM_TOKEN_AUTH/], "unknown method");
    assertInvalidConfig({ ...UPSTREAM, CERTBRIDGE_UPSTREAM_BASIC_ENCODING: "latin1" }, [/CERTBRIDGE_UPSTREAM_BASIC_ENCODING/], "unknown encoding");
    assertInvalidConfig({ ...UPSTREAM, CERTBRIDGE_UPSTREAM_CLOCK_TOLERANCE: "-5" }, [/CERTBRIDGE_UPSTREAM_CLOCK_TOLERANCE/], "negative tolerance");
    assertInvalidConfig({ ...UPSTREAM, CERTBRIDGE_UPSTREAM_MAX_AGE: "soon" }, [/CERTBRIDGE_UPSTREAM_MAX_AGE/], "bad max_age");
  });

  test("private_key_jwt needs no client secret; its key lives in the data directory unless given", () => {
    const { config, warnings } = load({
      NODE_ENV: "production",
      ...SECRETS,
      CERTBRIDGE_DATA_DIR: DATA_DIR,
      CERTBRIDGE_UPSTREAM_ISSUER: UPSTREAM.CERTBRIDGE_UPSTREAM_ISSUER,
      CERTBRIDGE_UPSTREAM_CLIENT_ID: "certbridge",
      CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "private_key_jwt",
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.upstream?.clientSecret, null);
    assert.equal(config.upstreamTuning.privateKeyFile, path.join(DATA_DIR, "upstream", "rp-key.pem"));
    const given = load({ ...UPSTREAM, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "private_key_jwt", CERTBRIDGE_UPSTREAM_PRIVATE_KEY_FILE: "/etc/certbridge/rp.pem" });
    assert.equal(given.config.upstreamTuning.privateKeyFile, "/etc/certbridge/rp.pem");
    assert.ok(given.warnings.some((w) => /CERTBRIDGE_UPSTREAM_CLIENT_SECRET is ignored/.test(w)));
    assertInvalidConfig({ CERTBRIDGE_UPSTREAM_ISSUER: UPSTREAM.CERTBRIDGE_UPSTREAM_ISSUER, CERTBRIDGE_UPSTREAM_TOKEN_AUTH: "private_key_jwt" }, [/CERTBRIDGE_UPSTREAM_ISSUER and CERTBRIDGE_UPSTREAM_CLIENT_ID must be given together/], "no client id");
  });
});

describe("where proxies are signed", () => {
  const table: [workers: number, cores: number, expected: ReturnType<typeof proxySigningThread>][] = [
    [1, 1, "event-loop"],
    [1, 2, "thread-pool"],
    [2, 2, "event-loop"],
    [3, 2, "event-loop"],
    [2, 8, "thread-pool"],
  ];
  for (const [workers, cores, expected] of table) {
    test(`${workers} worker(s) on ${cores} core(s): ${expected}`, () => assert.equal(proxySigningThread(workers, cores), expected));
  }

  test("a worker's heap ceiling: 256 MB unless set, 0 for V8's own sizing, none over an operator's NODE_OPTIONS, nonsense refused", () => {
    const quiet = () => {};
    assert.equal(loadConfig({}, quiet).portal.workerHeapMb, 256);
    assert.equal(loadConfig({ CERTBRIDGE_WORKER_HEAP_MB: "1024" }, quiet).portal.workerHeapMb, 1024);
    assert.equal(loadConfig({ CERTBRIDGE_WORKER_HEAP_MB: "0" }, quiet).portal.workerHeapMb, 0);
    assert.equal(loadConfig({ NODE_OPTIONS: "--max-old-space-size=2048 --trace-warnings" }, quiet).portal.workerHeapMb, 0);
    for (const bad of ["64", "-1", "lots", "256.5"]) assert.throws(() => loadConfig({ CERTBRIDGE_WORKER_HEAP_MB: bad }, quiet), /CERTBRIDGE_WORKER_HEAP_MB/, bad);
  });

  test("the configuration carries it, from CERTBRIDGE_WORKERS and this machine's cores", () => {
    const cores = os.availableParallelism();
    assert.equal(loadConfig({ CERTBRIDGE_WORKERS: String(cores) }, () => {}).proxy.signOn, "event-loop");
    if (cores > 1) assert.equal(loadConfig({ CERTBRIDGE_WORKERS: "1" }, () => {}).proxy.signOn, "thread-pool");
  });
});
