/**
 * Sites keep the CRL fresh with fetch-crl (Debian's fetch-crl 3): the trust
 * directory `ca bundle` writes carries `<hash>.crl_url` and the IGTF
 * `<hash>.info` under both subject hashes, pointing at the portal's CRL. Run
 * against an exported directory and a running portal (loopback only), after a
 * revocation fetch-crl installs the newer CRL under both hashes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { claimsFor, opensslCsr, run, tempDir } from "./helpers";
import { startPortalServer, type PortalServer } from "./portalHarness";
import { loadConfig } from "../lib/config";
import { startCertbridge, type Certbridge } from "../lib/certbridge";
import { issueProxy } from "../lib/issuance/issueProxy";
import { revokeUserCertificate } from "../lib/ca/revocation";
import { crlUrlFile, igtfInfoFile, infoAlias } from "../lib/pki/trustdir";

const crlNumber = (file: string) => {
  const r = run("openssl", ["crl", "-noout", "-crlnumber", "-in", file]);
  assert.equal(r.status, 0, r.stderr);
  return parseInt(/crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(r.stdout)![1]!, 16);
};

describe("CRL metadata files", () => {
  test("<hash>.info is written as the IGTF distribution writes it", () => {
    const certDer = new Uint8Array([1, 2, 3]);
    const text = igtfInfoFile({
      alias: infoAlias("/DC=org/DC=example/CN=Example Online CA"),
      url: "https://ca.example.org",
      crlUrl: "https://ca.example.org/ca/crl.der",
      email: "ca@example.org",
      status: "unaccredited",
      certDer,
      subject: "/DC=org/DC=example/CN=Example Online CA",
    });
    const fp = crypto.createHash("sha1").update(certDer).digest("hex").toUpperCase().match(/../g)!.join(":");
    assert.equal(
      text,
      [
        "alias = Example-Online-CA",
        "url = https://ca.example.org",
        "crl_url = https://ca.example.org/ca/crl.der",
        "email = ca@example.org",
        "status = unaccredited",
        `sha1fp.0 = ${fp}`,
        'subjectdn = "/DC=org/DC=example/CN=Example Online CA"',
        "",
      ].join("\n"),
    );
  });

  test("values that would break the line format are refused", () => {
    assert.throws(() => crlUrlFile("https://a.example/crl\nhttps://evil.example/crl"), /control character/);
    assert.throws(() => crlUrlFile("https://a.example/crl;https://b.example/crl"), /not an http/);
    assert.throws(() => crlUrlFile("ftp://a.example/crl"), /not an http/);
    const base = { alias: "CA", url: "https://x.example", crlUrl: "https://x.example/crl", email: "a@x.example", status: "unaccredited", certDer: new Uint8Array(1), subject: "/CN=CA" };
    assert.throws(() => igtfInfoFile({ ...base, email: "a@x.example\ncrl_url = https://evil.example" }), /control character/);
    assert.throws(() => igtfInfoFile({ ...base, alias: "a b" }), /alias/);
  });
});

describe("fetch-crl keeps an exported trust directory's CRL fresh from the running portal", () => {
  let server: PortalServer;
  let cb: Certbridge;
  let dir: string;

  /** fetch-crl over one trust directory, with its own (empty) configuration and state directory, no proxy. */
  function fetchCrlFor(certDir: string, name: string) {
    const conf = path.join(dir, `fetch-crl-${name}.conf`);
    fs.writeFileSync(conf, "");
    const state = path.join(dir, `state-${name}`);
    const cfgdir = path.join(dir, `fetch-crl-${name}.d`);
    fs.mkdirSync(state);
    fs.mkdirSync(cfgdir);
    const env = { http_proxy: "", https_proxy: "", HTTP_PROXY: "", HTTPS_PROXY: "", no_proxy: "localhost,127.0.0.1" };
    return () => run("fetch-crl", ["-c", conf, "--cfgdir", cfgdir, "-l", certDir, "-o", certDir, "-s", state, "-T", "20"], { env, timeoutMs: 60_000 });
  }
  before(async () => {
    server = await startPortalServer({ CERTBRIDGE_CA_EMAIL: "grid-ca@example.org" });
    // A second process on the same database: the operator's CLI (export, revoke) next to the portal.
    cb = await startCertbridge(loadConfig(server.env, () => {}), { log: () => {}, createCa: false, keyPool: false });
    dir = tempDir("certbridge-fetchcrl-");
  });
  after(async () => {
    await cb?.close();
    await server?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the export carries crl_url and info under both hashes; fetch-crl installs the newer CRL after a revocation", async () => {
    const certs = path.join(dir, "certificates");
    const bundle = await cb.authority.exportTrustDirectory(certs);
    const hashes = [bundle.hash, bundle.hashOld];
    const crlUrl = `${server.url}/ca/crl.der`;
    for (const h of hashes) {
      assert.equal(fs.readFileSync(path.join(certs, `${h}.crl_url`), "utf8"), `${crlUrl}\n`);
      const info = fs.readFileSync(path.join(certs, `${h}.info`), "utf8");
      assert.match(info, new RegExp(`^crl_url = ${crlUrl.replace(/[.]/g, "\\.")}$`, "m"));
      assert.match(info, /^alias = Certbridge-Test-CA$/m);
      assert.match(info, /^email = grid-ca@example\.org$/m);
      assert.match(info, /^status = unaccredited$/m);
      // The fingerprint is OpenSSL's.
      const fp = run("openssl", ["x509", "-noout", "-fingerprint", "-sha1", "-in", path.join(certs, `${h}.0`)]);
      assert.match(info, new RegExp(`^sha1fp\\.0 = ${/=(.*)$/m.exec(fp.stdout)![1]!.trim()}$`, "m"));
    }
    const before = crlNumber(path.join(certs, `${bundle.hash}.r0`));

    const fetchCrl = fetchCrlFor(certs, "export");

    const first = fetchCrl();
    assert.equal(first.status, 0, `${first.stdout}\n${first.stderr}`);
    for (const h of hashes) assert.equal(crlNumber(path.join(certs, `${h}.r0`)), before, "nothing new yet");

    // fetch-crl keeps a CRL whose lastUpdate (whole seconds) is not newer than the installed one: the
    // re-signed CRL must be signed at least a second after the installed one, which may be only
    // moments old (signed as the portal started).
    await new Promise((r) => setTimeout(r, 1100));
    // Revoke a user certificate: the portal serves the re-signed CRL.
    const csr = opensslCsr(dir).csrPem;
    await issueProxy(cb, { claims: claimsFor("fetch-crl-revokee", "Fetch Revokee"), publicKey: csr, actor: "test" });
    const row = await cb.db.certificate.findFirst({ where: { kind: "user", identity: { sub: "fetch-crl-revokee" } }, select: { id: true } });
    const revoked = await revokeUserCertificate(cb, { id: row!.id }, "keyCompromise", { actor: "test", comment: "fetch-crl test" });
    assert.ok(revoked.crl.number > before);

    const second = fetchCrl();
    assert.equal(second.status, 0, `${second.stdout}\n${second.stderr}`);
    for (const h of hashes) {
      const file = path.join(certs, `${h}.r0`);
      assert.equal(crlNumber(file), revoked.crl.number, `the newer CRL is installed as ${h}.r0\n${second.stdout}\n${second.stderr}`);
      // OpenSSL 3 exits 1 when the CRL's signature does not verify against the CA found by hash.
      const verify = run("openssl", ["crl", "-noout", "-CApath", certs, "-in", file]);
      assert.equal(verify.status, 0, verify.stderr);
    }
  });

  test("the portal publishes the CA's trust files over HTTP; a directory made of downloaded .0 and .info files is kept fresh by fetch-crl", async () => {
    const { hash, hashOld, content } = await cb.authority.trustDirectoryContents();
    for (const h of [hash, hashOld]) {
      for (const suffix of ["0", "info", "crl_url", "signing_policy", "namespaces"]) {
        const res = await fetch(`${server.url}/ca/${h}.${suffix}`);
        assert.equal(res.status, 200, `${h}.${suffix}`);
        assert.equal(await res.text(), content[`${h}.${suffix}`], `${h}.${suffix} is the exported file`);
        assert.match(res.headers.get("content-type") ?? "", suffix === "0" ? /x-pem-file/ : /^text\/plain/);
      }
      const r0 = await fetch(`${server.url}/ca/${h}.r0`);
      assert.equal(r0.headers.get("cache-control"), "public, no-cache");
      const crlFile = path.join(dir, `http-${h}.r0`);
      fs.writeFileSync(crlFile, await r0.text());
      const served = (await fetch(`${server.url}/ca/crl.der`)).headers.get("etag")!;
      assert.ok(served.endsWith(`-${crlNumber(crlFile)}"`), "the .r0 is the CRL /ca/crl.der serves");
    }
    // other names: 404 with a JSON error, nothing else served from the directory
    for (const name of ["00000000.info", `${hash}.key`, `${hash}.pem`, "..%2F..%2Fetc%2Fpasswd", `${hash}.info.bak`]) {
      const res = await fetch(`${server.url}/ca/${name}`);
      assert.equal(res.status, 404, name);
      assert.equal(((await res.json()) as { error: string }).error, "not_found", name);
    }

    // A site that has only the CA certificate and its .info, both fetched over HTTP: fetch-crl finds the CRL from the .info.
    const site = path.join(dir, "site-certificates");
    fs.mkdirSync(site);
    for (const h of [hash, hashOld]) {
      for (const suffix of ["0", "info"]) fs.writeFileSync(path.join(site, `${h}.${suffix}`), await (await fetch(`${server.url}/ca/${h}.${suffix}`)).text());
    }
    const r = fetchCrlFor(site, "site")();
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    for (const h of [hash, hashOld]) {
      const file = path.join(site, `${h}.r0`);
      assert.ok(fs.existsSync(file), `fetch-crl installed ${h}.r0`);
      const verify = run("openssl", ["crl", "-noout", "-CApath", site, "-in", file]);
      assert.equal(verify.status, 0, verify.stderr);
    }
  });
});
