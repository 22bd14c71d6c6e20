import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketClient } from '../../client/index.ts';
import { cliJson, freePortPair, isAlive, parentPid, runCli, startDev, stopDev, withTimeout, type DevProcess } from './support.ts';

/**
 * `skyrocket dev` as a user runs it, with the CLI against it: a child process on two free ports
 * in a temporary data dir, stopped with SIGINT and started again on the same data.
 */
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cli-'));
let port: number;
let dev: DevProcess | undefined;
const at = ['--data-dir', dataDir];

interface Credentials {
  endpoint: string;
  apiKey: string;
  brokers: Array<{ brokerId: number; brokerGroup: string; url: string; pid: number }>;
}

function credentials(): Credentials {
  return JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')) as Credentials;
}

beforeAll(async () => {
  port = await freePortPair();
  dev = await startDev(dataDir, port);
}, 60_000);

afterAll(async () => {
  if (dev !== undefined) await stopDev(dev).catch(() => undefined);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('skyrocket dev and the CLI', () => {
  let firstKey: string;
  let sent: Array<{ messageId: string; queueId: number; queueOffset: number }>;

  it('starts two brokers, writes credentials.json (0600) and ends its start-up output with `ready <endpoint>`', () => {
    expect(dev!.endpoint).toBe(`http://127.0.0.1:${port}`);
    expect(dev!.stdout.at(-1)).toBe(`ready ${dev!.endpoint}`);
    expect(dev!.stdout.filter((l) => l.startsWith('ready '))).toHaveLength(1);
    const file = path.join(dataDir, 'credentials.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const c = credentials();
    expect(c.endpoint).toBe(dev!.endpoint);
    expect(c.apiKey).toMatch(/^sk_/);
    expect(dev!.stdout.join('\n')).toContain(c.apiKey);
    expect(c.brokers.map((b) => [b.brokerId, b.brokerGroup, b.url])).toEqual([
      [1, 'bg-1', `http://127.0.0.1:${port}`],
      [2, 'bg-2', `http://127.0.0.1:${port + 1}`],
    ]);
    for (const b of c.brokers) expect(parentPid(b.pid)).toBe(dev!.pid);
    firstKey = c.apiKey;
  });

  it('serves the wire protocol on each broker, which the SDK takes as an endpoint', async () => {
    const c = credentials() as Credentials & { brokers: Array<{ wireUrl?: string }> };
    for (const b of c.brokers) {
      expect(b.wireUrl).toMatch(/^skyrocket:\/\/127\.0\.0\.1:\d+$/);
      expect(dev!.stdout.join('\n')).toContain(b.wireUrl);
      const client = new SkyrocketClient({ endpoint: b.wireUrl!, apiKey: c.apiKey });
      expect(Array.isArray(await client.listTopics())).toBe(true);
    }
  });

  it('creates a topic and a group', async () => {
    expect(await cliJson(['topic', 'create', 'orders', '--queues', '4', ...at])).toMatchObject({ name: 'orders', type: 'NORMAL', queues: 4 });
    expect(await cliJson(['group', 'create', 'billing', ...at])).toMatchObject({ name: 'billing', mode: 'CLUSTERING', orderly: false });
    const list = await cliJson<{ topics: Array<{ name: string }> }>(['topic', 'list', ...at]);
    expect(list.topics.map((t) => t.name)).toEqual(['orders']);
  });

  it('sends 50 messages, and lag counts them', async () => {
    const r = await cliJson<{ sent: number; results: typeof sent }>(['send', 'orders', 'order {i}', '--count', '50', '--key', 'order-{i}', '--tag', 'new', ...at]);
    expect(r.sent).toBe(50);
    expect(new Set(r.results.map((x) => x.messageId)).size).toBe(50);
    sent = r.results;
    const lag = await cliJson<{ totalLag: number }>(['lag', 'billing', '--topic', 'orders', ...at]);
    expect(lag.totalLag).toBe(50);
  });

  it('receives and acks all 50, once each', async () => {
    const r = await cliJson<{ received: number; acked: number; messages: Array<{ body: string; tag: string; keys: string[] }> }>([
      'receive',
      'billing',
      '--topic',
      'orders',
      '--ack',
      '--count',
      '50',
      ...at,
    ]);
    expect(r.received).toBe(50);
    expect(r.acked).toBe(50);
    expect(r.messages.map((m) => m.body).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `order ${i}`).sort());
    expect(r.messages.every((m) => m.tag === 'new' && m.keys.length === 1)).toBe(true);
    const lag = await cliJson<{ totalLag: number }>(['lag', 'billing', ...at]);
    expect(lag.totalLag).toBe(0);
  });

  it('finds messages by id and by key', async () => {
    const seventh = sent[7]!;
    const byId = await cliJson<{ messages: Array<{ messageId: string; body: string; keys: string[] }> }>(['query', '--id', seventh.messageId, ...at]);
    expect(byId.messages).toHaveLength(1);
    expect(byId.messages[0]).toMatchObject({ messageId: seventh.messageId, body: 'order 7', keys: ['order-7'] });
    const byKey = await cliJson<{ messages: Array<{ body: string }> }>(['query', '--topic', 'orders', '--key', 'order-9', ...at]);
    expect(byKey.messages.map((m) => m.body)).toEqual(['order 9']);
  });

  it('fails with the error code and a non-zero exit for an unknown topic', async () => {
    const human = await runCli(['send', 'no-such-topic', 'hello', ...at]);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('TOPIC_NOT_FOUND');
    expect(human.stdout).toBe('');
    const json = await runCli(['send', 'no-such-topic', 'hello', '--json', ...at]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'TOPIC_NOT_FOUND', retriable: false } });
  });

  it('runs the transaction check sweep: a half message nobody commits is checked back', async () => {
    const { endpoint, apiKey } = credentials();
    const call = async (method: string, path: string, body?: unknown): Promise<any> => {
      const r = await fetch(`${endpoint}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return r.json();
    };
    const checker = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"COMMIT"}'));
    await new Promise<void>((resolve) => checker.listen(0, '127.0.0.1', resolve));
    try {
      const checkUrl = `http://127.0.0.1:${(checker.address() as AddressInfo).port}/check`;
      await call('POST', '/v1/topics', { name: 'payments', queues: 2, type: 'TRANSACTION' });
      await call('POST', '/v1/producer-groups', { name: 'payments-producer', checkUrl, checkDelayMs: 100 });
      const sent = await call('POST', '/v1/topics/payments/messages', { transactional: true, producerGroup: 'payments-producer', messages: [{ body: 'p1' }] });
      const id = encodeURIComponent(sent.results[0].transactionId as string);
      // The sweep runs every 5 s in dev.
      const deadline = Date.now() + 20_000;
      let status: any;
      do {
        await new Promise((r) => setTimeout(r, 250));
        status = await call('GET', `/v1/transactions/${id}?message=false`);
      } while (status.state === 'PREPARED' && Date.now() < deadline);
      expect(status).toMatchObject({ state: 'COMMITTED', resolvedBy: 'CHECK', checks: 1 });
    } finally {
      await new Promise((resolve) => checker.close(resolve));
      // The restart test below expects the topics it made, and only those.
      await fetch(`${endpoint}/v1/topics/payments`, { method: 'DELETE', headers: { authorization: `Bearer ${apiKey}` } });
    }
  }, 30_000);

  it('stops on SIGINT with exit code 0, brokers included', async () => {
    // Left unconsumed, to be found after the restart.
    expect((await cliJson<{ sent: number }>(['send', 'orders', '--count', '3', '--key', 'keep-{i}', ...at])).sent).toBe(3);
    const pids = credentials().brokers.map((b) => b.pid);
    expect(await stopDev(dev!)).toBe(0);
    expect(dev!.stdout.at(-1)).toBe('stopped');
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    dev = undefined;
  });

  it('restarts on the same data: topic, offsets, unconsumed messages and key survive', async () => {
    dev = await startDev(dataDir, port);
    expect(credentials().apiKey).toBe(firstKey);
    const list = await cliJson<{ topics: Array<{ name: string; queues: number }> }>(['topic', 'list', ...at]);
    expect(list.topics).toEqual([expect.objectContaining({ name: 'orders', queues: 4 })]);
    const byKey = await cliJson<{ messages: Array<{ body: string }> }>(['query', '--topic', 'orders', '--key', 'keep-1', ...at]);
    expect(byKey.messages.map((m) => m.body)).toEqual(['message 1']);
    // The 50 acked before the restart stay consumed; only the 3 sent after them are left.
    const lag = await cliJson<{ totalLag: number }>(['lag', 'billing', '--topic', 'orders', ...at]);
    expect(lag.totalLag).toBe(3);
    const r = await cliJson<{ received: number; messages: Array<{ body: string }> }>(['receive', 'billing', '--topic', 'orders', '--ack', '--count', '3', ...at]);
    expect(r.messages.map((m) => m.body).sort()).toEqual(['message 0', 'message 1', 'message 2']);
  });

  it('reports a broker that dies, stops the rest and exits non-zero', async () => {
    const [one, two] = credentials().brokers;
    // Only a broker this test's own dev process started.
    expect(parentPid(two!.pid)).toBe(dev!.pid);
    process.kill(two!.pid, 'SIGKILL');
    const code = await withTimeout(dev!.exited, 30_000, () => new Error(`dev did not exit after its broker died\n${dev!.stderr.join('\n')}`));
    expect(code).toBe(1);
    expect(dev!.stderr.join('\n')).toMatch(/broker 2 \(bg-2, pid \d+\) exited unexpectedly \(signal SIGKILL\)/);
    expect(isAlive(one!.pid)).toBe(false);
    dev = undefined;
  });
});
