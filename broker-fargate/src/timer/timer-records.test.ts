import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessageId } from '../../../core/message-id.ts';
import type { StoredMessage } from '../../../core/message.ts';
import { classify, decodeMarkerBody, deliveryRecord, encodeMarkerBody, markerRecord, timerOp, timerQueue, timerRecord, timerTopic } from './timer-records.ts';

function stored(partial: Partial<StoredMessage> & Pick<StoredMessage, 'physicalOffset'>): StoredMessage {
  return {
    messageId: encodeMessageId(1, partial.physicalOffset),
    topic: timerTopic,
    body: Buffer.from('b'),
    keys: [],
    properties: {},
    queueId: 0,
    queueOffset: 0,
    bornTimestamp: 10,
    bornHost: 'p:1',
    storeTimestamp: 20,
    storeHost: 'h:1',
    deliveryAttempt: 1,
    ...partial,
  };
}

describe('timer records', () => {
  it('marker bodies round-trip, and anything else is refused', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), (offsets) => {
      expect(decodeMarkerBody(encodeMarkerBody(offsets))).toEqual(offsets);
    }));
    expect(decodeMarkerBody(Buffer.alloc(3))).toBeUndefined();
    expect(decodeMarkerBody(Buffer.from([1, 0, 0, 0]))).toBeUndefined();
    expect(decodeMarkerBody(Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined();
  });

  it('a timer record keeps the message and its target; delivery restores the message under the id', () => {
    const record = timerRecord(
      { topic: 'orders', queueId: 3, deliverAt: 99, body: Buffer.from('x'), tag: 't', keys: ['k'], properties: { a: 'b' }, messageGroup: 'g', bornTimestamp: 5, bornHost: 'p:1' },
      timerQueue.far,
    );
    expect(record).toMatchObject({ topic: timerTopic, queueId: 1, deliverAt: 99, tag: 't', keys: ['k'], messageGroup: 'g', properties: { a: 'b', REAL_TOPIC: 'orders', REAL_QID: '3' } });
    const asRead = stored({ physicalOffset: 640, deliverAt: 99, tag: 't', keys: ['k'], messageGroup: 'g', properties: { a: 'b', REAL_TOPIC: 'orders', REAL_QID: '3' } });
    expect(classify(asRead, 1)).toEqual({ kind: 'timer', messageId: encodeMessageId(1, 640), deliverAt: 99, topic: 'orders', queueId: 3, moved: false });
    expect(deliveryRecord(asRead)).toMatchObject({
      topic: 'orders',
      queueId: 3,
      tag: 't',
      keys: ['k'],
      messageGroup: 'g',
      deliverAt: 99,
      bornTimestamp: 10,
      properties: { a: 'b', UNIQ_KEY: encodeMessageId(1, 640) },
    });
    // A moved timer's id is its UNIQ_KEY, which names another record.
    const moved = { ...asRead, messageId: encodeMessageId(1, 8) };
    expect(classify(moved, 1)).toMatchObject({ kind: 'timer', messageId: encodeMessageId(1, 8), moved: true });
  });

  it('classifies markers and malformed records', () => {
    const fired = markerRecord(timerOp.fired, [1, 2], 0);
    expect(classify(stored({ physicalOffset: 0, body: fired.body as Buffer, properties: { ...fired.properties } }), 1)).toEqual({ kind: 'marker', op: 'fired', offsets: [1, 2] });
    const cancel = markerRecord(timerOp.cancelled, [], 0, encodeMessageId(1, 64));
    expect(cancel.properties).toMatchObject({ UNIQ_KEY: encodeMessageId(1, 64) });
    expect(classify(stored({ physicalOffset: 0, properties: { __SR_TIMER_OP: 'bogus' } }), 1).kind).toBe('malformed');
    expect(classify(stored({ physicalOffset: 0, deliverAt: 5, properties: { REAL_TOPIC: 'x' } }), 1).kind).toBe('malformed');
  });
});
