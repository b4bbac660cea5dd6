/**
 * Subject DNs from OIDC claims (lib/identity/subject.ts). Expected hashes were
 * computed independently with `printf ... | openssl dgst -sha256 -binary | base64`
 * so the tests do not just repeat the implementation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CertbridgeError } from "../lib/errors";
import { decodeName, encodeName, parseSlashDn } from "../lib/pki/dn";
import {
  identifierSuffix,
  printable,
  stableIdentifier,
  subjectFromClaims,
  type SubjectPolicy,
  type VerifiedClaims,
} from "../lib/identity/subject";

const RCAUTH: SubjectPolicy = { base: "/DC=eu/DC=rcauth/DC=rcauth-clients", defaultOrganisation: "Certbridge Users" };
const ISS = "https://idp.example.org";
const USER_EXAMPLE_SUFFIX = "0VnvYk7YZpe08fP-"; // RCauth's published test vector for "user@example.org"

const claims = (extra: Partial<VerifiedClaims> = {}): VerifiedClaims => ({ iss: ISS, sub: "alice", name: "Alice Example", ...extra });

/** The invariants every issued subject must satisfy, whatever went in. */
function assertWellFormed(s: ReturnType<typeof subjectFromClaims>): void {
  assert.deepEqual(parseSlashDn(s.dn), s.rdns, "slash form must round-trip: no '/' or '=' inside values");
  assert.deepEqual(decodeName(encodeName(s.rdns)), s.rdns, "DER encoding must round-trip");
  for (const v of [s.commonName, s.organisation]) {
    assert.match(v, /^[A-Za-z0-9 '()+,\-.?@]+$/, `"${v}" has a character outside the printable set`);
    assert.equal(v, v.trim());
    assert.doesNotMatch(v, / {2}/);
  }
  assert.ok(s.commonName.length <= 64, `CN is ${s.commonName.length} bytes`);
  assert.ok(s.organisation.length <= 64, `O is ${s.organisation.length} bytes`);
  assert.deepEqual(s.rdns.slice(-2).map((r) => r.type), ["O", "CN"]);
}

/** Expect a 400 CertbridgeError whose message matches. */
function assertInvalidRequest(fn: () => unknown, message: RegExp, label = ""): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CertbridgeError, `${label}: expected CertbridgeError, got ${String(e)}`);
    assert.equal(e.code, "invalid_request", label);
    assert.equal(e.status, 400, label);
    assert.match(e.message, message, label);
    return true;
  }, label);
}

// ---------------------------------------------------------------------------

test("identifierSuffix: RCauth test vector and independent vectors", () => {
  const cases: [string, string][] = [
    ["user@example.org", USER_EXAMPLE_SUFFIX], // base64 "0VnvYk7YZpe08fP/..." : "/" -> "-"
    ["user9@example.org", "cyAi-r7p-5xtovi5"], // base64 "cyAi/r7p+5xtovi5..." : both "/" and "+" -> "-"
    ["Zo\u00eb", "xqEmmFgvwRBOokEH"], // UTF-8 (C3 AB), not Latin-1
    ["Zoe\u0308", "wQbRVYfF7GwLWm1v"], // NFD form hashes differently: identifiers are not normalised
  ];
  for (const [id, want] of cases) assert.equal(identifierSuffix(id), want, id);
});

test("stableIdentifier: eduperson_unique_id first, else '<iss> <sub>'", () => {
  const cases: [string, VerifiedClaims, string][] = [
    ["eppn-like unique id wins", claims({ eduperson_unique_id: "u123@example.org" }), "u123@example.org"],
    ["iss and sub", claims(), `${ISS} alice`],
    ["sub may contain spaces: first space still splits", claims({ sub: "a b" }), `${ISS} a b`],
    ["empty unique id counts as absent", claims({ eduperson_unique_id: "" }), `${ISS} alice`],
    ["null unique id counts as absent", claims({ eduperson_unique_id: null as unknown as string }), `${ISS} alice`],
  ];
  for (const [label, c, want] of cases) assert.equal(stableIdentifier(c), want, label);
  assertInvalidRequest(() => stableIdentifier(claims({ eduperson_unique_id: "has space@x" })), /eduperson_unique_id/);
});

test("printable: transliteration, X replacement, whitespace", () => {
  const cases: [string, string, string][] = [
    ["RCauth example", "Zoë Łukasiewicz", "Zoe Lukasiewicz"],
    ["German", "Jürgen Groß-Öztürk", "Jurgen Gross-Ozturk"],
    ["German capital sharp s", "GROẞ", "GROSS"],
    ["Polish", "Łódź Żółć Ścięgna", "Lodz Zolc Sciegna"],
    ["Czech", "Jiří Žluťoučký Kůň", "Jiri Zlutoucky Kun"],
    ["Nordic", "Søren Ærø Þór Ðan", "Soren AEro Thor Dan"],
    ["French ligatures", "Œuvre cœur", "OEuvre coeur"],
    ["Croatian/Turkish", "Đurđa Işık İnce", "Durda Isik Ince"],
    ["NFD input", "Zoe\u0308", "Zoe"],
    ["compatibility forms", "ﬁnn Ａｂｃ", "finn Abc"],
    ["curly apostrophe", "O’Brien", "O'Brien"],
    ["curly double quotes", "“Bob”", "'Bob'"],
    ["backtick and acute accent as apostrophe", "D`Arcy D´Arcy", "D'Arcy D'Arcy"],
    ["apostrophe that NFKD produces (ŉ -> ʼn)", "ŉ", "'n"],
    ["en dash", "Anne–Marie", "Anne-Marie"],
    ["Greek: one X per letter", "Αλέξης", "XXXXXX"],
    ["Cyrillic: one X per letter", "Иван Петров", "XXXX XXXXXX"],
    ["CJK", "山田 太郎", "XX XX"],
    ["emoji: one X per code point, not per UTF-16 unit", "Ann 😀🎉", "Ann XX"],
    ["emoji with variation selector", "❤️", "X"],
    ["DN metacharacters", `a/b=c,d"e'f\\g`, "aXbXc,dXe'fXg"],
    ["other punctuation", "x:y;z<>#*%&!_", "xXyXzXXXXXXXX"],
    ["allowed punctuation kept", "A (B) C+D, E-F. G? h@i 'j'", "A (B) C+D, E-F. G? h@i 'j'"],
    ["tabs and newlines are whitespace", "\tAnna\n\r\nSchmidt\t", "Anna Schmidt"],
    ["no-break and ideographic spaces", "Anna\u00a0\u3000Schmidt", "Anna Schmidt"],
    ["invisible format characters dropped", "Ma\u00adrie\u200b Cu\u200drie\u200e", "Marie Curie"],
    ["other control characters become X", "a\u0000b\u0007c", "aXbXc"],
    ["lone surrogate becomes one X", "a\ud800b", "aXb"],
    ["only whitespace becomes empty", " \t\n ", ""],
  ];
  for (const [label, input, want] of cases) assert.equal(printable(input), want, label);
});

test("subjectFromClaims: RCauth scheme end to end", () => {
  const s = subjectFromClaims(
    claims({ name: "Zoë Łukasiewicz", eduperson_unique_id: "user@example.org", idp_name: "EGI Foundation" }),
    RCAUTH,
  );
  assert.equal(s.dn, `/DC=eu/DC=rcauth/DC=rcauth-clients/O=EGI Foundation/CN=Zoe Lukasiewicz ${USER_EXAMPLE_SUFFIX}`);
  assert.equal(s.commonName, `Zoe Lukasiewicz ${USER_EXAMPLE_SUFFIX}`);
  assert.equal(s.organisation, "EGI Foundation");
  assert.equal(s.identifier, "user@example.org");
  assert.deepEqual(s.rdns, [
    { type: "DC", value: "eu" },
    { type: "DC", value: "rcauth" },
    { type: "DC", value: "rcauth-clients" },
    { type: "O", value: "EGI Foundation" },
    { type: "CN", value: `Zoe Lukasiewicz ${USER_EXAMPLE_SUFFIX}` },
  ]);
  assertWellFormed(s);
});

test("subjectFromClaims: Unicode names", () => {
  const cases: [string, string][] = [
    ["Jürgen Müller-Lüdenscheidt", "Jurgen Muller-Ludenscheidt"],
    ["Małgorzata Wąsowska-Żak", "Malgorzata Wasowska-Zak"],
    ["Přemysl Dvořák", "Premysl Dvorak"],
    ["Γιώργος Παπαδόπουλος", "XXXXXXX XXXXXXXXXXXX"],
    ["Дмитрий Иванов", "XXXXXXX XXXXXX"],
    ["王小明", "XXX"],
    ["😀😀", "XX"],
  ];
  for (const [name, want] of cases) {
    const s = subjectFromClaims(claims({ name, eduperson_unique_id: "user@example.org" }), RCAUTH);
    assert.equal(s.commonName, `${want} ${USER_EXAMPLE_SUFFIX}`, name);
    assertWellFormed(s);
  }
});

test("subjectFromClaims: over-long values are cut and end in '...'", () => {
  const id = { eduperson_unique_id: "user@example.org" };
  const cases: [string, string, string][] = [
    ["exactly 43 is kept", "a".repeat(43), "a".repeat(43)],
    ["44 is cut to 40 + '...'", "a".repeat(44), `${"a".repeat(40)}...`],
    ["cut before a space drops the space", `${"a".repeat(39)} bbbbbbbb`, `${"a".repeat(39)}...`],
    ["limit applies after transliteration (ß -> ss doubles)", "ß".repeat(30), `${"s".repeat(40)}...`],
    ["non-Latin names are cut by X count", "Ж".repeat(100), `${"X".repeat(40)}...`],
    ["surrogate pairs are never split", "😀".repeat(50), `${"X".repeat(40)}...`],
  ];
  for (const [label, name, want] of cases) {
    const s = subjectFromClaims(claims({ name, ...id }), RCAUTH);
    assert.equal(s.commonName, `${want} ${USER_EXAMPLE_SUFFIX}`, label);
    assertWellFormed(s);
  }

  // The longest possible CN: 43-character name, USR and a three-digit sequence is exactly 64.
  const longest = subjectFromClaims(claims({ name: "n".repeat(200), ...id }), RCAUTH, 999);
  assert.equal(longest.commonName, `${"n".repeat(40)}... ${USER_EXAMPLE_SUFFIX} 999`);
  assert.equal(longest.commonName.length, 64);
  assertWellFormed(longest);

  // O: 64 kept, 65 cut to 61 + "...", for idp_name and for the configured default alike.
  assert.equal(subjectFromClaims(claims({ idp_name: "o".repeat(64) }), RCAUTH).organisation, "o".repeat(64));
  assert.equal(subjectFromClaims(claims({ idp_name: "o".repeat(65) }), RCAUTH).organisation, `${"o".repeat(61)}...`);
  const longDefault = subjectFromClaims(claims(), { ...RCAUTH, defaultOrganisation: "d".repeat(80) });
  assert.equal(longDefault.organisation, `${"d".repeat(61)}...`);
  assertWellFormed(longDefault);
});

test("subjectFromClaims: DN metacharacters never reach the DN", () => {
  const names = [
    "Evil/CN=Root CA",
    "a=b",
    "Doe, John",
    'John "Johnny" Doe',
    "O'Connor",
    "back\\slash",
    "line\nbreak",
    "tab\there\t\tand\tthere",
    "/",
    "=",
    "+CN=x",
  ];
  for (const name of names) {
    const s = subjectFromClaims(claims({ name, idp_name: `IdP/${name}=` }), RCAUTH);
    assertWellFormed(s);
    assert.equal(s.rdns.length, 5, `${JSON.stringify(name)} must not add RDNs`);
  }
  const s = subjectFromClaims(claims({ name: "Evil/CN=Root CA" }), RCAUTH);
  assert.match(s.commonName, /^EvilXCNXRoot CA /);
  assert.equal(subjectFromClaims(claims({ name: "tab\there\t\tand\nthere" }), RCAUTH).commonName.split(" ").slice(0, 4).join(" "), "tab here and there");
});

test("subjectFromClaims: the same person keeps the same suffix", () => {
  const a = subjectFromClaims(claims({ name: "Anna Schmidt" }), RCAUTH);
  const spaced = subjectFromClaims(claims({ name: "  Anna \t  Schmidt\n" }), RCAUTH);
  assert.equal(spaced.commonName, a.commonName, "whitespace differences vanish");
  const renamed = subjectFromClaims(claims({ name: "Anna Schmidt-Weber" }), RCAUTH);
  assert.equal(renamed.commonName.split(" ").at(-1), a.commonName.split(" ").at(-1), "suffix depends on the identifier only");
  assert.notEqual(renamed.commonName, a.commonName);
});

test("subjectFromClaims: different people with the same name get different CNs", () => {
  const p1 = subjectFromClaims(claims({ sub: "person-1", name: "John Smith" }), RCAUTH);
  const p2 = subjectFromClaims(claims({ sub: "person-2", name: "John Smith" }), RCAUTH);
  const p3 = subjectFromClaims(claims({ iss: "https://other.example.org", sub: "person-1", name: "John Smith" }), RCAUTH);
  assert.equal(new Set([p1.commonName, p2.commonName, p3.commonName]).size, 3);
  assert.equal(new Set([p1.dn, p2.dn, p3.dn]).size, 3);
});

test("subjectFromClaims: eduperson_unique_id makes the subject independent of the issuer", () => {
  const common = { name: "Jane Roe", eduperson_unique_id: "jroe1234@uni.example.org", idp_name: "Example University" };
  const viaA = subjectFromClaims({ iss: "https://proxy-a.example", sub: "aaa", ...common }, RCAUTH);
  const viaB = subjectFromClaims({ iss: "https://proxy-b.example", sub: "bbb", ...common }, RCAUTH);
  assert.equal(viaA.dn, viaB.dn);
  assert.equal(viaA.identifier, "jroe1234@uni.example.org");
  // Without it, the two logins are two different people.
  const { eduperson_unique_id: _unused, ...noUnique } = common;
  const a = subjectFromClaims({ iss: "https://proxy-a.example", sub: "aaa", ...noUnique }, RCAUTH);
  const b = subjectFromClaims({ iss: "https://proxy-b.example", sub: "bbb", ...noUnique }, RCAUTH);
  assert.notEqual(a.dn, b.dn);
});

test("subjectFromClaims: sequence numbers", () => {
  const base = subjectFromClaims(claims(), RCAUTH);
  for (const seq of [1, 42, 999]) {
    const s = subjectFromClaims(claims(), RCAUTH, seq);
    assert.equal(s.commonName, `${base.commonName} ${seq}`);
    assert.equal(s.dn, `${base.dn} ${seq}`);
    assertWellFormed(s);
  }
  for (const bad of [0, -1, 1000, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => subjectFromClaims(claims(), RCAUTH, bad), RangeError, String(bad));
  }
});

test("subjectFromClaims: organisation from idp_name, else the default", () => {
  const cases: [string, Partial<VerifiedClaims>, SubjectPolicy, string][] = [
    ["idp_name", { idp_name: "Université de Genève" }, RCAUTH, "Universite de Geneve"],
    ["no idp_name", {}, RCAUTH, "Certbridge Users"],
    ["blank idp_name", { idp_name: "   " }, RCAUTH, "Certbridge Users"],
    ["null idp_name", { idp_name: null as unknown as string }, RCAUTH, "Certbridge Users"],
    ["idp_name of invisible characters only", { idp_name: "\u200b\u00ad" }, RCAUTH, "Certbridge Users"],
    ["non-Latin idp_name is kept as X's", { idp_name: "東京大学" }, RCAUTH, "XXXX"],
    ["default passes printable() too", {}, { ...RCAUTH, defaultOrganisation: "Acme/Users=1" }, "AcmeXUsersX1"],
  ];
  for (const [label, extra, policy, want] of cases) {
    const s = subjectFromClaims(claims(extra), policy);
    assert.equal(s.organisation, want, label);
    assert.equal(s.rdns.at(-2)?.value, want, label);
    assertWellFormed(s);
  }
});

test("subjectFromClaims: name fallbacks", () => {
  const cases: [string, Partial<VerifiedClaims>, string][] = [
    ["name wins over given/family", { name: "Display Name", given_name: "G", family_name: "F" }, "Display Name"],
    ["given + family", { name: undefined, given_name: "Ada", family_name: "Lovelace" }, "Ada Lovelace"],
    ["blank name falls back", { name: " \t", given_name: "Ada", family_name: "Lovelace" }, "Ada Lovelace"],
    ["given only", { name: undefined, given_name: "Sukarno" }, "Sukarno"],
    ["family only", { name: undefined, family_name: "Teller" }, "Teller"],
    ["given + family are printable()d", { name: undefined, given_name: " Åsa\n", family_name: "Øst" }, "Asa Ost"],
  ];
  for (const [label, extra, want] of cases) {
    const cn = subjectFromClaims(claims(extra), RCAUTH).commonName;
    assert.equal(cn.slice(0, -17), want, label); // strip " <USR>"
  }
});

test("subjectFromClaims: missing or malformed claims name the claim", () => {
  const without = (key: string, extra: Record<string, unknown> = {}) => {
    const c: Record<string, unknown> = { ...claims(), ...extra };
    delete c[key];
    return c as VerifiedClaims;
  };
  const cases: [string, VerifiedClaims, RegExp][] = [
    ["iss absent", without("iss"), /^missing claim: iss$/],
    ["sub absent", without("sub"), /^missing claim: sub$/],
    ["iss empty", claims({ iss: "" }), /^missing claim: iss$/],
    ["sub empty", claims({ sub: "" }), /^missing claim: sub$/],
    ["iss null", claims({ iss: null as unknown as string }), /^missing claim: iss$/],
    ["iss not a string", claims({ iss: 42 as unknown as string }), /^invalid claim: iss \(must be a string\)$/],
    ["sub not a string", claims({ sub: ["x"] as unknown as string }), /^invalid claim: sub \(must be a string\)$/],
    ["iss with whitespace", claims({ iss: "https://a.example b" }), /^invalid claim: iss \(must not contain whitespace\)$/],
    ["sub with lone surrogate", claims({ sub: "a\ud800" }), /^invalid claim: sub/],
    ["name absent", without("name"), /^missing claim: name/],
    ["name only whitespace", claims({ name: " \t\n" }), /^missing claim: name/],
    ["name only invisible characters", claims({ name: "\u200b\u00ad" }), /^missing claim: name/],
    ["name and given/family blank", claims({ name: "", given_name: " ", family_name: "" }), /^missing claim: name/],
    ["name not a string", claims({ name: 7 as unknown as string }), /^invalid claim: name \(must be a string\)$/],
    ["given_name not a string", claims({ given_name: {} as unknown as string }), /^invalid claim: given_name/],
    ["family_name not a string", claims({ family_name: true as unknown as string }), /^invalid claim: family_name/],
    ["idp_name not a string", claims({ idp_name: 1 as unknown as string }), /^invalid claim: idp_name/],
    ["eduperson_unique_id not a string", claims({ eduperson_unique_id: 5 as unknown as string }), /^invalid claim: eduperson_unique_id/],
  ];
  for (const [label, c, message] of cases) assertInvalidRequest(() => subjectFromClaims(c, RCAUTH), message, label);
  assertInvalidRequest(() => stableIdentifier(without("sub")), /^missing claim: sub$/);
  assertInvalidRequest(() => subjectFromClaims(null as unknown as VerifiedClaims, RCAUTH), /^invalid claims/);
});

test("subjectFromClaims: unknown extra claims are ignored; a bad base is a config error", () => {
  const s = subjectFromClaims(claims({ groups: ["a"], acr: 3 }), RCAUTH);
  assertWellFormed(s);
  assert.throws(
    () => subjectFromClaims(claims(), { ...RCAUTH, base: "DC=eu" }),
    (e: unknown) => e instanceof CertbridgeError && e.code === "invalid_config",
  );
});
