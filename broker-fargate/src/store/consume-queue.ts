import * as fs from 'node:fs';
import * as path from 'node:path';
import { readU64, writeU64 } from './record.ts';

/**
 * A consume queue: the per-(topic, queueId) index into the commit log. Entry n sits at byte 20·n
 * of the logical file, so reading queue offset n is one positional read.
 *
 *  0                   8         12                  20
 *  +-------------------+---------+-------------------+
 *  | commitLogOffset   |  size   |     tagCode       |
 *  +-------------------+---------+-------------------+
 *        u64              u32           u64
 *
 * tagCode is the tag hash (`tagHash` in core), 0 for no tag. An all-zero entry is a hole: a
 * queue offset whose record was lost to corruption; readers step over it.
 *
 * The logical file is split into files of `entriesPerFile` entries, each named by the 20-digit
 * queue offset of its first entry. Files are written through the page cache; the checkpoint
 * syncs them, and recovery rewrites everything past the checkpoint from the commit log.
 */
export const consumeQueueEntryBytes = 20;

export interface ConsumeQueueEntry {
  commitLogOffset: number;
  size: number;
  tagCode: number;
}

export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;
  readonly #dir: string;
  readonly #entriesPerFile: number;
  readonly #fds = new Map<number, number>();
  /** Queue offsets below this are gone (retention). */
  #minOffset = 0;
  /** One past the last entry written. */
  #maxOffset = 0;
  /** Entries appended at the end but not yet written, coalesced into one write. */
  #pending: Buffer;
  #pendingView: DataView;
  #pendingCount = 0;
  #pendingStart = 0;
  #dirtyFiles = new Set<number>();
  #dirMade = false;

  constructor(rootDir: string, topic: string, queueId: number, entriesPerFile: number) {
    this.topic = topic;
    this.queueId = queueId;
    this.#dir = path.join(rootDir, encodeURIComponent(topic), String(queueId));
    this.#entriesPerFile = entriesPerFile;
    this.#pending = Buffer.allocUnsafe(consumeQueueEntryBytes * 64);
    this.#pendingView = new DataView(this.#pending.buffer, this.#pending.byteOffset, this.#pending.byteLength);
  }

  get minOffset(): number {
    return this.#minOffset;
  }

  /** One past the last entry, pending ones included. */
  get maxOffset(): number {
    return this.#pendingCount > 0 ? this.#pendingStart + this.#pendingCount : this.#maxOffset;
  }

  /** Finds the files on disk and the offsets they hold. Trailing zero entries are not counted. */
  load(): void {
    fs.mkdirSync(this.#dir, { recursive: true });
    const starts = this.#fileStarts();
    if (starts.length === 0) return;
    this.#minOffset = starts[0] as number;
    const last = starts[starts.length - 1] as number;
    const size = fs.statSync(this.#filePath(last)).size;
    this.#maxOffset = last + Math.floor(size / consumeQueueEntryBytes);
    this.#trimZeroTail();
  }

  #fileStarts(): number[] {
    return fs
      .readdirSync(this.#dir)
      .filter((n) => /^\d{20}$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  #filePath(start: number): string {
    return path.join(this.#dir, String(start).padStart(20, '0'));
  }

  #fd(fileStart: number, create: boolean): number | undefined {
    let fd = this.#fds.get(fileStart);
    if (fd !== undefined) return fd;
    const file = this.#filePath(fileStart);
    if (!create && !fs.existsSync(file)) return undefined;
    if (create && !this.#dirMade) {
      fs.mkdirSync(this.#dir, { recursive: true });
      this.#dirMade = true;
    }
    fd = fs.openSync(file, create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR, 0o644);
    this.#fds.set(fileStart, fd);
    return fd;
  }

  /** Appends the entry for `queueOffset`, which must be the next one or beyond (a hole). */
  append(queueOffset: number, entry: ConsumeQueueEntry): void {
    const max = this.maxOffset;
    if (queueOffset < max) {
      this.flush();
      this.#writeEntries(queueOffset, encodeEntry(entry));
      return;
    }
    if (queueOffset > max || this.#pendingCount === 0) {
      this.flush();
      this.#pendingStart = queueOffset;
    }
    const at = this.#pendingCount * consumeQueueEntryBytes;
    if (at + consumeQueueEntryBytes > this.#pending.length) {
      const grown = Buffer.allocUnsafe(this.#pending.length * 2);
      this.#pending.copy(grown, 0, 0, at);
      this.#pending = grown;
      this.#pendingView = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
    }
    // The dispatch hot path: DataView stores, about ten times cheaper than Buffer's methods.
    const dv = this.#pendingView;
    dv.setUint32(at, entry.commitLogOffset % 0x1_0000_0000, true);
    dv.setUint32(at + 4, Math.floor(entry.commitLogOffset / 0x1_0000_0000), true);
    dv.setUint32(at + 8, entry.size, true);
    dv.setUint32(at + 12, entry.tagCode % 0x1_0000_0000, true);
    dv.setUint32(at + 16, Math.floor(entry.tagCode / 0x1_0000_0000), true);
    this.#pendingCount++;
  }

  /** Writes pending entries to the files (page cache). Throws the file system's error. */
  flush(): void {
    if (this.#pendingCount === 0) return;
    const bytes = this.#pending.subarray(0, this.#pendingCount * consumeQueueEntryBytes);
    this.#writeEntries(this.#pendingStart, bytes);
    this.#pendingCount = 0;
  }

  #writeEntries(firstOffset: number, bytes: Buffer): void {
    let offset = firstOffset;
    let pos = 0;
    while (pos < bytes.length) {
      const fileStart = offset - (offset % this.#entriesPerFile);
      const inFile = Math.min((fileStart + this.#entriesPerFile - offset) * consumeQueueEntryBytes, bytes.length - pos);
      const fd = this.#fd(fileStart, true) as number;
      let written = 0;
      while (written < inFile) {
        written += fs.writeSync(
          fd,
          bytes,
          pos + written,
          inFile - written,
          (offset - fileStart) * consumeQueueEntryBytes + written,
        );
      }
      this.#dirtyFiles.add(fileStart);
      pos += inFile;
      offset += inFile / consumeQueueEntryBytes;
    }
    this.#maxOffset = Math.max(this.#maxOffset, offset);
  }

  /**
   * Reads up to `count` written entries from `offset` into `out` (raw bytes); returns how many.
   * Pending entries are not flushed here: a read must work even when the disk is full.
   */
  read(offset: number, count: number, out: Buffer): number {
    const end = Math.min(offset + count, this.#maxOffset);
    let got = 0;
    let cursor = Math.max(offset, this.#minOffset);
    while (cursor < end) {
      const fileStart = cursor - (cursor % this.#entriesPerFile);
      const n = Math.min(fileStart + this.#entriesPerFile, end) - cursor;
      const fd = this.#fd(fileStart, false);
      const bytes =
        fd === undefined
          ? 0
          : fs.readSync(fd, out, got * consumeQueueEntryBytes, n * consumeQueueEntryBytes, (cursor - fileStart) * consumeQueueEntryBytes);
      // Below maxOffset, a missing file or a short one is a run of holes, never the end: a reader
      // must step over it, not stop in front of it forever.
      const present = Math.floor(bytes / consumeQueueEntryBytes);
      out.fill(0, (got + present) * consumeQueueEntryBytes, (got + n) * consumeQueueEntryBytes);
      got += n;
      cursor += n;
    }
    return got;
  }

  entryAt(offset: number): ConsumeQueueEntry | undefined {
    const buf = Buffer.allocUnsafe(consumeQueueEntryBytes);
    return this.read(offset, 1, buf) === 1 ? decodeEntry(buf, 0) : undefined;
  }

  /** Drops entries at or past `queueOffset` (recovery: their records were truncated away). */
  truncateTo(queueOffset: number): void {
    this.flush();
    if (queueOffset >= this.#maxOffset) return;
    const starts = this.#fileStarts();
    for (const start of starts) {
      if (start + this.#entriesPerFile <= queueOffset) continue;
      if (start >= queueOffset && start !== starts[0]) {
        this.#closeFile(start);
        fs.rmSync(this.#filePath(start), { force: true });
      } else {
        const fd = this.#fd(start, true) as number;
        fs.ftruncateSync(fd, Math.max(0, queueOffset - start) * consumeQueueEntryBytes);
        this.#dirtyFiles.add(start);
      }
    }
    this.#maxOffset = Math.max(queueOffset, this.#minOffset);
  }

  /** Removes entries whose records are at or past `logEnd`, then any zero tail. */
  truncateByLogEnd(logEnd: number): void {
    this.flush();
    const probe = Buffer.allocUnsafe(consumeQueueEntryBytes);
    let max = this.#maxOffset;
    while (max > this.#minOffset) {
      if (this.read(max - 1, 1, probe) !== 1) break;
      const entry = decodeEntry(probe, 0);
      if (entry.size !== 0 && entry.commitLogOffset < logEnd) break;
      max--;
    }
    this.truncateTo(max);
  }

  #trimZeroTail(): void {
    const probe = Buffer.allocUnsafe(consumeQueueEntryBytes);
    let max = this.#maxOffset;
    while (max > this.#minOffset && this.read(max - 1, 1, probe) === 1 && decodeEntry(probe, 0).size === 0) max--;
    if (max !== this.#maxOffset) this.truncateTo(max);
  }

  /**
   * Retention: forgets entries whose records lie below `minLogOffset`; deletes files wholly
   * below it. Returns the new minimum queue offset.
   */
  dropBelow(minLogOffset: number): number {
    this.flush();
    const starts = this.#fileStarts();
    // Whole files first; the newest file always stays, it is where appends go.
    for (let i = 0; i + 1 < starts.length; i++) {
      const start = starts[i] as number;
      const last = this.#lastRealEntry(start, starts[i + 1] as number);
      if (last !== undefined && last.commitLogOffset + last.size > minLogOffset) break;
      this.#closeFile(start);
      fs.rmSync(this.#filePath(start), { force: true });
    }
    // Then binary search the first entry that survives. Holes carry no offset: a probe that lands
    // on one decides by the next real entry after it.
    let lo = Math.max(this.#minOffset, this.#fileStarts()[0] ?? this.#minOffset);
    let hi = this.#maxOffset;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      let k = mid;
      let entry = this.entryAt(k);
      while (k < hi && (entry === undefined || entry.size === 0)) entry = this.entryAt(++k);
      if (k >= hi || entry === undefined) hi = mid;
      else if (entry.commitLogOffset < minLogOffset) lo = k + 1;
      else hi = mid;
    }
    this.#minOffset = lo;
    return lo;
  }

  /** The last entry in [start, end) that is not a hole. */
  #lastRealEntry(start: number, end: number): ConsumeQueueEntry | undefined {
    for (let k = end - 1; k >= start; k--) {
      const entry = this.entryAt(k);
      if (entry !== undefined && entry.size !== 0) return entry;
    }
    return undefined;
  }

  /** Writes pending entries and hands over the descriptors of files to sync (the checkpoint). */
  takeDirty(): number[] {
    this.flush();
    const fds: number[] = [];
    for (const start of this.#dirtyFiles) {
      const fd = this.#fds.get(start);
      if (fd !== undefined) fds.push(fd);
    }
    this.#dirtyFiles.clear();
    return fds;
  }

  #closeFile(start: number): void {
    const fd = this.#fds.get(start);
    if (fd !== undefined) fs.closeSync(fd);
    this.#fds.delete(start);
    this.#dirtyFiles.delete(start);
  }

  close(): void {
    for (const start of [...this.#fds.keys()]) this.#closeFile(start);
  }

  /** Removes the queue's files (topic deletion). */
  destroy(): void {
    this.close();
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

export function encodeEntry(entry: ConsumeQueueEntry): Buffer {
  const buf = Buffer.allocUnsafe(consumeQueueEntryBytes);
  writeEntry(buf, 0, entry);
  return buf;
}

export function writeEntry(buf: Buffer, offset: number, entry: ConsumeQueueEntry): void {
  writeU64(buf, offset, entry.commitLogOffset);
  buf.writeUInt32LE(entry.size, offset + 8);
  writeU64(buf, offset + 12, entry.tagCode);
}

export function decodeEntry(buf: Buffer, offset: number): ConsumeQueueEntry {
  return {
    commitLogOffset: readU64(buf, offset),
    size: buf.readUInt32LE(offset + 8),
    tagCode: readU64(buf, offset + 12),
  };
}
