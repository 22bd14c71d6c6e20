import * as fs from 'node:fs';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isReservedPropertyName } from '../../../core/limits.ts';
import {
  decodeRecord,
  describeRecordError,
  encodeRecord,
  readU64,
  recordCrcStart,
  recordFlags,
  recordHeaderBytes,
  recordMagic,
  recordMaxBytes,
  recordMinBytes,
  sizeRecord,
  writeU64,
  type DecodedRecord,
  type RecordError,
  type RecordInput,
  type RecordPlacement,
} from './record.ts';

/** Where the log put a record, with the store host that `sizeRecord` is given. */
interface Placement extends RecordPlacement {
  storeHost: string;
}

function encode(input: RecordInput, placement: Placement, extraFlags = 0): Buffer {
  const sized = sizeRecord(input, placement.storeHost);
  const buf = Buffer.alloc(sized.totalSize);
  const written = encodeRecord(buf, 0, sized, placement, extraFlags);
  expect(written).toBe(sized.totalSize);
  return buf;
}

function decodeOk(buf: Buffer, offset = 0, limit?: number): DecodedRecord {
  const result = decodeRecord(buf, offset, limit);
  if (!result.ok) throw new Error(`expected a record, got ${describeRecordError(result.error)}`);
  return result.record;
}

/** Checks every field of a decoded record against what was encoded. */
function expectRecord(
  record: DecodedRecord,
  input: RecordInput,
  placement: Placement,
  extraFlags: number,
  totalSize: number,
): void {
  expect(record.totalSize).toBe(totalSize);
  expect(record.flags).toBe((input.flags ?? 0) | extraFlags);
  expect(record.reconsumeTimes).toBe(input.reconsumeTimes ?? 0);
  expect(record.queueId).toBe(input.queueId);
  expect(record.queueOffset).toBe(placement.queueOffset);
  expect(record.physicalOffset).toBe(placement.physicalOffset);
  expect(record.bornTimestamp).toBe(input.bornTimestamp);
  expect(record.storeTimestamp).toBe(placement.storeTimestamp);
  expect(record.deliverAt).toBe(input.deliverAt ?? 0);
  expect(record.preparedTxOffset).toBe(input.preparedTxOffset ?? -1);
  expect(record.body.equals(input.body)).toBe(true);
  expect(record.topic).toBe(input.topic);
  expect(record.bornHost).toBe(input.bornHost);
  expect(record.storeHost).toBe(placement.storeHost);
  expect(record.tag).toBe(input.tag);
  expect(record.keys).toEqual(input.keys ?? []);
  expect(record.messageGroup).toBe(input.messageGroup);
  expect(record.properties).toEqual(input.properties ?? {});
}

// Arbitrary Unicode without unpaired surrogates (fast-check's 'binary' unit yields whole code points).
const unicode = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
// A host travels behind a one-byte length: 40 code points are at most 160 UTF-8 bytes.
const hostArb = unicode(40);
// Names the codec itself reserves (tag, keys, group) or that validation rejects (`__` names).
const propertyNameArb = unicode(12).filter((name) => !isReservedPropertyName(name));
const propertiesArb = fc
  .uniqueArray(fc.tuple(propertyNameArb, unicode(24)), { maxLength: 6, selector: ([name]) => name })
  .map((entries) => Object.fromEntries(entries) as Record<string, string>);
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

const inputArb: fc.Arbitrary<RecordInput> = fc.record(
  {
    topic: fc.stringMatching(/^[a-zA-Z0-9_-]{1,127}$/),
    queueId: fc.integer({ min: 0, max: 0xffffffff }),
    body: fc.uint8Array({ maxLength: 4096 }),
    tag: unicode(16),
    keys: fc.array(unicode(16), { maxLength: 4 }),
    properties: propertiesArb,
    messageGroup: unicode(16),
    flags: fc.integer({ min: 0, max: 3 }),
    reconsumeTimes: fc.integer({ min: 0, max: 0xffff }),
    bornTimestamp: u53,
    bornHost: hostArb,
    deliverAt: u53,
    preparedTxOffset: fc.oneof(fc.constant(-1), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  },
  { requiredKeys: ['topic', 'queueId', 'body', 'bornTimestamp', 'bornHost'] },
);

const placementArb: fc.Arbitrary<Placement> = fc.record({
  queueOffset: u53,
  physicalOffset: u53,
  storeTimestamp: u53,
  storeHost: hostArb,
});

const extraFlagsArb = fc.constantFrom(0, recordFlags.batchContinues);

describe('record codec round trip', () => {
  it('decodes every valid record to exactly what was encoded, at any offset in a larger buffer', () => {
    fc.assert(
      fc.property(
        inputArb,
        placementArb,
        extraFlagsArb,
        fc.nat(64),
        fc.uint8Array({ maxLength: 32 }),
        (input, placement, extraFlags, lead, trailer) => {
          const sized = sizeRecord(input, placement.storeHost);
          const buf = Buffer.alloc(lead + sized.totalSize + trailer.length, 0xa5);
          buf.set(trailer, lead + sized.totalSize);
          const written = encodeRecord(buf, lead, sized, placement, extraFlags);
          expect(written).toBe(sized.totalSize);
          expect(buf.readUInt32LE(lead)).toBe(sized.totalSize);
          // The bytes either side of the record are untouched.
          expect(buf.subarray(0, lead).every((b) => b === 0xa5)).toBe(true);
          expect(buf.subarray(lead + written).equals(trailer)).toBe(true);

          expectRecord(decodeOk(buf, lead), input, placement, extraFlags, sized.totalSize);
          // Bounded by a limit that ends exactly at the record, too.
          expectRecord(decodeOk(buf, lead, lead + written), input, placement, extraFlags, sized.totalSize);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('ORs batchContinues into the stored flags without touching the transaction bits', () => {
    for (const flags of [0, 1, 2, 3]) {
      const input: RecordInput = { topic: 't', queueId: 1, body: Buffer.from('x'), bornTimestamp: 1, bornHost: 'h', flags };
      const placement = { queueOffset: 0, physicalOffset: 0, storeTimestamp: 2, storeHost: 's' };
      const record = decodeOk(encode(input, placement, recordFlags.batchContinues));
      expect(record.flags).toBe(flags | recordFlags.batchContinues);
      expect(record.flags & recordFlags.transactionMask).toBe(flags);
      expect(decodeOk(encode(input, placement)).flags & recordFlags.batchContinues).toBe(0);
    }
  });

  it('clamps reconsumeTimes to the u16 it is stored in', () => {
    const input: RecordInput = { topic: 't', queueId: 0, body: Buffer.alloc(0), bornTimestamp: 0, bornHost: '', reconsumeTimes: 70_000 };
    const record = decodeOk(encode(input, { queueOffset: 0, physicalOffset: 0, storeTimestamp: 0, storeHost: '' }));
    expect(record.reconsumeTimes).toBe(0xffff);
  });

  it('sizes the smallest record at recordMinBytes plus its one-byte topic', () => {
    const input: RecordInput = { topic: 'a', queueId: 0, body: Buffer.alloc(0), bornTimestamp: 0, bornHost: '' };
    expect(sizeRecord(input, '').totalSize).toBe(recordMinBytes + 1);
    expect(recordMinBytes).toBe(recordHeaderBytes + 10);
  });

  it('returns a body that is a view into the decoded buffer, not a copy', () => {
    const input: RecordInput = { topic: 't', queueId: 0, body: Buffer.from('abc'), bornTimestamp: 0, bornHost: '' };
    const buf = encode(input, { queueOffset: 0, physicalOffset: 0, storeTimestamp: 0, storeHost: '' });
    const record = decodeOk(buf);
    expect(record.body.buffer).toBe(buf.buffer);
    expect(record.body.byteOffset).toBe(buf.byteOffset + recordHeaderBytes);
  });
});

describe('record codec against damage', () => {
  // Smaller bodies keep the per-bit checks quick.
  const smallInputArb = inputArb.map((input) => ({ ...input, body: input.body.subarray(0, 256) }));

  it('rejects a record with any single bit flipped, naming the damaged field', () => {
    fc.assert(
      fc.property(smallInputArb, placementArb, extraFlagsArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (input, placement, extraFlags, where) => {
        const buf = encode(input, placement, extraFlags);
        const bit = Math.floor(where * buf.length * 8);
        const byte = bit >> 3;
        buf[byte] = (buf[byte] as number) ^ (1 << (bit & 7));
        const result = decodeRecord(buf, 0);
        expect(result.ok).toBe(false);
        if (result.ok) return;
        if (byte < 4) {
          // A smaller size moves the CRC's range; a larger one runs past the buffer or the bound.
          expect(['end', 'truncated', 'bad-size', 'bad-crc']).toContain(result.error.kind);
        } else if (byte < 8) {
          expect(result.error).toEqual({ kind: 'bad-magic', magic: buf.readUInt32LE(4) });
        } else {
          expect(result.error.kind).toBe('bad-crc');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every single-bit flip of one record, exhaustively', () => {
    const input: RecordInput = {
      topic: 'Flips',
      queueId: 9,
      body: Buffer.from('every bit counts'),
      tag: 'T',
      keys: ['k'],
      properties: { p: 'v' },
      messageGroup: 'g',
      bornTimestamp: 1_700_000_000_000,
      bornHost: 'born',
    };
    const clean = encode(input, { queueOffset: 5, physicalOffset: 4096, storeTimestamp: 1_700_000_000_001, storeHost: 'store' });
    const kinds = new Set<string>();
    for (let bit = 0; bit < clean.length * 8; bit++) {
      const buf = Buffer.from(clean);
      buf[bit >> 3] = (buf[bit >> 3] as number) ^ (1 << (bit & 7));
      const result = decodeRecord(buf, 0);
      expect(result.ok, `bit ${bit}`).toBe(false);
      if (!result.ok) kinds.add(result.error.kind);
    }
    expect([...kinds].sort()).toEqual(['bad-crc', 'bad-magic', 'bad-size', 'truncated']);
  });

  it('reads a size flipped to zero as the end of the written data', () => {
    // 256 bytes: flipping bit 8 of the size field leaves 0.
    const input: RecordInput = { topic: 't', queueId: 0, body: Buffer.alloc(256 - 83), bornTimestamp: 0, bornHost: '' };
    const buf = encode(input, { queueOffset: 0, physicalOffset: 0, storeTimestamp: 0, storeHost: '' });
    expect(buf.length).toBe(256);
    buf[1] = (buf[1] as number) ^ 1;
    expect(decodeRecord(buf, 0)).toEqual({ ok: false, error: { kind: 'end' } });
  });

  it('rejects a record cut short anywhere, by a short buffer or by the limit, without throwing', () => {
    fc.assert(
      fc.property(smallInputArb, placementArb, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (input, placement, where) => {
        const buf = encode(input, placement);
        const cut = Math.floor(where * buf.length);
        const expected: RecordError = cut < 4 ? { kind: 'end' } : { kind: 'truncated', totalSize: buf.length };
        expect(decodeRecord(buf.subarray(0, cut), 0)).toEqual({ ok: false, error: expected });
        expect(decodeRecord(buf, 0, cut)).toEqual({ ok: false, error: expected });
      }),
      { numRuns: 300 },
    );
  });

  it('rejects every prefix of one record', () => {
    const buf = encode(
      { topic: 'prefix', queueId: 1, body: Buffer.from('body'), tag: 't', bornTimestamp: 1, bornHost: 'b' },
      { queueOffset: 0, physicalOffset: 0, storeTimestamp: 1, storeHost: 's' },
    );
    for (let cut = 0; cut < buf.length; cut++) {
      const result = decodeRecord(Buffer.from(buf.subarray(0, cut)), 0);
      expect(result.ok, `cut at ${cut}`).toBe(false);
    }
    expect(decodeRecord(buf, 0).ok).toBe(true);
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.nat(16), (bytes, offset) => {
        const buf = Buffer.from(bytes);
        const result = decodeRecord(buf, Math.min(offset, buf.length));
        expect(result.ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on random bytes behind a valid size, magic and CRC (length fields are not trusted)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: recordMinBytes - recordCrcStart, maxLength: 400 }), (rest) => {
        const buf = Buffer.alloc(recordCrcStart + rest.length);
        buf.writeUInt32LE(buf.length, 0);
        buf.writeUInt32LE(recordMagic, 4);
        buf.set(rest, recordCrcStart);
        buf.writeUInt32LE(crc32c(buf.subarray(recordCrcStart)), 8);
        const result = decodeRecord(buf, 0);
        if (!result.ok) expect(result.error.kind).toBe('bad-layout');
        else expect(result.record.totalSize).toBe(buf.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws when a length field of a valid record is damaged and the CRC fixed up', () => {
    fc.assert(
      fc.property(
        smallInputArb,
        placementArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 0, max: 0xff }),
        (input, placement, where, value) => {
          const buf = encode(input, placement);
          // Damage a byte past the header: the body length and every variable-length part.
          const at = 68 + Math.floor(where * (buf.length - 68));
          buf[at] = value;
          buf.writeUInt32LE(crc32c(buf.subarray(recordCrcStart)), 8);
          const result = decodeRecord(buf, 0);
          if (!result.ok) expect(result.error.kind).toBe('bad-layout');
          else expect(result.record.totalSize).toBe(buf.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('rejects sizes below the minimum or above the maximum before reading further', () => {
    const buf = Buffer.alloc(recordMinBytes + 16);
    buf.writeUInt32LE(recordMagic, 4);
    buf.writeUInt32LE(recordMinBytes - 1, 0);
    expect(decodeRecord(buf, 0)).toEqual({ ok: false, error: { kind: 'bad-size', totalSize: recordMinBytes - 1 } });
    buf.writeUInt32LE(recordMaxBytes + 1, 0);
    expect(decodeRecord(buf, 0)).toEqual({ ok: false, error: { kind: 'bad-size', totalSize: recordMaxBytes + 1 } });
  });

  it('describes every kind of error', () => {
    const errors: RecordError[] = [
      { kind: 'end' },
      { kind: 'truncated', totalSize: 100 },
      { kind: 'bad-size', totalSize: 3 },
      { kind: 'bad-magic', magic: 0xdead },
      { kind: 'bad-crc', expected: 0xab, actual: 0xcd },
      { kind: 'bad-layout', detail: 'topic runs past the record' },
    ];
    expect(errors.map(describeRecordError)).toEqual([
      'end of written data',
      'record of 100 bytes runs past the end of the data',
      'impossible record size 3',
      'bad magic 0xdead',
      'CRC32C mismatch: stored 0xab, computed 0xcd',
      'malformed record: topic runs past the record',
    ]);
  });
});

interface RecordFixture {
  name: string;
  input: Omit<RecordInput, 'body'> & { bodyHex: string };
  placement: Placement;
  extraFlags: number;
  hex: string;
}

// Generated once from the inputs saved beside the bytes and never regenerated here, so any change
// to the format fails these tests.
const fixtures = JSON.parse(
  fs.readFileSync(new URL('./fixtures/records.json', import.meta.url), 'utf8'),
) as RecordFixture[];

function fixtureInput(fixture: RecordFixture): RecordInput {
  const { bodyHex, ...rest } = fixture.input;
  return { ...rest, body: Buffer.from(bodyHex, 'hex') };
}

describe('record codec against saved bytes', () => {
  it('has the three saved records', () => {
    expect(fixtures.map((f) => f.name)).toEqual(['minimal', 'tag, two keys, properties and a message group', 'unicode']);
  });

  it.each(fixtures)('decodes the saved bytes of "$name"', (fixture) => {
    const bytes = Buffer.from(fixture.hex, 'hex');
    const record = decodeOk(bytes);
    expectRecord(record, fixtureInput(fixture), fixture.placement, fixture.extraFlags, bytes.length);
  });

  it.each(fixtures)('re-encodes "$name" to the saved bytes', (fixture) => {
    const bytes = encode(fixtureInput(fixture), fixture.placement, fixture.extraFlags);
    expect(bytes.toString('hex')).toBe(fixture.hex);
  });

  it('lays out the minimal record as the box diagram says', () => {
    const bytes = Buffer.from((fixtures[0] as RecordFixture).hex, 'hex');
    expect(bytes.readUInt32LE(0)).toBe(83);
    expect(bytes.subarray(4, 8).toString('hex')).toBe('314b5253');
    expect(bytes.readUInt32LE(8)).toBe(crc32c(bytes.subarray(12)));
    expect(bytes.subarray(60, 68).toString('hex')).toBe('ffffffffffffffff'); // no prepared offset
    expect(bytes.subarray(72).toString('hex')).toBe(
      [
        '0100', // topic length
        '61', // "a"
        '00', // born host length
        '00', // store host length
        '02000000', // properties length, its count included
        '0000', // property count
      ].join(''),
    );
  });

  it('stores tag, keys and message group as the reserved properties, in that order, before user properties', () => {
    const bytes = Buffer.from((fixtures[1] as RecordFixture).hex, 'hex');
    const text = bytes.toString('latin1');
    const order = ['TAGS', 'KEYS', 'order-42', 'KEYS', 'customer-7', '__SHARDINGKEY', 'region', 'traceId'];
    let from = 0;
    for (const part of order) {
      const at = text.indexOf(part, from);
      expect(at, part).toBeGreaterThan(from);
      from = at + part.length;
    }
  });
});

describe('readU64 / writeU64', () => {
  it.each([
    [0, '0000000000000000'],
    [2 ** 32 - 1, 'ffffffff00000000'],
    [2 ** 32, '0000000001000000'],
    [2 ** 53 - 1, 'ffffffffffff1f00'],
    [-1, 'ffffffffffffffff'],
  ])('round-trips %d through the little-endian bytes %s', (value, hex) => {
    const buf = Buffer.alloc(12, 0x77);
    writeU64(buf, 2, value);
    expect(buf.subarray(2, 10).toString('hex')).toBe(hex);
    expect(buf.subarray(0, 2).toString('hex')).toBe('7777');
    expect(buf.subarray(10).toString('hex')).toBe('7777');
    expect(readU64(buf, 2)).toBe(value);
  });

  it('agrees with BigInt little-endian for every safe non-negative integer', () => {
    fc.assert(
      fc.property(u53, (value) => {
        const ours = Buffer.alloc(8);
        writeU64(ours, 0, value);
        const reference = Buffer.alloc(8);
        reference.writeBigUInt64LE(BigInt(value), 0);
        expect(ours.equals(reference)).toBe(true);
        expect(readU64(reference, 0)).toBe(value);
      }),
      { numRuns: 1000 },
    );
  });
});
