/**
 * The caller's public key for a proxy (lib/pki/publicKey.ts): every bad input
 * is an invalid_csr (400) whose message says what was wrong, every accepted
 * encoding yields exactly the DER SubjectPublicKeyInfo of the key, and no
 * corrupted input escapes as anything but a CertbridgeError.
 *
 * Keys come from node:crypto; CSRs from /usr/bin/openssl (node cannot build
 * PKCS#10 requests). Everything is generated once, in `before`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { CertbridgeError } from "../lib/errors";
import { parseProxyPublicKey, type ProxyPublicKey } from "../lib/pki/publicKey";

const execFileP = promisify(execFile);
const OPENSSL = "/usr/bin/openssl";

let dir: string;

interface Fixtures {
  rsa2048: crypto.KeyObject;
  rsa4096: crypto.KeyObject;
  rsa1024: crypto.KeyObject;
  /** DER CSRs */
  csr2048: Buffer;
  csr4096: Buffer;
  csr1024: Buffer;
  csrSha1: Buffer;
  csrEc: Buffer;
  csrEd25519: Buffer;
  csrWeirdSubject: Buffer;
}
let fx: Fixtures;

async function generate(type: "rsa" | "ec" | "ed25519", opts: object = {}): Promise<crypto.KeyObject> {
  // The overloads of generateKeyPair do not promisify well; wrap by hand.
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair(type as "rsa", opts as crypto.RSAKeyPairKeyObjectOptions, (err, _pub, priv) =>
      err ? reject(err) : resolve(priv),
    );
  });
}

/** A DER PKCS#10 request for `key`, made by openssl. */
async function makeCsr(name: string, key: crypto.KeyObject, extra: string[] = [], subj = "/CN=certbridge test"): Promise<Buffer> {
  const keyFile = path.join(dir, `${name}.key.pem`);
  fs.writeFileSync(keyFile, key.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
  const { stdout } = await execFileP(OPENSSL, ["req", "-new", "-key", keyFile, "-subj", subj, "-outform", "DER", ...extra], {
    encoding: "buffer",
  });
  assert.ok(stdout.length > 100, `openssl produced no CSR for ${name}`);
  assert.equal(stdout[0], 0x30);
  return stdout;
}

const spkiOf = (key: crypto.KeyObject): Buffer =>
  crypto.createPublicKey(key).export({ type: "spki", format: "der" });

const pem = (label: string, der: Uint8Array): string => {
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "certbridge-publickey-"));
  const [rsa2048, rsa4096, rsa1024, ec, ed] = await Promise.all([
    generate("rsa", { modulusLength: 2048 }),
    generate("rsa", { modulusLength: 4096 }),
    generate("rsa", { modulusLength: 1024 }),
    generate("ec", { namedCurve: "P-256" }),
    generate("ed25519"),
  ]);
  const [csr2048, csr4096, csr1024, csrSha1, csrEc, csrEd25519, csrWeirdSubject] = await Promise.all([
    makeCsr("rsa2048", rsa2048, ["-sha256"]),
    makeCsr("rsa4096", rsa4096, ["-sha256"]),
    makeCsr("rsa1024", rsa1024, ["-sha256"]),
    makeCsr("sha1", rsa2048, ["-sha1"]),
    makeCsr("ec", ec, ["-sha256"]),
    makeCsr("ed25519", ed), // Ed25519 takes no digest option
    makeCsr("weird", rsa2048, ["-sha256"], "/CN=evil/O=x"),
  ]);
  fx = { rsa2048, rsa4096, rsa1024, csr2048, csr4096, csr1024, csrSha1, csrEc, csrEd25519, csrWeirdSubject };
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Expect an invalid_csr CertbridgeError (400) whose message matches. */
function assertInvalidCsr(fn: () => unknown, message: RegExp, label: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof CertbridgeError, `${label}: expected a CertbridgeError, got ${String(e)}`);
      assert.equal(e.code, "invalid_csr", label);
      assert.equal(e.status, 400, label);
      assert.match(e.message, message, label);
      return true;
    },
    label,
  );
}

function assertKey(got: ProxyPublicKey, key: crypto.KeyObject, form: "csr" | "spki", bits: number, label: string): void {
  assert.equal(got.form, form, label);
  assert.equal(got.bits, bits, label);
  assert.ok(got.spki instanceof Uint8Array, label);
  assert.ok(Buffer.from(got.spki).equals(spkiOf(key)), `${label}: spki is not the key's DER SubjectPublicKeyInfo`);
}

// ---------------------------------------------------------------------------

describe("parseProxyPublicKey rejects bad input with a specific invalid_csr", () => {
  test("table of bad inputs", () => {
    const csr = fx.csr2048;
    const flippedSignature = Buffer.from(csr);
    flippedSignature[flippedSignature.length - 1]! ^= 0x01; // last byte of the signature
    const randomDer = crypto.randomBytes(96);
    randomDer[0] = 0x04; // never a SEQUENCE, whatever else the bytes are
    const spki1024 = spkiOf(fx.rsa1024);

    const cases: { name: string; input: string | Uint8Array; message: RegExp }[] = [
      { name: "empty string", input: "", message: /^the public key or certificate request is empty$/ },
      { name: "whitespace", input: " \n\t\r\n  ", message: /^the public key or certificate request is empty$/ },
      { name: "empty bytes", input: new Uint8Array(0), message: /^the public key or certificate request is empty$/ },
      { name: "garbage text", input: "this is not a certificate request!", message: /neither PEM nor base64/ },
      { name: "base64 of random bytes", input: randomDer.toString("base64"), message: /not valid DER \(truncated or malformed\)/ },
      { name: "PEM labelled CERTIFICATE", input: pem("CERTIFICATE", csr), message: /PEM block "CERTIFICATE" is not a CERTIFICATE REQUEST or PUBLIC KEY/ },
      { name: "two PEM blocks", input: pem("CERTIFICATE REQUEST", csr) + pem("CERTIFICATE REQUEST", fx.csr4096), message: /expected exactly one PEM block/ },
      { name: "BEGIN without END", input: pem("CERTIFICATE REQUEST", csr).replace(/-----END[^\n]*\n$/, ""), message: /expected exactly one PEM block/ },
      { name: "DER cut in half", input: csr.subarray(0, csr.length >> 1), message: /not valid DER \(truncated or malformed\)/ },
      { name: "DER cut by one byte", input: csr.subarray(0, csr.length - 1), message: /not valid DER \(truncated or malformed\)/ },
      { name: "DER cut in half (PEM)", input: pem("CERTIFICATE REQUEST", csr.subarray(0, csr.length >> 1)), message: /not valid DER/ },
      { name: "trailing bytes after the DER", input: Buffer.concat([csr, Buffer.from([0x00, 0x00])]), message: /trailing data after the DER structure/ },
      { name: "trailing bytes (base64)", input: Buffer.concat([csr, Buffer.from("xyz")]).toString("base64"), message: /trailing data/ },
      { name: "signature byte flipped", input: flippedSignature, message: /signature does not verify: proof of possession of the private key failed/ },
      { name: "EC P-256 CSR", input: pem("CERTIFICATE REQUEST", fx.csrEc), message: /only RSA keys are accepted for proxies \(got EC\)/ },
      { name: "Ed25519 CSR", input: pem("CERTIFICATE REQUEST", fx.csrEd25519), message: /only RSA keys are accepted for proxies \(got Ed25519\)/ },
      { name: "1024-bit RSA CSR", input: pem("CERTIFICATE REQUEST", fx.csr1024), message: /the RSA key has 1024 bits; at least 2048 are required/ },
      { name: "SHA-1 signed CSR", input: pem("CERTIFICATE REQUEST", fx.csrSha1), message: /signed with SHA-1, which is refused/ },
      { name: "1024-bit SPKI (PEM)", input: pem("PUBLIC KEY", spki1024), message: /the RSA key has 1024 bits; at least 2048 are required/ },
      { name: "1024-bit SPKI (DER)", input: spki1024, message: /the RSA key has 1024 bits/ },
      { name: "CSR under a PUBLIC KEY label", input: pem("PUBLIC KEY", csr), message: /not a valid SubjectPublicKeyInfo/ },
      { name: "SPKI under a CERTIFICATE REQUEST label", input: pem("CERTIFICATE REQUEST", spkiOf(fx.rsa2048)), message: /not a valid PKCS#10 certificate request/ },
      { name: "over 16 KiB (bytes)", input: new Uint8Array(16 * 1024 + 1).fill(0x30), message: /larger than 16384 bytes/ },
      { name: "over 16 KiB (PEM)", input: pem("CERTIFICATE REQUEST", Buffer.concat([csr, Buffer.alloc(16 * 1024)])), message: /larger than 16384 bytes/ },
    ];
    for (const c of cases) assertInvalidCsr(() => parseProxyPublicKey(c.input), c.message, c.name);
  });

  test("exactly 16 KiB is not refused for its size", () => {
    // The limit is "> 16384": a 16384-byte input gets past the size check and fails later, for another reason.
    assertInvalidCsr(() => parseProxyPublicKey(new Uint8Array(16 * 1024)), /not valid DER/, "16384 zero bytes");
  });

  test("the messages of different failures are distinct", () => {
    const messageOf = (input: string | Uint8Array): string => {
      try {
        parseProxyPublicKey(input);
      } catch (e) {
        return (e as Error).message;
      }
      assert.fail("expected a rejection");
    };
    const messages = [
      messageOf(""),
      messageOf("!!!"),
      messageOf(fx.csr2048.subarray(0, 10)),
      messageOf(Buffer.concat([fx.csr2048, Buffer.of(0)])),
      messageOf(fx.csrEc),
      messageOf(fx.csr1024),
      messageOf(fx.csrSha1),
    ];
    assert.equal(new Set(messages).size, messages.length, messages.join("\n"));
  });
});

describe("parseProxyPublicKey accepts every supported encoding", () => {
  test("2048- and 4096-bit RSA CSRs in PEM", () => {
    assertKey(parseProxyPublicKey(pem("CERTIFICATE REQUEST", fx.csr2048)), fx.rsa2048, "csr", 2048, "2048 PEM");
    assertKey(parseProxyPublicKey(pem("CERTIFICATE REQUEST", fx.csr4096)), fx.rsa4096, "csr", 4096, "4096 PEM");
  });

  test("PEM with CRLF line ends and surrounding whitespace", () => {
    const text = `\r\n  ${pem("CERTIFICATE REQUEST", fx.csr2048).replace(/\n/g, "\r\n")}  \n`;
    assertKey(parseProxyPublicKey(text), fx.rsa2048, "csr", 2048, "CRLF PEM");
  });

  test("\"NEW CERTIFICATE REQUEST\" label", () => {
    assertKey(parseProxyPublicKey(pem("NEW CERTIFICATE REQUEST", fx.csr2048)), fx.rsa2048, "csr", 2048, "NEW CERTIFICATE REQUEST");
  });

  test("base64 DER, wrapped base64 DER and base64url DER", () => {
    for (const [csr, key, bits] of [
      [fx.csr2048, fx.rsa2048, 2048],
      [fx.csr4096, fx.rsa4096, 4096],
    ] as const) {
      const b64 = csr.toString("base64");
      const b64url = csr.toString("base64url");
      // A random 2048-bit modulus and signature all but certainly contain + or /; without them the test proves nothing.
      assert.match(b64url, /[-_]/, "base64url must differ from base64 for this test to mean anything");
      assertKey(parseProxyPublicKey(b64), key, "csr", bits, `${bits} base64`);
      assertKey(parseProxyPublicKey(b64.replace(/(.{64})/g, "$1\n")), key, "csr", bits, `${bits} wrapped base64`);
      assertKey(parseProxyPublicKey(b64url), key, "csr", bits, `${bits} base64url`);
    }
  });

  test("raw DER bytes (Uint8Array and Buffer)", () => {
    assertKey(parseProxyPublicKey(new Uint8Array(fx.csr2048)), fx.rsa2048, "csr", 2048, "Uint8Array");
    assertKey(parseProxyPublicKey(fx.csr4096), fx.rsa4096, "csr", 4096, "Buffer");
  });

  test("a bare PEM PUBLIC KEY is form spki", () => {
    const spkiPem = crypto.createPublicKey(fx.rsa2048).export({ type: "spki", format: "pem" }) as string;
    assertKey(parseProxyPublicKey(spkiPem), fx.rsa2048, "spki", 2048, "PUBLIC KEY PEM");
    assertKey(parseProxyPublicKey(pem("PUBLIC KEY", spkiOf(fx.rsa4096))), fx.rsa4096, "spki", 4096, "PUBLIC KEY PEM 4096");
  });

  test("an unlabelled SPKI (DER bytes or base64) is recognised as form spki", () => {
    assertKey(parseProxyPublicKey(new Uint8Array(spkiOf(fx.rsa2048))), fx.rsa2048, "spki", 2048, "SPKI DER");
    assertKey(parseProxyPublicKey(spkiOf(fx.rsa4096).toString("base64")), fx.rsa4096, "spki", 4096, "SPKI base64");
  });

  test("a CSR with an odd subject is accepted and only the key is taken", () => {
    const got = parseProxyPublicKey(pem("CERTIFICATE REQUEST", fx.csrWeirdSubject));
    assertKey(got, fx.rsa2048, "csr", 2048, "weird subject");
    assert.deepEqual(Object.keys(got).sort(), ["bits", "form", "spki"]);
    // Nothing of the requested subject leaks into what is returned.
    assert.equal(Buffer.from(got.spki).includes(Buffer.from("evil")), false);
  });

  test("the returned spki of a CSR does not alias the input", () => {
    const input = new Uint8Array(fx.csr2048);
    const got = parseProxyPublicKey(input);
    const before = Buffer.from(got.spki);
    input.fill(0);
    assert.ok(Buffer.from(got.spki).equals(before), "mutating the request changed the returned key");
  });
});

// ---------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG so a failing mutation can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Each mutation must either parse (to an RSA key of an accepted size) or be
 * an invalid_csr CertbridgeError — never a TypeError, RangeError or an
 * OpenSSL error escaping as a 500.
 */
function fuzz(original: Buffer, seed: number, count: number): { accepted: number; rejected: number } {
  const rand = prng(seed);
  let accepted = 0;
  let rejected = 0;
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(original);
    let mutated: Uint8Array;
    let what: string;
    if (rand() < 0.5) {
      const at = Math.floor(rand() * bytes.length);
      const mask = 1 + Math.floor(rand() * 255);
      bytes[at]! ^= mask;
      mutated = bytes;
      what = `flip byte ${at} ^ 0x${mask.toString(16)}`;
    } else {
      const len = Math.floor(rand() * bytes.length);
      mutated = bytes.subarray(0, len);
      what = `truncate to ${len}`;
    }
    try {
      const got = parseProxyPublicKey(mutated);
      assert.ok(got.bits >= 2048 && got.bits <= 8192, `seed ${seed} #${i} (${what}): accepted ${got.bits} bits`);
      assert.ok(got.spki.length > 0, `seed ${seed} #${i} (${what})`);
      accepted++;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof CertbridgeError, `seed ${seed} #${i} (${what}): threw ${String(e)}`);
      assert.equal(e.code, "invalid_csr", `seed ${seed} #${i} (${what}): ${e.message}`);
      assert.equal(e.status, 400);
      rejected++;
    }
  }
  return { accepted, rejected };
}

describe("mutated inputs never throw anything but invalid_csr", () => {
  test("200 random mutations of a valid CSR", () => {
    const { accepted, rejected } = fuzz(fx.csr2048, 0xc5a, 200);
    assert.equal(accepted + rejected, 200);
    // Almost every byte of a CSR is covered by DER structure or by the signature.
    assert.ok(rejected >= 180, `only ${rejected} of 200 mutated CSRs were rejected`);
  });

  test("200 random mutations of a valid SPKI", () => {
    // A bare SPKI carries no signature, so a flipped modulus byte may well be accepted; it must not crash.
    const { accepted, rejected } = fuzz(spkiOf(fx.rsa2048), 0x5bc1, 200);
    assert.equal(accepted + rejected, 200);
    assert.ok(rejected > 0);
  });

  test("every single-byte truncation of a CSR is rejected as truncated", () => {
    const csr = fx.csr2048;
    for (let len = 1; len < csr.length; len++) {
      assertInvalidCsr(() => parseProxyPublicKey(csr.subarray(0, len)), /not valid DER/, `truncated to ${len}`);
    }
  });
});
