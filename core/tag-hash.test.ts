import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tagHash } from './tag-hash.ts';

/** CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: a reference apart from the library. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('tagHash', () => {
  it('is 0 for no tag', () => {
    expect(tagHash(undefined)).toBe(0);
  });

  it.each([
    ['', 0x1],
    // The CRC-32C check value: CRC32C("123456789") = 0xE3069283.
    ['123456789', 0xe306_9284],
    ['TagA', referenceCrc32c(Buffer.from('TagA')) + 1],
    ['标签', referenceCrc32c(Buffer.from('标签', 'utf8')) + 1],
  ])('hashes %j to CRC32C of its UTF-8 bytes plus one (%d)', (tag, expected) => {
    expect(tagHash(tag)).toBe(expected);
  });

  it('is never 0 for a tag, fits the u64 consume-queue field, and is deterministic', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (tag) => {
        const code = tagHash(tag);
        expect(code).toBe(referenceCrc32c(Buffer.from(tag, 'utf8')) + 1);
        expect(code).toBeGreaterThanOrEqual(1);
        expect(code).toBeLessThanOrEqual(2 ** 32);
        expect(tagHash(tag)).toBe(code);
      }),
      { numRuns: 1000 },
    );
  });

  it('tells common tags apart', () => {
    const tags = ['TagA', 'TagB', 'tagA', 'TagA ', 'order', 'payment', 'refund', '*', '||'];
    expect(new Set(tags.map(tagHash)).size).toBe(tags.length);
  });
});
