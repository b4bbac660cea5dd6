/**
 * Private keys at rest (lib/pki/seal.ts): AES-256-GCM under the KEK, bound to
 * a context string as associated data. Any change to the key, the context or
 * any part of the envelope must make opening fail.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { openSealedKey, sealKey } from "../lib/pki/seal";

const KEK = crypto.randomBytes(32);
const CONTEXT = "proxy-key:7f3a2c";
/** Something recognisable, the size of a real sealed key. */
const PLAINTEXT = new Uint8Array(
  Buffer.from(
    crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    "utf8",
  ),
);

const DOES_NOT_OPEN = /sealed key does not open: wrong key-encryption key or tampered record/;

function parts(envelope: string): { version: string; iv: Buffer; tag: Buffer; ct: Buffer } {
  const [version, iv, tag, ct] = envelope.split(".");
  assert.ok(version !== undefined && iv !== undefined && tag !== undefined && ct !== undefined, envelope);
  return { version, iv: Buffer.from(iv, "base64url"), tag: Buffer.from(tag, "base64url"), ct: Buffer.from(ct, "base64url") };
}

const join = (p: { version: string; iv: Buffer; tag: Buffer; ct: Buffer }) =>
  [p.version, p.iv.toString("base64url"), p.tag.toString("base64url"), p.ct.toString("base64url")].join(".");

const assertDoesNotOpen = (envelope: string, label: string, kek = KEK, context = CONTEXT) =>
  assert.throws(() => openSealedKey(kek, envelope, context), DOES_NOT_OPEN, label);

test("round trip, for several sizes", () => {
  for (const plaintext of [Uint8Array.of(0x42), new Uint8Array(crypto.randomBytes(32)), PLAINTEXT, new Uint8Array(crypto.randomBytes(5000))]) {
    const envelope = sealKey(KEK, plaintext, CONTEXT);
    const opened = openSealedKey(KEK, envelope, CONTEXT);
    assert.ok(opened instanceof Uint8Array);
    assert.ok(Buffer.from(opened).equals(Buffer.from(plaintext)), `${plaintext.length} bytes`);
  }
});

test("envelope format: v1.<12-byte iv>.<16-byte tag>.<ciphertext>, base64url", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  assert.match(envelope, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
  const p = parts(envelope);
  assert.equal(p.iv.length, 12);
  assert.equal(p.tag.length, 16);
  assert.equal(p.ct.length, PLAINTEXT.length);
});

test("sealing refuses a KEK that is not 32 bytes", () => {
  for (const n of [0, 16, 24, 31, 33, 64]) {
    assert.throws(() => sealKey(crypto.randomBytes(n), PLAINTEXT, CONTEXT), /must be 32 bytes/, `${n} bytes`);
  }
});

test("a wrong KEK does not open", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  assertDoesNotOpen(envelope, "random KEK", crypto.randomBytes(32));
  const oneBitOff = Buffer.from(KEK);
  oneBitOff[31]! ^= 0x01;
  assertDoesNotOpen(envelope, "KEK one bit off", oneBitOff);
});

test("a wrong context (associated data) does not open", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  for (const context of ["", "proxy-key:7f3a2d", `${CONTEXT} `, CONTEXT.toUpperCase(), "user-key:7f3a2c"]) {
    assertDoesNotOpen(envelope, `context ${JSON.stringify(context)}`, KEK, context);
  }
  // A record copied into another row.
  const other = sealKey(KEK, PLAINTEXT, "proxy-key:other");
  assertDoesNotOpen(other, "envelope of another record");
});

test("a tampered ciphertext, tag or IV does not open", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  const original = parts(envelope);
  for (const field of ["ct", "tag", "iv"] as const) {
    const len = original[field].length;
    for (const at of new Set([0, len >> 1, len - 1])) {
      for (const mask of [0x01, 0x80]) {
        const p = { ...original, [field]: Buffer.from(original[field]) };
        p[field][at]! ^= mask;
        assertDoesNotOpen(join(p), `${field}[${at}] ^ 0x${mask.toString(16)}`);
      }
    }
  }
  // Truncated or extended ciphertext.
  assertDoesNotOpen(join({ ...original, ct: original.ct.subarray(0, original.ct.length - 1) }), "ciphertext cut by one byte");
  assertDoesNotOpen(join({ ...original, ct: Buffer.concat([original.ct, Buffer.of(0)]) }), "ciphertext extended");
  // The untampered envelope still opens: the failures above are the tampering's doing.
  assert.ok(Buffer.from(openSealedKey(KEK, join(original), CONTEXT)).equals(Buffer.from(PLAINTEXT)));
});

test("a malformed envelope is an unknown format", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  const [, iv, tag, ct] = envelope.split(".");
  for (const bad of ["", "v1", `v1.${iv}.${tag}`, `v2.${iv}.${tag}.${ct}`, `.${iv}.${tag}.${ct}`, `v1..${tag}.${ct}`, `v1.${iv}..${ct}`]) {
    assert.throws(() => openSealedKey(KEK, bad, CONTEXT), /sealed key has an unknown format/, JSON.stringify(bad));
  }
});

test("a part spelled with unused trailing bits set is an unknown format, not the same envelope", () => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // The lowest bit of the last character is never significant when the bytes end in a partial group.
  const lowBitSet = (text: string) => text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) ^ 1]!;
  // 31 and 32 bytes: ciphertexts 1 and 2 bytes over a multiple of 3; the IV (12) fills its groups, the tag (16) does not.
  for (const plaintext of [new Uint8Array(crypto.randomBytes(31)), new Uint8Array(crypto.randomBytes(32))]) {
    const envelope = sealKey(KEK, plaintext, CONTEXT);
    const fields = envelope.split(".");
    for (const [label, index] of [["tag", 2], ["ciphertext", 3]] as const) {
      const changed = [...fields];
      changed[index] = lowBitSet(fields[index]!);
      assert.ok(Buffer.from(changed[index]!, "base64url").equals(Buffer.from(fields[index]!, "base64url")), `${label}: a lenient decoder reads the same bytes`);
      assert.throws(() => openSealedKey(KEK, changed.join("."), CONTEXT), /sealed key has an unknown format/, `${plaintext.length} bytes, ${label}`);
    }
    assert.ok(Buffer.from(openSealedKey(KEK, envelope, CONTEXT)).equals(Buffer.from(plaintext)));
  }
});

test("two seals of the same plaintext differ (random IV)", () => {
  const a = sealKey(KEK, PLAINTEXT, CONTEXT);
  const b = sealKey(KEK, PLAINTEXT, CONTEXT);
  assert.notEqual(a, b);
  assert.ok(!parts(a).iv.equals(parts(b).iv), "IV reused");
  assert.ok(!parts(a).ct.equals(parts(b).ct), "ciphertext repeated");
  const ivs = new Set(Array.from({ length: 200 }, () => parts(sealKey(KEK, Uint8Array.of(1), CONTEXT)).iv.toString("hex")));
  assert.equal(ivs.size, 200);
});

test("the envelope contains no plaintext bytes", () => {
  const envelope = sealKey(KEK, PLAINTEXT, CONTEXT);
  const plain = Buffer.from(PLAINTEXT);
  const text = plain.toString("utf8");
  assert.ok(text.startsWith("-----BEGIN PRIVATE KEY-----"));
  // Not in any of the encodings the envelope could carry it in.
  assert.equal(envelope.includes("PRIVATE KEY"), false);
  assert.equal(envelope.includes(text.split("\n")[1]!), false, "a base64 line of the key appears verbatim");
  assert.equal(envelope.includes(plain.subarray(0, 24).toString("base64url")), false);
  assert.equal(envelope.includes(plain.subarray(0, 24).toString("base64")), false);
  // No 8-byte run of the plaintext survives in the decoded ciphertext.
  const ct = parts(envelope).ct;
  for (let i = 0; i + 8 <= plain.length; i += 4) {
    assert.equal(ct.includes(plain.subarray(i, i + 8)), false, `plaintext bytes ${i}..${i + 8} found in the ciphertext`);
  }
  // And the context is not stored either: it has to be supplied to open.
  assert.equal(envelope.includes(Buffer.from(CONTEXT).toString("base64url")), false);
  assert.equal(envelope.includes(CONTEXT), false);
});

test(
  "a truncated authentication tag does not open (all 128 bits are required)",
  () => {
    const p = parts(sealKey(KEK, PLAINTEXT, CONTEXT));
    assertDoesNotOpen(join({ ...p, tag: p.tag.subarray(0, 4) }), "tag cut to 4 bytes");
  },
);

test(
  "an empty plaintext round-trips",
  () => {
    assert.equal(openSealedKey(KEK, sealKey(KEK, new Uint8Array(0), CONTEXT), CONTEXT).length, 0);
  },
);
