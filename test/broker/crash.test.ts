import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

/**
 * SIGKILL a broker while producers send with sync flush. After it restarts, every acknowledged
 * message is there, and no message is stored twice. Producers do not retry: a request that failed
 * (or whose answer was lost) is simply not counted as acknowledged.
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name: 'crashy', queues: 4 });
  expect(r.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a broker killed while producers run', () => {
  it('keeps every acked message exactly once across SIGKILLs', async () => {
    const acked = new Set<string>();
    let seq = 0;
    let running = true;
    const producer = async (via: number): Promise<void> => {
      while (running) {
        const bodies = Array.from({ length: 1 + (seq % 7) }, () => `m-${seq++}`);
        try {
          const r = await api(cluster.url(via), cluster.adminKey, 'POST', '/v1/topics/crashy/messages', {
            messages: bodies.map((body) => ({ body })),
          });
          if (r.status === 200) for (const b of bodies) acked.add(b);
        } catch {
          await new Promise((r) => setTimeout(r, 20)); // the broker is down; try the next batch
        }
      }
    };
    for (let cycle = 0; cycle < 4; cycle++) {
      running = true;
      // Producers through both brokers: those through broker 0 are forwarded for bg-2's queues.
      const producers = [producer(0), producer(0), producer(1)];
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 350));
      await cluster.kill(1, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      running = false;
      await Promise.all(producers);
      await cluster.startBroker(1);
    }
    expect(acked.size).toBeGreaterThan(50);

    // Read every queue from offset 0 by pull (through either broker) and count each body.
    const seen = new Map<string, number>();
    for (let queueId = 0; queueId < 4; queueId++) {
      let offset = 0;
      for (;;) {
        const r = await api(cluster.url(queueId % 2), cluster.adminKey, 'GET', `/v1/topics/crashy/queues/${queueId}/messages?offset=${offset}&max=1000`);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        for (const m of r.json.messages) seen.set(m.body, (seen.get(m.body) ?? 0) + 1);
        if (r.json.messages.length === 0 || r.json.nextOffset >= r.json.maxOffset) break;
        offset = r.json.nextOffset;
      }
    }
    const missing = [...acked].filter((b) => !seen.has(b));
    const duplicated = [...seen].filter(([, n]) => n > 1);
    expect(missing).toEqual([]);
    expect(duplicated).toEqual([]);
  }, 120_000);
});
