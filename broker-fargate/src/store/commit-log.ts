import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SkyrocketError } from '../../../core/errors.ts';
import {
  decodeRecord,
  describeRecordError,
  encodeRecord,
  isZeroSizedRecord,
  recordFlags,
  recordMagic,
  recordMaxBytes,
  sizeRecord,
  type DecodedRecord,
  type RecordInput,
  type SizedRecord,
  Utf8Cache,
  viewOf,
} from './record.ts';
import {
  parseSegmentFileName,
  segmentFileName,
  syncDirectory,
  type SealedSegment,
  type SegmentStore,
} from './segment-store.ts';
import { publish } from './diagnostics.ts';

// Callback-based fs calls wrapped by hand: on the hot path they avoid the FileHandle layer.
function writeAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, offset, length, position, (error, written) => (error ? reject(error) : resolve(written))),
  );
}
function readAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, offset, length, position, (error, read) => (error ? reject(error) : resolve(read))),
  );
}
const fdatasyncAsync = promisify(fs.fdatasync);

/**
 * How the segment being written is opened: in `sync` flush mode with O_DSYNC, so that each group
 * commit is one durable write (data and the metadata needed to read it back, as fdatasync)
 * instead of a write and an fdatasync, each a trip to the thread pool.
 */
function activeSegmentFlags(flushMode: FlushMode): number {
  return flushMode === 'sync' ? fs.constants.O_RDWR | fs.constants.O_DSYNC : fs.constants.O_RDWR;
}
const openAsync = promisify(fs.open);
const closeAsync = promisify(fs.close);

export type FlushMode = 'sync' | 'async';

export interface CommitLogOptions {
  /** Directory of the segment being written (and the next one, preallocated). */
  dir: string;
  segmentStore: SegmentStore;
  /** @default 1 GiB */
  segmentSizeBytes: number;
  /** `sync`: ack after fdatasync. `async`: ack after write; sync every `flushIntervalMs`. */
  flushMode: FlushMode;
  flushIntervalMs: number;
  /** A group commit writes at most this many bytes (one request may exceed it alone). */
  maxGroupBytes: number;
  storeHost: string;
  now: () => number;
}

/** Where one appended record landed. */
export interface AppendedRecord {
  physicalOffset: number;
  queueOffset: number;
  size: number;
  storeTimestamp: number;
}

/** What the dispatcher needs of each record just written, without re-reading it. */
export interface WrittenRecord extends AppendedRecord {
  input: RecordInput;
}

interface AppendRequest {
  sized: SizedRecord[];
  bytes: number;
  resolve: (records: AppendedRecord[]) => void;
  reject: (error: unknown) => void;
}

interface ActiveSegment {
  baseOffset: number;
  fileBytes: number;
  fd: number;
  /** Bytes of records written; the next record goes here. */
  writePosition: number;
  lastStoredAtMs: number;
  path: string;
}

/** A segment whose bytes can be read: local (by fd) or sealed (through the segment store). */
interface ReadableSegment {
  baseOffset: number;
  sizeBytes: number;
  fd?: number;
  lastStoredAtMs: number;
}

export interface Corruption {
  fromOffset: number;
  toOffset: number;
  reason: string;
}

export interface RecoveryReport {
  fromOffset: number;
  endOffset: number;
  scannedBytes: number;
  scannedRecords: number;
  truncatedBytes: number;
  corruptions: Corruption[];
  durationMs: number;
}

const zeroChunk = Buffer.alloc(4 * 1024 * 1024);
const scanChunkBytes = 8 * 1024 * 1024;

/**
 * The commit log: every message of every topic, appended in one sequence of fixed-size segment
 * files. Concurrent appends that arrive while a write is in flight are written together with one
 * `write` and one `fdatasync` (group commit). A record never spans two segments; the unused tail
 * of a segment stays zero and its offsets are never used.
 */
export class CommitLog {
  readonly #options: CommitLogOptions;
  #active: ActiveSegment | undefined;
  /** Sealed segments and ones being sealed, ascending. */
  #segments: ReadableSegment[] = [];
  #nextAllocation: Promise<void> | undefined;
  #pending: AppendRequest[] = [];
  #draining = false;
  #writeBuffer = Buffer.allocUnsafe(1024 * 1024);
  #writeView = viewOf(this.#writeBuffer);
  #queueOffsets = new Map<string, number>();
  readonly #utf8 = new Utf8Cache();
  #flushedOffset = 0;
  #failure: SkyrocketError | undefined;
  #closed = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #unsynced = false;
  /** Called with every group of records right after it is written (before the ack). */
  onWritten: (records: WrittenRecord[]) => void = () => {};

  constructor(options: CommitLogOptions) {
    this.#options = options;
  }

  /** One past the last byte written. */
  get endOffset(): number {
    const a = this.#active;
    return a === undefined ? 0 : a.baseOffset + a.writePosition;
  }

  /** The first byte still held (older segments were removed by retention). */
  get minOffset(): number {
    return this.#segments[0]?.baseOffset ?? this.#active?.baseOffset ?? 0;
  }

  get flushedOffset(): number {
    return this.#flushedOffset;
  }

  get failure(): SkyrocketError | undefined {
    return this.#failure;
  }

  /** Seeds the next queue offset of a queue (from its consume queue, after recovery). */
  setNextQueueOffset(topic: string, queueId: number, next: number): void {
    const key = queueKey(topic, queueId);
    if ((this.#queueOffsets.get(key) ?? -1) < next) this.#queueOffsets.set(key, next);
  }

  nextQueueOffset(topic: string, queueId: number): number {
    return this.#queueOffsets.get(queueKey(topic, queueId)) ?? 0;
  }

  /**
   * Opens the log: verifies every record from `fromOffset` to the end, hands each valid one to
   * `onRecord`, truncates a torn tail (and an unfinished batch before it), reports corrupted
   * ranges in the middle, and prepares the segment to write next.
   */
  async open(fromOffset: number, onRecord: (record: DecodedRecord) => void): Promise<RecoveryReport> {
    const started = performance.now();
    const { dir, segmentStore } = this.#options;
    fs.mkdirSync(dir, { recursive: true });
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith('.alloc')) fs.rmSync(path.join(dir, name), { force: true });
    }
    const sealed = await segmentStore.list();
    const local = fs
      .readdirSync(dir)
      .map((name) => ({ name, base: parseSegmentFileName(name) }))
      .filter((f): f is { name: string; base: number } => f.base !== undefined)
      .sort((a, b) => a.base - b.base);
    const all: ReadableSegment[] = sealed.map((s) => ({ ...s }));
    for (const f of local) {
      const file = path.join(dir, f.name);
      const fd = fs.openSync(file, 'r+');
      const stat = fs.fstatSync(fd);
      all.push({ baseOffset: f.base, sizeBytes: stat.size, fd, lastStoredAtMs: stat.mtimeMs });
    }
    all.sort((a, b) => a.baseOffset - b.baseOffset);
    for (let i = 1; i < all.length; i++) {
      const prev = all[i - 1] as ReadableSegment;
      const cur = all[i] as ReadableSegment;
      if (prev.baseOffset + prev.sizeBytes > cur.baseOffset) {
        throw new SkyrocketError(
          'STORE_CORRUPTED',
          `segments ${segmentFileName(prev.baseOffset)} and ${segmentFileName(cur.baseOffset)} overlap`,
        );
      }
    }
    this.#segments = all;
    const report = await this.#scan(fromOffset, onRecord);

    // The log ends in the last local segment that starts at or before its end: that one is written
    // next. Choosing the newest local file instead would, after a crash that left the next segment
    // allocated ahead, abandon the room left in the segment being written (and, were segments
    // allocated as soon as one opens, skip a whole empty segment on every restart).
    const { segmentSizeBytes } = this.#options;
    const locals = this.#segments.filter((s) => s.fd !== undefined);
    let after = locals.findIndex((s) => s.baseOffset > report.endOffset);
    if (after < 0) after = locals.length;
    // A segment shorter than the configured size was cut to its records by a seal that a crash
    // interrupted (or written under another size): it is sealed, and the one after it is next.
    const ending = locals[after - 1];
    const currentIndex = ending !== undefined && ending.sizeBytes === segmentSizeBytes ? after - 1 : after;
    const current = locals[currentIndex];
    const usable = current !== undefined && current.sizeBytes === segmentSizeBytes;
    for (let i = 0; i < locals.length; i++) {
      const seg = locals[i] as ReadableSegment;
      if (i < currentIndex) {
        await this.#sealSegment(seg, await this.#dataEnd(seg));
        continue;
      }
      if (usable && seg === current) continue;
      // Past the end of the log: the scan found no record here, so this file was only allocated
      // ahead. The one right after the segment written next stays allocated; any other goes.
      this.#segments = this.#segments.filter((s) => s !== seg);
      fs.closeSync(seg.fd as number);
      const keep = usable && seg.baseOffset === current.baseOffset + current.sizeBytes && seg.sizeBytes === segmentSizeBytes;
      if (!keep) fs.rmSync(path.join(dir, segmentFileName(seg.baseOffset)), { force: true });
    }
    if (usable) {
      if (current.baseOffset > report.endOffset) {
        // Everything before this segment is sealed: its offsets start the log's unwritten part.
        report.endOffset = current.baseOffset;
      }
      const writePosition = report.endOffset - current.baseOffset;
      assert(writePosition >= 0 && writePosition <= current.sizeBytes, `log end ${report.endOffset} outside the segment written next`);
      this.#segments = this.#segments.filter((s) => s !== current);
      const activePath = path.join(dir, segmentFileName(current.baseOffset));
      let activeFd = current.fd as number;
      if (this.#options.flushMode === 'sync') {
        // Written next: reopened so that every write is durable when it returns (O_DSYNC).
        fs.closeSync(activeFd);
        activeFd = fs.openSync(activePath, activeSegmentFlags('sync'));
      }
      this.#active = {
        baseOffset: current.baseOffset,
        fileBytes: current.sizeBytes,
        fd: activeFd,
        writePosition,
        lastStoredAtMs: current.lastStoredAtMs,
        path: activePath,
      };
    } else {
      const last = this.#segments.at(-1);
      const base = last === undefined ? 0 : last.baseOffset + Math.max(last.sizeBytes, 1);
      // A sealed segment may be shorter than the configured size: start the next one past it.
      await this.#allocate(base);
      this.#active = await this.#openActive(base);
    }
    this.#flushedOffset = this.endOffset;
    this.#startAllocatingNext();
    if (this.#options.flushMode === 'async') {
      this.#flushTimer = setInterval(() => void this.sync().catch(() => undefined), this.#options.flushIntervalMs);
      this.#flushTimer.unref();
    }
    report.durationMs = performance.now() - started;
    publish('recovery', report);
    return report;
  }

  /** Finds where a local segment's records end by following the record chain from its start. */
  async #dataEnd(seg: ReadableSegment): Promise<number> {
    let position = 0;
    const buf = Buffer.allocUnsafe(scanChunkBytes);
    while (position < seg.sizeBytes) {
      const got = await this.#readSegment(seg, position, buf, Math.min(scanChunkBytes, seg.sizeBytes - position));
      let at = 0;
      for (;;) {
        const r = decodeRecord(buf, at, got);
        if (!r.ok) break;
        at += r.record.totalSize;
      }
      if (at === 0) break;
      position += at;
    }
    return position;
  }

  async #scan(fromOffset: number, onRecord: (record: DecodedRecord) => void): Promise<RecoveryReport> {
    const report: RecoveryReport = {
      fromOffset,
      endOffset: fromOffset,
      scannedBytes: 0,
      scannedRecords: 0,
      truncatedBytes: 0,
      corruptions: [],
      durationMs: 0,
    };
    const segments = this.#segments;
    if (segments.length === 0) {
      report.endOffset = 0;
      return report;
    }
    const first = segments[0] as ReadableSegment;
    let offset = Math.max(fromOffset, first.baseOffset);
    let index = segments.findIndex((s) => offset < s.baseOffset + s.sizeBytes);
    if (index < 0) {
      // Everything was already dispatched; the log ends at the last segment's data.
      const last = segments[segments.length - 1] as ReadableSegment;
      report.endOffset = last.fd === undefined ? last.baseOffset + last.sizeBytes : last.baseOffset + (await this.#dataEnd(last));
      return report;
    }
    offset = Math.max(offset, (segments[index] as ReadableSegment).baseOffset);
    // Records of a batch whose last record has not been seen yet: dispatched only once it has.
    let batch: DecodedRecord[] = [];
    let batchStart = -1;
    let end = offset;
    const buf = Buffer.allocUnsafe(scanChunkBytes + recordMaxBytes);
    const view = viewOf(buf);
    scan: while (index < segments.length) {
      const seg = segments[index] as ReadableSegment;
      let position = offset - seg.baseOffset;
      while (position < seg.sizeBytes) {
        const got = await this.#readSegment(seg, position, buf, Math.min(buf.length, seg.sizeBytes - position));
        let at = 0;
        while (at < got) {
          // A full chunk is decoded up to one record short of its end, then read again from there.
          if (got === buf.length && got - at < recordMaxBytes) break;
          const r = decodeRecord(buf, at, got, view);
          const physical = seg.baseOffset + position + at;
          if (r.ok && r.record.physicalOffset === physical) {
            const rec = r.record;
            report.scannedRecords++;
            report.scannedBytes += rec.totalSize;
            at += rec.totalSize;
            end = physical + rec.totalSize;
            if ((rec.flags & recordFlags.batchContinues) !== 0) {
              if (batchStart < 0) batchStart = physical;
              batch.push(copyRecord(rec));
            } else {
              for (const b of batch) onRecord(b);
              batch = [];
              batchStart = -1;
              onRecord(rec);
            }
            continue;
          }
          const zeroSized = !r.ok && r.error.kind === 'end' && isZeroSizedRecord(buf, at, got);
          if (!r.ok && r.error.kind === 'end' && !zeroSized) {
            // Zeros: the written part of this segment ends here.
            position = seg.sizeBytes;
            at = got;
            break;
          }
          // Damage. A valid record further on means a hole in the middle; none means a torn tail.
          const reason = r.ok
            ? `record claims offset ${r.record.physicalOffset}`
            : zeroSized
              ? 'record size field is zero'
              : describeRecordError(r.error);
          const next = await this.#findNextValid(index, physical + 1);
          if (next === undefined && seg.fd === undefined) {
            // A sealed segment was synced before it was sealed: damage in it is never a torn write
            // (and it cannot be truncated). Report it and go on with what follows, all of which is
            // unwritten, instead of refusing to open over one bad record.
            const toOffset = seg.baseOffset + seg.sizeBytes;
            report.corruptions.push({ fromOffset: physical, toOffset, reason });
            publish('corruption', { fromOffset: physical, toOffset, reason });
            for (const b of batch) onRecord(b);
            batch = [];
            batchStart = -1;
            position = seg.sizeBytes;
            at = got;
            break;
          }
          if (next === undefined) {
            const truncateFrom = batchStart >= 0 ? batchStart : physical;
            report.truncatedBytes = await this.#truncateTail(index, truncateFrom, physical);
            end = truncateFrom;
            if (batch.length > 0) publish('truncated-batch', { fromOffset: batchStart, records: batch.length });
            batch = [];
            batchStart = -1;
            break scan;
          }
          report.corruptions.push({ fromOffset: physical, toOffset: next.offset, reason });
          publish('corruption', { fromOffset: physical, toOffset: next.offset, reason });
          // A damaged batch member breaks that batch's atomicity; its intact records still count.
          for (const b of batch) onRecord(b);
          batch = [];
          batchStart = -1;
          index = next.index;
          offset = next.offset;
          continue scan;
        }
        position += at;
        if (at === 0) break;
      }
      index++;
      const following = segments[index];
      if (following !== undefined) offset = following.baseOffset;
    }
    if (batch.length > 0) {
      // The log ends inside a batch: its last record never reached the disk.
      const seg = this.#segmentAt(batchStart);
      const segIndex = seg === undefined ? -1 : segments.indexOf(seg);
      report.truncatedBytes = await this.#truncateTail(segIndex, batchStart, end);
      publish('truncated-batch', { fromOffset: batchStart, records: batch.length });
      end = batchStart;
    }
    report.endOffset = end;
    return report;
  }

  /** Looks for the next record that verifies and sits where it says it does. */
  async #findNextValid(index: number, fromOffset: number): Promise<{ index: number; offset: number } | undefined> {
    const segments = this.#segments;
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(recordMagic, 0);
    const buf = Buffer.allocUnsafe(scanChunkBytes + recordMaxBytes);
    for (let i = index; i < segments.length; i++) {
      const seg = segments[i] as ReadableSegment;
      let position = Math.max(0, fromOffset - seg.baseOffset);
      while (position < seg.sizeBytes) {
        const got = await this.#readSegment(seg, position, buf, Math.min(buf.length, seg.sizeBytes - position));
        if (got === 0) break;
        // This pass owns records starting in its first scanChunkBytes; the next pass the rest.
        const owned = got === buf.length ? scanChunkBytes : got;
        let search = 4;
        for (;;) {
          const hit = buf.indexOf(magic, search);
          if (hit < 0 || hit - 4 >= owned) break;
          const at = hit - 4;
          const r = decodeRecord(buf, at, got);
          if (r.ok && r.record.physicalOffset === seg.baseOffset + position + at) {
            return { index: i, offset: seg.baseOffset + position + at };
          }
          search = hit + 1;
        }
        if (got < buf.length) break;
        position += scanChunkBytes;
      }
    }
    return undefined;
  }

  /**
   * Zeroes the log from `fromOffset` on, so bytes of a discarded write can never be mistaken for
   * records later. What a crash can leave past the last sync is at most one group write.
   */
  async #truncateTail(index: number, fromOffset: number, damageOffset: number): Promise<number> {
    const segments = this.#segments;
    const seg = segments[index];
    if (seg === undefined || seg.fd === undefined) {
      throw new SkyrocketError('STORE_CORRUPTED', `torn tail at ${fromOffset} lies in a sealed segment`);
    }
    const start = fromOffset - seg.baseOffset;
    const stop = Math.min(seg.sizeBytes, damageOffset - seg.baseOffset + this.#options.maxGroupBytes + recordMaxBytes);
    for (let at = start; at < stop; at += zeroChunk.length) {
      const n = Math.min(zeroChunk.length, stop - at);
      await writeFully(seg.fd, zeroChunk, n, at);
    }
    await fdatasyncAsync(seg.fd);
    // Later local segments can hold nothing valid: drop them.
    for (const later of segments.slice(index + 1)) {
      if (later.fd === undefined) continue;
      fs.closeSync(later.fd);
      fs.rmSync(path.join(this.#options.dir, segmentFileName(later.baseOffset)), { force: true });
    }
    this.#segments = segments.slice(0, index + 1);
    publish('truncated', { fromOffset, damageOffset });
    return stop - start;
  }

  async #readSegment(seg: ReadableSegment, position: number, buf: Buffer, length: number): Promise<number> {
    if (length <= 0) return 0;
    if (seg.fd !== undefined) return readFully(seg.fd, buf, length, position);
    const bytes = await this.#options.segmentStore.read(seg.baseOffset, position, length);
    bytes.copy(buf, 0);
    return bytes.length;
  }

  #segmentAt(offset: number): ReadableSegment | undefined {
    const segments = this.#segments;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segments[mid] as ReadableSegment;
      if (offset < s.baseOffset) hi = mid - 1;
      else if (offset >= s.baseOffset + Math.max(s.sizeBytes, 1)) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  async #openActive(base: number): Promise<ActiveSegment> {
    const file = path.join(this.#options.dir, segmentFileName(base));
    const fd = await openAsync(file, activeSegmentFlags(this.#options.flushMode));
    return {
      baseOffset: base,
      fileBytes: fs.fstatSync(fd).size,
      fd,
      writePosition: 0,
      lastStoredAtMs: this.#options.now(),
      path: file,
    };
  }

  /** Creates the segment file at `base`, zero-filled and synced, under its final name. */
  async #allocate(base: number): Promise<void> {
    const { dir, segmentSizeBytes } = this.#options;
    const final = path.join(dir, segmentFileName(base));
    if (fs.existsSync(final)) return;
    const tmp = `${final}.alloc`;
    const fd = await openAsync(tmp, 'w');
    try {
      for (let at = 0; at < segmentSizeBytes; at += zeroChunk.length) {
        await writeFully(fd, zeroChunk, Math.min(zeroChunk.length, segmentSizeBytes - at), at);
      }
      await fdatasyncAsync(fd);
    } catch (error) {
      await closeAsync(fd).catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw toStoreError(error, `cannot allocate segment ${segmentFileName(base)}`);
    }
    await closeAsync(fd);
    fs.renameSync(tmp, final);
    await syncDirectory(dir);
    publish('segment-allocated', { baseOffset: base });
  }

  /**
   * Starts zero-filling the next segment once the active one is half full. Filling doubles the
   * bytes written, and on a fast disk a fill running beside appends slows them about threefold
   * (bench/store.ts), so it starts as late as is safe rather than as soon as a segment opens.
   */
  #startAllocatingNext(): void {
    const active = this.#active;
    if (active === undefined || this.#closed || this.#nextAllocation !== undefined) return;
    if (active.writePosition * 2 < active.fileBytes) return;
    const next = active.baseOffset + active.fileBytes;
    const allocation = this.#allocate(next);
    allocation.catch(() => undefined);
    this.#nextAllocation = allocation;
  }

  async #roll(): Promise<void> {
    const old = this.#active;
    if (old === undefined) throw new Error('roll without an active segment');
    const nextBase = old.baseOffset + old.fileBytes;
    try {
      await (this.#nextAllocation ?? Promise.reject(new Error('no allocation')));
    } catch {
      // The background allocation failed (perhaps the disk was full then): try once more now.
      this.#nextAllocation = undefined;
      await this.#allocate(nextBase);
    }
    this.#nextAllocation = undefined;
    const next = await this.#openActive(nextBase);
    await fdatasyncAsync(old.fd);
    this.#flushedOffset = Math.max(this.#flushedOffset, old.baseOffset + old.writePosition);
    // Readers see the old segment through its descriptor until the segment store has it.
    const readable: ReadableSegment = {
      baseOffset: old.baseOffset,
      sizeBytes: old.writePosition,
      fd: old.fd,
      lastStoredAtMs: old.lastStoredAtMs,
    };
    this.#segments.push(readable);
    this.#active = next;
    this.#startAllocatingNext();
    await this.#sealSegment(readable, old.writePosition);
    publish('segment-rolled', { sealedBaseOffset: old.baseOffset, sizeBytes: old.writePosition, nextBaseOffset: nextBase });
  }

  async #sealSegment(seg: ReadableSegment, dataBytes: number): Promise<void> {
    const file = path.join(this.#options.dir, segmentFileName(seg.baseOffset));
    const meta: SealedSegment = { baseOffset: seg.baseOffset, sizeBytes: dataBytes, lastStoredAtMs: seg.lastStoredAtMs };
    await this.#options.segmentStore.seal(meta, file);
    const fd = seg.fd;
    seg.sizeBytes = dataBytes;
    delete seg.fd;
    if (!this.#segments.includes(seg)) {
      this.#segments.push(seg);
      this.#segments.sort((a, b) => a.baseOffset - b.baseOffset);
    }
    // A read queued on the descriptor just before the seal may still run: close it later.
    if (fd !== undefined) setTimeout(() => fs.close(fd, () => undefined), 10_000).unref();
  }

  /**
   * Appends `records` as one batch: all of them are stored, contiguous and in order, or none.
   * Resolves after the bytes are durable under the flush mode.
   */
  append(records: readonly RecordInput[]): Promise<AppendedRecord[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new SkyrocketError('STORE_CLOSED', 'the store is closed'));
    if (records.length === 0) return Promise.resolve([]);
    const sized: SizedRecord[] = new Array(records.length);
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const s = sizeRecord(records[i] as RecordInput, this.#options.storeHost, this.#utf8);
      if (s.bornHost.length > 0xff || s.properties.some((p, k) => k % 2 === 0 && p.length > 0xffff)) {
        return Promise.reject(new SkyrocketError('INVALID_ARGUMENT', 'born host over 255 bytes or property name over 64 KiB'));
      }
      if (s.totalSize > recordMaxBytes) {
        return Promise.reject(
          new SkyrocketError('MESSAGE_BODY_TOO_LARGE', `record of ${s.totalSize} bytes exceeds ${recordMaxBytes}`),
        );
      }
      sized[i] = s;
      bytes += s.totalSize;
    }
    if (bytes > this.#options.segmentSizeBytes) {
      return Promise.reject(
        new SkyrocketError('PAYLOAD_TOO_LARGE', `batch of ${bytes} bytes exceeds the segment size ${this.#options.segmentSizeBytes}`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ sized, bytes, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        // Appends made in this same tick join the group.
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#failure === undefined) {
        const active = this.#active as ActiveSegment;
        const room = active.fileBytes - active.writePosition;
        const first = this.#pending[0] as AppendRequest;
        if (first.bytes > room) {
          try {
            await this.#roll();
          } catch (error) {
            const storeError = toStoreError(error, 'cannot start a new segment');
            // Nothing of these requests was written: fail them, keep going with what comes next.
            for (const req of this.#pending.splice(0)) req.reject(storeError);
            publish('append-failed', { code: storeError.code, message: storeError.message });
          }
          continue;
        }
        let take = 0;
        let bytes = 0;
        for (const req of this.#pending) {
          if (bytes + req.bytes > room || (take > 0 && bytes + req.bytes > this.#options.maxGroupBytes)) break;
          bytes += req.bytes;
          take++;
        }
        const group = this.#pending.splice(0, take);
        await this.#writeGroup(active, group, bytes);
      }
    } finally {
      this.#draining = false;
      if (this.#pending.length > 0) {
        if (this.#failure !== undefined) {
          for (const req of this.#pending.splice(0)) req.reject(this.#failure);
        } else {
          this.#draining = true;
          setImmediate(() => void this.#drain());
        }
      }
    }
  }

  async #writeGroup(active: ActiveSegment, group: AppendRequest[], bytes: number): Promise<void> {
    if (this.#writeBuffer.length < bytes) {
      this.#writeBuffer = Buffer.allocUnsafe(Math.max(bytes, this.#writeBuffer.length * 2));
      this.#writeView = viewOf(this.#writeBuffer);
    }
    const buf = this.#writeBuffer;
    const view = this.#writeView;
    const storeTimestamp = this.#options.now();
    const base = active.baseOffset + active.writePosition;
    const written: WrittenRecord[] = [];
    const results: AppendedRecord[][] = [];
    const priorOffsets = new Map<string, number>();
    let at = 0;
    for (const req of group) {
      const out: AppendedRecord[] = new Array(req.sized.length);
      for (let i = 0; i < req.sized.length; i++) {
        const sized = req.sized[i] as SizedRecord;
        const { topic, queueId } = sized.input;
        const key = queueKey(topic, queueId);
        const queueOffset = this.#queueOffsets.get(key) ?? 0;
        if (!priorOffsets.has(key)) priorOffsets.set(key, queueOffset);
        this.#queueOffsets.set(key, queueOffset + 1);
        const physicalOffset = base + at;
        const continues = i < req.sized.length - 1 ? recordFlags.batchContinues : 0;
        const size = encodeRecord(buf, at, sized, { queueOffset, physicalOffset, storeTimestamp }, continues, view);
        at += size;
        const record: WrittenRecord = { physicalOffset, queueOffset, size, storeTimestamp, input: sized.input };
        out[i] = record;
        written.push(record);
      }
      results.push(out);
    }
    try {
      await writeFully(active.fd, buf, bytes, active.writePosition);
    } catch (error) {
      for (const [key, offset] of priorOffsets) this.#queueOffsets.set(key, offset);
      const code = (error as NodeJS.ErrnoException).code;
      if (this.#options.flushMode === 'sync' && code !== 'ENOSPC' && code !== 'EDQUOT') {
        // The write is also the sync (O_DSYNC): after a failed sync the page cache may have
        // dropped data, so nothing since the last good write can be trusted and the store stops,
        // as after a failed fdatasync.
        this.#fail(toStoreError(error, 'commit log write failed'));
        for (const req of group) req.reject(this.#failure);
        return;
      }
      // Whatever part reached the file must not look like records after a crash.
      await writeFully(active.fd, zeroChunk, Math.min(bytes, zeroChunk.length), active.writePosition).catch(
        () => undefined,
      );
      const storeError = toStoreError(error, 'commit log write failed');
      for (const req of group) req.reject(storeError);
      publish('append-failed', { code: storeError.code, message: storeError.message });
      return;
    }
    active.writePosition += bytes;
    active.lastStoredAtMs = storeTimestamp;
    this.#startAllocatingNext();
    if (this.#options.flushMode === 'sync') {
      // The active segment is open with O_DSYNC: the write returned once the bytes were durable,
      // as a write followed by fdatasync, in one system call and one trip to the thread pool.
      this.#flushedOffset = base + bytes;
    } else {
      this.#unsynced = true;
    }
    try {
      this.onWritten(written);
    } catch (error) {
      this.#fail(toStoreError(error, 'dispatch failed'));
    }
    for (let i = 0; i < group.length; i++) (group[i] as AppendRequest).resolve(results[i] as AppendedRecord[]);
  }

  #fail(error: SkyrocketError): void {
    if (this.#failure !== undefined) return;
    this.#failure = new SkyrocketError('STORE_CORRUPTED', `store stopped: ${error.message}`, { cause: error });
    publish('failed', { message: error.message });
  }

  /** Syncs written bytes (the async flush mode's timer, close, and the checkpoint call this). */
  async sync(): Promise<void> {
    if (this.#syncing !== undefined) return this.#syncing;
    const active = this.#active;
    if (active === undefined || !this.#unsynced) return;
    const target = active.baseOffset + active.writePosition;
    this.#unsynced = false;
    this.#syncing = (async () => {
      try {
        await fdatasyncAsync(active.fd);
        this.#flushedOffset = Math.max(this.#flushedOffset, target);
      } catch (error) {
        this.#fail(toStoreError(error, 'commit log fdatasync failed'));
      } finally {
        this.#syncing = undefined;
      }
    })();
    return this.#syncing;
  }

  /**
   * Reads `length` bytes at `offset` (fewer at the end of a segment). The caller decodes and
   * verifies them.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    const active = this.#active;
    if (active !== undefined && offset >= active.baseOffset) {
      const avail = Math.min(length, active.writePosition - (offset - active.baseOffset));
      if (avail <= 0) return Buffer.alloc(0);
      const position = offset - active.baseOffset;
      const buf = Buffer.allocUnsafe(avail);
      // A small read near the end of the log (a consumer keeping up) is in the page cache: read
      // on the event loop, which takes less than the trip to the thread pool and back.
      if (avail <= hotReadMaxBytes && active.writePosition - position <= hotTailBytes) {
        const got = readFullySync(active.fd, buf, avail, position);
        return got === avail ? buf : buf.subarray(0, got);
      }
      const got = await readFully(active.fd, buf, avail, position);
      return got === avail ? buf : buf.subarray(0, got);
    }
    const seg = this.#segmentAt(offset);
    if (seg === undefined) return Buffer.alloc(0);
    const position = offset - seg.baseOffset;
    const avail = Math.min(length, seg.sizeBytes - position);
    if (avail <= 0) return Buffer.alloc(0);
    if (seg.fd !== undefined) {
      const buf = Buffer.allocUnsafe(avail);
      const got = await readFully(seg.fd, buf, avail, position);
      return got === avail ? buf : buf.subarray(0, got);
    }
    return this.#options.segmentStore.read(seg.baseOffset, position, avail);
  }

  /**
   * Where the first segment after `offset` starts, counting segments still being sealed and the
   * active one; the end of the log if none does. A reader that reached the end of a segment's
   * records continues there: the rest of that segment holds none.
   */
  nextSegmentBase(offset: number): number {
    for (const s of this.#segments) if (s.baseOffset > offset) return s.baseOffset;
    const active = this.#active;
    if (active !== undefined && active.baseOffset > offset) return active.baseOffset;
    return this.endOffset;
  }

  /** Sealed segments, oldest first, for retention. */
  sealedSegments(): ReadonlyArray<Readonly<SealedSegment>> {
    return this.#segments.filter((s) => s.fd === undefined);
  }

  /** Deletes the oldest sealed segment (retention). Its offsets stop being readable. */
  async deleteOldest(): Promise<SealedSegment | undefined> {
    const first = this.#segments[0];
    if (first === undefined || first.fd !== undefined) return undefined;
    this.#segments.shift();
    await this.#options.segmentStore.delete(first.baseOffset);
    publish('segment-deleted', { baseOffset: first.baseOffset });
    return { baseOffset: first.baseOffset, sizeBytes: first.sizeBytes, lastStoredAtMs: first.lastStoredAtMs };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    while (this.#draining) await new Promise((r) => setImmediate(r));
    await this.#nextAllocation?.catch(() => undefined);
    if (this.#failure === undefined) await this.sync();
    for (const seg of this.#segments) if (seg.fd !== undefined) fs.closeSync(seg.fd);
    if (this.#active !== undefined) fs.closeSync(this.#active.fd);
    await this.#options.segmentStore.close();
  }
}

export function queueKey(topic: string, queueId: number): string {
  return `${topic}\u0000${queueId}`;
}

/** A decoded record holds views into a scan buffer that is about to be reused. */
function copyRecord(rec: DecodedRecord): DecodedRecord {
  return { ...rec, body: Buffer.from(rec.body) };
}

async function writeFully(fd: number, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) done += await writeAsync(fd, buf, done, length - done, position + done);
}

/** Reads at most this many bytes on the event loop (see CommitLog.read). */
const hotReadMaxBytes = 64 * 1024;
/** ... and only this close to the end of the log, which was written moments ago. */
const hotTailBytes = 64 * 1024 * 1024;

function readFullySync(fd: number, buf: Buffer, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

async function readFully(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await readAsync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function toStoreError(error: unknown, what: string): SkyrocketError {
  if (error instanceof SkyrocketError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new SkyrocketError('DISK_FULL', `${what}: the disk is full`, { cause: error });
  }
  return new SkyrocketError('INTERNAL_ERROR', `${what}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
