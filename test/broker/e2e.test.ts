import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

/**
 * Two broker processes joined through the name server: produce through one, consume through the
 * other. Topics spread their queues over both broker groups, so requests are forwarded.
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

async function createTopic(name: string, queues = 4): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name, queues });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

async function createGroup(name: string, mode = 'CLUSTERING'): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups', { name, mode });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

async function send(broker: number, topic: string, bodies: string[]): Promise<Array<{ messageId: string; queueId: number; queueOffset: number }>> {
  const r = await api(cluster.url(broker), cluster.adminKey, 'POST', `/v1/topics/${topic}/messages`, {
    messages: bodies.map((body, i) => ({ body, tag: i % 2 === 0 ? 'even' : 'odd', keys: [`k-${body}`] })),
  });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.results;
}

async function receiveAll(
  broker: number,
  group: string,
  topic: string,
  expected: number,
  extra: Record<string, unknown> = {},
  ack = true,
): Promise<Array<{ body: string; messageId: string; receiptHandle: string; deliveryAttempt: number }>> {
  const got: Array<{ body: string; messageId: string; receiptHandle: string; deliveryAttempt: number }> = [];
  const deadline = Date.now() + 20_000;
  while (got.length < expected && Date.now() < deadline) {
    const r = await api(cluster.url(broker), cluster.adminKey, 'POST', `/v1/groups/${group}/receive`, {
      topic,
      max: 32,
      waitMs: 500,
      ...extra,
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    got.push(...r.json.messages);
    if (ack && r.json.messages.length > 0) {
      const a = await api(cluster.url(broker), cluster.adminKey, 'POST', `/v1/groups/${group}/ack`, {
        topic,
        receiptHandles: r.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
      });
      expect(a.status, JSON.stringify(a.json)).toBe(200);
      expect(a.json.failed).toEqual([]);
    }
  }
  return got;
}

describe('a two-broker cluster', () => {
  it('spreads a topic over both broker groups and serves its route from either broker', async () => {
    await createTopic('route-topic', 4);
    const r = await api(cluster.url(1), cluster.adminKey, 'GET', '/v1/topics/route-topic/route');
    expect(r.status).toBe(200);
    const groups = new Set(r.json.queues.map((q: { brokerGroup: string }) => q.brokerGroup));
    expect(groups).toEqual(new Set(['bg-1', 'bg-2']));
    for (const q of r.json.queues) expect(q.leader).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('delivers each message of a clustering group once: produced through one broker, consumed through the other', async () => {
    await createTopic('orders', 4);
    await createGroup('billing');
    const bodies = Array.from({ length: 120 }, (_, i) => `order-${i}`);
    const sent = [];
    for (let i = 0; i < bodies.length; i += 20) sent.push(...(await send(i % 40 === 0 ? 0 : 1, 'orders', bodies.slice(i, i + 20))));
    expect(new Set(sent.map((s) => s.messageId)).size).toBe(120);
    const got = await receiveAll(1, 'billing', 'orders', 120);
    expect(got.map((m) => m.body).sort()).toEqual([...bodies].sort());
    expect(new Set(got.map((m) => m.messageId)).size).toBe(120);
    const more = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/billing/receive', { topic: 'orders', waitMs: 200 });
    expect(more.json.messages).toEqual([]);
    const group = await api(cluster.url(0), cluster.adminKey, 'GET', '/v1/groups/billing');
    expect(group.status).toBe(200);
    expect(group.json.totalLag).toBe(0);
    expect(group.json.lag.filter((q: { topic: string }) => q.topic === 'orders')).toHaveLength(4);
  });

  it('gives every member of a broadcasting group every message', async () => {
    await createTopic('prices', 2);
    await createGroup('caches', 'BROADCASTING');
    await send(0, 'prices', ['p1', 'p2', 'p3', 'p4', 'p5']);
    const a = await receiveAll(0, 'caches', 'prices', 5, { clientId: 'cache-a' });
    const b = await receiveAll(1, 'caches', 'prices', 5, { clientId: 'cache-b' });
    expect(a.map((m) => m.body).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(b.map((m) => m.body).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('filters by tag in the broker', async () => {
    await createTopic('tagged', 2);
    await createGroup('evens');
    await send(0, 'tagged', ['0', '1', '2', '3', '4', '5']);
    const got = await receiveAll(1, 'evens', 'tagged', 3, { filter: { type: 'TAG', expression: 'even' } });
    expect(got.map((m) => m.body).sort()).toEqual(['0', '2', '4']);
  });

  it('filters by SQL92 over properties in the broker', async () => {
    await createTopic('sql-orders', 2);
    await createGroup('big-spenders');
    const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/sql-orders/messages', {
      messages: [
        { body: 'small-eu', tag: 'paid', properties: { amount: '5', region: 'eu' } },
        { body: 'big-eu', tag: 'paid', properties: { amount: '500', region: 'eu' } },
        { body: 'big-us-refund', tag: 'refund', properties: { amount: '900', region: 'us' } },
        { body: 'no-amount', tag: 'paid', properties: { region: 'eu' } },
        { body: 'big-apac', tag: 'paid', properties: { amount: '700', region: 'apac' } },
      ],
    });
    expect(r.status).toBe(200);
    const got = await receiveAll(1, 'big-spenders', 'sql-orders', 1, {
      filter: { type: 'SQL92', expression: "amount > 100 AND region IN ('eu', 'us') AND TAGS = 'paid'" },
    });
    expect(got.map((m) => m.body)).toEqual(['big-eu']);
    const bad = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/big-spenders/receive', {
      topic: 'sql-orders',
      filter: { type: 'SQL92', expression: 'amount > (100' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('INVALID_FILTER_EXPRESSION');
    expect(bad.json.error.message).toMatch(/position \d+/);
  });

  it('long-polls until a message arrives', async () => {
    await createTopic('slow', 2);
    await createGroup('waiters');
    const started = Date.now();
    const pending = api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/waiters/receive', { topic: 'slow', waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    await send(0, 'slow', ['late']);
    const r = await pending;
    expect(r.json.messages.map((m: { body: string }) => m.body)).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('finds messages by id and by key through any broker, and pulls by offset', async () => {
    await createTopic('lookup', 4);
    const sent = await send(0, 'lookup', ['a', 'b', 'c', 'd']);
    for (const s of sent) {
      const r = await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/messages/${s.messageId}`);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.messageId).toBe(s.messageId);
    }
    const byKey = await api(cluster.url(1), cluster.adminKey, 'GET', '/v1/topics/lookup/messages?key=k-c');
    expect(byKey.json.messages.map((m: { body: string }) => m.body)).toEqual(['c']);
    const first = sent[0]!;
    const pulled = await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/topics/lookup/queues/${first.queueId}/messages?offset=${first.queueOffset}&max=1`);
    expect(pulled.json.messages[0].messageId).toBe(first.messageId);
  });

  it('changes invisibility with a fresh handle and refuses the old one', async () => {
    await createTopic('invis', 1);
    await createGroup('slowpokes');
    await send(0, 'invis', ['x']);
    const [m] = await receiveAll(0, 'slowpokes', 'invis', 1, {}, false);
    const changed = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/slowpokes/change-invisibility', {
      topic: 'invis',
      receiptHandle: m!.receiptHandle,
      invisibleMs: 60_000,
    });
    expect(changed.status, JSON.stringify(changed.json)).toBe(200);
    const old = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/slowpokes/ack', { topic: 'invis', receiptHandles: [m!.receiptHandle] });
    expect(old.status).toBe(400);
    expect(old.json.error.code).toBe('INVALID_RECEIPT_HANDLE');
    const fresh = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/slowpokes/ack', {
      topic: 'invis',
      receiptHandles: [changed.json.receiptHandle],
    });
    expect(fresh.status).toBe(200);
    const again = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/slowpokes/ack', {
      topic: 'invis',
      receiptHandles: [changed.json.receiptHandle],
    });
    expect(again.json.error.code).toBe('INVALID_RECEIPT_HANDLE');
  });

  it('redelivers a message whose invisibility ran out, counting the attempt', async () => {
    await createTopic('redeliver', 1);
    await createGroup('forgetful');
    await send(1, 'redeliver', ['again']);
    const [first] = await receiveAll(0, 'forgetful', 'redeliver', 1, { invisibleMs: 10_000 }, false);
    expect(first!.deliveryAttempt).toBe(1);
    const hidden = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/forgetful/receive', { topic: 'redeliver', waitMs: 0 });
    expect(hidden.json.messages).toEqual([]);
    const second = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/forgetful/receive', { topic: 'redeliver', waitMs: 15_000 });
    expect(second.json.messages).toHaveLength(1);
    expect(second.json.messages[0].messageId).toBe(first!.messageId);
    expect(second.json.messages[0].deliveryAttempt).toBe(2);
    const expired = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/forgetful/ack', { topic: 'redeliver', receiptHandles: [first!.receiptHandle] });
    expect(expired.json.error.code).toBe('INVALID_RECEIPT_HANDLE');
  }, 30_000);

  it('keeps acked offsets across a broker restart: nothing acked comes back, nothing unacked is lost', async () => {
    await createTopic('durable', 2);
    await createGroup('restartable');
    const bodies = Array.from({ length: 40 }, (_, i) => `d-${i}`);
    await send(0, 'durable', bodies.slice(0, 20));
    await send(1, 'durable', bodies.slice(20));
    const firstHalf = await receiveAll(0, 'restartable', 'durable', 20);
    // Let the consumption snapshot reach the disk, then restart both brokers gracefully.
    await new Promise((r) => setTimeout(r, 1200));
    await cluster.kill(0, 'SIGTERM');
    await cluster.kill(1, 'SIGTERM');
    await cluster.startBroker(0);
    await cluster.startBroker(1);
    const rest = await receiveAll(1, 'restartable', 'durable', 40 - firstHalf.length);
    const all = [...firstHalf, ...rest].map((m) => m.body);
    expect(all.sort()).toEqual([...bodies].sort());
    const extra = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/restartable/receive', { topic: 'durable', waitMs: 300 });
    expect(extra.json.messages).toEqual([]);
  }, 60_000);
});
