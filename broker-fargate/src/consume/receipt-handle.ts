import { randomFillSync } from 'node:crypto';
import { SkyrocketError } from '../../../core/errors.ts';

/**
 * A receipt handle names one delivery of one message to one consumer group. It travels as text:
 *
 *   handle := "2" "." base64url(group U+001F topic U+001F brokerGroup) "." queueId "." queueOffset
 *             "." visibleUntilMs "." nonce
 *
 * with the numbers in plain decimal and the nonce in base64url. The nonce is the capability: it
 * starts with 96 random bits drawn once per receive (`newNonceSource`), so it cannot be guessed
 * from other handles, and it changes with every delivery and every change of invisibility. The
 * broker that owns the queue acts on a handle only when its nonce equals the one of the delivery
 * in flight at that queue offset; a handle from an earlier delivery (expired and redelivered, or
 * acked), from before a restart, or made up is refused. Nothing else in a handle is trusted: the
 * brokerGroup only routes an ack to the queue's owner, which checks the nonce.
 *
 * (The first layout signed every handle with an HMAC; one MAC to make and one to check per
 * message was the largest cost of consuming, and the random nonce already makes handles
 * unforgeable.)
 */
export interface ReceiptHandle {
  group: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  nonce: string;
  brokerGroup: string;
  visibleUntilMs: number;
}

const separator = '\u001f';
const version = '2';

let lastPrefixKey: string | undefined;
let lastPrefix = '';

function prefixOf(group: string, topic: string, brokerGroup: string): string {
  const key = `${group}${separator}${topic}${separator}${brokerGroup}`;
  if (key !== lastPrefixKey) {
    lastPrefixKey = key;
    lastPrefix = Buffer.from(key, 'utf8').toString('base64url');
  }
  return lastPrefix;
}

export function encodeReceiptHandle(handle: ReceiptHandle): string {
  const prefix = prefixOf(handle.group, handle.topic, handle.brokerGroup);
  return `${version}.${prefix}.${handle.queueId}.${handle.queueOffset}.${handle.visibleUntilMs}.${handle.nonce}`;
}

let headGroup: string | undefined;
let headTopic: string | undefined;
let headBrokerGroup: string | undefined;
let head = Buffer.alloc(0);

/** "2.<names>." as bytes, for the last names asked for (compared as the same strings first). */
function headOf(handle: ReceiptHandle): Buffer {
  if (handle.group !== headGroup || handle.topic !== headTopic || handle.brokerGroup !== headBrokerGroup) {
    head = Buffer.from(`${version}.${prefixOf(handle.group, handle.topic, handle.brokerGroup)}.`, 'latin1');
    headGroup = handle.group;
    headTopic = handle.topic;
    headBrokerGroup = handle.brokerGroup;
  }
  return head;
}

/** Writes a non-negative safe integer in decimal at `at`; returns where it ends. */
function putDecimal(out: Buffer, at: number, value: number): number {
  const text = String(value);
  for (let k = 0; k < text.length; k++) out[at + k] = text.charCodeAt(k);
  return at + text.length;
}

/**
 * A receipt handle as a delivery carries it: its parts, with the text made only when asked for.
 * A binary receive answer has the text written straight into it (`write`), which costs a quarter
 * of making the string and copying it in (the string's pieces are joined first).
 */
export class IssuedHandle {
  #text: string | undefined;

  constructor(readonly parts: ReceiptHandle) {}

  /** The handle's text, as `encodeReceiptHandle` makes it. */
  toString(): string {
    return (this.#text ??= encodeReceiptHandle(this.parts));
  }

  /** The most bytes `write` writes (the text is ASCII). */
  get maxBytes(): number {
    return headOf(this.parts).length + 3 * 17 + 3 + this.parts.nonce.length;
  }

  /** Writes the text at `at` (room for `maxBytes`); returns the number of bytes written. */
  write(out: Buffer, at: number): number {
    const h = this.parts;
    const head = headOf(h);
    head.copy(out, at);
    let i = putDecimal(out, at + head.length, h.queueId);
    out[i++] = 0x2e;
    i = putDecimal(out, i, h.queueOffset);
    out[i++] = 0x2e;
    i = putDecimal(out, i, h.visibleUntilMs);
    out[i++] = 0x2e;
    const nonce = h.nonce;
    for (let k = 0; k < nonce.length; k++) out[i++] = nonce.charCodeAt(k);
    return i - at;
  }
}

/**
 * Nonces for one receive: a fresh random 96-bit stem, then a counter. Every receive (and every
 * nack, release or change of invisibility) takes a new source.
 */
export function newNonceSource(): () => string {
  // The random stem is drawn on first use: a long poll looks at its queues on every wake and
  // most looks deliver nothing.
  let stem: string | undefined;
  let n = 0;
  return () => `${(stem ??= randomStem())}${(n++).toString(36)}`;
}

// Random bytes drawn 3 KiB at a time (one call to the system's generator per 256 stems), each
// used once.
const stemBytes = 12;
const pool = Buffer.alloc(stemBytes * 256);
let poolAt = pool.length;

function randomStem(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const stem = pool.toString('base64url', poolAt, poolAt + stemBytes);
  poolAt += stemBytes;
  return stem;
}

function invalid(reason: string): SkyrocketError {
  return new SkyrocketError('INVALID_RECEIPT_HANDLE', `receipt handle is not valid: ${reason}`, { field: 'receiptHandle' });
}

let lastParsedPrefix: string | undefined;
let lastParsedNames: [string, string, string] = ['', '', ''];

function namesOf(prefix: string): [string, string, string] {
  if (prefix === lastParsedPrefix) return lastParsedNames;
  const bytes = Buffer.from(prefix, 'base64url');
  // base64url decoding is lenient (spare bits, padding): accept only the one canonical text,
  // so a handle's text names exactly one handle.
  if (bytes.toString('base64url') !== prefix) throw invalid('not in canonical form');
  const parts = bytes.toString('utf8').split(separator);
  if (parts.length !== 3) throw invalid('unknown layout');
  lastParsedPrefix = prefix;
  lastParsedNames = parts as [string, string, string];
  return lastParsedNames;
}

/**
 * Reads a decimal field of `text` from `start` up to the next '.' (or the end when `last`): no
 * sign, no leading zero, at most 16 digits, a safe integer. Returns the end index, or -1. The
 * number is left in `scanned`. (A scan by character codes: an ack parses one handle per
 * message, and splitting and regular expressions were a fifth of the broker's consuming cost.)
 */
let scanned = 0;
function scanDecimal(text: string, start: number): number {
  let value = 0;
  let i = start;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) break;
    if (c < 0x30 || c > 0x39 || i - start >= 16 || (i > start && value === 0)) return -1;
    value = value * 10 + (c - 0x30);
  }
  if (i === start || !Number.isSafeInteger(value)) return -1;
  scanned = value;
  return i;
}

function isNonceCode(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/** Reads a handle's fields; throws INVALID_RECEIPT_HANDLE for anything that is not a handle. */
export function parseReceiptHandle(text: unknown): ReceiptHandle {
  if (typeof text !== 'string' || text.length === 0 || text.length > 4096) throw invalid('not a handle');
  if (text.charCodeAt(0) !== 0x32 || text.charCodeAt(1) !== 0x2e) throw invalid('unknown layout');
  const prefixEnd = text.indexOf('.', 2);
  if (prefixEnd < 0) throw invalid('unknown layout');
  let at = scanDecimal(text, prefixEnd + 1);
  if (at < 0 || at === text.length) throw invalid(at < 0 ? 'bad numbers' : 'unknown layout');
  const queueId = scanned;
  at = scanDecimal(text, at + 1);
  if (at < 0 || at === text.length) throw invalid(at < 0 ? 'bad numbers' : 'unknown layout');
  const queueOffset = scanned;
  at = scanDecimal(text, at + 1);
  if (at < 0 || at === text.length) throw invalid(at < 0 ? 'bad numbers' : 'unknown layout');
  const visibleUntilMs = scanned;
  const nonceStart = at + 1;
  const nonceLength = text.length - nonceStart;
  if (nonceLength < 1 || nonceLength > 64) throw invalid('bad nonce');
  for (let i = nonceStart; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) throw invalid('unknown layout');
    if (!isNonceCode(c)) throw invalid('bad nonce');
  }
  const [group, topic, brokerGroup] = namesOf(text.slice(2, prefixEnd));
  return { group, topic, queueId, queueOffset, nonce: text.slice(nonceStart), brokerGroup, visibleUntilMs };
}
