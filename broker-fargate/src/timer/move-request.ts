import { SkyrocketError } from '../../../core/errors.ts';
import { limits } from '../../../core/limits.ts';
import { decodeMessageId } from '../../../core/message-id.ts';
import { validateTopicName } from '../../../core/validate.ts';
import type { MovedTimer } from './timer-service.ts';

/**
 * The body of `POST /v1/internal/timers`, by which the delay sweep moves timers from the DynamoDB
 * timer index back into their broker's wheel:
 *
 *   { "timers": [ { "messageId", "deliverAt", "topic", "queueId", "body" (base64), "bornAt",
 *                   "bornHost", "tag"?, "keys"?, "properties"?, "messageGroup"? }, … ] }
 *
 * The timers were validated when they were sent; this checks the shape, so that a malformed
 * request is refused whole rather than stored.
 */
export function parseMoveRequest(body: Record<string, unknown>): MovedTimer[] {
  const list = body['timers'];
  if (!Array.isArray(list) || list.length === 0 || list.length > limits.sendBatchMaxCount) {
    throw new SkyrocketError('INVALID_ARGUMENT', `timers must be a list of 1 to ${limits.sendBatchMaxCount} timers`, { field: 'timers' });
  }
  return list.map((t, i) => parseTimer(t, `timers[${i}]`));
}

function parseTimer(value: unknown, field: string): MovedTimer {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'a timer must be an object');
  const t = value as Record<string, unknown>;
  const messageId = t['messageId'];
  if (typeof messageId !== 'string') fail(`${field}.messageId`, 'must be a message id');
  decodeMessageId(messageId);
  const body = t['body'];
  if (typeof body !== 'string' || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) fail(`${field}.body`, 'must be base64');
  const out: MovedTimer = {
    messageId,
    deliverAt: integer(t['deliverAt'], `${field}.deliverAt`),
    topic: validateTopicName(t['topic'], `${field}.topic`),
    queueId: integer(t['queueId'], `${field}.queueId`),
    bornAt: integer(t['bornAt'], `${field}.bornAt`),
    bornHost: text(t['bornHost'], `${field}.bornHost`),
    body: Buffer.from(body, 'base64'),
  };
  if (out.body.byteLength === 0 || out.body.byteLength > limits.bodyMaxBytes) fail(`${field}.body`, 'must hold 1 byte to the body limit');
  if (Buffer.byteLength(out.bornHost) > 255) fail(`${field}.bornHost`, 'must be at most 255 bytes');
  if (t['tag'] !== undefined && t['tag'] !== null) out.tag = text(t['tag'], `${field}.tag`);
  if (t['messageGroup'] !== undefined && t['messageGroup'] !== null) out.messageGroup = text(t['messageGroup'], `${field}.messageGroup`);
  if (t['keys'] !== undefined && t['keys'] !== null) {
    const keys = t['keys'];
    if (!Array.isArray(keys) || keys.length > limits.keysMaxCount) fail(`${field}.keys`, `must be a list of at most ${limits.keysMaxCount} strings`);
    out.keys = keys.map((k, i) => text(k, `${field}.keys[${i}]`));
  }
  if (t['properties'] !== undefined && t['properties'] !== null) {
    const properties = t['properties'];
    if (typeof properties !== 'object' || Array.isArray(properties)) fail(`${field}.properties`, 'must be an object of strings');
    const entries = Object.entries(properties as Record<string, unknown>);
    if (entries.length > limits.propertiesMaxCount) fail(`${field}.properties`, `must hold at most ${limits.propertiesMaxCount} properties`);
    out.properties = Object.fromEntries(entries.map(([k, v]) => [k, text(v, `${field}.properties`, true)]));
  }
  return out;
}

function integer(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(field, 'must be a non-negative integer');
  return value as number;
}

function text(value: unknown, field: string, mayBeEmpty = false): string {
  if (typeof value !== 'string' || (!mayBeEmpty && value === '' && !field.endsWith('bornHost'))) fail(field, 'must be a string');
  return value as string;
}

function fail(field: string, message: string): never {
  throw new SkyrocketError('INVALID_ARGUMENT', `${field} ${message}`, { field });
}
