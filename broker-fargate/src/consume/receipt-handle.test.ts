import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../../core/errors.ts';
import { encodeReceiptHandle, parseReceiptHandle, verifyReceiptHandle, type ReceiptHandle } from './receipt-handle.ts';

const separator = '\u001f';
const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// Names never contain U+001F (the field separator); `grapheme` strings hold no lone surrogates,
// which UTF-8 could not carry.
const nameArb = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => !s.includes(separator));
const handleArb: fc.Arbitrary<ReceiptHandle> = fc.record({
  group: nameArb,
  topic: nameArb,
  queueId: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  queueOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  nonce: fc.base64String({ maxLength: 16 }),
  brokerGroup: nameArb,
  visibleUntilMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});
const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));

const sample: ReceiptHandle = {
  group: 'billing',
  topic: 'orders',
  queueId: 3,
  queueOffset: 42,
  nonce: 'n0nceN0nceN0',
  brokerGroup: 'group-1',
  visibleUntilMs: 1_700_000_030_000,
};
const secret = Buffer.alloc(32, 0x5a);

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
  it('round-trips through encode and verify, and the text is base64url "payload.mac"', () => {
    fc.assert(
      fc.property(handleArb, secretArb, (handle, key) => {
        const text = encodeReceiptHandle(handle, key);
        expect(text).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
        expect(verifyReceiptHandle(text, key)).toEqual(handle);
        expect(parseReceiptHandle(text)).toEqual(handle);
      }),
    );
  });

  it('parse without verify gives the routing fields even when the signature is wrong', () => {
    const text = encodeReceiptHandle(sample, secret);
    const forged = `${text.slice(0, text.indexOf('.'))}.${'A'.repeat(22)}`;
    expect(parseReceiptHandle(forged)).toEqual(sample);
    expect(parseReceiptHandle(text).brokerGroup).toBe('group-1');
    expect(refusal(() => verifyReceiptHandle(forged, secret))?.message).toMatch(/signature/);
  });

  it('refuses a handle signed with another secret', () => {
    fc.assert(
      fc.property(handleArb, secretArb, secretArb, (handle, a, b) => {
        fc.pre(!a.equals(b));
        expect(refusal(() => verifyReceiptHandle(encodeReceiptHandle(handle, a), b))).toBeDefined();
      }),
    );
  });

  it('no single-character change forges a handle: it is refused or reads back as the very same handle', () => {
    // This is the security property: a changed text never verifies as a *different* handle.
    fc.assert(
      fc.property(
        handleArb,
        secretArb,
        fc.nat(),
        fc.integer({ min: 0x20, max: 0x7e }),
        (handle, key, position, code) => {
          const text = encodeReceiptHandle(handle, key);
          const i = position % text.length;
          const replacement = String.fromCharCode(code);
          fc.pre(replacement !== text[i]);
          const changed = text.slice(0, i) + replacement + text.slice(i + 1);
          let result: ReceiptHandle | undefined;
          const error = refusal(() => (result = verifyReceiptHandle(changed, key)));
          if (error === undefined) expect(result).toEqual(handle);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses every single-character change to the MAC or the payload that alters the decoded bytes', () => {
    const text = encodeReceiptHandle(sample, secret);
    const payload = Buffer.from(text.slice(0, text.indexOf('.')), 'base64url');
    const mac = Buffer.from(text.slice(text.indexOf('.') + 1), 'base64url');
    for (let i = 0; i < text.length; i++) {
      for (const c of `${base64urlAlphabet}.=+/`) {
        if (c === text[i]) continue;
        const changed = text.slice(0, i) + c + text.slice(i + 1);
        const dot = changed.indexOf('.');
        const samePayload = dot > 0 && Buffer.from(changed.slice(0, dot), 'base64url').equals(payload);
        const sameMac = dot > 0 && Buffer.from(changed.slice(dot + 1).split('.')[0] ?? '', 'base64url').equals(mac);
        if (samePayload && sameMac) continue; // covered (and reported) by the canonical-form test below
        expect(refusal(() => verifyReceiptHandle(changed, secret)), `position ${i} -> ${c}`).toBeDefined();
      }
    }
  });

  // BUG (receipt-handle.ts, verifyReceiptHandle lines 84-88): Buffer.from(_, 'base64url') is lenient: it
  // ignores the unused low bits of the last character, accepts '+' and '/' for '-' and '_', and
  // verify only looks at the first two '.'-separated parts. So one delivery has many valid handle
  // texts (e.g. the MAC's last character 'w' -> 'x', or a '.junk' suffix), contrary to "any change
  // to the handle is refused". Not a forgery (the decoded fields are the same), but anything that
  // keys on the handle text (dedup, idempotency, audit) sees different handles for one delivery.
  // Fix (after the MAC check, line 88): refuse unless
  //   text === `${payload.toString('base64url')}.${given.toString('base64url')}`.
  it('verify accepts non-canonical texts of a valid handle (single-character changes, extra "." suffix)', () => {
    const text = encodeReceiptHandle(sample, secret);
    const accepted: string[] = [];
    for (let i = 0; i < text.length; i++) {
      for (const c of `${base64urlAlphabet}+/`) {
        if (c === text[i]) continue;
        const changed = text.slice(0, i) + c + text.slice(i + 1);
        if (refusal(() => verifyReceiptHandle(changed, secret)) === undefined) accepted.push(`${i}:${text[i]}->${c}`);
      }
    }
    if (refusal(() => verifyReceiptHandle(`${text}.junk`, secret)) === undefined) accepted.push('suffix .junk');
    expect(accepted).toEqual([]);
  });

  it('refuses garbage of any type with INVALID_RECEIPT_HANDLE and never throws anything else', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        refusal(() => parseReceiptHandle(value));
        expect(refusal(() => verifyReceiptHandle(value, secret))).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });

  it('refuses near-miss layouts: wrong field count, wrong version, bad numbers, oversized text', () => {
    const fieldArb = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.constantFrom('-1', '1.5', '1e400', 'NaN', '9007199254740993', 'Infinity', '0x10', ''),
    );
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 10 }), fc.string({ maxLength: 30 }), (fields, macText) => {
        const text = `${Buffer.from(fields.join(separator)).toString('base64url')}.${macText}`;
        refusal(() => parseReceiptHandle(text)); // may parse, but only ever fails with the right code
        expect(refusal(() => verifyReceiptHandle(text, secret))).toBeDefined();
      }),
      { numRuns: 500 },
    );
    const good = encodeReceiptHandle(sample, secret);
    const [payload] = good.split('.') as [string];
    const fields = Buffer.from(payload, 'base64url').toString('utf8').split(separator);
    const withFields = (f: string[]): string => `${Buffer.from(f.join(separator)).toString('base64url')}.AAAA`;
    expect(refusal(() => parseReceiptHandle(withFields(['2', ...fields.slice(1)])))?.message).toMatch(/layout/);
    expect(refusal(() => parseReceiptHandle(withFields(fields.slice(0, 7))))?.message).toMatch(/layout/);
    expect(refusal(() => parseReceiptHandle(withFields([...fields.slice(0, 4), '-1', ...fields.slice(5)])))?.message).toMatch(/numbers/);
    expect(refusal(() => parseReceiptHandle(withFields([...fields.slice(0, 3), '2.5', ...fields.slice(4)])))?.message).toMatch(/numbers/);
    expect(refusal(() => parseReceiptHandle(`${'A'.repeat(4096)}.${'A'.repeat(22)}`))).toBeDefined();
    expect(refusal(() => parseReceiptHandle(`.${'A'.repeat(22)}`))).toBeDefined();
    expect(refusal(() => verifyReceiptHandle(payload, secret))).toBeDefined(); // no MAC part at all
  });
});
