import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransactionProducer, type TransactionCheck } from '../../client/index.ts';
import { lambdaInvoker } from '../../lambdas/txn-check/txn-check.ts';
import type { TransactionTables } from '../../namesrv/index.ts';
import { api, TestCluster } from '../broker/cluster.ts';
import { checkerEndpoint, createProducerGroup, createTopic, drain, sendHalves, state, sweep, sweepUntil, tables } from './support.ts';

/**
 * Transactional messages on a real two-broker cluster (broker processes, dynalite), with the
 * txn-check sweep run from this process on a short interval. Topics spread over both broker
 * groups, so sends, commits and rollbacks through "the other" broker are forwarded.
 */
let cluster: TestCluster;
let index: TransactionTables;
const logs: string[] = [];

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  for (const b of cluster.brokers) b.child.stdout?.on('data', (chunk: Buffer) => logs.push(`${b.brokerId}: ${chunk.toString()}`));
  index = tables(cluster);
}, 60_000);

afterAll(async () => {
  // A broker that died on its own says why here.
  for (const b of cluster?.brokers ?? []) if (b.child.exitCode !== null && b.child.signalCode === null) console.error(`broker ${b.brokerId} exited ${b.child.exitCode}:`, b.stderr.join('').slice(-4000), logs.join('').slice(-6000));
  await cluster?.stop();
});

async function createGroup(name: string): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups', { name });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('two-phase send', () => {
  it('commits: the message becomes visible once, under the half message id, and commit is idempotent', async () => {
    await createTopic(cluster, 'tx-commit');
    await createGroup('g-commit');
    const halves = await sendHalves(cluster, 0, 'tx-commit', 'pg-commit', ['a', 'b', 'c', 'd']);
    expect(halves.map((h) => h.transactionId)).toEqual(halves.map((h) => expect.stringMatching(/^T1\.bg-\d\.01[0-9A-F]{24}$/)));

    // Invisible: not received, not found by id or key, and listed in the DynamoDB index.
    expect(await drain(cluster, 'g-commit', 'tx-commit', 300)).toEqual([]);
    const byId = await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/messages/${halves[0]!.messageId}`);
    expect(byId.status).toBe(404);
    const byKey = await api(cluster.url(1), cluster.adminKey, 'GET', '/v1/topics/tx-commit/messages?key=key-a');
    expect(byKey.json.messages).toEqual([]);
    await eventually('the index lists the half messages', async () =>
      (await Promise.all(halves.map((h) => index.getTransaction(h.transactionId)))).every((item) => item?.producerGroup === 'pg-commit'),
    );
    expect((await state(cluster, 1, halves[0]!.transactionId)).state).toBe('PREPARED');

    // Commit through both brokers, each one twice.
    for (const [i, h] of halves.entries()) {
      for (const via of [i % 2, (i + 1) % 2]) {
        const r = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${h.transactionId}/commit`);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        expect(r.json).toMatchObject({ transactionId: h.transactionId, messageId: h.messageId, state: 'COMMITTED', resolvedBy: 'PRODUCER', queueId: h.queueId });
      }
    }
    const got = await drain(cluster, 'g-commit', 'tx-commit');
    expect(got.map((m) => m.body).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(new Set(got.map((m) => m.messageId))).toEqual(new Set(halves.map((h) => h.messageId)));

    const visible = await api(cluster.url(1), cluster.adminKey, 'GET', `/v1/messages/${halves[0]!.messageId}`);
    expect(visible.status).toBe(200);
    expect(visible.json).toMatchObject({ messageId: halves[0]!.messageId, topic: 'tx-commit', body: 'a', keys: ['key-a'], properties: {} });
    const keyed = await api(cluster.url(0), cluster.adminKey, 'GET', '/v1/topics/tx-commit/messages?key=key-b');
    expect(keyed.json.messages.map((m: { messageId: string }) => m.messageId)).toEqual([halves[1]!.messageId]);
    await eventually('the index forgets resolved transactions', async () =>
      (await Promise.all(halves.map((h) => index.getTransaction(h.transactionId)))).every((item) => item === undefined),
    );
  });

  it('forwards a transactional send to the broker group of its queue, and commits it there', async () => {
    await createTopic(cluster, 'tx-fifo', 4);
    await createGroup('g-fifo');
    // Message groups hash to queues of both broker groups: about half of these sends are forwarded.
    const halves = [];
    for (let i = 0; i < 8; i++) {
      const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics/tx-fifo/messages', {
        transactional: true,
        producerGroup: 'pg-fifo',
        messages: [{ body: `f${i}`, messageGroup: `customer-${i}` }],
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      halves.push(r.json.results[0]);
    }
    expect(new Set(halves.map((h) => h.transactionId.split('.')[1]))).toEqual(new Set(['bg-1', 'bg-2']));
    for (const h of halves) expect((await api(cluster.url(0), cluster.adminKey, 'POST', `/v1/transactions/${h.transactionId}/commit`)).status).toBe(200);
    const got = await drain(cluster, 'g-fifo', 'tx-fifo');
    expect(got.map((m) => m.body).sort()).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7']);
  });

  it('rolls back: the message is never visible, and rollback is idempotent', async () => {
    await createTopic(cluster, 'tx-rollback');
    await createGroup('g-rollback');
    const halves = await sendHalves(cluster, 1, 'tx-rollback', 'pg-rollback', ['x', 'y']);
    for (const h of halves) {
      for (const via of [0, 1]) {
        const r = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${h.transactionId}/rollback`);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        expect(r.json).toMatchObject({ state: 'ROLLED_BACK', resolvedBy: 'PRODUCER' });
      }
    }
    expect(await drain(cluster, 'g-rollback', 'tx-rollback', 500)).toEqual([]);
    const byId = await api(cluster.url(0), cluster.adminKey, 'GET', `/v1/messages/${halves[0]!.messageId}`);
    expect(byId.status).toBe(404);
    await eventually('the index forgets rolled-back transactions', async () => (await index.getTransaction(halves[1]!.transactionId)) === undefined);
  });

  it('refuses bad input with stable codes', async () => {
    await createTopic(cluster, 'tx-bad', 2);
    const normal = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name: 'plain-bad', queues: 2 });
    expect(normal.status).toBe(201);
    const send = (topic: string, body: Record<string, unknown>) => api(cluster.url(0), cluster.adminKey, 'POST', `/v1/topics/${topic}/messages`, body);
    const expectError = (r: { status: number; json: any }, status: number, code: string, field?: string): void => {
      expect(r.status, JSON.stringify(r.json)).toBe(status);
      expect(r.json.error.code).toBe(code);
      if (field !== undefined) expect(r.json.error.field).toBe(field);
    };
    const one = [{ body: 'm' }];
    expectError(await send('tx-bad', { transactional: true, messages: one }), 400, 'INVALID_ARGUMENT', 'producerGroup');
    expectError(await send('tx-bad', { transactional: 'yes', producerGroup: 'p', messages: one }), 400, 'INVALID_ARGUMENT', 'transactional');
    expectError(await send('tx-bad', { producerGroup: 'p', messages: one }), 400, 'INVALID_ARGUMENT', 'producerGroup');
    expectError(await send('tx-bad', { transactional: true, producerGroup: 'bad group!', messages: one }), 400, 'INVALID_ARGUMENT', 'producerGroup');
    expectError(await send('plain-bad', { transactional: true, producerGroup: 'p', messages: one }), 400, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'transactional');
    expectError(await send('tx-bad', { transactional: true, producerGroup: 'p', messages: [{ body: 'm', delayMs: 5000 }] }), 400, 'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'messages[0]');

    // Unknown and malformed transaction ids, through either broker.
    const [h] = await sendHalves(cluster, 0, 'tx-bad', 'p', ['m']);
    const owner = h!.transactionId.split('.')[1] as string;
    const unknown = `T1.${owner}.${h!.messageId.slice(0, 10)}${'0'.repeat(15)}1`;
    for (const via of [0, 1]) {
      for (const id of [unknown, 'T1.bg-1.nope', 'garbage', `T1.${owner}.${h!.messageId.slice(0, 2)}FFFFFFFF${h!.messageId.slice(10)}`]) {
        for (const verb of ['commit', 'rollback']) {
          expectError(await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${encodeURIComponent(id)}/${verb}`), 400, 'INVALID_TRANSACTION_ID');
        }
        expectError(await api(cluster.url(via), cluster.adminKey, 'GET', `/v1/transactions/${encodeURIComponent(id)}`), 400, 'INVALID_TRANSACTION_ID');
      }
    }
    // Commit after rollback and the reverse: a clear error, and the first outcome stands.
    const [r1, c1] = await sendHalves(cluster, 1, 'tx-bad', 'p', ['r1', 'c1']);
    expect((await api(cluster.url(0), cluster.adminKey, 'POST', `/v1/transactions/${r1!.transactionId}/rollback`)).status).toBe(200);
    expect((await api(cluster.url(1), cluster.adminKey, 'POST', `/v1/transactions/${c1!.transactionId}/commit`)).status).toBe(200);
    for (const via of [0, 1]) {
      const late = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${r1!.transactionId}/commit`);
      expectError(late, 409, 'TRANSACTION_ALREADY_RESOLVED', 'transactionId');
      expect(late.json.error.message).toMatch(/rolled back already/);
      expectError(await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/transactions/${c1!.transactionId}/rollback`), 409, 'TRANSACTION_ALREADY_RESOLVED');
    }
    expect((await state(cluster, 0, r1!.transactionId)).state).toBe('ROLLED_BACK');
    expect((await state(cluster, 1, c1!.transactionId)).state).toBe('COMMITTED');

    // Only the sweep (or an admin) says who resolved it; others may not touch other topics' transactions.
    const { apiKey } = await cluster.nameServer.createPrincipal({ name: 'tx-publisher', permissions: { publish: ['plain-bad'] } });
    await new Promise((r) => setTimeout(r, 2_500)); // the brokers' route caches see new keys within 2 s
    for (const via of [0, 1]) {
      expectError(await api(cluster.url(via), apiKey, 'POST', `/v1/transactions/${h!.transactionId}/commit`), 403, 'FORBIDDEN');
      expectError(await api(cluster.url(via), apiKey, 'GET', `/v1/transactions/${h!.transactionId}`), 403, 'FORBIDDEN');
    }
    expectError(
      await api(cluster.url(0), cluster.adminKey, 'POST', `/v1/transactions/${h!.transactionId}/commit`, { resolvedBy: 'SOMEONE' }),
      400,
      'INVALID_ARGUMENT',
      'resolvedBy',
    );
    expectError(await api(cluster.url(0), undefined, 'POST', `/v1/transactions/${h!.transactionId}/commit`), 401, 'UNAUTHORIZED');
    expect((await state(cluster, 0, h!.transactionId)).state).toBe('PREPARED');
  });
});

describe('check-back', () => {
  it('applies COMMIT and ROLLBACK answers of an HTTP checker, not before the check delay', async () => {
    await createTopic(cluster, 'tx-http');
    await createGroup('g-http');
    const endpoint = await checkerEndpoint((request) => JSON.stringify({ status: request['message'].body.startsWith('c') ? 'COMMIT' : 'ROLLBACK' }));
    try {
      await createProducerGroup(cluster, { name: 'pg-http', checkUrl: endpoint.url, checkDelayMs: 1_500, checkIntervalMs: 200 });
      const checker = sweep(cluster);
      const halves = await sendHalves(cluster, 0, 'tx-http', 'pg-http', ['c1', 'r1', 'c2']);
      expect((await checker.run()).checked).toBe(0); // younger than the check delay
      await sweepUntil(checker, async () => (await Promise.all(halves.map((h) => state(cluster, 1, h.transactionId)))).every((s) => s['state'] !== 'PREPARED'));
      const states = await Promise.all(halves.map((h) => state(cluster, 0, h.transactionId)));
      expect(states.map((s) => [s['state'], s['resolvedBy'], s['checks']])).toEqual([
        ['COMMITTED', 'CHECK', 1],
        ['ROLLED_BACK', 'CHECK', 1],
        ['COMMITTED', 'CHECK', 1],
      ]);
      const first = endpoint.requests.find((r) => r['transactionId'] === halves[0]!.transactionId);
      expect(first).toMatchObject({ messageId: halves[0]!.messageId, producerGroup: 'pg-http', topic: 'tx-http', checks: 1 });
      expect(first?.['message']).toMatchObject({ body: 'c1', keys: ['key-c1'], topic: 'tx-http' });
      const got = await drain(cluster, 'g-http', 'tx-http');
      expect(got.map((m) => m.body).sort()).toEqual(['c1', 'c2']);
      await eventually('the index is empty of them', async () =>
        (await Promise.all(halves.map((h) => index.getTransaction(h.transactionId)))).every((item) => item === undefined),
      );
    } finally {
      await endpoint.close();
    }
  });

  it('asks an UNKNOWN checker again, and after maxChecks rolls back and records it', async () => {
    await createTopic(cluster, 'tx-unknown', 2);
    await createGroup('g-unknown');
    const endpoint = await checkerEndpoint(() => JSON.stringify({ status: 'UNKNOWN' }));
    try {
      await createProducerGroup(cluster, { name: 'pg-unknown', checkUrl: endpoint.url, checkDelayMs: 100, checkIntervalMs: 100, maxChecks: 4 });
      const [h] = await sendHalves(cluster, 1, 'tx-unknown', 'pg-unknown', ['u']);
      await sweepUntil(sweep(cluster), async () => (await state(cluster, 0, h!.transactionId))['state'] !== 'PREPARED');
      expect(await state(cluster, 1, h!.transactionId)).toMatchObject({ state: 'ROLLED_BACK', resolvedBy: 'CHECK_LIMIT', checks: 4 });
      expect(endpoint.requests.map((r) => r['checks'])).toEqual([1, 2, 3, 4]);
      expect(await drain(cluster, 'g-unknown', 'tx-unknown', 300)).toEqual([]);
      expect(await index.getTransaction(h!.transactionId)).toBeUndefined();
      // The producer answering late cannot commit it any more.
      const late = await api(cluster.url(0), cluster.adminKey, 'POST', `/v1/transactions/${h!.transactionId}/commit`);
      expect(late.json.error.code).toBe('TRANSACTION_ALREADY_RESOLVED');
    } finally {
      await endpoint.close();
    }
  });

  it('invokes a checker Lambda function through the Lambda API', async () => {
    await createTopic(cluster, 'tx-lambda', 2);
    const invoked: Array<{ path: string; payload: Record<string, any> }> = [];
    // A stand-in for the Lambda service's Invoke API, as the AWS SDK calls it.
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        invoked.push({ path: req.url ?? '', payload: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' }).end('"COMMIT_MESSAGE"');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const lambda = new LambdaClient({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const arn = 'arn:aws:lambda:us-east-1:123456789012:function:order-checker';
      await createProducerGroup(cluster, { name: 'pg-lambda', checkLambdaArn: arn, checkDelayMs: 100, checkIntervalMs: 100 });
      const [h] = await sendHalves(cluster, 0, 'tx-lambda', 'pg-lambda', ['l1']);
      await sweepUntil(sweep(cluster, { invokeLambda: lambdaInvoker(lambda) }), async () => (await state(cluster, 0, h!.transactionId))['state'] === 'COMMITTED');
      expect(invoked[0]?.path).toBe(`/2015-03-31/functions/${encodeURIComponent(arn)}/invocations`);
      expect(invoked[0]?.payload).toMatchObject({ transactionId: h!.transactionId, message: { body: 'l1' } });
    } finally {
      lambda.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('TransactionProducer', () => {
  it('commits and rolls back by the local transaction, and answers checks of what it left UNKNOWN', async () => {
    await createTopic(cluster, 'tx-sdk');
    await createGroup('g-sdk');
    // No checker URL: checks reach the group's SDK producers through the brokers.
    await createProducerGroup(cluster, { name: 'pg-sdk', checkDelayMs: 200, checkIntervalMs: 300 });
    const checks: TransactionCheck[] = [];
    const producer = new TransactionProducer({
      endpoint: cluster.url(1),
      apiKey: cluster.adminKey,
      producerGroup: 'pg-sdk',
      topic: 'tx-sdk',
      checkPollWaitMs: 1_000,
      checker: (check) => {
        checks.push(check);
        return check.message.bodyText().endsWith('-yes') ? 'COMMIT' : 'ROLLBACK';
      },
    });
    try {
      const committed = await producer.send({ body: 'commit-me', keys: ['k1'] }, () => 'COMMIT');
      expect(committed).toMatchObject({ resolution: 'COMMIT', state: 'COMMITTED', topic: 'tx-sdk' });
      const rolledBack = await producer.send('roll-me', async () => 'ROLLBACK' as const);
      expect(rolledBack).toMatchObject({ resolution: 'ROLLBACK', state: 'ROLLED_BACK' });
      const thrown = await producer.send('threw-yes', () => {
        throw new Error('the database went away');
      });
      expect(thrown).toMatchObject({ resolution: 'UNKNOWN', state: 'PREPARED' });
      expect((thrown.error as Error).message).toBe('the database went away');
      const unknown = await producer.send('unknown-no', () => 'UNKNOWN');
      expect(unknown.state).toBe('PREPARED');

      await producer.start();
      await sweepUntil(sweep(cluster), async () => {
        const [a, b] = await Promise.all([producer.getTransaction(thrown.transactionId), producer.getTransaction(unknown.transactionId)]);
        return a.state !== 'PREPARED' && b.state !== 'PREPARED';
      });
      expect((await producer.getTransaction(thrown.transactionId)).state).toBe('COMMITTED');
      expect((await producer.getTransaction(unknown.transactionId)).state).toBe('ROLLED_BACK');
      expect(checks.find((c) => c.transactionId === thrown.transactionId)).toMatchObject({ messageId: thrown.messageId, topic: 'tx-sdk', producerGroup: 'pg-sdk' });
      const got = await drain(cluster, 'g-sdk', 'tx-sdk');
      expect(got.map((m) => m.body).sort()).toEqual(['commit-me', 'threw-yes']);
      await expect(producer.commit(rolledBack.transactionId)).rejects.toMatchObject({ code: 'TRANSACTION_ALREADY_RESOLVED' });
    } finally {
      await producer.close();
    }
  });
});
