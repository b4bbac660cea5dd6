/**
 * Interoperability with the grid world's own tools (Debian's openssl,
 * globus-proxy-utils, voms-clients): the proxies this CA makes must be
 * accepted by every one of them, from the exported trust directory alone.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startTestPortal, opensslCsr, assembleProxyFile, claimsFor, run, proxyLeafFile, opensslVerifyProxy, globusVerifyProxy, type TestPortal } from "./helpers";
import { issueProxy } from "../lib/issuance/issueProxy";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { revokeUserCertificate } from "../lib/ca/revocation";
import { writeFileAtomic } from "../lib/files";

let portal: TestPortal;
let trust: string;
let work: string;
let csrProxy: string;
let serverProxy: string;

const leafOf = (file: string) => proxyLeafFile(file, work);
const opensslVerify = (file: string, extra: string[] = []) => opensslVerifyProxy(file, trust, work, extra);
const globusVerify = (file: string, certdir = trust) => globusVerifyProxy(file, certdir, work);

before(async () => {
  portal = await startTestPortal({ keyPool: true });
  work = path.join(portal.dir, "work");
  fs.mkdirSync(work);
  trust = (await exportTrustDirectory(portal.cb, path.join(portal.dir, "certificates"))).directory;

  // (a) CSR mode: the key never leaves "the gateway"; it assembles the file itself.
  const { csrPem, keyPem } = opensslCsr(work);
  const a = await issueProxy(portal.cb, { claims: claimsFor("alice"), publicKey: csrPem, lifetimeSeconds: 3 * 3600, actor: "test" });
  csrProxy = path.join(work, "proxy-csr.pem");
  writeFileAtomic(csrProxy, assembleProxyFile(a.pem, keyPem), 0o600);

  // (b) server-made key from the pool.
  const b = await issueProxy(portal.cb, { claims: claimsFor("alice"), actor: "test" });
  serverProxy = path.join(work, "proxy-server.pem");
  writeFileAtomic(serverProxy, b.pem, 0o600);
});

after(async () => portal?.cleanup());

describe("proxy files are accepted by grid tools", () => {
  for (const [mode, file] of [["CSR", () => csrProxy], ["server key", () => serverProxy]] as const) {
    test(`${mode}: openssl verify -allow_proxy_certs against the trust directory`, () => {
      const r = opensslVerify(file());
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /: OK/);
      // Without the proxy flag OpenSSL must refuse: proves it saw an RFC 3820 proxy.
      const strict = run("openssl", ["verify", "-CApath", trust, "-untrusted", file(), leafOf(file())]);
      assert.notEqual(strict.status, 0);
      assert.match(strict.stderr + strict.stdout, /proxy certificates not allowed/);
    });

    test(`${mode}: grid-proxy-info reports an RFC 3820 impersonation proxy`, () => {
      const r = run("grid-proxy-info", ["-f", file(), "-all"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /type\s+: RFC 3820 compliant impersonation proxy/);
      assert.match(r.stdout, /strength\s+: 2048 bits/);
      assert.match(r.stdout, /identity\s+: \/DC=org\/DC=certbridge-test\/DC=users\/O=Example University\/CN=Alice Example [A-Za-z0-9-]{16}\n/);
    });

    test(`${mode}: grid-proxy-init -verify (Globus GSI, signing_policy) derives a further proxy`, () => {
      const r = globusVerify(file());
      assert.equal(r.status, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /Proxy Verify OK/);
      const derived = run("grid-proxy-info", ["-f", r.derived, "-all"]);
      assert.equal(derived.status, 0, derived.stderr);
      assert.match(derived.stdout, /RFC 3820 compliant impersonation proxy/);
    });

    test(`${mode}: VOMS-C chain check (voms-verify)`, () => {
      const r = run("voms-verify", [], { env: { X509_USER_CERT: file(), X509_CERT_DIR: trust } });
      assert.match(r.stdout + r.stderr, /Certificate chain verified succesfully/);
    });
  }

  test("Globus refuses the CA without its signing_policy (why the bundle ships one)", () => {
    const bare = path.join(work, "bare-certificates");
    fs.mkdirSync(bare);
    for (const f of fs.readdirSync(trust, { withFileTypes: true })) {
      if (f.isFile() && !f.name.endsWith(".signing_policy")) fs.copyFileSync(path.join(trust, f.name), path.join(bare, f.name));
    }
    const r = globusVerify(serverProxy, bare);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /Couldn't verify the authenticity/);
    assert.equal(globusVerify(serverProxy).status, 0, "the same proxy passes with the full bundle");
  });

  test("Globus refuses a proxy file that others can read", () => {
    const loose = path.join(work, "loose.pem");
    fs.copyFileSync(serverProxy, loose);
    fs.chmodSync(loose, 0o644);
    const r = globusVerify(loose);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /permissions/i);
  });

  test("a proxy from another CA is rejected by the same trust directory", async () => {
    const other = await startTestPortal();
    try {
      const p = await issueProxy(other.cb, { claims: claimsFor("alice"), actor: "test" });
      const file = path.join(work, "foreign.pem");
      writeFileAtomic(file, p.pem, 0o600);
      const r = opensslVerify(file);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr + r.stdout, /unable to get (local )?issuer certificate/);
    } finally {
      await other.cleanup();
    }
  });
});

describe("revocation reaches relying parties through the CRL", () => {
  test("after revoking the user certificate, the exported CRL makes OpenSSL and Globus refuse its proxies", async () => {
    const p = await issueProxy(portal.cb, { claims: claimsFor("carol", "Carol Revoked"), actor: "test" });
    const file = path.join(work, "carol.pem");
    writeFileAtomic(file, p.pem, 0o600);
    const dir = (await exportTrustDirectory(portal.cb, path.join(portal.dir, "certs-before"))).directory;
    // -crl_check_all, not -crl_check: the latter checks depth 0 only, which is the proxy;
    // the revocable certificate is the user certificate at depth 1.
    assert.equal(run("openssl", ["verify", "-allow_proxy_certs", "-crl_check_all", "-CApath", dir, "-untrusted", file, leafOf(file)]).status, 0);

    const userSerial = (await portal.cb.db.certificate.findFirst({ where: { kind: "user", subject: p.subject.replace(/\/CN=\d+$/, "") }, select: { serialHex: true } }))!.serialHex;
    await revokeUserCertificate(portal.cb, { serialHex: userSerial }, "keyCompromise", { actor: "test", comment: "laptop stolen" });
    const after = (await exportTrustDirectory(portal.cb, path.join(portal.dir, "certs-after"))).directory;
    const r = run("openssl", ["verify", "-allow_proxy_certs", "-crl_check_all", "-CApath", after, "-untrusted", file, leafOf(file)]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /certificate revoked/);
    const crlText = run("openssl", ["crl", "-in", fs.readdirSync(after).map((f) => path.join(after, f)).find((f) => f.endsWith(".r0"))!, "-noout", "-text"]);
    assert.match(crlText.stdout.replace(/\s/g, ""), new RegExp(`SerialNumber:${userSerial.toUpperCase()}`));
    assert.match(crlText.stdout, /Key Compromise/);
    const g = globusVerify(file, after);
    assert.notEqual(g.status, 0, "Globus must refuse a proxy whose user certificate is on the CRL");
    assert.equal(globusVerify(file, dir).status, 0, "...and accepted it with the CRL from before the revocation");
  });
});
