import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../../core/message.ts';
import { batchEvent, encodeBatchEvent, parseBatchResponse, splitByPayload } from './batch-event.ts';

function message(i: number, body: Uint8Array = Buffer.from(`body-${i}`)): StoredMessage {
  return {
    messageId: `M${i}`, topic: 't', queueId: 0, queueOffset: i, physicalOffset: 0, body, keys: [], properties: {},
    bornTimestamp: 1, bornHost: 'h', storeTimestamp: 2, storeHost: 's', deliveryAttempt: 1,
  };
}

const header = { group: 'g', topic: 't', brokerGroup: 'bg-1' };
const bytes = (value: unknown): Uint8Array => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('parseBatchResponse', () => {
  const ids = new Set(['a', 'b']);

  it('treats empty, null and list-less answers as complete success', () => {
    for (const payload of ['', '  ', 'null', '{}', '{"batchItemFailures":null}', '{"batchItemFailures":[]}', '"ok"', '42']) {
      expect(parseBatchResponse(bytes(payload), ids)).toEqual({ kind: 'ok', failed: new Set() });
    }
  });

  it('names the failed records', () => {
    expect(parseBatchResponse(bytes({ batchItemFailures: [{ itemIdentifier: 'b' }, { itemIdentifier: 'b' }] }), ids)).toEqual({ kind: 'ok', failed: new Set(['b']) });
  });

  it('fails the whole batch for answers it cannot trust', () => {
    for (const payload of [
      'not json',
      { batchItemFailures: 'a' },
      { batchItemFailures: [{}] },
      { batchItemFailures: [{ itemIdentifier: '' }] },
      { batchItemFailures: [{ itemIdentifier: null }] },
      { batchItemFailures: [{ id: 'a' }] },
      { batchItemFailures: [{ itemIdentifier: 'c' }] },
      { batchItemFailures: [null] },
    ]) {
      expect(parseBatchResponse(bytes(payload), ids).kind, JSON.stringify(payload)).toBe('invalid');
    }
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        expect(['ok', 'invalid']).toContain(parseBatchResponse(payload, ids).kind);
      }),
    );
  });
});

describe('batch events', () => {
  it('carries utf8 bodies as text and others as base64, without receipt handles', () => {
    const event = batchEvent(header, [message(0), { ...message(1, Buffer.from([0xff, 0xfe])), messageGroup: 'g1', tag: 'x' }]);
    expect(event).toMatchObject({ eventSource: 'skyrocket', eventVersion: 1, group: 'g', topic: 't', brokerGroup: 'bg-1' });
    expect(event.records[0]).toEqual({
      messageId: 'M0', topic: 't', queueId: 0, queueOffset: 0, body: 'body-0', bodyEncoding: 'utf8', tag: null, keys: [], properties: {},
      deliveryAttempt: 1, bornAt: 1, storedAt: 2,
    });
    expect(event.records[1]).toMatchObject({ body: '//4=', bodyEncoding: 'base64', messageGroup: 'g1', tag: 'x' });
  });

  it('splits a batch into runs under the payload limit, in order', () => {
    const items = Array.from({ length: 10 }, (_, i) => ({ message: message(i, Buffer.alloc(1000, 0x61)) }));
    const max = 3500;
    const runs = splitByPayload(items, header, max);
    expect(runs.flat()).toEqual(items);
    expect(runs.length).toBeGreaterThan(1);
    for (const run of runs) expect(encodeBatchEvent(header, run.map((i) => i.message)).length).toBeLessThanOrEqual(max);
    // One message over the limit still goes, alone.
    expect(splitByPayload([{ message: message(0, Buffer.alloc(5000, 0x61)) }, ...items.slice(0, 1)], header, max).map((r) => r.length)).toEqual([1, 1]);
  });
});
