/**
 * A Lambda subscription: a consumer group's standing order that the brokers push the messages of
 * one topic to one Lambda function, in batches (DESIGN.md, "Lambda consumers").
 *
 * It is kept on the group's item in the groups table (`lambdaSubscriptions`, one entry per
 * topic), written through the REST API, and it is also what the CDK `LambdaConsumer` construct
 * records as an SSM parameter (`lib/lambda-consumer.ts`, document version 1), which the broker's
 * dispatcher reads as a second source. Both are checked here, with the same bounds.
 */
import assert from 'node:assert/strict';
import { SkyrocketError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { parseSqlFilter } from '../core/sql-filter.ts';
import { parseTagExpression } from '../core/tag-filter.ts';
import { validateTopicName } from '../core/validate.ts';

export interface LambdaSubscriptionFilter {
  type: 'TAG' | 'SQL92';
  expression: string;
}

/** One entry of a group's `lambdaSubscriptions`. */
export interface LambdaSubscriptionSpec {
  topic: string;
  /** A function name, a full ARN or a partial ARN (`123456789012:function:name`), as Invoke takes. */
  functionName: string;
  /** Which messages of the topic the function gets; null for every message. */
  filter: LambdaSubscriptionFilter | null;
  /**
   * Most messages in one invocation.
   * @default lambdaSubscriptionLimits.batchSizeDefault (10)
   */
  batchSize: number;
  /**
   * Most invocations in flight at once for this subscription on each broker.
   * @default lambdaSubscriptionLimits.maxConcurrencyDefault (2)
   */
  maxConcurrency: number;
  /**
   * How long a failed message stays hidden before it is retried, in milliseconds; null for the
   * group's backoff (RocketMQ's 10 s, 30 s, 1 m, … 2 h by attempt).
   * @default null
   */
  retryDelayMs: number | null;
}

/**
 * Bounds of a subscription. Batch size and concurrency follow the `LambdaConsumer` construct,
 * except that one invocation at a time is allowed here (useful locally; the construct keeps
 * SQS's minimum of 2).
 */
export const lambdaSubscriptionLimits = {
  batchSizeDefault: 10,
  batchSizeMin: 1,
  batchSizeMax: 1000,
  maxConcurrencyDefault: 2,
  maxConcurrencyMin: 1,
  maxConcurrencyMax: 1000,
  retryDelayMaxMs: limits.invisibleMaxMs,
  functionNameMaxChars: 170,
  /** A group item must stay far below DynamoDB's 400 KB item limit. */
  perGroupMaxCount: 64,
} as const;

{
  const l = lambdaSubscriptionLimits;
  assert(l.batchSizeMin <= l.batchSizeDefault && l.batchSizeDefault <= l.batchSizeMax, 'lambdaSubscriptionLimits: batch size default out of range');
  assert(l.batchSizeMax <= limits.receiveMessagesMaxCount, 'lambdaSubscriptionLimits: a batch must fit one receive');
  assert(l.maxConcurrencyMin <= l.maxConcurrencyDefault && l.maxConcurrencyDefault <= l.maxConcurrencyMax, 'lambdaSubscriptionLimits: concurrency default out of range');
}

/** Lambda's own pattern for Invoke's FunctionName: a name, a partial ARN or a full ARN. */
const functionNamePattern =
  /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$/;

function invalid(field: string, message: string): never {
  throw new SkyrocketError('INVALID_ARGUMENT', message, { field });
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Checks a function reference; returns it unchanged. */
export function checkFunctionName(value: unknown, field = 'functionName'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > lambdaSubscriptionLimits.functionNameMaxChars || !functionNamePattern.test(value)) {
    invalid(field, `${field} must be a Lambda function name or ARN (at most ${lambdaSubscriptionLimits.functionNameMaxChars} characters)`);
  }
  return value;
}

/** Checks a filter (`{type: 'TAG' | 'SQL92', expression}` or null); a match-all tag filter becomes null. */
export function checkSubscriptionFilter(value: unknown, field = 'filter'): LambdaSubscriptionFilter | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) invalid(field, `${field} must be {"type":"TAG"|"SQL92","expression":"..."} or null`);
  const { type, expression } = value as Record<string, unknown>;
  if (type === 'TAG') {
    const tags = parseTagExpression(expression, `${field}.expression`);
    return tags === undefined ? null : { type, expression: (expression as string).trim() };
  }
  if (type === 'SQL92') {
    parseSqlFilter(expression as string, `${field}.expression`);
    return { type, expression: expression as string };
  }
  throw new SkyrocketError('INVALID_FILTER_EXPRESSION', `${field}.type must be TAG or SQL92`, { field: `${field}.type` });
}

const specFields = new Set(['topic', 'functionName', 'filter', 'batchSize', 'maxConcurrency', 'retryDelayMs']);

/**
 * Checks a subscription as the API receives it (or as it was stored), filling in defaults.
 * @throws SkyrocketError INVALID_ARGUMENT, ILLEGAL_TOPIC or INVALID_FILTER_EXPRESSION, naming the field.
 */
export function checkLambdaSubscription(value: unknown, field = ''): LambdaSubscriptionSpec {
  const at = (name: string): string => (field === '' ? name : `${field}.${name}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(field || 'body', 'a Lambda subscription must be a JSON object');
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).find((k) => !specFields.has(k));
  if (extra !== undefined) invalid(at(extra), `unknown field ${extra}`);
  const l = lambdaSubscriptionLimits;
  return {
    topic: validateTopicName(v['topic'], at('topic')),
    functionName: checkFunctionName(v['functionName'], at('functionName')),
    filter: checkSubscriptionFilter(v['filter'], at('filter')),
    batchSize: integer(v['batchSize'] ?? l.batchSizeDefault, at('batchSize'), l.batchSizeMin, l.batchSizeMax),
    maxConcurrency: integer(v['maxConcurrency'] ?? l.maxConcurrencyDefault, at('maxConcurrency'), l.maxConcurrencyMin, l.maxConcurrencyMax),
    retryDelayMs: v['retryDelayMs'] === undefined || v['retryDelayMs'] === null ? null : integer(v['retryDelayMs'], at('retryDelayMs'), 0, l.retryDelayMaxMs),
  };
}

/** The document a `LambdaConsumer` construct stores in SSM (lib/lambda-consumer.ts, version 1). */
export interface LambdaConsumerDocument {
  group: string;
  orderly: boolean;
  subscription: LambdaSubscriptionSpec;
}

/**
 * Reads a `LambdaConsumer` SSM document: `{version: 1, group, topic, functionArn, filter,
 * batchSize, maxConcurrency, orderly}`.
 * @throws SkyrocketError INVALID_ARGUMENT for any other shape or version.
 */
export function parseLambdaConsumerDocument(text: string): LambdaConsumerDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    invalid('document', 'a Lambda consumer document must be JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('document', 'a Lambda consumer document must be a JSON object');
  const { version, group, orderly, functionArn, topic, filter, batchSize, maxConcurrency, retryDelayMs } = value as Record<string, unknown>;
  if (version !== 1) invalid('version', `unknown Lambda consumer document version ${JSON.stringify(version)}`);
  if (typeof group !== 'string' || group === '') invalid('group', 'group must be a consumer group name');
  if (orderly !== undefined && typeof orderly !== 'boolean') invalid('orderly', 'orderly must be true or false');
  return {
    group,
    orderly: orderly === true,
    subscription: checkLambdaSubscription({ topic, functionName: functionArn, filter, batchSize, maxConcurrency, retryDelayMs }),
  };
}
