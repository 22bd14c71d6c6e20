import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

const admin = (broker: number, method: string, path: string, body?: unknown) => api(cluster.url(broker), cluster.adminKey, method, path, body);

describe('retries and dead letters', () => {
  it('redelivers nacked messages, dead-letters them after the limit, and redrives them', async () => {
    expect((await admin(0, 'POST', '/v1/topics', { name: 'payments', queues: 4 })).status).toBe(201);
    expect((await admin(0, 'POST', '/v1/groups', { name: 'flaky', maxDeliveryAttempts: 2 })).status).toBe(201);
    const sent = await admin(0, 'POST', '/v1/topics/payments/messages', {
      messages: [
        { body: 'p1', tag: 'card', keys: ['k1'], properties: { amount: '10' } },
        { body: 'p2', tag: 'card' },
        { body: 'p3', tag: 'wire' },
      ],
    });
    expect(sent.status).toBe(200);
    const ids = sent.json.results.map((r: { messageId: string }) => r.messageId).sort();

    const receive = async (broker: number, expected: number, rounds = 20) => {
      const got: any[] = [];
      for (let i = 0; i < rounds && got.length < expected; i++) {
        const r = await admin(broker, 'POST', '/v1/groups/flaky/receive', { topic: 'payments', waitMs: 300 });
        got.push(...r.json.messages);
      }
      return got;
    };
    // Attempt 1, nacked with no delay: back at once as attempt 2.
    let got = await receive(1, 3);
    expect(got.map((m) => m.deliveryAttempt)).toEqual([1, 1, 1]);
    let nack = await admin(0, 'POST', '/v1/groups/flaky/nack', { topic: 'payments', receiptHandles: got.map((m) => m.receiptHandle), delayMs: 0 });
    expect(nack.status, JSON.stringify(nack.json)).toBe(200);
    expect(nack.json.nacked).toHaveLength(3);
    got = await receive(0, 3);
    expect(got.map((m) => m.messageId).sort()).toEqual(ids);
    expect(got.map((m) => m.deliveryAttempt)).toEqual([2, 2, 2]);
    // Attempt 2 was the last: after this nack they go to %DLQ%flaky instead of coming back.
    nack = await admin(1, 'POST', '/v1/groups/flaky/nack', { topic: 'payments', receiptHandles: got.map((m) => m.receiptHandle), delayMs: 0 });
    expect(nack.status).toBe(200);
    expect(await receive(0, 1, 2)).toEqual([]);
    const dlq = await admin(1, 'GET', '/v1/groups/flaky/dlq');
    expect(dlq.status, JSON.stringify(dlq.json)).toBe(200);
    expect(dlq.json.messages.map((m: { messageId: string }) => m.messageId).sort()).toEqual(ids);
    const p1 = dlq.json.messages.find((m: { body: string }) => m.body === 'p1');
    expect(p1).toMatchObject({ originTopic: 'payments', tag: 'card', keys: ['k1'], properties: { amount: '10' }, deliveryAttempt: 3 });

    // Redrive one by id, then the rest.
    const one = await admin(0, 'POST', '/v1/groups/flaky/dlq/redrive', { messageIds: [p1.messageId] });
    expect(one.json).toEqual({ redriven: 1, failed: [] });
    expect((await admin(0, 'GET', '/v1/groups/flaky/dlq')).json.messages).toHaveLength(2);
    const rest = await admin(1, 'POST', '/v1/groups/flaky/dlq/redrive', {});
    expect(rest.json).toEqual({ redriven: 2, failed: [] });
    expect((await admin(0, 'GET', '/v1/groups/flaky/dlq')).json.messages).toEqual([]);
    got = await receive(1, 3);
    expect(got.map((m) => m.body).sort()).toEqual(['p1', 'p2', 'p3']);
    expect(got.map((m) => m.deliveryAttempt)).toEqual([1, 1, 1]);
    expect(got.find((m) => m.body === 'p1')).toMatchObject({ tag: 'card', properties: { amount: '10' } });
  });

  it("waits RocketMQ's backoff after a nack: 10 s after the first attempt", async () => {
    expect((await admin(0, 'POST', '/v1/topics', { name: 'backoff', queues: 1 })).status).toBe(201);
    expect((await admin(0, 'POST', '/v1/groups', { name: 'patient' })).status).toBe(201);
    await admin(0, 'POST', '/v1/topics/backoff/messages', { messages: [{ body: 'b' }] });
    const r = await admin(1, 'POST', '/v1/groups/patient/receive', { topic: 'backoff', waitMs: 2000 });
    const before = Date.now();
    const nack = await admin(1, 'POST', '/v1/groups/patient/nack', { topic: 'backoff', receiptHandles: [r.json.messages[0].receiptHandle] });
    const visibleAt = nack.json.nacked[0].visibleAt;
    expect(visibleAt - before).toBeGreaterThanOrEqual(9_500);
    expect(visibleAt - before).toBeLessThanOrEqual(10_500);
    expect((await admin(0, 'POST', '/v1/groups/patient/receive', { topic: 'backoff', waitMs: 500 })).json.messages).toEqual([]);
  });
});

describe('FIFO topics with an orderly group', () => {
  it('keeps send order per message group: 20 groups x 500 messages, a consumer dying midway', async () => {
    expect((await admin(0, 'POST', '/v1/topics', { name: 'ledger', queues: 8, type: 'FIFO' })).status).toBe(201);
    expect((await admin(0, 'POST', '/v1/groups', { name: 'bookkeepers', orderly: true })).status).toBe(201);
    const groups = 20;
    const perGroup = 500;
    // One batch per message group keeps each batch on one broker group.
    await Promise.all(
      Array.from({ length: groups }, async (_, g) => {
        for (let start = 0; start < perGroup; start += 250) {
          const r = await admin(g % 2, 'POST', '/v1/topics/ledger/messages', {
            messages: Array.from({ length: 250 }, (_, i) => ({ body: `${g}:${start + i}`, messageGroup: `account-${g}` })),
          });
          expect(r.status, JSON.stringify(r.json)).toBe(200);
        }
      }),
    );

    const highest = new Map<number, number>();
    let violations = 0;
    const check = (m: { body: string }): void => {
      const [g, seq] = m.body.split(':').map(Number) as [number, number];
      const top = highest.get(g) ?? -1;
      // A message is either the next of its group or a redelivery of one already seen.
      if (seq > top + 1) violations++;
      if (seq === top + 1) highest.set(g, seq);
    };
    // The first consumer takes one round and dies without acking: those groups stay blocked
    // until the invisibility (10 s, the minimum) runs out, then continue in order.
    const dying = await admin(0, 'POST', '/v1/groups/bookkeepers/receive', { topic: 'ledger', max: 32, invisibleMs: 10_000, waitMs: 2000 });
    expect(dying.json.messages.length).toBeGreaterThan(0);
    const perQueueGroups = new Map<string, number>();
    for (const m of dying.json.messages) {
      check(m);
      const g = m.messageGroup as string;
      perQueueGroups.set(g, (perQueueGroups.get(g) ?? 0) + 1);
    }
    // One message per message group at a time.
    for (const n of perQueueGroups.values()) expect(n).toBe(1);

    let done = 0;
    const total = groups * perGroup;
    const deadline = Date.now() + 90_000;
    while (done < total && Date.now() < deadline) {
      const r = await admin(done % 2, 'POST', '/v1/groups/bookkeepers/receive', { topic: 'ledger', max: 32, invisibleMs: 30_000, waitMs: 1000 });
      expect(r.status).toBe(200);
      if (r.json.messages.length === 0) continue;
      const inBatch = new Set<string>();
      for (const m of r.json.messages) {
        expect(inBatch.has(m.messageGroup)).toBe(false);
        inBatch.add(m.messageGroup);
        check(m);
      }
      const a = await admin((done + 1) % 2, 'POST', '/v1/groups/bookkeepers/ack', {
        topic: 'ledger',
        receiptHandles: r.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
      });
      expect(a.json.failed).toEqual([]);
      done = [...highest.values()].reduce((sum, top) => sum + top + 1, 0);
    }
    expect(violations).toBe(0);
    expect(done).toBe(total);
    for (let g = 0; g < groups; g++) expect(highest.get(g)).toBe(perGroup - 1);
  }, 120_000);
});
