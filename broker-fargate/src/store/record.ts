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

/**
 * UTF-8 bytes of the short strings that repeat from record to record (topics, hosts, tags,
 * property names), so the hot path copies bytes instead of encoding strings. Bounded: it forgets
 * everything when full. Owned by one commit log; never shared module state.
 */
export class Utf8Cache {
  readonly #map = new Map<string, Buffer>();
  readonly #maxEntries: number;
  readonly #maxChars: number;

  constructor(maxEntries = 4096, maxChars = 128) {
    this.#maxEntries = maxEntries;
    this.#maxChars = maxChars;
  }

  get(s: string): Buffer {
    let bytes = this.#map.get(s);
    if (bytes === undefined) {
      bytes = Buffer.from(s, 'utf8');
      if (s.length <= this.#maxChars) {
        if (this.#map.size >= this.#maxEntries) this.#map.clear();
        this.#map.set(s, bytes);
      }
    }
    return bytes;
  }
}

/** Without a cache, every string is encoded afresh. */
const uncached = { get: (s: string): Buffer => Buffer.from(s, 'utf8') };

const tagName = Buffer.from(systemProperty.tag);
const keysName = Buffer.from(systemProperty.keys);
const messageGroupName = Buffer.from(systemProperty.messageGroup);
const noProperties: Buffer[] = [];

/** A record measured and its strings turned into bytes, ready to encode. */
export interface SizedRecord {
  input: RecordInput;
  totalSize: number;
  topic: Buffer;
  bornHost: Buffer;
  storeHost: Buffer;
  /** Property names and values, alternating, as UTF-8. */
  properties: Buffer[];
  propertiesBytes: number;
}

export function sizeRecord(input: RecordInput, storeHost: string, cache?: Utf8Cache): SizedRecord {
  const utf8 = cache ?? uncached;
  const topic = utf8.get(input.topic);
  const bornHost = utf8.get(input.bornHost);
  const storeHostBytes = utf8.get(storeHost);
  let properties = noProperties;
  let propertiesBytes = 2;
  const { tag, keys, messageGroup, properties: user } = input;
  if (tag !== undefined || keys !== undefined || messageGroup !== undefined || user !== undefined) {
    properties = [];
    if (tag !== undefined) properties.push(tagName, utf8.get(tag));
    if (keys !== undefined) for (const key of keys) properties.push(keysName, utf8.get(key));
    if (messageGroup !== undefined) properties.push(messageGroupName, utf8.get(messageGroup));
    if (user !== undefined) for (const name in user) properties.push(utf8.get(name), utf8.get(user[name] as string));
    for (let i = 0; i < properties.length; i += 2) {
      propertiesBytes += 2 + (properties[i] as Buffer).length + 4 + (properties[i + 1] as Buffer).length;
    }
  }
  const totalSize =
    recordHeaderBytes + input.body.length + 2 + topic.length + 1 + bornHost.length + 1 + storeHostBytes.length + 4 + propertiesBytes;
  return { input, totalSize, topic, bornHost, storeHost: storeHostBytes, properties, propertiesBytes };
}

export interface RecordPlacement {
  queueOffset: number;
  physicalOffset: number;
  storeTimestamp: number;
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
  view?: DataView,
): number {
  const { input } = sized;
  const start = offset;
  // DataView stores are inlined by V8; Buffer's write methods cost about ten times more here.
  const dv = view ?? viewOf(buf);
  dv.setUint32(start, sized.totalSize, true);
  dv.setUint32(start + 4, recordMagic, true);
  dv.setUint16(start + 12, (input.flags ?? 0) | extraFlags, true);
  dv.setUint16(start + 14, Math.min(input.reconsumeTimes ?? 0, 0xffff), true);
  dv.setUint32(start + 16, input.queueId, true);
  setU64(dv, start + 20, placement.queueOffset);
  setU64(dv, start + 28, placement.physicalOffset);
  setU64(dv, start + 36, input.bornTimestamp);
  setU64(dv, start + 44, placement.storeTimestamp);
  setU64(dv, start + 52, input.deliverAt ?? 0);
  setU64(dv, start + 60, input.preparedTxOffset ?? -1);
  dv.setUint32(start + 68, input.body.length, true);
  let pos = start + recordHeaderBytes;
  buf.set(input.body, pos);
  pos += input.body.length;
  pos = putShortBytes(buf, dv, pos, sized.topic, 2);
  pos = putShortBytes(buf, dv, pos, sized.bornHost, 1);
  pos = putShortBytes(buf, dv, pos, sized.storeHost, 1);
  dv.setUint32(pos, sized.propertiesBytes, true);
  pos += 4;
  const props = sized.properties;
  dv.setUint16(pos, props.length / 2, true);
  pos += 2;
  for (let i = 0; i < props.length; i += 2) {
    pos = putShortBytes(buf, dv, pos, props[i] as Buffer, 2);
    pos = putShortBytes(buf, dv, pos, props[i + 1] as Buffer, 4);
  }
  const written = pos - start;
  if (written !== sized.totalSize) {
    throw new Error(`record size invariant broken: sized ${sized.totalSize}, wrote ${written}`);
  }
  dv.setUint32(start + 8, crc32c(buf.subarray(start + recordCrcStart, pos)), true);
  return written;
}

/** A DataView over exactly the bytes of `buf`. */
export function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function setU64(dv: DataView, offset: number, value: number): void {
  if (value < 0) {
    dv.setInt32(offset, -1, true);
    dv.setInt32(offset + 4, -1, true);
    return;
  }
  dv.setUint32(offset, value % two32, true);
  dv.setUint32(offset + 4, Math.floor(value / two32), true);
}

function getU64(dv: DataView, offset: number): number {
  const lo = dv.getUint32(offset, true);
  const hi = dv.getUint32(offset + 4, true);
  if (hi === 0xffffffff && lo === 0xffffffff) return -1;
  return hi * two32 + lo;
}

/** Writes a length prefix of `prefixBytes` bytes, then `bytes`; returns the new position. */
function putShortBytes(buf: Buffer, dv: DataView, pos: number, bytes: Buffer, prefixBytes: 1 | 2 | 4): number {
  // The commit log rejects longer strings before encoding; a wrapped length would corrupt the record.
  if (prefixBytes < 4 && bytes.length >= 1 << (8 * prefixBytes)) {
    throw new Error(`invariant: ${bytes.length} bytes do not fit a ${prefixBytes}-byte length`);
  }
  if (prefixBytes === 1) dv.setUint8(pos, bytes.length);
  else if (prefixBytes === 2) dv.setUint16(pos, bytes.length, true);
  else dv.setUint32(pos, bytes.length, true);
  pos += prefixBytes;
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/**
 * Decodes and verifies the record at `offset`. Never trusts a length field: every length is
 * checked against the bytes available before it is used, and the CRC is checked first, unless
 * `checkCrc` is false (for bytes this process wrote itself: see MessageStore.read).
 */
export function decodeRecord(
  buf: Buffer,
  offset: number,
  limit: number = buf.length,
  view?: DataView,
  checkCrc = true,
): DecodeResult {
  const dv = view ?? viewOf(buf);
  if (limit - offset < 4) return { ok: false, error: { kind: 'end' } };
  const totalSize = dv.getUint32(offset, true);
  if (totalSize === 0) return { ok: false, error: { kind: 'end' } };
  if (limit - offset < 8) return { ok: false, error: { kind: 'truncated', totalSize } };
  const magic = dv.getUint32(offset + 4, true);
  if (magic !== recordMagic) return { ok: false, error: { kind: 'bad-magic', magic } };
  if (totalSize < recordMinBytes || totalSize > recordMaxBytes) {
    return { ok: false, error: { kind: 'bad-size', totalSize } };
  }
  if (offset + totalSize > limit) return { ok: false, error: { kind: 'truncated', totalSize } };
  if (checkCrc) {
    const expected = dv.getUint32(offset + 8, true);
    const actual = crc32c(buf.subarray(offset + recordCrcStart, offset + totalSize));
    if (expected !== actual) return { ok: false, error: { kind: 'bad-crc', expected, actual } };
  }
  return decodeVerified(buf, dv, offset, totalSize);
}

/** Module level, not a closure per call: the read path decodes a million records a second. */
function bad(detail: string): DecodeResult {
  return { ok: false, error: { kind: 'bad-layout', detail } };
}

function decodeVerified(buf: Buffer, dv: DataView, offset: number, totalSize: number): DecodeResult {
  const end = offset + totalSize;
  const bodyLength = dv.getUint32(offset + 68, true);
  let pos = offset + recordHeaderBytes;
  if (pos + bodyLength + 2 > end) return bad('body runs past the record');
  const body = buf.subarray(pos, pos + bodyLength);
  pos += bodyLength;
  const topicLength = dv.getUint16(pos, true);
  pos += 2;
  if (pos + topicLength + 1 > end) return bad('topic runs past the record');
  const topic = buf.toString('utf8', pos, pos + topicLength);
  pos += topicLength;
  const bornHostLength = dv.getUint8(pos);
  pos += 1;
  if (pos + bornHostLength + 1 > end) return bad('born host runs past the record');
  const bornHost = buf.toString('utf8', pos, pos + bornHostLength);
  pos += bornHostLength;
  const storeHostLength = dv.getUint8(pos);
  pos += 1;
  if (pos + storeHostLength + 4 > end) return bad('store host runs past the record');
  const storeHost = buf.toString('utf8', pos, pos + storeHostLength);
  pos += storeHostLength;
  const propertiesLength = dv.getUint32(pos, true);
  pos += 4;
  if (pos + propertiesLength !== end || propertiesLength < 2) return bad('properties do not end the record');
  const count = dv.getUint16(pos, true);
  pos += 2;
  let tag: string | undefined;
  let messageGroup: string | undefined;
  const keys: string[] = [];
  const properties: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    if (pos + 2 > end) return bad('property name length runs past the record');
    const nameLength = dv.getUint16(pos, true);
    pos += 2;
    if (pos + nameLength + 4 > end) return bad('property name runs past the record');
    const name = buf.toString('utf8', pos, pos + nameLength);
    pos += nameLength;
    const valueLength = dv.getUint32(pos, true);
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
      flags: dv.getUint16(offset + 12, true),
      reconsumeTimes: dv.getUint16(offset + 14, true),
      queueId: dv.getUint32(offset + 16, true),
      queueOffset: getU64(dv, offset + 20),
      physicalOffset: getU64(dv, offset + 28),
      bornTimestamp: getU64(dv, offset + 36),
      storeTimestamp: getU64(dv, offset + 44),
      deliverAt: getU64(dv, offset + 52),
      preparedTxOffset: getU64(dv, offset + 60),
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

/**
 * Whether an `end` from `decodeRecord` is a record header whose size field reads zero (one bit
 * flip does that to a record of 256, 512, ... bytes) rather than the end of the written data.
 * The unwritten part of a segment is zeros; a record's magic never is. Taking such a record for
 * the end would make recovery drop, and then overwrite, every record after it.
 */
export function isZeroSizedRecord(buf: Buffer, offset: number, limit: number = buf.length): boolean {
  return limit - offset >= 8 && buf.readUInt32LE(offset) === 0 && buf.readUInt32LE(offset + 4) === recordMagic;
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
