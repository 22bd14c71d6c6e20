import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore, type RecordInput } from '../store/index.ts';
import { TransactionService, transactionTopics, type PendingTransaction } from './transaction-service.ts';

const dirs: string[] = [];
const open: Array<{ store: MessageStore; service: TransactionService }> = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-txn-'));
  dirs.push(dir);
  return dir;
}

async function start(dir: string): Promise<{ store: MessageStore; service: TransactionService; events: string[]; committed: string[] }> {
  const store = await MessageStore.open({
    dataDir: path.join(dir, 'store'),
    brokerId: 3,
    storeHost: '127.0.0.1:1',
    segmentSizeBytes: 256 * 1024,
    maxGroupBytes: 64 * 1024,
    indexSlotCount: 64,
    indexMaxEntries: 256,
    retentionCheckIntervalMs: 0,
  });
  const committed: string[] = [];
  const service = await TransactionService.open({ store, brokerGroup: 'bg-9', dataDir: path.join(dir, 'transaction'), host: 'h:1', onCommitted: (t) => committed.push(t) });
  const events: string[] = [];
  service.listener = {
    prepared: (tx: PendingTransaction) => events.push(`prepared ${tx.transactionId}`),
    resolved: (tx) => events.push(`resolved ${tx.transactionId}`),
  };
  open.push({ store, service });
  return { store, service, events, committed };
}

async function stop(): Promise<void> {
  for (const { store, service } of open.splice(0)) {
    await service.close();
    await store.close();
  }
}

function record(body: string, queueId = 1, extra: Partial<RecordInput> = {}): RecordInput {
  return { topic: 'orders', queueId, body: Buffer.from(body), keys: [`k-${body}`], properties: { p: body }, bornTimestamp: 1_000, bornHost: 'client:1', ...extra };
}

async function bodies(store: MessageStore, topic = 'orders', queueId = 1): Promise<string[]> {
  return (await store.read(topic, queueId, 0, { maxMessages: 1000 })).messages.map((m) => Buffer.from(m.body).toString());
}

afterEach(async () => {
  await stop();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('TransactionService', () => {
  it('keeps half messages out of their topic until commit, and commits each once', async () => {
    const { store, service, events, committed } = await start(tempDir());
    const halves = await service.prepare([record('a'), record('b', 2, { tag: 'x', messageGroup: 'g' })], 'pg');
    expect(halves.map((h) => h.queueId)).toEqual([1, 2]);
    expect(await bodies(store)).toEqual([]);
    expect(service.pending().map((p) => p.transactionId)).toEqual(halves.map((h) => h.transactionId));
    const [a, b] = halves as [(typeof halves)[0], (typeof halves)[0]];

    const status = await service.status(a.transactionId);
    expect(status).toMatchObject({ state: 'PREPARED', topic: 'orders', producerGroup: 'pg', messageId: a.messageId });
    expect(status.message).toMatchObject({ topic: 'orders', queueId: 1, keys: ['k-a'], properties: { p: 'a' } });

    // Two commits at once: one write.
    const [c1, c2] = await Promise.all([service.resolve(a.transactionId, 'COMMIT'), service.resolve(a.transactionId, 'COMMIT')]);
    expect(c1.state).toBe('COMMITTED');
    expect(c2.state).toBe('COMMITTED');
    const visible = (await store.read('orders', 1, 0)).messages;
    expect(visible.map((m) => [Buffer.from(m.body).toString(), m.messageId, m.properties, m.keys, m.transactionId])).toEqual([
      ['a', a.messageId, { p: 'a' }, ['k-a'], a.transactionId],
    ]);
    expect(committed).toEqual(['orders']);
    await expect(service.resolve(a.transactionId, 'ROLLBACK')).rejects.toMatchObject({ code: 'TRANSACTION_ALREADY_RESOLVED' });

    await service.resolve(b.transactionId, 'ROLLBACK', 'CHECK_LIMIT', 15);
    expect(await service.status(b.transactionId)).toMatchObject({ state: 'ROLLED_BACK', resolvedBy: 'CHECK_LIMIT', checks: 15 });
    expect(await bodies(store, 'orders', 2)).toEqual([]);
    expect(events).toEqual([`prepared ${a.transactionId}`, `prepared ${b.transactionId}`, `resolved ${a.transactionId}`, `resolved ${b.transactionId}`]);

    // What GET /v1/messages/{id} shows for the half message: the committed one, or nothing.
    const halfA = await store.getById(a.messageId);
    expect(halfA?.topic).toBe(transactionTopics.half);
    expect((await service.visibleMessage(halfA!))?.queueOffset).toBe(0);
    expect(await service.visibleMessage((await store.getById(b.messageId))!)).toBeUndefined();
  });

  it('refuses ids that are not its transactions', async () => {
    const { service } = await start(tempDir());
    const [h] = await service.prepare([record('a')], 'pg');
    const other = h!.transactionId.replace('bg-9', 'bg-8');
    const unknown = `${h!.transactionId.slice(0, -6)}FFFFFF`;
    for (const id of ['nope', other, unknown]) {
      await expect(service.status(id)).rejects.toMatchObject({ code: 'INVALID_TRANSACTION_ID' });
      await expect(service.resolve(id, 'COMMIT')).rejects.toMatchObject({ code: 'INVALID_TRANSACTION_ID' });
    }
  });

  it('finds its unresolved half messages again after a restart, from the progress snapshot on', async () => {
    const dir = tempDir();
    let { store, service } = await start(dir);
    const first = await service.prepare(['a', 'b', 'c', 'd'].map((x) => record(x)), 'pg');
    await service.resolve(first[0]!.transactionId, 'COMMIT');
    await service.resolve(first[1]!.transactionId, 'ROLLBACK');
    await service.snapshot(); // moves to c, the lowest unresolved
    await service.resolve(first[2]!.transactionId, 'COMMIT');
    const second = await service.prepare([record('e')], 'pg2');
    await stop();

    ({ store, service } = await start(dir));
    expect(service.pending().map((p) => [p.transactionId, p.producerGroup])).toEqual([
      [first[3]!.transactionId, 'pg'],
      [second[0]!.transactionId, 'pg2'],
    ]);
    // Resolutions made before the restart stand, and a commit is not repeated.
    expect((await service.resolve(first[0]!.transactionId, 'COMMIT')).state).toBe('COMMITTED');
    expect((await service.resolve(first[2]!.transactionId, 'COMMIT')).state).toBe('COMMITTED');
    await expect(service.resolve(first[1]!.transactionId, 'COMMIT')).rejects.toMatchObject({ code: 'TRANSACTION_ALREADY_RESOLVED' });
    await service.resolve(first[3]!.transactionId, 'COMMIT');
    expect(await bodies(store)).toEqual(['a', 'c', 'd']);

    // Without the snapshot, and without the key index, the log alone tells the same.
    await stop();
    fs.rmSync(path.join(dir, 'transaction'), { recursive: true });
    fs.rmSync(path.join(dir, 'store', 'index'), { recursive: true });
    fs.rmSync(path.join(dir, 'store', 'checkpoint'));
    ({ store, service } = await start(dir));
    expect(service.pending().map((p) => p.transactionId)).toEqual([second[0]!.transactionId]);
    expect((await service.status(first[1]!.transactionId)).state).toBe('ROLLED_BACK');
    expect((await service.resolve(first[3]!.transactionId, 'COMMIT')).state).toBe('COMMITTED');
    expect(await bodies(store)).toEqual(['a', 'c', 'd']);
  });

  it('forgets half messages that retention deleted unresolved', async () => {
    const { store, service, events } = await start(tempDir());
    const [h] = await service.prepare([record('old')], 'pg');
    // Fill the first segment and more, so that the half message's segment is sealed.
    for (let i = 0; i < 8; i++) await store.append(Array.from({ length: 64 }, (_, k) => record(`${i}-${k}`.padEnd(1000, 'x'), 0)));
    expect((await store.enforceRetention(Date.now() + 365 * 86_400_000)).deletedSegments).toBeGreaterThan(0);
    await service.snapshot();
    expect(service.pending()).toEqual([]);
    expect(events).toContain(`resolved ${h!.transactionId}`);
    await expect(service.resolve(h!.transactionId, 'COMMIT')).rejects.toMatchObject({ code: 'INVALID_TRANSACTION_ID' });
  });

  it('queues a check request for the producers of a prepared transaction only', async () => {
    const { service } = await start(tempDir());
    const [p, r] = await service.prepare([record('a'), record('b')], 'pg');
    await service.resolve(r!.transactionId, 'ROLLBACK');
    expect((await service.requestCheck(p!.transactionId, 2)).state).toBe('PREPARED');
    expect((await service.requestCheck(r!.transactionId, 2)).state).toBe('ROLLED_BACK');
    const checks = await service.takeChecks('pg', 10, () => true, 0, new AbortController().signal);
    expect(checks.map((c) => [c.transactionId, c.checks, Buffer.from(c.message.body).toString(), c.message.topic])).toEqual([[p!.transactionId, 2, 'a', 'orders']]);
    // A resolution removes a queued request.
    await service.requestCheck(p!.transactionId, 3);
    await service.resolve(p!.transactionId, 'COMMIT');
    expect(await service.takeChecks('pg', 10, () => true, 0, new AbortController().signal)).toEqual([]);
  });
});
