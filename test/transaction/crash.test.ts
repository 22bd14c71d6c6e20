import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionProducer } from '../../client/index.ts';
import { api, TestCluster } from '../broker/cluster.ts';
import { checkerEndpoint, createProducerGroup, createTopic, drain, sendHalves, state, sweep, sweepUntil, tables, type Half } from './support.ts';

/**
 * Crashes around transactions: a producer SIGKILLed between its half messages and their commit
 * (another producer of its group answers the checks), and a broker SIGKILLed with half messages
 * unresolved, resolutions just written, and commits in flight (after its restart every
 * resolution still works, nothing is committed twice, and lost index writes are repaired).
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
}, 60_000);

afterAll(async () => {
  // A broker that died on its own says why here.
  for (const b of cluster?.brokers ?? []) if (b.child.exitCode !== null && b.child.signalCode === null) console.error(`broker ${b.brokerId} exited:`, b.stderr.join('').slice(-4000));
  await cluster?.stop();
});

async function createGroup(name: string): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups', { name });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

/** Counts each body received by the group. */
async function counts(group: string, topic: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of await drain(cluster, group, topic)) out.set(m.body, (out.get(m.body) ?? 0) + 1);
  return out;
}

describe('a producer that dies before committing', () => {
  it('is checked back, and another producer of its group answers', async () => {
    await createTopic(cluster, 'tx-orphans');
    await createGroup('g-orphans');
    await createProducerGroup(cluster, { name: 'pg-orphans', checkDelayMs: 200, checkIntervalMs: 300 });
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'crash-producer.ts')], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        SKYROCKET_ENDPOINT: cluster.url(0),
        SKYROCKET_API_KEY: cluster.adminKey,
        TOPIC: 'tx-orphans',
        PRODUCER_GROUP: 'pg-orphans',
        BODIES: 'keep-1,drop-1,keep-2',
      },
    });
    const halves: Array<Half & { body: string }> = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the producer did not store its half messages')), 20_000);
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        halves.push(JSON.parse(line));
        if (halves.length === 3) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    for (const h of halves) expect((await state(cluster, 1, h.transactionId))['state']).toBe('PREPARED');

    // Another instance of the producer group, started after the crash, answers the checks.
    const answered: string[] = [];
    const survivor = new TransactionProducer({
      endpoint: cluster.url(1),
      apiKey: cluster.adminKey,
      producerGroup: 'pg-orphans',
      checkPollWaitMs: 1_000,
      checker: (check) => {
        answered.push(check.message.bodyText());
        return check.message.bodyText().startsWith('keep') ? 'COMMIT' : 'ROLLBACK';
      },
    });
    await survivor.start();
    try {
      await sweepUntil(sweep(cluster), async () =>
        (await Promise.all(halves.map((h) => survivor.getTransaction(h.transactionId)))).every((s) => s.state !== 'PREPARED'),
      );
    } finally {
      await survivor.close();
    }
    expect(answered.sort()).toEqual(['drop-1', 'keep-1', 'keep-2']);
    const got = await counts('g-orphans', 'tx-orphans');
    expect([...got]).toEqual(expect.arrayContaining([['keep-1', 1], ['keep-2', 1]]));
    expect(got.size).toBe(2);
  });
});

describe('a broker SIGKILLed with transactions open', () => {
  it('resolves them after its restart, commits nothing twice, and repairs the index', async () => {
    await createTopic(cluster, 'tx-crash');
    await createGroup('g-crash');
    const endpoint = await checkerEndpoint(() => JSON.stringify({ status: 'COMMIT' }));
    const index = tables(cluster);
    try {
      await createProducerGroup(cluster, { name: 'pg-crash', checkUrl: endpoint.url, checkDelayMs: 300, checkIntervalMs: 200 });
      // All on broker 0's group: sends through broker 0 go to its own queues.
      const a = await sendHalves(cluster, 0, 'tx-crash', 'pg-crash', ['a0', 'a1', 'a2', 'a3', 'a4']);
      const b = await sendHalves(cluster, 0, 'tx-crash', 'pg-crash', ['b0', 'b1', 'b2']);
      const c = await sendHalves(cluster, 0, 'tx-crash', 'pg-crash', Array.from({ length: 40 }, (_, i) => `c${i}`));
      const owner = Number((a[0]!.transactionId.split('.')[1] as string).slice(3)) - 1;
      for (const h of [...a, ...b, ...c]) expect(h.transactionId.split('.')[1]).toBe(`bg-${owner + 1}`);
      // As the SDK does: retriable errors (the restarted broker's new address is not yet known to
      // the other broker's route cache) are retried; commit and rollback are idempotent.
      const retrying = async (call: () => ReturnType<typeof api>): ReturnType<typeof api> => {
        for (let attempt = 0; ; attempt++) {
          const r = await call();
          if (r.json?.error?.retriable !== true || attempt >= 100) return r;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      const commit = (h: Half, via = 1 - owner) =>
        retrying(() => api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${h.transactionId}/commit`));

      expect((await commit(a[0]!)).status).toBe(200);
      expect((await commit(a[1]!)).status).toBe(200);
      expect((await api(cluster.url(owner), cluster.adminKey, 'POST', `/v1/transactions/${a[2]!.transactionId}/rollback`)).status).toBe(200);
      // The index writes for b happened; then they are "lost".
      const deadline = Date.now() + 10_000;
      while ((await Promise.all(b.map((h) => index.getTransaction(h.transactionId)))).some((item) => item === undefined)) {
        if (Date.now() > deadline) throw new Error('the index never listed b');
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const h of b) await index.deleteTransaction(h.transactionId);

      // Commits of c in flight (directly at the owner) when the owner dies.
      const inflight = c.map((h) => api(cluster.url(owner), cluster.adminKey, 'POST', `/v1/transactions/${h.transactionId}/commit`).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 15));
      await cluster.kill(owner, 'SIGKILL');
      await Promise.all(inflight);
      await cluster.startBroker(owner);

      // Everything resolved before the crash is still resolved; asking again changes nothing.
      expect((await commit(a[0]!)).json).toMatchObject({ state: 'COMMITTED' });
      expect((await commit(a[2]!)).json.error.code).toBe('TRANSACTION_ALREADY_RESOLVED');
      expect((await state(cluster, 1 - owner, a[1]!.transactionId))['state']).toBe('COMMITTED');
      // Unresolved ones resolve now, through either broker.
      expect((await commit(a[3]!, owner)).json).toMatchObject({ state: 'COMMITTED' });
      expect((await retrying(() => api(cluster.url(1 - owner), cluster.adminKey, 'POST', `/v1/transactions/${a[4]!.transactionId}/rollback`))).json).toMatchObject({
        state: 'ROLLED_BACK',
      });
      // Every commit of c again, twice at once: some were stored before the crash, some not.
      const again = await Promise.all([...c, ...c].map((h, i) => commit(h, i % 2)));
      for (const r of again) expect(r.json, JSON.stringify(r.json)).toMatchObject({ state: 'COMMITTED' });
      // b's index items come back from the log, and the check-back commits them.
      await sweepUntil(sweep(cluster), async () =>
        (await Promise.all(b.map((h) => state(cluster, 0, h.transactionId)))).every((s) => s['state'] === 'COMMITTED'),
      );
      for (const h of b) expect((await state(cluster, 1, h.transactionId))['resolvedBy']).toBe('CHECK');

      const got = await counts('g-crash', 'tx-crash');
      const expected = ['a0', 'a1', 'a3', 'b0', 'b1', 'b2', ...c.map((_, i) => `c${i}`)];
      expect([...got.keys()].sort()).toEqual(expected.sort());
      expect([...got.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await endpoint.close();
    }
  });
});
