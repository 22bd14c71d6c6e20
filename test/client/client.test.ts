import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Producer,
  PushConsumer,
  SimpleConsumer,
  SkyrocketClient,
  SkyrocketError,
  clientChannels,
  type ConsumerErrorEvent,
  type ReceivedMessage,
} from '../../client/index.ts';
import { TestCluster } from '../broker/cluster.ts';

/**
 * The SDK against a real two-broker cluster over real HTTP. Topics spread their queues over both
 * broker groups, so requests through one broker are forwarded to the other.
 */
let cluster: TestCluster;
let admin: SkyrocketClient;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  admin = new SkyrocketClient({ endpoint: cluster.url(0), apiKey: cluster.adminKey });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

/** A `fetch` that counts requests and hands them to the real one. */
function countingFetch(): { fetch: typeof globalThis.fetch; requests: string[] } {
  const requests: string[] = [];
  return {
    requests,
    fetch: (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${String(input)}`);
      return globalThis.fetch(input, init);
    },
  };
}

async function setup(topic: string, group?: string, queues = 4): Promise<void> {
  await admin.createTopic({ name: topic, queues });
  if (group !== undefined) await admin.createGroup({ name: group });
}

/** Receives until `count` messages came (acking them unless told not to), or 15 s passed. */
async function drain(consumer: SimpleConsumer, count: number, ack = true): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  const deadline = Date.now() + 15_000;
  while (got.length < count && Date.now() < deadline) {
    const batch = await consumer.receive(32, { waitMs: 500 });
    if (ack && batch.length > 0) expect((await consumer.ack(batch)).failed).toEqual([]);
    got.push(...batch);
  }
  return got;
}

function consumerOptions(group: string, topic: string) {
  return { endpoint: cluster.url(1), apiKey: cluster.adminKey, group, topic };
}

/** The error `call` fails with, polling for up to 5 s while it still succeeds. */
async function failureOf(call: () => Promise<unknown>): Promise<unknown> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error !== undefined || Date.now() > deadline) return error;
    await sleep(100);
  }
}

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP proxy on `port` to a broker: the "port that refuses first" starts answering. */
async function proxy(port: number, target: string): Promise<net.Server> {
  const { hostname, port: targetPort } = new URL(target);
  const server = net.createServer((socket) => {
    const upstream = net.connect(Number(targetPort), hostname);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

describe('SkyrocketClient', () => {
  it('administers topics and groups, and maps error answers to SkyrocketError', async () => {
    const topic = await admin.createTopic({ name: 'c-admin', queues: 4 });
    expect(topic).toEqual({ name: 'c-admin', type: 'NORMAL', queues: 4, readable: true, writable: true });
    expect(await admin.getTopic('c-admin')).toEqual(topic);
    expect((await admin.listTopics()).map((t) => t.name)).toContain('c-admin');
    const route = await admin.getRoute('c-admin');
    expect(new Set(route.queues.map((q) => q.brokerGroup))).toEqual(new Set(['bg-1', 'bg-2']));

    const group = await admin.createGroup({ name: 'c-admins', mode: 'BROADCASTING', maxDeliveryAttempts: 5 });
    expect(group).toEqual({ name: 'c-admins', mode: 'BROADCASTING', orderly: false, maxDeliveryAttempts: 5 });
    expect((await admin.listGroups()).map((g) => g.name)).toContain('c-admins');
    expect(await admin.getGroup('c-admins')).toMatchObject({ name: 'c-admins', totalLag: 0 });

    const duplicate = await admin.createTopic({ name: 'c-admin' }).catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(SkyrocketError);
    expect(duplicate).toMatchObject({ code: 'ALREADY_EXISTS', httpStatus: 409, retriable: false });
    const badQueues = await admin.createTopic({ name: 'c-bad', queues: 0 }).catch((e: unknown) => e);
    expect(badQueues).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'queues' });

    await admin.deleteGroup('c-admins');
    await admin.deleteTopic('c-admin');
    // The broker drops its cached copy on its next refresh, not at once (even the broker that deleted).
    expect(await failureOf(() => admin.getTopic('c-admin'))).toMatchObject({ code: 'TOPIC_NOT_FOUND', httpStatus: 404 });
    expect(await failureOf(() => admin.getGroup('c-admins'))).toMatchObject({ code: 'CONSUMER_GROUP_NOT_FOUND' });

    const stranger = new SkyrocketClient({ endpoint: cluster.url(1), apiKey: 'sk_wrong' });
    await expect(stranger.listTopics()).rejects.toMatchObject({ code: 'UNAUTHORIZED', httpStatus: 401, retriable: false });
  });

  it('sends, pulls by offset, finds by id and key through the other broker, and moves offsets', async () => {
    await setup('c-lookup', 'c-lookers');
    const sent = await admin.send('c-lookup', [
      { body: 'a', keys: ['k-a'], tag: 't', properties: { region: 'eu' } },
      { body: 'b', keys: ['k-b'] },
    ]);
    expect(sent).toHaveLength(2);
    const other = new SkyrocketClient({ endpoint: cluster.url(1), apiKey: cluster.adminKey });
    const byId = await other.getMessage(sent[0]!.messageId);
    expect(byId).toMatchObject({ messageId: sent[0]!.messageId, topic: 'c-lookup', tag: 't', keys: ['k-a'], properties: { region: 'eu' } });
    expect(byId.bodyText()).toBe('a');
    expect((await other.queryByKey('c-lookup', 'k-b')).map((m) => m.bodyText())).toEqual(['b']);
    expect(await other.queryByKey('c-lookup', 'k-b', { from: 0, to: 1 })).toEqual([]);

    const pulled = await other.pull('c-lookup', sent[1]!.queueId, { offset: sent[1]!.queueOffset, max: 1 });
    expect(pulled.status).toBe('FOUND');
    expect(pulled.messages.map((m) => m.messageId)).toEqual([sent[1]!.messageId]);
    expect(pulled.nextOffset).toBe(sent[1]!.queueOffset + 1);

    const offsets = await other.getOffsets('c-lookers', 'c-lookup');
    expect(offsets.map((o) => o.queueId)).toEqual([0, 1, 2, 3]);
    const moved = await other.setOffset('c-lookers', { topic: 'c-lookup', queueId: sent[0]!.queueId, offset: sent[0]!.queueOffset + 1 });
    expect(moved).toMatchObject({ queueId: sent[0]!.queueId, committedOffset: sent[0]!.queueOffset + 1 });
  });
});

describe('Producer', () => {
  it('coalesces concurrent sends into few requests and gives each caller its own result', async () => {
    await setup('c-coalesce');
    const counter = countingFetch();
    const producer = new Producer({ endpoint: cluster.url(0), apiKey: cluster.adminKey, topic: 'c-coalesce', fetch: counter.fetch });
    const bodies = Array.from({ length: 500 }, (_, i) => `m-${i}`);
    const results = await Promise.all(bodies.map((body) => producer.send({ body, keys: [body] })));
    // 500 sends at once fill one batch of 256 and another of 244: two requests, not 500.
    expect(counter.requests).toHaveLength(2);
    expect(new Set(results.map((r) => r.messageId)).size).toBe(500);
    // Each result names the caller's own message: read every queue and match by position.
    const stored = new Map<string, string>();
    for (let queueId = 0; queueId < 4; queueId++) {
      const page = await admin.pull('c-coalesce', queueId, { max: 1024 });
      for (const m of page.messages) stored.set(`${m.queueId}/${m.queueOffset}`, m.bodyText());
    }
    expect(stored.size).toBe(500);
    results.forEach((r, i) => expect(stored.get(`${r.queueId}/${r.queueOffset}`)).toBe(bodies[i]));

    // Sends spread over time still share requests within the linger; a full batch goes at once.
    const small = countingFetch();
    const batched = new Producer({ endpoint: cluster.url(1), apiKey: cluster.adminKey, topic: 'c-coalesce', fetch: small.fetch, maxBatchMessages: 10, lingerMs: 1000 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 30 }, (_, i) => batched.send(`n-${i}`)));
    expect(small.requests).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(1000);
    await Promise.all([producer.close(), batched.close()]);
  });

  it('batches FIFO sends per message group and keeps each group in send order', async () => {
    await admin.createTopic({ name: 'c-fifo', queues: 4, type: 'FIFO' });
    const counter = countingFetch();
    const producer = new Producer({ endpoint: cluster.url(1), apiKey: cluster.adminKey, topic: 'c-fifo', fetch: counter.fetch });
    const groups = ['g1', 'g2', 'g3', 'g4'];
    const sends = groups.flatMap((g) => Array.from({ length: 5 }, (_, i) => ({ g, result: producer.send({ body: `${g}-${i}`, messageGroup: g }) })));
    const results = await Promise.all(sends.map(async (s) => ({ g: s.g, ...(await s.result) })));
    // Groups hashed to different broker groups cannot share a batch: one request per group.
    expect(counter.requests).toHaveLength(groups.length);
    for (const g of groups) {
      const mine = results.filter((r) => r.g === g);
      expect(new Set(mine.map((r) => r.queueId)).size).toBe(1);
      expect(mine.map((r) => r.queueOffset)).toEqual([...mine.map((r) => r.queueOffset)].sort((a, b) => a - b));
    }
    await producer.close();
  });

  it('fails only the bad message of a coalesced batch, naming its own field', async () => {
    await setup('c-poison');
    const counter = countingFetch();
    const producer = new Producer({ endpoint: cluster.url(0), apiKey: cluster.adminKey, topic: 'c-poison', fetch: counter.fetch });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => producer.send(i === 4 ? { body: 'bad', tag: 'a|b' } : { body: `ok-${i}` })),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', ...Array(5).fill('fulfilled')]);
    expect((outcomes[4] as PromiseRejectedResult).reason).toMatchObject({ code: 'ILLEGAL_MESSAGE_TAG', field: 'message.tag' });
    expect(counter.requests).toHaveLength(2);
    // sendBatch is all or nothing, and names the position in the caller's batch.
    await expect(producer.sendBatch(['x', { body: 'y', keys: [''] }])).rejects.toMatchObject({ code: 'ILLEGAL_MESSAGE_KEY', field: 'messages[1].keys[0]' });
    const [one, two] = await producer.sendBatch(['x', new Uint8Array([1, 2])]);
    const owners = (await admin.getRoute('c-poison')).queues;
    expect(owners[two!.queueId]!.brokerGroup).toBe(owners[one!.queueId]!.brokerGroup);
    await producer.close();
    await expect(producer.send('late')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('retries while the endpoint refuses connections, then succeeds', async () => {
    await setup('c-retry');
    const port = await freePort();
    const counter = countingFetch();
    const retries: unknown[] = [];
    const onRetry = (event: unknown): void => void retries.push(event);
    subscribe(clientChannels.retry.name, onRetry);
    const producer = new Producer({
      endpoint: `http://127.0.0.1:${port}`,
      apiKey: cluster.adminKey,
      topic: 'c-retry',
      fetch: counter.fetch,
      retries: 8,
      retryBackoffMs: 100,
    });
    const pending = producer.send('after the outage');
    await sleep(400);
    const server = await proxy(port, cluster.url(1));
    try {
      const result = await pending;
      expect(counter.requests.length).toBeGreaterThan(1);
      expect(retries.length).toBe(counter.requests.length - 1);
      expect((await admin.getMessage(result.messageId)).bodyText()).toBe('after the outage');
    } finally {
      unsubscribe(clientChannels.retry.name, onRetry);
      await producer.close();
      server.close();
    }
  });

  it('gives up after its retries with a retriable SERVICE_UNAVAILABLE, and times out with REQUEST_TIMEOUT', async () => {
    const counter = countingFetch();
    const refused = new Producer({ endpoint: `http://127.0.0.1:${await freePort()}`, apiKey: 'k', topic: 't', fetch: counter.fetch, retries: 2, retryBackoffMs: 10 });
    await expect(refused.send('x')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', retriable: true });
    expect(counter.requests).toHaveLength(3);

    const silent = http.createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const client = new SkyrocketClient({ endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, apiKey: 'k', timeoutMs: 200 });
      await expect(client.listTopics()).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT', retriable: true });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('never retries a non-retriable error: one request each', async () => {
    const counter = countingFetch();
    const producer = new Producer({ endpoint: cluster.url(0), apiKey: cluster.adminKey, fetch: counter.fetch, retryBackoffMs: 1 });
    await expect(producer.send({ topic: 'bad topic!', body: 'x' })).rejects.toMatchObject({ code: 'ILLEGAL_TOPIC', retriable: false });
    expect(counter.requests).toHaveLength(1);
    await expect(producer.send({ topic: 'c-no-such-topic', body: 'x' })).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    expect(counter.requests).toHaveLength(2);
    await expect(producer.send('no topic at all')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'topic' });
    expect(counter.requests).toHaveLength(2);
    await producer.close();
  });

  it('round-trips binary and text bodies byte for byte', async () => {
    await setup('c-binary', 'c-binary-readers', 2);
    const producer = new Producer({ endpoint: cluster.url(0), apiKey: cluster.adminKey, topic: 'c-binary' });
    const bytes = new Uint8Array(256).map((_, i) => i);
    const invalidUtf8 = new Uint8Array([0xc3, 0x28, 0xff, 0x00]);
    const text = 'héllo, 世界 🚀';
    // A string that looks like base64 must stay text.
    const sent = await Promise.all([producer.send(bytes), producer.send(invalidUtf8), producer.send(text), producer.send('AAAA')]);
    const byId = await admin.getMessage(sent[0]!.messageId);
    expect(byId.body).toEqual(Buffer.from(bytes));
    const got = await drain(new SimpleConsumer(consumerOptions('c-binary-readers', 'c-binary')), 4);
    const bodies = new Map(got.map((m) => [m.messageId, m]));
    expect(bodies.get(sent[0]!.messageId)!.body).toEqual(Buffer.from(bytes));
    expect(bodies.get(sent[1]!.messageId)!.body).toEqual(Buffer.from(invalidUtf8));
    expect(bodies.get(sent[2]!.messageId)!.bodyText()).toBe(text);
    expect(bodies.get(sent[3]!.messageId)!.bodyText()).toBe('AAAA');
    await producer.close();
  });
});

describe('SimpleConsumer', () => {
  it('receives, acks and changes invisibility with a fresh receipt handle', async () => {
    await setup('c-simple', 'c-simple-group');
    await admin.send('c-simple', ['one', 'two', 'three', 'four', 'five'].map((body) => ({ body })));
    const consumer = new SimpleConsumer({ ...consumerOptions('c-simple-group', 'c-simple'), invisibleMs: 60_000 });
    const got = await drain(consumer, 5, false);
    expect(got.map((m) => m.bodyText()).sort()).toEqual(['five', 'four', 'one', 'three', 'two']);
    expect(got.every((m) => m.deliveryAttempt === 1 && m.receiptHandle.length > 0)).toBe(true);

    const [kept, ...rest] = got;
    const acked = await consumer.ack(rest);
    expect(acked.acked).toHaveLength(4);
    expect(acked.failed).toEqual([]);

    const oldHandle = kept!.receiptHandle;
    await consumer.changeInvisibility(kept!, 10_000);
    expect(kept!.receiptHandle).not.toBe(oldHandle);
    await expect(consumer.ack(oldHandle)).rejects.toMatchObject({ code: 'INVALID_RECEIPT_HANDLE', retriable: false });
    await expect(consumer.changeInvisibility(kept!, 5)).rejects.toMatchObject({ code: 'ILLEGAL_INVISIBLE_TIME' });
    // The broker answers a count and the refusals; the SDK lists the acked handles itself.
    const mixed = await consumer.ack([oldHandle, kept!.receiptHandle, kept!.receiptHandle]);
    expect(mixed.acked).toEqual([kept!.receiptHandle]);
    expect(mixed.failed.map((f) => [f.receiptHandle, f.code])).toEqual([
      [oldHandle, 'INVALID_RECEIPT_HANDLE'],
      [kept!.receiptHandle, 'INVALID_RECEIPT_HANDLE'],
    ]);
    expect(await consumer.receive(32, { waitMs: 300 })).toEqual([]);
  });

  it('acks the previous batch inside the next receive, listing refused handles instead of throwing', async () => {
    await setup('c-ack-receive', 'c-ack-receive-group');
    await admin.send('c-ack-receive', ['one', 'two', 'three'].map((body) => ({ body })));
    const consumer = new SimpleConsumer({ ...consumerOptions('c-ack-receive-group', 'c-ack-receive'), invisibleMs: 60_000 });
    const got = await drain(consumer, 3, false);
    expect(got).toHaveLength(3);
    await admin.send('c-ack-receive', [{ body: 'four' }]);
    const next = await consumer.ackAndReceive(got, 32, { waitMs: 2_000 });
    expect(next.ackFailed).toEqual([]);
    expect(next.messages.map((m) => m.bodyText())).toEqual(['four']);
    // The three are acked: used again, each handle is refused, and the call still answers.
    const again = await consumer.ackAndReceive([...got, next.messages[0]!], 32, { waitMs: 300 });
    expect(again.messages).toEqual([]);
    expect(again.ackFailed.map((f) => [f.receiptHandle, f.code])).toEqual(got.map((m) => [m.receiptHandle, 'INVALID_RECEIPT_HANDLE']));
    expect(await consumer.receive(32, { waitMs: 300 })).toEqual([]);
  });

  it('filters by tag and validates its options before any request', async () => {
    await setup('c-filter', 'c-filter-group', 2);
    await admin.send('c-filter', [0, 1, 2, 3, 4, 5].map((i) => ({ body: String(i), tag: i % 2 === 0 ? 'even' : 'odd' })));
    const evens = new SimpleConsumer({ ...consumerOptions('c-filter-group', 'c-filter'), filter: 'even' });
    expect((await drain(evens, 3)).map((m) => m.bodyText()).sort()).toEqual(['0', '2', '4']);
    expect(() => new SimpleConsumer({ ...consumerOptions('g', 't'), invisibleMs: 1000 })).toThrow(
      expect.objectContaining({ code: 'ILLEGAL_INVISIBLE_TIME' }),
    );
  });
});

describe('PushConsumer', () => {
  it('runs at most `concurrency` handlers at once and acks every handled message', async () => {
    await setup('c-push', 'c-pushers');
    const bodies = Array.from({ length: 24 }, (_, i) => `p-${i}`);
    await admin.send('c-push', bodies.map((body) => ({ body })));
    let active = 0;
    let maxActive = 0;
    const handled: string[] = [];
    const consumer = new PushConsumer({
      ...consumerOptions('c-pushers', 'c-push'),
      concurrency: 4,
      handler: async (message) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(40);
        handled.push(message.bodyText());
        active--;
      },
    });
    await consumer.start();
    const deadline = Date.now() + 15_000;
    while (handled.length < bodies.length && Date.now() < deadline) await sleep(20);
    await consumer.stop();
    expect([...handled].sort()).toEqual([...bodies].sort());
    expect(maxActive).toBe(4);
    const status = await admin.getGroup('c-pushers');
    expect(status.lag.filter((q) => q.topic === 'c-push').every((q) => q.lag === 0 && q.inflight === 0)).toBe(true);
  });

  it('stop() waits for handlers in flight and their acks; start() rejects a wrong group', async () => {
    await setup('c-stop', 'c-stoppers', 2);
    await admin.send('c-stop', [{ body: 'slow' }]);
    let started = false;
    let finished = false;
    const consumer = new PushConsumer({
      ...consumerOptions('c-stoppers', 'c-stop'),
      handler: async () => {
        started = true;
        await sleep(300);
        finished = true;
      },
    });
    await consumer.start();
    while (!started) await sleep(10);
    await consumer.stop();
    expect(finished).toBe(true);
    const after = new SimpleConsumer(consumerOptions('c-stoppers', 'c-stop'));
    expect(await after.receive(32, { waitMs: 300 })).toEqual([]);

    const wrong = new PushConsumer({ ...consumerOptions('c-no-such-group', 'c-stop'), handler: () => undefined });
    await expect(wrong.start()).rejects.toMatchObject({ code: 'CONSUMER_GROUP_NOT_FOUND' });
  });

  it('iterates with for await, acking each message when the loop moves on, and stops cleanly on break', async () => {
    await setup('c-iterate', 'c-iterators');
    const bodies = Array.from({ length: 10 }, (_, i) => `i-${i}`);
    await admin.send('c-iterate', bodies.map((body) => ({ body })));
    const consumer = new PushConsumer({ ...consumerOptions('c-iterators', 'c-iterate'), concurrency: 4 });
    const seen: string[] = [];
    for await (const message of consumer) {
      seen.push(message.bodyText());
      if (seen.length === bodies.length) {
        await consumer.ack(message);
        break;
      }
    }
    expect([...seen].sort()).toEqual([...bodies].sort());
    const status = await admin.getGroup('c-iterators');
    expect(status.lag.filter((q) => q.topic === 'c-iterate').every((q) => q.lag === 0 && q.inflight === 0)).toBe(true);

    // stop() ends a loop that is waiting for messages.
    const waiting = (async () => {
      for await (const message of consumer) void message;
    })();
    await sleep(200);
    await consumer.stop();
    await waiting;
  });

  describe.concurrent('redelivery after a failure (10 s: the broker\'s shortest invisibility)', () => {
    it('redelivers a message whose handler threw, after retryDelayMs rather than invisibleMs', async ({ expect }) => {
      await setup('c-fail', 'c-failers', 2);
      await admin.send('c-fail', [{ body: 'flaky' }]);
      const errors: ConsumerErrorEvent[] = [];
      const onError = (event: unknown): void => {
        if ((event as ConsumerErrorEvent).group === 'c-failers') errors.push(event as ConsumerErrorEvent);
      };
      subscribe(clientChannels.consumerError.name, onError);
      const attempts: Array<{ attempt: number; at: number }> = [];
      const consumer = new PushConsumer({
        ...consumerOptions('c-failers', 'c-fail'),
        invisibleMs: 60_000,
        retryDelayMs: 10_000,
        handler: async (message) => {
          attempts.push({ attempt: message.deliveryAttempt, at: Date.now() });
          if (message.deliveryAttempt === 1) throw new Error('not yet');
        },
      });
      try {
        await consumer.start();
        const deadline = Date.now() + 20_000;
        while (attempts.length < 2 && Date.now() < deadline) await sleep(50);
        await consumer.stop();
        expect(attempts.map((a) => a.attempt)).toEqual([1, 2]);
        const gap = attempts[1]!.at - attempts[0]!.at;
        expect(gap).toBeGreaterThanOrEqual(9_000);
        expect(gap).toBeLessThan(20_000);
        expect(errors.map((e) => e.stage)).toEqual(['handler']);
        const status = await admin.getGroup('c-failers');
        expect(status.lag.filter((q) => q.topic === 'c-fail').every((q) => q.lag === 0 && q.inflight === 0)).toBe(true);
      } finally {
        unsubscribe(clientChannels.consumerError.name, onError);
        await consumer.stop();
      }
    }, 30_000);

    it('leaves the message a for-await body threw on unacked, and it comes back', async ({ expect }) => {
      await setup('c-throw', 'c-throwers', 2);
      await admin.send('c-throw', [{ body: 'boom' }]);
      const consumer = new PushConsumer({ ...consumerOptions('c-throwers', 'c-throw'), invisibleMs: 60_000, retryDelayMs: 10_000 });
      const thrown = await (async () => {
        for await (const message of consumer) throw new Error(`failed on ${message.bodyText()}`);
      })().catch((e: unknown) => e);
      expect((thrown as Error).message).toBe('failed on boom');
      const status = await admin.getGroup('c-throwers');
      expect(status.lag.filter((q) => q.topic === 'c-throw').reduce((n, q) => n + q.inflight, 0)).toBe(1);
      const again = await drain(new SimpleConsumer({ ...consumerOptions('c-throwers', 'c-throw'), waitMs: 15_000 }), 1);
      expect(again.map((m) => [m.bodyText(), m.deliveryAttempt])).toEqual([['boom', 2]]);
    }, 30_000);
  });
});
