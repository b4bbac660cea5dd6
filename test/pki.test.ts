/**
 * Known-answer and structure tests for the CA, user, proxy and CRL encoders,
 * with fixed keys and an injected clock: the same inputs must give the same
 * bytes, and those bytes must decode (pkijs) and verify (OpenSSL) as the
 * profiles in lib/ say.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto, { webcrypto } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { KAT_CA_KEY, KAT_USER_KEY, KAT_PROXY_KEY } from "./fixtures/katKeys";
import { tempDir, run } from "./helpers";
import { SoftwareKey } from "../lib/pki/custody";
import { authorityFrom, createCaCertificate, type CertificateAuthority } from "../lib/ca/authority";
import { buildUserCertificate } from "../lib/issuance/userCertificate";
import { buildProxyCertificate, proxySubject } from "../lib/pki/proxy";
import { certificateParts, encodeTbsCrl, keyIdentifier, signStructure, OID } from "../lib/pki/x509";
import { decodeName, formatSlashDn } from "../lib/pki/dn";
import { toPem } from "../lib/pki/der";

pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto as unknown as Crypto }));

const NOW = new Date("2026-03-01T12:00:00Z");
const sha256 = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex");
const serial = (hexByte: string, n = 20) => Uint8Array.from(Buffer.from(`4${hexByte}`.padEnd(n * 2, "a"), "hex"));

const caKey = SoftwareKey.fromPem(KAT_CA_KEY);
const userKey = SoftwareKey.fromPem(KAT_USER_KEY);
const proxyKey = SoftwareKey.fromPem(KAT_PROXY_KEY);

let ca: CertificateAuthority;
let caDer: Uint8Array;
let userDer: Uint8Array;
let proxyDer: Uint8Array;
let crlDer: Uint8Array;

const ext = (cert: pkijs.Certificate, oid: string) => cert.extensions?.find((e) => e.extnID === oid);
const parse = (d: Uint8Array) => pkijs.Certificate.fromBER(new Uint8Array(d));

before(async () => {
  caDer = await createCaCertificate(caKey, { subject: "/DC=org/DC=kat/CN=KAT CA", keyBits: 3072, lifetimeSeconds: 3650 * 86400 }, NOW, serial("1"));
  ca = authorityFrom(certificateParts(caDer), toPem("CERTIFICATE", caDer), caKey);
  userDer = await buildUserCertificate(ca, {
    subject: "/DC=org/DC=kat/DC=users/O=KAT University/CN=Zoe Lukasiewicz 0VnvYk7YZpe08fP-",
    spki: userKey.publicKeySpki,
    notBefore: new Date(NOW.getTime() - 300_000),
    notAfter: new Date(NOW.getTime() + 11 * 86400_000),
    policyOid: "1.2.3.4.5",
    crlUrl: "https://portal.example.org/ca/crl.der",
    serial: serial("2"),
  });
  proxyDer = await buildProxyCertificate({
    issuer: certificateParts(userDer),
    issuerKey: userKey,
    spki: proxyKey.publicKeySpki,
    notBefore: new Date(NOW.getTime() - 300_000),
    notAfter: new Date(NOW.getTime() + 12 * 3600_000),
    serial: 1234567890,
  });
  crlDer = await signStructure(
    encodeTbsCrl({
      issuer: ca.parts.subject,
      thisUpdate: NOW,
      nextUpdate: new Date(NOW.getTime() + 7 * 86400_000),
      authorityKeyId: ca.keyId,
      crlNumber: 7,
      signatureAlgorithm: caKey.signatureAlgorithm,
      revoked: [{ serial: serial("2"), revokedAt: NOW, reason: 1 }],
    }),
    caKey,
  );
});

describe("known answers (fixed keys, fixed clock)", () => {
  test("CA, user, proxy and CRL encodings are byte-for-byte stable", () => {
    // Recorded from a run whose output the structure and OpenSSL tests below accept. If one
    // changes, an encoder changed: find out why before recording the new value.
    assert.deepEqual(
      { ca: sha256(caDer), user: sha256(userDer), proxy: sha256(proxyDer), crl: sha256(crlDer) },
      {
        ca: "912903432ed7e0c87313eca2c012aabc8dc160b6d232dde6580e9ed2e358f05d",
        user: "06628e281b6e32d2cfa3e06dbe680fd9610ba4294c26456ac3b429156f790b22",
        proxy: "468db675bcc7290d246232c3df1bd11ed2f33fba35078496cdf8a6183578bbfd",
        crl: "924180e9e8a4bd64838cded53acb73aec6a40590541c3e3faf383e5544b24bf1",
      },
    );
  });

  test("the chain verifies with OpenSSL at the fixed time, and the CRL revokes the user certificate", () => {
    const dir = tempDir();
    const f = (n: string, d: Uint8Array, label = "CERTIFICATE") => {
      const p = path.join(dir, n);
      fs.writeFileSync(p, toPem(label, d));
      return p;
    };
    const caFile = f("ca.pem", caDer);
    const userFile = f("user.pem", userDer);
    const proxyFile = f("proxy.pem", proxyDer);
    const attime = String(Math.floor(NOW.getTime() / 1000) + 60);
    const ok = run("openssl", ["verify", "-attime", attime, "-allow_proxy_certs", "-CAfile", caFile, "-untrusted", userFile, proxyFile]);
    assert.equal(ok.status, 0, ok.stderr);
    const crlFile = f("crl.pem", crlDer, "X509 CRL");
    const revoked = run("openssl", ["verify", "-attime", attime, "-allow_proxy_certs", "-crl_check_all", "-CAfile", caFile, "-CRLfile", crlFile, "-untrusted", userFile, proxyFile]);
    assert.notEqual(revoked.status, 0);
    assert.match(revoked.stderr + revoked.stdout, /certificate revoked/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("software key signing thread (lib/pki/custody.ts)", () => {
  const data = new TextEncoder().encode("tbsCertificate stand-in");
  const der = new Uint8Array(crypto.createPrivateKey(KAT_USER_KEY).export({ type: "pkcs8", format: "der" }));

  test("both threads give the same PKCS#1 v1.5 signature (deterministic), one that verifies", async () => {
    const onLoop = await SoftwareKey.fromPkcs8(der, "event-loop").sign(data);
    const inPool = await SoftwareKey.fromPkcs8(der, "thread-pool").sign(data);
    assert.deepEqual(onLoop, inPool);
    assert.ok(crypto.verify("sha256", data, crypto.createPublicKey(KAT_USER_KEY), onLoop));
  });

  test("on the event loop the signature is done before the call returns; in the pool it is not", async () => {
    const settledAfterOneTurn = async (signing: Promise<Uint8Array>) => {
      let settled = false;
      void signing.then(() => (settled = true));
      await Promise.resolve();
      await Promise.resolve();
      const now = settled;
      await signing;
      return now;
    };
    assert.equal(await settledAfterOneTurn(SoftwareKey.fromPkcs8(der, "event-loop").sign(data)), true);
    assert.equal(await settledAfterOneTurn(SoftwareKey.fromPkcs8(der, "thread-pool").sign(data)), false);
    assert.equal(await settledAfterOneTurn(SoftwareKey.fromPkcs8(der).sign(data)), false, "the pool is the default");
  });
});

describe("CA certificate profile", () => {
  test("self-signed, CA:TRUE critical, keyCertSign+cRLSign, SKI = AKI = SHA-1 of the key", async () => {
    const c = parse(caDer);
    assert.equal(formatSlashDn(decodeName(new Uint8Array(c.subject.toSchema().toBER()))), "/DC=org/DC=kat/CN=KAT CA");
    assert.ok(await c.verify(c), "self-signature verifies");
    const bc = ext(c, OID.basicConstraints)!;
    assert.equal(bc.critical, true);
    assert.equal((bc.parsedValue as pkijs.BasicConstraints).cA, true);
    const ku = ext(c, OID.keyUsage)!;
    assert.equal(ku.critical, true);
    assert.deepEqual([...(ku.parsedValue as asn1js.BitString).valueBlock.valueHexView], [0x06]); // keyCertSign|cRLSign
    const ski = new Uint8Array((ext(c, OID.subjectKeyIdentifier)!.parsedValue as asn1js.OctetString).valueBlock.valueHexView);
    assert.deepEqual(ski, keyIdentifier(caKey.publicKeySpki));
    assert.deepEqual(ski, ca.keyId);
    assert.equal(c.signatureAlgorithm.algorithmId, "1.2.840.113549.1.1.11");
    assert.equal(c.notAfter.value.getTime() - NOW.getTime(), 3650 * 86400_000);
  });
});

describe("user certificate profile", () => {
  test("end entity with clientAuth, digitalSignature+keyEncipherment+dataEncipherment, CRL DP, policy, 20-byte serial", async () => {
    const c = parse(userDer);
    assert.ok(await c.verify(parse(caDer)), "signed by the CA");
    assert.equal((ext(c, OID.basicConstraints)!.parsedValue as pkijs.BasicConstraints).cA, false);
    const ku = ext(c, OID.keyUsage)!;
    assert.equal(ku.critical, true);
    assert.deepEqual([...(ku.parsedValue as asn1js.BitString).valueBlock.valueHexView], [0xb0]);
    assert.deepEqual((ext(c, OID.extKeyUsage)!.parsedValue as pkijs.ExtKeyUsage).keyPurposes, [OID.clientAuth]);
    const aki = ext(c, OID.authorityKeyIdentifier)!.parsedValue as pkijs.AuthorityKeyIdentifier;
    assert.deepEqual(new Uint8Array(aki.keyIdentifier!.valueBlock.valueHexView), ca.keyId);
    const dp = ext(c, OID.crlDistributionPoints)!.parsedValue as pkijs.CRLDistributionPoints;
    const names = dp.distributionPoints[0]!.distributionPoint as pkijs.GeneralName[];
    assert.equal(names[0]!.value, "https://portal.example.org/ca/crl.der");
    const pol = ext(c, OID.certificatePolicies)!.parsedValue as pkijs.CertificatePolicies;
    assert.equal(pol.certificatePolicies[0]!.policyIdentifier, "1.2.3.4.5");
    assert.equal(c.serialNumber.valueBlock.valueHexView.length, 20);
    assert.equal(c.serialNumber.valueBlock.valueHexView[0]! & 0x80, 0, "positive");
    // every RDN single-valued (pkijs would otherwise merge them into one SET)
    const rdns = (asn1js.fromBER(new Uint8Array(c.subject.toSchema().toBER())).result as asn1js.Sequence).valueBlock.value;
    assert.equal(rdns.length, 5);
  });
});

describe("proxy certificate profile (RFC 3820)", () => {
  test("subject = issuer + CN=<serial>, ProxyCertInfo critical inheritAll, keyUsage critical, back-dated 5 minutes", async () => {
    const c = parse(proxyDer);
    const user = parse(userDer);
    assert.ok(await c.verify(user), "signed by the user key");
    const subject = formatSlashDn(decodeName(new Uint8Array(c.subject.toSchema().toBER())));
    assert.equal(subject, "/DC=org/DC=kat/DC=users/O=KAT University/CN=Zoe Lukasiewicz 0VnvYk7YZpe08fP-/CN=1234567890");
    assert.equal(c.serialNumber.toBigInt(), 1234567890n);
    // issuer bytes identical to the user certificate's subject bytes (RFC 3820 §3.4 name check)
    assert.deepEqual(certificateParts(proxyDer).issuer, certificateParts(userDer).subject);
    assert.deepEqual(proxySubject(certificateParts(userDer).subject, 1234567890), certificateParts(proxyDer).subject);
    const pci = ext(c, OID.proxyCertInfo)!;
    assert.equal(pci.critical, true);
    const inner = asn1js.fromBER(pci.extnValue.valueBlock.valueHexView).result as asn1js.Sequence;
    assert.equal(inner.valueBlock.value.length, 1, "no pCPathLenConstraint");
    const policy = (inner.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.ObjectIdentifier;
    assert.equal(policy.valueBlock.toString(), OID.inheritAll);
    const ku = ext(c, OID.keyUsage)!;
    assert.equal(ku.critical, true);
    assert.deepEqual([...(ku.parsedValue as asn1js.BitString).valueBlock.valueHexView], [0xa0]);
    assert.equal(ext(c, OID.basicConstraints), undefined, "never a CA");
    assert.equal(NOW.getTime() - c.notBefore.value.getTime(), 300_000);
  });

  test("an empty validity is refused", async () => {
    await assert.rejects(
      buildProxyCertificate({ issuer: certificateParts(userDer), issuerKey: userKey, spki: proxyKey.publicKeySpki, notBefore: NOW, notAfter: NOW, serial: 5 }),
      /validity is empty/,
    );
  });
});

describe("CRL profile", () => {
  test("v2, signed by the CA, with CRL number, AKI and the reason code", async () => {
    const crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(crlDer));
    assert.equal(crl.version, 1);
    assert.ok(await crl.verify({ issuerCertificate: parse(caDer) }));
    const entry = crl.revokedCertificates![0]!;
    assert.deepEqual(new Uint8Array(entry.userCertificate.valueBlock.valueHexView), serial("2"));
    const number = crl.crlExtensions!.extensions.find((e) => e.extnID === OID.cRLNumber)!;
    assert.equal((number.parsedValue as asn1js.Integer).valueBlock.valueDec, 7);
    assert.equal(crl.nextUpdate!.value.getTime() - NOW.getTime(), 7 * 86400_000);
  });
});
