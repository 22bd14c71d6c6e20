import { SkyrocketError } from './errors.ts';

/**
 * The binary form of a receive answer. The frame of core/frame.ts still carries each message's
 * fields as JSON, and writing and parsing that JSON (a dozen keys per message) was the largest
 * cost of draining a backlog on both ends; here every field has its place:
 *
 *   deliveries := magic "SKD1" | count:u32 | topic:str16 | rest:str32 | delivery{count}
 *   delivery   := flags:u8 | queueId:u32 | queueOffset:u64 | bornAt:u64 | storedAt:u64
 *                 | deliveryAttempt:u32 | messageId:str16 | receiptHandle:str16
 *                 [topic:str16          when flags & 0x01: the message's topic is not the frame's]
 *                 [tag:str16            when flags & 0x02]
 *                 [keyCount:u16 str16*  when flags & 0x04]
 *                 [propertyCount:u16 (name:str16 value:str32)*  when flags & 0x08]
 *                 [messageGroup:str16   when flags & 0x10]
 *                 [deliverAt:u64        when flags & 0x20]
 *                 | bodyLength:u32 | body
 *   str16      := length:u16 | UTF-8 bytes        str32 := length:u32 | UTF-8 bytes
 *
 * `rest` is empty or a JSON object with the answer's other keys, as the JSON form has them beside
 * `messages` (a receive that carried acks lists the refused ones in `ackFailed`).
 *
 * Integers are big-endian; a u64 holds at most 2^53 - 1 (JavaScript's safe integers). Unknown
 * flag bits and bytes after the last delivery are refused. The media type is
 * `application/vnd.skyrocket.deliveries`: a client asks for it with `Accept` on a receive, before
 * the frame and JSON forms, which a broker without it answers with instead.
 */
export const deliveriesMediaType = 'application/vnd.skyrocket.deliveries';

const magic = 0x534b4431; // "SKD1"
const flagTopic = 0x01;
const flagTag = 0x02;
const flagKeys = 0x04;
const flagProperties = 0x08;
const flagMessageGroup = 0x10;
const flagDeliverAt = 0x20;
const knownFlags = 0x3f;
const fixedBytes = 1 + 4 + 8 + 8 + 8 + 4;
const twoTo32 = 2 ** 32;

/**
 * Text the encoder can write without a string being made first: ASCII, at most `maxBytes` bytes.
 * (A broker's receipt handles are put together from parts; see IssuedHandle.)
 */
export interface AsciiText {
  readonly maxBytes: number;
  /** Writes the text at `at`; returns the number of bytes written. */
  write(out: Buffer, at: number): number;
}

/** One delivered message with its receipt handle: the fields of the JSON form, the body as bytes. */
export interface DeliveryFields {
  messageId: string;
  topic: string;
  tag?: string | null | undefined;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
  queueId: number;
  queueOffset: number;
  bornAt: number;
  storedAt: number;
  deliveryAttempt: number;
  messageGroup?: string | undefined;
  deliverAt?: number | undefined;
  receiptHandle: string | AsciiText;
  body: Uint8Array;
}

/** What `decodeDeliveries` gives for each message: absent tag as null, like the JSON form. */
export interface DecodedDelivery extends DeliveryFields {
  tag: string | null;
  receiptHandle: string;
  body: Buffer;
}

// Shared by every decoded delivery without keys or properties: most messages have none.
const noKeys: readonly string[] = Object.freeze([]);
const noProperties: Readonly<Record<string, string>> = Object.freeze({});

function malformed(reason: string): SkyrocketError {
  return new SkyrocketError('MALFORMED_FRAME', `answer is not a valid ${deliveriesMediaType}: ${reason}`);
}

/** Upper bound of the encoded size: three UTF-8 bytes per UTF-16 unit at most. */
function boundOf(topic: string, deliveries: readonly DeliveryFields[]): number {
  let size = 10 + 3 * topic.length;
  for (const d of deliveries) {
    const handle = d.receiptHandle;
    size += fixedBytes + 4 + 3 * d.messageId.length + (typeof handle === 'string' ? 3 * handle.length : handle.maxBytes) + 4 + d.body.byteLength;
    if (d.topic !== topic) size += 2 + 3 * d.topic.length;
    if (d.tag != null) size += 2 + 3 * d.tag.length;
    if (d.keys.length > 0) {
      size += 2;
      for (const k of d.keys) size += 2 + 3 * k.length;
    }
    for (const name in d.properties) size += 6 + 3 * (name.length + (d.properties[name] as string).length);
    size += 2;
    if (d.messageGroup !== undefined) size += 2 + 3 * d.messageGroup.length;
    if (d.deliverAt !== undefined) size += 8;
  }
  return size;
}

function putU64(out: Buffer, value: number, at: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`encodeDeliveries: ${value} is not a u64 this form can hold`);
  out.writeUInt32BE(Math.floor(value / twoTo32), at);
  out.writeUInt32BE(value >>> 0, at + 4);
}

/**
 * `Buffer#write` sorts out its optional arguments on every call, which cost more than the copy
 * for the short strings here; Node's buffers have the UTF-8 writer behind it as a method too.
 */
type Utf8Writer = (this: Buffer, text: string, offset: number) => number;
const utf8Write: Utf8Writer =
  (Buffer.prototype as unknown as { utf8Write?: Utf8Writer }).utf8Write ??
  function (this: Buffer, text: string, offset: number): number {
    return this.write(text, offset, 'utf8');
  };

function putStr16(out: Buffer, text: string, at: number): number {
  const n = utf8Write.call(out, text, at + 2);
  if (n > 0xffff) throw new RangeError('encodeDeliveries: a string of more than 65535 bytes');
  out.writeUInt16BE(n, at);
  return at + 2 + n;
}

/**
 * Encodes a receive answer for `topic` (the topic most of its messages have). The answer is
 * written into a buffer from `allocate` (given an upper bound of the size) and returned as a view
 * of it: a caller that reuses its buffers passes its own.
 */
export function encodeDeliveries(
  topic: string,
  deliveries: readonly DeliveryFields[],
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
  rest: Record<string, unknown> = {},
): Buffer {
  if ('messages' in rest || 'topic' in rest) throw new RangeError('encodeDeliveries: rest may not hold messages or topic');
  let restText = '';
  for (const _ in rest) {
    restText = JSON.stringify(rest);
    break;
  }
  const bound = boundOf(topic, deliveries) + 4 + 3 * restText.length;
  const out = allocate(bound);
  if (out.length < bound) throw new RangeError('encodeDeliveries: the buffer given is too small');
  out.writeUInt32BE(magic, 0);
  out.writeUInt32BE(deliveries.length, 4);
  let at = putStr16(out, topic, 8);
  const restBytes = utf8Write.call(out, restText, at + 4);
  out.writeUInt32BE(restBytes, at);
  at += 4 + restBytes;
  for (const d of deliveries) {
    let flags = 0;
    if (d.topic !== topic) flags |= flagTopic;
    if (d.tag != null) flags |= flagTag;
    if (d.keys.length > 0) flags |= flagKeys;
    let propertyCount = 0;
    for (const _ in d.properties) propertyCount++;
    if (propertyCount > 0) flags |= flagProperties;
    if (d.messageGroup !== undefined) flags |= flagMessageGroup;
    if (d.deliverAt !== undefined) flags |= flagDeliverAt;
    out[at] = flags;
    out.writeUInt32BE(d.queueId, at + 1);
    putU64(out, d.queueOffset, at + 5);
    putU64(out, d.bornAt, at + 13);
    putU64(out, d.storedAt, at + 21);
    out.writeUInt32BE(d.deliveryAttempt, at + 29);
    at = putStr16(out, d.messageId, at + fixedBytes);
    const handle = d.receiptHandle;
    if (typeof handle === 'string') at = putStr16(out, handle, at);
    else {
      const n = handle.write(out, at + 2);
      out.writeUInt16BE(n, at);
      at += 2 + n;
    }
    if ((flags & flagTopic) !== 0) at = putStr16(out, d.topic, at);
    if ((flags & flagTag) !== 0) at = putStr16(out, d.tag as string, at);
    if ((flags & flagKeys) !== 0) {
      if (d.keys.length > 0xffff) throw new RangeError('encodeDeliveries: more than 65535 keys');
      out.writeUInt16BE(d.keys.length, at);
      at += 2;
      for (const k of d.keys) at = putStr16(out, k, at);
    }
    if ((flags & flagProperties) !== 0) {
      if (propertyCount > 0xffff) throw new RangeError('encodeDeliveries: more than 65535 properties');
      out.writeUInt16BE(propertyCount, at);
      at += 2;
      for (const name in d.properties) {
        at = putStr16(out, name, at);
        const n = utf8Write.call(out, d.properties[name] as string, at + 4);
        out.writeUInt32BE(n, at);
        at += 4 + n;
      }
    }
    if ((flags & flagMessageGroup) !== 0) at = putStr16(out, d.messageGroup as string, at);
    if ((flags & flagDeliverAt) !== 0) {
      putU64(out, d.deliverAt as number, at);
      at += 8;
    }
    out.writeUInt32BE(d.body.byteLength, at);
    out.set(d.body, at + 4);
    at += 4 + d.body.byteLength;
  }
  return out.subarray(0, at);
}

/** A reader over one frame: every read checks that it stays inside. */
class Reader {
  at = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number, what: string): void {
    if (n > this.buf.length - this.at) throw malformed(`${what} runs past the end`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.at++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  u64(what: string): number {
    this.need(8, what);
    const hi = this.buf.readUInt32BE(this.at);
    if (hi > 0x1fffff) throw malformed(`${what} is beyond 2^53`);
    const v = hi * twoTo32 + this.buf.readUInt32BE(this.at + 4);
    this.at += 8;
    return v;
  }

  str(length: number, what: string): string {
    this.need(length, what);
    const s = this.buf.toString('utf8', this.at, this.at + length);
    this.at += length;
    return s;
  }

  str16(what: string): string {
    return this.str(this.u16(what), what);
  }

  bytes(length: number, what: string): Buffer {
    this.need(length, what);
    const b = this.buf.subarray(this.at, this.at + length);
    this.at += length;
    return b;
  }
}

/**
 * Decodes a receive answer; throws MALFORMED_FRAME for anything that is not exactly one
 * well-formed frame. The bodies are views into `buf`, not copies.
 */
export function decodeDeliveries(buf: Buffer): { topic: string; messages: DecodedDelivery[] } & Record<string, unknown> {
  const r = new Reader(buf);
  if (buf.length < 8 || buf.readUInt32BE(0) !== magic) throw malformed('it does not start with "SKD1"');
  r.at = 4;
  const count = r.u32('the count');
  const topic = r.str16('the topic');
  const restText = r.str(r.u32('the rest'), 'the rest');
  let rest: Record<string, unknown> = {};
  if (restText !== '') {
    let value: unknown;
    try {
      value = JSON.parse(restText);
    } catch (error) {
      throw malformed(`the rest is not JSON: ${(error as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || 'messages' in value || 'topic' in value) {
      throw malformed('the rest is not a JSON object without messages and topic');
    }
    rest = value as Record<string, unknown>;
  }
  // Every delivery takes at least its fixed part: a count the bytes cannot hold is refused
  // before anything is allocated for it.
  if (count > (buf.length - r.at) / (fixedBytes + 8)) throw malformed(`${count} deliveries cannot fit in ${buf.length} bytes`);
  const messages = new Array<DecodedDelivery>(count);
  for (let i = 0; i < count; i++) {
    const what = `delivery ${i}`;
    const flags = r.u8(what);
    if ((flags & ~knownFlags) !== 0) throw malformed(`${what} has unknown flags ${flags}`);
    const queueId = r.u32(what);
    const queueOffset = r.u64(what);
    const bornAt = r.u64(what);
    const storedAt = r.u64(what);
    const deliveryAttempt = r.u32(what);
    const messageId = r.str16(what);
    const receiptHandle = r.str16(what);
    const d: DecodedDelivery = {
      messageId,
      topic: (flags & flagTopic) !== 0 ? r.str16(what) : topic,
      tag: (flags & flagTag) !== 0 ? r.str16(what) : null,
      keys: noKeys,
      properties: noProperties,
      queueId,
      queueOffset,
      bornAt,
      storedAt,
      deliveryAttempt,
      messageGroup: undefined,
      deliverAt: undefined,
      receiptHandle,
      body: undefined as unknown as Buffer,
    };
    if ((flags & flagKeys) !== 0) {
      const n = r.u16(what);
      const keys = new Array<string>(n);
      for (let k = 0; k < n; k++) keys[k] = r.str16(what);
      d.keys = keys;
    }
    if ((flags & flagProperties) !== 0) {
      const n = r.u16(what);
      const properties: Record<string, string> = {};
      for (let k = 0; k < n; k++) {
        const name = r.str16(what);
        const value = r.str(r.u32(what), what);
        // An own property even for "__proto__", as JSON.parse makes it.
        if (name === '__proto__') Object.defineProperty(properties, name, { value, enumerable: true, writable: true, configurable: true });
        else properties[name] = value;
      }
      d.properties = properties;
    }
    if ((flags & flagMessageGroup) !== 0) d.messageGroup = r.str16(what);
    if ((flags & flagDeliverAt) !== 0) d.deliverAt = r.u64(what);
    d.body = r.bytes(r.u32(what), what);
    messages[i] = d;
  }
  if (r.at !== buf.length) throw malformed(`${buf.length - r.at} bytes follow the last delivery`);
  return { ...rest, topic, messages };
}

/** Whether an Accept or Content-Type header names the deliveries media type. */
export function namesDeliveries(header: string | undefined): boolean {
  return header !== undefined && header.includes(deliveriesMediaType);
}
