import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from './errors.ts';
import { decodeMessageId, encodeMessageId, messageIdVersion } from './message-id.ts';

const brokerIdArb = fc.integer({ min: 0, max: 0xffffffff });
const offsetArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

function expectIllegal(id: unknown): void {
  let caught: unknown;
  try {
    decodeMessageId(id as string);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SkyrocketError);
  const error = caught as SkyrocketError;
  expect(error.code).toBe('ILLEGAL_MESSAGE_ID');
  expect(error.field).toBe('messageId');
  expect(error.retriable).toBe(false);
  expect(error.httpStatus).toBe(400);
}

describe('message ids', () => {
  it('round-trips every u32 broker id and safe offset through 26 upper-case hex characters', () => {
    fc.assert(
      fc.property(brokerIdArb, offsetArb, (brokerId, physicalOffset) => {
        const id = encodeMessageId(brokerId, physicalOffset);
        expect(id).toMatch(/^01[0-9A-F]{24}$/);
        expect(decodeMessageId(id)).toEqual({ brokerId, physicalOffset });
      }),
      { numRuns: 1000 },
    );
  });

  it('orders ids of one broker as their offsets', () => {
    fc.assert(
      fc.property(brokerIdArb, offsetArb, offsetArb, (brokerId, a, b) => {
        const order = Math.sign(encodeMessageId(brokerId, a).localeCompare(encodeMessageId(brokerId, b)));
        expect(order).toBe(Math.sign(a - b));
      }),
    );
  });

  it.each([
    [0, 0, '01000000000000000000000000'],
    [7, 0x1234, '01000000070000000000001234'],
    [0xdeadbeef, 0xabcdef, '01DEADBEEF0000000000ABCDEF'],
    [0xffffffff, Number.MAX_SAFE_INTEGER, '01FFFFFFFF001FFFFFFFFFFFFF'],
  ])('encodes broker %d, offset %d as %s', (brokerId, physicalOffset, id) => {
    expect(messageIdVersion).toBe('01');
    expect(encodeMessageId(brokerId, physicalOffset)).toBe(id);
    expect(decodeMessageId(id)).toEqual({ brokerId, physicalOffset });
  });

  it.each([
    ['empty', ''],
    ['lower-case hex', '01deadbeef0000000000abcdef'],
    ['another version', '02000000070000000000001234'],
    ['one character short', '0100000007000000000000123'],
    ['one character long', '010000000700000000000012345'],
    ['a non-hex digit', '0100000007000000000000123G'],
    ['surrounding space', ' 01000000070000000000001234'],
    ['a trailing newline', '01000000070000000000001234\n'],
    ['an offset of 2^53', '01000000000020000000000000'],
    ['an offset of 2^64 - 1', '0100000000FFFFFFFFFFFFFFFF'],
    ['a RocketMQ-style id', '7F00000100002A9F0000000000000001'],
  ])('rejects %s as ILLEGAL_MESSAGE_ID', (_what, id) => {
    expectIllegal(id);
  });

  it.each([[undefined], [null], [42], [{}]])('rejects the non-string %j as ILLEGAL_MESSAGE_ID', (id) => {
    expectIllegal(id);
  });

  it('rejects any string that is not 01 followed by 24 upper-case hex digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (id) => {
        fc.pre(!/^01[0-9A-F]{24}$/.test(id));
        expectIllegal(id);
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ['a negative broker id', -1, 0],
    ['a broker id past u32', 2 ** 32, 0],
    ['a fractional broker id', 1.5, 0],
    ['a NaN broker id', Number.NaN, 0],
    ['a negative offset', 0, -1],
    ['an offset of 2^53', 0, 2 ** 53],
    ['a fractional offset', 0, 0.5],
    ['an infinite offset', 0, Number.POSITIVE_INFINITY],
  ])('refuses to encode %s', (_what, brokerId, physicalOffset) => {
    expect(() => encodeMessageId(brokerId, physicalOffset)).toThrow(RangeError);
  });
});
