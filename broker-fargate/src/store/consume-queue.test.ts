import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConsumeQueue,
  consumeQueueEntryBytes,
  decodeEntry,
  encodeEntry,
  writeEntry,
  type ConsumeQueueEntry,
} from './consume-queue.ts';

const entriesPerFile = 1024;
const dirs: string[] = [];
const queues: ConsumeQueue[] = [];

afterEach(() => {
  for (const q of queues.splice(0)) q.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cq-'));
  dirs.push(dir);
  return dir;
}

function openQueue(root: string, perFile = entriesPerFile, topic = 'TopicA', queueId = 0): ConsumeQueue {
  const q = new ConsumeQueue(root, topic, queueId, perFile);
  queues.push(q);
  q.load();
  return q;
}

/** The entry written at queue offset n in most tests: 100-byte records laid end to end. */
function entryFor(n: number): ConsumeQueueEntry {
  return { commitLogOffset: n * 100, size: 100, tagCode: n % 7 };
}

function appendRange(q: ConsumeQueue, from: number, to: number, entry = entryFor): void {
  for (let n = from; n < to; n++) q.append(n, entry(n));
}

function readEntries(q: ConsumeQueue, offset: number, count: number): ConsumeQueueEntry[] {
  const out = Buffer.alloc(count * consumeQueueEntryBytes);
  const got = q.read(offset, count, out);
  return Array.from({ length: got }, (_, i) => decodeEntry(out, i * consumeQueueEntryBytes));
}

function queueDir(root: string, topic = 'TopicA', queueId = 0): string {
  return path.join(root, encodeURIComponent(topic), String(queueId));
}

function filesOf(root: string, topic = 'TopicA', queueId = 0): Array<[string, number]> {
  const dir = queueDir(root, topic, queueId);
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => [name, fs.statSync(path.join(dir, name)).size]);
}

const fileName = (start: number) => String(start).padStart(20, '0');
const hole: ConsumeQueueEntry = { commitLogOffset: 0, size: 0, tagCode: 0 };

describe('ConsumeQueue appends and reads', () => {
  it('splits contiguous entries into files named by their first queue offset', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    expect(q.maxOffset).toBe(3000);
    q.flush();
    expect(filesOf(root)).toEqual([
      [fileName(0), 1024 * consumeQueueEntryBytes],
      [fileName(1024), 1024 * consumeQueueEntryBytes],
      [fileName(2048), 952 * consumeQueueEntryBytes],
    ]);
    expect(q.minOffset).toBe(0);
    expect(q.maxOffset).toBe(3000);
  });

  it('reads ranges that cross file boundaries', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 3000);
    q.flush();
    const got = readEntries(q, 1000, 1100);
    expect(got).toHaveLength(1100);
    got.forEach((entry, i) => expect(entry).toEqual(entryFor(1000 + i)));
    // The whole queue in one read: two boundaries.
    const all = readEntries(q, 0, 3000);
    expect(all).toEqual(Array.from({ length: 3000 }, (_, n) => entryFor(n)));
  });

  it('stops a read at the last entry and returns nothing past it', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 3000);
    q.flush();
    expect(readEntries(q, 2990, 50).map((e) => e.commitLogOffset)).toEqual(
      Array.from({ length: 10 }, (_, i) => (2990 + i) * 100),
    );
    expect(readEntries(q, 3000, 10)).toEqual([]);
    expect(q.entryAt(2999)).toEqual(entryFor(2999));
    expect(q.entryAt(3000)).toBeUndefined();
  });

  it('counts pending entries in maxOffset but reads only what was written', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 10);
    expect(q.maxOffset).toBe(10);
    expect(readEntries(q, 0, 10)).toEqual([]);
    q.flush();
    expect(readEntries(q, 0, 10)).toHaveLength(10);
  });

  it('puts each queue in its own directory, with the topic escaped', () => {
    const root = tempDir();
    const q = openQueue(root, entriesPerFile, '%RETRY%group-1', 3);
    appendRange(q, 0, 2);
    q.flush();
    expect(filesOf(root, '%RETRY%group-1', 3)).toEqual([[fileName(0), 2 * consumeQueueEntryBytes]]);
    expect(fs.readdirSync(root)).toEqual(['%25RETRY%25group-1']);
  });

  it('leaves a hole inside a file that reads back as zero entries', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 10);
    q.append(20, entryFor(20));
    appendRange(q, 21, 25);
    expect(q.maxOffset).toBe(25);
    q.flush();
    const got = readEntries(q, 0, 25);
    expect(got).toHaveLength(25);
    got.forEach((entry, n) => expect(entry).toEqual(n >= 10 && n < 20 ? hole : entryFor(n)));
    expect(q.entryAt(15)?.size).toBe(0);
  });

  it('reads a hole at the end of a file, or over a missing file, as zero entries (not as the end)', () => {
    // A record lost to corruption just before a file boundary leaves file 0 short: entries
    // 1023..1024 are holes, 1025 is written. The store's read loop treats a short read as "no
    // new messages" and hands the consumer back the same offset, so it never gets past 1023.
    const q = openQueue(tempDir());
    appendRange(q, 0, 1023);
    q.append(1025, entryFor(1025));
    // A hole that swallows whole files: nothing is written for 1026..3071.
    q.append(3072, entryFor(3072));
    q.flush();
    expect(q.maxOffset).toBe(3073);
    expect(readEntries(q, 1023, 3)).toEqual([hole, hole, entryFor(1025)]);
    const across = readEntries(q, 1020, 3073 - 1020);
    expect(across).toHaveLength(3073 - 1020);
    expect(across.at(-1)).toEqual(entryFor(3072));
  });

  it('rewrites an entry in place, flushed or pending, without moving maxOffset', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 100);
    q.flush();
    const replaced = { commitLogOffset: 999_999, size: 33, tagCode: 5 };
    q.append(50, replaced);
    expect(q.maxOffset).toBe(100);
    expect(q.entryAt(50)).toEqual(replaced);
    expect(q.entryAt(49)).toEqual(entryFor(49));
    expect(q.entryAt(51)).toEqual(entryFor(51));

    // Rewriting an offset that is still pending flushes first, then overwrites it.
    appendRange(q, 100, 110);
    q.append(105, replaced);
    expect(q.maxOffset).toBe(110);
    expect(q.entryAt(105)).toEqual(replaced);
    expect(q.entryAt(109)).toEqual(entryFor(109));
    // Appending resumes at the end.
    q.append(110, entryFor(110));
    q.flush();
    expect(readEntries(q, 104, 10).map((e) => e.commitLogOffset)).toEqual([10400, 999_999, 10600, 10700, 10800, 10900, 11000]);
  });

  it('hands over the descriptors of written files once for the checkpoint', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 1500);
    const fds = q.takeDirty();
    expect(fds).toHaveLength(2);
    for (const fd of fds) expect(() => fs.fsyncSync(fd)).not.toThrow();
    expect(q.takeDirty()).toEqual([]);
    q.append(1500, entryFor(1500));
    expect(q.takeDirty()).toHaveLength(1);
  });

  it('removes its directory on destroy', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 5);
    q.flush();
    q.destroy();
    expect(fs.existsSync(queueDir(root))).toBe(false);
  });
});

describe('ConsumeQueue truncation', () => {
  it('truncateTo drops entries at and past the offset, deleting whole files', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    q.truncateTo(1500);
    expect(q.maxOffset).toBe(1500);
    expect(filesOf(root)).toEqual([
      [fileName(0), 1024 * consumeQueueEntryBytes],
      [fileName(1024), 476 * consumeQueueEntryBytes],
    ]);
    expect(q.entryAt(1499)).toEqual(entryFor(1499));
    expect(q.entryAt(1500)).toBeUndefined();
    // Appending continues at the cut.
    q.append(1500, { commitLogOffset: 1, size: 2, tagCode: 3 });
    q.flush();
    expect(q.entryAt(1500)).toEqual({ commitLogOffset: 1, size: 2, tagCode: 3 });
    expect(q.maxOffset).toBe(1501);
  });

  it('truncateTo at a file boundary deletes the files from there on', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    q.truncateTo(1024);
    expect(q.maxOffset).toBe(1024);
    expect(filesOf(root)).toEqual([[fileName(0), 1024 * consumeQueueEntryBytes]]);
  });

  it('truncateTo(0) empties the queue but keeps its first file', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 2000);
    q.truncateTo(0);
    expect(q.maxOffset).toBe(0);
    expect(filesOf(root)).toEqual([[fileName(0), 0]]);
    expect(readEntries(q, 0, 10)).toEqual([]);
  });

  it('truncateTo past the end changes nothing', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 10);
    q.truncateTo(50);
    expect(q.maxOffset).toBe(10);
    expect(readEntries(q, 0, 10)).toHaveLength(10);
  });

  it('truncateByLogEnd drops the entries whose records start at or past the log end', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 3000);
    q.truncateByLogEnd(1500 * 100 + 50);
    expect(q.maxOffset).toBe(1501);
    expect(q.entryAt(1500)).toEqual(entryFor(1500));
    q.truncateByLogEnd(1500 * 100);
    expect(q.maxOffset).toBe(1500);
    q.truncateByLogEnd(10 ** 12);
    expect(q.maxOffset).toBe(1500);
    q.truncateByLogEnd(0);
    expect(q.maxOffset).toBe(0);
  });

  it('truncateByLogEnd also drops the holes left at the new end', () => {
    const q = openQueue(tempDir());
    appendRange(q, 0, 10);
    q.append(20, { commitLogOffset: 5000, size: 100, tagCode: 0 });
    q.truncateByLogEnd(5000);
    expect(q.maxOffset).toBe(10);
    expect(q.entryAt(9)).toEqual(entryFor(9));
  });
});

describe('ConsumeQueue retention', () => {
  it('deletes files wholly below the log offset and finds the first surviving entry', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    expect(q.dropBelow(150_050)).toBe(1501);
    expect(q.minOffset).toBe(1501);
    expect(filesOf(root).map(([name]) => name)).toEqual([fileName(1024), fileName(2048)]);
    expect(q.entryAt(1500)).toBeUndefined();
    expect(q.entryAt(1501)).toEqual(entryFor(1501));
    // A read that starts below the minimum returns only the part of its range at or above it.
    expect(readEntries(q, 1499, 4)).toEqual([entryFor(1501), entryFor(1502)]);
    expect(readEntries(q, 0, 10)).toEqual([]);
    expect(q.maxOffset).toBe(3000);
  });

  it('deletes a file whose last record ends exactly at the log offset', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    expect(q.dropBelow(1024 * 100)).toBe(1024);
    expect(filesOf(root).map(([name]) => name)).toEqual([fileName(1024), fileName(2048)]);
  });

  it('keeps everything for a log offset of 0 and keeps the newest file when everything is below', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    expect(q.dropBelow(0)).toBe(0);
    expect(filesOf(root)).toHaveLength(3);
    expect(q.dropBelow(10 ** 12)).toBe(3000);
    expect(filesOf(root).map(([name]) => name)).toEqual([fileName(2048)]);
    expect(q.minOffset).toBe(3000);
    expect(readEntries(q, 2990, 10)).toEqual([]);
    // The queue carries on from where it was.
    q.append(3000, entryFor(3000));
    q.flush();
    expect(readEntries(q, 3000, 10)).toEqual([entryFor(3000)]);
  });

  it('finds the same minimum as a linear scan for any increasing log offsets', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 120 }),
        fc.nat(60_000),
        (sizes, minLog) => {
          const root = tempDir();
          const q = new ConsumeQueue(root, 'P', 0, 16);
          try {
            q.load();
            const entries: ConsumeQueueEntry[] = [];
            let at = 0;
            for (const size of sizes) {
              entries.push({ commitLogOffset: at, size, tagCode: 0 });
              at += size;
            }
            entries.forEach((entry, n) => q.append(n, entry));
            const expected = entries.findIndex((e) => e.commitLogOffset >= minLog);
            const got = q.dropBelow(minLog);
            expect(got).toBe(expected === -1 ? entries.length : expected);
            // Every entry at or past the minimum is still readable.
            expect(readEntries(q, got, entries.length)).toEqual(entries.slice(got));
            // Every file left holds at least one entry at or past the minimum, or is the newest.
            const starts = fs.readdirSync(queueDir(root, 'P')).map(Number).sort((a, b) => a - b);
            for (const start of starts.slice(0, -1)) expect(start + 16).toBeGreaterThan(got);
          } finally {
            q.destroy();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps a file that ends in a hole while it holds live entries', () => {
    // File 0 stops at 1023 (1023 and 1024 are holes): its last slot says nothing about the rest.
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 1023);
    q.append(1025, entryFor(1025));
    q.flush();
    expect(q.dropBelow(50)).toBe(1);
    expect(filesOf(root).map(([name]) => name)).toEqual([fileName(0), fileName(1024)]);
    expect(q.entryAt(1022)).toEqual(entryFor(1022));
  });

  it('keeps a live entry when a hole sits between it and the new minimum', () => {
    // Entries at log offsets 0, 100, (hole), 300, 400; records below 50 are gone. The entry at
    // queue offset 1 (log 100) survives, but the binary search steps right on the hole and
    // lands past it: minOffset becomes 3 and message 1 is silently skipped by consumers.
    const q = openQueue(tempDir());
    q.append(0, { commitLogOffset: 0, size: 100, tagCode: 0 });
    q.append(1, { commitLogOffset: 100, size: 100, tagCode: 0 });
    q.append(3, { commitLogOffset: 300, size: 100, tagCode: 0 });
    q.append(4, { commitLogOffset: 400, size: 100, tagCode: 0 });
    q.flush();
    expect(q.dropBelow(50)).toBe(1);
    expect(q.entryAt(1)).toEqual({ commitLogOffset: 100, size: 100, tagCode: 0 });
  });
});

describe('ConsumeQueue reopen', () => {
  it('recovers minOffset and maxOffset from the files after a reopen', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    q.flush();
    q.close();
    const again = openQueue(root);
    expect(again.minOffset).toBe(0);
    expect(again.maxOffset).toBe(3000);
    expect(readEntries(again, 1020, 10)).toEqual(Array.from({ length: 10 }, (_, i) => entryFor(1020 + i)));
    again.append(3000, entryFor(3000));
    again.flush();
    expect(again.entryAt(3000)).toEqual(entryFor(3000));
  });

  it('starts from the first file left by retention', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 3000);
    q.dropBelow(150_050);
    q.close();
    const again = openQueue(root);
    // The exact minimum is not stored: a reopen starts at the first file, and the store runs
    // retention again on open.
    expect(again.minOffset).toBe(1024);
    expect(again.maxOffset).toBe(3000);
    expect(again.dropBelow(150_050)).toBe(1501);
  });

  it('trims a zero tail (preallocated or torn) on load and appends after the last real entry', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 10);
    q.flush();
    q.close();
    const file = path.join(queueDir(root), fileName(0));
    fs.appendFileSync(file, Buffer.alloc(5 * consumeQueueEntryBytes + 7));
    const again = openQueue(root);
    expect(again.maxOffset).toBe(10);
    expect(fs.statSync(file).size).toBe(10 * consumeQueueEntryBytes);
    again.append(10, entryFor(10));
    again.flush();
    expect(readEntries(again, 0, 20)).toEqual(Array.from({ length: 11 }, (_, n) => entryFor(n)));
  });

  it('ignores a torn partial entry at the end', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 10);
    q.flush();
    q.close();
    const file = path.join(queueDir(root), fileName(0));
    fs.appendFileSync(file, encodeEntry(entryFor(10)).subarray(0, 9));
    const again = openQueue(root);
    expect(again.maxOffset).toBe(10);
    again.append(10, entryFor(10));
    again.flush();
    expect(fs.statSync(file).size).toBe(11 * consumeQueueEntryBytes);
    expect(again.entryAt(10)).toEqual(entryFor(10));
  });

  it('deletes a last file that holds only zeros', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 1024);
    q.flush();
    q.close();
    fs.writeFileSync(path.join(queueDir(root), fileName(1024)), Buffer.alloc(5 * consumeQueueEntryBytes));
    const again = openQueue(root);
    expect(again.maxOffset).toBe(1024);
    expect(filesOf(root).map(([name]) => name)).toEqual([fileName(0)]);
  });

  it('keeps holes that are followed by entries', () => {
    const root = tempDir();
    const q = openQueue(root);
    appendRange(q, 0, 5);
    q.append(8, entryFor(8));
    q.flush();
    q.close();
    const again = openQueue(root);
    expect(again.maxOffset).toBe(9);
    expect(again.entryAt(6)).toEqual(hole);
  });

  it('loads an empty directory as an empty queue and ignores foreign files', () => {
    const root = tempDir();
    fs.mkdirSync(queueDir(root), { recursive: true });
    fs.writeFileSync(path.join(queueDir(root), 'notes.txt'), 'not a queue file');
    const q = openQueue(root);
    expect(q.minOffset).toBe(0);
    expect(q.maxOffset).toBe(0);
  });
});

describe('consume-queue entry codec', () => {
  it('lays an entry out as commitLogOffset u64, size u32, tagCode u64, little-endian', () => {
    const entry = { commitLogOffset: 0x12_3456_789a, size: 0x200, tagCode: 0xe306_9284 };
    const bytes = encodeEntry(entry);
    expect(bytes).toHaveLength(consumeQueueEntryBytes);
    expect(bytes.toString('hex')).toBe('9a78563412000000' + '00020000' + '849206e300000000');
    expect(decodeEntry(Buffer.from('9a78563412000000' + '00020000' + '849206e300000000', 'hex'), 0)).toEqual(entry);
  });

  it('encodes a hole as twenty zero bytes', () => {
    expect(encodeEntry(hole).equals(Buffer.alloc(20))).toBe(true);
    expect(decodeEntry(Buffer.alloc(20), 0)).toEqual(hole);
  });

  it('round-trips any entry at any offset', () => {
    fc.assert(
      fc.property(
        fc.record({
          commitLogOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          size: fc.integer({ min: 0, max: 0xffffffff }),
          // A tag hash is CRC32C + 1, so up to 2^32.
          tagCode: fc.integer({ min: 0, max: 2 ** 32 }),
        }),
        fc.nat(40),
        (entry, offset) => {
          const buf = Buffer.alloc(offset + consumeQueueEntryBytes + 4, 0xee);
          writeEntry(buf, offset, entry);
          expect(decodeEntry(buf, offset)).toEqual(entry);
          expect(buf.subarray(offset + consumeQueueEntryBytes).every((b) => b === 0xee)).toBe(true);
          expect(encodeEntry(entry).equals(buf.subarray(offset, offset + consumeQueueEntryBytes))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
