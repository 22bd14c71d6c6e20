/**
 * Every limit Skyrocket enforces, named in one place and checked against each other at load.
 *
 * The values are RocketMQ 5's defaults (broker `maxMessageSize`, proxy `maxUserPropertySize`,
 * `userPropertyMaxNum`, `maxMessageGroupSize`, `minInvisibleTimeMillsForRecv`,
 * `maxInvisibleTimeMills`), so a producer that works against RocketMQ works here unchanged.
 * Names put the bound before the unit: `bodyMaxBytes`, `invisibleMinMs`.
 */
import assert from 'node:assert/strict';

const KiB = 1024;
const MiB = 1024 * KiB;
const secondMs = 1000;
const hourMs = 3600 * secondMs;
const dayMs = 24 * hourMs;

export const limits = {
  /** A body must also be non-empty: RocketMQ rejects empty bodies, and so do we. */
  bodyMaxBytes: 4 * MiB,
  tagMaxBytes: 16 * KiB,
  keyMaxBytes: 16 * KiB,
  /**
   * RocketMQ sets no count, but every key costs one key-index entry on the broker, so the count
   * bounds the index writes one message can cause. Producers almost always send one business id;
   * 32 leaves room for a few aliases without letting one message flood the index.
   */
  keysMaxCount: 32,
  propertiesMaxCount: 128,
  /**
   * UTF-8 bytes of all property names and values, plus the tag and the keys: RocketMQ's proxy
   * counts all of them against this one budget ("user property size"), and so do we.
   */
  propertiesMaxBytes: 16 * KiB,
  /** RocketMQ has no separate bound; a name is an identifier in SQL92 filters, not a payload. */
  propertyNameMaxBytes: 1 * KiB,
  /** RocketMQ 5 proxy's `maxMessageGroupSize`. */
  messageGroupMaxBytes: 64,
  /** RocketMQ's `TOPIC_MAX_LENGTH`; names are ASCII, so characters and bytes agree. */
  topicNameMaxChars: 127,
  /**
   * RocketMQ allows 255, but the group's retry and dead-letter topics (`%RETRY%<group>`,
   * `%DLQ%<group>`) are topics too and must fit in `topicNameMaxChars`.
   */
  groupNameMaxChars: 120,
  /** How far ahead `deliverAt` / `delayMs` may reach. */
  delayMaxMs: 365 * dayMs,
  invisibleMinMs: 10 * secondMs,
  invisibleMaxMs: 12 * hourMs,
  /** SQS stops at 20 s; a little more saves empty receives on quiet queues. */
  longPollWaitMaxMs: 30 * secondMs,
  receiveMessagesDefaultCount: 32,
  receiveMessagesMaxCount: 1024,
  sendBatchMaxCount: 1024,
  /** Sum of the bodies of one send request. */
  sendBatchMaxBytes: 32 * MiB,
  /** RocketMQ's default `defaultTopicQueueNums` for a new topic. */
  topicQueuesDefaultCount: 8,
  /**
   * Queues of one topic. Each queue costs a consume-queue file on its broker and one entry in
   * the topic's DynamoDB item, which must stay well under DynamoDB's 400 KB item limit.
   */
  topicQueuesMaxCount: 1024,
  /** RocketMQ's default `maxReconsumeTimes` (16) counts retries; we count deliveries, as SQS does. */
  deliveryAttemptsDefaultCount: 16,
  deliveryAttemptsMaxCount: 1000,
} as const;

export type Limits = { readonly [K in keyof typeof limits]: number };

/** Topic and consumer-group names: RocketMQ's `Validators` pattern. */
export const resourceNamePattern = /^[%|a-zA-Z0-9_-]+$/;

/** A consumer group's retry topic is this prefix followed by the group name. */
export const retryTopicPrefix = '%RETRY%';
/** A consumer group's dead-letter topic is this prefix followed by the group name. */
export const dlqTopicPrefix = '%DLQ%';

/**
 * Characters no tag, key, property or message group may contain: Java's ISO control range,
 * which RocketMQ's proxy rejects (C0, DEL and C1). RocketMQ's own property encoding uses U+0001
 * and U+0002 as separators, so letting them through would corrupt messages read by its tools.
 */
export const controlCharacterPattern = /[\x00-\x1f\x7f-\x9f]/;

/**
 * Property names the broker sets itself: RocketMQ's `MessageConst.STRING_HASH_SET`, plus
 * `TRANSACTION_CHECK_TIMES`, which its broker writes on half messages (a user-set value would
 * skip transaction checks), and its `__` names. Every name starting with
 * `reservedPropertyNamePrefix` is reserved too; use `isReservedPropertyName` to test a name.
 */
export const reservedPropertyNames: ReadonlySet<string> = new Set([
  'TRACE_ON', 'MSG_REGION', 'KEYS', 'TAGS', 'WAIT', 'DELAY', 'RETRY_TOPIC', 'REAL_TOPIC',
  'REAL_QID', 'TRAN_MSG', 'PGROUP', 'MIN_OFFSET', 'MAX_OFFSET', 'BUYER_ID', 'ORIGIN_MESSAGE_ID',
  'TRANSFER_FLAG', 'CORRECTION_FLAG', 'MQ2_FLAG', 'RECONSUME_TIME', 'UNIQ_KEY',
  'MAX_RECONSUME_TIMES', 'CONSUME_START_TIME', 'POP_CK', 'POP_CK_OFFSET', '1ST_POP_TIME',
  'TRAN_PREPARED_QUEUE_OFFSET', 'DUP_INFO', 'EXTEND_UNIQ_INFO', 'INSTANCE_ID', 'CORRELATION_ID',
  'REPLY_TO_CLIENT', 'TTL', 'ARRIVE_TIME', 'PUSH_REPLY_TIME', 'CLUSTER', 'MSG_TYPE',
  'INNER_MULTI_QUEUE_OFFSET', 'TIMER_DELAY_MS', 'TIMER_DELAY_SEC', 'TIMER_DELIVER_MS',
  'TIMER_ENQUEUE_MS', 'TIMER_DEQUEUE_MS', 'TIMER_ROLL_TIMES', 'TIMER_OUT_MS',
  'TIMER_DEL_UNIQKEY', 'TIMER_DEL_MS', 'TIMER_DELAY_LEVEL', 'BORN_TIMESTAMP', 'DLQ_ORIGIN_TOPIC',
  'DLQ_ORIGIN_MESSAGE_ID', 'TRANSACTION_CHECK_TIMES', '__SHARDINGKEY', '__BORNHOST', '__CRC32#',
  '__transactionId__',
]);

/**
 * RocketMQ's own hidden properties all start with `__` (`__SHARDINGKEY`, `__BORNHOST`,
 * `__transactionId__`, `__CRC32#`, `__RMQ.TRANSIENT.*`), and Skyrocket's use `__SR_`.
 */
export const reservedPropertyNamePrefix = '__';

/** Whether a user may not set a property of this name. */
export function isReservedPropertyName(name: string): boolean {
  return reservedPropertyNames.has(name) || name.startsWith(reservedPropertyNamePrefix);
}

/**
 * Asserts that the limits agree with each other. It runs when this module loads, so a bad edit
 * stops every process at start rather than surfacing as a confusing rejection later.
 */
export function checkLimits(l: Limits = limits): void {
  for (const [name, value] of Object.entries(l)) {
    assert(Number.isSafeInteger(value) && value > 0, `limits.${name} must be a positive integer`);
  }
  // The commit-log record and a send request carry sizes in signed 32-bit fields.
  assert(l.sendBatchMaxBytes < 2 ** 31, 'a batch must fit a 32-bit size field');
  assert(l.bodyMaxBytes <= l.sendBatchMaxBytes, 'a batch must be able to carry the largest body');
  // Tag, keys and property names all draw on the properties budget; a larger bound is dead.
  assert(l.tagMaxBytes <= l.propertiesMaxBytes, 'the tag bound must fit the properties budget');
  assert(l.keyMaxBytes <= l.propertiesMaxBytes, 'the key bound must fit the properties budget');
  assert(l.propertyNameMaxBytes <= l.propertiesMaxBytes, 'a name must fit the properties budget');
  assert(l.invisibleMinMs < l.invisibleMaxMs, 'invisible time range must not be empty');
  assert(l.receiveMessagesDefaultCount <= l.receiveMessagesMaxCount, 'default receive over max');
  assert(l.topicQueuesDefaultCount <= l.topicQueuesMaxCount, 'default queue count over max');
  assert(l.deliveryAttemptsDefaultCount <= l.deliveryAttemptsMaxCount, 'default delivery attempts over max');
  for (const prefix of [retryTopicPrefix, dlqTopicPrefix]) {
    assert(resourceNamePattern.test(prefix), `${prefix} must be a legal topic prefix`);
    assert(
      prefix.length + l.groupNameMaxChars <= l.topicNameMaxChars,
      `${prefix}<group> must fit in a topic name`,
    );
  }
}

checkLimits();
