import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

/**
 * Long polls against a real broker: a stored message wakes one of the polls that would take the
 * same messages (the others sleep on and take the next ones), and never leaves a poll of another
 * group or another consumer with queues of its own asleep.
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1 }).start();
  const admin = cluster.adminKey;
  expect((await api(cluster.url(), admin, 'POST', '/v1/topics', { name: 'polled', queues: 4 })).status).toBe(201);
  expect((await api(cluster.url(), admin, 'POST', '/v1/topics', { name: 'polled-groups', queues: 4 })).status).toBe(201);
  for (const name of ['poll-same', 'poll-other', 'poll-clients']) {
    expect((await api(cluster.url(), admin, 'POST', '/v1/groups', { name })).status).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

interface Poll {
  settled: boolean;
  at: number;
  bodies: string[];
  done: Promise<void>;
}

function poll(group: string, extra: Record<string, unknown> = {}): Poll {
  const p: Poll = { settled: false, at: 0, bodies: [], done: Promise.resolve() };
  const topic = (extra['topic'] as string | undefined) ?? 'polled';
  p.done = api(cluster.url(), cluster.adminKey, 'POST', `/v1/groups/${group}/receive`, { topic, max: 32, waitMs: 6_000, ...extra }).then(
    async (reply) => {
      expect(reply.status).toBe(200);
      p.settled = true;
      p.at = Date.now();
      p.bodies = reply.json.messages.map((m: { body: string }) => m.body);
      if (reply.json.messages.length > 0) {
        await api(cluster.url(), cluster.adminKey, 'POST', `/v1/groups/${group}/ack`, {
          topic,
          receiptHandles: reply.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
        });
      }
    },
  );
  return p;
}

const send = (body: string, topic = 'polled') =>
  api(cluster.url(), cluster.adminKey, 'POST', `/v1/topics/${topic}/messages`, { messages: [{ body }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('long polls', () => {
  it('one message wakes one of two polls of the same group; the next message wakes the other at once', async () => {
    const a = poll('poll-same');
    const b = poll('poll-same');
    await sleep(300); // both are waiting
    const sentAt = Date.now();
    await send('first');
    await sleep(300);
    expect([a, b].filter((p) => p.settled)).toHaveLength(1);
    const [woken, sleeping] = a.settled ? [a, b] : [b, a];
    expect(woken.bodies).toEqual(['first']);
    expect(woken.at - sentAt).toBeLessThan(1_000);
    const secondAt = Date.now();
    await send('second');
    await sleeping.done;
    expect(sleeping.bodies).toEqual(['second']);
    expect(sleeping.at - secondAt).toBeLessThan(1_000);
  });

  it('polls of different groups, or of consumers with their own queues, all wake for what they take', async () => {
    // Every group gets every message: one message wakes a poll of each group.
    const first = poll('poll-other', { topic: 'polled-groups' });
    const second = poll('poll-same', { topic: 'polled-groups' });
    await sleep(300);
    let at = Date.now();
    await send('for both', 'polled-groups');
    await Promise.all([first.done, second.done]);
    for (const p of [first, second]) {
      expect(p.bodies).toEqual(['for both']);
      expect(p.at - at).toBeLessThan(1_000);
    }

    // Consumers with a clientId own their queues: each must wake for a message in its queues.
    const polls = [poll('poll-clients', { clientId: 'c1' }), poll('poll-clients', { clientId: 'c2' })];
    await sleep(300);
    at = Date.now();
    for (let i = 0; i < 8; i++) await send(`m${i}`); // round-robin: every queue gets messages
    await Promise.all(polls.map((p) => p.done));
    for (const p of polls) {
      expect(p.bodies.length).toBeGreaterThan(0);
      expect(p.at - at).toBeLessThan(1_500);
    }
  });
});
