/**
 * Lambda consumers end to end: two broker processes whose dispatchers invoke functions through
 * `@aws-sdk/client-lambda` at the local Invoke endpoint, which runs the handlers in this process
 * so the tests can watch them (what each invocation got, how many ran at once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SkyrocketBatchEvent, SkyrocketRecord } from '../../lambdas/consumer-kit/index.ts';
import { batchHandler } from '../../lambdas/consumer-kit/index.ts';
import { InlineFunctions, LocalLambdaServer } from '../../lambdas/local-invoke/index.ts';
import { api, TestCluster } from '../broker/cluster.ts';

const functions = new InlineFunctions();
let lambda: LocalLambdaServer;
let cluster: TestCluster;

beforeAll(async () => {
  lambda = await LocalLambdaServer.start({ functions });
  cluster = await new TestCluster({
    brokers: 2,
    extraEnv: {
      SKYROCKET_LAMBDA_ENDPOINT: lambda.url,
      SKYROCKET_DISPATCH_REFRESH_MS: '300',
      // Batches stay hidden 10 s + 30 s: never reached here; a restart makes them visible at once.
      SKYROCKET_LAMBDA_TIMEOUT_MS: '10000',
      SKYROCKET_DISPATCH_BACKOFF_MAX_MS: '1000',
    },
  }).start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await lambda?.close();
});

const admin = (broker: number, method: string, path: string, body?: unknown) => api(cluster.url(broker), cluster.adminKey, method, path, body);

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A topic, a group and the group's Lambda subscription to the topic. */
async function setup(
  name: string,
  options: { queues?: number; type?: string; orderly?: boolean; maxDeliveryAttempts?: number; subscription?: Record<string, unknown> },
): Promise<void> {
  const topic = await admin(0, 'POST', '/v1/topics', { name, queues: options.queues ?? 4, type: options.type ?? 'NORMAL' });
  expect(topic.status, JSON.stringify(topic.json)).toBe(201);
  const group = await admin(0, 'POST', '/v1/groups', {
    name: `${name}-group`,
    orderly: options.orderly ?? false,
    maxDeliveryAttempts: options.maxDeliveryAttempts ?? 16,
  });
  expect(group.status, JSON.stringify(group.json)).toBe(201);
  const sub = await admin(1, 'PUT', `/v1/groups/${name}-group/lambda-subscriptions/${name}`, { functionName: `${name}-fn`, ...options.subscription });
  expect(sub.status, JSON.stringify(sub.json)).toBe(200);
  expect(sub.json.lambdaSubscriptions).toEqual([expect.objectContaining({ topic: name, functionName: `${name}-fn` })]);
}

async function send(broker: number, topic: string, messages: unknown[]): Promise<string[]> {
  const r = await admin(broker, 'POST', `/v1/topics/${topic}/messages`, { messages });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.results.map((x: { messageId: string }) => x.messageId);
}

async function totalLag(group: string): Promise<number> {
  return (await admin(1, 'GET', `/v1/groups/${group}`)).json.totalLag as number;
}

/** A sample of a Prometheus counter on one broker (0 when absent). */
async function metric(broker: number, name: string, labels: Record<string, string>): Promise<number> {
  const response = await fetch(`${cluster.url(broker)}/metrics`, { headers: { authorization: `Bearer ${cluster.adminKey}` } });
  const text = await response.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

const count = <T>(values: readonly T[]): Map<T, number> => {
  const m = new Map<T, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
};

describe('Lambda consumers', () => {
  it('delivers batches of at most batchSize with the message fields, each message once', async () => {
    const events: SkyrocketBatchEvent[] = [];
    functions.set('batches-fn', async (event) => {
      events.push(event as SkyrocketBatchEvent);
      return { batchItemFailures: [] };
    });
    await setup('batches', { subscription: { batchSize: 5, maxConcurrency: 2 } });
    const ids = [
      ...(await send(0, 'batches', Array.from({ length: 23 }, (_, i) => ({ body: `a-${i}`, tag: 'even', keys: [`k${i}`], properties: { n: String(i) } })))),
      ...(await send(1, 'batches', Array.from({ length: 17 }, (_, i) => ({ body: `b-${i}` })))),
      ...(await send(1, 'batches', [{ body: Buffer.from([0xff, 0x00, 0x81]).toString('base64'), bodyEncoding: 'base64' }])),
    ];
    const seen = (): SkyrocketRecord[] => events.flatMap((e) => e.records);
    await until('every message delivered', () => new Set(seen().map((r) => r.messageId)).size === ids.length);
    await until('the group caught up', async () => (await totalLag('batches-group')) === 0);

    expect([...count(seen().map((r) => r.messageId)).values()].every((n) => n === 1)).toBe(true);
    expect(events.every((e) => e.records.length >= 1 && e.records.length <= 5)).toBe(true);
    expect(events.some((e) => e.records.length > 1)).toBe(true);
    expect(new Set(events.map((e) => e.brokerGroup))).toEqual(new Set(['bg-1', 'bg-2']));
    expect(events[0]).toMatchObject({ eventSource: 'skyrocket', eventVersion: 1, group: 'batches-group', topic: 'batches' });
    const a7 = seen().find((r) => r.body === 'a-7');
    expect(a7).toMatchObject({ topic: 'batches', bodyEncoding: 'utf8', tag: 'even', keys: ['k7'], properties: { n: '7' }, deliveryAttempt: 1 });
    expect(a7).not.toHaveProperty('receiptHandle');
    expect(seen().find((r) => r.bodyEncoding === 'base64')?.body).toBe('/wCB');
  });

  it('retries failed records, dead-letters them after the limit, and retries a whole batch on a function error', async () => {
    const attempts = new Map<string, number[]>();
    let thrown = false;
    functions.set(
      'retries-fn',
      batchHandler(async (record) => {
        attempts.set(record.body, [...(attempts.get(record.body) ?? []), record.deliveryAttempt]);
        if (record.body.startsWith('poison')) throw new Error('cannot handle this');
        if (record.body === 'flaky' && record.deliveryAttempt === 1) throw new Error('not yet');
      }),
    );
    await setup('retries', { queues: 2, maxDeliveryAttempts: 3, subscription: { batchSize: 10, retryDelayMs: 100 } });
    const bodies = ['ok-1', 'ok-2', 'ok-3', 'poison-1', 'poison-2', 'flaky'];
    const ids = await send(0, 'retries', bodies.map((body) => ({ body })));
    const poisonIds = ids.filter((_, i) => bodies[i]!.startsWith('poison')).sort();

    const dlq = async (): Promise<string[]> => (await admin(1, 'GET', '/v1/groups/retries-group/dlq')).json.messages.map((m: { messageId: string }) => m.messageId).sort();
    await until('both poison messages dead-lettered', async () => (await dlq()).length === 2);
    expect(await dlq()).toEqual(poisonIds);
    await until('the group caught up', async () => (await totalLag('retries-group')) === 0);
    expect(attempts.get('poison-1')).toEqual([1, 2, 3]);
    expect(attempts.get('poison-2')).toEqual([1, 2, 3]);
    expect(attempts.get('flaky')).toEqual([1, 2]);
    for (const ok of ['ok-1', 'ok-2', 'ok-3']) expect(attempts.get(ok)).toEqual([1]);

    // A function error fails the whole batch: every record comes back, its attempt counted.
    const seen: Array<[string, number]> = [];
    functions.set('whole-fn', async (event) => {
      const records = (event as SkyrocketBatchEvent).records;
      for (const r of records) seen.push([r.body, r.deliveryAttempt]);
      if (!thrown) {
        thrown = true;
        throw new Error('the database is down');
      }
      return null;
    });
    await setup('whole', { queues: 1, subscription: { batchSize: 10, retryDelayMs: 100 } });
    await send(0, 'whole', [{ body: 'w1' }, { body: 'w2' }, { body: 'w3' }]);
    await until('the batch handled twice', () => seen.length === 6);
    expect(seen).toEqual([['w1', 1], ['w2', 1], ['w3', 1], ['w1', 2], ['w2', 2], ['w3', 2]]);
    await until('the group caught up', async () => (await totalLag('whole-group')) === 0);
    expect(await metric(0, 'skyrocket_lambda_invocations_total', { group: 'whole-group', outcome: 'function-error' })).toBe(1);
  });

  it('keeps FIFO order per message group, one batch in flight per message group', async () => {
    const handled = new Map<string, number[]>();
    const succeeded = new Map<string, number[]>();
    const active = new Set<string>();
    let overlaps = 0;
    let sharedBatches = 0;
    const failedOnce = new Set<string>();
    functions.set('fifo-fn', async (event) => {
      const records = (event as SkyrocketBatchEvent).records;
      const groups = records.map((r) => r.messageGroup as string);
      if (new Set(groups).size !== groups.length) sharedBatches++;
      for (const g of groups) {
        if (active.has(g)) overlaps++;
        active.add(g);
      }
      await new Promise((r) => setTimeout(r, 15));
      const failures: Array<{ itemIdentifier: string }> = [];
      for (const r of records) {
        const seq = Number(r.body.split(':')[1]);
        handled.set(r.messageGroup!, [...(handled.get(r.messageGroup!) ?? []), seq]);
        // The third message of each group fails once: its group must wait for it.
        if (seq === 2 && !failedOnce.has(r.messageGroup!)) {
          failedOnce.add(r.messageGroup!);
          failures.push({ itemIdentifier: r.messageId });
        } else {
          succeeded.set(r.messageGroup!, [...(succeeded.get(r.messageGroup!) ?? []), seq]);
        }
      }
      for (const g of groups) active.delete(g);
      return { batchItemFailures: failures };
    });
    await setup('fifo', { queues: 2, type: 'FIFO', orderly: true, subscription: { batchSize: 4, maxConcurrency: 3, retryDelayMs: 50 } });
    const groups = Array.from({ length: 6 }, (_, g) => `customer-${g}`);
    await Promise.all(
      groups.map((g, i) => send(i % 2, 'fifo', Array.from({ length: 8 }, (_, seq) => ({ body: `${g}:${seq}`, messageGroup: g })))),
    );
    await until('every message handled', () => groups.every((g) => (succeeded.get(g)?.length ?? 0) === 8));
    for (const g of groups) {
      expect(succeeded.get(g)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(handled.get(g)).toEqual([0, 1, 2, 2, 3, 4, 5, 6, 7]);
    }
    expect(overlaps).toBe(0);
    expect(sharedBatches).toBe(0);
  });

  it('runs at most maxConcurrency invocations per subscription on each broker', async () => {
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    let done = 0;
    functions.set('concurrency-fn', async (event) => {
      const { brokerGroup, records } = event as SkyrocketBatchEvent;
      running.set(brokerGroup, (running.get(brokerGroup) ?? 0) + 1);
      most.set(brokerGroup, Math.max(most.get(brokerGroup) ?? 0, running.get(brokerGroup)!));
      await new Promise((r) => setTimeout(r, 80));
      running.set(brokerGroup, running.get(brokerGroup)! - 1);
      done += records.length;
      return {};
    });
    await setup('concurrency', { queues: 4, subscription: { batchSize: 1, maxConcurrency: 3 } });
    await send(0, 'concurrency', Array.from({ length: 30 }, (_, i) => ({ body: `x${i}` })));
    await send(1, 'concurrency', Array.from({ length: 30 }, (_, i) => ({ body: `y${i}` })));
    await until('every message handled', () => done === 60);
    expect(most.get('bg-1')).toBe(3);
    expect(most.get('bg-2')).toBe(3);
    expect(lambda.stats('concurrency-fn').maxRunning).toBeLessThanOrEqual(6);
  });

  it('backs off while the function is throttled, then delivers without spending delivery attempts', async () => {
    const records: SkyrocketRecord[] = [];
    let firstAt = 0;
    functions.set('throttled-fn', async (event) => {
      firstAt ||= Date.now();
      records.push(...(event as SkyrocketBatchEvent).records);
      return {};
    });
    await setup('throttled', { queues: 2, maxDeliveryAttempts: 2, subscription: { batchSize: 5, maxConcurrency: 2 } });
    const throttledUntil = Date.now() + 2_500;
    lambda.throttle('throttled-fn', 2_500);
    await send(0, 'throttled', Array.from({ length: 8 }, (_, i) => ({ body: `t${i}` })));
    await send(1, 'throttled', Array.from({ length: 8 }, (_, i) => ({ body: `u${i}` })));
    await until('every message handled', () => records.length === 16);
    expect(firstAt).toBeGreaterThanOrEqual(throttledUntil - 50);
    expect(records.every((r) => r.deliveryAttempt === 1)).toBe(true);
    const throttled = lambda.stats('throttled-fn').throttled;
    // Without backoff, four workers would be refused thousands of times in 2.5 s.
    expect(throttled).toBeGreaterThanOrEqual(2);
    expect(throttled).toBeLessThanOrEqual(40);
    expect(await metric(0, 'skyrocket_lambda_invocations_total', { group: 'throttled-group', outcome: 'throttled' })).toBeGreaterThan(0);
    expect((await admin(1, 'GET', '/v1/groups/throttled-group/dlq')).json.messages).toEqual([]);
  });

  it('redelivers a batch in flight when its broker is SIGKILLed: nothing lost, nothing acked twice', async () => {
    const handled: string[] = [];
    let entered: (() => void) | undefined;
    const enteredHold = new Promise<void>((resolve) => (entered = resolve));
    let release: (() => void) | undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    functions.set('crash-fn', async (event) => {
      const records = (event as SkyrocketBatchEvent).records;
      handled.push(...records.map((r) => r.body));
      if (!held && records.some((r) => r.body.startsWith('hold'))) {
        held = true;
        entered!();
        await released; // the broker dies meanwhile: this answer goes nowhere
      }
      return {};
    });
    // One queue: on bg-1, broker 0, the one to kill. Requests go through broker 1.
    const topic = await admin(1, 'POST', '/v1/topics', { name: 'crash', queues: 1 });
    expect(topic.json).toMatchObject({ queues: 1 });
    expect((await admin(1, 'GET', '/v1/topics/crash/route')).json.queues[0].brokerGroup).toBe('bg-1');
    expect((await admin(1, 'POST', '/v1/groups', { name: 'crash-group' })).status).toBe(201);
    expect((await admin(1, 'PUT', '/v1/groups/crash-group/lambda-subscriptions/crash', { functionName: 'crash-fn', batchSize: 10 })).status).toBe(200);

    await send(1, 'crash', Array.from({ length: 5 }, (_, i) => ({ body: `done-${i}` })));
    await until('the first batch handled', () => handled.length === 5);
    await until('the first batch acked', async () => (await totalLag('crash-group')) === 0);
    await new Promise((r) => setTimeout(r, 1_500)); // the consumer state is written to disk every second

    await send(1, 'crash', Array.from({ length: 5 }, (_, i) => ({ body: `hold-${i}` })));
    await enteredHold;
    await cluster.kill(0, 'SIGKILL');
    release!();
    await cluster.startBroker(0);
    await until('the held batch delivered again', () => handled.filter((b) => b.startsWith('hold')).length === 10);
    await until('the group caught up', async () => (await totalLag('crash-group')) === 0);
    await new Promise((r) => setTimeout(r, 500));

    const times = count(handled);
    for (let i = 0; i < 5; i++) {
      expect(times.get(`done-${i}`)).toBe(1);
      expect(times.get(`hold-${i}`)).toBe(2);
    }
    // The restarted broker acked each redelivered message once and no stale handle was refused.
    expect(await metric(0, 'skyrocket_lambda_messages_total', { group: 'crash-group', result: 'acked' })).toBe(5);
    expect(await metric(0, 'skyrocket_lambda_receipt_failures_total', { group: 'crash-group' })).toBe(0);
  });

  it('lets a running invocation finish and ack when its broker is stopped with SIGTERM', async () => {
    const handled: string[] = [];
    let entered: (() => void) | undefined;
    const enteredSlow = new Promise<void>((resolve) => (entered = resolve));
    functions.set('drain-fn', async (event) => {
      const records = (event as SkyrocketBatchEvent).records;
      handled.push(...records.map((r) => r.body));
      entered!();
      await new Promise((r) => setTimeout(r, 700)); // within the brokers' 2 s shutdown grace
      return {};
    });
    expect((await admin(1, 'POST', '/v1/topics', { name: 'drain', queues: 1 })).json.queues).toBe(1);
    expect((await admin(1, 'POST', '/v1/groups', { name: 'drain-group' })).status).toBe(201);
    expect((await admin(1, 'PUT', '/v1/groups/drain-group/lambda-subscriptions/drain', { functionName: 'drain-fn' })).status).toBe(200);
    await send(1, 'drain', [{ body: 'd1' }, { body: 'd2' }]);
    await enteredSlow;
    expect(await cluster.kill(0, 'SIGTERM')).toBe(0);
    await cluster.startBroker(0);
    await until('the group is known to be caught up', async () => (await totalLag('drain-group')) === 0);
    await new Promise((r) => setTimeout(r, 1_000)); // a redelivery would show by now
    expect(handled.sort()).toEqual(['d1', 'd2']);
  });

  it('refuses bad subscriptions and removes them', async () => {
    expect((await admin(0, 'POST', '/v1/groups', { name: 'bad-subs' })).status).toBe(201);
    expect((await admin(0, 'POST', '/v1/topics', { name: 'quiet', queues: 1 })).status).toBe(201);
    const missingTopic = await admin(0, 'PUT', '/v1/groups/bad-subs/lambda-subscriptions/nope', { functionName: 'f' });
    expect(missingTopic.json.error.code).toBe('TOPIC_NOT_FOUND');
    const badFn = await admin(0, 'PUT', '/v1/groups/bad-subs/lambda-subscriptions/quiet', { functionName: 'no spaces allowed' });
    expect(badFn.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'functionName' });
    const badSize = await admin(0, 'PUT', '/v1/groups/bad-subs/lambda-subscriptions/quiet', { functionName: 'f', batchSize: 0 });
    expect(badSize.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'batchSize' });
    const badFilter = await admin(0, 'PUT', '/v1/groups/bad-subs/lambda-subscriptions/quiet', { functionName: 'f', filter: { type: 'SQL92', expression: 'a >' } });
    expect(badFilter.json.error.code).toBe('INVALID_FILTER_EXPRESSION');
    expect((await admin(0, 'POST', '/v1/groups', { name: 'bad-bcast', mode: 'BROADCASTING' })).status).toBe(201);
    const bcast = await admin(0, 'PUT', '/v1/groups/bad-bcast/lambda-subscriptions/quiet', { functionName: 'f' });
    expect(bcast.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'group' });

    const ok = await admin(0, 'PUT', '/v1/groups/bad-subs/lambda-subscriptions/quiet', { functionName: 'f', filter: { type: 'TAG', expression: 'a || b' } });
    expect(ok.json.lambdaSubscriptions).toEqual([
      { topic: 'quiet', functionName: 'f', filter: { type: 'TAG', expression: 'a || b' }, batchSize: 10, maxConcurrency: 2, retryDelayMs: null },
    ]);
    // Broker 1 sees the subscription once its route cache refreshes (every 2 s).
    let seen: unknown;
    for (let i = 0; i < 50 && seen === undefined; i++) {
      seen = (await admin(1, 'GET', '/v1/groups/bad-subs')).json.lambdaSubscriptions;
      if (seen === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toHaveLength(1);
    expect((await admin(1, 'DELETE', '/v1/groups/bad-subs/lambda-subscriptions/quiet')).status).toBe(204);
    expect((await admin(1, 'GET', '/v1/groups/bad-subs')).json).not.toHaveProperty('lambdaSubscriptions');
    expect((await admin(1, 'DELETE', '/v1/groups/bad-subs/lambda-subscriptions/quiet')).json.error.code).toBe('NOT_FOUND');
  });
});
