import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyIndex, keyHash, type KeyIndexOptions } from './key-index.ts';

const dirs: string[] = [];
const indexes: KeyIndex[] = [];

afterEach(() => {
  for (const index of indexes.splice(0)) index.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-index-'));
  dirs.push(dir);
  return dir;
}

function openIndex(dir: string, options: Partial<KeyIndexOptions> = {}): KeyIndex {
  const index = new KeyIndex({ dir, slotCount: 64, maxEntries: 256, ...options });
  indexes.push(index);
  index.load();
  return index;
}

const all = [0, Number.MAX_SAFE_INTEGER] as const;
const fileName = (logOffset: number) => String(logOffset).padStart(20, '0');
const filesIn = (dir: string) => fs.readdirSync(dir).sort();

describe('keyHash', () => {
  it('is CRC32C of topic, NUL, key, so the topic is part of the name', () => {
    expect(keyHash('T', 'k')).toBe(crc32c('T\u0000k'));
    expect(keyHash('T', 'k')).not.toBe(keyHash('Tk', ''));
    expect(keyHash('A', 'k')).not.toBe(keyHash('B', 'k'));
  });
});

describe('KeyIndex', () => {
  it('is empty before anything is added', () => {
    const index = openIndex(tempDir());
    expect(index.endLogOffset).toBe(-1);
    expect(index.lookup('T', 'k', ...all, 10)).toEqual([]);
    expect(index.memoryBytes).toBe(0);
  });

  it('finds every record of a key, newest first, and only for its topic', () => {
    const index = openIndex(tempDir());
    index.add('T', ['k1'], 100, 1000);
    index.add('T', ['k1', 'k2'], 200, 2000);
    index.add('Other', ['k1'], 250, 2500);
    index.add('T', ['k1'], 300, 3000);
    expect(index.lookup('T', 'k1', ...all, 10)).toEqual([300, 200, 100]);
    expect(index.lookup('T', 'k2', ...all, 10)).toEqual([200]);
    expect(index.lookup('Other', 'k1', ...all, 10)).toEqual([250]);
    expect(index.lookup('T', 'k3', ...all, 10)).toEqual([]);
    expect(index.endLogOffset).toBe(300);
  });

  it('filters by store time, bounds included', () => {
    const index = openIndex(tempDir());
    for (let i = 1; i <= 5; i++) index.add('T', ['k'], i * 100, i * 1000);
    expect(index.lookup('T', 'k', 2000, 4000, 10)).toEqual([400, 300, 200]);
    expect(index.lookup('T', 'k', 2001, 3999, 10)).toEqual([300]);
    expect(index.lookup('T', 'k', 6000, 7000, 10)).toEqual([]);
    expect(index.lookup('T', 'k', 0, 999, 10)).toEqual([]);
  });

  it('returns at most max results, the newest', () => {
    const index = openIndex(tempDir());
    for (let i = 0; i < 20; i++) index.add('T', ['k'], i * 10, 1000 + i);
    expect(index.lookup('T', 'k', ...all, 3)).toEqual([190, 180, 170]);
    expect(index.lookup('T', 'k', ...all, 0)).toEqual([]);
    // The limit counts matches after the time filter.
    expect(index.lookup('T', 'k', 1000, 1004, 2)).toEqual([40, 30]);
  });

  it('keeps keys apart when every key shares one slot', () => {
    const index = openIndex(tempDir(), { slotCount: 1 });
    const expected = new Map<string, number[]>();
    for (let i = 0; i < 60; i++) {
      const key = `key-${i % 7}`;
      index.add('T', [key], i * 100, 5000 + i);
      expected.set(key, [i * 100, ...(expected.get(key) ?? [])]);
    }
    for (const [key, offsets] of expected) expect(index.lookup('T', key, ...all, 100)).toEqual(offsets);
    expect(index.lookup('T', 'key-7', ...all, 100)).toEqual([]);
  });

  it('agrees with a plain list for any keys in a tiny table, across files', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 3 }), fc.nat(50)), {
          maxLength: 60,
        }),
        fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        fc.nat(60),
        fc.nat(60),
        fc.integer({ min: 1, max: 20 }),
        (records, key, t1, t2, max) => {
          const dir = tempDir();
          const index = new KeyIndex({ dir, slotCount: 3, maxEntries: 8 });
          try {
            index.load();
            // Increasing store times: the index's time bounds assume them.
            let ts = 0;
            const added: Array<{ keys: string[]; offset: number; ts: number }> = [];
            records.forEach(([keys, step], i) => {
              ts += step;
              index.add('T', keys, i * 10, ts);
              added.push({ keys, offset: i * 10, ts });
            });
            const [from, to] = t1 <= t2 ? [t1, t2] : [t2, t1];
            const expected = added
              .filter((r) => r.keys.includes(key) && r.ts >= from && r.ts <= to)
              .map((r) => r.offset)
              .reverse()
              .slice(0, max);
            expect(index.lookup('T', key, from, to, max)).toEqual(expected);
          } finally {
            index.close();
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('ignores a record without keys', () => {
    const dir = tempDir();
    const index = openIndex(dir);
    index.add('T', [], 100, 1000);
    expect(index.endLogOffset).toBe(-1);
    index.flush();
    expect(filesIn(dir)).toEqual([]);
  });

  it('rolls to a new file, named by its first log offset, when the file is full', () => {
    const dir = tempDir();
    const index = openIndex(dir, { maxEntries: 4 });
    for (let i = 0; i < 10; i++) index.add('T', ['k'], i * 100, 1000 + i);
    index.flush();
    expect(filesIn(dir)).toEqual([fileName(0), fileName(400), fileName(800)]);
    // Lookups walk the active file, then the sealed ones newest first.
    expect(index.lookup('T', 'k', ...all, 100)).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(index.lookup('T', 'k', ...all, 6)).toEqual([900, 800, 700, 600, 500, 400]);
    expect(index.lookup('T', 'k', 1002, 1005, 100)).toEqual([500, 400, 300, 200]);
    expect(index.endLogOffset).toBe(900);
  });

  it('starts a new file for a record whose keys do not all fit in the current one', () => {
    const dir = tempDir();
    const index = openIndex(dir, { maxEntries: 4 });
    index.add('T', ['a', 'b', 'c'], 0, 1);
    index.add('T', ['d', 'e'], 100, 2);
    index.flush();
    expect(filesIn(dir)).toEqual([fileName(0), fileName(100)]);
    for (const key of ['a', 'b', 'c']) expect(index.lookup('T', key, ...all, 10)).toEqual([0]);
    for (const key of ['d', 'e']) expect(index.lookup('T', key, ...all, 10)).toEqual([100]);
  });

  it('sizes each file for its slots and entries, and holds only the active one in memory', () => {
    const dir = tempDir();
    const index = openIndex(dir, { slotCount: 10, maxEntries: 4 });
    for (let i = 0; i < 5; i++) index.add('T', ['k'], i, i);
    index.flush();
    const bytes = 48 + 10 * 4 + 4 * 24;
    expect(index.memoryBytes).toBe(bytes);
    for (const name of filesIn(dir)) expect(fs.statSync(path.join(dir, name)).size).toBe(bytes);
  });

  it('keeps everything flushed across close and reopen, and keeps filling the last file', () => {
    const dir = tempDir();
    const index = openIndex(dir, { maxEntries: 4 });
    for (let i = 0; i < 6; i++) index.add('T', [`k${i % 2}`], i * 100, 1000 + i);
    index.close();

    const again = openIndex(dir, { maxEntries: 4 });
    expect(again.endLogOffset).toBe(500);
    expect(again.lookup('T', 'k0', ...all, 10)).toEqual([400, 200, 0]);
    expect(again.lookup('T', 'k1', ...all, 10)).toEqual([500, 300, 100]);
    // The reopened last file had room for two more; the third rolls.
    again.add('T', ['k0'], 600, 1006);
    again.add('T', ['k1'], 700, 1007);
    again.add('T', ['k0'], 800, 1008);
    again.flush();
    expect(filesIn(dir)).toEqual([fileName(0), fileName(400), fileName(800)]);
    expect(again.lookup('T', 'k0', ...all, 10)).toEqual([800, 600, 400, 200, 0]);
    expect(again.lookup('T', 'k1', 1003, 1007, 10)).toEqual([700, 500, 300]);
    expect(again.endLogOffset).toBe(800);
  });

  it('loses only what was added after the last flush when the process dies', () => {
    const dir = tempDir();
    const index = openIndex(dir);
    index.add('T', ['k'], 100, 1000);
    index.add('T', ['k'], 200, 2000);
    index.flush();
    index.add('T', ['k'], 300, 3000);
    // No close: a second instance reads what reached the file.
    const after = openIndex(dir);
    expect(after.endLogOffset).toBe(200);
    expect(after.lookup('T', 'k', ...all, 10)).toEqual([200, 100]);
  });

  it('removes a file whose header never reached the disk', () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, fileName(0)), Buffer.alloc(100));
    const index = openIndex(dir);
    expect(index.endLogOffset).toBe(-1);
    expect(filesIn(dir)).toEqual([]);
  });

  it('dropBelow deletes sealed files whose records all lie below the log offset, never the active one', () => {
    const dir = tempDir();
    const index = openIndex(dir, { maxEntries: 4 });
    for (let i = 0; i < 10; i++) index.add('T', ['k'], i * 100, 1000 + i);
    index.flush();
    index.dropBelow(399);
    expect(filesIn(dir)).toEqual([fileName(0), fileName(400), fileName(800)]);
    index.dropBelow(400);
    expect(filesIn(dir)).toEqual([fileName(400), fileName(800)]);
    expect(index.lookup('T', 'k', ...all, 100)).toEqual([900, 800, 700, 600, 500, 400]);
    index.dropBelow(10 ** 12);
    expect(filesIn(dir)).toEqual([fileName(800)]);
    expect(index.lookup('T', 'k', ...all, 100)).toEqual([900, 800]);
    expect(index.endLogOffset).toBe(900);
  });

  it('finds a record whose store time is earlier than the first one in its file', () => {
    // Store timestamps come from the wall clock (`now()` in the commit log), which can step back.
    // The file's beginTimestamp is the first record's time, not the smallest, so the whole file
    // is skipped for a range that holds only the later-added, earlier-stamped record.
    const index = openIndex(tempDir());
    index.add('T', ['k'], 100, 5000);
    index.add('T', ['k'], 200, 4000);
    expect(index.lookup('T', 'k', 0, 4500, 10)).toEqual([200]);
  });
});
