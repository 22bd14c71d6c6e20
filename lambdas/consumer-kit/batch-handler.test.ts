import { describe, expect, it } from 'vitest';
import type { LambdaContext, SkyrocketBatchEvent, SkyrocketRecord } from './batch-event.ts';
import { recordBytes, recordJson, recordText } from './batch-event.ts';
import { batchHandler } from './batch-handler.ts';

const context: LambdaContext = { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 1000 };

function record(messageId: string, body: string, messageGroup?: string): SkyrocketRecord {
  const r: SkyrocketRecord = {
    messageId, topic: 't', queueId: 0, queueOffset: 0, body, bodyEncoding: 'utf8', tag: null, keys: [], properties: {},
    deliveryAttempt: 1, bornAt: 0, storedAt: 0,
  };
  if (messageGroup !== undefined) r.messageGroup = messageGroup;
  return r;
}

function event(records: SkyrocketRecord[]): SkyrocketBatchEvent {
  return { eventSource: 'skyrocket', eventVersion: 1, group: 'g', topic: 't', brokerGroup: 'b', records };
}

describe('batchHandler', () => {
  it('reports the records that threw, in batch order, and handles the rest', async () => {
    const handled: string[] = [];
    const errors: string[] = [];
    const handler = batchHandler(
      async (r) => {
        handled.push(r.messageId);
        if (r.body === 'bad') throw new Error('no');
      },
      { onError: (r) => errors.push(r.messageId) },
    );
    const out = await handler(event([record('1', 'ok'), record('2', 'bad'), record('3', 'ok'), record('4', 'bad')]), context);
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: '2' }, { itemIdentifier: '4' }] });
    expect(handled).toEqual(['1', '2', '3', '4']);
    expect(errors).toEqual(['2', '4']);
    expect(await handler(event([]), context)).toEqual({ batchItemFailures: [] });
  });

  it('runs up to `concurrency` records at once, and a message group one record at a time', async () => {
    let running = 0;
    let most = 0;
    const order: string[] = [];
    const handler = batchHandler(
      async (r) => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        order.push(r.messageId);
        running--;
      },
      { concurrency: 3 },
    );
    await handler(event(Array.from({ length: 9 }, (_, i) => record(`m${i}`, 'x', i < 3 ? 'same' : undefined))), context);
    expect(most).toBe(3);
    expect(order.filter((id) => ['m0', 'm1', 'm2'].includes(id))).toEqual(['m0', 'm1', 'm2']);
  });

  it('fails the records after a failed one of the same message group without handling them', async () => {
    const handled: string[] = [];
    const handler = batchHandler(async (r) => {
      handled.push(r.messageId);
      if (r.messageId === 'a1') throw new Error('no');
    });
    const out = await handler(event([record('a1', 'x', 'a'), record('b1', 'x', 'b'), record('a2', 'x', 'a'), record('b2', 'x', 'b')]), context);
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: 'a1' }, { itemIdentifier: 'a2' }]);
    expect(handled).toEqual(['a1', 'b1', 'b2']);
  });

  it('refuses a concurrency that is not a positive integer', () => {
    expect(() => batchHandler(async () => {}, { concurrency: 0 })).toThrow(RangeError);
  });
});

describe('record bodies', () => {
  it('decodes utf8 and base64 bodies', () => {
    expect(recordText({ body: 'héllo', bodyEncoding: 'utf8' })).toBe('héllo');
    expect(recordBytes({ body: '/wCB', bodyEncoding: 'base64' })).toEqual(Buffer.from([0xff, 0x00, 0x81]));
    expect(recordJson({ body: Buffer.from('{"a":1}').toString('base64'), bodyEncoding: 'base64' })).toEqual({ a: 1 });
    expect(() => recordJson({ body: 'nope', bodyEncoding: 'utf8' })).toThrow(SyntaxError);
  });
});
