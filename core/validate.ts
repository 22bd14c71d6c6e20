/**
 * Validation of everything a client sends, before any of it is stored.
 *
 * Each function takes `unknown` (decoded JSON, a gRPC message mapped to plain objects) and either
 * returns a typed value or throws a `SkyrocketError` whose `field` names the offending part of
 * the request as a path (`messages[3].keys[0]`). A value of the wrong JavaScript type is an
 * INVALID_ARGUMENT; a value of the right type that breaks a rule gets the rule's own code.
 * Error messages never quote the offending value: it may be huge, binary or secret.
 */
import assert from 'node:assert/strict';
import { delayLevelToMs } from './delay-levels.ts';
import { SkyrocketError, type ErrorCode } from './errors.ts';
import {
  controlCharacterPattern,
  isReservedPropertyName,
  limits,
  resourceNamePattern,
} from './limits.ts';
import type { MessageInput } from './message.ts';

export interface ValidateOptions {
  /** Epoch milliseconds that `delayMs` and the delay horizon are measured from. */
  nowMs: number;
  /**
   * Path of the validated value inside the request, prefixed to every error's `field`.
   * @default no prefix (`validateBatch`: `'messages'`)
   */
  field?: string;
}

/** The number of bytes `s` takes in UTF-8, as it will be stored. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Checks a topic name: 1 to `limits.topicNameMaxChars` characters of `[%|a-zA-Z0-9_-]`.
 * @returns the name, typed as a string.
 * @throws SkyrocketError ILLEGAL_TOPIC, or INVALID_ARGUMENT for a non-string.
 */
export function validateTopicName(name: unknown, field = 'topic'): string {
  return checkResourceName(name, field, 'ILLEGAL_TOPIC', limits.topicNameMaxChars);
}

/**
 * Checks a consumer-group name: 1 to `limits.groupNameMaxChars` characters of `[%|a-zA-Z0-9_-]`.
 * @returns the name, typed as a string.
 * @throws SkyrocketError ILLEGAL_CONSUMER_GROUP, or INVALID_ARGUMENT for a non-string.
 */
export function validateGroupName(name: unknown, field = 'group'): string {
  return checkResourceName(name, field, 'ILLEGAL_CONSUMER_GROUP', limits.groupNameMaxChars);
}

const messageFieldNames: ReadonlySet<string> = new Set([
  'topic', 'body', 'tag', 'keys', 'properties', 'messageGroup', 'deliverAt', 'delayMs', 'delayLevel',
]);

/**
 * Checks one message a producer sent and returns it typed and normalized: `delayMs` becomes
 * `deliverAt = nowMs + delayMs`, and RocketMQ's `delayLevel` (1..18) `deliverAt = nowMs + its
 * delay`; at most one of the three may be given. Absent or `null` optional fields are left out, and the body is
 * the caller's own `Uint8Array` (not copied). A `deliverAt` in the past is allowed and means
 * "deliver now". Unknown fields are rejected, so a misspelt `delayMS` cannot silently send at once.
 *
 * @throws SkyrocketError INVALID_ARGUMENT, ILLEGAL_TOPIC, MESSAGE_BODY_EMPTY,
 *   MESSAGE_BODY_TOO_LARGE, ILLEGAL_MESSAGE_TAG, ILLEGAL_MESSAGE_KEY,
 *   ILLEGAL_MESSAGE_PROPERTY_KEY, MESSAGE_PROPERTIES_TOO_LARGE, ILLEGAL_MESSAGE_GROUP or
 *   ILLEGAL_DELIVERY_TIME.
 */
export function validateMessage(input: unknown, opts: ValidateOptions): MessageInput {
  assert(Number.isSafeInteger(opts.nowMs) && opts.nowMs >= 0, 'nowMs must be epoch milliseconds');
  const path = opts.field;
  if (!isPlainObject(input)) fail('INVALID_ARGUMENT', path, `a message must be an object, not ${typeName(input)}`);
  for (const name of Object.keys(input)) {
    if (!messageFieldNames.has(name)) fail('INVALID_ARGUMENT', join(path, name), 'unknown message field');
  }

  const topic = validateTopicName(input['topic'], join(path, 'topic'));
  const body = input['body'];
  const bodyField = join(path, 'body');
  if (!(body instanceof Uint8Array)) fail('INVALID_ARGUMENT', bodyField, `body must be bytes, not ${typeName(body)}`);
  if (body.byteLength === 0) fail('MESSAGE_BODY_EMPTY', bodyField, 'body must not be empty');
  if (body.byteLength > limits.bodyMaxBytes) {
    fail('MESSAGE_BODY_TOO_LARGE', bodyField, `body is ${body.byteLength} bytes; at most ${limits.bodyMaxBytes}`);
  }
  const message: MessageInput = { topic, body };
  // Tag, keys and properties share one byte budget, as in RocketMQ's proxy.
  let userBytes = 0;

  const tag = optional(input['tag']);
  if (tag !== undefined) {
    const field = join(path, 'tag');
    message.tag = checkText(tag, field, 'ILLEGAL_MESSAGE_TAG', limits.tagMaxBytes, 'tag');
    // `|` would split the tag in a subscription expression (`a || b`).
    if (message.tag.includes('|')) fail('ILLEGAL_MESSAGE_TAG', field, "tag must not contain '|'");
    userBytes += utf8Length(message.tag);
  }

  const keys = optional(input['keys']);
  if (keys !== undefined) {
    const field = join(path, 'keys');
    if (!Array.isArray(keys)) fail('INVALID_ARGUMENT', field, `keys must be an array, not ${typeName(keys)}`);
    if (keys.length > limits.keysMaxCount) {
      fail('ILLEGAL_MESSAGE_KEY', field, `${keys.length} keys; at most ${limits.keysMaxCount}`);
    }
    // A for loop, not map: map skips the holes of a sparse array.
    const checked: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = checkText(keys[i], `${field}[${i}]`, 'ILLEGAL_MESSAGE_KEY', limits.keyMaxBytes, 'key');
      userBytes += utf8Length(key);
      checked.push(key);
    }
    message.keys = checked;
  }

  const properties = optional(input['properties']);
  if (properties !== undefined) {
    const field = join(path, 'properties');
    if (!isPlainObject(properties)) {
      fail('INVALID_ARGUMENT', field, `properties must be an object, not ${typeName(properties)}`);
    }
    const entries = Object.entries(properties);
    if (entries.length > limits.propertiesMaxCount) {
      fail('MESSAGE_PROPERTIES_TOO_LARGE', field, `${entries.length} properties; at most ${limits.propertiesMaxCount}`);
    }
    // Reserved names include every `__` name, so `__proto__` is rejected before it is assigned.
    const checked: Record<string, string> = {};
    for (const [name, value] of entries) {
      const entryField = `${field}[${JSON.stringify(name)}]`;
      checkText(name, entryField, 'ILLEGAL_MESSAGE_PROPERTY_KEY', limits.propertyNameMaxBytes, 'property name');
      if (isReservedPropertyName(name)) {
        fail('ILLEGAL_MESSAGE_PROPERTY_KEY', entryField, 'property name is reserved for the broker');
      }
      if (typeof value !== 'string') {
        fail('INVALID_ARGUMENT', entryField, `property value must be a string, not ${typeName(value)}`);
      }
      // RocketMQ reports a bad value under the key's code too; values may be empty.
      if (hasIllegalCharacter(value)) {
        fail('ILLEGAL_MESSAGE_PROPERTY_KEY', entryField, illegalCharacterMessage('property value'));
      }
      userBytes += utf8Length(name) + utf8Length(value);
      checked[name] = value;
    }
    message.properties = checked;
  }
  if (userBytes > limits.propertiesMaxBytes) {
    fail(
      'MESSAGE_PROPERTIES_TOO_LARGE',
      join(path, 'properties'),
      `tag, keys and properties take ${userBytes} bytes together; at most ${limits.propertiesMaxBytes}`,
    );
  }

  const messageGroup = optional(input['messageGroup']);
  if (messageGroup !== undefined) {
    const field = join(path, 'messageGroup');
    const maxBytes = limits.messageGroupMaxBytes;
    message.messageGroup = checkText(messageGroup, field, 'ILLEGAL_MESSAGE_GROUP', maxBytes, 'message group');
  }

  const deliverAt = optional(input['deliverAt']);
  const delayMs = optional(input['delayMs']);
  if (deliverAt !== undefined && delayMs !== undefined) {
    fail('ILLEGAL_DELIVERY_TIME', join(path, 'delayMs'), 'give deliverAt or delayMs, not both');
  }
  if (deliverAt !== undefined) {
    const field = join(path, 'deliverAt');
    const at = checkIntegerInRange(deliverAt, field, 'ILLEGAL_DELIVERY_TIME', 0, Number.MAX_SAFE_INTEGER);
    if (at - opts.nowMs > limits.delayMaxMs) {
      fail('ILLEGAL_DELIVERY_TIME', field, `deliverAt is more than ${limits.delayMaxMs} ms ahead`);
    }
    message.deliverAt = at;
  }
  if (delayMs !== undefined) {
    const delay = checkIntegerInRange(delayMs, join(path, 'delayMs'), 'ILLEGAL_DELIVERY_TIME', 0, limits.delayMaxMs);
    message.deliverAt = opts.nowMs + delay;
  }
  const delayLevel = optional(input['delayLevel']);
  if (delayLevel !== undefined) {
    const field = join(path, 'delayLevel');
    if (deliverAt !== undefined || delayMs !== undefined) fail('ILLEGAL_DELIVERY_TIME', field, 'give one of deliverAt, delayMs and delayLevel');
    if (typeof delayLevel !== 'number') fail('INVALID_ARGUMENT', field, `must be a number, not ${typeName(delayLevel)}`);
    message.deliverAt = opts.nowMs + delayLevelToMs(delayLevel, field);
  }
  return message;
}

/**
 * Checks the messages of one send request, all or nothing: the first bad message throws, with
 * its index in `field` (`messages[3].tag`).
 *
 * @throws SkyrocketError INVALID_ARGUMENT for a non-array, an empty one or more than
 *   `limits.sendBatchMaxCount` messages; PAYLOAD_TOO_LARGE when the bodies add up to more than
 *   `limits.sendBatchMaxBytes`; any error of `validateMessage`.
 */
export function validateBatch(inputs: unknown, opts: ValidateOptions): MessageInput[] {
  const path = opts.field ?? 'messages';
  if (!Array.isArray(inputs)) fail('INVALID_ARGUMENT', path, `messages must be an array, not ${typeName(inputs)}`);
  if (inputs.length === 0) fail('INVALID_ARGUMENT', path, 'at least one message is required');
  if (inputs.length > limits.sendBatchMaxCount) {
    fail('INVALID_ARGUMENT', path, `${inputs.length} messages; at most ${limits.sendBatchMaxCount}`);
  }
  const messages: MessageInput[] = [];
  let totalBytes = 0;
  for (let i = 0; i < inputs.length; i++) {
    const message = validateMessage(inputs[i], { nowMs: opts.nowMs, field: `${path}[${i}]` });
    totalBytes += message.body.byteLength;
    if (totalBytes > limits.sendBatchMaxBytes) {
      fail('PAYLOAD_TOO_LARGE', path, `message bodies exceed ${limits.sendBatchMaxBytes} bytes in total`);
    }
    messages.push(message);
  }
  return messages;
}

/**
 * Checks how long received messages stay hidden: an integer from `limits.invisibleMinMs` to
 * `limits.invisibleMaxMs`.
 * @throws SkyrocketError ILLEGAL_INVISIBLE_TIME, or INVALID_ARGUMENT for a non-number.
 */
export function validateInvisibleMs(value: unknown, field = 'invisibleMs'): number {
  return checkIntegerInRange(value, field, 'ILLEGAL_INVISIBLE_TIME', limits.invisibleMinMs, limits.invisibleMaxMs);
}

/**
 * Checks how long a receive may wait for messages: an integer from 0 (return at once) to
 * `limits.longPollWaitMaxMs`.
 * @throws SkyrocketError ILLEGAL_POLLING_TIME, or INVALID_ARGUMENT for a non-number.
 */
export function validateWaitMs(value: unknown, field = 'waitMs'): number {
  return checkIntegerInRange(value, field, 'ILLEGAL_POLLING_TIME', 0, limits.longPollWaitMaxMs);
}

/**
 * Checks how many messages one receive may return: an integer from 1 to
 * `limits.receiveMessagesMaxCount`.
 * @throws SkyrocketError INVALID_ARGUMENT.
 */
export function validateMaxMessages(value: unknown, field = 'maxMessages'): number {
  return checkIntegerInRange(value, field, 'INVALID_ARGUMENT', 1, limits.receiveMessagesMaxCount);
}

/**
 * Checks the number of queues of a topic: an integer from 1 to `limits.topicQueuesMaxCount`.
 * @throws SkyrocketError INVALID_ARGUMENT.
 */
export function validateQueueCount(value: unknown, field = 'queues'): number {
  return checkIntegerInRange(value, field, 'INVALID_ARGUMENT', 1, limits.topicQueuesMaxCount);
}

/**
 * Checks how many times a consumer group may receive one message before it is dead-lettered:
 * an integer from 1 to `limits.deliveryAttemptsMaxCount`.
 * @throws SkyrocketError INVALID_ARGUMENT.
 */
export function validateMaxDeliveryAttempts(value: unknown, field = 'maxDeliveryAttempts'): number {
  return checkIntegerInRange(value, field, 'INVALID_ARGUMENT', 1, limits.deliveryAttemptsMaxCount);
}

function checkResourceName(name: unknown, field: string, code: ErrorCode, maxChars: number): string {
  if (typeof name !== 'string') fail('INVALID_ARGUMENT', field, `${field} must be a string, not ${typeName(name)}`);
  if (name.length === 0 || name.length > maxChars) {
    fail(code, field, `${field} must be 1 to ${maxChars} characters, not ${name.length}`);
  }
  if (!resourceNamePattern.test(name)) fail(code, field, `${field} may only contain letters, digits and %|_-`);
  return name;
}

/**
 * Checks a string that is not blank, holds no control character or unpaired surrogate, and
 * takes at most `maxBytes` in UTF-8.
 */
function checkText(value: unknown, field: string, code: ErrorCode, maxBytes: number, what: string): string {
  if (typeof value !== 'string') fail('INVALID_ARGUMENT', field, `${what} must be a string, not ${typeName(value)}`);
  if (value.trim() === '') fail(code, field, `${what} must not be blank`);
  if (hasIllegalCharacter(value)) fail(code, field, illegalCharacterMessage(what));
  const bytes = utf8Length(value);
  if (bytes > maxBytes) fail(code, field, `${what} is ${bytes} bytes in UTF-8; at most ${maxBytes}`);
  return value;
}

// An unpaired surrogate has no UTF-8 form: it would be stored as U+FFFD and read back changed.
const unpairedSurrogatePattern = /\p{Cs}/u;

function hasIllegalCharacter(s: string): boolean {
  return controlCharacterPattern.test(s) || unpairedSurrogatePattern.test(s);
}

function illegalCharacterMessage(what: string): string {
  return `${what} must not contain control characters or unpaired surrogates`;
}

function checkIntegerInRange(value: unknown, field: string, code: ErrorCode, min: number, max: number): number {
  if (typeof value !== 'number') fail('INVALID_ARGUMENT', field, `must be a number, not ${typeName(value)}`);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    fail(code, field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function fail(code: ErrorCode, field: string | undefined, message: string): never {
  throw new SkyrocketError(code, message, { field });
}

function join(path: string | undefined, name: string): string {
  return path === undefined ? name : `${path}.${name}`;
}

/** JSON has no `undefined`; many JSON writers emit `null` for an unset field, so both mean absent. */
function optional(value: unknown): unknown {
  return value === null ? undefined : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Names a value's type for an error message without converting the value to a string. */
function typeName(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
