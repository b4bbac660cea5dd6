/**
 * The operator CLI as an operator runs it: a child process of the real bin,
 * configured by environment, against a fresh data directory and database.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { testEnvironment, run, opensslCsr, assembleProxyFile, ROOT } from "./helpers";
import { PROXY_INFO } from "./deviceHarness";

let env: Record<string, string>;
let dir: string;
let cleanup: () => Promise<void>;

const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), ...args], { env });

before(async () => {
  ({ env, dir, cleanup } = await testEnvironment());
});
after(async () => cleanup?.());

describe("certbridge CLI", () => {
  test("ca init creates an encrypted CA key once, and refuses to overwrite it", () => {
    const first = cli("ca", "init");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /created CA \/DC=org\/DC=certbridge-test\/CN=Certbridge Test CA/);
    const keyFile = path.join(dir, "ca", "ca-key.pem");
    assert.match(fs.readFileSync(keyFile, "utf8"), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const key = run("openssl", ["pkey", "-in", keyFile, "-passin", `pass:${env.CERTBRIDGE_CA_KEY_PASSPHRASE}`, "-noout", "-text"]);
    assert.match(key.stdout, /Private-Key: \(3072 bit/);
    const second = cli("ca", "init");
    assert.equal(second.status, 1);
    assert.match(second.stderr, /a CA already exists/);
  });

  test("ca info shows the subject, validity and key", () => {
    const r = cli("ca", "info");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /subject:\s+\/DC=org\/DC=certbridge-test\/CN=Certbridge Test CA/);
    assert.match(r.stdout, /key:\s+RSA 3072 bits/);
    assert.match(r.stdout, /\((3649|3650) days left\)/);
  });

  let serial = "";
  test("proxy issue with a CSR writes a 0600 file that Globus accepts, and audits it", () => {
    const work = path.join(dir, "work");
    fs.mkdirSync(work, { recursive: true });
    fs.writeFileSync(path.join(work, "claims.json"), JSON.stringify({ iss: "https://idp.example.org", sub: "op-smoke", name: "Operator Smoke Test" }));
    const csr = opensslCsr(work);
    fs.writeFileSync(path.join(work, "req.csr"), csr.csrPem);
    const out = path.join(work, "issued.pem");
    const r = cli("proxy", "issue", "--claims", path.join(work, "claims.json"), "--csr", path.join(work, "req.csr"), "--lifetime", "2h", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /issued proxy \d+ for \/DC=org\/DC=certbridge-test\/DC=users\/O=Certbridge Users\/CN=Operator Smoke Test [A-Za-z0-9-]{16}\/CN=\d+/);
    assert.match(r.stdout, /\(2h\); key: csr/);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);

    const bundle = cli("ca", "bundle", "--out", path.join(dir, "certificates"));
    assert.equal(bundle.status, 0, bundle.stderr);
    assert.match(bundle.stdout, /wrote 16 files/); // 6 per hash (.0, policies, .r0, .crl_url, .info), and .lsc + vomses for the 2 development VOs
    assert.ok(fs.existsSync(path.join(dir, "certificates", "vomsdir", "biomed", "voms.certbridge.example.lsc")));
    const proxy = path.join(work, "proxy.pem");
    fs.writeFileSync(proxy, assembleProxyFile(fs.readFileSync(out, "utf8"), csr.keyPem), { mode: 0o600 });
    const g = run("grid-proxy-init", ["-verify", "-cert", proxy, "-key", proxy, "-certdir", path.join(dir, "certificates"), "-valid", "0:10", "-out", path.join(work, "derived.pem")]);
    assert.equal(g.status, 0, g.stderr + g.stdout);

    const list = cli("cert", "list", "--kind", "user");
    assert.equal(list.status, 0, list.stderr);
    serial = list.stdout.split("\n")[1]!.split(/\s+/)[0]!;
    assert.match(serial, /^[0-9a-f]{40}$/);
    const show = cli("cert", "show", serial);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /certificate\.issue\s+success\s+cli:/);
    assert.match(show.stdout, /-----BEGIN CERTIFICATE-----/);
  });

  test("cert revoke then ca crl: the DER CRL lists the serial with its reason", () => {
    const noComment = cli("cert", "revoke", serial, "--reason", "keyCompromise");
    assert.equal(noComment.status, 2);
    assert.match(noComment.stderr, /--comment/);
    const badReason = cli("cert", "revoke", serial, "--reason", "bored", "--comment", "x");
    assert.equal(badReason.status, 1);
    assert.match(badReason.stderr, /unknown revocation reason "bored"/);
    const r = cli("cert", "revoke", serial, "--reason", "affiliationChanged", "--comment", "left the project");
    assert.equal(r.status, 0, r.stderr);
    const crlFile = path.join(dir, "crl.der");
    const c = cli("ca", "crl", "--out", crlFile, "--der");
    assert.equal(c.status, 0, c.stderr);
    assert.match(c.stdout, /1 revoked/);
    const text = run("openssl", ["crl", "-inform", "DER", "-in", crlFile, "-noout", "-text"]);
    assert.match(text.stdout.replace(/\s/g, ""), new RegExp(`SerialNumber:${serial.toUpperCase()}`));
    assert.match(text.stdout, /Affiliation Changed/);
  });

  test("errors are one clear line and a non-zero status", () => {
    const unknown = cli("frobnicate");
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^certbridge: unknown command "frobnicate"\n/);
    const missing = cli("proxy", "issue", "--claims", "/nonexistent.json", "--out", path.join(dir, "x.pem"));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^certbridge: cannot read claims from \/nonexistent.json/m);
    const badCsr = path.join(dir, "bad.csr");
    fs.writeFileSync(badCsr, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    fs.writeFileSync(path.join(dir, "c.json"), JSON.stringify({ iss: "https://idp.example.org", sub: "x", name: "X Y" }));
    const r = cli("proxy", "issue", "--claims", path.join(dir, "c.json"), "--csr", badCsr, "--out", path.join(dir, "x.pem"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^certbridge: the request is not valid DER/m);
    assert.equal(fs.existsSync(path.join(dir, "x.pem")), false);
    const noClaim = cli("cert", "show", "zz-not-a-serial");
    assert.equal(noClaim.status, 2);
    const badEnv = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "info"], { env: { ...env, CERTBRIDGE_CA_KEY_BITS: "1024" } });
    assert.equal(badEnv.status, 1);
    assert.match(badEnv.stderr, /CERTBRIDGE_CA_KEY_BITS: must be 3072 or 4096/);
    const badDuration = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "info"], { env: { ...env, CERTBRIDGE_PROXY_MAX_LIFETIME: "soon" } });
    assert.equal(badDuration.status, 1);
    assert.match(badDuration.stderr, /CERTBRIDGE_PROXY_MAX_LIFETIME: "soon" is not a duration/);
    assert.doesNotMatch(badDuration.stderr, /CERTBRIDGE_PROXY_MAX_LIFETIME:.*CERTBRIDGE_PROXY_MAX_LIFETIME/, "the variable is named once");
  });

  test("without a command: usage on stderr, exit 2 (--help: usage on stdout, exit 0)", () => {
    const none = cli();
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^certbridge: no command given\nusage: certbridge <command>/);
    const help = cli("--help");
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: certbridge <command>/);
  });

  test("proxy issue --voms prints the FQANs as the AC carries them (VOMS long form), as certbridge-proxy-info --fqan does", () => {
    const claimsFile = path.join(dir, "voms-claims.json");
    const eduperson_entitlement = ["biomed", "biomed:lab1", "biomed:role=pilot"].map((g) => `urn:mace:egi.eu:group:${g}#aai.egi.eu`);
    fs.writeFileSync(claimsFile, JSON.stringify({ iss: "https://idp.example.org", sub: "op-voms", name: "Operator Voms Test", eduperson_entitlement }));
    const out = path.join(dir, "voms-proxy.pem");
    const r = cli("proxy", "issue", "--claims", claimsFile, "--voms", "biomed:/biomed/Role=pilot", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    const fqans = ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"];
    assert.equal(/ with VOMS attributes (.*)$/m.exec(r.stdout)?.[1], fqans.join(" "));
    const info = run(process.execPath, [PROXY_INFO, "--fqan", "--file", out]);
    assert.equal(info.status, 0, info.stderr);
    assert.deepEqual(info.stdout.trim().split("\n"), fqans);
  });
});

describe("client management", () => {
  const listRow = (stdout: string, id: string) => stdout.split("\n").find((l) => l.startsWith(`${id} `));

  let secret = "";
  test("client add registers a confidential client and prints its secret once", () => {
    const r = cli("client", "add", "--id", "gw-cli", "--name", "CLI Gateway", "--redirect-uri", "https://gw.example.org/cb", "--redirect-uri", "https://gw.example.org/cb2", "--max-lifetime", "2d", "--contact", "ops@example.org");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /registered confidential client gw-cli \(CLI Gateway\)/);
    assert.match(r.stdout, /client id:\s+gw-cli/);
    secret = /client secret:\s+(\S+)/.exec(r.stdout)?.[1] ?? "";
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    assert.match(r.stdout, /shown only this once/);

    const list = cli("client", "list");
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^id\s+name\s+type\s+status\s+maxLifetime\s+redirectUris\s+scopes\s+profile/);
    assert.match(listRow(list.stdout, "gw-cli") ?? "", /^gw-cli\s+CLI Gateway\s+confidential\s+active\s+2d\s+https:\/\/gw\.example\.org\/cb,https:\/\/gw\.example\.org\/cb2\s+openid,profile,email,offline_access,proxy/);
    assert.equal(list.stdout.includes(secret), false, "client list must never print a secret");
  });

  test("client add --public registers a client without a secret", () => {
    const r = cli("client", "add", "--id", "gw-public", "--public", "--name", "Public Gateway", "--redirect-uri", "http://localhost:4000/cb", "--scope", "openid", "--scope", "proxy");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /registered public client gw-public/);
    assert.doesNotMatch(r.stdout, /secret/);
    const list = cli("client", "list");
    assert.match(listRow(list.stdout, "gw-public") ?? "", /^gw-public\s+Public Gateway\s+public\s+active\s+1d\s+http:\/\/localhost:4000\/cb\s+openid,proxy\s+-$/);
  });

  test("client add refuses bad input with one line: 1 for invalid values, 2 for usage", () => {
    const http = cli("client", "add", "--name", "Evil", "--redirect-uri", "http://evil.example.org/cb");
    assert.equal(http.status, 1);
    assert.match(http.stderr, /^certbridge: invalid client: .*https.*\n$/);
    const scope = cli("client", "add", "--name", "Greedy", "--redirect-uri", "https://gw.example.org/cb", "--scope", "admin");
    assert.equal(scope.status, 1);
    assert.match(scope.stderr, /^certbridge: invalid client: scopes.*\n$/);
    const dup = cli("client", "add", "--id", "gw-cli", "--name", "Again", "--redirect-uri", "https://gw.example.org/cb");
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /^certbridge: client gw-cli already exists\n$/);
    const noName = cli("client", "add", "--redirect-uri", "https://gw.example.org/cb");
    assert.equal(noName.status, 2);
    assert.match(noName.stderr, /^certbridge: client add needs --name NAME\n/);
    const noUri = cli("client", "add", "--name", "No URI");
    assert.equal(noUri.status, 2);
    assert.match(noUri.stderr, /--redirect-uri/);
    const badLifetime = cli("client", "add", "--name", "X", "--redirect-uri", "https://gw.example.org/cb", "--max-lifetime", "forever");
    assert.equal(badLifetime.status, 2);
    assert.match(badLifetime.stderr, /--max-lifetime/);
    const list = cli("client", "list");
    assert.doesNotMatch(list.stdout, /Evil|Greedy|Again|No URI/);
  });

  test("client secret prints a new secret once; the old one stops working; a public client has none", async () => {
    const r = cli("client", "secret", "gw-cli");
    assert.equal(r.status, 0, r.stderr);
    const fresh = /client secret:\s+(\S+)/.exec(r.stdout)?.[1] ?? "";
    assert.ok(fresh.length >= 32 && fresh !== secret, r.stdout);
    // What oidc-provider will check the client against is the new secret.
    const { openDatabase, closeDatabase } = await import("../lib/db");
    const { findGatewayClientMetadata } = await import("../lib/oidc/clients");
    const db = await openDatabase(env.DATABASE_URL ?? `file:${path.join(dir, "certbridge.db")}`);
    try {
      const meta = (await findGatewayClientMetadata(db, Buffer.from(env.CERTBRIDGE_KEK!, "base64"), "gw-cli")) as { client_secret?: string };
      assert.equal(meta.client_secret, fresh);
    } finally {
      await closeDatabase(db);
    }
    secret = fresh;
    const pub = cli("client", "secret", "gw-public");
    assert.equal(pub.status, 1);
    assert.match(pub.stderr, /is public/);
  });

  test("client suspend, activate and remove change what client list shows", () => {
    const s = cli("client", "suspend", "gw-cli", "--comment", "key rotation");
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stdout, /suspended client gw-cli/);
    assert.match(listRow(cli("client", "list").stdout, "gw-cli") ?? "", /\sconfidential\s+suspended\s/);
    const a = cli("client", "activate", "gw-cli");
    assert.equal(a.status, 0, a.stderr);
    assert.match(listRow(cli("client", "list").stdout, "gw-cli") ?? "", /\sconfidential\s+active\s/);

    const rm = cli("client", "remove", "gw-cli");
    assert.equal(rm.status, 0, rm.stderr);
    assert.match(rm.stdout, /removed client gw-cli/);
    const list = cli("client", "list");
    assert.equal(listRow(list.stdout, "gw-cli"), undefined);
    assert.ok(listRow(list.stdout, "gw-public"));
    const again = cli("client", "remove", "gw-cli");
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^certbridge: no client gw-cli\n$/);
    const unknown = cli("client", "suspend", "gw-nope");
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no client gw-nope/);
    const noId = cli("client", "remove");
    assert.equal(noId.status, 2);
  });
});
