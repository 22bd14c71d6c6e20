/**
 * Bit rot on real files: one bit flipped inside one record. Past the checkpoint, recovery meets
 * the record and must report it, keep the records after it, and never dispatch it. Before the
 * checkpoint (or in a sealed segment) recovery does not look, so reads must find it: skip it,
 * report it in `ReadResult.corrupted`, serve its neighbours, and make a lookup by id fail with
 * STORE_CORRUPTED rather than return the damaged bytes. fast-check picks record and bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../core/errors.ts';
import type { AppendResult, MessageStore } from '../../broker-fargate/src/store/message-store.ts';
import { sizeRecord, type RecordInput } from '../../broker-fargate/src/store/record.ts';
import {
  crashSnapshot,
  flipBit,
  message,
  OpenStores,
  readCheckpointFile,
  recordSizeAt,
  segmentFiles,
  smallStore,
  TempDirs,
  writeAt,
  writeCheckpointFile,
} from './store-files.ts';

const dirs = new TempDirs();
const stores = new OpenStores();
const runs = 12;

afterEach(async () => {
  await stores.closeAll();
});
afterAll(() => dirs.removeAll());

interface Stored {
  input: RecordInput;
  result: AppendResult;
  size: number;
}

const queues = [
  { topic: 'flip', queueId: 0 },
  { topic: 'flip', queueId: 1 },
  { topic: 'other', queueId: 0 },
] as const;

/** Appends `count` records in batches of 1..6 over three queues; returns them in log order. */
async function fill(store: MessageStore, first: number, count: number): Promise<Omit<Stored, 'size'>[]> {
  const out: Omit<Stored, 'size'>[] = [];
  let n = first;
  while (n < first + count) {
    const batch: RecordInput[] = [];
    for (let i = 0; i < 1 + (n % 6) && n < first + count; i++, n++) {
      const q = queues[(n * 7) % queues.length]!;
      batch.push(message(q.topic, q.queueId, n));
    }
    const results = await store.append(batch);
    out.push(...batch.map((input, i) => ({ input, result: results[i]! })));
  }
  return out;
}

function withSizes(dataDir: string, records: Omit<Stored, 'size'>[]): Stored[] {
  return records.map((r) => ({ ...r, size: recordSizeAt(dataDir, r.result.physicalOffset) }));
}

/** Every record but `victim` is served intact; `victim` is reported, never served. */
async function expectAllButVictim(store: MessageStore, records: Stored[], victim: Stored): Promise<void> {
  for (const { topic, queueId } of queues) {
    const expected = records.filter((r) => r.input.topic === topic && r.input.queueId === queueId);
    const read = await store.read(topic, queueId, 0, { maxMessages: 10_000 });
    const served = read.messages.map((m) => m.queueOffset);
    expect(served).toEqual(expected.filter((r) => r !== victim).map((r) => r.result.queueOffset));
    for (const m of read.messages) {
      const r = expected.find((e) => e.result.queueOffset === m.queueOffset)!;
      expect(Buffer.from(m.body).equals(Buffer.from(r.input.body))).toBe(true);
    }
    if (victim.input.topic === topic && victim.input.queueId === queueId) {
      expect(read.corrupted).toEqual([
        expect.objectContaining({ queueOffset: victim.result.queueOffset, physicalOffset: victim.result.physicalOffset }),
      ]);
    } else {
      expect(read.corrupted).toEqual([]);
    }
  }
}

/** Neighbours in the same read are served; the victim is stepped over and reported. */
async function expectNeighboursServed(store: MessageStore, records: Stored[], victim: Stored): Promise<void> {
  const { topic, queueId } = victim.input;
  const from = Math.max(0, victim.result.queueOffset - 2);
  const read = await store.read(topic, queueId, from, { maxMessages: 5 });
  const inQueue = records.filter((r) => r.input.topic === topic && r.input.queueId === queueId);
  const window = inQueue.filter((r) => r.result.queueOffset >= from && r.result.queueOffset < from + 5);
  expect(read.messages.map((m) => m.queueOffset)).toEqual(window.filter((r) => r !== victim).map((r) => r.result.queueOffset));
  expect(read.corrupted.map((c) => c.queueOffset)).toEqual([victim.result.queueOffset]);
  expect(read.nextOffset).toBe(from + window.length);
  // A tag filter that selects the victim meets the same damage.
  const tagged = await store.read(topic, queueId, victim.result.queueOffset, { maxMessages: 1, tags: new Set([victim.input.tag!]) });
  expect(tagged.messages.map((m) => m.queueOffset)).not.toContain(victim.result.queueOffset);
  expect(tagged.corrupted.map((c) => c.queueOffset)).toContain(victim.result.queueOffset);
}

async function expectLookupsRefuse(store: MessageStore, victim: Stored): Promise<void> {
  const error = await store.getById(victim.result.messageId).then(
    (m) => m,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SkyrocketError);
  expect(error).toMatchObject({ code: 'STORE_CORRUPTED', retriable: false });
  expect(await store.queryByKey(victim.input.topic, victim.input.keys![0]!)).toEqual([]);
}

/** Byte and bit inside a record; the size field is left to its own test below. */
const flipArb = (count: number) =>
  fc.record({
    record: fc.nat({ max: count - 1 }),
    where: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    bit: fc.integer({ min: 0, max: 7 }),
  });

describe('bit flip past the checkpoint, in the active segment', () => {
  let pristine: string;
  let checkpoint: Buffer;
  let before: Stored[];
  let after: Stored[];

  beforeAll(async () => {
    pristine = dirs.make();
    // Segments large enough that everything here stays in the one active segment.
    const store = await stores.open(pristine, { segmentSizeBytes: 1024 * 1024, maxGroupBytes: 64 * 1024 });
    const first = await fill(store, 0, 60);
    await store.checkpoint();
    checkpoint = readCheckpointFile(pristine);
    const second = await fill(store, 60, 120);
    await stores.close(store);
    before = withSizes(pristine, first);
    after = withSizes(pristine, second);
    expect(segmentFiles(pristine).filter((s) => s.file.includes('sealed'))).toEqual([]);
  });

  it('is reported by recovery, never served, and the records after it are kept', async () => {
    await fc.assert(
      fc.asyncProperty(flipArb(after.length - 1), async ({ record, where, bit }) => {
        // The last record is excluded: damage with nothing valid after it is a torn tail.
        const victim = after[record]!;
        const next = after[record + 1]!;
        const dataDir = crashSnapshot(pristine, dirs.make());
        writeCheckpointFile(dataDir, checkpoint);
        const byte = 4 + Math.floor(where * (victim.size - 4));
        flipBit(dataDir, victim.result.physicalOffset + byte, bit);

        const store = await stores.open(dataDir, { segmentSizeBytes: 1024 * 1024, maxGroupBytes: 64 * 1024 });
        expect(store.recovery.corruptions).toEqual([
          expect.objectContaining({ fromOffset: victim.result.physicalOffset, toOffset: next.result.physicalOffset }),
        ]);
        expect(store.recovery.truncatedBytes).toBe(0);
        const all = [...before, ...after];
        await expectAllButVictim(store, all, victim);
        await expectNeighboursServed(store, all, victim);
        await expectLookupsRefuse(store, victim);
        // Appends continue after the last record, at the next offset of each queue.
        const last = after.at(-1)!;
        const input = message(victim.input.topic, victim.input.queueId, 900);
        const [added] = await store.append([input]);
        expect(added!.physicalOffset).toBe(last.result.physicalOffset + last.size);
        const inQueue = all.filter((r) => r.input.topic === victim.input.topic && r.input.queueId === victim.input.queueId);
        expect(added!.queueOffset).toBe(inQueue.at(-1)!.result.queueOffset + 1);
        await stores.close(store);

        // Reopened, the damage lies before the checkpoint: reads still step over it.
        const reopened = await stores.open(dataDir, { segmentSizeBytes: 1024 * 1024, maxGroupBytes: 64 * 1024 });
        expect(reopened.recovery.corruptions).toEqual([]);
        const withAdded = [...all, { input, result: added!, size: recordSizeAt(dataDir, added!.physicalOffset) }];
        await expectAllButVictim(reopened, withAdded, victim);
        await expectNeighboursServed(reopened, withAdded, victim);
        await expectLookupsRefuse(reopened, victim);
        await stores.close(reopened);
        fs.rmSync(dataDir, { recursive: true, force: true });
      }),
      { numRuns: runs },
    );
  });
});

describe('bit flip before the checkpoint', () => {
  let pristine: string;
  let records: Stored[];

  beforeAll(async () => {
    pristine = dirs.make();
    const store = await stores.open(pristine);
    records = withSizes(pristine, await fill(store, 0, 1200));
    await stores.close(store);
    // 64 KiB segments: most records are in sealed segments, the newest in the active one.
    expect(segmentFiles(pristine).filter((s) => s.file.includes(`${path.sep}sealed${path.sep}`)).length).toBeGreaterThanOrEqual(3);
  });

  it('is stepped over and reported by reads, and refused by id, in sealed and active segments', async () => {
    const sealedEnd = Math.max(...segmentFiles(pristine).filter((s) => s.file.includes('sealed')).map((s) => s.baseOffset + s.sizeBytes));
    const hits = { sealed: 0, active: 0 };
    await fc.assert(
      fc.asyncProperty(flipArb(records.length), async ({ record, where, bit }) => {
        const victim = records[record]!;
        hits[victim.result.physicalOffset < sealedEnd ? 'sealed' : 'active']++;
        const dataDir = crashSnapshot(pristine, dirs.make());
        flipBit(dataDir, victim.result.physicalOffset + 4 + Math.floor(where * (victim.size - 4)), bit);

        const store = await stores.open(dataDir);
        expect(store.recovery.corruptions).toEqual([]);
        await expectNeighboursServed(store, records, victim);
        await expectAllButVictim(store, records, victim);
        await expectLookupsRefuse(store, victim);
        await stores.close(store);
        fs.rmSync(dataDir, { recursive: true, force: true });
      }),
      {
        numRuns: runs,
        // Always one record deep in a sealed segment and one in the active segment.
        examples: [
          [{ record: 5, where: 0.5, bit: 3 }],
          [{ record: records.length - 3, where: 0.3, bit: 6 }],
        ],
      },
    );
    expect(hits.sealed).toBeGreaterThan(0);
    expect(hits.active).toBeGreaterThan(0);
  });
});

describe('a bit flip that zeroes the size field', () => {
  /** A record of exactly 256 bytes: flipping bit 8 of its size leaves a size of 0. */
  function record256(n: number): RecordInput {
    const base = message('flip', 0, n, { body: Buffer.alloc(0) });
    const overhead = sizeRecord(base, smallStore.storeHost).totalSize;
    return { ...base, body: Buffer.alloc(256 - overhead, 0x5a) };
  }

  async function logWith256(dataDir: string): Promise<{ checkpoint: Buffer; records: Stored[]; victim: Stored }> {
    const store = await stores.open(dataDir);
    const first = await fill(store, 0, 20);
    await store.checkpoint();
    const checkpoint = readCheckpointFile(dataDir);
    const [r] = await store.append([record256(100)]);
    const rest = await fill(store, 200, 20);
    await stores.close(store);
    const records = withSizes(dataDir, [...first, { input: record256(100), result: r! }, ...rest]);
    const victim = records[first.length]!;
    expect(victim.size).toBe(256);
    flipBit(dataDir, victim.result.physicalOffset + 1, 0);
    expect(recordSizeAt(dataDir, victim.result.physicalOffset)).toBe(0);
    return { checkpoint, records, victim };
  }

  it('past the checkpoint: recovery reports it and keeps the records after it', async () => {
    const dataDir = dirs.make();
    const { checkpoint, records, victim } = await logWith256(dataDir);
    writeCheckpointFile(dataDir, checkpoint);
    const store = await stores.open(dataDir);
    expect(store.recovery.corruptions).toEqual([
      expect.objectContaining({ fromOffset: victim.result.physicalOffset, toOffset: victim.result.physicalOffset + 256 }),
    ]);
    await expectAllButVictim(store, records, victim);
    await expectLookupsRefuse(store, victim);
    const last = records.at(-1)!;
    const [added] = await store.append([message('other', 0, 999)]);
    expect(added!.physicalOffset).toBe(last.result.physicalOffset + last.size);
  });

  it('before the checkpoint: reads report it and a lookup by id is refused', async () => {
    const dataDir = dirs.make();
    const { records, victim } = await logWith256(dataDir);
    const store = await stores.open(dataDir);
    await expectNeighboursServed(store, records, victim);
    await expectAllButVictim(store, records, victim);
    await expectLookupsRefuse(store, victim);
  });
});

describe('a bit flip in the last record of a sealed segment, with nothing valid after it', () => {
  /**
   * A sealed segment was synced before it was sealed, so damage in it is never a torn write: it
   * must be reported and stepped over, not truncated (a sealed segment cannot be), and must not
   * keep the store from opening.
   */
  it('is reported by recovery and the store opens', async () => {
    const dataDir = dirs.make();
    const store = await stores.open(dataDir);
    const log = await fill(store, 0, 10);
    await store.checkpoint();
    const checkpoint = readCheckpointFile(dataDir);
    // Append until a record opens the second segment: that one is torn by the crash.
    for (let n = 10; log.at(-1)!.result.physicalOffset < smallStore.segmentSizeBytes; n++) log.push(...(await fill(store, n, 1)));
    await stores.close(store);
    const records = withSizes(dataDir, log);
    const torn = records.at(-1)!;
    const victim = records.at(-2)!;
    expect(torn.result.physicalOffset).toBe(smallStore.segmentSizeBytes);
    writeCheckpointFile(dataDir, checkpoint);
    writeAt(dataDir, torn.result.physicalOffset, Buffer.alloc(torn.size));
    flipBit(dataDir, victim.result.physicalOffset + (victim.size >> 1), 2);

    const reopened = await stores.open(dataDir);
    expect(reopened.recovery.corruptions).toEqual([
      expect.objectContaining({ fromOffset: victim.result.physicalOffset, toOffset: victim.result.physicalOffset + victim.size }),
    ]);
    const kept = records.slice(0, -1);
    await expectAllButVictim(reopened, kept, victim);
    await expectLookupsRefuse(reopened, victim);
    // Appends continue in the second segment; the victim keeps its queue offset, the torn record's is free.
    const [a] = await reopened.append([message(torn.input.topic, torn.input.queueId, 5000)]);
    expect(a).toMatchObject({ physicalOffset: torn.result.physicalOffset, queueOffset: torn.result.queueOffset });
    const [b] = await reopened.append([message(victim.input.topic, victim.input.queueId, 5001)]);
    expect(b!.queueOffset).toBe(victim.result.queueOffset + 1);
  });
});
