/**
 * What a Skyrocket broker sends a Lambda consumer, and what it expects back.
 *
 * The broker's dispatcher (`broker-fargate/src/dispatch/`) invokes the function synchronously
 * (`RequestResponse`) with one `SkyrocketBatchEvent` and reads a `SkyrocketBatchResponse`: the
 * partial-batch convention of Lambda's SQS and Kinesis event sources. The dispatcher keeps the
 * receipt handles itself; a handler only says which records failed.
 *
 *   event    := { eventSource: "skyrocket", eventVersion: 1, group, topic, brokerGroup, records[] }
 *   record   := { messageId, topic, queueId, queueOffset, body, bodyEncoding, tag, keys,
 *                 properties, messageGroup?, deliveryAttempt, bornAt, storedAt }
 *   response := null | {} | { batchItemFailures: [ { itemIdentifier: <messageId> }, … ] }
 *
 * How the broker reads the response:
 * - `null`, no `batchItemFailures`, or an empty list: every record succeeded and is acknowledged.
 * - A list of `{ itemIdentifier }` naming records of this batch: those are retried (after the
 *   group's backoff), the others are acknowledged.
 * - A thrown error (a function error), a timeout, invalid JSON, or an `itemIdentifier` that is
 *   empty, missing or not a `messageId` of the batch: the whole batch is retried.
 * A record retried until the group's `maxDeliveryAttempts` is moved to the dead-letter topic
 * `%DLQ%<group>`.
 */

/** One message of a batch. The fields are those of the REST API's messages. */
export interface SkyrocketRecord {
  /**
   * The stored message's id: the same on every delivery of the message, so it is the key to
   * deduplicate on (see `batchHandler` on idempotency).
   */
  messageId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  /** The body: UTF-8 text when it is valid UTF-8, otherwise base64 (see `bodyEncoding`). */
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  /** FIFO messages only: the message group (RocketMQ's sharding key). */
  messageGroup?: string;
  /** 1 on the first delivery, counting up on each retry. A duplicate may still say 1 (see `batchHandler`). */
  deliveryAttempt: number;
  /** When the producer's request reached the broker, epoch milliseconds. */
  bornAt: number;
  /** When the message was stored, epoch milliseconds. */
  storedAt: number;
}

export interface SkyrocketBatchEvent {
  eventSource: 'skyrocket';
  /** Changes when the event's shape does. */
  eventVersion: 1;
  /** The consumer group the function consumes as. */
  group: string;
  topic: string;
  /** The broker group whose queues the records come from. */
  brokerGroup: string;
  /**
   * In queue order within each queue. In an orderly (FIFO) group a batch holds at most one record
   * of each message group, and no other batch of that message group is in flight.
   */
  records: SkyrocketRecord[];
}

export interface BatchItemFailure {
  /** The `messageId` of a record to retry. */
  itemIdentifier: string;
}

export interface SkyrocketBatchResponse {
  batchItemFailures: BatchItemFailure[];
}

/** The part of Lambda's context object the kit uses; the real one has more. */
export interface LambdaContext {
  functionName: string;
  awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

/** The bytes of a record's body. */
export function recordBytes(record: Pick<SkyrocketRecord, 'body' | 'bodyEncoding'>): Buffer {
  return Buffer.from(record.body, record.bodyEncoding === 'base64' ? 'base64' : 'utf8');
}

/** A record's body as text (a base64 body is decoded as UTF-8). */
export function recordText(record: Pick<SkyrocketRecord, 'body' | 'bodyEncoding'>): string {
  return record.bodyEncoding === 'base64' ? recordBytes(record).toString('utf8') : record.body;
}

/** A record's body parsed as JSON. Throws SyntaxError for a body that is not JSON. */
export function recordJson<T = unknown>(record: Pick<SkyrocketRecord, 'body' | 'bodyEncoding'>): T {
  return JSON.parse(recordText(record)) as T;
}
