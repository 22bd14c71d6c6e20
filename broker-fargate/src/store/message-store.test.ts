import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessageId } from '../../../core/message-id.ts';
import { tagHash } from '../../../core/tag-hash.ts';
import { MessageStore, type MessageStoreOptions } from './message-store.ts';
import { InMemorySegmentStore } from './segment-store.ts';
import type { RecordInput } from './record.ts';

const dirs: string[] = [];
const stores: MessageStore[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-store-'));
  dirs.push(dir);
  return dir;
}

async function open(dataDir: string, extra: Partial<MessageStoreOptions> = {}): Promise<MessageStore> {
  const store = await MessageStore.open({
    dataDir,
    brokerId: 7,
    storeHost: '127.0.0.1:9876',
    segmentSizeBytes: 256 * 1024,
    maxGroupBytes: 64 * 1024,
    consumeQueueEntriesPerFile: 1024,
    indexSlotCount: 64,
    indexMaxEntries: 256,
    retentionCheckIntervalMs: 0,
    ...extra,
  });
  stores.push(store);
  return store;
}

function message(topic: string, queueId: number, i: number, extra: Partial<RecordInput> = {}): RecordInput {
  return {
    topic,
    queueId,
    body: Buffer.from(`message ${i} `.padEnd(100, 'x')),
    bornTimestamp: 1_700_000_000_000 + i,
    bornHost: '10.0.0.1:5000',
    ...extra,
  };
}

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('MessageStore', () => {
  it('appends a batch and reads it back by queue offset, by id and by key', async () => {
    const store = await open(tempDir());
    const results = await store.append([
      message('orders', 0, 0, { tag: 'created', keys: ['order-1'], properties: { region: 'eu' } }),
      message('orders', 0, 1, { tag: 'paid', keys: ['order-1', 'invoice-9'] }),
      message('orders', 1, 2, { messageGroup: 'customer-3' }),
    ]);
    expect(results.map((r) => [r.queueId, r.queueOffset])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
    ]);
    expect(results[1]!.physicalOffset).toBeGreaterThan(results[0]!.physicalOffset);

    const read = await store.read('orders', 0, 0);
    expect(read.status).toBe('FOUND');
    expect(read.messages.map((m) => m.body.toString().trim().slice(0, 9))).toEqual(['message 0', 'message 1']);
    expect(read.messages[0]).toMatchObject({
      topic: 'orders',
      tag: 'created',
      keys: ['order-1'],
      properties: { region: 'eu' },
      queueOffset: 0,
      deliveryAttempt: 1,
      storeHost: '127.0.0.1:9876',
      bornHost: '10.0.0.1:5000',
      messageId: results[0]!.messageId,
    });
    expect(read.nextOffset).toBe(2);

    const byId = await store.getById(results[2]!.messageId);
    expect(byId?.messageGroup).toBe('customer-3');

    const byKey = await store.queryByKey('orders', 'order-1');
    expect(byKey.map((m) => m.messageId).sort()).toEqual([results[0]!.messageId, results[1]!.messageId].sort());
    expect(await store.queryByKey('orders', 'invoice-9')).toHaveLength(1);
    expect(await store.queryByKey('other-topic', 'order-1')).toHaveLength(0);
  });

  it('answers a well-formed id that points into the middle of a record as not found', async () => {
    const store = await open(tempDir());
    const [r] = await store.append([message('ids', 0, 0)]);
    const inside = encodeMessageId(7, r!.physicalOffset + 90);
    expect(await store.getById(inside)).toBeUndefined();
    expect(await store.getById(encodeMessageId(8, r!.physicalOffset))).toBeUndefined();
    expect(await store.getById(r!.messageId)).toBeDefined();
  });

  it('filters by tag in the consume queue and confirms the tag on the record', async () => {
    const store = await open(tempDir());
    const batch: RecordInput[] = [];
    for (let i = 0; i < 50; i++) batch.push(message('t', 0, i, { tag: i % 5 === 0 ? 'five' : 'other' }));
    await store.append(batch);
    const read = await store.read('t', 0, 0, { tags: new Set(['five']), maxMessages: 100 });
    expect(read.messages.map((m) => m.queueOffset)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(read.nextOffset).toBe(50);
    const none = await store.read('t', 0, 0, { tags: new Set(['absent']) });
    expect(none.status).toBe('NO_MATCHED_MESSAGE');
    expect(none.nextOffset).toBe(50);
    expect(tagHash('five')).not.toBe(0);
  });

  it('reports offsets past the end and an empty queue', async () => {
    const store = await open(tempDir());
    await store.append([message('t', 0, 0)]);
    expect((await store.read('t', 0, 1)).status).toBe('NO_NEW_MESSAGE');
    const overflow = await store.read('t', 0, 10);
    expect(overflow.status).toBe('OFFSET_OVERFLOW');
    expect(overflow.nextOffset).toBe(1);
    expect((await store.read('t', 3, 0)).messages).toHaveLength(0);
  });

  it('keeps concurrent appends in order per queue and shares writes between them', async () => {
    const store = await open(tempDir());
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([message('q', i % 4, i)])));
    for (let queue = 0; queue < 4; queue++) {
      const offsets = all.flat().filter((r) => r.queueId === queue).map((r) => r.queueOffset);
      expect(offsets).toEqual(Array.from({ length: 50 }, (_, i) => i));
      const read = await store.read('q', queue, 0, { maxMessages: 100 });
      expect(read.messages.map((m) => Number(m.body.toString().split(' ')[1]) % 4)).toEqual(new Array(50).fill(queue));
    }
  });

  it('rolls segments, seals them into the segment store and reads across them', async () => {
    const sealed = new InMemorySegmentStore();
    const store = await open(tempDir(), { segmentStore: sealed, segmentSizeBytes: 64 * 1024, maxGroupBytes: 16 * 1024 });
    const total = 2000; // about 380 KiB: six segments
    for (let i = 0; i < total; i += 100) {
      await store.append(Array.from({ length: 100 }, (_, k) => message('roll', 0, i + k)));
    }
    expect((await sealed.list()).length).toBeGreaterThanOrEqual(4);
    let offset = 0;
    let seen = 0;
    while (offset < total) {
      const read = await store.read('roll', 0, offset, { maxMessages: 333 });
      for (const m of read.messages) expect(m.body.toString().startsWith(`message ${m.queueOffset} `)).toBe(true);
      seen += read.messages.length;
      offset = read.nextOffset;
    }
    expect(seen).toBe(total);
  });

  it('recovers everything after a clean close and continues the queue offsets', async () => {
    const dir = tempDir();
    let store = await open(dir);
    const first = await store.append(Array.from({ length: 300 }, (_, i) => message('r', i % 2, i, { keys: [`k${i}`] })));
    await store.close();
    store = await open(dir);
    const more = await store.append([message('r', 0, 300)]);
    expect(more[0]!.queueOffset).toBe(150);
    expect(more[0]!.physicalOffset).toBeGreaterThan(first.at(-1)!.physicalOffset);
    const read = await store.read('r', 0, 0, { maxMessages: 1000 });
    expect(read.messages).toHaveLength(151);
    expect((await store.queryByKey('r', 'k299')).map((m) => m.queueOffset)).toEqual([149]);
    expect(await store.getById(first[42]!.messageId)).toMatchObject({ queueOffset: 21, queueId: 0 });
  });

  it('rebuilds consume queues and the key index from the log when the checkpoint is gone', async () => {
    const dir = tempDir();
    let store = await open(dir);
    await store.append(Array.from({ length: 500 }, (_, i) => message('x', i % 3, i, { keys: [`key-${i}`], tag: `t${i % 2}` })));
    await store.close();
    fs.rmSync(path.join(dir, 'checkpoint'));
    fs.rmSync(path.join(dir, 'consumequeue'), { recursive: true });
    fs.rmSync(path.join(dir, 'index'), { recursive: true });
    store = await open(dir);
    expect(store.recovery.scannedRecords).toBe(500);
    for (let q = 0; q < 3; q++) {
      const read = await store.read('x', q, 0, { maxMessages: 1000 });
      expect(read.messages.length).toBe(q === 2 ? 166 : 167);
    }
    expect((await store.queryByKey('x', 'key-321'))[0]?.body.toString().startsWith('message 321 ')).toBe(true);
    expect((await store.read('x', 0, 0, { tags: new Set(['t1']), maxMessages: 1000 })).messages.length).toBe(83);
  });

  it('finds records stored again under an id (UNIQ_KEY), also after the index is rebuilt from the log', async () => {
    const dir = tempDir();
    let store = await open(dir);
    const [original] = await store.append([message('orders', 0, 0, { keys: ['k'] })]);
    const id = original!.messageId;
    expect(await store.getByUniqueKey(id)).toEqual([]);
    // Stored again twice (say, a dead letter and a redrive), and an unrelated record in between.
    await store.append([message('%DLQ%g', 0, 1, { properties: { UNIQ_KEY: id, a: '1' } })]);
    await store.append([message('other', 0, 2, { properties: { UNIQ_KEY: encodeMessageId(7, 1) } })]);
    await store.append([message('orders', 1, 3, { properties: { UNIQ_KEY: id } })]);
    const check = async (s: MessageStore): Promise<void> => {
      const found = await s.getByUniqueKey(id);
      expect(found.map((m) => [m.topic, m.messageId, m.properties])).toEqual([
        ['orders', id, {}],
        ['%DLQ%g', id, { a: '1' }],
      ]);
      expect(await s.getByUniqueKey(encodeMessageId(7, 999_999))).toEqual([]);
      // A key of a topic never answers a unique-key lookup.
      expect(await s.getByUniqueKey('k')).toEqual([]);
    };
    await check(store);
    await store.close();
    fs.rmSync(path.join(dir, 'checkpoint'));
    fs.rmSync(path.join(dir, 'index'), { recursive: true });
    store = await open(dir);
    await check(store);
  });

  it('deletes whole segments past retention and moves queue minimums forward', async () => {
    let now = 1_000_000;
    const store = await open(tempDir(), { segmentSizeBytes: 64 * 1024, maxGroupBytes: 16 * 1024, retentionMs: 10_000, now: () => now });
    for (let i = 0; i < 1500; i += 50) await store.append(Array.from({ length: 50 }, (_, k) => message('old', 0, i + k)));
    now += 20_000;
    for (let i = 0; i < 5; i++) await store.append([message('new', 0, i)]);
    const before = store.queueRange('old', 0);
    const { deletedSegments } = await store.enforceRetention(now);
    expect(deletedSegments).toBeGreaterThan(0);
    const after = store.queueRange('old', 0);
    expect(after.minOffset).toBeGreaterThan(before.minOffset);
    const read = await store.read('old', 0, 0);
    expect(read.startOffset).toBe(after.minOffset);
    expect(read.messages[0]?.queueOffset).toBe(after.minOffset);
    expect((await store.read('new', 0, 0)).messages).toHaveLength(5);
  });

  it('acks in async flush mode after the write and syncs on its timer', async () => {
    const dir = tempDir();
    let store = await open(dir, { flushMode: 'async', flushIntervalMs: 20 });
    await store.append(Array.from({ length: 10 }, (_, i) => message('a', 0, i)));
    await new Promise((r) => setTimeout(r, 60));
    expect(store.stats().flushedOffset).toBe(store.stats().endOffset);
    await store.close();
    store = await open(dir);
    expect((await store.read('a', 0, 0)).messages).toHaveLength(10);
  });

  it('rejects a batch larger than a segment and stores nothing of it', async () => {
    const store = await open(tempDir(), { segmentSizeBytes: 64 * 1024, maxGroupBytes: 16 * 1024 });
    const big = Array.from({ length: 40 }, (_, i) => message('big', 0, i, { body: Buffer.alloc(2000, 1) }));
    await expect(store.append(big)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(store.queueRange('big', 0).maxOffset).toBe(0);
    await store.append([message('big', 0, 0)]);
    expect(store.queueRange('big', 0).maxOffset).toBe(1);
  });
});
