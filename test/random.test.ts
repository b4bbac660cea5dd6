import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { pooledRandomBytes } from "../lib/random";

describe("pooled random bytes (lib/random.ts)", () => {
  test("each draw has the length asked for, and draws do not repeat across several blocks", () => {
    const seen = new Set<string>();
    // 16 bytes × 2,000 = 32 KiB: eight 4 KiB blocks, so refills and the block's end are crossed.
    for (let i = 0; i < 2000; i++) {
      const b = pooledRandomBytes(16);
      assert.equal(b.length, 16);
      seen.add(b.toString("hex"));
    }
    assert.equal(seen.size, 2000);
  });

  test("a draw that does not fit the rest of a block comes whole from a new one", () => {
    // 4096 is not a multiple of 60: one of these draws meets the end of a block.
    const draws = Array.from({ length: 30 }, () => pooledRandomBytes(60));
    assert.ok(draws.every((d) => d.length === 60));
    assert.equal(new Set(draws.map((d) => d.toString("hex"))).size, 30);
  });

  test("the bytes look uniform: each bit is set about half the time", () => {
    const counts = new Array<number>(8).fill(0);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const byte = pooledRandomBytes(1)[0]!;
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) counts[bit]!++;
    }
    // Binomial(20000, 0.5): σ ≈ 71; 6σ bounds make a false failure practically impossible.
    for (const c of counts) assert.ok(Math.abs(c - n / 2) < 430, `bit count ${c}`);
  });

  test("large draws and zero are served; a bad count is refused", () => {
    assert.equal(pooledRandomBytes(1000).length, 1000);
    assert.equal(pooledRandomBytes(0).length, 0);
    assert.throws(() => pooledRandomBytes(-1), RangeError);
    assert.throws(() => pooledRandomBytes(1.5), RangeError);
  });
});
