import { isUtf8 } from 'node:buffer';
import type { StoredMessage } from '../../../core/message.ts';

/**
 * The batch event a Lambda consumer receives and the response it returns. The shapes are
 * documented, for handler authors, in `lambdas/consumer-kit/batch-event.ts`; a test checks that
 * what is built here has that type. (The broker does not import the kit: lambdas sit beside the
 * broker, not below it.)
 *
 *   event    := { eventSource: "skyrocket", eventVersion: 1, group, topic, brokerGroup, records[] }
 *   response := null | {} | { batchItemFailures: [ { itemIdentifier: <messageId> } … ] }
 */
export interface BatchEventHeader {
  group: string;
  topic: string;
  brokerGroup: string;
}

/** One record: the REST API's message fields, without a receipt handle. */
export interface BatchRecord {
  messageId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  messageGroup?: string;
  deliveryAttempt: number;
  bornAt: number;
  storedAt: number;
}

export interface BatchEvent extends BatchEventHeader {
  eventSource: 'skyrocket';
  eventVersion: 1;
  records: BatchRecord[];
}

export function batchRecord(m: StoredMessage): BatchRecord {
  const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
  const utf8 = isUtf8(body);
  const record: BatchRecord = {
    messageId: m.messageId,
    topic: m.topic,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    body: body.toString(utf8 ? 'utf8' : 'base64'),
    bodyEncoding: utf8 ? 'utf8' : 'base64',
    tag: m.tag ?? null,
    keys: m.keys,
    properties: m.properties,
    deliveryAttempt: m.deliveryAttempt,
    bornAt: m.bornTimestamp,
    storedAt: m.storeTimestamp,
  };
  if (m.messageGroup !== undefined) record.messageGroup = m.messageGroup;
  return record;
}

/** The event for `messages` as JSON bytes. */
export function encodeBatchEvent(header: BatchEventHeader, messages: readonly StoredMessage[]): Buffer {
  return Buffer.from(JSON.stringify(batchEvent(header, messages)));
}

export function batchEvent(header: BatchEventHeader, messages: readonly StoredMessage[]): BatchEvent {
  return { eventSource: 'skyrocket', eventVersion: 1, ...header, records: messages.map(batchRecord) };
}

/**
 * Splits messages into runs whose events stay under `maxBytes`, keeping their order. A message
 * too large on its own still gets a run (Lambda will refuse it, and it is retried and
 * dead-lettered like a failing one).
 */
export function splitByPayload<T extends { message: StoredMessage }>(items: readonly T[], header: BatchEventHeader, maxBytes: number): T[][] {
  const envelope = Buffer.byteLength(JSON.stringify(batchEvent(header, [])));
  const runs: T[][] = [];
  let run: T[] = [];
  let bytes = envelope;
  for (const item of items) {
    const size = Buffer.byteLength(JSON.stringify(batchRecord(item.message))) + 1; // + the comma
    if (run.length > 0 && bytes + size > maxBytes) {
      runs.push(run);
      run = [];
      bytes = envelope;
    }
    run.push(item);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

export type BatchResponse = { kind: 'ok'; failed: ReadonlySet<string> } | { kind: 'invalid'; reason: string };

/**
 * Reads a handler's answer by the rules of Lambda's SQS partial-batch responses: an empty
 * payload, `null`, an object without `batchItemFailures`, or an empty or null list mean every
 * record succeeded; a list names the records to retry; a payload that is not JSON, a list that
 * is not a list, or an item whose `itemIdentifier` is missing, empty or not a record of the
 * batch makes the whole batch fail.
 */
export function parseBatchResponse(payload: Uint8Array, messageIds: ReadonlySet<string>): BatchResponse {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8').trim();
  if (text === '') return { kind: 'ok', failed: new Set() };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'the response is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'ok', failed: new Set() };
  const list = (value as Record<string, unknown>)['batchItemFailures'];
  if (list === undefined || list === null) return { kind: 'ok', failed: new Set() };
  if (!Array.isArray(list)) return { kind: 'invalid', reason: 'batchItemFailures is not a list' };
  const failed = new Set<string>();
  for (const item of list) {
    const id = typeof item === 'object' && item !== null ? (item as Record<string, unknown>)['itemIdentifier'] : undefined;
    if (typeof id !== 'string' || id === '') return { kind: 'invalid', reason: 'a batchItemFailures entry has no itemIdentifier' };
    if (!messageIds.has(id)) return { kind: 'invalid', reason: `itemIdentifier ${JSON.stringify(id.slice(0, 64))} is not a messageId of the batch` };
    failed.add(id);
  }
  return { kind: 'ok', failed };
}
