/**
 * The broker builds batch events (dispatch/batch-event.ts) and the consumer kit types them
 * (lambdas/consumer-kit): the two must agree. The assignments below fail the type check when
 * they drift; the test runs one event through `batchHandler` and back through the parser.
 */
import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../core/message.ts';
import { batchEvent, parseBatchResponse, type BatchEvent } from '../../broker-fargate/src/dispatch/index.ts';
import { batchHandler, recordText, type SkyrocketBatchEvent } from '../../lambdas/consumer-kit/index.ts';

const message: StoredMessage = {
  messageId: 'M1', topic: 'orders', queueId: 3, queueOffset: 7, physicalOffset: 0, body: Buffer.from('hello'), keys: ['k'],
  properties: { p: 'v' }, messageGroup: 'customer-1', tag: 'paid', bornTimestamp: 1, bornHost: 'h', storeTimestamp: 2, storeHost: 's',
  deliveryAttempt: 2,
};

describe('batch event contract', () => {
  it('is the same shape on both sides', async () => {
    const built: SkyrocketBatchEvent = batchEvent({ group: 'g', topic: 'orders', brokerGroup: 'bg-1' }, [message, { ...message, messageId: 'M2', body: Buffer.from('fail') }]);
    const back: BatchEvent = built;
    expect(back.records[0]).toMatchObject({ messageGroup: 'customer-1', tag: 'paid', deliveryAttempt: 2, queueId: 3, queueOffset: 7 });
    const handler = batchHandler(async (r) => {
      if (recordText(r) === 'fail') throw new Error('no');
    });
    const response = await handler(JSON.parse(JSON.stringify(built)) as SkyrocketBatchEvent, { functionName: 'f', awsRequestId: 'r', getRemainingTimeInMillis: () => 1 });
    expect(parseBatchResponse(Buffer.from(JSON.stringify(response)), new Set(['M1', 'M2']))).toEqual({ kind: 'ok', failed: new Set(['M2']) });
  });
});
