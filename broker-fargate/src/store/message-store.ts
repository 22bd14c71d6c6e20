import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SkyrocketError } from '../../../core/errors.ts';
import { limits } from '../../../core/limits.ts';
import { decodeMessageId, encodeMessageId } from '../../../core/message-id.ts';
import type { StoredMessage } from '../../../core/message.ts';
import { tagHash } from '../../../core/tag-hash.ts';
import { readCheckpoint, writeCheckpointAsync } from './checkpoint.ts';
import { CommitLog, queueKey, type FlushMode, type RecoveryReport, type WrittenRecord } from './commit-log.ts';
import { ConsumeQueue, consumeQueueEntryBytes, decodeEntry } from './consume-queue.ts';
import { publish } from './diagnostics.ts';
import { KeyIndex } from './key-index.ts';
import { decodeRecord, describeRecordError, readU64, isZeroSizedRecord, recordMaxBytes, systemProperty, viewOf, type DecodedRecord, type RecordInput } from './record.ts';
import { LocalSegmentStore, type SegmentStore } from './segment-store.ts';
import { BoundedMap } from '../../../core/bounded-map.ts';

const fdatasyncAsync = promisify(fs.fdatasync);

/**
 * A record that carries `UNIQ_KEY` (a message stored again under an id it had before) is also
 * indexed by that id under this index topic. No real topic has an empty name, so its entries
 * never mix with the keys of a topic.
 */
export const uniqueKeyIndexTopic = '';

/** Every store limit and default in one place, checked against each other at open. */
export const storeDefaults = {
  segmentSizeBytes: 1024 * 1024 * 1024,
  flushMode: 'sync' as FlushMode,
  flushIntervalMs: 200,
  checkpointIntervalMs: 1000,
  maxGroupBytes: 16 * 1024 * 1024,
  consumeQueueEntriesPerFile: 300_000,
  indexSlotCount: 512 * 1024,
  indexMaxEntries: 1024 * 1024,
  retentionMs: 72 * 60 * 60 * 1000,
  retentionCheckIntervalMs: 60_000,
  /** One read fetches at most this many consume-queue entries while looking for matches. */
  readScanEntriesMax: 16 * 1024,
  /** Records this close together are fetched with one read. */
  readSpanBytesMax: 4 * 1024 * 1024,
  /**
   * A read may fetch up to this many bytes per byte it needs: copying page-cache bytes costs far
   * less than one more read call, and a topic's queues interleave in the log.
   */
  readSpanAmplificationMax: 16,
  /**
   * A read fetches this much more of the log than its run needs: the runs of a topic's other
   * queues, read next by the same receive, start a few records later and end a few records later.
   */
  readAheadBytes: 64 * 1024,
  /** Stretches of the log kept from recent reads. */
  readSpansKept: 4,
} as const;

export interface MessageStoreOptions {
  /** Root directory: commitlog/, sealed/, consumequeue/, index/, checkpoint. */
  dataDir: string;
  /** Goes into every message id; unique per broker group. */
  brokerId: number;
  /** Written into each record as its store host. */
  storeHost: string;
  /** @default 1 GiB */
  segmentSizeBytes?: number;
  /** @default 'sync' */
  flushMode?: FlushMode;
  /** Async mode: how often written bytes are synced. @default 200 */
  flushIntervalMs?: number;
  /** How often consume queues and the key index are synced and the checkpoint written. @default 1000 */
  checkpointIntervalMs?: number;
  /** @default 16 MiB */
  maxGroupBytes?: number;
  /** @default 300000 (6 MB files) */
  consumeQueueEntriesPerFile?: number;
  /** @default 524288 */
  indexSlotCount?: number;
  /** @default 1048576 */
  indexMaxEntries?: number;
  /** Sealed segments older than this are deleted. @default 72 h */
  retentionMs?: number;
  /** 0 turns the retention timer off (call `enforceRetention` yourself). @default 60000 */
  retentionCheckIntervalMs?: number;
  /** Where sealed segments go. @default a LocalSegmentStore in `<dataDir>/sealed` */
  segmentStore?: SegmentStore;
  /** @default Date.now */
  now?: () => number;
}

type ResolvedOptions = Required<Omit<MessageStoreOptions, 'segmentStore'>> & { segmentStore: SegmentStore };

function resolveOptions(options: MessageStoreOptions): ResolvedOptions {
  const o: ResolvedOptions = {
    segmentSizeBytes: storeDefaults.segmentSizeBytes,
    flushMode: storeDefaults.flushMode,
    flushIntervalMs: storeDefaults.flushIntervalMs,
    checkpointIntervalMs: storeDefaults.checkpointIntervalMs,
    maxGroupBytes: storeDefaults.maxGroupBytes,
    consumeQueueEntriesPerFile: storeDefaults.consumeQueueEntriesPerFile,
    indexSlotCount: storeDefaults.indexSlotCount,
    indexMaxEntries: storeDefaults.indexMaxEntries,
    retentionMs: storeDefaults.retentionMs,
    retentionCheckIntervalMs: storeDefaults.retentionCheckIntervalMs,
    now: Date.now,
    ...stripUndefined(options),
    dataDir: options.dataDir,
    brokerId: options.brokerId,
    storeHost: options.storeHost,
    segmentStore: options.segmentStore ?? new LocalSegmentStore(path.join(options.dataDir, 'sealed')),
  };
  const bad = (what: string): never => {
    throw new SkyrocketError('INVALID_ARGUMENT', `store option ${what}`);
  };
  if (!Number.isInteger(o.brokerId) || o.brokerId < 0 || o.brokerId > 0xffffffff) bad('brokerId must be a u32');
  if (Buffer.byteLength(o.storeHost) > 255) bad('storeHost must be at most 255 bytes');
  if (!Number.isInteger(o.segmentSizeBytes) || o.segmentSizeBytes < 64 * 1024) bad('segmentSizeBytes must be >= 64 KiB');
  if (o.flushMode !== 'sync' && o.flushMode !== 'async') bad(`flushMode must be sync or async, not ${String(o.flushMode)}`);
  if (!(o.flushIntervalMs > 0)) bad('flushIntervalMs must be > 0');
  if (!(o.checkpointIntervalMs > 0)) bad('checkpointIntervalMs must be > 0');
  if (!(o.maxGroupBytes > 0) || o.maxGroupBytes > o.segmentSizeBytes) bad('maxGroupBytes must be in (0, segmentSizeBytes]');
  if (!(o.consumeQueueEntriesPerFile >= 1024)) bad('consumeQueueEntriesPerFile must be >= 1024');
  if (!(o.indexSlotCount >= 16)) bad('indexSlotCount must be >= 16');
  // One record may carry the most keys a message may have; they must fit in one index file.
  if (!(o.indexMaxEntries >= limits.keysMaxCount)) bad(`indexMaxEntries must be >= ${limits.keysMaxCount}`);
  if (!(o.retentionMs > 0)) bad('retentionMs must be > 0');
  return o;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface AppendResult {
  messageId: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  storeTimestamp: number;
}

export interface ReadOptions {
  /** @default 32 */
  maxMessages?: number;
  /** Stop after this many bytes of records (at least one message is returned). @default 4 MiB */
  maxBytes?: number;
  /** Only messages whose tag is one of these. Undefined: every message. */
  tags?: ReadonlySet<string>;
}

export type ReadStatus = 'FOUND' | 'NO_NEW_MESSAGE' | 'NO_MATCHED_MESSAGE' | 'OFFSET_OVERFLOW';

export interface CorruptedEntry {
  queueOffset: number;
  physicalOffset: number;
  reason: string;
}

export interface ReadResult {
  status: ReadStatus;
  messages: StoredMessage[];
  /** Where reading started: the requested offset, or the queue's minimum if that was gone. */
  startOffset: number;
  /** Continue from here. */
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
  /** Entries stepped over because their record failed verification: never served as data. */
  corrupted: CorruptedEntry[];
}

/**
 * The broker's storage engine: the commit log, the consume queues and key index derived from it,
 * the checkpoint, recovery and retention. It keeps no per-message object after an append: memory
 * holds one state per queue, one per segment and one key-index file.
 */
export class MessageStore {
  readonly #o: ResolvedOptions;
  readonly #log: CommitLog;
  readonly #index: KeyIndex;
  readonly #queues = new Map<string, ConsumeQueue>();
  readonly #dirs: { consumeQueue: string; index: string; root: string };
  #dispatchedOffset = 0;
  /** Recently read stretches of the log, newest first (see #readRun). */
  #spans: Array<{ offset: number; buf: Buffer }> = [];
  #stalled = false;
  #reputTimer: NodeJS.Timeout | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #checkpointing: Promise<void> | undefined;
  #closed = false;
  #recovery: RecoveryReport | undefined;
  /**
   * Where this process began writing the log. Reads check the CRC of every record below it (bytes
   * from before this start, which the disk kept while nobody watched) and trust the records at or
   * past it, which this process encoded from checked input and reads back from the page cache.
   * The check cost a fifth of the consuming path; RocketMQ, for one, checks CRCs only in recovery.
   */
  #writtenFrom = 0;
  /** Tag codes of recent tags: hashing a string costs more than the rest of a dispatch. */
  readonly #tagCodes = new BoundedMap<string, number>(4096);

  private constructor(options: ResolvedOptions) {
    this.#o = options;
    this.#dirs = {
      root: options.dataDir,
      consumeQueue: path.join(options.dataDir, 'consumequeue'),
      index: path.join(options.dataDir, 'index'),
    };
    this.#log = new CommitLog({
      dir: path.join(options.dataDir, 'commitlog'),
      segmentStore: options.segmentStore,
      segmentSizeBytes: options.segmentSizeBytes,
      flushMode: options.flushMode,
      flushIntervalMs: options.flushIntervalMs,
      maxGroupBytes: options.maxGroupBytes,
      storeHost: options.storeHost,
      now: options.now,
    });
    this.#index = new KeyIndex({
      dir: this.#dirs.index,
      slotCount: options.indexSlotCount,
      maxEntries: options.indexMaxEntries,
    });
  }

  /** Opens (and after a crash, recovers) the store in `options.dataDir`. */
  static async open(options: MessageStoreOptions): Promise<MessageStore> {
    const store = new MessageStore(resolveOptions(options));
    await store.#open();
    return store;
  }

  async #open(): Promise<void> {
    fs.mkdirSync(this.#dirs.consumeQueue, { recursive: true });
    this.#loadQueues();
    this.#index.load();
    const checkpoint = readCheckpoint(this.#dirs.root);
    const indexedThrough = this.#index.endLogOffset;
    const report = await this.#log.open(checkpoint?.dispatchedOffset ?? 0, (record) => {
      this.#dispatchOne(record.topic, record.queueId, record.queueOffset, record.physicalOffset, record.totalSize, record.tag, record.keys, record.storeTimestamp, indexedThrough, record.properties[systemProperty.originMessageId]);
    });
    for (const queue of this.#queues.values()) {
      queue.truncateByLogEnd(report.endOffset);
      this.#log.setNextQueueOffset(queue.topic, queue.queueId, queue.maxOffset);
    }
    // The index may hold records the log no longer has (a torn tail it had seen). New records will
    // take those offsets, and a later recovery indexes only past the index's end: cut it back too,
    // before the checkpoint below makes the cut durable.
    if (indexedThrough >= report.endOffset) this.#index.truncateFrom(report.endOffset);
    this.#dispatchedOffset = report.endOffset;
    this.#writtenFrom = report.endOffset;
    this.#recovery = report;
    this.#log.onWritten = (records) => this.#dispatchWritten(records);
    const minLog = this.#log.minOffset;
    for (const queue of this.#queues.values()) queue.dropBelow(minLog);
    await this.checkpoint();
    this.#checkpointTimer = setInterval(() => void this.checkpoint().catch(() => undefined), this.#o.checkpointIntervalMs);
    this.#checkpointTimer.unref();
    if (this.#o.retentionCheckIntervalMs > 0) {
      this.#retentionTimer = setInterval(
        () => void this.enforceRetention().catch(() => undefined),
        this.#o.retentionCheckIntervalMs,
      );
      this.#retentionTimer.unref();
    }
  }

  #loadQueues(): void {
    for (const topicDir of fs.readdirSync(this.#dirs.consumeQueue)) {
      const topic = decodeURIComponent(topicDir);
      for (const queueDir of fs.readdirSync(path.join(this.#dirs.consumeQueue, topicDir))) {
        if (!/^\d+$/.test(queueDir)) continue;
        const queue = this.#queue(topic, Number(queueDir));
        queue.load();
      }
    }
  }

  #queue(topic: string, queueId: number): ConsumeQueue {
    const key = queueKey(topic, queueId);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = new ConsumeQueue(this.#dirs.consumeQueue, topic, queueId, this.#o.consumeQueueEntriesPerFile);
      this.#queues.set(key, queue);
    }
    return queue;
  }

  /** The recovery that ran when the store opened. */
  get recovery(): RecoveryReport {
    return this.#recovery as RecoveryReport;
  }

  get brokerId(): number {
    return this.#o.brokerId;
  }

  /**
   * Appends a batch: every record is stored, contiguous and in order, or none is. Resolves once
   * durable under the flush mode (`sync`: after fdatasync).
   */
  async append(records: readonly RecordInput[]): Promise<AppendResult[]> {
    if (this.#closed) throw new SkyrocketError('STORE_CLOSED', 'the store is closed');
    const appended = await this.#log.append(records);
    const out: AppendResult[] = new Array(appended.length);
    for (let i = 0; i < appended.length; i++) {
      const a = appended[i]!;
      out[i] = {
        messageId: encodeMessageId(this.#o.brokerId, a.physicalOffset),
        queueId: records[i]!.queueId,
        queueOffset: a.queueOffset,
        physicalOffset: a.physicalOffset,
        storeTimestamp: a.storeTimestamp,
      };
    }
    return out;
  }

  #dispatchWritten(records: WrittenRecord[]): void {
    if (this.#stalled) return; // the reput loop will reach them from the log
    const touched = new Set<ConsumeQueue>();
    try {
      for (const r of records) {
        const { input } = r;
        const queue = this.#queue(input.topic, input.queueId);
        queue.append(r.queueOffset, { commitLogOffset: r.physicalOffset, size: r.size, tagCode: this.#tagCode(input.tag) });
        touched.add(queue);
        if (input.keys !== undefined && input.keys.length > 0) {
          this.#index.add(input.topic, input.keys, r.physicalOffset, r.storeTimestamp);
        }
        const uniqueKey = input.properties?.[systemProperty.originMessageId];
        if (uniqueKey !== undefined) this.#index.add(uniqueKeyIndexTopic, [uniqueKey], r.physicalOffset, r.storeTimestamp);
      }
      for (const queue of touched) queue.flush();
      const last = records[records.length - 1];
      if (last !== undefined) this.#dispatchedOffset = last.physicalOffset + last.size;
    } catch (error) {
      this.#stall(error);
    }
  }

  #dispatchOne(
    topic: string,
    queueId: number,
    queueOffset: number,
    physicalOffset: number,
    size: number,
    tag: string | undefined,
    keys: readonly string[],
    storeTimestamp: number,
    indexedThrough: number,
    uniqueKey: string | undefined,
  ): void {
    this.#queue(topic, queueId).append(queueOffset, { commitLogOffset: physicalOffset, size, tagCode: this.#tagCode(tag) });
    if (keys.length > 0 && physicalOffset > indexedThrough) this.#index.add(topic, keys, physicalOffset, storeTimestamp);
    if (uniqueKey !== undefined && physicalOffset > indexedThrough) {
      this.#index.add(uniqueKeyIndexTopic, [uniqueKey], physicalOffset, storeTimestamp);
    }
  }

  #tagCode(tag: string | undefined): number {
    if (tag === undefined) return 0;
    let code = this.#tagCodes.get(tag);
    if (code === undefined) {
      code = tagHash(tag);
      this.#tagCodes.set(tag, code);
    }
    return code;
  }

  /**
   * A consume-queue write failed (a full disk): acked records are safe in the log, but consumers
   * cannot see them until dispatch catches up. Retry from the log until it does.
   */
  #stall(error: unknown): void {
    if (!this.#stalled) {
      this.#stalled = true;
      publish('dispatch-stalled', { dispatchedOffset: this.#dispatchedOffset, message: (error as Error).message });
    }
    if (this.#reputTimer === undefined && !this.#closed) {
      this.#reputTimer = setTimeout(() => {
        this.#reputTimer = undefined;
        void this.#reput();
      }, 500);
      this.#reputTimer.unref();
    }
  }

  async #reput(): Promise<void> {
    try {
      const indexedThrough = this.#index.endLogOffset;
      while (this.#dispatchedOffset < this.#log.endOffset) {
        let chunk = await this.#log.read(this.#dispatchedOffset, storeDefaults.readSpanBytesMax);
        if (chunk.length === 0) {
          // The rest of this segment is unused: continue at the next one. That may be the active
          // segment or one still being sealed, which are not among the sealed segments: jumping
          // to the log's end instead would leave every record in them undispatched for good.
          this.#dispatchedOffset = this.#log.nextSegmentBase(this.#dispatchedOffset);
          continue;
        }
        // A record may be larger than one read span (a 4 MiB body and its properties): fetch it whole.
        const firstSize = chunk.length >= 4 ? chunk.readUInt32LE(0) : 0;
        if (firstSize > chunk.length && firstSize <= recordMaxBytes) chunk = await this.#log.read(this.#dispatchedOffset, firstSize);
        let at = 0;
        const touched = new Set<ConsumeQueue>();
        for (;;) {
          const r = decodeRecord(chunk, at);
          if (!r.ok) break;
          const rec = r.record;
          this.#dispatchOne(rec.topic, rec.queueId, rec.queueOffset, rec.physicalOffset, rec.totalSize, rec.tag, rec.keys, rec.storeTimestamp, indexedThrough, rec.properties[systemProperty.originMessageId]);
          touched.add(this.#queue(rec.topic, rec.queueId));
          at += rec.totalSize;
        }
        for (const queue of touched) queue.flush();
        if (at === 0) {
          // Not a record: the records written to this segment end here.
          this.#dispatchedOffset = this.#log.nextSegmentBase(this.#dispatchedOffset);
          continue;
        }
        this.#dispatchedOffset += at;
      }
      this.#stalled = false;
    } catch (error) {
      this.#stall(error);
    }
  }

  /**
   * Reads a queue from `offset`: up to `maxMessages` messages, stepping over holes, records that
   * fail verification (reported in `corrupted`) and, with `tags`, messages with other tags.
   */
  async read(topic: string, queueId: number, offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    const maxMessages = options.maxMessages ?? 32;
    const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    const queue = this.#queues.get(queueKey(topic, queueId));
    const minOffset = queue?.minOffset ?? 0;
    const maxOffset = queue?.maxOffset ?? 0;
    const empty = (status: ReadStatus, startOffset: number, nextOffset: number): ReadResult => ({
      status,
      messages: [],
      startOffset,
      nextOffset,
      minOffset,
      maxOffset,
      corrupted: [],
    });
    if (queue === undefined) return empty('NO_NEW_MESSAGE', offset, 0);
    const start = Math.max(offset, minOffset);
    if (start >= maxOffset) {
      return offset > maxOffset ? empty('OFFSET_OVERFLOW', offset, maxOffset) : empty('NO_NEW_MESSAGE', start, start);
    }
    const tagCodes = options.tags === undefined ? undefined : new Set([...options.tags].map((t) => tagHash(t)));
    const scan = Math.min(
      maxOffset - start,
      tagCodes === undefined ? maxMessages : storeDefaults.readScanEntriesMax,
    );
    const entries = Buffer.allocUnsafe(scan * consumeQueueEntryBytes);
    const got = queue.read(start, scan, entries);
    // Pick the entries to fetch.
    const picked: Array<{ queueOffset: number; physicalOffset: number; size: number }> = [];
    let bytes = 0;
    let next = start;
    for (let i = 0; i < got; i++) {
      const e = decodeEntry(entries, i * consumeQueueEntryBytes);
      next = start + i + 1;
      if (e.size === 0) continue;
      if (tagCodes !== undefined && !tagCodes.has(e.tagCode)) continue;
      picked.push({ queueOffset: start + i, physicalOffset: e.commitLogOffset, size: e.size });
      bytes += e.size;
      if (picked.length >= maxMessages || bytes >= maxBytes) break;
    }
    const messages: StoredMessage[] = [];
    const corrupted: CorruptedEntry[] = [];
    let i = 0;
    while (i < picked.length) {
      // Fetch a run of records close together in the log with one read.
      const first = picked[i]!;
      let j = i + 1;
      let useful = first.size;
      while (j < picked.length) {
        const p = picked[j]!;
        const span = p.physicalOffset + p.size - first.physicalOffset;
        if (p.physicalOffset < first.physicalOffset || span > storeDefaults.readSpanBytesMax || (useful + p.size) * storeDefaults.readSpanAmplificationMax < span) break;
        useful += p.size;
        j++;
      }
      const last = picked[j - 1]!;
      const runBytes = last.physicalOffset + last.size - first.physicalOffset;
      const buf = await this.#readRun(first.physicalOffset, runBytes, useful < runBytes);
      const view = viewOf(buf);
      for (let k = i; k < j; k++) {
        const p = picked[k]!;
        const at = p.physicalOffset - first.physicalOffset;
        if (k > i && at + p.size > buf.length) {
          // The run crossed into the next segment: fetch the rest from here.
          j = k;
          break;
        }
        const r = decodeRecord(buf, at, Math.min(buf.length, at + p.size), view, p.physicalOffset < this.#writtenFrom);
        let reason: string | undefined;
        if (!r.ok) reason = describeRecordError(r.error);
        else if (r.record.physicalOffset !== p.physicalOffset) reason = `record claims offset ${r.record.physicalOffset}`;
        else if (r.record.topic !== topic || r.record.queueId !== queueId || r.record.queueOffset !== p.queueOffset) {
          reason = `record belongs to ${r.record.topic}/${r.record.queueId}@${r.record.queueOffset}`;
        }
        if (reason !== undefined || !r.ok) {
          corrupted.push({ queueOffset: p.queueOffset, physicalOffset: p.physicalOffset, reason: reason ?? 'unreadable' });
          publish('corruption', { topic, queueId, queueOffset: p.queueOffset, physicalOffset: p.physicalOffset, reason });
          continue;
        }
        if (options.tags !== undefined && (r.record.tag === undefined || !options.tags.has(r.record.tag))) continue;
        messages.push(this.#toMessage(r.record));
      }
      i = j;
    }
    const status: ReadStatus = messages.length > 0 ? 'FOUND' : 'NO_MATCHED_MESSAGE';
    return { status, messages, startOffset: start, nextOffset: next, minOffset, maxOffset: queue.maxOffset, corrupted };
  }

  /**
   * Reads a run of records. A topic's queues interleave in the log, so a receive that takes from
   * several queues reads the same stretch of the log once per queue: the last few stretches read
   * for interleaved runs are kept (with some read-ahead), and a run inside one of them is sliced
   * from it. Only bytes
   * below the dispatched offset are kept: they are whole records and never change.
   */
  async #readRun(offset: number, length: number, interleaved: boolean): Promise<Buffer> {
    for (const span of this.#spans) {
      if (offset >= span.offset && offset + length <= span.offset + span.buf.length) {
        return span.buf.subarray(offset - span.offset, offset - span.offset + length);
      }
    }
    // A run with no other records between its own (one queue written alone) is not worth keeping.
    if (!interleaved) return this.#log.read(offset, length);
    const stable = this.#dispatchedOffset - offset;
    const ahead = Math.min(length + storeDefaults.readAheadBytes, stable);
    if (ahead <= length) return this.#log.read(offset, length);
    const buf = await this.#log.read(offset, ahead);
    if (buf.length < length) return buf; // the run crossed into the next segment: the caller reads on
    this.#spans.unshift({ offset, buf });
    if (this.#spans.length > storeDefaults.readSpansKept) this.#spans.pop();
    return buf.subarray(0, length);
  }

  #toMessage(rec: DecodedRecord): StoredMessage {
    const properties = rec.properties;
    const originId = properties[systemProperty.originMessageId];
    const transactionId = properties[systemProperty.transactionId];
    if (originId !== undefined) delete properties[systemProperty.originMessageId];
    if (transactionId !== undefined) delete properties[systemProperty.transactionId];
    const message: StoredMessage = {
      messageId: originId ?? encodeMessageId(this.#o.brokerId, rec.physicalOffset),
      topic: rec.topic,
      body: rec.body,
      keys: rec.keys,
      properties,
      queueId: rec.queueId,
      queueOffset: rec.queueOffset,
      physicalOffset: rec.physicalOffset,
      bornTimestamp: rec.bornTimestamp,
      bornHost: rec.bornHost,
      storeTimestamp: rec.storeTimestamp,
      storeHost: rec.storeHost,
      deliveryAttempt: rec.reconsumeTimes + 1,
    };
    if (rec.tag !== undefined) message.tag = rec.tag;
    if (rec.messageGroup !== undefined) message.messageGroup = rec.messageGroup;
    if (rec.deliverAt !== 0) message.deliverAt = rec.deliverAt;
    if (transactionId !== undefined) message.transactionId = transactionId;
    return message;
  }

  /** Reads and verifies the record at a commit-log offset. */
  async getByOffset(physicalOffset: number): Promise<StoredMessage | undefined> {
    if (physicalOffset < this.#log.minOffset || physicalOffset >= this.#dispatchedOffset) return undefined;
    let buf = await this.#log.read(physicalOffset, 4096);
    if (buf.length < 4) return undefined;
    const size = buf.readUInt32LE(0);
    if (size > buf.length && size <= 16 * 1024 * 1024) buf = await this.#log.read(physicalOffset, size);
    const r = decodeRecord(buf, 0);
    if (!r.ok) {
      if (r.error.kind === 'end' && !isZeroSizedRecord(buf, 0)) return undefined;
      // An id is user input: one that points into the middle of a record finds bytes that do not
      // claim to be a record here, and is simply not found. Only a record that names this offset
      // as its own and fails verification is reported as damage.
      const claims = buf.length >= 36 && readU64(buf, 28) === physicalOffset;
      if (!claims && !isZeroSizedRecord(buf, 0)) return undefined;
      throw new SkyrocketError('STORE_CORRUPTED', `record at ${physicalOffset}: ${describeRecordError(r.error)}`);
    }
    if (r.record.physicalOffset !== physicalOffset) return undefined;
    return this.#toMessage(r.record);
  }

  /** Looks a message up by id: one positional read. */
  async getById(messageId: string): Promise<StoredMessage | undefined> {
    const { brokerId, physicalOffset } = decodeMessageId(messageId);
    if (brokerId !== this.#o.brokerId) return undefined;
    return this.getByOffset(physicalOffset);
  }

  /**
   * Records stored again under the id `messageId` (they carry it as `UNIQ_KEY`: a dead letter, a
   * committed transactional message), newest first, at most `max`. The record that the id itself
   * points at is not among them. Found through the key index, so one lookup and a read per hit.
   */
  async getByUniqueKey(messageId: string, max = 16): Promise<StoredMessage[]> {
    const offsets = this.#index.lookup(uniqueKeyIndexTopic, messageId, 0, Number.MAX_SAFE_INTEGER, max * 4);
    // A hash collision finds another record; `messageId` is its UNIQ_KEY only if it was stored again.
    return this.#readHits(offsets, max, (m, offset) => m.messageId === messageId && encodeMessageId(this.#o.brokerId, offset) !== messageId);
  }

  /**
   * Reads the records a key-index lookup found, keeping up to `max` that `accept` confirms (the
   * index stores hashes, so a hit may be another key's record).
   */
  async #readHits(offsets: readonly number[], max: number, accept: (m: StoredMessage, offset: number) => boolean): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for (const offset of offsets) {
      if (out.length >= max) break;
      let message: StoredMessage | undefined;
      try {
        message = await this.getByOffset(offset);
      } catch {
        continue; // a damaged record is never served; the index may outlive it
      }
      if (message !== undefined && accept(message, offset)) out.push(message);
    }
    return out;
  }

  /** Messages of `topic` carrying `key`, stored within [fromMs, toMs], newest first. */
  async queryByKey(
    topic: string,
    key: string,
    options: { fromMs?: number; toMs?: number; max?: number } = {},
  ): Promise<StoredMessage[]> {
    const fromMs = options.fromMs ?? 0;
    const toMs = options.toMs ?? Number.MAX_SAFE_INTEGER;
    const max = options.max ?? 64;
    const offsets = this.#index.lookup(topic, key, fromMs, toMs, max * 4);
    return this.#readHits(
      offsets,
      max,
      (m) => m.topic === topic && m.keys.includes(key) && m.storeTimestamp >= fromMs && m.storeTimestamp <= toMs,
    );
  }

  /** The queue's retained range: [minOffset, maxOffset). */
  queueRange(topic: string, queueId: number): { minOffset: number; maxOffset: number } {
    const queue = this.#queues.get(queueKey(topic, queueId));
    return { minOffset: queue?.minOffset ?? 0, maxOffset: queue?.maxOffset ?? 0 };
  }

  /** Every (topic, queueId) the store holds entries for. */
  queueIds(): Array<{ topic: string; queueId: number }> {
    return [...this.#queues.values()].map((q) => ({ topic: q.topic, queueId: q.queueId }));
  }

  /** Forgets a topic's consume queues. Its records stay in the log until retention drops them. */
  deleteTopic(topic: string): void {
    for (const [key, queue] of this.#queues) {
      if (queue.topic !== topic) continue;
      queue.destroy();
      this.#queues.delete(key);
    }
  }

  /** Syncs the log, the consume queues and the key index, then records how far they are durable. */
  async checkpoint(): Promise<void> {
    if (this.#checkpointing !== undefined) return this.#checkpointing;
    this.#checkpointing = (async () => {
      try {
        await this.#log.sync();
        const dispatched = Math.min(this.#dispatchedOffset, this.#log.flushedOffset);
        const fds: number[] = [];
        for (const queue of this.#queues.values()) fds.push(...queue.takeDirty());
        await Promise.all(fds.map((fd) => fdatasyncAsync(fd)));
        await this.#index.flushAsync();
        await writeCheckpointAsync(this.#dirs.root, {
          version: 1,
          dispatchedOffset: dispatched,
          flushedOffset: this.#log.flushedOffset,
          writtenAtMs: this.#o.now(),
        });
      } catch (error) {
        publish('checkpoint-failed', { message: (error as Error).message });
        throw error;
      } finally {
        this.#checkpointing = undefined;
      }
    })();
    return this.#checkpointing;
  }

  /** Deletes sealed segments older than the retention time, and what indexes only them. */
  async enforceRetention(nowMs: number = this.#o.now()): Promise<{ deletedSegments: number }> {
    let deletedSegments = 0;
    for (;;) {
      const oldest = this.#log.sealedSegments()[0];
      if (oldest === undefined || oldest.lastStoredAtMs >= nowMs - this.#o.retentionMs) break;
      await this.#log.deleteOldest();
      deletedSegments++;
    }
    if (deletedSegments > 0) {
      const minLog = this.#log.minOffset;
      for (const queue of this.#queues.values()) queue.dropBelow(minLog);
      this.#index.dropBelow(minLog);
    }
    return { deletedSegments };
  }

  /** Bytes and counts for metrics and the benchmark. */
  stats(): {
    minOffset: number;
    endOffset: number;
    flushedOffset: number;
    dispatchedOffset: number;
    queues: number;
    sealedSegments: number;
    indexMemoryBytes: number;
  } {
    return {
      minOffset: this.#log.minOffset,
      endOffset: this.#log.endOffset,
      flushedOffset: this.#log.flushedOffset,
      dispatchedOffset: this.#dispatchedOffset,
      queues: this.#queues.size,
      sealedSegments: this.#log.sealedSegments().length,
      indexMemoryBytes: this.#index.memoryBytes,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of [this.#checkpointTimer, this.#retentionTimer]) if (timer !== undefined) clearInterval(timer);
    if (this.#reputTimer !== undefined) clearTimeout(this.#reputTimer);
    await this.#checkpointing?.catch(() => undefined);
    await this.#log.close();
    if (this.#log.failure === undefined && !this.#stalled) await this.checkpoint().catch(() => undefined);
    for (const queue of this.#queues.values()) queue.close();
    this.#index.close();
  }
}
