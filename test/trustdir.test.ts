/**
 * Trust-directory file names and policy files (lib/pki/trustdir.ts).
 *
 * The subject hashes are checked against the real `openssl x509
 * -subject_hash / -subject_hash_old` on throwaway certificates, so the tests
 * compare with OpenSSL itself rather than with a re-statement of x_name.c.
 * Two kinds of certificates are used:
 *  - made by `openssl req -x509 -subj ...` under two string masks:
 *    "default" (PrintableString where the characters allow, else T61String,
 *    else BMPString) and "utf8only" (UTF8String), with DC/emailAddress as
 *    IA5String and C as PrintableString either way;
 *  - an OpenSSL certificate with its subject replaced by a hand-built Name,
 *    for what `openssl req` cannot write (UniversalString, NumericString, BIT
 *    STRING, multi-valued RDNs, empty RDNs, odd whitespace). The signature no
 *    longer verifies, which `openssl x509 -noout -subject_hash` does not check.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as asn1js from "asn1js";
import { encodeName, parseSlashDn } from "../lib/pki/dn";
import { namespacesPolicy, signingPolicy, subjectHash, subjectHashOld } from "../lib/pki/trustdir";

// ---------------------------------------------------------------------------
// OpenSSL scaffolding
// ---------------------------------------------------------------------------

const OPENSSL = "/usr/bin/openssl";
const dir = mkdtempSync(join(tmpdir(), "certbridge-trustdir-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (args: string[]) => execFileSync(OPENSSL, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

const KEY = join(dir, "key.pem");
openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", KEY]);

type StringMask = "default" | "utf8only";
const config = (mask: StringMask) => {
  const path = join(dir, `${mask}.cnf`);
  writeFileSync(path, `[req]\ndistinguished_name = dn\nstring_mask = ${mask}\n[dn]\n`);
  return path;
};
const CONFIG: Record<StringMask, string> = { default: config("default"), utf8only: config("utf8only") };

let fileCounter = 0;
const freshPath = (ext: string) => join(dir, `f${++fileCounter}.${ext}`);

/** `openssl req -x509` with this -subj; the DER certificate. `utf8: false` makes OpenSSL read the bytes as Latin-1. */
function opensslCert(subject: string, mask: StringMask, utf8 = true): Uint8Array {
  const out = freshPath("der");
  openssl([
    "req", "-x509", "-key", KEY, "-config", CONFIG[mask], ...(utf8 ? ["-utf8"] : []),
    "-subj", subject, "-days", "1", "-outform", "DER", "-out", out,
  ]);
  return Uint8Array.from(readFileSync(out));
}

/** What OpenSSL prints for a DER certificate; throws when OpenSSL cannot load it. */
function opensslHashes(certDer: Uint8Array): { hash: string; old: string } {
  const path = freshPath("der");
  writeFileSync(path, certDer);
  const [hash, old] = openssl(["x509", "-inform", "DER", "-in", path, "-noout", "-subject_hash", "-subject_hash_old"]).trim().split("\n");
  assert.ok(hash && old, "openssl printed two hashes");
  return { hash, old };
}

/** The certificate's parts as raw DER slices, and where the subject sits in the TBS. */
function certSlices(certDer: Uint8Array) {
  const parsed = asn1js.fromBER(certDer);
  assert.ok(parsed.result instanceof asn1js.Sequence);
  const [tbs, alg, sig] = parsed.result.valueBlock.value;
  assert.ok(tbs instanceof asn1js.Sequence && alg && sig);
  const fields = tbs.valueBlock.value.map((b) => b.valueBeforeDecodeView);
  // TBSCertificate: [0] version (absent in the v1 certificates `req -x509` writes without extensions),
  // serialNumber, signature, issuer, validity, subject, ...
  const hasVersion = tbs.valueBlock.value[0]?.idBlock.tagClass === 3;
  return { fields, subjectIndex: hasVersion ? 5 : 4, alg: alg.valueBeforeDecodeView, sig: sig.valueBeforeDecodeView };
}

/** The subject Name exactly as the certificate carries it (not re-encoded by pkijs). */
function subjectOf(certDer: Uint8Array): Uint8Array {
  const { fields, subjectIndex } = certSlices(certDer);
  return Uint8Array.from(fields[subjectIndex]!);
}

// A tiny DER writer for hand-built Names (X.690 §8.1.3 definite lengths).
function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from(Buffer.concat([Uint8Array.of(tag, ...len), body]));
}
const bytes = (s: string) => Uint8Array.from(Buffer.from(s, "utf8"));
const latin1 = (s: string) => Uint8Array.from(Buffer.from(s, "latin1"));
const ucs2 = (s: string) => Uint8Array.from(Buffer.from(s, "utf16le").swap16());
const ucs4 = (s: string) => Uint8Array.from([...s].flatMap((c) => { const v = c.codePointAt(0)!; return [v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]; }));
const OIDS = { CN: "550403", O: "55040a", OU: "55040b", serialNumber: "550405", DC: "0992268993f22c640119" } as const;
const atv = (type: keyof typeof OIDS, value: Uint8Array) => tlv(0x30, tlv(0x06, Uint8Array.from(Buffer.from(OIDS[type], "hex"))), value);
const rdn = (...atvs: Uint8Array[]) => tlv(0x31, ...atvs);
const name = (...rdns: Uint8Array[]) => tlv(0x30, ...rdns);
const TAGS = { UTF8: 0x0c, Numeric: 0x12, Printable: 0x13, T61: 0x14, IA5: 0x16, Visible: 0x1a, Universal: 0x1c, BMP: 0x1e } as const;

/** An OpenSSL-made certificate with its subject replaced by `nameDer` (outer lengths re-encoded). */
const template = opensslCert("/CN=template", "utf8only");
function withSubject(nameDer: Uint8Array): Uint8Array {
  const { fields, subjectIndex, alg, sig } = certSlices(template);
  const tbs = tlv(0x30, ...fields.slice(0, subjectIndex), nameDer, ...fields.slice(subjectIndex + 1));
  return tlv(0x30, tbs, alg, sig);
}

/** Universal tag numbers of every attribute value in a Name, to show which string types a test exercised. */
function valueTags(nameDer: Uint8Array): number[] {
  const parsed = asn1js.fromBER(nameDer).result;
  assert.ok(parsed instanceof asn1js.Sequence);
  return parsed.valueBlock.value.flatMap((set) => {
    assert.ok(set instanceof asn1js.Set);
    return set.valueBlock.value.map((seq) => {
      assert.ok(seq instanceof asn1js.Sequence);
      return seq.valueBlock.value[1]!.idBlock.tagNumber;
    });
  });
}

function assertMatchesOpenssl(certDer: Uint8Array, label: string): void {
  const subject = subjectOf(certDer);
  const expected = opensslHashes(certDer);
  assert.equal(subjectHash(subject), expected.hash, `${label}: -subject_hash`);
  assert.equal(subjectHashOld(subject), expected.old, `${label}: -subject_hash_old`);
}

// ---------------------------------------------------------------------------
// Subject hashes against openssl
// ---------------------------------------------------------------------------

const LONG = "Long Organisation Name Padded Out To The Sixty-Four Char Limit!"; // 63 + 1 below
const OPENSSL_SUBJECTS: { label: string; subject: string; utf8?: boolean }[] = [
  { label: "DC components, mixed case", subject: "/DC=org/DC=Example/O=Certbridge Test/CN=Alice EXAMPLE" },
  { label: "leading, trailing and repeated spaces", subject: "/DC=org/DC=example/CN=  Leading, trailing   and  multiple   spaces  " },
  { label: "UTF-8 non-ASCII", subject: "/DC=org/DC=example/O=Zoë/CN=Zoë Łukasiewicz" },
  { label: "long values (Name over 256 bytes)", subject: `/C=NL/O=${LONG}X/OU=${LONG}Y/OU=${LONG}Z/CN=${LONG}W` },
  { label: "punctuation ' ( ) + , - . ? @", subject: "/C=IE/O=O'Brien (Test) \\+ Co, Ltd - v1.0?/CN=user@example.org (Mr. O'Brien)" },
  { label: "tab inside a value, emailAddress", subject: "/DC=ORG/DC=Example/CN=Tab\tSeparated \t Name/emailAddress=Bob.Example@Example.ORG" },
  { label: "character outside the BMP", subject: "/DC=org/CN=Emoji \u{1F600} Name" },
  { label: "UTF-8 bytes read as Latin-1", subject: "/DC=org/CN=Zoë Ŀ", utf8: false },
  { label: "empty subject", subject: "/" },
];

describe("subjectHash / subjectHashOld agree with openssl", () => {
  const tagsSeen = new Set<number>();
  for (const mask of ["default", "utf8only"] as const) {
    for (const { label, subject, utf8 } of OPENSSL_SUBJECTS) {
      test(`${label} (string_mask=${mask})`, () => {
        const cert = opensslCert(subject, mask, utf8 ?? true);
        for (const t of valueTags(subjectOf(cert))) tagsSeen.add(t);
        assertMatchesOpenssl(cert, label);
      });
    }
  }

  test("the certificates above exercised IA5, Printable, T61, BMP and UTF8 strings", () => {
    for (const [type, tag] of Object.entries({ IA5: TAGS.IA5, Printable: TAGS.Printable, T61: TAGS.T61, BMP: TAGS.BMP, UTF8: TAGS.UTF8 })) {
      assert.ok(tagsSeen.has(tag), `no ${type}String value was hashed`);
    }
  });

  test("the long Name needs a two-byte DER length", () => {
    const subject = subjectOf(opensslCert(OPENSSL_SUBJECTS[3]!.subject, "default"));
    assert.ok(subject.length > 256, `subject is only ${subject.length} bytes`);
  });

  test("an empty Name hashes the empty string (SHA-1 da39a3ee... read little-endian)", () => {
    assert.equal(subjectHash(name()), "eea339da");
  });
});

describe("hand-built Names spliced into a certificate agree with openssl", () => {
  const cases: Record<string, Uint8Array> = {
    "UniversalString with a non-BMP character": name(rdn(atv("CN", tlv(TAGS.Universal, ucs4("Ünïcode \u{1F600}  UNIV "))))),
    "BMPString, uppercase Greek is not lowercased": name(rdn(atv("O", tlv(TAGS.BMP, ucs2("ΑΒΓ ABC")))), rdn(atv("CN", tlv(TAGS.BMP, ucs2(" x "))))),
    "IA5String holding a Latin-1 byte": name(rdn(atv("DC", tlv(TAGS.IA5, latin1("Café"))))),
    "T61String holding Latin-1 bytes": name(rdn(atv("CN", tlv(TAGS.T61, latin1("  ÉCOLE  Normale ÿ"))))),
    "every ossl_isspace character": name(rdn(atv("CN", tlv(TAGS.Printable, bytes("\x0b\x0cA\r\n\tB\x0b C\x0cD\rE\nF\tG \x0c\t"))))),
    "no-break space and É are kept": name(rdn(atv("CN", tlv(TAGS.UTF8, bytes("\u00a0Élan\u00a0 VITAL\u00a0"))))),
    "UTF-8 byte order mark is kept": name(rdn(atv("CN", tlv(TAGS.UTF8, bytes("\ufeffBOM"))))),
    "NumericString and BIT STRING are hashed as they are": name(
      rdn(atv("serialNumber", tlv(TAGS.Numeric, bytes("  12  34 ")))),
      rdn(atv("CN", tlv(0x03, Uint8Array.of(0, 0x41, 0x42)))),
    ),
    // DER orders the SET by the encodings: OU (shorter) first. Canonically CN
    // shrinks to "a b" and must come first, so the SET has to be re-sorted.
    "multi-valued RDN re-sorted after canonicalisation": name(
      rdn(atv("DC", tlv(TAGS.IA5, bytes("org")))),
      rdn(atv("OU", tlv(TAGS.UTF8, bytes("cdef"))), atv("CN", tlv(TAGS.UTF8, bytes("A      B")))),
    ),
    "an empty RDN contributes nothing": name(rdn(), rdn(atv("CN", tlv(TAGS.UTF8, bytes("X"))))),
    "only empty RDNs": name(rdn(), rdn()),
  };
  for (const [label, nameDer] of Object.entries(cases)) {
    test(label, () => {
      const cert = withSubject(nameDer);
      assert.deepEqual(subjectOf(cert), nameDer, "splice kept the Name byte-for-byte");
      assertMatchesOpenssl(cert, label);
    });
  }

  const rejected: Record<string, Uint8Array> = {
    "invalid UTF-8": name(rdn(atv("CN", tlv(TAGS.UTF8, Uint8Array.of(0x41, 0xc3, 0x28))))),
    "UTF-8 encoded surrogate": name(rdn(atv("CN", tlv(TAGS.UTF8, Uint8Array.of(0xed, 0xa0, 0x80))))),
    "BMPString of odd length": name(rdn(atv("CN", tlv(TAGS.BMP, Uint8Array.of(0, 0x41, 0))))),
    "BMPString with a lone surrogate": name(rdn(atv("CN", tlv(TAGS.BMP, Uint8Array.of(0xd8, 0x00, 0, 0x41))))),
    "UniversalString above U+10FFFF": name(rdn(atv("CN", tlv(TAGS.Universal, Uint8Array.of(0, 0x11, 0, 0))))),
    "VisibleString (not in ASN1_PRINTABLE)": name(rdn(atv("CN", tlv(TAGS.Visible, bytes("Visible"))))),
    "OCTET STRING value": name(rdn(atv("CN", tlv(0x04, bytes("ab"))))),
  };
  for (const [label, nameDer] of Object.entries(rejected)) {
    test(`refused like openssl refuses it: ${label}`, () => {
      assert.throws(() => opensslHashes(withSubject(nameDer)), "openssl loads the certificate");
      assert.throws(() => subjectHash(nameDer));
      assert.throws(() => subjectHashOld(nameDer));
    });
  }

  test("not a Name at all", () => {
    assert.throws(() => subjectHash(Uint8Array.of(0x31, 0x00)), /not a SEQUENCE/);
    assert.throws(() => subjectHash(Uint8Array.of(0x30, 0x00, 0x00)), /trailing/);
    assert.throws(() => subjectHashOld(Uint8Array.of(0x30, 0x03, 0x31)), /DER/);
  });
});

describe("Names built by encodeName", () => {
  const SUBJECTS = [
    "/DC=org/DC=example/CN=Alice Example",
    "/C=NL/O=Example/OU=Grid/CN=Zoë Łukasiewicz",
    "/DC=org/DC=example/CN=  Spaced   Out ",
    "/DC=org/DC=example/emailAddress=Alice@Example.org/CN=ALICE",
  ];
  let sameDer = 0;
  let otherDer = 0;
  for (const mask of ["default", "utf8only"] as const) {
    for (const subject of SUBJECTS) {
      test(`${subject} (openssl string_mask=${mask})`, () => {
        const ours = encodeName(parseSlashDn(subject));
        const cert = opensslCert(subject, mask);
        const theirs = subjectOf(cert);
        const expected = opensslHashes(cert);
        // The canonical hash ignores string types, so it must agree either way.
        assert.equal(subjectHash(ours), expected.hash);
        // The old hash is over the exact bytes: equal exactly when the encodings are.
        if (Buffer.from(ours).equals(theirs)) {
          sameDer++;
          assert.equal(subjectHashOld(ours), expected.old);
        } else {
          otherDer++;
          assert.notEqual(subjectHashOld(ours), expected.old);
        }
      });
    }
  }
  test("both identical and differently typed encodings were compared", () => {
    assert.ok(sameDer > 0 && otherDer > 0, `same=${sameDer} other=${otherDer}`);
  });
});

// ---------------------------------------------------------------------------
// Policy files
// ---------------------------------------------------------------------------

const CA = "/DC=org/DC=example/CN=Example Online CA";
const NS = ["/DC=org/DC=example", "/O=Grid/O=Example Users"];
const significant = (text: string) => text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));

describe("signingPolicy", () => {
  test("writes the three EACL lines with Globus quoting", () => {
    const text = signingPolicy(CA, NS);
    assert.deepEqual(significant(text), [
      "access_id_CA      X509         '/DC=org/DC=example/CN=Example Online CA'",
      "pos_rights        globus        CA:sign",
      `cond_subjects     globus       '"/DC=org/DC=example/*" "/O=Grid/O=Example Users/*"'`,
    ]);
    assert.ok(text.startsWith("#"), "starts with a comment header");
    assert.ok(text.endsWith("\n"));
  });

  test("reads back the way jGlobus SigningPolicyParser reads it", () => {
    const lines = significant(signingPolicy(CA, NS));
    // getCA: after "access_id_CA" and "X509", the DN between the first two single quotes.
    const ca = /^access_id_CA\s+X509\s+'([^']*)'$/.exec(lines[0]!)?.[1];
    assert.equal(ca, CA);
    // getAllowedDNs: the single-quoted value, then each pattern between a pair of double quotes.
    const value = /^cond_subjects\s+globus\s+'([^']*)'$/.exec(lines[2]!)?.[1];
    assert.deepEqual([...(value ?? "").matchAll(/"([^"]*)"/g)].map((m) => m[1]), NS.map((ns) => `${ns}/*`));
  });

  test("lists only the given namespaces, not the CA's own DN", () => {
    const text = signingPolicy(CA, ["/DC=org/DC=example/DC=users"]);
    assert.match(text, /^cond_subjects {5}globus {7}'"\/DC=org\/DC=example\/DC=users\/\*"'$/m);
  });

  test("refuses what the format cannot express", () => {
    assert.throws(() => signingPolicy("/DC=org/CN=O'Brien CA", NS), /"'"/);
    assert.throws(() => signingPolicy("/DC=org/CN=Example CA ", NS), /CA subject/);
    assert.throws(() => signingPolicy(CA, ['/DC=org/O="Quoted"']), /subject namespace/);
    assert.throws(() => signingPolicy(CA, ["/DC=org/O=Star*"]), /"\*"/);
    assert.throws(() => signingPolicy(CA, ["/DC=org/O=What?"]), /"\?"/);
    assert.throws(() => signingPolicy(CA, ["/DC=org/O=x\npos_rights globus CA:sign"]), /control character/);
    assert.throws(() => signingPolicy(CA, []), /at least one/);
    assert.throws(() => signingPolicy(CA, ["/DC=org/"]), /not a slash-form DN/);
    assert.throws(() => signingPolicy("DC=org/CN=CA", NS), /not a slash-form DN/);
  });
});

describe("namespacesPolicy", () => {
  test("writes one TO Issuer ... PERMIT Subject entry per namespace", () => {
    const text = namespacesPolicy(CA, NS);
    assert.ok(text.split("\n").includes("#NAMESPACES-VERSION: 1.0"), "canl requires the version line");
    assert.deepEqual(significant(text), [
      `TO Issuer "${CA}" \\`,
      `  PERMIT Subject "/DC=org/DC=example/.*"`,
      `TO Issuer "${CA}" \\`,
      `  PERMIT Subject "/O=Grid/O=Example Users/.*"`,
    ]);
  });

  const DOTTED_CA = "/C=AE/O=Digital Trust L.L.C./CN=Example CA";
  const ODD_NS = "/C=AE/O=Digital Trust L.L.C./OU=Grid (Test) [1]+{2}|$^*?";

  test("escapes regex metacharacters in the Subject, not in the literal Issuer", () => {
    const text = namespacesPolicy(DOTTED_CA, [ODD_NS]);
    assert.deepEqual(significant(text), [
      `TO Issuer "/C=AE/O=Digital Trust L.L.C./CN=Example CA" \\`,
      String.raw`  PERMIT Subject "/C=AE/O=Digital Trust L\.L\.C\./OU=Grid \(Test\) \[1\]\+\{2\}\|\$\^\*\?/.*"`,
    ]);
  });

  test("the Subject pattern matches exactly the DNs under the namespace", () => {
    // Join continuation lines and take the quoted Subject as canl EuGridPmaNamespacesParser does,
    // then match the whole DN case-insensitively as OpensslNamespacePolicyImpl does.
    const entry = significant(namespacesPolicy(DOTTED_CA, [ODD_NS])).join("\n").replace(/\\\n/g, "");
    const subject = /PERMIT Subject "((?:[^"\\]|\\.)*)"/.exec(entry)?.[1];
    assert.ok(subject);
    const re = new RegExp(`^(?:${subject})$`, "i");
    assert.match(`${ODD_NS}/CN=Alice Example`, re);
    assert.match(`${ODD_NS.toLowerCase()}/cn=alice`, re);
    assert.doesNotMatch(ODD_NS, re, "the namespace itself is not under the namespace");
    assert.doesNotMatch(`${ODD_NS.replaceAll(".", "x")}/CN=Alice`, re, "dots are literal");
    assert.doesNotMatch("/C=AE/O=Digital Trust L.L.C./OU=Grid (Test) 1+{2}|$^*?/CN=Alice", re, "brackets are literal");
    assert.doesNotMatch(`${ODD_NS}X/CN=Alice`, re, "a sibling that merely starts with the namespace");
  });

  test("refuses what the format cannot express", () => {
    assert.throws(() => namespacesPolicy('/DC=org/CN=The "Best" CA', NS), /CA subject/);
    assert.throws(() => namespacesPolicy("/DC=org/CN=CA #1", NS), /"#"/);
    assert.throws(() => namespacesPolicy(CA, ["/DC=org/O=back\\slash"]), /subject namespace/);
    assert.throws(() => namespacesPolicy(CA, ["/DC=org/O=x\r\nTO Issuer \"evil\""]), /control character/);
    assert.throws(() => namespacesPolicy(CA, []), /at least one/);
    assert.throws(() => namespacesPolicy(CA, ["/DC=org/NOPE=x"]), /not a slash-form DN/);
  });
});
