import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../../core/errors.ts';
import { encodeReceiptHandle, IssuedHandle, newNonceSource, parseReceiptHandle, type ReceiptHandle } from './receipt-handle.ts';

const separator = '\u001f';

// Names never contain U+001F (the field separator); `grapheme` strings hold no lone surrogates,
// which UTF-8 could not carry.
const nameArb = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => !s.includes(separator));
const nonceArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/);
const handleArb: fc.Arbitrary<ReceiptHandle> = fc.record({
  group: nameArb,
  topic: nameArb,
  queueId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  queueOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  nonce: nonceArb,
  brokerGroup: nameArb,
  visibleUntilMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});

const sample: ReceiptHandle = {
  group: 'billing',
  topic: 'orders',
  queueId: 3,
  queueOffset: 42,
  nonce: 'n0nceN0nceN0nceN0',
  brokerGroup: 'group-1',
  visibleUntilMs: 1_700_000_030_000,
};

function refusal(fn: () => unknown): SkyrocketError | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe('INVALID_RECEIPT_HANDLE');
    expect((error as SkyrocketError).field).toBe('receiptHandle');
    return error as SkyrocketError;
  }
}

describe('receipt handles', () => {
  it('round-trip through encode and parse; the text is "2.<names>.<queue>.<offset>.<visible until>.<nonce>"', () => {
    fc.assert(
      fc.property(handleArb, (handle) => {
        const text = encodeReceiptHandle(handle);
        expect(text).toMatch(/^2\.[A-Za-z0-9_-]*\.\d+\.\d+\.\d+\.[A-Za-z0-9_-]+$/);
        expect(parseReceiptHandle(text)).toEqual(handle);
      }),
    );
    expect(encodeReceiptHandle(sample)).toBe(
      `2.${Buffer.from(`billing${separator}orders${separator}group-1`).toString('base64url')}.3.42.1700000030000.n0nceN0nceN0nceN0`,
    );
  });

  it('nonces: 96 random bits per source (16 base64url characters), then a counter; sources never repeat', () => {
    const seen = new Set<string>();
    const stems = new Set<string>();
    for (let s = 0; s < 200; s++) {
      const next = newNonceSource();
      const first = next();
      expect(first).toMatch(/^[A-Za-z0-9_-]{16}0$/);
      stems.add(first.slice(0, 16));
      for (let i = 1; i < 50; i++) {
        const n = next();
        expect(n.slice(0, 16)).toBe(first.slice(0, 16));
        expect(n.slice(16)).toBe(i.toString(36));
      }
    }
    expect(stems.size).toBe(200);
    for (const stem of stems) seen.add(stem);
    expect(seen.size).toBe(200);
  });

  it('any single-character change is refused or reads back as a different handle (the nonce check then refuses it)', () => {
    const text = encodeReceiptHandle(sample);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= ';
    for (let i = 0; i < text.length; i++) {
      for (const c of alphabet) {
        if (c === text[i]) continue;
        const changed = text.slice(0, i) + c + text.slice(i + 1);
        let parsed: ReceiptHandle | undefined;
        const error = refusal(() => (parsed = parseReceiptHandle(changed)));
        // One text names one handle: a change that parses must change what it names.
        if (error === undefined) expect(parsed, `position ${i} -> ${c}`).not.toEqual(sample);
      }
    }
    expect(refusal(() => parseReceiptHandle(`${text}.junk`))).toBeDefined();
  });

  it('refuses garbage of any type with INVALID_RECEIPT_HANDLE and never throws anything else', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        expect(refusal(() => parseReceiptHandle(value))).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });

  it('refuses near-miss layouts: wrong field count, wrong version, bad numbers, bad nonce, oversized text', () => {
    const fieldArb = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('-1', '1.5', '1e400', 'NaN', '9007199254740993', 'Infinity', '0x10', '', '007'));
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 9 }), (fields) => {
        refusal(() => parseReceiptHandle(fields.join('.'))); // may parse, but only ever fails with the right code
      }),
      { numRuns: 500 },
    );
    const good = encodeReceiptHandle(sample);
    const parts = good.split('.');
    const withPart = (i: number, value: string): string => parts.map((p, k) => (k === i ? value : p)).join('.');
    expect(refusal(() => parseReceiptHandle(withPart(0, '1')))?.message).toMatch(/layout/);
    expect(refusal(() => parseReceiptHandle(parts.slice(0, 5).join('.')))?.message).toMatch(/layout/);
    for (const bad of ['-1', '2.5', '1e3', '007', '9007199254740993', '']) {
      expect(refusal(() => parseReceiptHandle(withPart(3, bad)))?.message ?? 'accepted', bad).toMatch(/numbers|layout/);
    }
    expect(refusal(() => parseReceiptHandle(withPart(5, 'a/b')))?.message).toMatch(/nonce/);
    expect(refusal(() => parseReceiptHandle(withPart(5, '')))?.message).toMatch(/nonce/);
    expect(refusal(() => parseReceiptHandle(withPart(1, Buffer.from('a\u001fb').toString('base64url'))))?.message).toMatch(/layout/);
    expect(refusal(() => parseReceiptHandle(withPart(1, `${parts[1]}=`)))?.message).toMatch(/canonical/);
    expect(refusal(() => parseReceiptHandle(`2.${'A'.repeat(4096)}.1.1.1.n`))).toBeDefined();
  });

  it('the character scanner accepts exactly the texts the layout describes (checked against a plain reading of it)', () => {
    // The layout read literally: six dot-separated fields, decimals without sign or leading zero
    // of at most 16 digits, a base64url nonce of 1 to 64 characters.
    const reference = (text: string): Omit<ReceiptHandle, 'group' | 'topic' | 'brokerGroup'> | undefined => {
      const parts = text.split('.');
      if (parts.length !== 6 || parts[0] !== '2') return undefined;
      const decimal = /^(?:0|[1-9][0-9]{0,15})$/;
      const numbers = parts.slice(2, 5);
      if (!numbers.every((n) => decimal.test(n) && Number.isSafeInteger(Number(n)))) return undefined;
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(parts[5] as string)) return undefined;
      const [queueId, queueOffset, visibleUntilMs] = numbers.map(Number) as [number, number, number];
      return { queueId, queueOffset, visibleUntilMs, nonce: parts[5] as string };
    };
    const prefix = encodeReceiptHandle(sample).split('.')[1] as string;
    const field = fc.oneof(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).map(String),
      fc.constantFrom('0', '00', '01', '-1', '1e3', '9007199254740991', '9007199254740992', '99999999999999999', '', 'a', '.'),
      fc.string({ unit: fc.constantFrom('0', '1', '9', '.', 'a', '-', '_', '/', ' '), maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(field, { minLength: 3, maxLength: 6 }), (fields) => {
        const text = `2.${prefix}.${fields.join('.')}`;
        const expected = reference(text);
        let got: ReceiptHandle | undefined;
        try {
          got = parseReceiptHandle(text);
        } catch (error) {
          expect((error as SkyrocketError).code).toBe('INVALID_RECEIPT_HANDLE');
        }
        if (expected === undefined) expect(got).toBeUndefined();
        else expect(got).toEqual({ ...expected, group: sample.group, topic: sample.topic, brokerGroup: sample.brokerGroup });
      }),
      { numRuns: 3000 },
    );
  });

  it('an issued handle writes exactly its text into a buffer, within maxBytes, for handles of changing names', () => {
    const out = Buffer.alloc(8192);
    fc.assert(
      fc.property(fc.array(handleArb, { minLength: 1, maxLength: 4 }), (handles) => {
        for (const parts of handles) {
          const issued = new IssuedHandle(parts);
          out.fill(0xff);
          const n = issued.write(out, 3);
          expect(n).toBeLessThanOrEqual(issued.maxBytes);
          expect(out.toString('latin1', 3, 3 + n)).toBe(encodeReceiptHandle(parts));
          expect(out[3 + n]).toBe(0xff); // nothing past the end
          expect(issued.toString()).toBe(encodeReceiptHandle(parts));
        }
      }),
      { numRuns: 300 },
    );
  });
});
