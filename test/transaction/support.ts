/**
 * Helpers for the transaction tests: a cluster with a TRANSACTION topic, the txn-check sweep run
 * from the test process against the cluster's brokers and DynamoDB tables (as `skyrocket dev`
 * runs it), a checker HTTP endpoint, and a consumer that counts what it receives.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { TransactionTables } from '../../namesrv/index.ts';
import { TransactionChecker, type TransactionCheckerOptions } from '../../lambdas/txn-check/txn-check.ts';
import { dynamoClient } from '../support/aws.ts';
import { api, type TestCluster } from '../broker/cluster.ts';

export function tables(cluster: TestCluster): TransactionTables {
  return new TransactionTables({ client: dynamoClient(), prefix: cluster.prefix });
}

export function sweep(cluster: TestCluster, extra: Partial<TransactionCheckerOptions> = {}): TransactionChecker {
  return new TransactionChecker({ tables: tables(cluster), brokers: cluster.nameServer, internalSecret: cluster.secret, ...extra });
}

/** Runs the sweep every `intervalMs` until `done()` holds; fails after `timeoutMs`. */
export async function sweepUntil(checker: TransactionChecker, done: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await checker.run();
    if (await done()) return;
    if (Date.now() > deadline) throw new Error('the sweep did not get there in time');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function createTopic(cluster: TestCluster, name: string, queues = 4): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name, queues, type: 'TRANSACTION' });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

export async function createProducerGroup(cluster: TestCluster, spec: Record<string, unknown>): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/producer-groups', spec);
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

export interface Half {
  messageId: string;
  transactionId: string;
  queueId: number;
}

export async function sendHalves(cluster: TestCluster, via: number, topic: string, producerGroup: string, bodies: string[]): Promise<Half[]> {
  const r = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/topics/${topic}/messages`, {
    transactional: true,
    producerGroup,
    messages: bodies.map((body) => ({ body, keys: [`key-${body}`] })),
  });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.results;
}

export async function state(cluster: TestCluster, via: number, transactionId: string): Promise<Record<string, any>> {
  const r = await api(cluster.url(via), cluster.adminKey, 'GET', `/v1/transactions/${encodeURIComponent(transactionId)}?message=false`);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json;
}

/** Receives (and acks) everything the group gets from the topic within `quietMs` of silence. */
export async function drain(cluster: TestCluster, group: string, topic: string, quietMs = 600): Promise<Array<{ body: string; messageId: string }>> {
  const out: Array<{ body: string; messageId: string }> = [];
  for (;;) {
    const r = await api(cluster.url(out.length % 2), cluster.adminKey, 'POST', `/v1/groups/${group}/receive`, { topic, max: 64, waitMs: quietMs });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    if (r.json.messages.length === 0) return out;
    out.push(...r.json.messages.map((m: { body: string; messageId: string }) => ({ body: m.body, messageId: m.messageId })));
    const a = await api(cluster.url(0), cluster.adminKey, 'POST', `/v1/groups/${group}/ack`, {
      topic,
      receiptHandles: r.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
    });
    expect(a.status, JSON.stringify(a.json)).toBe(200);
  }
}

/** An HTTP checker endpoint: answers each check request with `answer(request)`. */
export async function checkerEndpoint(
  answer: (request: Record<string, any>) => string,
): Promise<{ url: string; requests: Array<Record<string, any>>; close: () => Promise<void> }> {
  const requests: Array<Record<string, any>> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      requests.push(request);
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer(request));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/check`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
