import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { readU64, writeU64 } from './record.ts';

/**
 * The key index: for query by message key within a time range. A hash table on disk whose
 * buckets are linked lists threaded through an append-only entry array, as RocketMQ's IndexFile.
 *
 * File (little-endian), named by the 20-digit commit-log offset of the first record it indexes:
 *
 *  0       4       8               16              24              32              40      44      48
 *  +-------+-------+---------------+---------------+---------------+---------------+-------+-------+
 *  | magic |version| beginTimestamp| endTimestamp  | beginLogOffset| endLogOffset  | slots | count |
 *  +-------+-------+---------------+---------------+---------------+---------------+-------+-------+
 *  48
 *  +--------------------------- slots × u32 ----------------------------+
 *  | newest entry number (1-based) for keys hashing to the slot; 0 none  |
 *  +---------------------------------------------------------------------+
 *  +---------------------------- maxEntries × 24 ----------------------------------+
 *  | keyHash u32 | prev u32 (1-based, 0 none) | logOffset u64 | storeTimestamp u64 |
 *  +------------------------------------------------------------------------------+
 *
 * The file being filled is held in memory and written out by `flush` (the checkpoint); full files
 * are read with positional reads. A hash names a (topic, key) pair; collisions are resolved by the
 * caller, who reads the record and compares its topic and keys.
 */
const indexMagic = 0x53524b49; // "SRKI"
const indexVersion = 1;
const headerBytes = 48;
const entryBytes = 24;

export interface KeyIndexOptions {
  dir: string;
  /** @default 524288 */
  slotCount: number;
  /** Entries per file before a new one starts. @default 1048576 */
  maxEntries: number;
}

export function keyHash(topic: string, key: string): number {
  return crc32c(`${topic}\u0000${key}`);
}

interface IndexHeader {
  beginTimestamp: number;
  endTimestamp: number;
  beginLogOffset: number;
  endLogOffset: number;
  slotCount: number;
  count: number;
}

function readHeader(buf: Buffer): IndexHeader | undefined {
  if (buf.length < headerBytes || buf.readUInt32LE(0) !== indexMagic || buf.readUInt32LE(4) !== indexVersion) {
    return undefined;
  }
  return {
    beginTimestamp: readU64(buf, 8),
    endTimestamp: readU64(buf, 16),
    beginLogOffset: readU64(buf, 24),
    endLogOffset: readU64(buf, 32),
    slotCount: buf.readUInt32LE(40),
    count: buf.readUInt32LE(44),
  };
}

function writeHeader(buf: Buffer, h: IndexHeader): void {
  buf.writeUInt32LE(indexMagic, 0);
  buf.writeUInt32LE(indexVersion, 4);
  writeU64(buf, 8, h.beginTimestamp);
  writeU64(buf, 16, h.endTimestamp);
  writeU64(buf, 24, h.beginLogOffset);
  writeU64(buf, 32, h.endLogOffset);
  buf.writeUInt32LE(h.slotCount, 40);
  buf.writeUInt32LE(h.count, 44);
}

/** A sealed (full) index file: header in memory, the rest read on demand. */
interface SealedIndex {
  name: number;
  header: IndexHeader;
  fd: number;
}

/** The file being filled, in memory. */
interface ActiveIndex {
  name: number;
  header: IndexHeader;
  buf: Buffer;
  maxEntries: number;
  flushedCount: number;
  dirty: boolean;
}

export class KeyIndex {
  readonly #options: KeyIndexOptions;
  #sealed: SealedIndex[] = [];
  #active: ActiveIndex | undefined;

  constructor(options: KeyIndexOptions) {
    this.#options = options;
  }

  /** Log offset of the last record indexed, -1 if none; recovery re-adds only records past it. */
  get endLogOffset(): number {
    if (this.#active !== undefined && this.#active.header.count > 0) return this.#active.header.endLogOffset;
    for (let i = this.#sealed.length - 1; i >= 0; i--) {
      const h = (this.#sealed[i] as SealedIndex).header;
      if (h.count > 0) return h.endLogOffset;
    }
    return -1;
  }

  load(): void {
    fs.mkdirSync(this.#options.dir, { recursive: true });
    const names = fs
      .readdirSync(this.#options.dir)
      .filter((n) => /^\d{20}$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (const name of names) {
      const file = this.#path(name);
      const fd = fs.openSync(file, 'r');
      const head = Buffer.alloc(headerBytes);
      fs.readSync(fd, head, 0, headerBytes, 0);
      const header = readHeader(head);
      if (header === undefined) {
        // A file whose header never reached the disk holds nothing the log cannot rebuild.
        fs.closeSync(fd);
        fs.rmSync(file, { force: true });
        continue;
      }
      if (name !== names[names.length - 1]) {
        this.#sealed.push({ name, header, fd });
        continue;
      }
      // The newest file is the one being filled: it comes back into memory.
      this.#active = loadActive(name, header, fd);
    }
  }

  /**
   * Forgets every entry of a record at or past `logOffset`. Recovery calls it when it cut the log
   * below what the index holds (a torn tail the index had already seen): records written at those
   * offsets later must be indexed afresh, and recovery re-indexes only past `endLogOffset`.
   */
  truncateFrom(logOffset: number): void {
    // Entries arrive in log order, so the ones to drop are the newest: whole files, then a tail.
    if (this.#active !== undefined && this.#active.header.beginLogOffset >= logOffset) {
      fs.rmSync(this.#path(this.#active.name), { force: true });
      this.#active = undefined;
    }
    for (let last = this.#sealed.at(-1); last !== undefined && last.header.beginLogOffset >= logOffset; last = this.#sealed.at(-1)) {
      fs.closeSync(last.fd);
      fs.rmSync(this.#path(last.name), { force: true });
      this.#sealed.pop();
    }
    if (this.#active === undefined) {
      const newest = this.#sealed.pop();
      if (newest === undefined) return;
      // The newest file is filled again from here on: it comes back into memory.
      this.#active = loadActive(newest.name, newest.header, newest.fd);
    }
    const active = this.#active;
    const { header, buf } = active;
    const entryBase = headerBytes + header.slotCount * 4;
    let dropped = 0;
    while (header.count > 0) {
      const at = entryBase + (header.count - 1) * entryBytes;
      if (readU64(buf, at + 8) < logOffset) break;
      // Dropped newest first, each entry is the head of its slot's chain: the slot gets its prev.
      // A slot past the count is left by a crash between writing slots and header; it goes too.
      const slotAt = headerBytes + (buf.readUInt32LE(at) % header.slotCount) * 4;
      if (buf.readUInt32LE(slotAt) >= header.count) buf.writeUInt32LE(buf.readUInt32LE(at + 4), slotAt);
      buf.fill(0, at, at + entryBytes);
      header.count--;
      dropped++;
    }
    if (dropped === 0) return;
    header.endLogOffset = header.count > 0 ? readU64(buf, entryBase + (header.count - 1) * entryBytes + 8) : header.beginLogOffset;
    writeHeader(buf, header);
    active.flushedCount = Math.min(active.flushedCount, header.count);
    active.dirty = true;
  }

  #path(name: number): string {
    return path.join(this.#options.dir, String(name).padStart(20, '0'));
  }

  #newActive(logOffset: number, timestamp: number): ActiveIndex {
    const { slotCount, maxEntries } = this.#options;
    const header: IndexHeader = {
      beginTimestamp: timestamp,
      endTimestamp: timestamp,
      beginLogOffset: logOffset,
      endLogOffset: logOffset,
      slotCount,
      count: 0,
    };
    const buf = Buffer.alloc(headerBytes + slotCount * 4 + maxEntries * entryBytes);
    writeHeader(buf, header);
    return { name: logOffset, header, buf, maxEntries, flushedCount: 0, dirty: true };
  }

  #sealActive(): void {
    const active = this.#active;
    if (active === undefined) return;
    this.#flushActive(active);
    this.#sealed.push({ name: active.name, header: { ...active.header }, fd: fs.openSync(this.#path(active.name), 'r') });
    this.#active = undefined;
  }

  /** Indexes `keys` of the record at `logOffset`. Records must arrive in log order. */
  add(topic: string, keys: readonly string[], logOffset: number, storeTimestamp: number): void {
    if (keys.length === 0) return;
    let active = this.#active;
    if (active === undefined || active.header.count + keys.length > active.maxEntries) {
      if (active !== undefined) this.#sealActive();
      active = this.#newActive(logOffset, storeTimestamp);
      this.#active = active;
    }
    const { header, buf } = active;
    const slotBase = headerBytes;
    const entryBase = headerBytes + header.slotCount * 4;
    for (const key of keys) {
      const hash = keyHash(topic, key);
      const slotAt = slotBase + (hash % header.slotCount) * 4;
      const prev = buf.readUInt32LE(slotAt);
      const at = entryBase + header.count * entryBytes;
      buf.writeUInt32LE(hash, at);
      buf.writeUInt32LE(prev, at + 4);
      writeU64(buf, at + 8, logOffset);
      writeU64(buf, at + 16, storeTimestamp);
      header.count++;
      buf.writeUInt32LE(header.count, slotAt);
    }
    header.endLogOffset = logOffset;
    // The clock may step back: the file's range must cover every entry, not just the first and last.
    header.beginTimestamp = Math.min(header.beginTimestamp, storeTimestamp);
    header.endTimestamp = Math.max(header.endTimestamp, storeTimestamp);
    writeHeader(buf, header);
    active.dirty = true;
  }

  /**
   * Log offsets of records whose (topic, key) hash matches, stored within [fromMs, toMs], newest
   * first, at most `max`.
   */
  lookup(topic: string, key: string, fromMs: number, toMs: number, max: number): number[] {
    const hash = keyHash(topic, key);
    const found: number[] = [];
    const active = this.#active;
    if (active !== undefined && overlaps(active.header, fromMs, toMs)) {
      walk(active.header, hash, fromMs, toMs, max, found, (at, len) => active.buf.subarray(at, at + len));
    }
    for (let i = this.#sealed.length - 1; i >= 0 && found.length < max; i--) {
      const sealed = this.#sealed[i] as SealedIndex;
      if (!overlaps(sealed.header, fromMs, toMs)) continue;
      walk(sealed.header, hash, fromMs, toMs, max, found, (at, len) => {
        const buf = Buffer.allocUnsafe(len);
        fs.readSync(sealed.fd, buf, 0, len, at);
        return buf;
      });
    }
    return found;
  }

  /** Writes the in-memory file's new entries, slots and header, and syncs it. */
  flush(): void {
    if (this.#active !== undefined) this.#flushActive(this.#active);
  }

  /**
   * The checkpoint's flush: the writes happen at once (so the file gets one consistent picture of
   * the index) and the sync runs off the event loop, so appends and reads are not held up by it.
   */
  async flushAsync(): Promise<void> {
    const active = this.#active;
    if (active === undefined) return;
    const written = this.#writeActive(active);
    if (written === undefined) return;
    try {
      await new Promise<void>((resolve, reject) => fs.fdatasync(written.fd, (e) => (e ? reject(e) : resolve())));
      active.flushedCount = Math.max(active.flushedCount, written.count);
    } finally {
      fs.closeSync(written.fd);
    }
  }

  #flushActive(active: ActiveIndex): void {
    const written = this.#writeActive(active);
    if (written === undefined) return;
    try {
      fs.fdatasyncSync(written.fd);
      active.flushedCount = Math.max(active.flushedCount, written.count);
    } finally {
      fs.closeSync(written.fd);
    }
  }

  /** Writes what changed since the last flush; returns the open file and the count written. */
  #writeActive(active: ActiveIndex): { fd: number; count: number } | undefined {
    if (!active.dirty) return undefined;
    const file = this.#path(active.name);
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      const { header, buf } = active;
      const entryBase = headerBytes + header.slotCount * 4;
      if (fs.fstatSync(fd).size !== buf.length) fs.ftruncateSync(fd, buf.length);
      // Entries first, then the slots that point at them, then the header that counts them.
      const from = entryBase + active.flushedCount * entryBytes;
      const to = entryBase + header.count * entryBytes;
      writeFully(fd, buf, from, to - from, from);
      writeFully(fd, buf, headerBytes, header.slotCount * 4, headerBytes);
      writeFully(fd, buf, 0, headerBytes, 0);
      active.dirty = false;
      return { fd, count: header.count };
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** Retention: deletes files that index only records below `minLogOffset`. */
  dropBelow(minLogOffset: number): void {
    while (this.#sealed.length > 0) {
      const first = this.#sealed[0] as SealedIndex;
      const next = this.#sealed[1]?.name ?? this.#active?.name;
      if (next === undefined || next > minLogOffset) break;
      fs.closeSync(first.fd);
      fs.rmSync(this.#path(first.name), { force: true });
      this.#sealed.shift();
    }
  }

  close(): void {
    this.flush();
    for (const s of this.#sealed) fs.closeSync(s.fd);
    this.#sealed = [];
    this.#active = undefined;
  }

  /** Bytes held in memory: one file's worth, whatever the log size. */
  get memoryBytes(): number {
    return this.#active?.buf.length ?? 0;
  }
}

/** Reads a whole index file into memory, to be filled further; closes `fd`. */
function loadActive(name: number, header: IndexHeader, fd: number): ActiveIndex {
  try {
    const size = fs.fstatSync(fd).size;
    const maxEntries = Math.max(0, Math.floor((size - headerBytes - header.slotCount * 4) / entryBytes));
    const buf = Buffer.alloc(headerBytes + header.slotCount * 4 + maxEntries * entryBytes);
    fs.readSync(fd, buf, 0, buf.length, 0);
    return { name, header, buf, maxEntries, flushedCount: header.count, dirty: false };
  } finally {
    fs.closeSync(fd);
  }
}

function overlaps(h: IndexHeader, fromMs: number, toMs: number): boolean {
  return h.count > 0 && h.beginTimestamp <= toMs && h.endTimestamp >= fromMs;
}

function walk(
  header: IndexHeader,
  hash: number,
  fromMs: number,
  toMs: number,
  max: number,
  found: number[],
  readAt: (at: number, length: number) => Buffer,
): void {
  const entryBase = headerBytes + header.slotCount * 4;
  let entryNumber = readAt(headerBytes + (hash % header.slotCount) * 4, 4).readUInt32LE(0);
  // A chain only points backwards; a number past the count or not smaller than the last is
  // damage, and the walk stops rather than loop.
  let bound = header.count + 1;
  while (entryNumber !== 0 && entryNumber < bound && found.length < max) {
    const entry = readAt(entryBase + (entryNumber - 1) * entryBytes, entryBytes);
    const entryHash = entry.readUInt32LE(0);
    const timestamp = readU64(entry, 16);
    if (entryHash === hash && timestamp >= fromMs && timestamp <= toMs) found.push(readU64(entry, 8));
    bound = entryNumber;
    entryNumber = entry.readUInt32LE(4);
  }
}

function writeFully(fd: number, buf: Buffer, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) done += fs.writeSync(fd, buf, offset + done, length - done, position + done);
}
