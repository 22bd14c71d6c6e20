/**
 * Torn writes on real files. A crash after `write` but before `fdatasync` can leave the end of the
 * log cut inside a record, or a batch without its last record. The test writes records, closes
 * the store, puts back the checkpoint taken before the damaged part (or removes it, forcing a
 * full rescan), damages the tail, and reopens: the torn record or batch must be gone, everything
 * before it intact, and new appends must continue at the right queue and commit-log offsets and
 * survive both a clean reopen and a crash (a copy of the files taken while the store is open).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../core/message.ts';
import type { AppendResult, MessageStore } from '../../broker-fargate/src/store/message-store.ts';
import type { RecordInput } from '../../broker-fargate/src/store/record.ts';
import {
  crashSnapshot,
  message,
  OpenStores,
  readAt,
  readCheckpointFile,
  recordSizeAt,
  segmentFiles,
  smallStore,
  TempDirs,
  writeAt,
  writeCheckpointFile,
} from './store-files.ts';

const dirs = new TempDirs();
// Key-index files of 32 entries (the least allowed) and 16 slots: long, interleaved chains, and a
// torn tail that cuts across files, so the index is cut back across files too.
const stores = new OpenStores({ indexSlotCount: 16, indexMaxEntries: 32 });

afterEach(async () => {
  await stores.closeAll();
  dirs.removeAll();
});

interface Acked {
  input: RecordInput;
  result: AppendResult;
}

/** Appends one batch and remembers what each record was. */
async function append(store: MessageStore, log: Acked[], inputs: RecordInput[]): Promise<Acked[]> {
  const results = await store.append(inputs);
  const acked = inputs.map((input, i) => ({ input, result: results[i]! }));
  log.push(...acked);
  return acked;
}

/** Every record in `expected` is served at its queue offset with its body, by id and by key. */
async function expectIntact(store: MessageStore, expected: Acked[]): Promise<void> {
  const byQueue = new Map<string, Acked[]>();
  for (const a of expected) {
    const k = `${a.input.topic}/${a.input.queueId}`;
    byQueue.set(k, [...(byQueue.get(k) ?? []), a]);
  }
  for (const list of byQueue.values()) {
    const { topic, queueId } = list[0]!.input;
    const read = await store.read(topic, queueId, 0, { maxMessages: 10_000 });
    expect(read.corrupted).toEqual([]);
    const served = new Map<number, StoredMessage>(read.messages.map((m) => [m.queueOffset, m]));
    for (const a of list) {
      const m = served.get(a.result.queueOffset);
      expect(m, `${topic}/${queueId}@${a.result.queueOffset}`).toBeDefined();
      expect(Buffer.from(m!.body).equals(Buffer.from(a.input.body))).toBe(true);
      expect(m!.messageId).toBe(a.result.messageId);
      expect(m!.physicalOffset).toBe(a.result.physicalOffset);
    }
    // Contiguous from 0, nothing beyond the last expected offset.
    expect(read.messages.map((m) => m.queueOffset)).toEqual(Array.from({ length: read.messages.length }, (_, i) => i));
    expect(store.queueRange(topic, queueId).maxOffset).toBe(Math.max(...list.map((a) => a.result.queueOffset)) + 1);
  }
  for (const a of expected) {
    expect((await store.getById(a.result.messageId))?.body.toString()).toBe(Buffer.from(a.input.body).toString());
    const key = a.input.keys![0]!;
    expect((await store.queryByKey(a.input.topic, key)).map((m) => m.messageId)).toEqual([a.result.messageId]);
  }
}

/** None of `gone` is served in any way. */
async function expectGone(store: MessageStore, gone: Acked[]): Promise<void> {
  for (const a of gone) {
    const { topic, queueId } = a.input;
    expect(store.queueRange(topic, queueId).maxOffset).toBeLessThanOrEqual(a.result.queueOffset);
    expect((await store.read(topic, queueId, a.result.queueOffset)).messages).toEqual([]);
    expect(await store.getById(a.result.messageId)).toBeUndefined();
    expect(await store.queryByKey(topic, a.input.keys![0]!)).toEqual([]);
  }
}

/** The three ways a reopen can start after the damage. */
const recoveryStarts = [
  { name: 'from the checkpoint before the damage', checkpoint: 'older', derived: 'kept' },
  { name: 'without a checkpoint (full rescan)', checkpoint: 'removed', derived: 'kept' },
  { name: 'without checkpoint, consume queues and key index', checkpoint: 'removed', derived: 'removed' },
] as const;

type Damage = (dataDir: string, offset: number, size: number) => void;

const zeros = (n: number): Buffer => Buffer.alloc(n);
/** Garbage that is not zeros and not a record: a fixed pattern, so runs repeat. */
const garbage = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 151 + 7) & 0xff));

const tornRecord: Array<{ name: string; damage: Damage }> = [
  { name: 'second half zeroed', damage: (dir, at, size) => writeAt(dir, at + (size >> 1), zeros(size - (size >> 1))) },
  { name: 'second half garbage', damage: (dir, at, size) => writeAt(dir, at + (size >> 1), garbage(size - (size >> 1))) },
  { name: 'last byte changed', damage: (dir, at, size) => writeAt(dir, at + size - 1, Buffer.from([readAt(dir, at + size - 1, 1)[0]! ^ 0xff])) },
  {
    name: 'zeros from mid-record to the end of the segment file',
    damage: (dir, at, size) => {
      const seg = segmentFiles(dir).findLast((s) => s.baseOffset <= at)!;
      const from = at - seg.baseOffset + 13;
      writeAt(dir, at + 13, zeros(seg.sizeBytes - from));
    },
  },
  {
    name: 'segment file cut short mid-record',
    damage: (dir, at, size) => {
      const seg = segmentFiles(dir).findLast((s) => s.baseOffset <= at)!;
      fs.truncateSync(seg.file, at - seg.baseOffset + (size >> 1));
    },
  },
  { name: 'only the header written', damage: (dir, at, size) => writeAt(dir, at + 12, zeros(size - 12)) },
];

/**
 * Writes a log in three parts: `before` (then a checkpoint, saved), `middle`, and `last` (the part
 * a crash tears). Returns the store closed, the saved checkpoint and what was appended.
 */
async function writeLog(dataDir: string, last: (store: MessageStore, log: Acked[]) => Promise<Acked[]>) {
  const store = await stores.open(dataDir);
  const log: Acked[] = [];
  let n = 0;
  for (let i = 0; i < 40; i++) await append(store, log, [message('t', i % 2, n++)]);
  await append(store, log, [message('t', 0, n++), message('u', 0, n++), message('t', 1, n++)]);
  await store.checkpoint();
  const checkpoint = readCheckpointFile(dataDir);
  for (let i = 0; i < 10; i++) await append(store, log, [message(i % 3 === 0 ? 'u' : 't', i % 2, n++)]);
  const torn = await last(store, log);
  await stores.close(store);
  const kept = log.filter((a) => !torn.includes(a));
  return { checkpoint, torn, kept };
}

function startRecovery(dataDir: string, start: (typeof recoveryStarts)[number], checkpoint: Buffer): void {
  if (start.checkpoint === 'older') writeCheckpointFile(dataDir, checkpoint);
  else fs.rmSync(path.join(dataDir, 'checkpoint'));
  if (start.derived === 'removed') {
    fs.rmSync(path.join(dataDir, 'consumequeue'), { recursive: true });
    fs.rmSync(path.join(dataDir, 'index'), { recursive: true });
  }
}

/**
 * After recovery dropped `torn`: new appends take over its queue offsets and commit-log offset,
 * and everything survives a crash of the reopened store and a clean reopen.
 */
async function expectContinues(dataDir: string, store: MessageStore, kept: Acked[], torn: Acked[]): Promise<void> {
  const firstTorn = torn[0]!;
  const added: Acked[] = [];
  // One record into each queue the torn part used, in the same order.
  const seen = new Set<string>();
  const inputs: RecordInput[] = [];
  for (const a of torn) {
    const k = `${a.input.topic}/${a.input.queueId}`;
    if (seen.has(k)) continue;
    seen.add(k);
    inputs.push(message(a.input.topic, a.input.queueId, 1000 + inputs.length));
  }
  for (const input of inputs) await append(store, added, [input]);
  // A file cut short is sealed at its last record, so the next segment starts right there too.
  expect(added[0]!.result.physicalOffset).toBe(firstTorn.result.physicalOffset);
  for (const a of added) {
    const tornHere = torn.find((t) => t.input.topic === a.input.topic && t.input.queueId === a.input.queueId)!;
    expect(a.result.queueOffset, `${a.input.topic}/${a.input.queueId}`).toBe(tornHere.result.queueOffset);
  }
  await expectIntact(store, [...kept, ...added]);

  // A crash now: the key index of the new records is only in memory, the checkpoint is the one
  // written when the store opened.
  const snapshotDir = crashSnapshot(dataDir, dirs.make('skyrocket-snapshot-'));
  const crashed = await stores.open(snapshotDir);
  expect(crashed.recovery.corruptions).toEqual([]);
  await expectIntact(crashed, [...kept, ...added]);
  await stores.close(crashed);

  await stores.close(store);
  const reopened = await stores.open(dataDir);
  expect(reopened.recovery.truncatedBytes).toBe(0);
  await expectIntact(reopened, [...kept, ...added]);
  const more = await append(reopened, added, [message(firstTorn.input.topic, firstTorn.input.queueId, 2000)]);
  expect(more[0]!.result.queueOffset).toBe(added.find((a) => a.input.topic === firstTorn.input.topic && a.input.queueId === firstTorn.input.queueId)!.result.queueOffset + 1);
  await stores.close(reopened);
}

describe.each(recoveryStarts)('torn write, recovery $name', (start) => {
  it.each(tornRecord)('drops a torn last record: $name', async ({ damage }) => {
    const dataDir = dirs.make();
    const { checkpoint, torn, kept } = await writeLog(dataDir, async (store, log) =>
      append(store, log, [message('t', 0, 500, { keys: ['key-500'] })]),
    );
    const victim = torn[0]!.result;
    damage(dataDir, victim.physicalOffset, recordSizeAt(dataDir, victim.physicalOffset));
    startRecovery(dataDir, start, checkpoint);

    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([]);
    expect(store.recovery.endOffset).toBe(victim.physicalOffset);
    if (start.checkpoint === 'removed') expect(store.recovery.fromOffset).toBe(0);
    await expectIntact(store, kept);
    await expectGone(store, torn);
    await expectContinues(dataDir, store, kept, torn);
  });

  const batchDamage: Array<{ name: string; damage: (dir: string, batch: AppendResult[]) => void }> = [
    {
      name: 'last record zeroed',
      damage: (dir, batch) => {
        const at = batch.at(-1)!.physicalOffset;
        writeAt(dir, at, zeros(recordSizeAt(dir, at)));
      },
    },
    {
      name: 'last record garbage',
      damage: (dir, batch) => {
        const at = batch.at(-1)!.physicalOffset;
        writeAt(dir, at, garbage(recordSizeAt(dir, at)));
      },
    },
    {
      name: 'last record half written',
      damage: (dir, batch) => {
        const at = batch.at(-1)!.physicalOffset;
        const size = recordSizeAt(dir, at);
        writeAt(dir, at + (size >> 1), zeros(size - (size >> 1)));
      },
    },
    {
      // Pages of one write can reach the disk out of order: a lost page in the middle.
      name: 'middle records zeroed, last record intact',
      damage: (dir, batch) => {
        const from = batch[1]!.physicalOffset;
        writeAt(dir, from, zeros(batch[3]!.physicalOffset - from));
      },
    },
  ];

  it.each(batchDamage)('drops a whole batch whose $name', async ({ damage }) => {
    const dataDir = dirs.make();
    const { checkpoint, torn, kept } = await writeLog(dataDir, async (store, log) =>
      append(store, log, [
        message('t', 0, 600),
        message('u', 0, 601),
        message('t', 1, 602),
        message('t', 0, 603),
        message('u', 0, 604),
      ]),
    );
    damage(dataDir, torn.map((a) => a.result));
    startRecovery(dataDir, start, checkpoint);

    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([]);
    expect(store.recovery.endOffset).toBe(torn[0]!.result.physicalOffset);
    // The first four records are intact on disk, but their batch is not: none of them is served.
    await expectIntact(store, kept);
    await expectGone(store, torn);
    await expectContinues(dataDir, store, kept, torn);
  });

  it('drops a torn record that began a new key-index file', async () => {
    const dataDir = dirs.make();
    // writeLog indexes 53 keys before `last`: 11 more fill the second file, the torn one starts the third.
    const { checkpoint, torn, kept } = await writeLog(dataDir, async (store, log) => {
      for (let n = 800; n < 811; n++) await append(store, log, [message('t', n % 2, n)]);
      return append(store, log, [message('u', 0, 811)]);
    });
    expect(fs.readdirSync(path.join(dataDir, 'index'))).toHaveLength(3);
    const victim = torn[0]!.result;
    writeAt(dataDir, victim.physicalOffset + 30, zeros(recordSizeAt(dataDir, victim.physicalOffset) - 30));
    startRecovery(dataDir, start, checkpoint);

    const store = await stores.open(dataDir);
    expect(store.recovery.endOffset).toBe(victim.physicalOffset);
    await expectIntact(store, kept);
    await expectGone(store, torn);
    await expectContinues(dataDir, store, kept, torn);
  });

  it('drops a torn batch that spans two key-index files', async () => {
    const dataDir = dirs.make();
    // 53 + 9 keys leave room for two entries in the second file: the batch's first two fill it.
    const { checkpoint, torn, kept } = await writeLog(dataDir, async (store, log) => {
      for (let n = 800; n < 809; n++) await append(store, log, [message('t', n % 2, n)]);
      return append(store, log, [809, 810, 811, 812, 813].map((n) => message(n % 3 === 0 ? 'u' : 't', n % 2, n)));
    });
    expect(fs.readdirSync(path.join(dataDir, 'index'))).toHaveLength(3);
    writeAt(dataDir, torn.at(-1)!.result.physicalOffset + 20, garbage(16));
    startRecovery(dataDir, start, checkpoint);

    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([]);
    expect(store.recovery.endOffset).toBe(torn[0]!.result.physicalOffset);
    await expectIntact(store, kept);
    await expectGone(store, torn);
    await expectContinues(dataDir, store, kept, torn);
  });

  it('drops a torn record that is the first of a new segment', async () => {
    const dataDir = dirs.make();
    const { checkpoint, torn, kept } = await writeLog(dataDir, async (store, log) => {
      // Fill the segment until an append lands at the start of the next one.
      for (let n = 700; ; n++) {
        const [a] = await append(store, log, [message('t', n % 2, n, { body: Buffer.alloc(900, n & 0xff) })]);
        if (a!.result.physicalOffset % smallStore.segmentSizeBytes === 0) return [a!];
      }
    });
    const victim = torn[0]!.result;
    const size = recordSizeAt(dataDir, victim.physicalOffset);
    writeAt(dataDir, victim.physicalOffset + 40, zeros(size - 40));
    startRecovery(dataDir, start, checkpoint);

    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([]);
    expect(store.recovery.endOffset).toBe(victim.physicalOffset);
    await expectIntact(store, kept);
    await expectGone(store, torn);
    await expectContinues(dataDir, store, kept, torn);
  });
});

describe('a record copy inside a torn or damaged record', () => {
  /**
   * A message whose body is the exact bytes of an earlier record: a valid record, CRC and all, that
   * sits where it does not belong. Recovery looking past damage for the next good record must not
   * take it for one, or it would serve a second copy of the old message.
   */
  async function logWithRecordCopy(dataDir: string, after: number) {
    const store = await stores.open(dataDir);
    const log: Acked[] = [];
    for (let n = 0; n < 20; n++) await append(store, log, [message('t', n % 2, n)]);
    await store.checkpoint();
    const checkpoint = readCheckpointFile(dataDir);
    const original = log[7]!;
    const copy = readAt(dataDir, original.result.physicalOffset, recordSizeAt(dataDir, original.result.physicalOffset));
    const [carrier] = await append(store, log, [message('u', 0, 100, { body: copy, keys: ['carrier'] })]);
    for (let n = 0; n < after; n++) await append(store, log, [message('t', n % 2, 200 + n)]);
    await stores.close(store);
    writeCheckpointFile(dataDir, checkpoint);
    return { log, original, carrier: carrier!, copyAt: carrier!.result.physicalOffset + 72 };
  }

  it('is not taken for a record when the carrier is a torn tail', async () => {
    const dataDir = dirs.make();
    const { log, original, carrier, copyAt } = await logWithRecordCopy(dataDir, 0);
    // Tear the carrier after the embedded copy: its own CRC fails, the copy inside still verifies.
    const size = recordSizeAt(dataDir, carrier.result.physicalOffset);
    const copyEnd = copyAt + recordSizeAt(dataDir, copyAt);
    writeAt(dataDir, copyEnd, zeros(carrier.result.physicalOffset + size - copyEnd));
    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([]);
    expect(store.recovery.endOffset).toBe(carrier.result.physicalOffset);
    await expectIntact(store, log.filter((a) => a !== carrier));
    const read = await store.read('t', original.input.queueId, original.result.queueOffset, { maxMessages: 1 });
    expect(read.messages[0]!.physicalOffset).toBe(original.result.physicalOffset);
    await expectGone(store, [carrier]);
    const [next] = await append(store, [], [message('u', 0, 300)]);
    expect(next!.result).toMatchObject({ physicalOffset: carrier.result.physicalOffset, queueOffset: 0 });
  });

  it('is skipped when looking for the record after damage in the middle', async () => {
    const dataDir = dirs.make();
    const { log, original, carrier } = await logWithRecordCopy(dataDir, 5);
    // Damage the carrier's header: the copy in its body is the first record-looking bytes after.
    writeAt(dataDir, carrier.result.physicalOffset + 20, garbage(8));
    const store = await stores.open(dataDir);
    const size = recordSizeAt(dataDir, carrier.result.physicalOffset);
    expect(store.recovery.corruptions).toEqual([
      expect.objectContaining({ fromOffset: carrier.result.physicalOffset, toOffset: carrier.result.physicalOffset + size }),
    ]);
    await expectIntact(store, log.filter((a) => a !== carrier));
    const read = await store.read('t', original.input.queueId, original.result.queueOffset, { maxMessages: 1 });
    expect(read.messages[0]!.physicalOffset).toBe(original.result.physicalOffset);
    // The carrier's own entry survives from before the crash; reading it reports the damage.
    const carrierRead = await store.read('u', 0, 0);
    expect(carrierRead.messages).toEqual([]);
    expect(carrierRead.corrupted).toEqual([expect.objectContaining({ queueOffset: 0, physicalOffset: carrier.result.physicalOffset })]);
  });
});
