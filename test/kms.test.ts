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
import * as asn1js from "asn1js";
import crypto from "node:crypto";
import { run } from "./helpers";

describe("key URIs", () => {
  test("a path, file:PATH and file:///PATH open the same software key, encrypted or not", async () => {
    const dir = tempDir();
    const plain = path.join(dir, "plain.pem");
    fs.writeFileSync(plain, KAT_CA_KEY);
    const encrypted = path.join(dir, "enc.pem");
    fs.writeFileSync(encrypted, await SoftwareKey.fromPem(KAT_CA_KEY).exportEncryptedPem("pass-phrase"));
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

/**
 * Issue 12: key files use a KDF with real cost. The EncryptedPrivateKeyInfo (RFC 5958 §3) of a
 * freshly written key is parsed here with asn1js (not the module's own reader) and by OpenSSL.
 */
function pbes2ParametersOf(pem: string) {
  const block = der.pemBlocks(pem).find((b) => b.label === "ENCRYPTED PRIVATE KEY");
  assert.ok(block, "an ENCRYPTED PRIVATE KEY block");
  const parsed = asn1js.fromBER(Uint8Array.from(block.der).buffer);
  assert.notEqual(parsed.offset, -1);
  const info = parsed.result as asn1js.Sequence;
  const [alg] = info.valueBlock.value as [asn1js.Sequence, asn1js.OctetString];
  const [schemeOid, pbes2] = alg.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.Sequence];
  const [kdf, enc] = pbes2.valueBlock.value as [asn1js.Sequence, asn1js.Sequence];
  const [kdfOid, kdfParams] = kdf.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.Sequence];
  const fields = kdfParams.valueBlock.value;
  const salt = fields[0] as asn1js.OctetString;
  const iterations = (fields[1] as asn1js.Integer).toBigInt();
  const prf = fields.find((f) => f instanceof asn1js.Sequence) as asn1js.Sequence | undefined;
  const prfOid = prf ? (prf.valueBlock.value[0] as asn1js.ObjectIdentifier).getValue() : "1.2.840.113549.2.7";
  const encOid = (enc.valueBlock.value[0] as asn1js.ObjectIdentifier).getValue();
  return { scheme: schemeOid.getValue(), kdf: kdfOid.getValue(), saltBytes: salt.valueBlock.valueHexView.length, iterations, prf: prfOid, cipher: encOid };
}

describe("key file encryption (issue 12)", () => {
  test("a freshly written key file is PBES2 with PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-CBC, and OpenSSL reads it", async () => {
    const dir = tempDir();
    const file = path.join(dir, "fresh.pem");
    const key = await createSigner(file, { bits: 2048, passphrase: "a passphrase" });
    const pem = fs.readFileSync(file, "utf8");
    assert.deepEqual(pbes2ParametersOf(pem), {
      scheme: "1.2.840.113549.1.5.13", // PBES2
      kdf: "1.2.840.113549.1.5.12", // PBKDF2
      saltBytes: 16,
      iterations: 600000n,
      prf: "1.2.840.113549.2.9", // hmacWithSHA256
      cipher: "2.16.840.1.101.3.4.1.42", // aes256-CBC
    });
    // Two keys never share a salt.
    const again = await SoftwareKey.fromPem(KAT_CA_KEY).exportEncryptedPem("a passphrase");
    assert.notEqual(pem, again);
    const asn1 = run("openssl", ["asn1parse", "-in", file]);
    assert.equal(asn1.status, 0, asn1.stderr);
    assert.match(asn1.stdout, /PBES2/);
    assert.match(asn1.stdout, /hmacWithSHA256/);
    assert.match(asn1.stdout, /INTEGER\s+:0927C0/); // 600000
    const pkey = run("openssl", ["pkey", "-in", file, "-passin", "pass:a passphrase", "-pubout"]);
    assert.equal(pkey.status, 0, pkey.stderr);
    assert.ok(crypto.createPublicKey(pkey.stdout).export({ type: "spki", format: "der" }).equals(Buffer.from(key.publicKeySpki)));
    assert.notEqual(run("openssl", ["pkey", "-in", file, "-passin", "pass:wrong", "-noout"]).status, 0);
    fs.rmSync(dir, { recursive: true });
  });

  test("an old key file (OpenSSL's 2,048 iterations) still opens, and is re-encrypted with the same passphrase on first open", () => {
    const dir = tempDir();
    const file = path.join(dir, "old.pem");
    // What earlier releases wrote: Node's export, which leaves PBKDF2 at OpenSSL's default.
    const old = crypto.createPrivateKey(KAT_CA_KEY).export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "old-pass" }) as string;
    fs.writeFileSync(file, old, { mode: 0o600 });
    assert.equal(pbes2ParametersOf(old).iterations, 2048n);
    const spki = Buffer.from(SoftwareKey.fromPem(KAT_CA_KEY).publicKeySpki);
    assert.ok(Buffer.from(openSigner(file, { passphrase: "old-pass" }).publicKeySpki).equals(spki));
    const now = fs.readFileSync(file, "utf8");
    assert.equal(pbes2ParametersOf(now).iterations, 600000n);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.ok(Buffer.from(openSigner(file, { passphrase: "old-pass" }).publicKeySpki).equals(spki));
    assert.equal(fs.readFileSync(file, "utf8"), now, "a strong file is not rewritten");
    assert.deepEqual(fs.readdirSync(dir), ["old.pem"], "no temporary file left");
    // A read-only directory: the old file keeps working, untouched.
    const ro = path.join(dir, "ro");
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(ro, "old.pem"), old, { mode: 0o400 });
    fs.chmodSync(ro, 0o500);
    try {
      if (process.getuid?.() !== 0) {
        assert.ok(Buffer.from(openSigner(path.join(ro, "old.pem"), { passphrase: "old-pass" }).publicKeySpki).equals(spki));
        assert.equal(fs.readFileSync(path.join(ro, "old.pem"), "utf8"), old);
      }
    } finally {
      fs.chmodSync(ro, 0o700);
    }
    fs.rmSync(dir, { recursive: true });
  });
});
