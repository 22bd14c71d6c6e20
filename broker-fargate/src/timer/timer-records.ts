import { encodeMessageId } from '../../../core/message-id.ts';
import type { StoredMessage } from '../../../core/message.ts';
import { systemProperty, type RecordInput } from '../store/record.ts';

/**
 * The timer log: how delayed messages are kept in the commit log, as records of the internal
 * topic `%TIMER%`. Its records are ordinary commit-log records (see `record.ts`); what makes them
 * timers is the topic, the `deliverAt` header field and these properties:
 *
 *   queue 0 ("near")  a timer due within the horizon, a timer moved back in by the delay sweep
 *                     (it carries UNIQ_KEY = the id the producer got), and the markers below
 *   queue 1 ("far")   a timer due beyond the horizon, stored here until it is parked in the
 *                     DynamoDB timer index
 *
 *   timer record   deliverAt = when; REAL_TOPIC, REAL_QID = where; body, tag, keys, message group
 *                  and user properties = the message; UNIQ_KEY only on a moved timer
 *   fired marker   __SR_TIMER_OP = "fired"; body = the timers delivered, see below. Appended in
 *                  the same batch as the messages it delivered, so both are stored or neither.
 *   cancel marker  __SR_TIMER_OP = "cancelled"; UNIQ_KEY = the cancelled message's id (so the
 *                  key index finds it, and a later move of that id is refused); body as below,
 *                  naming the timer it took out of the wheel, or none for a parked timer
 *
 *   marker body := count:u32 { timerPhysicalOffset:u64 }*count       (little-endian)
 *
 * A timer's message id is that of its record (a direct timer) or its UNIQ_KEY (a moved one); the
 * delivered message carries UNIQ_KEY = that id, so consumers see the id the producer got.
 */
export const timerTopic = '%TIMER%';
export const timerQueue = { near: 0, far: 1 } as const;

export const timerProperty = {
  realTopic: 'REAL_TOPIC',
  realQueueId: 'REAL_QID',
  op: '__SR_TIMER_OP',
} as const;

export const timerOp = { fired: 'fired', cancelled: 'cancelled' } as const;
export type TimerOp = (typeof timerOp)[keyof typeof timerOp];

/** The parts of a message a timer keeps, whatever it came from (a send, or a parked timer). */
export interface TimerMessage {
  topic: string;
  queueId: number;
  deliverAt: number;
  body: Uint8Array;
  tag?: string | undefined;
  keys?: readonly string[] | undefined;
  properties?: Readonly<Record<string, string>> | undefined;
  messageGroup?: string | undefined;
  bornTimestamp: number;
  bornHost: string;
  /** A moved timer's id, kept as UNIQ_KEY. */
  messageId?: string | undefined;
}

export function timerRecord(m: TimerMessage, queue: (typeof timerQueue)[keyof typeof timerQueue]): RecordInput {
  const properties: Record<string, string> = { ...m.properties, [timerProperty.realTopic]: m.topic, [timerProperty.realQueueId]: String(m.queueId) };
  if (m.messageId !== undefined) properties[systemProperty.originMessageId] = m.messageId;
  return {
    topic: timerTopic,
    queueId: queue,
    body: m.body,
    tag: m.tag,
    keys: m.keys !== undefined && m.keys.length > 0 ? m.keys : undefined,
    messageGroup: m.messageGroup,
    properties,
    bornTimestamp: m.bornTimestamp,
    bornHost: m.bornHost,
    deliverAt: m.deliverAt,
  };
}

export function encodeMarkerBody(offsets: readonly number[]): Buffer {
  const buf = Buffer.alloc(4 + 8 * offsets.length);
  buf.writeUInt32LE(offsets.length, 0);
  offsets.forEach((o, i) => buf.writeBigUInt64LE(BigInt(o), 4 + 8 * i));
  return buf;
}

/** The timer offsets a marker names, or undefined when the body is not a marker body. */
export function decodeMarkerBody(body: Uint8Array): number[] | undefined {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.length < 4) return undefined;
  const count = buf.readUInt32LE(0);
  if (buf.length !== 4 + 8 * count) return undefined;
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const value = buf.readBigUInt64LE(4 + 8 * i);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    out[i] = Number(value);
  }
  return out;
}

export function markerRecord(op: TimerOp, offsets: readonly number[], nowMs: number, cancelledId?: string): RecordInput {
  const properties: Record<string, string> = { [timerProperty.op]: op };
  if (cancelledId !== undefined) properties[systemProperty.originMessageId] = cancelledId;
  return { topic: timerTopic, queueId: timerQueue.near, body: encodeMarkerBody(offsets), properties, bornTimestamp: nowMs, bornHost: '' };
}

/** What a record of the timer topic is. */
export type TimerEntry =
  | { kind: 'timer'; messageId: string; deliverAt: number; topic: string; queueId: number; moved: boolean }
  | { kind: 'marker'; op: TimerOp; offsets: number[] }
  | { kind: 'malformed'; reason: string };

/** Reads a record of the timer topic; `brokerId` tells a moved timer from a direct one. */
export function classify(m: StoredMessage, brokerId: number): TimerEntry {
  const op = m.properties[timerProperty.op];
  if (op !== undefined) {
    if (op !== timerOp.fired && op !== timerOp.cancelled) return { kind: 'malformed', reason: `unknown timer op ${op}` };
    const offsets = decodeMarkerBody(m.body);
    if (offsets === undefined) return { kind: 'malformed', reason: 'marker body is not a list of offsets' };
    return { kind: 'marker', op, offsets };
  }
  const target = timerTarget(m);
  if (target === undefined || m.deliverAt === undefined) return { kind: 'malformed', reason: 'timer without a target or a time' };
  // A direct timer's id names its own record; a moved timer's (its UNIQ_KEY) names another.
  const moved = m.messageId !== encodeMessageId(brokerId, m.physicalOffset);
  return { kind: 'timer', messageId: m.messageId, deliverAt: m.deliverAt, topic: target.topic, queueId: target.queueId, moved };
}

export function timerTarget(m: Pick<StoredMessage, 'properties'>): { topic: string; queueId: number } | undefined {
  const topic = m.properties[timerProperty.realTopic];
  const queueId = Number(m.properties[timerProperty.realQueueId]);
  if (topic === undefined || topic === '' || !Number.isSafeInteger(queueId) || queueId < 0) return undefined;
  return { topic, queueId };
}

/** The user's properties of a timer record, without the timer's own. */
export function userProperties(properties: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (name === timerProperty.realTopic || name === timerProperty.realQueueId || name === timerProperty.op) continue;
    out[name] = value;
  }
  return out;
}

/** The record that delivers a timer: the message in its topic, under the id the producer got. */
export function deliveryRecord(timer: StoredMessage): RecordInput | undefined {
  const target = timerTarget(timer);
  if (target === undefined) return undefined;
  return {
    topic: target.topic,
    queueId: target.queueId,
    body: timer.body,
    tag: timer.tag,
    keys: timer.keys.length > 0 ? timer.keys : undefined,
    messageGroup: timer.messageGroup,
    properties: { ...userProperties(timer.properties), [systemProperty.originMessageId]: timer.messageId },
    bornTimestamp: timer.bornTimestamp,
    bornHost: timer.bornHost,
    deliverAt: timer.deliverAt,
  };
}

/** A timer record as the scheduled message it stands for (for lookups by id). */
export function scheduledView(timer: StoredMessage): StoredMessage | undefined {
  const target = timerTarget(timer);
  if (target === undefined) return undefined;
  return { ...timer, topic: target.topic, queueId: target.queueId, queueOffset: -1, properties: userProperties(timer.properties) };
}
