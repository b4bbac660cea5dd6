/**
 * MyProxy renewal by a VO box, end to end with Debian's stock clients: the renewer's host
 * certificate and CA are made here with `openssl ca` (with a CRL that revokes an older host
 * certificate), its proxy with grid-proxy-init; the administrator registers it with the CLI, the
 * person consents on /account, and the VO box runs
 * `myproxy-logon -a <host proxy> -l "<DN>" -m biomed -t 48`. The proxy is checked with
 * voms-proxy-info and VOMS-C's strict validation. Refusals (unregistered, untrusted, revoked or
 * expired renewer credentials; revoked or ended consents) arrive as MyProxy error text.
 * The ended consent runs in-process with an injected clock.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { openDatabase, addRenewalConsent, type Db } from "../lib/db";
import { loadConfig } from "../lib/config";
import { decodeCertificate } from "../lib/inspect/certificate";
import { pemBlocks } from "../lib/pki/der";
import { takeAuthorizationAnswer, parseAuthorizationAnswer, startMyProxyServer, type MyProxyService } from "../lib/myproxy/server";
import { registerRenewer } from "../lib/myproxy/renewers";
import { myproxyToken } from "../lib/authority/provisioners/myproxyToken";
import { myproxyRenewer } from "../lib/authority/provisioners/myproxyRenewer";
import { createProvider } from "../lib/oidc/provider";
import { issueProxy } from "../lib/issuance/issueProxy";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { run, tempDir, ROOT, startTestPortal, claimsFor, type TestPortal } from "./helpers";
import { startPortalServer, freePort, loginThroughPortal, redeem, consoleLogin, type PortalServer } from "./portalHarness";

const HOST_DN = "/DC=org/DC=vobox-test/OU=computers/CN=vobox.example.org";
const OTHER_HOST_DN = "/DC=org/DC=vobox-test/OU=computers/CN=unregistered.example.org";

/** A renewer CA with `openssl ca`: host certificates, one revoked (in the CRL), one expired, and an impostor CA. */
function makeRenewerPki(dir: string) {
  const ca = path.join(dir, "ca");
  fs.mkdirSync(ca, { recursive: true });
  fs.writeFileSync(path.join(ca, "index.txt"), "");
  fs.writeFileSync(path.join(ca, "serial"), "1000\n");
  fs.writeFileSync(path.join(ca, "crlnumber"), "1000\n");
  const cnf = path.join(dir, "ca.cnf");
  fs.writeFileSync(
    cnf,
    `[ ca ]
default_ca = test
[ test ]
dir = ${ca}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 7
policy = any
unique_subject = no
copy_extensions = none
[ any ]
domainComponent = optional
organizationalUnitName = optional
commonName = supplied
[ host ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
`,
  );
  const ok = (r: ReturnType<typeof run>) => {
    assert.equal(r.status, 0, r.stderr + r.stdout);
    return r;
  };
  const caSubject = "/DC=org/DC=vobox-test/CN=VO Box Test CA";
  const selfSigned = (subject: string, keyOut: string, out: string) =>
    ok(run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-days", "30", "-keyout", keyOut, "-out", out, "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
  selfSigned(caSubject, path.join(ca, "ca.key"), path.join(ca, "ca.pem"));
  const host = (name: string, subject: string, extra: string[] = [], config = cnf) => {
    const key = path.join(dir, `${name}.key`);
    ok(run("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", key, "-out", path.join(dir, `${name}.csr`)]));
    ok(run("openssl", ["ca", "-batch", "-config", config, "-extensions", "host", "-in", path.join(dir, `${name}.csr`), "-out", path.join(dir, `${name}.pem`), "-notext", ...extra]));
    fs.chmodSync(key, 0o600);
    return { cert: path.join(dir, `${name}.pem`), key };
  };
  const good = host("host", HOST_DN);
  const revoked = host("host-old", HOST_DN);
  const expired = host("host-expired", HOST_DN, ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]);
  const unregistered = host("other", OTHER_HOST_DN);
  ok(run("openssl", ["ca", "-batch", "-config", cnf, "-revoke", revoked.cert, "-crl_reason", "keyCompromise"]));
  const crl = path.join(dir, "ca.crl.pem");
  ok(run("openssl", ["ca", "-batch", "-config", cnf, "-gencrl", "-out", crl]));
  // An impostor: another CA with the same name issues a certificate for the registered host DN.
  const evil = path.join(dir, "evil");
  fs.mkdirSync(evil);
  fs.writeFileSync(path.join(evil, "index.txt"), "");
  fs.writeFileSync(path.join(evil, "serial"), "2000\n");
  fs.writeFileSync(path.join(evil, "crlnumber"), "2000\n");
  const evilCnf = path.join(dir, "evil.cnf");
  fs.writeFileSync(evilCnf, fs.readFileSync(cnf, "utf8").replace(`dir = ${ca}`, `dir = ${evil}`));
  selfSigned(caSubject, path.join(evil, "ca.key"), path.join(evil, "ca.pem"));
  const impostor = host("impostor", HOST_DN, [], evilCnf);
  // grid-proxy-init wants the issuer in X509_CERT_DIR with a signing_policy.
  const certs = path.join(dir, "certs");
  fs.mkdirSync(certs);
  for (const [c, name] of [[path.join(ca, "ca.pem"), caSubject]] as const) {
    const hash = run("openssl", ["x509", "-hash", "-noout", "-in", c]).stdout.trim();
    fs.copyFileSync(c, path.join(certs, `${hash}.0`));
    fs.writeFileSync(path.join(certs, `${hash}.signing_policy`), `access_id_CA X509 '${name}'\npos_rights globus CA:sign\ncond_subjects globus '"/DC=org/DC=vobox-test/*"'\n`);
  }
  /** An RFC 3820 proxy of a host credential, as a VO box makes one (grid-proxy-init). */
  const proxyOf = (c: { cert: string; key: string }, name: string) => {
    const out = path.join(dir, `${name}.proxy.pem`);
    ok(run("grid-proxy-init", ["-cert", c.cert, "-key", c.key, "-out", out, "-valid", "24:00", "-bits", "2048"], { env: { X509_CERT_DIR: certs } }));
    return out;
  };
  /** The host certificate and key in one file (what -a reads when it is not a proxy). */
  const asFile = (c: { cert: string; key: string }, name: string) => {
    const out = path.join(dir, `${name}.cred.pem`);
    fs.writeFileSync(out, fs.readFileSync(c.cert, "utf8") + fs.readFileSync(c.key, "utf8"), { mode: 0o600 });
    return out;
  };
  return { caDir: ca, caPem: path.join(ca, "ca.pem"), crl, good, revoked, expired, unregistered, impostor, proxyOf, asFile };
}

function compileValidator(work: string) {
  const validator = path.join(work, "voms-validate");
  execFileSync("g++", ["-O1", "-o", validator, path.join(ROOT, "test/tools/voms-validate.cc"), "-lvomsapi", "-lssl", "-lcrypto"], { stdio: "pipe" });
  return validator;
}

describe("MyProxy renewal by a registered VO box (production server entry)", () => {
  let portal: PortalServer;
  let db: Db;
  let port: number;
  let trust: string;
  let work: string;
  let dn: string;
  let accountName: string;
  let token: string;
  let pki: ReturnType<typeof makeRenewerPki>;
  let hostProxy: string;
  let browserLogin: Awaited<ReturnType<typeof consoleLogin>>;

  const cli = (args: string[]) => run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), ...args], { env: portal.env });

  function renew(args: { cred: string; username?: string; voms?: string; hours?: string; extra?: string[] }) {
    const out = path.join(work, `renewed-${Math.random().toString(36).slice(2)}.pem`);
    const r = run(
      "myproxy-logon",
      ["-s", "localhost", "-p", String(port), "-a", args.cred, "-l", args.username ?? dn, ...(args.voms === "" ? [] : ["-m", args.voms ?? "biomed"]), "-t", args.hours ?? "48", "-o", out, ...(args.extra ?? [])],
      { env: { X509_CERT_DIR: trust, HOME: work }, timeoutMs: 30_000 },
    );
    return { ...r, text: r.stderr + r.stdout, out, pem: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
  }
  const vomsEnv = () => ({ X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") });
  const refusals = () => db.auditEvent.count({ where: { action: "proxy.refuse", details: { contains: '"renewer"' } } });

  async function consent(fields: { vo: string; until: string }) {
    const { browser, csrf } = browserLogin;
    const page = await browser.go(`${portal.url}/account`);
    const renewerId = /<option value="([^"]+)">vobox\.example\.org/.exec(page.html)?.[1];
    assert.ok(renewerId, "the registered renewer is offered on /account");
    return browser.submit(page, /\/account\/myproxy-renewals$/, { csrf: csrf!, renewer: renewerId, vo: fields.vo, until: fields.until });
  }
  const daysAhead = (n: number) => new Date(Date.now() + n * 86400_000).toISOString().slice(0, 10);

  before(async () => {
    work = tempDir("certbridge-renewal-");
    port = await freePort();
    portal = await startPortalServer({ CERTBRIDGE_MYPROXY_PORT: String(port) });
    db = await openDatabase(loadConfig(portal.env, () => {}).databaseUrl);
    trust = path.join(portal.dir, "trust");
    const bundle = cli(["ca", "bundle", "--out", trust]);
    assert.equal(bundle.status, 0, bundle.stderr);
    token = (await redeem(await loginThroughPortal(portal.url))).access_token;
    const info = await fetch(`${portal.url}/getproxy?info=1`, { headers: { authorization: `Bearer ${token}` } });
    dn = ((await info.json()) as { username: string }).username;
    pki = makeRenewerPki(path.join(work, "pki"));
    hostProxy = pki.proxyOf(pki.good, "host");
    const reg = cli(["renewer", "add", "--subject", HOST_DN, "--ca", pki.caPem, "--crl", pki.crl, "--label", "vobox.example.org"]);
    assert.equal(reg.status, 0, reg.stderr);
    assert.match(reg.stdout, /registered renewer \/DC=org\/DC=vobox-test\/OU=computers\/CN=vobox\.example\.org/);
    assert.match(reg.stdout, /CRL of \/DC=org\/DC=vobox-test\/CN=VO Box Test CA/);
    browserLogin = await consoleLogin(portal.url, "alice");
    accountName = (await db.identity.findUniqueOrThrow({ where: { subject: dn }, select: { id: true } })).id;
  });
  after(async () => {
    await db?.$disconnect();
    await portal?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("without the person's consent, a registered renewer is refused with MyProxy's error text, and audited", async () => {
    const before = await refusals();
    const r = renew({ cred: hostProxy });
    assert.notEqual(r.status, 0);
    assert.match(r.text, /ERROR from myproxy-server/);
    assert.match(r.text, /has not consented to renewal by \/DC=org\/DC=vobox-test\/OU=computers\/CN=vobox\.example\.org for biomed/);
    assert.equal(r.pem, "");
    assert.equal(await refusals(), before + 1);
  });

  test("the person consents on /account (audited); the renewal consent form refuses a VO they are not in and a date out of range", async () => {
    const bad = await consent({ vo: "atlas", until: daysAhead(30) });
    assert.match(bad.html, /not a member of VO atlas|not a VO this portal serves/);
    const far = await consent({ vo: "biomed", until: daysAhead(900) });
    assert.match(far.html, /at most 395 days/);
    const okPage = await consent({ vo: "biomed", until: daysAhead(30) });
    assert.match(okPage.html, /may now renew your proxies for biomed/);
    assert.match(okPage.html, /MyProxy renewal by VO boxes[\s\S]*vobox\.example\.org[\s\S]*biomed/);
    assert.equal(await db.auditEvent.count({ where: { action: "myproxy.renewal.consent", identityId: accountName } }), 1);
  });

  test("VO-box renewal: myproxy-logon -a <host proxy> -l DN -m biomed -t 48 gives a 48 h VOMS proxy (voms-proxy-info, VOMS-C strict, Globus)", async () => {
    const r = renew({ cred: hostProxy });
    assert.equal(r.status, 0, r.text);
    const certs = pemBlocks(r.pem).filter((b) => b.label === "CERTIFICATE");
    const proxy = decodeCertificate(certs[0]!.der);
    assert.equal(proxy.issuer, dn);
    const seconds = (proxy.notAfter.getTime() - proxy.notBefore.getTime()) / 1000;
    assert.ok(seconds >= 48 * 3600 && seconds <= 48 * 3600 + 600, `lifetime ${seconds} s, wanted 48 h`);
    const info = run("voms-proxy-info2", ["-all", "-file", r.out], { env: vomsEnv() });
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /=== VO biomed extension information ===/);
    assert.deepEqual([...info.stdout.matchAll(/^attribute : (.*)$/gm)].map((m) => m[1]), ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"], "groups only: no role unless asked for");
    assert.match(info.stdout, /timeleft\s+: 4[78]:\d\d:\d\d/);
    const strict = run(compileValidator(work), [r.out], { env: vomsEnv() });
    assert.equal(strict.status, 0, strict.stdout + strict.stderr);
    assert.equal(strict.stdout.trim().split("\n")[0], "VO biomed");
    const g = run("grid-proxy-init", ["-verify", "-cert", r.out, "-key", r.out, "-certdir", trust, "-valid", "0:05", "-out", `${r.out}.derived`]);
    assert.equal(g.status, 0, g.stderr + g.stdout);
    const issued = await db.auditEvent.findFirst({ where: { action: "proxy.issue", details: { contains: '"renewer"' } }, select: { actor: true, details: true } });
    assert.equal(issued?.actor, `renewer:${HOST_DN}`);
    assert.match(issued!.details, /"channel":"myproxy"/);
  });

  test("the renewer may authenticate with its host certificate itself, and name the person by account name", () => {
    const r = renew({ cred: pki.asFile(pki.good, "host"), username: accountName, hours: "12" });
    assert.equal(r.status, 0, r.text);
    assert.equal(decodeCertificate(pemBlocks(r.pem)[0]!.der).issuer, dn);
  });

  test("classic MyProxy renewal: the VO box is the TLS client (host certificate), -a is the person's current proxy", async () => {
    const current = path.join(work, "current.pem");
    const got = run("myproxy-logon", ["-s", "localhost", "-p", String(port), "-l", dn, "-S", "-t", "1", "-o", current], { input: `${token}\n`, env: { X509_CERT_DIR: trust, HOME: work }, timeoutMs: 30_000 });
    assert.equal(got.status, 0, got.stderr + got.stdout);
    const out = path.join(work, "classic.pem");
    const hostEnv = { X509_CERT_DIR: trust, HOME: work, X509_USER_CERT: pki.good.cert, X509_USER_KEY: pki.good.key };
    const r = run("myproxy-logon", ["-s", "localhost", "-p", String(port), "-a", current, "-l", dn, "-m", "biomed", "-t", "24", "-o", out], { env: hostEnv, timeoutMs: 30_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const proxy = decodeCertificate(pemBlocks(fs.readFileSync(out, "utf8"))[0]!.der);
    assert.equal(proxy.issuer, dn);
    assert.ok(proxy.notAfter.getTime() - proxy.notBefore.getTime() >= 24 * 3600_000);
    const audit = await db.auditEvent.findFirst({ where: { action: "proxy.issue", details: { contains: "renewedProxyOf" } }, select: { actor: true } });
    assert.equal(audit?.actor, `renewer:${HOST_DN}`);
    // The same without the host credential: the -a proxy's owner is no renewer.
    const anonymous = run("myproxy-logon", ["-s", "localhost", "-p", String(port), "-a", current, "-l", dn, "-m", "biomed", "-o", `${out}.2`], { env: { X509_CERT_DIR: trust, HOME: work }, timeoutMs: 30_000 });
    assert.notEqual(anonymous.status, 0);
    assert.match(anonymous.stderr + anonymous.stdout, /Alice Example .* is not a registered renewer/);
  });

  test("a role the consent does not cover, or no VO at all, is refused", () => {
    const role = renew({ cred: hostProxy, voms: "biomed:/biomed/Role=pilot" });
    assert.notEqual(role.status, 0);
    assert.match(role.text, /has not consented to renewal by .* for \/biomed\/Role=pilot\/Capability=NULL/);
    const none = renew({ cred: hostProxy, voms: "" });
    assert.notEqual(none.status, 0);
    assert.match(none.text, /renewal is for one VO/);
  });

  test("an unregistered renewer, a revoked, an expired and an impostor's host certificate are refused with MyProxy's error text, and audited", async () => {
    const before = await refusals();
    const unregistered = renew({ cred: pki.proxyOf(pki.unregistered, "other") });
    assert.notEqual(unregistered.status, 0);
    assert.match(unregistered.text, /unregistered\.example\.org is not a registered renewer/);
    const revoked = renew({ cred: pki.proxyOf(pki.revoked, "host-old") });
    assert.notEqual(revoked.status, 0);
    assert.match(revoked.text, /renewer's certificate chain is not acceptable: .*vobox\.example\.org \(serial [0-9a-f]+\) is revoked by \/DC=org\/DC=vobox-test\/CN=VO Box Test CA/);
    const expired = renew({ cred: pki.asFile(pki.expired, "host-expired") });
    assert.notEqual(expired.status, 0);
    assert.match(expired.text, /not valid now \(expired\)/);
    const impostor = renew({ cred: pki.asFile(pki.impostor, "impostor") });
    assert.notEqual(impostor.status, 0);
    assert.match(impostor.text, /is not issued by a CA registered for this renewer/);
    for (const r of [unregistered, revoked, expired, impostor]) assert.equal(r.pem, "");
    assert.equal(await refusals(), before + 4);
  });

  test("an empty passphrase without -a is told how renewal works", () => {
    const r = run("myproxy-logon", ["-s", "localhost", "-p", String(port), "-n", "-l", dn, "-o", path.join(work, "none.pem")], { env: { X509_CERT_DIR: trust, HOME: work }, timeoutMs: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /empty passphrase asks for renewal: give the renewer's credential with -a/);
  });

  test("myproxy-info shows the time left until the renewal consent ends, and the renewer", () => {
    const out = path.join(work, "mine.pem");
    const got = run("myproxy-logon", ["-s", "localhost", "-p", String(port), "-l", accountName, "-S", "-o", out], { input: `${token}\n`, env: { X509_CERT_DIR: trust, HOME: work }, timeoutMs: 30_000 });
    assert.equal(got.status, 0, got.stderr + got.stdout);
    const r = run("myproxy-info", ["-s", "localhost", "-p", String(port), "-d"], { env: { X509_CERT_DIR: trust, X509_USER_PROXY: out, HOME: work }, timeoutMs: 30_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const left = /timeleft: (\d+):\d\d:\d\d/.exec(r.stdout);
    assert.ok(left, r.stdout);
    const hours = Number(left[1]);
    assert.ok(hours > 29 * 24 && hours <= 31 * 24, `time left ${hours} h: until the consent's day ends`);
    assert.match(r.stdout, /vobox\.example\.org/);
  });

  test("a consent for a role: the renewal asks for it and gets it first, then the groups (the same role semantics as /getproxy)", async () => {
    const okPage = await consent({ vo: "biomed:/biomed/Role=pilot/Capability=NULL", until: daysAhead(60) });
    assert.match(okPage.html, /may now renew your proxies for \/biomed\/Role=pilot\/Capability=NULL/);
    const r = renew({ cred: hostProxy, voms: "biomed:/biomed/Role=pilot" });
    assert.equal(r.status, 0, r.text);
    const strict = run(compileValidator(work), [r.out], { env: vomsEnv() });
    assert.equal(strict.status, 0, strict.stdout + strict.stderr);
    assert.deepEqual(strict.stdout.trim().split("\n"), ["VO biomed", "FQAN /biomed/Role=pilot/Capability=NULL", "FQAN /biomed/Role=NULL/Capability=NULL", "FQAN /biomed/lab1/Role=NULL/Capability=NULL"]);
  });

  test("a revoked consent: revoked on /account (audited), the next renewal is refused with MyProxy's error text", async () => {
    const { browser } = browserLogin;
    // Both standing consents (groups; the role, which also covers a groups-only request) are revoked, one form each.
    for (let i = 0; i < 2; i++) {
      const page = await browser.go(`${portal.url}/account`);
      const revoked = await browser.submit(page, /\/account\/myproxy-renewals\/[^/"]+$/, { csrf: browserLogin.csrf! });
      assert.match(revoked.html, /Renewal consent revoked/);
    }
    assert.doesNotMatch((await browser.go(`${portal.url}/account`)).html, /\/account\/myproxy-renewals\/[^/"]+"/);
    assert.equal(await db.auditEvent.count({ where: { action: "myproxy.renewal.revoke", identityId: accountName } }), 2);
    const r = renew({ cred: hostProxy });
    assert.notEqual(r.status, 0);
    assert.match(r.text, /the person revoked their consent to renewal by .*vobox\.example\.org for biomed/);
  });

  test("the admin console's audit log shows renewals, refusals and consents under the myproxy family, with the VO box", async () => {
    const { browser } = browserLogin; // alice is an administrator in the test portal
    const consents = await browser.go(`${portal.url}/admin/audit?action=myproxy.`);
    assert.equal(consents.status, 200);
    assert.match(consents.html, /myproxy\.renewal\.consent/);
    assert.match(consents.html, /myproxy\.renewal\.revoke/);
    assert.match(consents.html, /myproxy\.renewer\.add/);
    const refusals = await browser.go(`${portal.url}/admin/audit?action=proxy.refuse`);
    assert.match(refusals.html, /VO box \(MyProxy renewer\)/);
    assert.match(refusals.html, /renewer:\/DC=org\/DC=vobox-test\/OU=computers\/CN=vobox\.example\.org/);
  });

  test("removing the renewer (CLI, audited) drops it", async () => {
    const list = cli(["renewer", "list"]);
    assert.match(list.stdout, /vobox\.example\.org/);
    const rm = cli(["renewer", "remove", HOST_DN]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.equal(await db.auditEvent.count({ where: { action: { in: ["myproxy.renewer.add", "myproxy.renewer.remove"] } } }), 2);
    const r = renew({ cred: hostProxy });
    assert.match(r.text, /is not a registered renewer/);
  });
});

describe("MyProxy renewal with an injected clock: the consent's end", () => {
  let portal: TestPortal;
  let service: MyProxyService;
  let now = new Date();
  let work: string;
  let trust: string;

  before(async () => {
    portal = await startTestPortal({ clock: () => now, env: { CERTBRIDGE_MYPROXY_PORT: "0", CERTBRIDGE_VOS_FILE: path.join(ROOT, "examples/vos.json") } });
    work = path.join(portal.dir, "work");
    fs.mkdirSync(work);
    trust = (await exportTrustDirectory(portal.cb, path.join(portal.dir, "certificates"))).directory;
    const cb = portal.cb;
    const provider = await createProvider(cb.config, cb.db);
    service = await startMyProxyServer(
      cb,
      {
        token: cb.authority.register(myproxyToken({ db: cb.db, provider, clock: cb.clock })),
        renewal: cb.authority.register(myproxyRenewer({ db: cb.db, ca: cb.ca, clock: cb.clock, accountUrl: "https://portal.example/account" })),
      },
      () => {},
    );
  });
  after(async () => {
    await service?.close();
    await portal?.cleanup();
  });

  test("a renewal two hours before the consent ends is capped at its end; after it, refused with MyProxy's error text; a stale registered CRL refuses", async () => {
    const pki = makeRenewerPki(path.join(work, "pki"));
    now = new Date(); // the host certificate was made after the portal started
    const renewer = await registerRenewer(portal.cb.db, { subject: HOST_DN, caPath: pki.caDir, crlPath: pki.crl }, { actor: "test" });
    const person = await issueProxy(portal.cb, { claims: claimsFor("renewal-alice", "Alice Example", { eduperson_entitlement: ["urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu"] }), lifetimeSeconds: 3600, actor: "test" });
    const dn = person.subject.replace(/\/CN=\d+$/, "");
    const identity = await portal.cb.db.identity.findUniqueOrThrow({ where: { subject: dn }, select: { id: true } });
    const ends = new Date(now.getTime() + 2 * 3600_000);
    await addRenewalConsent(portal.cb.db, { identityId: identity.id, renewerId: renewer.id, vo: "biomed", role: null, expiresAt: ends }, { action: "myproxy.renewal.consent", actor: "test" });
    const hostProxy = pki.proxyOf(pki.good, "host");
    // The listener runs in this process: the client must run without blocking the event loop.
    const logon = async (cred = hostProxy) => {
      const out = path.join(work, `p-${Math.random().toString(36).slice(2)}.pem`);
      const r = await new Promise<{ status: number; text: string }>((resolve) =>
        execFile("myproxy-logon", ["-s", "localhost", "-p", String(service.port), "-a", cred, "-l", dn, "-m", "biomed", "-t", "48", "-o", out], { env: { ...process.env, X509_CERT_DIR: trust, HOME: work }, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, text: stderr + stdout }),
        ),
      );
      return { ...r, pem: fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "" };
    };
    const first = await logon();
    assert.equal(first.status, 0, first.text);
    const proxy = decodeCertificate(pemBlocks(first.pem)[0]!.der);
    assert.equal(proxy.notAfter.getTime(), Math.floor(ends.getTime() / 1000) * 1000, "the proxy ends with the consent");
    now = new Date(now.getTime() + 3 * 3600_000);
    const later = await logon();
    assert.notEqual(later.status, 0);
    assert.match(later.text, /the person's consent to renewal by .*vobox\.example\.org for biomed ended at/);
    assert.match(later.text, /they can consent at https:\/\/portal\.example\/account/);
    // Eight days on, the CRL registered with the renewer (7 days) is past its nextUpdate: nothing from that CA passes until it is refreshed.
    now = new Date(now.getTime() + 8 * 86400_000);
    const stale = await logon(pki.asFile(pki.good, "host"));
    assert.notEqual(stale.status, 0);
    assert.match(stale.text, /the registered CRL of \/DC=org\/DC=vobox-test\/CN=VO Box Test CA expired at .*: ask the portal's administrator to refresh it/);
  });
});

describe("the renewal answer's wire format", () => {
  test("method word, signature length and signature, certificate count and DER certificates; incomplete input waits", () => {
    const dir = tempDir("certbridge-wire-");
    const made = run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=wire", "-days", "1", "-keyout", path.join(dir, "k.pem"), "-out", path.join(dir, "c.pem")]);
    assert.equal(made.status, 0, made.stderr);
    const cert = Buffer.from(pemBlocks(fs.readFileSync(path.join(dir, "c.pem"), "utf8"))[0]!.der);
    fs.rmSync(dir, { recursive: true, force: true });
    const sig = Buffer.alloc(256, 7);
    const head = Buffer.alloc(8);
    head[0] = 4;
    head.writeUInt32BE(sig.length, 4);
    const whole = Buffer.concat([head, sig, Buffer.of(1), cert]);
    for (const cut of [3, 8, 100, 8 + 256, 8 + 256 + 1, whole.length - 1]) assert.equal(takeAuthorizationAnswer(whole.subarray(0, cut)), null, `cut at ${cut}`);
    assert.equal(takeAuthorizationAnswer(Buffer.concat([whole, Buffer.of(9, 9)])), whole.length);
    const parsed = parseAuthorizationAnswer(whole);
    assert.equal(parsed.method, 4);
    assert.equal(parsed.signature.length, 256);
    assert.deepEqual(Buffer.from(parsed.chain[0]!), cert);
    const bad = Buffer.from(head);
    bad.writeUInt32BE(100_000, 4);
    assert.throws(() => takeAuthorizationAnswer(bad), /bad signature length/);
    // A password answer (no -a) runs to its NUL.
    assert.equal(takeAuthorizationAnswer(Buffer.from([1, 0, 0, 0, 0x61, 0])), 6);
  });
});
