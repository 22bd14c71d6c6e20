import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketClient } from '../../client/index.ts';
import { TestCluster } from '../broker/cluster.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('dead letters through the SDK and the CLI', () => {
  it('nacks to the limit, lists the dead letters, and redrives them', async () => {
    const client = new SkyrocketClient({ endpoint: cluster.url(0), apiKey: cluster.adminKey });
    await client.createTopic({ name: 'dlq-topic', queues: 2 });
    await client.createGroup({ name: 'dlq-group', maxDeliveryAttempts: 1 });
    await client.send('dlq-topic', [{ body: 'poison-1' }, { body: 'poison-2' }]);
    let got = await client.receive('dlq-group', { topic: 'dlq-topic', max: 10, waitMs: 2000 });
    for (let i = 0; i < 5 && got.length < 2; i++) got.push(...(await client.receive('dlq-group', { topic: 'dlq-topic', max: 10, waitMs: 500 })));
    expect(got.map((m) => m.bodyText()).sort()).toEqual(['poison-1', 'poison-2']);
    const nacked = await client.nack('dlq-group', 'dlq-topic', got.map((m) => m.receiptHandle), 0);
    expect(nacked.nacked).toHaveLength(2);
    // The next receive finds their attempts used up and moves them to %DLQ%dlq-group.
    expect(await client.receive('dlq-group', { topic: 'dlq-topic', waitMs: 300 })).toEqual([]);
    const letters = await client.listDeadLetters('dlq-group');
    expect(letters.map((d) => d.message.bodyText()).sort()).toEqual(['poison-1', 'poison-2']);
    expect(letters.every((d) => d.originTopic === 'dlq-topic')).toBe(true);

    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'bin/skyrocket.ts', ...args, '--endpoint', cluster.url(1), '--api-key', cluster.adminKey, '--json'], { cwd: root });
    const listed = JSON.parse((await cli('dlq', 'dlq-group')).stdout);
    expect(listed.messages.map((m: { body: string }) => m.body).sort()).toEqual(['poison-1', 'poison-2']);
    const one = letters.find((d) => d.message.bodyText() === 'poison-1')!;
    const redriven = JSON.parse((await cli('dlq', 'dlq-group', '--redrive', '--id', one.message.messageId)).stdout);
    expect(redriven).toMatchObject({ redriven: 1, failed: [] });
    expect((await client.listDeadLetters('dlq-group')).map((d) => d.message.bodyText())).toEqual(['poison-2']);
    expect(await client.redriveDeadLetters('dlq-group')).toEqual({ redriven: 1, failed: [] });
    const back = await client.receive('dlq-group', { topic: 'dlq-topic', max: 10, waitMs: 2000 });
    for (let i = 0; i < 5 && back.length < 2; i++) back.push(...(await client.receive('dlq-group', { topic: 'dlq-topic', max: 10, waitMs: 500 })));
    expect(back.map((m) => m.bodyText()).sort()).toEqual(['poison-1', 'poison-2']);
    expect(back.every((m) => m.deliveryAttempt === 1)).toBe(true);
  }, 60_000);
});
