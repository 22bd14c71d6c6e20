import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDeliveries, deliveriesMediaType, encodeDeliveries, namesDeliveries, type DeliveryFields } from './delivery-frame.ts';
import { SkyrocketError } from './errors.ts';

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const deliveryArb: fc.Arbitrary<DeliveryFields> = fc.record(
  {
    messageId: text,
    topic: fc.constantFrom('orders', 'other-topic', 'Ünïcode'),
    tag: fc.option(text, { nil: undefined }),
    keys: fc.array(text, { maxLength: 3 }),
    properties: fc.dictionary(text, fc.string({ unit: 'grapheme', maxLength: 20 }), { maxKeys: 3 }),
    queueId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    queueOffset: u64,
    bornAt: u64,
    storedAt: u64,
    deliveryAttempt: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
    messageGroup: fc.option(text, { nil: undefined }),
    deliverAt: fc.option(u64, { nil: undefined }),
    receiptHandle: fc.string({ maxLength: 100 }),
    body: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  },
  { requiredKeys: ['messageId', 'topic', 'keys', 'properties', 'queueId', 'queueOffset', 'bornAt', 'storedAt', 'deliveryAttempt', 'receiptHandle', 'body'] },
);

function malformed(fn: () => unknown): SkyrocketError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe('MALFORMED_FRAME');
    return error as SkyrocketError;
  }
  throw new Error('expected MALFORMED_FRAME');
}

/** What the decoder gives back for a delivery: every field, an absent tag as null. */
function expected(d: DeliveryFields): Record<string, unknown> {
  return {
    ...d,
    tag: d.tag ?? null,
    keys: [...d.keys],
    properties: { ...d.properties },
    messageGroup: d.messageGroup,
    deliverAt: d.deliverAt,
    body: Buffer.from(d.body).toString('hex'),
  };
}

const sample: DeliveryFields = {
  messageId: '0A000001000000000000000000001F40',
  topic: 'orders',
  tag: 'paid',
  keys: ['order-1', 'customer-9'],
  properties: { region: 'eu', note: 'ünïcode ✓' },
  queueId: 3,
  queueOffset: 2 ** 40 + 17,
  bornAt: 1_767_225_600_000,
  storedAt: 1_767_225_600_004,
  deliveryAttempt: 2,
  messageGroup: 'customer-9',
  deliverAt: 1_767_225_660_000,
  receiptHandle: '2.Yml.3.17.1767225660004.kR3xYzAbCdEfGhIj0',
  body: Buffer.from([0, 1, 2, 255, 254]),
};

describe('binary deliveries', () => {
  it('round-trip every field, strings as UTF-8, numbers up to 2^53 - 1', () => {
    fc.assert(
      fc.property(fc.array(deliveryArb, { maxLength: 12 }), fc.constantFrom('orders', 'Ünïcode'), (deliveries, topic) => {
        const decoded = decodeDeliveries(encodeDeliveries(topic, deliveries));
        expect(decoded.topic).toBe(topic);
        expect(decoded.messages.map((m) => ({ ...m, body: m.body.toString('hex') }))).toEqual(deliveries.map(expected));
      }),
      { numRuns: 300 },
    );
  });

  it('bodies are views into the answer; deliveries without keys or properties share frozen empties', () => {
    const plain: DeliveryFields = { ...sample, tag: undefined, keys: [], properties: {}, messageGroup: undefined, deliverAt: undefined };
    const buf = encodeDeliveries('orders', [plain, plain]);
    const { messages } = decodeDeliveries(buf);
    expect(messages[0]!.body.buffer).toBe(buf.buffer);
    expect(messages[0]!.keys).toBe(messages[1]!.keys);
    expect(Object.isFrozen(messages[0]!.properties)).toBe(true);
    expect(messages[0]!.tag).toBeNull();
  });

  it('a property named __proto__ comes back as an own property, not as the prototype', () => {
    const properties = JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string>;
    const { messages } = decodeDeliveries(encodeDeliveries('orders', [{ ...sample, properties }]));
    expect(Object.getPrototypeOf(messages[0]!.properties)).toBe(Object.prototype);
    expect(Object.entries(messages[0]!.properties)).toEqual([
      ['__proto__', 'x'],
      ['a', 'b'],
    ]);
  });

  it('writes into the buffer it is given and returns a view of it', () => {
    const scratch = Buffer.alloc(64 * 1024);
    const out = encodeDeliveries('orders', [sample], (bytes) => {
      expect(bytes).toBeLessThanOrEqual(scratch.length);
      return scratch;
    });
    expect(out.buffer).toBe(scratch.buffer);
    expect(decodeDeliveries(Buffer.from(out)).messages[0]!.receiptHandle).toBe(sample.receiptHandle);
    expect(() => encodeDeliveries('orders', [sample], () => Buffer.alloc(10))).toThrow(RangeError);
  });

  it('refuses every truncation, any trailing byte, unknown flags, a wrong magic and a count the bytes cannot hold', () => {
    const buf = encodeDeliveries('orders', [sample, { ...sample, topic: 'other', keys: [], properties: {} }]);
    for (let n = 0; n < buf.length; n++) malformed(() => decodeDeliveries(buf.subarray(0, n)));
    expect(malformed(() => decodeDeliveries(Buffer.concat([buf, Buffer.from([0])]))).message).toMatch(/follow the last delivery/);
    const topicEnd = 8 + 2 + 'orders'.length + 4; // and an empty rest
    const flagged = Buffer.from(buf);
    flagged[topicEnd] = 0x80;
    expect(malformed(() => decodeDeliveries(flagged)).message).toMatch(/unknown flags/);
    const wrongMagic = Buffer.from(buf);
    wrongMagic.write('SKF1', 0, 'latin1');
    expect(malformed(() => decodeDeliveries(wrongMagic)).message).toMatch(/SKD1/);
    const huge = Buffer.from(buf);
    huge.writeUInt32BE(0xffffffff, 4);
    expect(malformed(() => decodeDeliveries(huge)).message).toMatch(/cannot fit/);
    const beyond = Buffer.from(buf);
    beyond.writeUInt32BE(0x00200000, topicEnd + 5); // queueOffset's high word: 2^53
    expect(malformed(() => decodeDeliveries(beyond)).message).toMatch(/2\^53/);
  });

  it('random bytes after a valid start are refused with MALFORMED_FRAME, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        const buf = Buffer.concat([Buffer.from('SKD1', 'latin1'), Buffer.from(tail)]);
        try {
          decodeDeliveries(buf);
        } catch (error) {
          expect((error as SkyrocketError).code).toBe('MALFORMED_FRAME');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to encode numbers it cannot carry', () => {
    expect(() => encodeDeliveries('orders', [{ ...sample, queueOffset: -1 }])).toThrow(RangeError);
    expect(() => encodeDeliveries('orders', [{ ...sample, bornAt: 2 ** 53 }])).toThrow(RangeError);
  });

  it('names its media type in Accept lists', () => {
    expect(namesDeliveries(`${deliveriesMediaType}, application/json`)).toBe(true);
    expect(namesDeliveries('application/vnd.skyrocket.frame')).toBe(false);
    expect(namesDeliveries(undefined)).toBe(false);
  });

  it('writes a receipt handle given as ASCII text parts the same as the string', () => {
    const text = sample.receiptHandle as string;
    const parts = { maxBytes: text.length + 5, write: (out: Buffer, at: number) => out.write(text, at, 'latin1') };
    const viaParts = encodeDeliveries('orders', [{ ...sample, receiptHandle: parts }]);
    expect(viaParts.equals(encodeDeliveries('orders', [sample]))).toBe(true);
  });

  it('carries the answer\'s other keys beside the messages, and refuses a rest that is not a JSON object', () => {
    const ackFailed = [{ receiptHandle: 'x', code: 'INVALID_RECEIPT_HANDLE', message: 'ünknown' }];
    const decoded = decodeDeliveries(encodeDeliveries('orders', [sample], undefined, { ackFailed }));
    expect(decoded.ackFailed).toEqual(ackFailed);
    expect(decoded.messages).toHaveLength(1);
    expect(Object.keys(decodeDeliveries(encodeDeliveries('orders', [])))).toEqual(['topic', 'messages']);
    expect(() => encodeDeliveries('orders', [], undefined, { messages: [] })).toThrow(RangeError);
    const withRest = (text: string): Buffer => {
      const head = Buffer.alloc(8 + 2 + 6 + 4);
      head.write('SKD1', 0, 'latin1');
      head.writeUInt32BE(0, 4);
      head.writeUInt16BE(6, 8);
      head.write('orders', 10, 'latin1');
      head.writeUInt32BE(Buffer.byteLength(text), 16);
      return Buffer.concat([head, Buffer.from(text)]);
    };
    expect(decodeDeliveries(withRest('{"a":1}')).a).toBe(1);
    for (const bad of ['{', '[]', '3', 'null', '{"messages":[]}', '{"topic":"x"}']) malformed(() => decodeDeliveries(withRest(bad)));
  });
});
