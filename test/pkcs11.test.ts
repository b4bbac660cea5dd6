/**
 * The CA key in a PKCS#11 token (SoftHSM2 in a temp dir): RFC 7512 URIs, the
 * key ceremony (`ca init --key pkcs11:…` generates the key in the token and
 * self-signs; with the certificate present it adopts the key after checking
 * they match), start-up failures that name the setting, the private key's
 * attributes read back through pkcs11js, and HSM-signed user certificates
 * accepted by openssl verify and grid-proxy-init -verify; a VO's built-in
 * attribute authority with its key in the token, whose ACs VOMS-C's strict
 * validation and voms-proxy-info accept.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import type * as P11 from "pkcs11js";
import { assembleProxyFile, claimsFor, globusVerifyProxy, opensslCsr, opensslVerifyProxy, ROOT, run, testEnvironment } from "./helpers";
import { SOFTHSM_MODULE, haveSoftHsm, softHsm } from "./softhsm";
import { createSigner, openSigner } from "../lib/kms";
import { parsePkcs11Uri, pickMechanism, sha256DigestInfo } from "../lib/kms/pkcs11";
import { loadConfig } from "../lib/config";
import { startCertbridge } from "../lib/certbridge";
import { issueProxy } from "../lib/issuance/issueProxy";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { writeFileAtomic } from "../lib/files";
import { vomsExtension, parseVomsRequests } from "../lib/voms/proxyExtension";
import { execFileSync } from "node:child_process";

const PIN = "1234-test-pin";
const TOKEN = "Certbridge CA";
const TOKEN_URI = "pkcs11:token=Certbridge%20CA";
const hsm = haveSoftHsm ? softHsm() : null;
after(() => hsm?.cleanup());

describe("pkcs11: URIs (RFC 7512)", () => {
  test("path and query attributes, percent-decoded", () => {
    const u = parsePkcs11Uri("token=My%20Token;object=ca%2Dkey;id=%01%ff;type=private?module-path=/usr/lib/x.so&pin-source=file:/etc/pin");
    assert.equal(u.token, "My Token");
    assert.equal(u.object, "ca-key");
    assert.deepEqual([...u.id!], [1, 255]);
    assert.equal(u.modulePath, "/usr/lib/x.so");
    assert.equal(u.pinSource, "/etc/pin");
  });
  test("a URI without token= or without object=/id=, or for a public key, is refused", () => {
    assert.throws(() => parsePkcs11Uri("object=x"), /no token=/);
    assert.throws(() => parsePkcs11Uri("token=t"), /neither object= nor id=/);
    assert.throws(() => parsePkcs11Uri("token=t;object=x;type=public"), /type=private/);
    assert.throws(() => parsePkcs11Uri("token=t;object=%zz"), /percent-encoding/);
  });
});

describe("signing mechanism", () => {
  const p11 = () => createRequire(import.meta.url)("pkcs11js") as typeof P11;
  test("CKM_SHA256_RSA_PKCS when the token has it, else raw CKM_RSA_PKCS, else none", () => {
    const { CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS, CKM_ECDSA } = p11();
    assert.equal(pickMechanism([CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS]), "CKM_SHA256_RSA_PKCS");
    assert.equal(pickMechanism([CKM_ECDSA, CKM_RSA_PKCS]), "CKM_RSA_PKCS");
    assert.equal(pickMechanism([CKM_ECDSA]), null);
  });
  test("raw PKCS#1 v1.5 over our DigestInfo is exactly a sha256WithRSAEncryption signature", () => {
    const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const data = Buffer.from("tbsCertificate bytes");
    const raw = crypto.privateEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }, sha256DigestInfo(data));
    assert.deepEqual(raw, crypto.sign("sha256", data, privateKey));
  });
});

describe("a CA key in a SoftHSM2 token", { skip: haveSoftHsm ? false : `${SOFTHSM_MODULE} is not installed (apt-get install softhsm2)` }, () => {
  let pinFile: string;
  before(() => {
    hsm!.addToken(TOKEN, PIN);
    hsm!.addToken("Other Token", PIN);
    // SoftHSM reads its configuration when the module initialises: before this process first loads it.
    process.env.SOFTHSM2_CONF = hsm!.conf;
    pinFile = path.join(hsm!.dir, "pin");
    fs.writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  });
  const settings = () => ({ module: SOFTHSM_MODULE, pinFile });

  test("a key generated in the token is private, sensitive and never extractable; it signs sha256WithRSAEncryption, queued", async () => {
    const key = await createSigner(`${TOKEN_URI};object=unit-key`, { bits: 2048, pkcs11: settings() });
    assert.equal(key.bits, 2048);
    const pub = crypto.createPublicKey({ key: Buffer.from(key.publicKeySpki), format: "der", type: "spki" });
    const data = Array.from({ length: 40 }, (_, i) => Buffer.from(`to be signed ${i}`));
    const sigs = await Promise.all(data.map((d) => key.sign(d)));
    for (const [i, s] of sigs.entries()) assert.ok(crypto.verify("sha256", data[i]!, pub, Buffer.from(s)), `signature ${i} verifies`);

    // Read the private key object's attributes back through pkcs11js directly.
    const p11 = createRequire(import.meta.url)("pkcs11js") as typeof P11;
    const lib = new p11.PKCS11();
    lib.load(SOFTHSM_MODULE);
    try {
      lib.C_Initialize();
    } catch (e) {
      if (!(e instanceof p11.Pkcs11Error && e.code === p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) throw e;
    }
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === TOKEN)!;
    const session = lib.C_OpenSession(slot, p11.CKF_SERIAL_SESSION);
    try {
      // Logged in already (PKCS#11 login state is per application and token).
      lib.C_FindObjectsInit(session, [{ type: p11.CKA_CLASS, value: p11.CKO_PRIVATE_KEY }, { type: p11.CKA_LABEL, value: "unit-key" }]);
      const found = lib.C_FindObjects(session, 4);
      lib.C_FindObjectsFinal(session);
      assert.equal(found.length, 1);
      const names = ["CKA_PRIVATE", "CKA_SENSITIVE", "CKA_EXTRACTABLE", "CKA_NEVER_EXTRACTABLE", "CKA_ALWAYS_SENSITIVE", "CKA_TOKEN", "CKA_SIGN"] as const;
      const attrs = lib.C_GetAttributeValue(session, found[0]!, names.map((n) => ({ type: p11[n] })));
      const bool = Object.fromEntries(attrs.map((a, i) => [names[i], (a.value as Buffer)[0] === 1]));
      assert.deepEqual(bool, {
        CKA_PRIVATE: true,
        CKA_SENSITIVE: true,
        CKA_EXTRACTABLE: false,
        CKA_NEVER_EXTRACTABLE: true,
        CKA_ALWAYS_SENSITIVE: true,
        CKA_TOKEN: true,
        CKA_SIGN: true,
      });
      // The raw fallback (CKM_RSA_PKCS over our DigestInfo) in the real token verifies as sha256WithRSAEncryption.
      lib.C_SignInit(session, { mechanism: p11.CKM_RSA_PKCS }, found[0]!);
      const rawSig = lib.C_Sign(session, sha256DigestInfo(data[0]!), Buffer.alloc(256));
      assert.ok(crypto.verify("sha256", data[0]!, pub, rawSig), "CKM_RSA_PKCS over the DigestInfo verifies");
      // The sensitive value itself cannot be read.
      assert.throws(() => lib.C_GetAttributeValue(session, found[0]!, [{ type: p11.CKA_PRIVATE_EXPONENT }]), /CKR_ATTRIBUTE_SENSITIVE/);
    } finally {
      lib.C_CloseSession(session);
    }
    // Opening it again by URI gives the same public key; a second key of that name is refused.
    const again = openSigner(`${TOKEN_URI};object=unit-key`, { pkcs11: settings() });
    assert.deepEqual(Buffer.from(again.publicKeySpki), Buffer.from(key.publicKeySpki));
    await assert.rejects(createSigner(`${TOKEN_URI};object=unit-key`, { bits: 2048, pkcs11: settings() }), /already holds a private key/);
  });

  test("ceremony: ca init --key generates the key in the token and self-signs; ca info shows the token; ca init again adopts; HSM-signed proxies pass openssl and Globus", async () => {
    const t = await testEnvironment({
      SOFTHSM2_CONF: hsm!.conf,
      CERTBRIDGE_PKCS11_MODULE: SOFTHSM_MODULE,
      CERTBRIDGE_PKCS11_PIN_FILE: pinFile,
      CERTBRIDGE_CA_KEY_BITS: "3072",
    });
    try {
      const cli = (env: Record<string, string>, ...args: string[]) => run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), ...args], { env: { ...t.env, ...env } });
      const keyUri = `${TOKEN_URI};object=ca-key`;
      const certFile = path.join(t.dir, "ca", "ca.pem");

      const init = cli({}, "ca", "init", "--key", keyUri);
      assert.equal(init.status, 0, init.stderr);
      assert.match(init.stdout, /^created CA \/DC=org\/DC=certbridge-test\/CN=Certbridge Test CA$/m);
      assert.match(init.stdout, /^key: pkcs11:token=Certbridge%20CA;object=ca-key;id=%[0-9a-f]{2}.* \(module \/usr\/lib\/softhsm\/libsofthsm2\.so\), signing with CKM_SHA256_RSA_PKCS$/m);
      assert.ok(!fs.existsSync(path.join(t.dir, "ca", "ca-key.pem")), "no key file is written");
      const text = run("openssl", ["x509", "-in", certFile, "-noout", "-text"]).stdout;
      assert.match(text, /Public-Key: \(3072 bit\)/);
      assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
      assert.equal(run("openssl", ["verify", "-CAfile", certFile, certFile]).status, 0, "the self-signature verifies");

      const hsmEnv = { CERTBRIDGE_CA_CERT_FILE: certFile, CERTBRIDGE_CA_KEY_FILE: keyUri };
      const info = cli(hsmEnv, "ca", "info");
      assert.equal(info.status, 0, info.stderr);
      assert.match(info.stdout, /^key store:\s+pkcs11:token=Certbridge%20CA;object=ca-key.*signing with CKM_SHA256_RSA_PKCS$/m);

      const adopt = cli({}, "ca", "init", "--key", keyUri);
      assert.equal(adopt.status, 0, adopt.stderr);
      assert.match(adopt.stdout, /^adopted CA /m);

      // Adoption checks the key: another token's key does not belong to this certificate.
      const otherUri = "pkcs11:token=Other%20Token;object=ca-key";
      await createSigner(otherUri, { bits: 2048, pkcs11: settings() });
      const mismatch = cli({}, "ca", "init", "--key", otherUri);
      assert.equal(mismatch.status, 1);
      assert.match(mismatch.stderr, /does not belong to the certificate/);

      // Start-up failures: one line naming the setting.
      const failures: [Record<string, string>, RegExp][] = [
        [{ CERTBRIDGE_PKCS11_PIN_FILE: "", CERTBRIDGE_PKCS11_PIN: "wrong-pin" }, /^certbridge: CERTBRIDGE_PKCS11_PIN: cannot log in to token "Certbridge CA": the token refused the PIN/],
        [{ CERTBRIDGE_CA_KEY_FILE: `${TOKEN_URI};object=no-such-key` }, /^certbridge: CERTBRIDGE_CA_KEY_FILE: no private key pkcs11:token=Certbridge%20CA;object=no-such-key in token "Certbridge CA": check the key URI's object=/],
        [{ CERTBRIDGE_PKCS11_MODULE: path.join(t.dir, "no-such-module.so") }, /^certbridge: CERTBRIDGE_PKCS11_MODULE: cannot load the PKCS#11 module/],
        [{ CERTBRIDGE_CA_KEY_FILE: "pkcs11:token=No%20Such%20Token;object=ca-key" }, /^certbridge: CERTBRIDGE_CA_KEY_FILE: no token labelled "No Such Token"/],
      ];
      for (const [env, message] of failures) {
        const clean = Object.fromEntries(Object.entries({ ...t.env, ...hsmEnv, ...env }).filter(([, v]) => v !== ""));
        const r = run(process.execPath, [path.join(ROOT, "bin/certbridge.mjs"), "ca", "info"], { env: clean });
        assert.equal(r.status, 1, `${JSON.stringify(env)}: ${r.stdout}`);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
      }

      // Issuance with the CA key in the token: user certificates signed by the HSM, proxies by the user key.
      const cb = await startCertbridge(loadConfig({ ...t.env, ...hsmEnv }, () => {}), { log: () => {}, keyPool: false });
      try {
        const work = path.join(t.dir, "work");
        fs.mkdirSync(work);
        const trust = (await exportTrustDirectory(cb, path.join(t.dir, "certificates"))).directory;
        const { csrPem, keyPem } = opensslCsr(work);
        const issued = await issueProxy(cb, { claims: claimsFor("hsm-alice"), publicKey: csrPem, lifetimeSeconds: 3600, actor: "test" });
        const proxy = path.join(work, "proxy.pem");
        writeFileAtomic(proxy, assembleProxyFile(issued.pem, keyPem), 0o600);
        const v = opensslVerifyProxy(proxy, trust, work);
        assert.equal(v.status, 0, v.stderr);
        const g = globusVerifyProxy(proxy, trust, work);
        assert.equal(g.status, 0, g.stderr + g.stdout);
        const crlCheck = opensslVerifyProxy(proxy, trust, work, ["-crl_check"]);
        assert.equal(crlCheck.status, 0, `the HSM-signed CRL verifies: ${crlCheck.stderr}`);
      } finally {
        await cb.close();
      }
    } finally {
      await t.cleanup();
    }
  });

  test("a VO's built-in AA key in the token (aaKey: pkcs11:…): made there on first start, reopened after; VOMS-C strict validation and voms-proxy-info accept its ACs", async () => {
    const aaUri = `${TOKEN_URI};object=aa-biomed`;
    const t = await testEnvironment({ SOFTHSM2_CONF: hsm!.conf, CERTBRIDGE_PKCS11_MODULE: SOFTHSM_MODULE, CERTBRIDGE_PKCS11_PIN_FILE: pinFile });
    try {
      const vosFile = path.join(t.dir, "vos.json");
      fs.writeFileSync(vosFile, JSON.stringify([{ name: "biomed", host: "voms.test.example", port: 15000, aaKey: aaUri }]));
      const env = { ...t.env, CERTBRIDGE_VOS_FILE: vosFile };
      const aaCertFile = path.join(t.dir, "voms", "biomed", "aa.pem");
      let cb = await startCertbridge(loadConfig(env, () => {}), { log: () => {}, keyPool: false });
      const aaSpki = Buffer.from(cb.vos.get("biomed")!.aa.cert.spki);
      try {
        assert.ok(fs.existsSync(aaCertFile), "the AA certificate is written");
        assert.ok(!fs.existsSync(path.join(t.dir, "voms", "biomed", "aa-key.pem")), "no AA key file");
        // the key is the token's: opening the URI gives the certificate's public key
        assert.deepEqual(Buffer.from(openSigner(aaUri, { pkcs11: settings() }).publicKeySpki), aaSpki);
      } finally {
        await cb.close();
      }
      // A restart opens the same key and certificate.
      cb = await startCertbridge(loadConfig(env, () => {}), { log: () => {}, keyPool: false });
      try {
        assert.deepEqual(Buffer.from(cb.vos.get("biomed")!.aa.cert.spki), aaSpki);
        const work = path.join(t.dir, "work");
        fs.mkdirSync(work);
        const trust = (await exportTrustDirectory(cb, path.join(t.dir, "certificates"))).directory;
        const claims = claimsFor("hsm-voms-alice", "Alice Example", { eduperson_entitlement: ["urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu"] });
        const issued = await issueProxy(cb, { claims, extension: vomsExtension(cb.vos, parseVomsRequests(["biomed"]), cb.clock), lifetimeSeconds: 3600, actor: "test" });
        const file = path.join(work, "voms-proxy.pem");
        writeFileAtomic(file, issued.pem, 0o600);
        const vomsEnv = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
        const validator = path.join(work, "voms-validate");
        execFileSync("g++", ["-O1", "-o", validator, path.join(ROOT, "test/tools/voms-validate.cc"), "-lvomsapi", "-lssl", "-lcrypto"], { stdio: "pipe" });
        const strict = run(validator, [file], { env: vomsEnv });
        assert.equal(strict.status, 0, strict.stdout + strict.stderr);
        assert.deepEqual(strict.stdout.trim().split("\n"), ["VO biomed", "FQAN /biomed/Role=NULL/Capability=NULL"]);
        const info = run("voms-proxy-info2", ["-all", "-file", file], { env: vomsEnv });
        assert.equal(info.status, 0, info.stderr);
        assert.match(info.stdout, /=== VO biomed extension information ===/);
        assert.match(info.stdout, /^attribute : \/biomed\/Role=NULL\/Capability=NULL$/m);
        // Strict validation really checks the token's signature: under another AA's .lsc the AC is refused.
        const otherLsc = path.join(work, "vomsdir-other", "biomed");
        fs.mkdirSync(otherLsc, { recursive: true });
        fs.writeFileSync(path.join(otherLsc, "voms.test.example.lsc"), "/DC=org/DC=other/CN=voms.test.example\n/DC=org/DC=certbridge-test/CN=Certbridge Test CA\n");
        assert.notEqual(run(validator, [file], { env: { ...vomsEnv, X509_VOMS_DIR: path.join(work, "vomsdir-other") } }).status, 0);
      } finally {
        await cb.close();
      }
      // An AA key URI naming an object the token lacks, with the operator's certificate: one line naming the VO.
      fs.writeFileSync(vosFile, JSON.stringify([{ name: "biomed", host: "voms.test.example", aaCertFile, aaKeyFile: `${TOKEN_URI};object=no-such-aa` }]));
      await assert.rejects(startCertbridge(loadConfig(env, () => {}), { log: () => {}, keyPool: false, createCa: false }), /VO biomed: cannot load the AA certificate and key .*no private key/);
    } finally {
      await t.cleanup();
    }
  });
});
