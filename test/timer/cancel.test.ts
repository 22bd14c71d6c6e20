import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketClient } from '../../client/index.ts';
import { limits } from '../../core/limits.ts';
import { api, TestCluster } from '../broker/cluster.ts';
import { brokerTrouble, Puller, createGroup, createTopic } from './support.ts';

/**
 * Cancelling scheduled messages (through either broker, and the SDK), and the input a delayed
 * send refuses: nothing of a refused batch is stored.
 */
let cluster: TestCluster;
let trouble: () => string = () => '';
let producerKey: string;
let outsiderKey: string;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  trouble = brokerTrouble(cluster);
  await createTopic(cluster, 'sched', 4);
  await createTopic(cluster, 'plain', 2, 'NORMAL');
  await createTopic(cluster, 'fifo', 2, 'FIFO');
  await createGroup(cluster, 'g');
  producerKey = (await cluster.nameServer.createPrincipal({ name: 'producer', permissions: { publish: ['sched'], subscribe: ['*'] } })).apiKey;
  outsiderKey = (await cluster.nameServer.createPrincipal({ name: 'outsider', permissions: { publish: ['plain'], subscribe: ['*'] } })).apiKey;
}, 60_000);

afterAll(async () => {
  const said = trouble();
  if (said !== '') console.log(said);
  await cluster?.stop();
});

async function schedule(via: number, messages: unknown[], key = cluster.adminKey): Promise<Array<{ messageId: string; queueId: number; deliverAt: number }>> {
  const r = await api(cluster.url(via), key, 'POST', '/v1/topics/sched/messages', { messages });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.results;
}

describe('cancel', () => {
  it('cancels scheduled messages before they fire, through either broker and the SDK, and only those', async () => {
    const consumer = new Puller(cluster, 'sched', 4);
    // Eight messages land on both broker groups' queues.
    const timers = await schedule(0, Array.from({ length: 8 }, (_, i) => ({ body: `t-${i}`, delayMs: 2_500 })));
    expect(new Set(timers.map((t) => t.queueId)).size).toBeGreaterThan(1);
    const [c0, c1, c2, c3, keep] = timers as [(typeof timers)[number], ...typeof timers];
    // Admin through the other broker; the producer (publish on sched) through either; the SDK.
    expect((await api(cluster.url(1), cluster.adminKey, 'DELETE', `/v1/messages/${c0.messageId}`)).status).toBe(204);
    expect((await api(cluster.url(0), producerKey, 'DELETE', `/v1/messages/${c1!.messageId}`)).status).toBe(204);
    expect((await api(cluster.url(1), producerKey, 'DELETE', `/v1/messages/${c2!.messageId}`)).status).toBe(204);
    const client = new SkyrocketClient({ endpoint: cluster.url(0), apiKey: producerKey });
    await client.cancel(c3!.messageId);
    // A principal that may not publish to the topic may not cancel.
    const forbidden = await api(cluster.url(0), outsiderKey, 'DELETE', `/v1/messages/${keep!.messageId}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error.code).toBe('FORBIDDEN');
    expect((await api(cluster.url(0), undefined, 'DELETE', `/v1/messages/${keep!.messageId}`)).status).toBe(401);
    // Twice, unknown, malformed: 404 / 400.
    const twice = await api(cluster.url(0), cluster.adminKey, 'DELETE', `/v1/messages/${c0.messageId}`);
    expect(twice.status).toBe(404);
    expect(twice.json.error.code).toBe('MESSAGE_NOT_FOUND');
    await expect(client.cancel(c3!.messageId)).rejects.toMatchObject({ code: 'MESSAGE_NOT_FOUND' });
    expect((await api(cluster.url(0), cluster.adminKey, 'DELETE', '/v1/messages/0100000001000000000FFFFFFF')).json.error.code).toBe('MESSAGE_NOT_FOUND');
    expect((await api(cluster.url(0), cluster.adminKey, 'DELETE', '/v1/messages/not-an-id')).json.error.code).toBe('ILLEGAL_MESSAGE_ID');
    // An ordinary message is not a scheduled one.
    const plain = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/plain/messages', { messages: [{ body: 'p' }] });
    expect((await api(cluster.url(0), cluster.adminKey, 'DELETE', `/v1/messages/${plain.json.results[0].messageId}`)).status).toBe(404);
    // A cancelled message is gone by id too.
    expect((await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/messages/${c1!.messageId}`)).status).toBe(404);

    await consumer.waitFor(4, 6_000);
    await new Promise((r) => setTimeout(r, 500));
    await consumer.stop();
    const arrived = consumer.arrivals.map((a) => a.messageId).sort();
    expect(arrived).toEqual(timers.slice(4).map((t) => t.messageId).sort());
    // Delivered: too late to cancel.
    const late = await api(cluster.url(1), cluster.adminKey, 'DELETE', `/v1/messages/${keep!.messageId}`);
    expect(late.status).toBe(404);
    expect(late.json.error.code).toBe('MESSAGE_NOT_FOUND');
  }, 30_000);
});

describe('bad delayed input', () => {
  async function maxOffsets(topic: string): Promise<number> {
    const r = await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/groups/g/offsets?topic=${topic}`);
    return r.json.offsets.reduce((sum: number, q: { maxOffset: number }) => sum + q.maxOffset, 0);
  }

  async function pendingTimers(): Promise<number> {
    let total = 0;
    for (const via of [0, 1]) {
      const text = await fetch(`${cluster.url(via)}/metrics`, { headers: { authorization: `Bearer ${cluster.adminKey}` } }).then((r) => r.text());
      total += Number(/^skyrocket_timers_pending (\d+)$/m.exec(text)?.[1]);
    }
    return total;
  }

  it.each([
    ['delayMs past 365 days', 'sched', [{ body: 'ok', delayMs: 1000 }, { body: 'x', delayMs: limits.delayMaxMs + 1 }], 400, 'ILLEGAL_DELIVERY_TIME', 'messages[1].delayMs'],
    ['deliverAt past 365 days', 'sched', [{ body: 'x', deliverAt: Date.now() + limits.delayMaxMs + 60_000 }], 400, 'ILLEGAL_DELIVERY_TIME', 'messages[0].deliverAt'],
    ['delay level 19', 'sched', [{ body: 'x', delayLevel: 19 }], 400, 'ILLEGAL_DELIVERY_TIME', 'messages[0].delayLevel'],
    ['delayMs and deliverAt', 'sched', [{ body: 'x', delayMs: 5, deliverAt: Date.now() }], 400, 'ILLEGAL_DELIVERY_TIME', 'messages[0].delayMs'],
    ['a delay on a NORMAL topic', 'plain', [{ body: 'ok' }, { body: 'x', delayMs: 1000 }], 400, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'messages[1]'],
    ['a delay on a FIFO topic', 'fifo', [{ body: 'x', delayMs: 1000, messageGroup: 'm' }], 400, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'messages[0]'],
  ])('refuses %s, storing nothing', async (_, topic, messages, status, code, field) => {
    const before = { offsets: await maxOffsets(topic), pending: await pendingTimers() };
    for (const via of [0, 1]) {
      const r = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/topics/${topic}/messages`, { messages });
      expect(r.status).toBe(status);
      expect(r.json.error).toMatchObject({ code, field });
    }
    expect({ offsets: await maxOffsets(topic), pending: await pendingTimers() }).toEqual(before);
  });

  it('refuses to create the internal timer topic', async () => {
    const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name: '%TIMER%' });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('ILLEGAL_TOPIC');
  });
});
