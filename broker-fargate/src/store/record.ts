import { crc32c } from '@node-rs/crc32';

/**
 * The commit-log record: one message, stored once, never spanning two segments.
 *
 * All integers are little-endian. 64-bit fields hold JS numbers below 2^53 and are written as two
 * 32-bit halves, so the hot path never touches BigInt.
 *
 *  0         4         8         12   14   16        20                  28
 *  +---------+---------+---------+----+----+---------+-------------------+
 *  |totalSize|  magic  | crc32c  |flag|reco| queueId |    queueOffset    |
 *  +---------+---------+---------+----+----+---------+-------------------+
 *  28                  36                  44                  52
 *  +-------------------+-------------------+-------------------+
 *  |  physicalOffset   |   bornTimestamp   |  storeTimestamp   |
 *  +-------------------+-------------------+-------------------+
 *  52                  60                  68        72
 *  +-------------------+-------------------+---------+
 *  |     deliverAt     | preparedTxOffset  | bodyLen |
 *  +-------------------+-------------------+---------+
 *  72
 *  +----- bodyLen ----+-----+--- tLen ---+----+-- bhLen --+----+-- shLen --+---------+-- pLen --+
 *  |       body       |tLen |   topic    |bhLen| bornHost |shLen| storeHost | pLen    |properties|
 *  +------------------+-----+------------+----+-----------+----+-----------+---------+----------+
 *                      u16                u8               u8               u32
 *
 *  properties := count:u16 { nameLen:u16 name valueLen:u32 value }*
 *
 * - totalSize counts every byte of the record, itself included.
 * - crc32c (Castagnoli) covers bytes [12, totalSize): everything after the checksum.
 * - flag: transaction state in the low two bits (see `recordFlags`).
 * - reco: how many times this message has been redelivered before (RocketMQ's reconsume times).
 * - deliverAt: epoch ms of a timer message, 0 when none.
 * - preparedTxOffset: commit-log offset of the half message a commit/rollback resolves, -1 none.
 * - Strings are UTF-8. Tag, keys and message group travel as the reserved properties
 *   `TAGS`, `KEYS` (one entry per key) and `__SHARDINGKEY`, as in RocketMQ.
 */
export const recordMagic = 0x53524b31; // "SRK1"
export const recordHeaderBytes = 72;
export const recordCrcStart = 12;
/** Smallest possible record: header, empty body, the five length prefixes. */
export const recordMinBytes = recordHeaderBytes + 2 + 1 + 1 + 4 + 2;
/** A record never exceeds this; a larger totalSize is corruption, never an allocation. */
export const recordMaxBytes = 8 * 1024 * 1024;

export const recordFlags = {
  transactionMask: 0x3,
  transactionNone: 0x0,
  transactionPrepared: 0x1,
  transactionCommit: 0x2,
  transactionRollback: 0x3,
  /**
   * Set on every record of an append batch but its last. Recovery drops a batch whose last record
   * never reached the disk, so a batch is stored whole or not at all.
   */
  batchContinues: 0x4,
} as const;

export const systemProperty = {
  tag: 'TAGS',
  keys: 'KEYS',
  messageGroup: '__SHARDINGKEY',
  transactionId: '__transactionId__',
  originMessageId: 'UNIQ_KEY',
} as const;

/** What the store needs to write one record. Offsets and store time are assigned by the log. */
export interface RecordInput {
  topic: string;
  queueId: number;
  body: Uint8Array;
  tag?: string | undefined;
  keys?: readonly string[] | undefined;
  properties?: Readonly<Record<string, string>> | undefined;
  messageGroup?: string | undefined;
  flags?: number | undefined;
  reconsumeTimes?: number | undefined;
  bornTimestamp: number;
  bornHost: string;
  deliverAt?: number | undefined;
  preparedTxOffset?: number | undefined;
}

export interface DecodedRecord {
  totalSize: number;
  flags: number;
  reconsumeTimes: number;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  bornTimestamp: number;
  storeTimestamp: number;
  deliverAt: number;
  preparedTxOffset: number;
  /** A view into the buffer the record was decoded from: zero-copy. */
  body: Buffer;
  topic: string;
  bornHost: string;
  storeHost: string;
  tag: string | undefined;
  keys: string[];
  messageGroup: string | undefined;
  /** User properties and any system property other than tag, keys and message group. */
  properties: Record<string, string>;
}

export type RecordError =
  | { kind: 'end' } // zero totalSize: the written part of a segment ends here
  | { kind: 'truncated'; totalSize: number } // the record runs past the bytes available
  | { kind: 'bad-size'; totalSize: number }
  | { kind: 'bad-magic'; magic: number }
  | { kind: 'bad-crc'; expected: number; actual: number }
  | { kind: 'bad-layout'; detail: string };

export type DecodeResult = { ok: true; record: DecodedRecord } | { ok: false; error: RecordError };

const two32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, offset: number, value: number): void {
  if (value < 0) {
    // -1 is the only negative value stored (an absent offset); write all ones.
    buf.writeInt32LE(-1, offset);
    buf.writeInt32LE(-1, offset + 4);
    return;
  }
  buf.writeUInt32LE(value % two32, offset);
  buf.writeUInt32LE(Math.floor(value / two32), offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  const lo = buf.readUInt32LE(offset);
  const hi = buf.readUInt32LE(offset + 4);
  if (hi === 0xffffffff && lo === 0xffffffff) return -1;
  return hi * two32 + lo;
}

function propertyEntries(input: RecordInput): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  if (input.tag !== undefined) entries.push([systemProperty.tag, input.tag]);
  if (input.keys !== undefined) for (const key of input.keys) entries.push([systemProperty.keys, key]);
  if (input.messageGroup !== undefined) entries.push([systemProperty.messageGroup, input.messageGroup]);
  if (input.properties !== undefined) {
    for (const name in input.properties) entries.push([name, input.properties[name] as string]);
  }
  return entries;
}

/** Bytes the record for `input` will take, with the UTF-8 lengths it needed on the way. */
export interface SizedRecord {
  input: RecordInput;
  totalSize: number;
  topicBytes: number;
  bornHostBytes: number;
  properties: Array<[string, string]>;
  propertiesBytes: number;
}

export function sizeRecord(input: RecordInput, storeHost: string): SizedRecord {
  const topicBytes = Buffer.byteLength(input.topic);
  const bornHostBytes = Buffer.byteLength(input.bornHost);
  const properties = propertyEntries(input);
  let propertiesBytes = 2;
  for (const [name, value] of properties) {
    propertiesBytes += 2 + Buffer.byteLength(name) + 4 + Buffer.byteLength(value);
  }
  const totalSize =
    recordHeaderBytes +
    input.body.length +
    2 +
    topicBytes +
    1 +
    bornHostBytes +
    1 +
    Buffer.byteLength(storeHost) +
    4 +
    propertiesBytes;
  return { input, totalSize, topicBytes, bornHostBytes, properties, propertiesBytes };
}

export interface RecordPlacement {
  queueOffset: number;
  physicalOffset: number;
  storeTimestamp: number;
  storeHost: string;
}

/**
 * Encodes a sized record at `offset` of `buf` and returns the bytes written. The caller has
 * checked that `buf` has room for `sized.totalSize` bytes.
 */
export function encodeRecord(
  buf: Buffer,
  offset: number,
  sized: SizedRecord,
  placement: RecordPlacement,
  extraFlags = 0,
): number {
  const { input } = sized;
  const start = offset;
  buf.writeUInt32LE(sized.totalSize, start);
  buf.writeUInt32LE(recordMagic, start + 4);
  buf.writeUInt16LE((input.flags ?? 0) | extraFlags, start + 12);
  buf.writeUInt16LE(Math.min(input.reconsumeTimes ?? 0, 0xffff), start + 14);
  buf.writeUInt32LE(input.queueId, start + 16);
  writeU64(buf, start + 20, placement.queueOffset);
  writeU64(buf, start + 28, placement.physicalOffset);
  writeU64(buf, start + 36, input.bornTimestamp);
  writeU64(buf, start + 44, placement.storeTimestamp);
  writeU64(buf, start + 52, input.deliverAt ?? 0);
  writeU64(buf, start + 60, input.preparedTxOffset ?? -1);
  buf.writeUInt32LE(input.body.length, start + 68);
  let pos = start + recordHeaderBytes;
  buf.set(input.body, pos);
  pos += input.body.length;
  buf.writeUInt16LE(sized.topicBytes, pos);
  pos += 2;
  pos += buf.write(input.topic, pos, 'utf8');
  buf.writeUInt8(sized.bornHostBytes, pos);
  pos += 1;
  pos += buf.write(input.bornHost, pos, 'utf8');
  const storeHostBytes = buf.write(placement.storeHost, pos + 1, 'utf8');
  buf.writeUInt8(storeHostBytes, pos);
  pos += 1 + storeHostBytes;
  buf.writeUInt32LE(sized.propertiesBytes, pos);
  pos += 4;
  buf.writeUInt16LE(sized.properties.length, pos);
  pos += 2;
  for (const [name, value] of sized.properties) {
    const nameBytes = buf.write(name, pos + 2, 'utf8');
    buf.writeUInt16LE(nameBytes, pos);
    pos += 2 + nameBytes;
    const valueBytes = buf.write(value, pos + 4, 'utf8');
    buf.writeUInt32LE(valueBytes, pos);
    pos += 4 + valueBytes;
  }
  const written = pos - start;
  if (written !== sized.totalSize) {
    throw new Error(`record size invariant broken: sized ${sized.totalSize}, wrote ${written}`);
  }
  buf.writeUInt32LE(crc32c(buf.subarray(start + recordCrcStart, pos)), start + 8);
  return written;
}

/**
 * Decodes and verifies the record at `offset`. Never trusts a length field: every length is
 * checked against the bytes available before it is used, and the CRC is checked first.
 */
export function decodeRecord(buf: Buffer, offset: number, limit: number = buf.length): DecodeResult {
  if (limit - offset < 4) return { ok: false, error: { kind: 'end' } };
  const totalSize = buf.readUInt32LE(offset);
  if (totalSize === 0) return { ok: false, error: { kind: 'end' } };
  if (limit - offset < 8) return { ok: false, error: { kind: 'truncated', totalSize } };
  const magic = buf.readUInt32LE(offset + 4);
  if (magic !== recordMagic) return { ok: false, error: { kind: 'bad-magic', magic } };
  if (totalSize < recordMinBytes || totalSize > recordMaxBytes) {
    return { ok: false, error: { kind: 'bad-size', totalSize } };
  }
  if (offset + totalSize > limit) return { ok: false, error: { kind: 'truncated', totalSize } };
  const expected = buf.readUInt32LE(offset + 8);
  const actual = crc32c(buf.subarray(offset + recordCrcStart, offset + totalSize));
  if (expected !== actual) return { ok: false, error: { kind: 'bad-crc', expected, actual } };
  return decodeVerified(buf, offset, totalSize);
}

function decodeVerified(buf: Buffer, offset: number, totalSize: number): DecodeResult {
  const end = offset + totalSize;
  const bad = (detail: string): DecodeResult => ({ ok: false, error: { kind: 'bad-layout', detail } });
  const bodyLength = buf.readUInt32LE(offset + 68);
  let pos = offset + recordHeaderBytes;
  if (pos + bodyLength + 2 > end) return bad('body runs past the record');
  const body = buf.subarray(pos, pos + bodyLength);
  pos += bodyLength;
  const topicLength = buf.readUInt16LE(pos);
  pos += 2;
  if (pos + topicLength + 1 > end) return bad('topic runs past the record');
  const topic = buf.toString('utf8', pos, pos + topicLength);
  pos += topicLength;
  const bornHostLength = buf.readUInt8(pos);
  pos += 1;
  if (pos + bornHostLength + 1 > end) return bad('born host runs past the record');
  const bornHost = buf.toString('utf8', pos, pos + bornHostLength);
  pos += bornHostLength;
  const storeHostLength = buf.readUInt8(pos);
  pos += 1;
  if (pos + storeHostLength + 4 > end) return bad('store host runs past the record');
  const storeHost = buf.toString('utf8', pos, pos + storeHostLength);
  pos += storeHostLength;
  const propertiesLength = buf.readUInt32LE(pos);
  pos += 4;
  if (pos + propertiesLength !== end || propertiesLength < 2) return bad('properties do not end the record');
  const count = buf.readUInt16LE(pos);
  pos += 2;
  let tag: string | undefined;
  let messageGroup: string | undefined;
  const keys: string[] = [];
  const properties: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    if (pos + 2 > end) return bad('property name length runs past the record');
    const nameLength = buf.readUInt16LE(pos);
    pos += 2;
    if (pos + nameLength + 4 > end) return bad('property name runs past the record');
    const name = buf.toString('utf8', pos, pos + nameLength);
    pos += nameLength;
    const valueLength = buf.readUInt32LE(pos);
    pos += 4;
    if (pos + valueLength > end) return bad('property value runs past the record');
    const value = buf.toString('utf8', pos, pos + valueLength);
    pos += valueLength;
    if (name === systemProperty.tag) tag = value;
    else if (name === systemProperty.keys) keys.push(value);
    else if (name === systemProperty.messageGroup) messageGroup = value;
    else properties[name] = value;
  }
  if (pos !== end) return bad('bytes left after the properties');
  return {
    ok: true,
    record: {
      totalSize,
      flags: buf.readUInt16LE(offset + 12),
      reconsumeTimes: buf.readUInt16LE(offset + 14),
      queueId: buf.readUInt32LE(offset + 16),
      queueOffset: readU64(buf, offset + 20),
      physicalOffset: readU64(buf, offset + 28),
      bornTimestamp: readU64(buf, offset + 36),
      storeTimestamp: readU64(buf, offset + 44),
      deliverAt: readU64(buf, offset + 52),
      preparedTxOffset: readU64(buf, offset + 60),
      body,
      topic,
      bornHost,
      storeHost,
      tag,
      keys,
      messageGroup,
      properties,
    },
  };
}

export function describeRecordError(error: RecordError): string {
  switch (error.kind) {
    case 'end':
      return 'end of written data';
    case 'truncated':
      return `record of ${error.totalSize} bytes runs past the end of the data`;
    case 'bad-size':
      return `impossible record size ${error.totalSize}`;
    case 'bad-magic':
      return `bad magic 0x${error.magic.toString(16)}`;
    case 'bad-crc':
      return `CRC32C mismatch: stored 0x${error.expected.toString(16)}, computed 0x${error.actual.toString(16)}`;
    case 'bad-layout':
      return `malformed record: ${error.detail}`;
  }
}
