import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from '../broker/cluster.ts';
import { brokerTrouble, createTopic, sweepEvery, testSweep, timerEnv } from './support.ts';

/**
 * A broker SIGKILLed three times while it holds timers: near ones in its wheel, far ones parked
 * (4 s horizon) and moved back by a sweep running throughout, a burst of 1000 due at one instant
 * (the second kill lands while it fires), and cancelled ones. After each restart the broker
 * rebuilds its wheel from its snapshot and the timer log. In the end every timer was delivered
 * exactly once (counted by reading every queue), none before its time, and none cancelled.
 */
const horizonMs = 4000;
let cluster: TestCluster;
let trouble: () => string = () => '';

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1, extraEnv: timerEnv(horizonMs) }).start();
  trouble = brokerTrouble(cluster);
  await createTopic(cluster, 'crashy', 3);
}, 60_000);

afterAll(async () => {
  const said = trouble();
  if (said !== '') console.log(said);
  await cluster?.stop();
});

const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

describe('a broker killed while it holds timers', () => {
  it('delivers every timer exactly once, and no cancelled one, across SIGKILLs', async () => {
    const t0 = Date.now() + 500;
    const burstAt = t0 + 5_000;
    const sent = new Map<string, { body: string; deliverAt: number }>();
    const send = async (messages: Array<{ body: string; deliverAt: number }>): Promise<string[]> => {
      const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/crashy/messages', { messages });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const ids = r.json.results.map((x: { messageId: string }) => x.messageId) as string[];
      ids.forEach((id, k) => sent.set(id, messages[k]!));
      return ids;
    };
    // 400 timers spread over 1..14 s (those beyond 6 s are parked), and a burst of 1000.
    for (let b = 0; b < 20; b++) {
      await send(Array.from({ length: 20 }, (_, k) => ({ body: `s-${b}-${k}`, deliverAt: t0 + 1000 + (((b * 20 + k) * 7919) % 13_000) })));
    }
    for (let b = 0; b < 4; b++) await send(Array.from({ length: 250 }, (_, k) => ({ body: `burst-${b}-${k}`, deliverAt: burstAt })));
    // Cancelled: 5 in the wheel, 5 parked.
    const cancelNear = await send(Array.from({ length: 5 }, (_, k) => ({ body: `cancel-near-${k}`, deliverAt: t0 + 4_000 })));
    const cancelFar = await send(Array.from({ length: 5 }, (_, k) => ({ body: `cancel-far-${k}`, deliverAt: t0 + 12_000 })));
    const kit = testSweep(cluster, horizonMs);
    await new Promise((r) => setTimeout(r, 800)); // the far ones get parked
    for (const id of [...cancelNear, ...cancelFar]) {
      const r = await api(cluster.url(0), cluster.adminKey, 'DELETE', `/v1/messages/${id}`);
      expect(r.status, JSON.stringify(r.json)).toBe(204);
      sent.delete(id);
    }
    const loop = sweepEvery(kit.sweep, 300);

    for (const at of [t0 + 3_000, burstAt + Math.floor(Math.random() * 40), t0 + 9_000]) {
      await sleepUntil(at);
      await cluster.kill(0, 'SIGKILL');
      await cluster.startBroker(0);
    }
    // Every stored copy, by id, from every queue.
    const readAll = async (): Promise<Map<string, Array<{ body: string; storedAt: number }>>> => {
      const seen = new Map<string, Array<{ body: string; storedAt: number }>>();
      for (let queueId = 0; queueId < 3; queueId++) {
        let offset = 0;
        for (;;) {
          const r = await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/topics/crashy/queues/${queueId}/messages?offset=${offset}&max=1000`);
          expect(r.status, JSON.stringify(r.json)).toBe(200);
          for (const m of r.json.messages) seen.set(m.messageId, [...(seen.get(m.messageId) ?? []), { body: m.body, storedAt: m.storedAt }]);
          if (r.json.messages.length === 0 || r.json.nextOffset >= r.json.maxOffset) break;
          offset = r.json.nextOffset;
        }
      }
      return seen;
    };
    // The last timers are due at t0 + 14 s; a slow restart may make them late, not lost.
    await sleepUntil(t0 + 15_000);
    let seen = await readAll();
    while (seen.size < sent.size && Date.now() < t0 + 30_000) {
      await new Promise((r) => setTimeout(r, 500));
      seen = await readAll();
    }
    await new Promise((r) => setTimeout(r, 500)); // a copy delivered twice would show now
    seen = await readAll();
    await loop.stop();
    kit.close();
    const missing = [...sent.keys()].filter((id) => !seen.has(id));
    const twice = [...seen].filter(([, copies]) => copies.length > 1).map(([id]) => id);
    const unexpected = [...seen.keys()].filter((id) => !sent.has(id));
    if (missing.length + twice.length > 0) {
      console.log(JSON.stringify({ missing: missing.slice(0, 10).map((id) => [id, sent.get(id)!.body, sent.get(id)!.deliverAt - t0]), twice: twice.length, sweepErrors: loop.errors.length }));
      console.log(cluster.brokers[0]!.stderr.join('').slice(-4000));
    }
    expect(missing).toEqual([]);
    expect(twice).toEqual([]);
    expect(unexpected).toEqual([]); // the cancelled ones among them
    for (const [id, [copy]] of seen) {
      expect(copy!.body).toBe(sent.get(id)!.body);
      expect(copy!.storedAt).toBeGreaterThanOrEqual(sent.get(id)!.deliverAt);
    }
  }, 60_000);
});
