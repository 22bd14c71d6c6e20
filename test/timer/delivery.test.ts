import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from '../broker/cluster.ts';
import { brokerTrouble, Puller, createGroup, createTopic, percentile } from './support.ts';

/**
 * Delayed messages through two real brokers: a spread of delays from 1 s to 90 s, sent through
 * both brokers so that half are forwarded. Every message arrives
 * once, under the id its producer got, never before its time, and p99 within 1 s after it.
 */
let cluster: TestCluster;
let trouble: () => string = () => '';

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  trouble = brokerTrouble(cluster);
  await createTopic(cluster, 'later', 4);
  await createGroup(cluster, 'g');
}, 60_000);

afterAll(async () => {
  const said = trouble();
  if (said !== '') console.log(said);
  await cluster?.stop();
});

describe('delayed delivery', () => {
  it('delivers a spread of delays on time, once each, under the producer id', async () => {
    const consumer = new Puller(cluster, 'later', 4);
    const sent = new Map<string, { body: string; deliverAt: number }>();
    const count = 160;
    const start = Date.now() + 300;
    // Batches of 8 with mixed delays, by deliverAt, delayMs and delay level, through both brokers.
    for (let b = 0; b < count / 8; b++) {
      const messages = Array.from({ length: 8 }, (_, k) => {
        const i = b * 8 + k;
        const delay = 1000 + Math.floor(((i * 7919) % count) * (89_000 / count));
        const body = `m-${i}`;
        if (i % 3 === 0) return { body, delayMs: delay };
        return { body, deliverAt: start + delay };
      });
      const r = await api(cluster.url(b % 2), cluster.adminKey, 'POST', '/v1/topics/later/messages', { messages });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      r.json.results.forEach((res: { messageId: string; queueOffset: number; deliverAt: number }, k: number) => {
        expect(res.queueOffset).toBe(-1);
        sent.set(res.messageId, { body: messages[k]!.body, deliverAt: res.deliverAt });
      });
    }
    // A delay level (2: 5 s) and a time that has passed (delivered at once).
    const level = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/later/messages', { messages: [{ body: 'level-2', delayLevel: 2 }] });
    expect(level.status, JSON.stringify(level.json)).toBe(200);
    sent.set(level.json.results[0].messageId, { body: 'level-2', deliverAt: level.json.results[0].deliverAt });
    const pastAt = Date.now() - 60_000;
    const past = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/topics/later/messages', { messages: [{ body: 'past', deliverAt: pastAt }] });
    expect(past.status).toBe(200);
    expect(past.json.results[0].queueOffset).toBeGreaterThanOrEqual(0); // stored at once, not as a timer
    sent.set(past.json.results[0].messageId, { body: 'past', deliverAt: pastAt });

    await consumer.waitFor(sent.size, 100_000);
    await new Promise((r) => setTimeout(r, 1000)); // anything delivered twice would show up now
    await consumer.stop();

    const seen = new Map<string, number>();
    const lateness: number[] = [];
    for (const a of consumer.arrivals) {
      seen.set(a.messageId, (seen.get(a.messageId) ?? 0) + 1);
      const want = sent.get(a.messageId);
      expect(want, `unexpected message ${a.messageId}`).toBeDefined();
      expect(a.body).toBe(want!.body);
      if (a.body === 'past') continue;
      expect(a.deliverAt).toBe(want!.deliverAt);
      // Never early: neither stored nor received before its time.
      expect(a.storedAt).toBeGreaterThanOrEqual(want!.deliverAt);
      expect(a.receivedAt).toBeGreaterThanOrEqual(want!.deliverAt);
      lateness.push(a.receivedAt - want!.deliverAt);
    }
    expect([...sent.keys()].filter((id) => !seen.has(id))).toEqual([]);
    expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
    const p99 = percentile(lateness, 0.99);
    console.log(JSON.stringify({ timers: lateness.length, latenessMs: { p50: percentile(lateness, 0.5), p99, max: Math.max(...lateness) } }));
    expect(p99).toBeLessThanOrEqual(1000);
  }, 150_000);

  it('shows a scheduled message by id before delivery, and the delivered one after', async () => {
    const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/later/messages', {
      messages: [{ body: 'look', delayMs: 1500, keys: ['k-look'], tag: 't', properties: { a: 'b' } }],
    });
    const id = r.json.results[0].messageId as string;
    for (const via of [0, 1]) {
      const before = await api(cluster.url(via), cluster.adminKey, 'GET', `/v1/messages/${id}`);
      expect(before.status, JSON.stringify(before.json)).toBe(200);
      expect(before.json).toMatchObject({ messageId: id, topic: 'later', body: 'look', queueOffset: -1, tag: 't', keys: ['k-look'], properties: { a: 'b' } });
      expect(before.json.deliverAt).toBe(r.json.results[0].deliverAt);
    }
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/messages/${id}`);
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ messageId: id, topic: 'later', body: 'look', tag: 't', keys: ['k-look'], properties: { a: 'b' } });
    expect(after.json.queueOffset).toBeGreaterThanOrEqual(0);
    // Query by key finds the delivered message under its id.
    const byKey = await api(cluster.url(0), cluster.adminKey, 'GET', '/v1/topics/later/messages?key=k-look');
    expect(byKey.json.messages.map((m: { messageId: string }) => m.messageId)).toEqual([id]);
  }, 20_000);
});
