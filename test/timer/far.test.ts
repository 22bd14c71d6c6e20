import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, s3Client } from '../support/aws.ts';
import { api, TestCluster } from '../broker/cluster.ts';
import { brokerTrouble, Consumer, createGroup, createTopic, sweepEvery, testSweep, timerEnv } from './support.ts';

/**
 * Far timers travel through the DynamoDB timer index: with a 4 s horizon (1 s buckets), a timer
 * due in more than 6 s is parked by its broker (a large body in S3), moved back by the delay
 * sweep when it comes within the horizon, and delivered on time. A parked timer can be cancelled.
 * A sweep that fails between a move and the delete, or is SIGKILLed there, leaves the timer in
 * the index; the next sweep moves it again, the broker answers DUPLICATE, and it is delivered once.
 */
const horizonMs = 4000;
let cluster: TestCluster;
let trouble: () => string = () => '';
let sweepKit: ReturnType<typeof testSweep>;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1, extraEnv: timerEnv(horizonMs) }).start();
  trouble = brokerTrouble(cluster);
  await createTopic(cluster, 'far', 2);
  await createGroup(cluster, 'g');
}, 60_000);

afterAll(async () => {
  const said = trouble();
  if (said !== '') console.log(said);
  sweepKit?.close();
  await cluster?.stop();
});

async function send(messages: unknown[]): Promise<Array<{ messageId: string; deliverAt: number }>> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/far/messages', { messages });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.results;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('far timers', () => {
  it('are parked, moved back by the sweep and delivered on time; a parked one can be cancelled; a sweep that dies mid-move duplicates nothing', async () => {
    const t0 = Date.now();
    const big = 'B'.repeat(300 * 1024); // over the 256 KiB inline limit: its body goes to S3
    const [a, b, c, d, e, f] = await send([
      { body: 'a', deliverAt: t0 + 9_000, tag: 'x', keys: ['ka'], properties: { p: 'q' } },
      { body: big, deliverAt: t0 + 10_000 },
      { body: 'c', deliverAt: t0 + 11_000 },
      { body: 'd', deliverAt: t0 + 12_000 },
      { body: 'e', deliverAt: t0 + 12_000 },
      { body: 'f', deliverAt: t0 + 17_000 },
    ]) as [{ messageId: string; deliverAt: number }, ...Array<{ messageId: string; deliverAt: number }>];
    const [near] = await send([{ body: 'near', delayMs: 2_000 }]);
    sweepKit = testSweep(cluster, horizonMs);
    const { index } = sweepKit;

    // Parked: in the index (B's body in S3), not in the broker's wheel.
    for (const t of [a, b, c, d, e, f]) await until(`${t!.messageId} is parked`, async () => (await index.get(t!.messageId)) !== undefined, 5_000);
    const parkedB = await index.get(b!.messageId);
    expect(parkedB?.bodyRef).toBeDefined();
    expect(parkedB?.body?.byteLength).toBe(big.length);
    const { s3 } = backends();
    const s3c = s3Client();
    await expect(s3c.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: parkedB!.bodyRef }))).resolves.toBeDefined();
    const parkedA = await index.get(a!.messageId);
    expect(parkedA).toMatchObject({ topic: 'far', deliverAt: a!.deliverAt, brokerGroup: 'bg-1', tag: 'x', keys: ['ka'], properties: { p: 'q' } });
    const metrics = await fetch(`${cluster.url(0)}/metrics`, { headers: { authorization: `Bearer ${cluster.adminKey}` } }).then((r) => r.text());
    expect(metrics).toMatch(/skyrocket_timers_parked_total 6/);
    expect(metrics).toMatch(/skyrocket_timers_pending 1\b/); // only the near one

    // A parked message is found by id, and can be cancelled.
    const shown = await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/messages/${a!.messageId}`);
    expect(shown.json).toMatchObject({ messageId: a!.messageId, topic: 'far', body: 'a', queueOffset: -1, deliverAt: a!.deliverAt });
    expect((await api(cluster.url(0), cluster.adminKey, 'DELETE', `/v1/messages/${c!.messageId}`)).status).toBe(204);
    expect(await index.get(c!.messageId)).toBeUndefined();
    const again = await api(cluster.url(0), cluster.adminKey, 'DELETE', `/v1/messages/${c!.messageId}`);
    expect(again.status).toBe(404);
    expect(again.json.error.code).toBe('MESSAGE_NOT_FOUND');
    expect((await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/messages/${c!.messageId}`)).status).toBe(404);

    // The sweep, failing once right after the broker took D and E and before deleting them.
    let injected = 0;
    const { sweep } = testSweep(cluster, horizonMs, {
      afterMove: (ids) => {
        if (injected === 0 && ids.includes(d!.messageId)) {
          injected++;
          throw new Error('injected: the sweep dies between the move and the delete');
        }
      },
    });
    const consumer = new Consumer(cluster, 'g', 'far');
    const loop = sweepEvery(sweep, 300);
    await until('A to E are handled', async () => consumer.arrivals.length >= 5, 15_000);
    await loop.stop();
    expect(injected).toBe(1);
    for (const t of [a, b, d, e]) expect(await index.get(t!.messageId)).toBeUndefined();
    await expect(s3c.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: parkedB!.bodyRef }))).rejects.toThrow();
    expect(await index.get(f!.messageId)).toBeDefined(); // not due within the horizon yet

    // F: a sweep process killed by SIGKILL after the broker took F, before it deleted F.
    await until('F is within the horizon', async () => Date.now() >= f!.deliverAt - horizonMs + 500, 10_000);
    const { dynamodb } = backends();
    const child = fork(path.join(import.meta.dirname, 'sweep-child.ts'), [JSON.stringify({ dynamodb, s3, prefix: cluster.prefix, secret: cluster.secret, horizonMs })], {
      execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const moved = await new Promise<string[]>((resolve, reject) => {
      child.on('message', (m: { moved?: string[] }) => m.moved !== undefined && resolve(m.moved));
      child.once('exit', (code) => reject(new Error(`the sweep child exited (${code}) before moving`)));
    });
    expect(moved).toEqual([f!.messageId]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(await index.get(f!.messageId)).toBeDefined(); // the move happened, the delete did not
    const report = await sweep.run();
    expect(report).toMatchObject({ duplicate: 1, failed: 0 });
    expect(await index.get(f!.messageId)).toBeUndefined();

    await until('F arrives', async () => consumer.arrivals.some((x) => x.messageId === f!.messageId), 8_000);
    await new Promise((r) => setTimeout(r, 700));
    await consumer.stop();
    s3c.destroy();

    const byId = new Map<string, number>();
    for (const x of consumer.arrivals) byId.set(x.messageId, (byId.get(x.messageId) ?? 0) + 1);
    expect([...byId].filter(([, n]) => n > 1)).toEqual([]);
    expect(byId.has(c!.messageId)).toBe(false);
    for (const t of [near, a, b, d, e, f]) {
      const arrival = consumer.arrivals.find((x) => x.messageId === t!.messageId);
      expect(arrival, t!.messageId).toBeDefined();
      expect(arrival!.storedAt).toBeGreaterThanOrEqual(t!.deliverAt);
      expect(arrival!.receivedAt - t!.deliverAt).toBeLessThanOrEqual(1000);
    }
    expect(consumer.arrivals.find((x) => x.messageId === b!.messageId)!.body.length).toBe(big.length);
  }, 60_000);
});
