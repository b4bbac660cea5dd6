/**
 * The MyProxy-protocol listener against Debian's stock myproxy-logon (and
 * Globus' grid-proxy-init as the relying party), with the production server
 * entry: USERNAME = the person's DN, PASSPHRASE = an access token with the
 * proxy scope (read by -S from stdin). Wrong tokens and other people's DNs get
 * MyProxy's error text; every retrieval and refusal is audited.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { openDatabase, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { parseRequest, vomsOf } from "../lib/myproxy/server";
import { decodeCertificate } from "../lib/inspect/certificate";
import { pemBlocks } from "../lib/pki/der";
import { run, tempDir, ROOT } from "./helpers";
import { startPortalServer, freePort, loginThroughPortal, redeem, consoleLogin, type PortalServer } from "./portalHarness";

let portal: PortalServer;
let db: Db;
let port: number;
let trust: string;
let work: string;
let token: string;
let dn: string;

function logon(args: { username?: string; passphrase?: string; hours?: string; extra?: string[]; env?: Record<string, string> } = {}) {
  const out = path.join(work, `proxy-${Math.random().toString(36).slice(2)}.pem`);
  const r = run(
    "myproxy-logon",
    ["-s", "localhost", "-p", String(port), "-l", args.username ?? dn, "-t", args.hours ?? "2", "-S", "-o", out, ...(args.extra ?? [])],
    { input: `${args.passphrase ?? token}\n`, env: { X509_CERT_DIR: trust, HOME: work, ...args.env }, timeoutMs: 30_000 },
  );
  return { ...r, out, pem: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
}

const grid = (file: string) => run("grid-proxy-init", ["-verify", "-cert", file, "-key", file, "-certdir", trust, "-valid", "0:05", "-out", `${file}.derived`]);

before(async () => {
  work = tempDir("certbridge-myproxy-");
  port = await freePort();
  portal = await startPortalServer({ CERTBRIDGE_MYPROXY_PORT: String(port) });
  db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
  trust = path.join(portal.dir, "trust");
  const bundle = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "bundle", "--out", trust], { env: portal.env });
  assert.equal(bundle.status, 0, bundle.stderr);
  const tokens = await redeem(await loginThroughPortal(portal.url));
  token = tokens.access_token;
  const info = await fetch(`${portal.url}/getproxy?info=1`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(info.status, 200);
  dn = ((await info.json()) as { username: string }).username;
});
after(async () => {
  await db?.$disconnect();
  await portal?.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("MyProxy request parsing", () => {
  test("KEY=value lines, repeated VONAME/VOROLE, LIFETIME in seconds", () => {
    const r = parseRequest("VERSION=MYPROXYv2\nCOMMAND=0\nUSERNAME=/DC=org/CN=A B\nPASSPHRASE=x=y\nLIFETIME=7200\nVONAME=biomed\nVOROLE=/atlas/Role=production\n");
    assert.equal(r.command, 0);
    assert.equal(r.username, "/DC=org/CN=A B");
    assert.equal(r.passphrase, "x=y");
    assert.equal(r.lifetimeSeconds, 7200);
    const voms = vomsOf(r);
    assert.deepEqual(voms.map((v) => v.vo), ["biomed", "atlas"]);
    assert.equal(voms[0]!.fqan, null);
    assert.match(voms[1]!.fqan!, /^\/atlas\/Role=production/);
    assert.throws(() => parseRequest("VERSION=MYPROXYv1\nCOMMAND=0\n"), /unsupported protocol version/);
    assert.throws(() => parseRequest("VERSION=MYPROXYv2\nCOMMAND=0\nLIFETIME=-1\n"), /LIFETIME/);
  });
});

describe("myproxy-logon (GET)", () => {
  test("the DN and an access token give a proxy Globus verifies, with the requested lifetime", async () => {
    const r = logon();
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(fs.statSync(r.out).mode & 0o777, 0o600);
    const certs = pemBlocks(r.pem).filter((b) => b.label === "CERTIFICATE");
    assert.equal(certs.length, 2, "proxy and user certificate");
    assert.match(r.pem, /PRIVATE KEY/, "the client's own key");
    const proxy = decodeCertificate(certs[0]!.der);
    assert.equal(proxy.issuer, dn);
    const seconds = (proxy.notAfter.getTime() - proxy.notBefore.getTime()) / 1000;
    assert.ok(seconds >= 7200 && seconds <= 7200 + 600, `lifetime ${seconds}`);
    const g = grid(r.out);
    assert.equal(g.status, 0, g.stderr + g.stdout);
    const issued = await db.auditEvent.findMany({ where: { action: "proxy.issue", details: { contains: '"channel":"myproxy"' } } });
    assert.equal(issued.length, 1);
  });

  test("a lifetime above policy is clamped to the gateway's maximum (24 h here)", () => {
    const r = logon({ hours: "200" });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const proxy = decodeCertificate(pemBlocks(r.pem).find((b) => b.label === "CERTIFICATE")!.der);
    const seconds = (proxy.notAfter.getTime() - proxy.notBefore.getTime()) / 1000;
    assert.ok(seconds <= 86400 + 600, `lifetime ${seconds}`);
  });

  test("a wrong token and another person's DN are refused with MyProxy's error text, and audited", async () => {
    const before = await db.auditEvent.count({ where: { action: "proxy.refuse", details: { contains: '"channel":"myproxy"' } } });
    const bad = logon({ passphrase: "not-a-token-at-all" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr + bad.stdout, /access token is invalid, expired or revoked/);
    assert.equal(bad.pem, "");
    const other = logon({ username: "/DC=org/DC=example/CN=Somebody Else" });
    assert.notEqual(other.status, 0);
    assert.match(other.stderr + other.stdout, /not valid for this username/);
    assert.equal(await db.auditEvent.count({ where: { action: "proxy.refuse", details: { contains: '"channel":"myproxy"' } } }), before + 2);
  });

  test("-m: VOMS attributes with /getproxy's role semantics; a VO or role the person lacks is refused", () => {
    const fqansOf = (pem: string) => decodeCertificate(pemBlocks(pem).find((b) => b.label === "CERTIFICATE")!.der).attributeCertificates.flatMap((a) => a.fqans);
    const groups = logon({ extra: ["-m", "biomed"] });
    assert.equal(groups.status, 0, groups.stderr + groups.stdout);
    assert.deepEqual(fqansOf(groups.pem), ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    const role = logon({ extra: ["-m", "biomed:/biomed/Role=pilot"] });
    assert.equal(role.status, 0, role.stderr + role.stdout);
    assert.deepEqual(fqansOf(role.pem), ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"]);
    const atlas = logon({ extra: ["-m", "atlas"] });
    assert.notEqual(atlas.status, 0);
    assert.match(atlas.stderr + atlas.stdout, /not a member of VO atlas/);
    const admin = logon({ extra: ["-m", "biomed:/biomed/Role=admin"] });
    assert.notEqual(admin.status, 0);
    assert.match(admin.stderr + admin.stdout, /do not hold the role \/biomed\/Role=admin/);
  });

  test("-b -T with an empty trust directory: bootstraps from the server's chain (the CA and its signing_policy), then -T installs the CRL too", () => {
    const dir = path.join(work, "bootstrapped");
    const r = logon({ extra: ["-b", "-T"], env: { X509_CERT_DIR: dir } });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const hasAll = (suffixes: string[]) => {
      const files = fs.readdirSync(dir);
      for (const suffix of suffixes) assert.ok(files.some((f) => f.endsWith(suffix)), `${suffix} in ${files.join(" ")}`);
    };
    hasAll([".0", ".signing_policy"]);
    const again = logon({ extra: ["-T"], env: { X509_CERT_DIR: dir } });
    assert.equal(again.status, 0, again.stderr + again.stdout);
    hasAll([".0", ".signing_policy", ".namespaces", ".r0"]);
  });

  test("the listener speaks TLS 1.2 only", () => {
    const r13 = run("openssl", ["s_client", "-connect", `localhost:${port}`, "-tls1_3", "-brief"], { input: "", timeoutMs: 10_000 });
    assert.notEqual(r13.status, 0);
    const r12 = run("openssl", ["s_client", "-connect", `localhost:${port}`, "-tls1_2", "-brief", "-CApath", trust, "-verify_return_error"], { input: "", timeoutMs: 10_000 });
    assert.equal(r12.status, 0, r12.stderr);
  });
});

describe("myproxy-info, myproxy-get-trustroots, and the commands that store", () => {
  let proxyFile: string;
  before(() => {
    const r = logon();
    assert.equal(r.status, 0, r.stderr);
    proxyFile = r.out;
  });

  test("myproxy-info with the person's proxy: owner, time left, maximum retrieval lifetime", () => {
    const r = run("myproxy-info", ["-s", "localhost", "-p", String(port), "-d"], { env: { X509_CERT_DIR: trust, X509_USER_PROXY: proxyFile, HOME: work }, timeoutMs: 30_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`owner: ${dn.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(r.stdout, /timeleft: \d+:\d\d:\d\d/);
    assert.match(r.stdout, /maximum retrieval lifetime 277:46:40 \(1000000 s\)|maximum retrieval lifetime \d+:\d\d:\d\d/);
  });

  test("myproxy-info about somebody else, or without a chain from this CA, is refused and audited", async () => {
    const before = await db.auditEvent.count({ where: { action: "myproxy.refuse" } });
    const other = run("myproxy-info", ["-s", "localhost", "-p", String(port), "-l", "/DC=org/CN=Somebody Else"], { env: { X509_CERT_DIR: trust, X509_USER_PROXY: proxyFile, HOME: work }, timeoutMs: 30_000 });
    assert.notEqual(other.status, 0);
    assert.match(other.stderr + other.stdout, /only ask about yourself/);
    const self = path.join(work, "selfsigned.pem");
    const mk = run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/DC=org/CN=Mallory", "-days", "1", "-keyout", self, "-out", `${self}.crt`]);
    assert.equal(mk.status, 0, mk.stderr);
    fs.writeFileSync(self, fs.readFileSync(`${self}.crt`, "utf8") + fs.readFileSync(self, "utf8"), { mode: 0o600 });
    const forged = run("myproxy-info", ["-s", "localhost", "-p", String(port), "-l", "/DC=org/CN=Mallory"], { env: { X509_CERT_DIR: trust, X509_USER_PROXY: self, HOME: work }, timeoutMs: 30_000 });
    assert.notEqual(forged.status, 0);
    assert.match(forged.stderr + forged.stdout, /not issued by this portal's CA/);
    assert.equal(await db.auditEvent.count({ where: { action: "myproxy.refuse" } }), before + 2);
  });

  test("myproxy-get-trustroots -b installs the trust directory into an empty X509_CERT_DIR", () => {
    const dir = path.join(work, "trustroots");
    const r = run("myproxy-get-trustroots", ["-s", "localhost", "-p", String(port), "-b"], { env: { X509_CERT_DIR: dir, HOME: work }, timeoutMs: 30_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const files = fs.readdirSync(dir).sort();
    for (const f of fs.readdirSync(trust).filter((f) => !fs.statSync(path.join(trust, f)).isDirectory())) {
      assert.ok(files.includes(f), `${f} missing from ${files.join(" ")}`);
      assert.equal(fs.readFileSync(path.join(dir, f), "utf8"), fs.readFileSync(path.join(trust, f), "utf8"));
    }
  });

  test("myproxy-store (STORE; PUT and DESTROY likewise): a clear error pointing to the consent page", () => {
    const r = run("myproxy-store", ["-s", "localhost", "-p", String(port), "-l", dn, "-c", proxyFile, "-y", proxyFile], { env: { X509_CERT_DIR: trust, X509_USER_PROXY: proxyFile, HOME: work }, timeoutMs: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /stores no credentials/);
    assert.match(r.stderr + r.stdout, new RegExp(`${portal.url}/account`));
  });
});

describe("one-time retrieval codes from /account", () => {
  test("a code made on the account page works once as the passphrase, is stored only as a hash, and is audited", async () => {
    const { browser, page, csrf } = await consoleLogin(portal.url, "alice");
    assert.ok(csrf);
    assert.match(page.html, /MyProxy retrieval codes/);
    const shown = await browser.submit(page, /\/account\/myproxy-code$/, { csrf: csrf! });
    assert.equal(shown.status, 200);
    const code = /id="myproxy-code">([^<]+)</.exec(shown.html)?.[1];
    assert.ok(code?.startsWith("mpc-"), shown.html.slice(0, 2000));
    assert.equal(await db.myProxyCode.count({ where: { codeHash: code } }), 0, "never stored in clear");
    const first = logon({ passphrase: code });
    assert.equal(first.status, 0, first.stderr + first.stdout);
    assert.equal(grid(first.out).status, 0);
    const issued = await db.auditEvent.findFirst({ where: { action: "proxy.issue", details: { contains: "retrievalCode" } }, select: { actor: true, details: true } });
    assert.match(issued?.details ?? "", /"channel":"myproxy"/);
    const again = logon({ passphrase: code });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr + again.stdout, /unknown, already used or expired/);
    assert.equal(await db.auditEvent.count({ where: { action: "myproxy.code.create" } }), 1);
  });

  test("a code with somebody else's DN is refused and used up", async () => {
    const { browser, page, csrf } = await consoleLogin(portal.url, "alice");
    const shown = await browser.submit(page, /\/account\/myproxy-code$/, { csrf: csrf! });
    const code = /id="myproxy-code">([^<]+)</.exec(shown.html)![1]!;
    const other = logon({ passphrase: code, username: "/DC=org/CN=Somebody Else" });
    assert.notEqual(other.status, 0);
    assert.match(other.stderr + other.stdout, /not valid for this username/);
    const after = logon({ passphrase: code });
    assert.notEqual(after.status, 0);
  });
});
