/**
 * The issuance pipeline against a real database (SQLite by default; the test
 * script runs this file again with CERTBRIDGE_TEST_DATABASE=postgresql://…).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startTestPortal, opensslCsr, claimsFor, certificatesOf, tempDir, run, type TestPortal } from "./helpers";
import { issueProxy } from "../lib/issuance/issueProxy";
import { identifierHash } from "../lib/issuance/identity";
import { revokeUserCertificate, publishCrl } from "../lib/ca/revocation";
import { loadCaFiles } from "../lib/ca/authority";
import { openSealedKey } from "../lib/pki/seal";
import { certificateParts } from "../lib/pki/x509";
import { pemBlocks } from "../lib/pki/der";
import { SoftwareKey } from "../lib/pki/custody";
import { subjectFromClaims, stableIdentifier } from "../lib/identity/subject";
import { CertbridgeError } from "../lib/errors";
import { storeIssuedCertificate, isUniqueViolation } from "../lib/db";

let portal: TestPortal;
let now = new Date();
const clock = () => now;
let csr: { csrPem: string; keyPem: string };

before(async () => {
  portal = await startTestPortal({ clock, keyPool: true });
  csr = opensslCsr(portal.dir);
});
after(async () => portal?.cleanup());

const userCerts = (identityId: string) =>
  portal.cb.db.certificate.findMany({ where: { identityId, kind: "user" }, orderBy: { createdAt: "asc" }, select: { id: true, serialHex: true, notAfter: true, status: true, keyEnc: true, pem: true } });
const identityOf = async (sub: string) =>
  (await portal.cb.db.identity.findUnique({ where: { identifierHash: identifierHash(stableIdentifier(claimsFor(sub))) }, select: { id: true, subject: true } }))!;

describe("identity and subject", () => {
  test("the same person twice gets the same subject and reuses the user certificate", async () => {
    const a = await issueProxy(portal.cb, { claims: claimsFor("same-person"), publicKey: csr.csrPem, actor: "test" });
    const b = await issueProxy(portal.cb, { claims: claimsFor("same-person", "Alice  Example"), publicKey: csr.csrPem, actor: "test" });
    assert.equal(a.subject.replace(/\/CN=\d+$/, ""), b.subject.replace(/\/CN=\d+$/, ""));
    assert.equal((await userCerts((await identityOf("same-person")).id)).length, 1);
  });

  test("two people with the same name get different subjects", async () => {
    const a = await issueProxy(portal.cb, { claims: claimsFor("twin-1", "Jan Novak"), publicKey: csr.csrPem, actor: "test" });
    const b = await issueProxy(portal.cb, { claims: claimsFor("twin-2", "Jan Novak"), publicKey: csr.csrPem, actor: "test" });
    assert.notEqual(a.subject.replace(/\/CN=\d+$/, ""), b.subject.replace(/\/CN=\d+$/, ""));
    assert.match(a.subject, /CN=Jan Novak [A-Za-z0-9-]{16}\/CN=\d+$/);
  });

  test("a different person whose DN is already taken gets the collision sequence 1", async () => {
    const claims = claimsFor("newcomer", "Pat Doe");
    const dn = subjectFromClaims(claims, portal.config.subject).dn;
    // Simulate a reassigned identifier: an earlier, different person holds this DN.
    await portal.cb.db.identity.create({
      data: { identifierHash: "earlier-holder", issuer: "x", sub: "y", subject: dn, displayName: "Pat Doe", organisation: "o", claims: "{}" },
    });
    const p = await issueProxy(portal.cb, { claims, publicKey: csr.csrPem, actor: "test" });
    assert.equal(p.subject.replace(/\/CN=\d+$/, ""), `${dn} 1`);
  });
});

describe("user certificate custody and renewal", () => {
  test("the user key is stored sealed, opens only with the KEK and its own record, and matches the certificate", async () => {
    await issueProxy(portal.cb, { claims: claimsFor("sealed"), publicKey: csr.csrPem, actor: "test" });
    const [row] = await userCerts((await identityOf("sealed")).id);
    assert.ok(row?.keyEnc);
    assert.doesNotMatch(row.keyEnc, /PRIVATE KEY/);
    const pkcs8 = openSealedKey(portal.cb.config.kek, row.keyEnc, `certbridge:user-key:${row.id}`);
    // Not the key in any spelling (a fixed pattern like "MII" would also match random ciphertext now and then).
    for (const spelling of [Buffer.from(pkcs8).toString("base64"), Buffer.from(pkcs8).toString("base64url"), Buffer.from(pkcs8).toString("hex")]) {
      assert.ok(!row.keyEnc.includes(spelling.slice(40, 80)), "the sealed key contains no run of the key's own encoding");
    }
    const key = SoftwareKey.fromPkcs8(pkcs8);
    assert.deepEqual(key.publicKeySpki, certificateParts(pemBlocks(row.pem)[0]!.der).spki);
    assert.throws(() => openSealedKey(crypto.randomBytes(32), row.keyEnc!, `certbridge:user-key:${row.id}`), /does not open/);
    assert.throws(() => openSealedKey(portal.cb.config.kek, row.keyEnc!, "certbridge:user-key:other-row"), /does not open/);
    // and the generic select never returns it
    const listed = await portal.cb.db.certificate.findMany({ where: { id: row.id }, select: { id: true } });
    assert.equal(listed.length, 1);
  });

  test("the user certificate is re-issued when it nears expiry, and proxies then chain to the new one", async () => {
    const start = now;
    try {
      const first = await issueProxy(portal.cb, { claims: claimsFor("renewer"), publicKey: csr.csrPem, actor: "test" });
      const id = (await identityOf("renewer")).id;
      const [c1] = await userCerts(id);
      assert.equal(c1!.notAfter.getTime() - start.getTime() > 10 * 86400_000, true, "11-day default lifetime");
      // 10 days later, a 2-day proxy would outlive the certificate: a new one is made.
      now = new Date(start.getTime() + 10 * 86400_000);
      const second = await issueProxy(portal.cb, { claims: claimsFor("renewer"), publicKey: csr.csrPem, lifetimeSeconds: 2 * 86400, actor: "test" });
      const certs = await userCerts(id);
      assert.equal(certs.length, 2);
      assert.notEqual(certificatesOf(first.pem)[1], certificatesOf(second.pem)[1]);
      assert.equal(certificatesOf(second.pem)[1], certs[1]!.pem);
      assert.equal(second.lifetime.seconds, 2 * 86400);
    } finally {
      now = start;
    }
  });
});

describe("lifetime policy", () => {
  test("default 12 h; requests above the maximum are clamped and reported; notBefore back-dated 5 min", async () => {
    const d = await issueProxy(portal.cb, { claims: claimsFor("lifetimes"), publicKey: csr.csrPem, actor: "test" });
    assert.equal(d.notAfter.getTime() - Math.floor(now.getTime() / 1000) * 1000, 12 * 3600_000);
    assert.equal(Math.floor(now.getTime() / 1000) * 1000 - d.notBefore.getTime(), 300_000);
    const big = await issueProxy(portal.cb, { claims: claimsFor("lifetimes"), publicKey: csr.csrPem, lifetimeSeconds: 30 * 86400, actor: "test" });
    assert.deepEqual(big.lifetime, { seconds: 10 * 86400, clamped: true, cappedBy: "global" });
    const client = await issueProxy(portal.cb, { claims: claimsFor("lifetimes"), publicKey: csr.csrPem, lifetimeSeconds: 86400, client: { id: "gw", maxLifetimeSeconds: 3600 }, actor: "test" });
    assert.deepEqual(client.lifetime, { seconds: 3600, clamped: true, cappedBy: "client" });
  });
});

describe("refusals change nothing but the audit trail", () => {
  test("a CSR with a 1024-bit key is refused with invalid_csr, audited, and stores no certificate", async () => {
    const weak = opensslCsr(portal.dir, "weak", 1024);
    const before = await portal.cb.db.certificate.count();
    await assert.rejects(
      issueProxy(portal.cb, { claims: claimsFor("weakling"), publicKey: weak.csrPem, actor: "test", ip: "192.0.2.7" }),
      (e: unknown) => e instanceof CertbridgeError && e.code === "invalid_csr" && /1024 bits/.test(e.message),
    );
    assert.equal(await portal.cb.db.certificate.count(), before);
    const refusal = await portal.cb.db.auditEvent.findFirst({ where: { action: "proxy.refuse" }, orderBy: { at: "desc" }, select: { outcome: true, ip: true, details: true } });
    assert.equal(refusal?.outcome, "refused");
    assert.equal(refusal?.ip, "192.0.2.7");
    assert.match(refusal!.details, /1024 bits/);
  });

  test("claims without a subject are refused before anything is created", async () => {
    const identities = await portal.cb.db.identity.count();
    await assert.rejects(issueProxy(portal.cb, { claims: { iss: "https://idp.example.org/oidc", sub: "" }, actor: "test" }), /missing claim: sub/);
    assert.equal(await portal.cb.db.identity.count(), identities);
  });
});

describe("concurrency", () => {
  test("40 concurrent proxies for a new person: one identity, one user certificate, 40 distinct serials, every issuance audited", async () => {
    const claims = claimsFor("burst", "Burst User");
    const results = await Promise.all(Array.from({ length: 40 }, () => issueProxy(portal.cb, { claims, publicKey: csr.csrPem, actor: "test" })));
    assert.equal(new Set(results.map((r) => r.serial)).size, 40);
    const id = (await identityOf("burst")).id;
    assert.equal((await userCerts(id)).length, 1);
    assert.equal(await portal.cb.db.certificate.count({ where: { identityId: id, kind: "proxy" } }), 40);
    assert.equal(await portal.cb.db.auditEvent.count({ where: { identityId: id, action: "proxy.issue" } }), 40);
    assert.equal(await portal.cb.db.auditEvent.count({ where: { identityId: id, action: "certificate.issue" } }), 1);
  });

  test("the database refuses a repeated serial under the same issuer", async () => {
    const id = (await identityOf("burst")).id;
    const row = { kind: "proxy" as const, serialHex: "abc", serialDec: "2748", subject: "s", issuer: "/CN=dup-test", identityId: id, notBefore: now, notAfter: now, pem: "x", keySource: "csr" as const, keyBits: 2048 };
    await storeIssuedCertificate(portal.cb.db, row, { action: "test", actor: "test" });
    const dup = await storeIssuedCertificate(portal.cb.db, row, { action: "test", actor: "test" }).catch((e: unknown) => e);
    assert.ok(isUniqueViolation(dup), String(dup));
  });
});

describe("revocation", () => {
  test("a revoked user certificate is listed in the next CRL and never signs again", async () => {
    const p = await issueProxy(portal.cb, { claims: claimsFor("revokee"), publicKey: csr.csrPem, actor: "test" });
    const id = (await identityOf("revokee")).id;
    const [c] = await userCerts(id);
    await revokeUserCertificate(portal.cb, { id: c!.id }, "keyCompromise", { actor: "test", comment: "test" });
    await assert.rejects(revokeUserCertificate(portal.cb, { id: c!.id }, "keyCompromise", { actor: "test", comment: "again" }), /already revoked/);
    const crl = await publishCrl(portal.cb);
    const again = await publishCrl(portal.cb);
    assert.equal(again.number, crl.number + 1, "CRL numbers increase");
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, "crl.der"), crl.der);
    const printed = run("openssl", ["crl", "-inform", "DER", "-in", path.join(dir, "crl.der"), "-noout", "-text"]);
    assert.match(printed.stdout.replace(/\s/g, ""), new RegExp(`SerialNumber:${c!.serialHex.toUpperCase()}`));
    const next = await issueProxy(portal.cb, { claims: claimsFor("revokee"), publicKey: csr.csrPem, actor: "test" });
    assert.notEqual(certificatesOf(next.pem)[1], certificatesOf(p.pem)[1], "a fresh user certificate signs from now on");
    const audit = await portal.cb.db.auditEvent.findFirst({ where: { action: "certificate.revoke", certificateId: c!.id }, select: { details: true } });
    assert.match(audit!.details, /keyCompromise/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("operator-supplied CA", () => {
  const dir = tempDir();
  const key = path.join(dir, "ca.key");
  const cert = path.join(dir, "ca.pem");
  before(() => {
    run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-aes-256-cbc", "-pass", "pass:operator-secret", "-out", key]);
    const r = run("openssl", ["req", "-x509", "-new", "-key", key, "-passin", "pass:operator-secret", "-subj", "/DC=org/DC=operator/CN=Operator CA", "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", cert]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => fs.rmSync(dir, { recursive: true }));

  test("an encrypted PKCS#8 key with its passphrase loads", () => {
    const ca = loadCaFiles({ certFile: cert, keyFile: key, keyPassphrase: "operator-secret" });
    assert.equal(ca.subject, "/DC=org/DC=operator/CN=Operator CA");
    assert.equal(ca.custody.bits, 3072);
  });
  test("a wrong passphrase, a foreign key and a non-CA certificate each give a clear error", () => {
    assert.throws(() => loadCaFiles({ certFile: cert, keyFile: key, keyPassphrase: "wrong" }), /wrong CERTBRIDGE_CA_KEY_PASSPHRASE/);
    const other = path.join(dir, "other.key");
    run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other]);
    assert.throws(() => loadCaFiles({ certFile: cert, keyFile: other, keyPassphrase: "" }), /does not belong to the certificate/);
    const leaf = path.join(dir, "leaf.pem");
    run("openssl", ["req", "-x509", "-new", "-key", other, "-subj", "/CN=leaf", "-addext", "basicConstraints=critical,CA:FALSE", "-out", leaf]);
    assert.throws(() => loadCaFiles({ certFile: leaf, keyFile: other, keyPassphrase: "" }), /not a CA certificate/);
    assert.throws(() => loadCaFiles({ certFile: path.join(dir, "missing.pem"), keyFile: other, keyPassphrase: "" }), /cannot read the CA files/);
  });
});
