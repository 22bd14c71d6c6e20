import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../client/index.ts';
import { api, TestCluster } from './cluster.ts';

/**
 * SIGKILL the broker while producers send over the wire protocol (the SDK on a skyrocket://
 * endpoint, many sends in flight on one connection). After it restarts, every message the SDK
 * reported sent is stored, once. The producers do not retry, so a send that failed is not counted.
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1, extraEnv: { SKYROCKET_WIRE_PORT: '0' } }).start();
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name: 'wire-crashy', queues: 4 });
  expect(r.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a broker killed while producers send over the wire protocol', () => {
  it('keeps every acked message exactly once across SIGKILLs', async () => {
    const acked = new Set<string>();
    let seq = 0;
    for (let cycle = 0; cycle < 3; cycle++) {
      const wireUrl = cluster.brokers[0]!.wireUrl;
      expect(wireUrl).toMatch(/^skyrocket:\/\/127\.0\.0\.1:\d+$/);
      const producer = new Producer({ endpoint: wireUrl!, apiKey: cluster.adminKey, topic: 'wire-crashy', retries: 0 });
      let running = true;
      const sender = async (): Promise<void> => {
        while (running) {
          const body = `w-${seq++}`;
          try {
            await producer.send({ body });
            acked.add(body);
          } catch {
            await new Promise((r) => setTimeout(r, 20)); // the broker is down
          }
        }
      };
      // Eight senders: their sends share the one connection and coalesce into batches.
      const senders = Array.from({ length: 8 }, sender);
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
      await cluster.kill(0, 'SIGKILL');
      running = false;
      await Promise.all(senders);
      await producer.close().catch(() => undefined);
      await cluster.startBroker(0);
    }
    expect(acked.size).toBeGreaterThan(100);

    const seen = new Map<string, number>();
    for (let queueId = 0; queueId < 4; queueId++) {
      let offset = 0;
      for (;;) {
        const r = await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/topics/wire-crashy/queues/${queueId}/messages?offset=${offset}&max=1000`);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        for (const m of r.json.messages) seen.set(m.body, (seen.get(m.body) ?? 0) + 1);
        if (r.json.messages.length === 0 || r.json.nextOffset >= r.json.maxOffset) break;
        offset = r.json.nextOffset;
      }
    }
    expect([...acked].filter((b) => !seen.has(b))).toEqual([]);
    expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
  }, 120_000);
});
