import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError, type ErrorCode } from './errors.ts';
import { limits, reservedPropertyNames } from './limits.ts';
import type { MessageInput } from './message.ts';
import {
  utf8Length,
  validateBatch,
  validateGroupName,
  validateInvisibleMs,
  validateMaxDeliveryAttempts,
  validateMaxMessages,
  validateMessage,
  validateQueueCount,
  validateTopicName,
  validateWaitMs,
} from './validate.ts';

const nowMs = 1_700_000_000_000;
const body = Buffer.from('hello');
const largestBody = new Uint8Array(limits.bodyMaxBytes);

function errorOf(run: () => unknown): SkyrocketError {
  try {
    run();
  } catch (error) {
    if (error instanceof SkyrocketError) return error;
    throw error;
  }
  throw new Error('expected a SkyrocketError, but nothing was thrown');
}

function expectError(run: () => unknown, code: ErrorCode, field: string | undefined): void {
  const error = errorOf(run);
  expect({ code: error.code, field: error.field }).toEqual({ code, field });
}

const validate = (patch: Record<string, unknown>) => () => validateMessage({ topic: 'orders', body, ...patch }, { nowMs });
const propertiesOf = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, 'v']));

describe('validateMessage examples', () => {
  it('returns a minimal message unchanged, body not copied', () => {
    const out = validateMessage({ topic: 'orders', body }, { nowMs });
    expect(out).toStrictEqual({ topic: 'orders', body });
    expect(out.body).toBe(body);
  });

  it('keeps every field of a full message', () => {
    const input = {
      topic: '%DLQ%billing',
      body: new Uint8Array([1, 2, 3]),
      tag: 'paid',
      keys: ['order-1', 'a|b c'],
      properties: { region: 'eu', empty: '', 'with space': 'ü 😀' },
      messageGroup: 'customer-7',
      deliverAt: nowMs - 1,
    };
    expect(validateMessage(input, { nowMs })).toEqual(input);
  });

  it('turns delayMs into deliverAt', () => {
    const out = validateMessage({ topic: 't', body, delayMs: 5000 }, { nowMs });
    expect(out).toStrictEqual({ topic: 't', body, deliverAt: nowMs + 5000 });
  });

  it('turns a RocketMQ delay level into deliverAt', () => {
    expect(validateMessage({ topic: 't', body, delayLevel: 1 }, { nowMs })).toStrictEqual({ topic: 't', body, deliverAt: nowMs + 1000 });
    expect(validateMessage({ topic: 't', body, delayLevel: 18 }, { nowMs })).toStrictEqual({ topic: 't', body, deliverAt: nowMs + 2 * 3_600_000 });
    expect(validateMessage({ topic: 't', body, delayLevel: null }, { nowMs })).toStrictEqual({ topic: 't', body });
  });

  it('treats null optional fields as absent', () => {
    const input = { topic: 't', body, tag: null, keys: null, properties: null, messageGroup: null, deliverAt: null, delayMs: null };
    expect(validateMessage(input, { nowMs })).toStrictEqual({ topic: 't', body });
  });

  it('accepts every value exactly at its limit', () => {
    const input = {
      topic: 't'.repeat(limits.topicNameMaxChars),
      body: largestBody,
      tag: 'é'.repeat(limits.tagMaxBytes / 2),
      messageGroup: 'é'.repeat(limits.messageGroupMaxBytes / 2),
      deliverAt: nowMs + limits.delayMaxMs,
    };
    // The body is compared by identity: a deep comparison of 4 MiB takes vitest seconds.
    const { body: out, ...rest } = validateMessage(input, { nowMs });
    const { body: _, ...want } = input;
    expect(out).toBe(largestBody);
    expect(rest).toEqual(want);
    expect(validate({ delayMs: limits.delayMaxMs })()).toMatchObject({ deliverAt: nowMs + limits.delayMaxMs });
    expect(validate({ keys: Array(limits.keysMaxCount).fill('k') })().keys).toHaveLength(limits.keysMaxCount);
    const properties = propertiesOf(limits.propertiesMaxCount);
    expect(validate({ properties })().properties).toEqual(properties);
    const name = 'n'.repeat(limits.propertyNameMaxBytes);
    expect(validate({ properties: { [name]: 'v'.repeat(limits.propertiesMaxBytes - name.length) } })()).toBeDefined();
  });

  it('prefixes fields with the path it is given', () => {
    expectError(() => validateMessage({ topic: 't', body, tag: '' }, { nowMs, field: 'messages[3]' }), 'ILLEGAL_MESSAGE_TAG', 'messages[3].tag');
  });

  it.each<[string, unknown, ErrorCode, string | undefined]>([
    ['a string', 'hello', 'INVALID_ARGUMENT', undefined],
    ['an array', [], 'INVALID_ARGUMENT', undefined],
    ['a Map', new Map([['topic', 't']]), 'INVALID_ARGUMENT', undefined],
    ['null', null, 'INVALID_ARGUMENT', undefined],
    ['an object with an unknown field', { topic: 't', body, delay_ms: 5 }, 'INVALID_ARGUMENT', 'delay_ms'],
  ])('rejects %s as a message', (_, input, code, field) => {
    expectError(() => validateMessage(input, { nowMs }), code, field);
  });

  it.each<[string, Record<string, unknown>, ErrorCode, string]>([
    ['a missing topic', { topic: undefined }, 'INVALID_ARGUMENT', 'topic'],
    ['a numeric topic', { topic: 42 }, 'INVALID_ARGUMENT', 'topic'],
    ['an empty topic', { topic: '' }, 'ILLEGAL_TOPIC', 'topic'],
    ['a topic with a space', { topic: 'a b' }, 'ILLEGAL_TOPIC', 'topic'],
    ['a non-ASCII topic', { topic: 'café' }, 'ILLEGAL_TOPIC', 'topic'],
    ['a topic of 128 characters', { topic: 't'.repeat(128) }, 'ILLEGAL_TOPIC', 'topic'],
    ['a missing body', { body: undefined }, 'INVALID_ARGUMENT', 'body'],
    ['a string body', { body: 'hello' }, 'INVALID_ARGUMENT', 'body'],
    ['an array body', { body: [1, 2] }, 'INVALID_ARGUMENT', 'body'],
    ['an ArrayBuffer body', { body: new ArrayBuffer(2) }, 'INVALID_ARGUMENT', 'body'],
    ['a Uint16Array body', { body: new Uint16Array(2) }, 'INVALID_ARGUMENT', 'body'],
    ['an empty body', { body: new Uint8Array(0) }, 'MESSAGE_BODY_EMPTY', 'body'],
    ['a body of 4 MiB + 1', { body: new Uint8Array(limits.bodyMaxBytes + 1) }, 'MESSAGE_BODY_TOO_LARGE', 'body'],
    ['a numeric tag', { tag: 5 }, 'INVALID_ARGUMENT', 'tag'],
    ['an empty tag', { tag: '' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a blank tag', { tag: ' \u3000' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag with |', { tag: 'a|b' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag with a newline', { tag: 'a\nb' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag with DEL', { tag: 'a\x7f' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag with a C1 control', { tag: 'a\u0085' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag with an unpaired surrogate', { tag: 'a\ud800' }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag over 16 KiB', { tag: 'x'.repeat(limits.tagMaxBytes + 1) }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['a tag over 16 KiB in UTF-8 only', { tag: 'é'.repeat(limits.tagMaxBytes / 2 + 1) }, 'ILLEGAL_MESSAGE_TAG', 'tag'],
    ['keys as a string', { keys: 'k' }, 'INVALID_ARGUMENT', 'keys'],
    ['33 keys', { keys: Array(limits.keysMaxCount + 1).fill('k') }, 'ILLEGAL_MESSAGE_KEY', 'keys'],
    ['a numeric key', { keys: ['k', 1] }, 'INVALID_ARGUMENT', 'keys[1]'],
    ['a hole in keys', { keys: [, 'k'] }, 'INVALID_ARGUMENT', 'keys[0]'],
    ['an empty key', { keys: ['k', ''] }, 'ILLEGAL_MESSAGE_KEY', 'keys[1]'],
    ['a key with a tab', { keys: ['a\tb'] }, 'ILLEGAL_MESSAGE_KEY', 'keys[0]'],
    ['a key over 16 KiB', { keys: ['k'.repeat(limits.keyMaxBytes + 1)] }, 'ILLEGAL_MESSAGE_KEY', 'keys[0]'],
    ['properties as an array', { properties: [] }, 'INVALID_ARGUMENT', 'properties'],
    ['properties as a Map', { properties: new Map() }, 'INVALID_ARGUMENT', 'properties'],
    ['a numeric property value', { properties: { a: 1 } }, 'INVALID_ARGUMENT', 'properties["a"]'],
    ['a reserved property', { properties: { ok: '1', KEYS: 'x' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties["KEYS"]'],
    ['a __ property', { properties: { __SR_ATTEMPT: '1' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties["__SR_ATTEMPT"]'],
    ['a __proto__ property', { properties: JSON.parse('{"__proto__":"x"}') }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties["__proto__"]'],
    ['an empty property name', { properties: { '': 'x' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties[""]'],
    ['a control character in a name', { properties: { 'a\u0001': 'x' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties["a\\u0001"]'],
    ['a control character in a value', { properties: { a: 'x\u0002' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', 'properties["a"]'],
    ['a name over 1 KiB', { properties: { ['n'.repeat(1025)]: 'x' } }, 'ILLEGAL_MESSAGE_PROPERTY_KEY', `properties["${'n'.repeat(1025)}"]`],
    ['129 properties', { properties: propertiesOf(129) }, 'MESSAGE_PROPERTIES_TOO_LARGE', 'properties'],
    ['properties over 16 KiB', { properties: { a: 'v'.repeat(limits.propertiesMaxBytes) } }, 'MESSAGE_PROPERTIES_TOO_LARGE', 'properties'],
    ['a tag and keys over 16 KiB together', { tag: 't'.repeat(9000), keys: ['k'.repeat(9000)] }, 'MESSAGE_PROPERTIES_TOO_LARGE', 'properties'],
    ['a numeric message group', { messageGroup: 7 }, 'INVALID_ARGUMENT', 'messageGroup'],
    ['a blank message group', { messageGroup: '  ' }, 'ILLEGAL_MESSAGE_GROUP', 'messageGroup'],
    ['a message group with NUL', { messageGroup: 'g\0' }, 'ILLEGAL_MESSAGE_GROUP', 'messageGroup'],
    ['a message group of 65 bytes', { messageGroup: 'g'.repeat(65) }, 'ILLEGAL_MESSAGE_GROUP', 'messageGroup'],
    ['both deliverAt and delayMs', { deliverAt: nowMs, delayMs: 0 }, 'ILLEGAL_DELIVERY_TIME', 'delayMs'],
    ['a string deliverAt', { deliverAt: '1700000000000' }, 'INVALID_ARGUMENT', 'deliverAt'],
    ['a negative deliverAt', { deliverAt: -1 }, 'ILLEGAL_DELIVERY_TIME', 'deliverAt'],
    ['a fractional deliverAt', { deliverAt: nowMs + 0.5 }, 'ILLEGAL_DELIVERY_TIME', 'deliverAt'],
    ['a NaN deliverAt', { deliverAt: Number.NaN }, 'ILLEGAL_DELIVERY_TIME', 'deliverAt'],
    ['an infinite deliverAt', { deliverAt: Number.POSITIVE_INFINITY }, 'ILLEGAL_DELIVERY_TIME', 'deliverAt'],
    ['a deliverAt past 365 days', { deliverAt: nowMs + limits.delayMaxMs + 1 }, 'ILLEGAL_DELIVERY_TIME', 'deliverAt'],
    ['a negative delayMs', { delayMs: -1 }, 'ILLEGAL_DELIVERY_TIME', 'delayMs'],
    ['a fractional delayMs', { delayMs: 0.5 }, 'ILLEGAL_DELIVERY_TIME', 'delayMs'],
    ['a delayMs past 365 days', { delayMs: limits.delayMaxMs + 1 }, 'ILLEGAL_DELIVERY_TIME', 'delayMs'],
    ['delay level 0', { delayLevel: 0 }, 'ILLEGAL_DELIVERY_TIME', 'delayLevel'],
    ['delay level 19', { delayLevel: 19 }, 'ILLEGAL_DELIVERY_TIME', 'delayLevel'],
    ['a fractional delay level', { delayLevel: 1.5 }, 'ILLEGAL_DELIVERY_TIME', 'delayLevel'],
    ['a string delay level', { delayLevel: '3' }, 'INVALID_ARGUMENT', 'delayLevel'],
    ['a delay level with delayMs', { delayLevel: 3, delayMs: 10 }, 'ILLEGAL_DELIVERY_TIME', 'delayLevel'],
    ['a delay level with deliverAt', { delayLevel: 3, deliverAt: nowMs }, 'ILLEGAL_DELIVERY_TIME', 'delayLevel'],
  ])('rejects %s', (_, patch, code, field) => {
    expectError(validate(patch), code, field);
  });
});

describe('validateBatch examples', () => {
  const message = { topic: 't', body };

  it('returns every message, in order', () => {
    const inputs = [message, { ...message, tag: 'b' }, { ...message, delayMs: 1 }];
    expect(validateBatch(inputs, { nowMs })).toEqual([message, { ...message, tag: 'b' }, { ...message, deliverAt: nowMs + 1 }]);
  });

  it('accepts bodies adding up to exactly the batch limit', () => {
    const count = limits.sendBatchMaxBytes / limits.bodyMaxBytes;
    expect(validateBatch(Array(count).fill({ topic: 't', body: largestBody }), { nowMs })).toHaveLength(count);
  });

  it.each<[string, unknown, ErrorCode, string]>([
    ['a non-array', { messages: [] }, 'INVALID_ARGUMENT', 'messages'],
    ['an empty array', [], 'INVALID_ARGUMENT', 'messages'],
    ['1025 messages', Array(limits.sendBatchMaxCount + 1).fill(message), 'INVALID_ARGUMENT', 'messages'],
    ['bodies over 32 MiB', Array(limits.sendBatchMaxBytes / limits.bodyMaxBytes + 1).fill({ topic: 't', body: largestBody }), 'PAYLOAD_TOO_LARGE', 'messages'],
    ['a hole', [message, , message], 'INVALID_ARGUMENT', 'messages[1]'],
    ['one bad message', [message, message, { ...message, tag: 'a|b' }, { ...message, tag: '' }], 'ILLEGAL_MESSAGE_TAG', 'messages[2].tag'],
  ])('rejects %s', (_, inputs, code, field) => {
    expectError(() => validateBatch(inputs, { nowMs }), code, field);
  });

  it('names fields under the path it is given', () => {
    expectError(() => validateBatch([{ body }], { nowMs, field: 'entries' }), 'INVALID_ARGUMENT', 'entries[0].topic');
  });
});

describe('name and receive helpers', () => {
  it('check topic and group names', () => {
    expect(validateTopicName('%RETRY%g-1_x|y')).toBe('%RETRY%g-1_x|y');
    expectError(() => validateTopicName('a/b', 'path.topic'), 'ILLEGAL_TOPIC', 'path.topic');
    expect(validateGroupName('g'.repeat(limits.groupNameMaxChars))).toHaveLength(limits.groupNameMaxChars);
    expectError(() => validateGroupName('g'.repeat(limits.groupNameMaxChars + 1)), 'ILLEGAL_CONSUMER_GROUP', 'group');
    expectError(() => validateGroupName(''), 'ILLEGAL_CONSUMER_GROUP', 'group');
    expectError(() => validateGroupName(undefined, 'consumerGroup'), 'INVALID_ARGUMENT', 'consumerGroup');
  });

  const helpers = [
    { check: validateInvisibleMs, field: 'invisibleMs', code: 'ILLEGAL_INVISIBLE_TIME', min: limits.invisibleMinMs, max: limits.invisibleMaxMs },
    { check: validateWaitMs, field: 'waitMs', code: 'ILLEGAL_POLLING_TIME', min: 0, max: limits.longPollWaitMaxMs },
    { check: validateMaxMessages, field: 'maxMessages', code: 'INVALID_ARGUMENT', min: 1, max: limits.receiveMessagesMaxCount },
    { check: validateQueueCount, field: 'queues', code: 'INVALID_ARGUMENT', min: 1, max: limits.topicQueuesMaxCount },
    { check: validateMaxDeliveryAttempts, field: 'maxDeliveryAttempts', code: 'INVALID_ARGUMENT', min: 1, max: limits.deliveryAttemptsMaxCount },
  ] as const;

  it.each(helpers)('$field accepts integers from $min to $max and nothing else', ({ check, field, code, min, max }) => {
    expect(check(min)).toBe(min);
    expect(check(max)).toBe(max);
    for (const bad of [min - 1, max + 1, min + 0.5, Number.NaN, Number.POSITIVE_INFINITY]) expectError(() => check(bad), code, field);
    expectError(() => check(String(min)), 'INVALID_ARGUMENT', field);
    expectError(() => check(min - 1, 'request.x'), code, 'request.x');
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: min - 10, max: max + 10 }), fc.double()), (value) => {
        const ok = Number.isInteger(value) && value >= min && value <= max;
        if (ok) expect(check(value)).toBe(value);
        else expectError(() => check(value), code, field);
      }),
    );
  });

  it('measures UTF-8 bytes', () => {
    expect([utf8Length(''), utf8Length('a'), utf8Length('é'), utf8Length('中'), utf8Length('😀')]).toEqual([0, 1, 2, 3, 4]);
  });
});

// ---- Property tests ----

const illegalCharacters = /[\x00-\x1f\x7f-\x9f]|\p{Cs}/gu;

/** Strings of any script, with the characters no text field may hold replaced, never blank. */
function text(maxLength: number): fc.Arbitrary<string> {
  return fc
    .oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength }),
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength }),
      fc.string({ unit: 'grapheme-composite', minLength: 1, maxLength }),
    )
    .map((s) => s.replace(illegalCharacters, 'x'))
    .map((s) => (s.trim() === '' ? `x${s}` : s));
}

const topicArb = fc.stringMatching(/^[%|a-zA-Z0-9_-]{1,127}$/);
const bodyArb = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => Buffer.from(a)));
const tagArb = text(16).map((s) => s.replaceAll('|', 'x'));
const keyArb = text(16);
const propertyNameArb = text(12).map((s) => (reservedPropertyNames.has(s) || s.startsWith('__') ? `p${s}` : s));
const propertyValueArb = fc.string({ unit: 'binary', maxLength: 16 }).map((s) => s.replace(illegalCharacters, 'x'));
// 16 code points take at most 64 bytes, the message-group limit.
const messageGroupArb = text(16);
const nowArb = fc.integer({ min: 0, max: 4_000_000_000_000 });

const messageArb = fc.record(
  {
    topic: topicArb,
    body: bodyArb,
    tag: tagArb,
    keys: fc.array(keyArb, { maxLength: 4 }),
    properties: fc.dictionary(propertyNameArb, propertyValueArb, { maxKeys: 8 }),
    messageGroup: messageGroupArb,
  },
  { requiredKeys: ['topic', 'body'] },
);

const deliveryArb = fc.oneof(
  fc.constant({ kind: 'now' as const }),
  fc.integer({ min: -1e12, max: limits.delayMaxMs }).map((offsetMs) => ({ kind: 'at' as const, offsetMs })),
  fc.integer({ min: 0, max: limits.delayMaxMs }).map((delayMs) => ({ kind: 'delay' as const, delayMs })),
);

/** A valid message input with the time it is validated at, kept small so mutations hit only their field. */
const validCaseArb = fc.tuple(nowArb, messageArb, deliveryArb).map(([now, message, delivery]) => {
  const input: Record<string, unknown> = { ...message };
  if (delivery.kind === 'at') input['deliverAt'] = Math.max(0, now + delivery.offsetMs);
  if (delivery.kind === 'delay') input['delayMs'] = delivery.delayMs;
  return { nowMs: now, input };
});

function expected(input: Record<string, unknown>, now: number): Record<string, unknown> {
  const { delayMs, ...rest } = input;
  return typeof delayMs === 'number' ? { ...rest, deliverAt: now + delayMs } : rest;
}

const controlCharArb = fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f })).map((c) => String.fromCharCode(c));
const loneSurrogateArb = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const blankArb = fc.constantFrom('', ' ', '   ', '\u00a0', '\u3000', ' \u2003 ');
const wrongTypeArb = fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));

/** Text that breaks one rule every text field shares: a bad character somewhere, or blank. */
function brokenText(extraBadCharacters: string[] = []): fc.Arbitrary<string> {
  const bad = fc.oneof(controlCharArb, loneSurrogateArb, ...extraBadCharacters.map((c) => fc.constant(c)));
  const withBadCharacter = fc.tuple(fc.oneof(fc.constant(''), text(6)), bad, fc.oneof(fc.constant(''), text(6))).map((parts) => parts.join(''));
  return fc.oneof(withBadCharacter, blankArb);
}

/** A text of `maxBytes + 1 ..` UTF-8 bytes, in one- or two-byte characters. */
function oversizedText(maxBytes: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.integer({ min: maxBytes + 1, max: maxBytes + 50 }).map((n) => 'x'.repeat(n)),
    fc.integer({ min: Math.floor(maxBytes / 2) + 1, max: Math.floor(maxBytes / 2) + 50 }).map((n) => 'é'.repeat(n)),
  );
}

interface Mutation {
  code: ErrorCode;
  field: string;
  apply(input: Record<string, unknown>, nowMs: number): Record<string, unknown>;
}

/** Sets field `name` to a value of `values`, which must fail with `code` on that field. */
const setField = (name: string, code: ErrorCode, values: fc.Arbitrary<unknown>) =>
  values.map((value): Mutation => ({ code, field: name, apply: (input) => ({ ...input, [name]: value }) }));

/** Like `setField` for deliverAt or delayMs, dropping the other so that only `name` is wrong. */
const setTime = (name: 'deliverAt' | 'delayMs', code: ErrorCode, values: fc.Arbitrary<unknown>, fromNow = false) =>
  values.map(
    (value): Mutation => ({
      code,
      field: name,
      apply: (input, now) => {
        const { deliverAt: _at, delayMs: _delay, ...rest } = input;
        return { ...rest, [name]: fromNow ? now + (value as number) : value };
      },
    }),
  );

const insertKey = (code: ErrorCode, badKeys: fc.Arbitrary<unknown>) =>
  fc.tuple(fc.array<unknown>(keyArb, { maxLength: 4 }), badKeys, fc.nat()).map(([keys, key, at]): Mutation => {
    const index = at % (keys.length + 1);
    return { code, field: `keys[${index}]`, apply: (input) => ({ ...input, keys: keys.toSpliced(index, 0, key) }) };
  });

const insertProperty = (code: ErrorCode, names: fc.Arbitrary<string>, values: fc.Arbitrary<unknown>) =>
  fc.tuple(names, values).map(
    ([name, value]): Mutation => ({
      code,
      field: `properties[${JSON.stringify(name)}]`,
      apply: (input) => ({ ...input, properties: { ...(input['properties'] as object | undefined), [name]: value } }),
    }),
  );

const knownFields = new Set(['topic', 'body', 'tag', 'keys', 'properties', 'messageGroup', 'deliverAt', 'delayMs', 'delayLevel']);
const reservedNameArb = fc.oneof(fc.constantFrom(...reservedPropertyNames), text(8).map((s) => `__${s}`));
const negativeIntegerArb = fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 });
const notSafeIntegerArb = fc.double().filter((v) => !Number.isSafeInteger(v));

/** One field of a valid message made invalid, with the error code and field that must result. */
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  setField('topic', 'ILLEGAL_TOPIC', fc.oneof(fc.constant(''), fc.stringMatching(/^[a-z]{0,4}[ .é/:#*]$/), oversizedText(limits.topicNameMaxChars))),
  setField('topic', 'INVALID_ARGUMENT', fc.oneof(wrongTypeArb, fc.constantFrom(null, undefined))),
  setField('body', 'MESSAGE_BODY_EMPTY', fc.constantFrom(new Uint8Array(0), Buffer.alloc(0))),
  setField('body', 'MESSAGE_BODY_TOO_LARGE', fc.constant(new Uint8Array(limits.bodyMaxBytes + 1))),
  setField('body', 'INVALID_ARGUMENT', fc.oneof(fc.string(), wrongTypeArb, fc.constantFrom(null, new ArrayBuffer(1), new Int8Array(1)))),
  setField('tag', 'ILLEGAL_MESSAGE_TAG', fc.oneof(brokenText(['|']), oversizedText(limits.tagMaxBytes))),
  setField('tag', 'INVALID_ARGUMENT', wrongTypeArb),
  insertKey('ILLEGAL_MESSAGE_KEY', fc.oneof(brokenText(), oversizedText(limits.keyMaxBytes))),
  insertKey('INVALID_ARGUMENT', fc.constantFrom(0, true, null, undefined)),
  setField('keys', 'ILLEGAL_MESSAGE_KEY', fc.array(keyArb, { minLength: limits.keysMaxCount + 1, maxLength: limits.keysMaxCount + 8 })),
  setField('keys', 'INVALID_ARGUMENT', fc.oneof(fc.string(), fc.integer(), fc.object({ maxDepth: 1 }))),
  insertProperty('ILLEGAL_MESSAGE_PROPERTY_KEY', reservedNameArb, propertyValueArb),
  insertProperty('ILLEGAL_MESSAGE_PROPERTY_KEY', fc.oneof(brokenText(), oversizedText(limits.propertyNameMaxBytes)), propertyValueArb),
  insertProperty('ILLEGAL_MESSAGE_PROPERTY_KEY', propertyNameArb, brokenText().filter((s) => s.trim() !== '')),
  insertProperty('INVALID_ARGUMENT', propertyNameArb, fc.constantFrom(1, true, undefined, ['v'])),
  setField('properties', 'MESSAGE_PROPERTIES_TOO_LARGE', fc.integer({ min: limits.propertiesMaxCount + 1, max: limits.propertiesMaxCount + 8 }).map(propertiesOf)),
  setField('properties', 'MESSAGE_PROPERTIES_TOO_LARGE', oversizedText(limits.propertiesMaxBytes).map((v) => ({ v }))),
  setField('properties', 'INVALID_ARGUMENT', fc.oneof(fc.string(), fc.integer(), fc.array(fc.string(), { maxLength: 2 }))),
  setField('messageGroup', 'ILLEGAL_MESSAGE_GROUP', fc.oneof(brokenText(), oversizedText(limits.messageGroupMaxBytes))),
  setField('messageGroup', 'INVALID_ARGUMENT', wrongTypeArb),
  setTime('deliverAt', 'ILLEGAL_DELIVERY_TIME', fc.oneof(negativeIntegerArb, notSafeIntegerArb)),
  setTime('deliverAt', 'ILLEGAL_DELIVERY_TIME', fc.integer({ min: 1, max: 1e12 }).map((v) => limits.delayMaxMs + v), true),
  setTime('deliverAt', 'INVALID_ARGUMENT', fc.oneof(fc.string(), fc.boolean(), fc.bigInt())),
  setTime('delayMs', 'ILLEGAL_DELIVERY_TIME', fc.oneof(negativeIntegerArb, notSafeIntegerArb)),
  setTime('delayMs', 'ILLEGAL_DELIVERY_TIME', fc.integer({ min: limits.delayMaxMs + 1, max: Number.MAX_SAFE_INTEGER })),
  setTime('delayMs', 'INVALID_ARGUMENT', fc.oneof(fc.string(), fc.boolean(), fc.bigInt())),
  fc.tuple(fc.nat(), fc.nat()).map(
    ([at, delay]): Mutation => ({
      code: 'ILLEGAL_DELIVERY_TIME',
      field: 'delayMs',
      apply: (input) => ({ ...input, deliverAt: at, delayMs: delay }),
    }),
  ),
  fc
    .tuple(fc.string().filter((name) => !knownFields.has(name)), fc.anything())
    .chain(([name, value]) => setField(name, 'INVALID_ARGUMENT', fc.constant(value))),
);

const anythingArb = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true,
  stringUnit: 'binary',
});

describe('validateMessage properties', () => {
  it('passes every valid message through unchanged but for delayMs', () => {
    fc.assert(
      fc.property(validCaseArb, ({ nowMs: now, input }) => {
        const out = validateMessage(input, { nowMs: now });
        const want = expected(input, now);
        expect(out).toEqual(want);
        expect(Object.keys(out).sort()).toEqual(Object.keys(want).sort());
        expect(out.body).toBe(input['body']);
        expect(validateMessage(out, { nowMs: now })).toEqual(out);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a valid message with one field broken, naming that field and its rule', () => {
    fc.assert(
      fc.property(validCaseArb, mutationArb, ({ nowMs: now, input }, mutation) => {
        const error = errorOf(() => validateMessage(mutation.apply(input, now), { nowMs: now }));
        expect({ code: error.code, field: error.field }).toEqual({ code: mutation.code, field: mutation.field });
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but a SkyrocketError, and what it returns validates again', () => {
    const optionalAnything = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, anythingArb);
    const messageLikeArb = fc.record(
      {
        topic: optionalAnything(topicArb),
        body: optionalAnything(bodyArb),
        tag: optionalAnything(fc.oneof(tagArb, brokenText(['|']))),
        keys: optionalAnything(fc.array(optionalAnything(keyArb), { maxLength: 3 })),
        properties: optionalAnything(fc.dictionary(fc.string({ unit: 'binary' }), optionalAnything(propertyValueArb), { maxKeys: 4 })),
        messageGroup: optionalAnything(messageGroupArb),
        deliverAt: optionalAnything(fc.oneof(fc.integer(), fc.double())),
        delayMs: optionalAnything(fc.oneof(fc.integer(), fc.double())),
      },
      { requiredKeys: [] },
    );
    const inputArb = fc.oneof(anythingArb, messageLikeArb, fc.array(fc.oneof(messageLikeArb, anythingArb), { maxLength: 3 }));
    fc.assert(
      fc.property(inputArb, nowArb, (input, now) => {
        let single: MessageInput | undefined;
        let batch: MessageInput[] | undefined;
        try {
          single = validateMessage(input, { nowMs: now });
        } catch (error) {
          expect(error).toBeInstanceOf(SkyrocketError);
        }
        try {
          batch = validateBatch(input, { nowMs: now });
        } catch (error) {
          expect(error).toBeInstanceOf(SkyrocketError);
        }
        if (single !== undefined) expect(validateMessage(single, { nowMs: now })).toEqual(single);
        if (batch !== undefined) expect(validateBatch(batch, { nowMs: now })).toEqual(batch);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('validateBatch properties', () => {
  it('rejects a batch with one broken message, naming its index', () => {
    fc.assert(
      fc.property(fc.array(validCaseArb, { minLength: 1, maxLength: 5 }), fc.nat(), mutationArb, nowArb, (cases, at, mutation, now) => {
        const inputs = cases.map((c) => c.input);
        const index = at % inputs.length;
        // Re-anchor delays to one clock so the valid messages stay valid at `now`.
        const anchored = inputs.map((input) => (typeof input['deliverAt'] === 'number' ? { ...input, deliverAt: now } : input));
        anchored[index] = mutation.apply(anchored[index] ?? {}, now);
        const error = errorOf(() => validateBatch(anchored, { nowMs: now }));
        expect({ code: error.code, field: error.field }).toEqual({ code: mutation.code, field: `messages[${index}].${mutation.field}` });
      }),
      { numRuns: 300 },
    );
  });
});
