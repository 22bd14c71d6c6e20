import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InMemorySegmentStore,
  LocalSegmentStore,
  parseSegmentFileName,
  segmentFileName,
  type SegmentStore,
} from './segment-store.ts';

const dirs: string[] = [];
const stores: SegmentStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-segments-'));
  dirs.push(dir);
  return dir;
}

/** Bytes that differ at every position, so a read at the wrong place cannot pass. */
function pattern(length: number, seed: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return buf;
}

/** An active segment file as the commit log leaves it: records, then a zero-filled tail. */
function segmentFile(dir: string, records: Buffer, fileBytes: number): string {
  const file = path.join(dir, `active-${Math.random().toString(36).slice(2)}`);
  const buf = Buffer.alloc(fileBytes);
  records.copy(buf);
  fs.writeFileSync(file, buf);
  return file;
}

// Whole seconds: a file's mtime keeps them exactly.
const t0 = 1_700_000_000_000;

const implementations: Array<[string, (dir: string) => SegmentStore]> = [
  ['LocalSegmentStore', (dir) => new LocalSegmentStore(path.join(dir, 'segments'))],
  ['InMemorySegmentStore', () => new InMemorySegmentStore()],
];

describe.each(implementations)('%s', (_name, make) => {
  function setup(): { store: SegmentStore; work: string } {
    const work = tempDir();
    const store = make(work);
    stores.push(store);
    return { store, work };
  }

  it('lists nothing before anything is sealed', async () => {
    const { store } = setup();
    expect(await store.list()).toEqual([]);
  });

  it('takes over the file, keeping only its records', async () => {
    const { store, work } = setup();
    const records = pattern(1000, 1);
    const file = segmentFile(work, records, 4096);
    await store.seal({ baseOffset: 0, sizeBytes: 1000, lastStoredAtMs: t0 }, file);
    expect(fs.existsSync(file)).toBe(false);
    expect(await store.list()).toEqual([{ baseOffset: 0, sizeBytes: 1000, lastStoredAtMs: t0 }]);
    expect((await store.read(0, 0, 1000)).equals(records)).toBe(true);
  });

  it('lists segments ascending by base offset whatever the sealing order', async () => {
    const { store, work } = setup();
    const segments = [
      { baseOffset: 2 ** 40, sizeBytes: 10, lastStoredAtMs: t0 + 3000 },
      { baseOffset: 0, sizeBytes: 30, lastStoredAtMs: t0 + 1000 },
      { baseOffset: 4096, sizeBytes: 20, lastStoredAtMs: t0 + 2000 },
    ];
    for (const [i, segment] of segments.entries()) {
      await store.seal(segment, segmentFile(work, pattern(segment.sizeBytes, i), 64));
    }
    expect(await store.list()).toEqual([segments[1], segments[2], segments[0]]);
  });

  it('reads any range, short at the end and empty past it', async () => {
    const { store, work } = setup();
    const records = pattern(1000, 2);
    await store.seal({ baseOffset: 8192, sizeBytes: 1000, lastStoredAtMs: t0 }, segmentFile(work, records, 2048));
    expect((await store.read(8192, 0, 100)).equals(records.subarray(0, 100))).toBe(true);
    expect((await store.read(8192, 123, 456)).equals(records.subarray(123, 579))).toBe(true);
    expect((await store.read(8192, 900, 200)).equals(records.subarray(900))).toBe(true);
    expect(await store.read(8192, 1000, 10)).toHaveLength(0);
    expect(await store.read(8192, 5000, 10)).toHaveLength(0);
    expect(await store.read(8192, 10, 0)).toHaveLength(0);
  });

  it('reads the same bytes as the records for random ranges', async () => {
    const { store, work } = setup();
    const records = pattern(3000, 3);
    await store.seal({ baseOffset: 0, sizeBytes: 3000, lastStoredAtMs: t0 }, segmentFile(work, records, 4096));
    await fc.assert(
      fc.asyncProperty(fc.nat(3200), fc.nat(600), async (position, length) => {
        const got = await store.read(0, position, length);
        expect(got.equals(records.subarray(Math.min(position, 3000), Math.min(position + length, 3000)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('returns reads that later reads do not overwrite', async () => {
    const { store, work } = setup();
    const records = pattern(100, 4);
    await store.seal({ baseOffset: 0, sizeBytes: 100, lastStoredAtMs: t0 }, segmentFile(work, records, 100));
    const first = await store.read(0, 0, 10);
    await store.read(0, 50, 10);
    expect(first.equals(records.subarray(0, 10))).toBe(true);
  });

  it('seals an empty segment', async () => {
    const { store, work } = setup();
    await store.seal({ baseOffset: 7, sizeBytes: 0, lastStoredAtMs: t0 }, segmentFile(work, Buffer.alloc(0), 512));
    expect(await store.list()).toEqual([{ baseOffset: 7, sizeBytes: 0, lastStoredAtMs: t0 }]);
    expect(await store.read(7, 0, 10)).toHaveLength(0);
  });

  it('deletes a segment, after which reading it fails', async () => {
    const { store, work } = setup();
    await store.seal({ baseOffset: 0, sizeBytes: 10, lastStoredAtMs: t0 }, segmentFile(work, pattern(10, 5), 10));
    await store.seal({ baseOffset: 10, sizeBytes: 10, lastStoredAtMs: t0 }, segmentFile(work, pattern(10, 6), 10));
    await store.read(0, 0, 5); // a reader may hold the segment open
    await store.delete(0);
    expect((await store.list()).map((s) => s.baseOffset)).toEqual([10]);
    await expect(store.read(0, 0, 5)).rejects.toThrow();
    // Deleting what is not there is not an error.
    await store.delete(0);
    await store.delete(12345);
    expect((await store.list()).map((s) => s.baseOffset)).toEqual([10]);
  });

  it('fails to read a segment it never held', async () => {
    const { store } = setup();
    await expect(store.read(4096, 0, 10)).rejects.toThrow();
  });

  it('gives back lastStoredAtMs exactly as sealed, to the millisecond', async () => {
    // LocalSegmentStore keeps the time as the file's mtime, set through utimes(ms / 1000) in
    // floating-point seconds, and lists stat.mtimeMs, which comes back as 1700000000122.999.
    const { store, work } = setup();
    const lastStoredAtMs = 1_700_000_000_123;
    await store.seal({ baseOffset: 0, sizeBytes: 1, lastStoredAtMs }, segmentFile(work, pattern(1, 7), 1));
    expect(await store.list()).toEqual([{ baseOffset: 0, sizeBytes: 1, lastStoredAtMs }]);
  });
});

describe('LocalSegmentStore on disk', () => {
  it('keeps each segment as a file named by its base offset, truncated to its records', async () => {
    const work = tempDir();
    const dir = path.join(work, 'segments');
    const store = new LocalSegmentStore(dir);
    stores.push(store);
    await store.seal({ baseOffset: 2 ** 33, sizeBytes: 700, lastStoredAtMs: t0 }, segmentFile(work, pattern(700, 8), 4096));
    expect(fs.readdirSync(dir)).toEqual(['00000000008589934592']);
    expect(fs.statSync(path.join(dir, '00000000008589934592')).size).toBe(700);
  });

  it('lists what an earlier instance sealed, ignoring files that are not segments', async () => {
    const work = tempDir();
    const dir = path.join(work, 'segments');
    const first = new LocalSegmentStore(dir);
    await first.seal({ baseOffset: 0, sizeBytes: 50, lastStoredAtMs: t0 }, segmentFile(work, pattern(50, 9), 64));
    await first.close();
    fs.writeFileSync(path.join(dir, `${segmentFileName(100)}.tmp`), 'partial');
    fs.writeFileSync(path.join(dir, 'README'), 'not a segment');
    const second = new LocalSegmentStore(dir);
    stores.push(second);
    expect(await second.list()).toEqual([{ baseOffset: 0, sizeBytes: 50, lastStoredAtMs: t0 }]);
    expect((await second.read(0, 10, 5)).equals(pattern(50, 9).subarray(10, 15))).toBe(true);
  });
});

describe('segment file names', () => {
  it('pads the base offset to 20 digits', () => {
    expect(segmentFileName(0)).toBe('00000000000000000000');
    expect(segmentFileName(1024)).toBe('00000000000000001024');
    expect(segmentFileName(Number.MAX_SAFE_INTEGER)).toBe('00009007199254740991');
  });

  it('parses back every safe offset, and names sort as offsets do', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (a, b) => {
        expect(parseSegmentFileName(segmentFileName(a))).toBe(a);
        expect(Math.sign(segmentFileName(a).localeCompare(segmentFileName(b)))).toBe(Math.sign(a - b));
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    '',
    '0',
    '0000000000000000000', // 19 digits
    '000000000000000000000', // 21 digits
    '0000000000000000000a',
    '-0000000000000000001',
    '00000000000000000000.tmp',
    ' 0000000000000000000',
    '00009007199254740992', // 2^53: not a safe integer
    '99999999999999999999',
  ])('rejects %j', (name) => {
    expect(parseSegmentFileName(name)).toBeUndefined();
  });
});
