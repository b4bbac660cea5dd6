/**
 * Random bytes for the values every request draws — proxy serials, row ids, request ids — taken
 * from node:crypto's CSPRNG a block at a time: one OpenSSL call (and one pass through the wrapper
 * Next.js puts around crypto.randomBytes) per 4 KiB instead of per value, about 2 % of a
 * /getproxy request's CPU here (issue 18). Still unpredictable (RFC 5280 §4.1.2.2 wants serials
 * so), but kept in memory until used: keys and bearer secrets call crypto.randomBytes themselves.
 */
import crypto from "node:crypto";

const BLOCK_BYTES = 4096;
/** Larger draws gain nothing from the block: they go to crypto.randomBytes directly. */
const MAX_POOLED_BYTES = 64;

let block = Buffer.alloc(0);
let offset = 0;

export function pooledRandomBytes(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError("pooledRandomBytes takes a byte count");
  if (n > MAX_POOLED_BYTES) return crypto.randomBytes(n);
  if (offset + n > block.length) {
    block = crypto.randomBytes(BLOCK_BYTES);
    offset = 0;
  }
  const out = Buffer.from(block.subarray(offset, offset + n));
  // Handed-out bytes do not stay behind in the block.
  block.fill(0, offset, offset + n);
  offset += n;
  return out;
}
