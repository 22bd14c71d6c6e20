import { createHmac, timingSafeEqual } from 'node:crypto';
import { SkyrocketError } from '../../../core/errors.ts';

/**
 * A receipt handle names one delivery of one message to one consumer group, and proves that this
 * broker group issued it. It travels as base64url text:
 *
 *   payload   := "1" | group | topic | queueId | queueOffset | nonce | brokerGroup | visibleUntilMs
 *                (fields joined by U+001F, which no name may contain)
 *   handle    := base64url(payload) "." base64url(HMAC-SHA256(secret, payload)[0..16])
 *
 * `nonce` is fresh for every delivery and every change of invisibility, so a handle from an
 * earlier delivery (expired and redelivered, or already acked) no longer matches the in-flight
 * record and is refused. The brokerGroup lets any broker route an ack to the queue's owner, which
 * alone checks the signature.
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
const version = '1';
const macBytes = 16;

export function encodeReceiptHandle(handle: ReceiptHandle, secret: Buffer): string {
  const payload = [
    version,
    handle.group,
    handle.topic,
    String(handle.queueId),
    String(handle.queueOffset),
    handle.nonce,
    handle.brokerGroup,
    String(handle.visibleUntilMs),
  ].join(separator);
  const mac = createHmac('sha256', secret).update(payload).digest().subarray(0, macBytes);
  return `${Buffer.from(payload).toString('base64url')}.${mac.toString('base64url')}`;
}

function invalid(reason: string): SkyrocketError {
  return new SkyrocketError('INVALID_RECEIPT_HANDLE', `receipt handle is not valid: ${reason}`, { field: 'receiptHandle' });
}

/** Reads the fields without checking the signature: enough to route the handle to its owner. */
export function parseReceiptHandle(text: unknown): ReceiptHandle {
  if (typeof text !== 'string' || text.length === 0 || text.length > 4096) throw invalid('not a handle');
  const dot = text.indexOf('.');
  if (dot <= 0) throw invalid('not a handle');
  const payload = Buffer.from(text.slice(0, dot), 'base64url').toString('utf8');
  const parts = payload.split(separator);
  if (parts.length !== 8 || parts[0] !== version) throw invalid('unknown layout');
  const [, group, topic, queueId, queueOffset, nonce, brokerGroup, visibleUntilMs] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const numbers = [Number(queueId), Number(queueOffset), Number(visibleUntilMs)];
  if (!numbers.every((n) => Number.isSafeInteger(n) && n >= 0)) throw invalid('bad numbers');
  return {
    group,
    topic,
    queueId: numbers[0] as number,
    queueOffset: numbers[1] as number,
    nonce,
    brokerGroup,
    visibleUntilMs: numbers[2] as number,
  };
}

/** Parses and checks the signature; throws INVALID_RECEIPT_HANDLE for anything forged or mangled. */
export function verifyReceiptHandle(text: unknown, secret: Buffer): ReceiptHandle {
  const handle = parseReceiptHandle(text);
  const [encodedPayload, encodedMac] = (text as string).split('.') as [string, string | undefined];
  if (encodedMac === undefined) throw invalid('not signed');
  const payload = Buffer.from(encodedPayload, 'base64url');
  const given = Buffer.from(encodedMac, 'base64url');
  const expected = createHmac('sha256', secret).update(payload).digest().subarray(0, macBytes);
  if (given.length !== macBytes || !timingSafeEqual(given, expected)) throw invalid('signature does not match');
  // base64url decoding is lenient (spare bits, '+' and '/', trailing parts): accept only the one
  // canonical text, so a handle's text names exactly one handle.
  if (text !== `${payload.toString('base64url')}.${given.toString('base64url')}`) throw invalid('not in canonical form');
  return handle;
}
