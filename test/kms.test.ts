/**
 * Key custody by URI (lib/kms): a plain path and file: URIs open the same
 * software key; unknown schemes are refused with a clear message; the
 * signer's reported algorithm is what the encoders write.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { KAT_CA_KEY } from "./fixtures/katKeys";
import { tempDir } from "./helpers";
import { createSigner, openSigner, parseKeyUri } from "../lib/kms";
import { SoftwareKey, SHA256_WITH_RSA_ALGORITHM, type KeyCustody } from "../lib/pki/custody";
import { createCaCertificate } from "../lib/ca/authority";
import * as der from "../lib/pki/der";

describe("key URIs", () => {
  test("a path, file:PATH and file:///PATH open the same software key, encrypted or not", async () => {
    const dir = tempDir();
    const plain = path.join(dir, "plain.pem");
    fs.writeFileSync(plain, KAT_CA_KEY);
    const encrypted = path.join(dir, "enc.pem");
    fs.writeFileSync(encrypted, SoftwareKey.fromPem(KAT_CA_KEY).exportEncryptedPem("pass-phrase"));
    const spki = Buffer.from(SoftwareKey.fromPem(KAT_CA_KEY).publicKeySpki);
    for (const k of [openSigner(plain), openSigner(`file:${plain}`), openSigner(pathToFileURL(plain).href), openSigner(encrypted, { passphrase: "pass-phrase" })]) {
      assert.ok(spki.equals(Buffer.from(k.publicKeySpki)));
      assert.ok(Buffer.from(k.signatureAlgorithm).equals(Buffer.from(SHA256_WITH_RSA_ALGORITHM)));
    }
    assert.throws(() => openSigner(encrypted, { passphrase: "wrong" }));
    fs.rmSync(dir, { recursive: true });
  });

  test("createSigner writes encrypted PKCS#8 with mode 0600 and refuses to overwrite", async () => {
    const dir = tempDir();
    const file = path.join(dir, "sub", "new.pem");
    const key = await createSigner(`file:${file}`, { bits: 2048, passphrase: "pp" });
    assert.match(fs.readFileSync(file, "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(Buffer.from(openSigner(file, { passphrase: "pp" }).publicKeySpki).equals(Buffer.from(key.publicKeySpki)));
    await assert.rejects(createSigner(file, { bits: 2048, passphrase: "pp" }), /EEXIST/);
    fs.rmSync(dir, { recursive: true });
  });

  test("unknown schemes are refused by name; pkcs11: keys need a module (test/pkcs11.test.ts covers the token)", () => {
    assert.deepEqual(parseKeyUri("/etc/ca/key.pem"), { scheme: "file", location: "/etc/ca/key.pem" });
    assert.deepEqual(parseKeyUri("pkcs11:token=ca;object=signing"), { scheme: "pkcs11", location: "token=ca;object=signing" });
    assert.throws(() => openSigner("pkcs11:token=ca;object=signing"), /CERTBRIDGE_PKCS11_MODULE is needed/);
    assert.throws(() => openSigner("hsm:token=ca"), /no key backend for "hsm:" keys \(known: file:, pkcs11:\)/);
  });
});

describe("the signer names the signature algorithm", () => {
  test("a certificate carries the AlgorithmIdentifier its signer reports, in TBS and outside", async () => {
    const inner = SoftwareKey.fromPem(KAT_CA_KEY);
    // A stand-in backend reporting a made-up algorithm: the encoders must copy it, not assume RSA-SHA256.
    const fake = der.sequence(der.oid("1.2.3.4.5.6"), der.nullValue());
    const signer: KeyCustody = { publicKeySpki: inner.publicKeySpki, bits: inner.bits, signatureAlgorithm: fake, sign: (d) => inner.sign(d) };
    const cert = await createCaCertificate(signer, { subject: "/CN=Algorithm Test", keyBits: 2048, lifetimeSeconds: 86400 }, new Date("2026-01-01T00:00:00Z"));
    const hex = Buffer.from(cert).toString("hex");
    const alg = Buffer.from(fake).toString("hex");
    assert.equal(hex.split(alg).length - 1, 2, "once in the TBSCertificate, once as signatureAlgorithm");
    assert.ok(!hex.includes(Buffer.from(SHA256_WITH_RSA_ALGORITHM).toString("hex")));
  });
});
