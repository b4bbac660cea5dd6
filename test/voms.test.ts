/**
 * VOMS attributes: membership rules (pure), and proxies whose ACs the grid
 * tools accept. voms-proxy-info prints attributes even from a forged AC, so
 * validity is checked by VOMS-C's own library in strict mode (a small
 * validator compiled from test/tools/voms-validate.cc) and independently
 * with pkijs, and each forgery must be refused.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto, { webcrypto } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { startTestPortal, claimsFor, run, tempDir, ROOT, type TestPortal } from "./helpers";
import { membershipsFromClaims, parseVomsRequest, selectFqans } from "../lib/voms/membership";
import { issueProxy, type ProxyExtensionHook } from "../lib/issuance/issueProxy";
import { vomsExtension, parseVomsRequests } from "../lib/voms/proxyExtension";
import { buildAttributeCertificate, encodeVomsAttributes, vomsProxyExtension, VOMS_OID } from "../lib/voms/ac";
import { parseVomsExtension } from "../lib/voms/acInfo";
import { buildAaCertificate } from "../lib/voms/vos";
import { authorityFrom, createCaCertificate } from "../lib/ca/authority";
import { buildUserCertificate } from "../lib/issuance/userCertificate";
import { keyIdentifier } from "../lib/pki/x509";
import { toPem } from "../lib/pki/der";
import { KAT_CA_KEY, KAT_USER_KEY, KAT_PROXY_KEY } from "./fixtures/katKeys";
import { PROXY_INFO } from "./deviceHarness";
import { exportTrustDirectory } from "../lib/ca/trustBundle";
import { writeFileAtomic } from "../lib/files";
import { SoftwareKey } from "../lib/pki/custody";
import { CertbridgeError } from "../lib/errors";
import { certificateParts } from "../lib/pki/x509";
import { pemBlocks } from "../lib/pki/der";

pkijs.setEngine("node", new pkijs.CryptoEngine({ name: "node", crypto: webcrypto as unknown as Crypto }));

const ENTITLEMENTS = [
  "urn:mace:egi.eu:group:biomed:role=member#aai.egi.eu",
  "urn:mace:egi.eu:group:biomed:lab1:role=member#aai.egi.eu",
  "urn:mace:egi.eu:group:biomed:role=pilot#aai.egi.eu",
  "urn:mace:egi.eu:group:atlas:production:role=vo-admin#aai.egi.eu",
  "urn:mace:example.org:group:other#x",
  "urn:mace:egi.eu:group:bad name#aai.egi.eu",
];

/** What alice's plain `biomed` request puts into the AC, in order: her groups, not her role (the VOMS long form). */
const ALICE_BIOMED_GROUPS = ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"];

describe("membership from claims (table)", () => {
  const cases: [string, Record<string, unknown>, { vo: string; fqans: string[] }[]][] = [
    ["no claims", {}, []],
    [
      "Check-in entitlements: groups first, shortest first, then roles; foreign and malformed URNs ignored",
      { eduperson_entitlement: ENTITLEMENTS },
      [
        { vo: "biomed", fqans: ["/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL", "/biomed/Role=pilot/Capability=NULL"] },
        { vo: "atlas", fqans: ["/atlas/Role=NULL/Capability=NULL", "/atlas/production/Role=NULL/Capability=NULL", "/atlas/production/Role=vo-admin/Capability=NULL"] },
      ],
    ],
    ["a single entitlement string", { eduperson_entitlement: "urn:mace:egi.eu:group:cms#aai.egi.eu" }, [{ vo: "cms", fqans: ["/cms/Role=NULL/Capability=NULL"] }]],
    [
      "wlcg.groups and groups paths, legacy Role=NULL/Capability=NULL suffixes",
      { "wlcg.groups": ["/dteam", "/dteam/ops/Role=NULL/Capability=NULL", "/dteam/Role=lcgadmin"], groups: ["alice"] },
      [
        { vo: "dteam", fqans: ["/dteam/Role=NULL/Capability=NULL", "/dteam/ops/Role=NULL/Capability=NULL", "/dteam/Role=lcgadmin/Capability=NULL"] },
        { vo: "alice", fqans: ["/alice/Role=NULL/Capability=NULL"] },
      ],
    ],
    ["duplicates collapse", { eduperson_entitlement: [ENTITLEMENTS[0], ENTITLEMENTS[0]], groups: ["/biomed"] }, [{ vo: "biomed", fqans: ["/biomed/Role=NULL/Capability=NULL"] }]],
    ["non-string claim values are ignored", { eduperson_entitlement: [42, null, { x: 1 }], groups: 7 }, []],
  ];
  for (const [name, claims, expected] of cases) {
    test(name, () => assert.deepEqual(membershipsFromClaims(claims), expected));
  }

  test("the operator's static table adds FQANs", () => {
    assert.deepEqual(membershipsFromClaims({}, { staticFqans: ["/biomed/curators", "/biomed/Role=curator/Capability=NULL"] }), [
      { vo: "biomed", fqans: ["/biomed/Role=NULL/Capability=NULL", "/biomed/curators/Role=NULL/Capability=NULL", "/biomed/Role=curator/Capability=NULL"] },
    ]);
  });

  test("voms-proxy-init request syntax", () => {
    assert.deepEqual(parseVomsRequest("biomed"), { vo: "biomed", fqan: null });
    // either form in, the long form (as the AC carries it) out
    assert.deepEqual(parseVomsRequest("biomed:/biomed/Role=pilot"), { vo: "biomed", fqan: "/biomed/Role=pilot/Capability=NULL" });
    assert.deepEqual(parseVomsRequest("biomed:/biomed/Role=pilot/Capability=NULL"), { vo: "biomed", fqan: "/biomed/Role=pilot/Capability=NULL" });
    assert.deepEqual(parseVomsRequest("biomed:/biomed/lab1"), { vo: "biomed", fqan: "/biomed/lab1/Role=NULL/Capability=NULL" });
    assert.deepEqual(parseVomsRequest("biomed:/biomed/lab1/Role=NULL/Capability=NULL"), { vo: "biomed", fqan: "/biomed/lab1/Role=NULL/Capability=NULL" });
    assert.deepEqual(parseVomsRequest("biomed:/biomed/Role=NULL"), { vo: "biomed", fqan: "/biomed/Role=NULL/Capability=NULL" });
    assert.throws(() => parseVomsRequest("biomed:/biomed/Role=pilot/Capability=admin"), /not an FQAN of VO biomed/);
    assert.throws(() => parseVomsRequest("biomed:/biomed/-lab"), /not an FQAN of VO biomed/);
    assert.throws(() => parseVomsRequest("biomed:/atlas"), /not an FQAN of VO biomed/);
    assert.throws(() => parseVomsRequest("bad vo"), /not a VO name/);
    assert.throws(() => parseVomsRequests(["a,b,c,d,e,f,g,h,i"]), /at most 8/);
  });

  describe("selection (table): a role only when requested, then the groups, as VOMS and IAM do; refusals name the VO, group or role", () => {
    // alice: biomed, biomed/lab1, biomed Role=pilot; atlas/production with Role=vo-admin
    const memberships = membershipsFromClaims({ eduperson_entitlement: ENTITLEMENTS });
    const G = (g: string) => `${g}/Role=NULL/Capability=NULL`;
    const R = (g: string, r: string) => `${g}/Role=${r}/Capability=NULL`;
    const cases: [request: string, expected: ReturnType<typeof selectFqans>][] = [
      ["biomed", { ok: true, fqans: [G("/biomed"), G("/biomed/lab1")] }],
      ["biomed:/biomed/Role=pilot", { ok: true, fqans: [R("/biomed", "pilot"), G("/biomed"), G("/biomed/lab1")] }],
      ["biomed:/biomed/Role=pilot/Capability=NULL", { ok: true, fqans: [R("/biomed", "pilot"), G("/biomed"), G("/biomed/lab1")] }],
      ["biomed:/biomed/lab1", { ok: true, fqans: [G("/biomed/lab1"), G("/biomed")] }],
      ["biomed:/biomed/Role=NULL/Capability=NULL", { ok: true, fqans: [G("/biomed"), G("/biomed/lab1")] }],
      ["atlas", { ok: true, fqans: [G("/atlas"), G("/atlas/production")] }],
      ["atlas:/atlas/production/Role=vo-admin", { ok: true, fqans: [R("/atlas/production", "vo-admin"), G("/atlas"), G("/atlas/production")] }],
      ["biomed:/biomed/Role=admin", { ok: false, reason: "you do not hold the role /biomed/Role=admin in VO biomed" }],
      ["biomed:/biomed/lab1/Role=pilot", { ok: false, reason: "you do not hold the role /biomed/lab1/Role=pilot in VO biomed" }],
      ["atlas:/atlas/Role=vo-admin", { ok: false, reason: "you do not hold the role /atlas/Role=vo-admin in VO atlas" }],
      ["biomed:/biomed/lab2", { ok: false, reason: "you do not hold the group /biomed/lab2 in VO biomed" }],
      ["cms", { ok: false, reason: "you are not a member of VO cms" }],
    ];
    for (const [request, expected] of cases) {
      test(request, () => {
        const r = parseVomsRequest(request);
        assert.deepEqual(selectFqans(memberships.find((m) => m.vo === r.vo), r.vo, r.fqan), expected);
      });
    }
  });
});

describe("known answers: the AC's attributes in the VOMS long form", () => {
  const hex = (text: string) => Buffer.from(text, "utf8").toString("hex");
  const BIOMED_AA = { vo: "biomed", host: "voms.test.example", port: 15000 };

  test("the DER of the attributes for biomed:/biomed/Role=pilot (requested role first, then the groups)", () => {
    const requested = parseVomsRequest("biomed:/biomed/Role=pilot").fqan;
    const choice = selectFqans(membershipsFromClaims({ eduperson_entitlement: ENTITLEMENTS })[0], "biomed", requested);
    assert.ok(choice.ok);
    const expected = [
      "3081aa", // attributes SEQUENCE, 170 bytes
      "3081a7", //  Attribute SEQUENCE, 167
      "060a2b06010401be45646404", //   OID 1.3.6.1.4.1.8005.100.100.4 (VOMS FQANs)
      "318198", //   SET, 152
      "308195", //    IetfAttrSyntax SEQUENCE, 149
      `a022 8620 ${hex("biomed://voms.test.example:15000")}`, // policyAuthority [0] { [6] URI }, 32 bytes
      "306f", //     values SEQUENCE, 111
      `0422 ${hex("/biomed/Role=pilot/Capability=NULL")}`, // 34 bytes
      `0421 ${hex("/biomed/Role=NULL/Capability=NULL")}`, // 33
      `0426 ${hex("/biomed/lab1/Role=NULL/Capability=NULL")}`, // 38
    ].join("").replace(/ /g, "");
    assert.equal(Buffer.from(encodeVomsAttributes(BIOMED_AA, choice.fqans)).toString("hex"), expected);
  });

  test("the encoder refuses the short form and other VOs' FQANs (the AC is always written in the long form)", () => {
    for (const bad of [["/biomed"], ["/biomed/Role=pilot"], ["/biomed/lab1/Role=NULL"], ["/atlas/Role=NULL/Capability=NULL"], ["/biomedx/Role=NULL/Capability=NULL"], []]) {
      assert.throws(() => encodeVomsAttributes(BIOMED_AA, bad), /long form|at least one FQAN/, JSON.stringify(bad));
    }
  });

  test("a whole AC from fixed keys and a fixed clock is byte-for-byte stable and reads back", async () => {
    const NOW = new Date("2026-03-01T12:00:00Z");
    const serial = (b: string) => Uint8Array.from(Buffer.from(`4${b}`.padEnd(40, "a"), "hex"));
    const caKey = SoftwareKey.fromPem(KAT_CA_KEY);
    const aaKey = SoftwareKey.fromPem(KAT_PROXY_KEY);
    const caDer = await createCaCertificate(caKey, { subject: "/DC=org/DC=kat/CN=KAT CA", keyBits: 3072, lifetimeSeconds: 3650 * 86400 }, NOW, serial("1"));
    const ca = authorityFrom(certificateParts(caDer), toPem("CERTIFICATE", caDer), caKey);
    const userDer = await buildUserCertificate(ca, {
      subject: "/DC=org/DC=kat/DC=users/O=KAT University/CN=Zoe Lukasiewicz 0VnvYk7YZpe08fP-",
      spki: SoftwareKey.fromPem(KAT_USER_KEY).publicKeySpki,
      notBefore: new Date(NOW.getTime() - 300_000),
      notAfter: new Date(NOW.getTime() + 11 * 86400_000),
      policyOid: "1.2.3.4.5",
      crlUrl: "https://portal.example.org/ca/crl.der",
      serial: serial("2"),
    });
    const aaDer = await buildAaCertificate(ca, aaKey.publicKeySpki, "/DC=org/DC=kat/OU=VOMS/OU=biomed/CN=voms.test.example", NOW, serial("3"));
    const fqans = ["/biomed/Role=pilot/Capability=NULL", "/biomed/Role=NULL/Capability=NULL", "/biomed/lab1/Role=NULL/Capability=NULL"];
    const acDer = await buildAttributeCertificate({
      aa: { ...BIOMED_AA, cert: certificateParts(aaDer), keyId: keyIdentifier(aaKey.publicKeySpki), key: aaKey },
      holder: certificateParts(userDer),
      fqans,
      serial: serial("4").slice(0, 16),
      notBefore: new Date(NOW.getTime() - 300_000),
      notAfter: new Date(NOW.getTime() + 12 * 3600_000),
    });
    // Recorded from this encoder, whose live ACs VOMS-C's strict validation (below) and XRootD
    // (test/xrootd.test.ts) accept. If it changes, the AC encoder changed: find out why first.
    assert.equal(crypto.createHash("sha256").update(acDer).digest("hex"), "832fcfd576a2d5e388a7073c3252754cc3e099098e275e5916a9aa935bd9c747");
    assert.ok(Buffer.from(acDer).includes(Buffer.from(encodeVomsAttributes(BIOMED_AA, fqans))), "carries the attributes above");
    const [read] = parseVomsExtension(vomsProxyExtension([acDer]).value);
    assert.deepEqual(read!.fqans, fqans);
    assert.equal(read!.policyAuthority, "biomed://voms.test.example:15000");
    assert.deepEqual([read!.notBefore, read!.notAfter], [new Date("2026-03-01T11:55:00Z"), new Date("2026-03-02T00:00:00Z")]);
  });
});

describe("proxies with VOMS attribute certificates", () => {
  let portal: TestPortal;
  let work: string;
  let trust: string;
  let validator: string;
  const alice = claimsFor("voms-alice", "Alice Example", { eduperson_entitlement: ENTITLEMENTS });

  before(async () => {
    const vosDir = tempDir();
    const vosFile = path.join(vosDir, "vos.json");
    fs.writeFileSync(vosFile, JSON.stringify([
      { name: "biomed", host: "voms.test.example", port: 15000, acMaxLifetime: "1h" },
      { name: "atlas", host: "voms.test.example", port: 15001 },
      { name: "cms", host: "voms.test.example", port: 15002 },
    ]));
    portal = await startTestPortal({ env: { CERTBRIDGE_VOS_FILE: vosFile } });
    fs.rmSync(vosDir, { recursive: true }); // read once, at start
    work = path.join(portal.dir, "work");
    fs.mkdirSync(work);
    trust = (await exportTrustDirectory(portal.cb, path.join(portal.dir, "certificates"))).directory;
    validator = path.join(work, "voms-validate");
    execFileSync("g++", ["-O1", "-o", validator, path.join(ROOT, "test/tools/voms-validate.cc"), "-lvomsapi", "-lssl", "-lcrypto"], { stdio: "pipe" });
  });
  after(async () => portal?.cleanup());

  async function issue(extension: ProxyExtensionHook, claims = alice, lifetimeSeconds = 12 * 3600) {
    const p = await issueProxy(portal.cb, { claims, extension, lifetimeSeconds, actor: "test" });
    const file = path.join(work, `p-${p.serial}.pem`);
    writeFileAtomic(file, p.pem, 0o600);
    return { ...p, file };
  }
  const strict = (file: string, vomsdir = path.join(trust, "vomsdir")) => run(validator, [file], { env: { X509_CERT_DIR: trust, X509_VOMS_DIR: vomsdir } });
  const voms = (reqs: string[]) => vomsExtension(portal.cb.vos, parseVomsRequests(reqs), portal.cb.clock);

  test("voms-proxy-info shows the VO and every FQAN; --acexists; VOMS-C's strict validation and Globus accept it", async () => {
    const p = await issue(voms(["biomed"]));
    const info = run("voms-proxy-info2", ["-all", "-file", p.file], { env: { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") } });
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /=== VO biomed extension information ===/);
    assert.deepEqual([...info.stdout.matchAll(/^attribute : (.*)$/gm)].map((m) => m[1]), ALICE_BIOMED_GROUPS, "groups only: no role unless asked for");
    const fqan = run("voms-proxy-info2", ["-fqan", "-file", p.file], { env: { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") } });
    assert.equal(fqan.stdout, ALICE_BIOMED_GROUPS.map((f) => `${f}\n`).join(""));
    assert.match(info.stdout, /uri\s+: voms\.test\.example:15000/);
    const env = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
    assert.equal(run("voms-proxy-info2", ["--acexists", "biomed", "-file", p.file], { env }).status, 0);
    assert.notEqual(run("voms-proxy-info2", ["--acexists", "atlas", "-file", p.file], { env }).status, 0);
    const s = strict(p.file);
    assert.equal(s.status, 0, s.stdout);
    assert.deepEqual(s.stdout.trim().split("\n"), ["VO biomed", ...ALICE_BIOMED_GROUPS.map((f) => `FQAN ${f}`)]);
    const g = run("grid-proxy-init", ["-verify", "-cert", p.file, "-key", p.file, "-certdir", trust, "-valid", "0:10", "-out", path.join(work, "derived.pem")]);
    assert.equal(g.status, 0, g.stderr + g.stdout);
  });

  test("an AC that ends before the proxy (the VO's cap) is said as a warning; none when the AC covers the proxy", async () => {
    const capped = await issue(voms(["biomed"]), alice, 12 * 3600);
    assert.equal(capped.warnings.length, 1, JSON.stringify(capped.warnings));
    assert.match(capped.warnings[0]!, /VOMS attributes of biomed end at .* before the proxy .*maximum AC lifetime is 1h/);
    const env = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
    const acLeft = Number(run("voms-proxy-info2", ["-actimeleft", "-file", capped.file], { env }).stdout.trim());
    const proxyLeft = Number(run("voms-proxy-info2", ["-timeleft", "-file", capped.file], { env }).stdout.trim());
    assert.ok(acLeft > 0 && acLeft <= 3600 && proxyLeft > 11 * 3600, `AC ${acLeft} s, proxy ${proxyLeft} s: the warning is true`);
    assert.deepEqual((await issue(voms(["biomed"]), alice, 1800)).warnings, [], "the AC covers a 30 min proxy");
    assert.deepEqual((await issue(voms(["atlas"]), alice, 12 * 3600)).warnings, [], "atlas caps at 12 h: the AC ends with the proxy");
    assert.deepEqual((await issue(voms([]), alice, 12 * 3600)).warnings, [], "no VO, nothing to say");
  });

  test("a requested role comes first, then the groups; a VO asked for without a role gets its groups only; two VOs give two ACs", async () => {
    const p = await issue(voms(["biomed:/biomed/Role=pilot", "atlas"]));
    const s = strict(p.file);
    assert.equal(s.status, 0, s.stdout);
    assert.deepEqual(s.stdout.trim().split("\n"), [
      "VO biomed",
      "FQAN /biomed/Role=pilot/Capability=NULL",
      "FQAN /biomed/Role=NULL/Capability=NULL",
      "FQAN /biomed/lab1/Role=NULL/Capability=NULL",
      "VO atlas",
      "FQAN /atlas/Role=NULL/Capability=NULL",
      "FQAN /atlas/production/Role=NULL/Capability=NULL",
    ]);
  });

  test("certbridge-proxy-info shows exactly what voms-proxy-info shows: --fqan = -fqan, and the same attribute lines", async () => {
    const env = { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") };
    const p = await issue(voms(["biomed:/biomed/Role=pilot", "atlas:/atlas/production/Role=vo-admin"]));
    const theirs = run("voms-proxy-info2", ["-fqan", "-file", p.file], { env });
    const ours = run(process.execPath, [PROXY_INFO, "--fqan", "--file", p.file]);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, theirs.stdout);
    assert.deepEqual(ours.stdout.trim().split("\n"), [
      "/biomed/Role=pilot/Capability=NULL",
      "/biomed/Role=NULL/Capability=NULL",
      "/biomed/lab1/Role=NULL/Capability=NULL",
      "/atlas/production/Role=vo-admin/Capability=NULL",
      "/atlas/Role=NULL/Capability=NULL",
      "/atlas/production/Role=NULL/Capability=NULL",
    ]);
    const attributes = (text: string) => [...text.matchAll(/^(?:=== VO (\S+) extension information ===|attribute : (.*))$/gm)].map((m) => m[1] ?? m[2]);
    const ourAll = run(process.execPath, [PROXY_INFO, "--file", p.file]);
    assert.equal(ourAll.status, 0, ourAll.stderr);
    assert.deepEqual(attributes(ourAll.stdout), attributes(run("voms-proxy-info2", ["-all", "-file", p.file], { env }).stdout));
    assert.equal(attributes(ourAll.stdout).length, 8, "two VO headers and six attributes");
    // no AC: both print no FQAN and exit 1
    const plain = await issue({ describe: () => ({}), extensions: async () => [] });
    const theirsPlain = run("voms-proxy-info2", ["-fqan", "-file", plain.file], { env });
    const oursPlain = run(process.execPath, [PROXY_INFO, "--fqan", "--file", plain.file]);
    assert.deepEqual([oursPlain.status, oursPlain.stdout], [theirsPlain.status, theirsPlain.stdout]);
    assert.deepEqual([oursPlain.status, oursPlain.stdout], [1, ""]);
  });

  test("the AC, checked independently: signature by the AA key, holder = user subject and serial, AKID = AA SKID, lifetime capped", async () => {
    const p = await issue(voms(["biomed"]));
    const [proxyPem, , userPem] = pemBlocks(fs.readFileSync(p.file, "utf8")).map((b) => b.der);
    const proxy = pkijs.Certificate.fromBER(new Uint8Array(proxyPem!));
    const user = certificateParts(userPem!);
    const e = proxy.extensions!.find((x) => x.extnID === VOMS_OID.acSequence)!;
    assert.equal(e.critical, false);
    const outer = asn1js.fromBER(e.extnValue.valueBlock.valueHexView).result as asn1js.Sequence;
    const acDer = new Uint8Array(((outer.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence).valueBeforeDecodeView);
    const ac = pkijs.AttributeCertificateV2.fromBER(acDer);
    const aa = portal.cb.vos.get("biomed")!.aa;
    const info = new Uint8Array(ac.acinfo.toSchema().toBER());
    assert.ok(crypto.verify("sha256", info, crypto.createPublicKey({ key: Buffer.from(aa.cert.spki), format: "der", type: "spki" }), ac.signatureValue.valueBlock.valueHexView));
    const holder = ac.acinfo.holder.baseCertificateID!;
    assert.deepEqual(new Uint8Array(holder.issuer.names[0]!.value.toSchema().toBER()), user.subject, "holder names the user certificate's subject");
    assert.deepEqual(new Uint8Array(holder.serialNumber.valueBlock.valueHexView), user.serial);
    const akid = ac.acinfo.extensions!.extensions.find((x) => x.extnID === VOMS_OID.authorityKeyIdentifier)!;
    assert.deepEqual(new Uint8Array((akid.parsedValue as pkijs.AuthorityKeyIdentifier).keyIdentifier!.valueBlock.valueHexView), aa.keyId);
    const validity = ac.acinfo.attrCertValidityPeriod;
    assert.ok(validity.notAfterTime.getTime() <= p.notAfter.getTime(), "never outlives the proxy");
    assert.equal(validity.notAfterTime.getTime() - Math.floor(Date.now() / 1000) * 1000 <= 3600_000, true, "the VO's 1 h cap");
  });

  describe("forgeries must be refused by the strict validator", () => {
    /** A hook that builds the AC itself, to make it wrong in one way. */
    const forged = (mutate: "otherKey" | "expired"): ProxyExtensionHook => ({
      describe: () => ({ vo: "biomed", fqans: ["/biomed/Role=NULL/Capability=NULL"] }),
      async extensions({ issuer, notBefore, notAfter }) {
        const real = portal.cb.vos.get("biomed")!.aa;
        const aa = mutate === "otherKey" ? { ...real, key: await SoftwareKey.generate(2048) } : real;
        const times = mutate === "expired" ? { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) } : { notBefore, notAfter };
        return [vomsProxyExtension([await buildAttributeCertificate({ aa, holder: issuer, fqans: ["/biomed/Role=NULL/Capability=NULL"], serial: crypto.randomBytes(8), ...times })])];
      },
    });

    test("an AC signed by another key", async () => {
      const p = await issue(forged("otherKey"));
      const s = strict(p.file);
      assert.equal(s.status, 1);
      assert.match(s.stdout, /FAIL .*signature/i);
      // ... which voms-proxy-info would still print: the reason for the strict check
      assert.match(run("voms-proxy-info2", ["-all", "-file", p.file], { env: { X509_CERT_DIR: trust, X509_VOMS_DIR: path.join(trust, "vomsdir") } }).stdout, /attribute : \/biomed\/Role=NULL\/Capability=NULL/);
    });

    test("an expired AC", async () => {
      const p = await issue(forged("expired"));
      const s = strict(p.file);
      assert.equal(s.status, 1);
      assert.match(s.stdout, /FAIL/);
    });

    test("a wrong .lsc (the AA is not the one the site configured)", async () => {
      const p = await issue(voms(["biomed"]));
      const wrong = path.join(work, "wrong-vomsdir");
      fs.mkdirSync(path.join(wrong, "biomed"), { recursive: true });
      fs.writeFileSync(path.join(wrong, "biomed", "voms.test.example.lsc"), "/DC=org/DC=elsewhere/CN=voms.test.example\n/DC=org/DC=certbridge-test/CN=Certbridge Test CA\n");
      assert.equal(strict(p.file, wrong).status, 1);
      assert.equal(strict(p.file).status, 0, "and passes with the right one");
    });
  });

  describe("refusals", () => {
    test("a non-member and a missing role get access_denied with the reason, nothing is issued, the refusal is audited", async () => {
      const before = await portal.cb.db.certificate.count({ where: { kind: "proxy" } });
      await assert.rejects(issue(voms(["cms"])), (e: unknown) => e instanceof CertbridgeError && e.code === "access_denied" && e.status === 403 && /not a member of VO cms/.test(e.message));
      await assert.rejects(issue(voms(["biomed:/biomed/Role=admin"])), /do not hold the role \/biomed\/Role=admin in VO biomed/);
      await assert.rejects(issue(voms(["unknownvo"])), /VO unknownvo is not served by this portal/);
      assert.equal(await portal.cb.db.certificate.count({ where: { kind: "proxy" } }), before);
      const refusals = await portal.cb.db.auditEvent.findMany({ where: { action: "proxy.refuse" }, select: { details: true } });
      assert.ok(refusals.some((r) => /not a member of VO cms/.test(r.details)));
      assert.ok(refusals.some((r) => /Role=admin/.test(r.details)));
    });
  });

  test("the trust export carries vomsdir/<vo>/<host>.lsc and the vomses line", () => {
    const lsc = fs.readFileSync(path.join(trust, "vomsdir/biomed/voms.test.example.lsc"), "utf8");
    assert.equal(lsc, "/DC=org/DC=certbridge/OU=VOMS/OU=biomed/CN=voms.test.example\n/DC=org/DC=certbridge-test/CN=Certbridge Test CA\n");
    assert.equal(fs.readFileSync(path.join(trust, "vomses/biomed"), "utf8"), `"biomed" "voms.test.example" "15000" "/DC=org/DC=certbridge/OU=VOMS/OU=biomed/CN=voms.test.example" "biomed"\n`);
    const ns = fs.readdirSync(trust).find((f) => f.endsWith(".namespaces"))!;
    assert.match(fs.readFileSync(path.join(trust, ns), "utf8"), /PERMIT Subject "\/DC=org\/DC=certbridge\/OU=VOMS\/\.\*"/);
  });
});
