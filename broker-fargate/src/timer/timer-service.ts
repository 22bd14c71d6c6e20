import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SkyrocketError } from '../../../core/errors.ts';
import { decodeMessageId, encodeMessageId } from '../../../core/message-id.ts';
import type { StoredMessage } from '../../../core/message.ts';
import { bucketMsForHorizon, timerIndexLimits, type ParkedTimer, type TimerIndex, type TimerLayout } from '../../../namesrv/timers.ts';
import type { AppendResult, MessageStore, RecordInput } from '../store/index.ts';
import {
  classify,
  deliveryRecord,
  markerRecord,
  scheduledView,
  timerOp,
  timerProperty,
  timerQueue,
  timerRecord,
  timerTopic,
  userProperties,
  type TimerMessage,
} from './timer-records.ts';
import { TimerHeap } from './timer-heap.ts';
import { encodeSnapshot, readSnapshot, writeSnapshot, type SnapshotEntry } from './timer-snapshot.ts';

/** Where the service's log lines go (the broker's pino logger). */
export interface TimerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Every limit and default of the timer service, in one place. */
export const timerDefaults = {
  horizonMs: 3_600_000,
  snapshotIntervalMs: 1_000,
  /** Timers delivered by one append (with their fired marker). */
  fireBatchMaxCount: 1024,
  /** Bytes of messages delivered by one append; far below a segment and a group commit. */
  fireBatchMaxBytes: 8 * 1024 * 1024,
  /** Records of the timer log read at once. */
  scanBatchMaxCount: 1024,
  parkBatchMaxCount: 512,
  parkBatchMaxBytes: 8 * 1024 * 1024,
  /** After a failed delivery or park, wait this long, doubling up to the max. */
  retryDelayMs: 250,
  retryDelayMaxMs: 10_000,
  /** A cancel waits this long for the park of its timer to finish. */
  cancelWaitMs: 5_000,
} as const;

export interface TimerServiceOptions {
  store: MessageStore;
  /** Holds the snapshot: `<dataDir>/snapshot`. */
  dataDir: string;
  brokerGroup: string;
  /**
   * Timers due within this (plus two index buckets) stay in the broker's wheel; later ones are
   * parked in the timer index. Brokers and the delay sweep must use the same horizon.
   * @default 1 h
   */
  horizonMs?: number;
  /** The DynamoDB timer index. @default none: every timer stays in the wheel */
  index?: TimerIndex | undefined;
  /** Whether a topic still exists; a timer of a deleted topic is dropped. @default every topic exists */
  topicExists?: (topic: string) => Promise<boolean>;
  /** Called after timers were delivered into these topics (to wake long polls). */
  onDelivered?: (topics: readonly string[]) => void;
  log?: TimerLogger;
  /** Where the service's metrics go. @default none */
  registry?: Registry;
  /** @default Date.now */
  now?: () => number;
  /** @default 1000 */
  snapshotIntervalMs?: number;
}

/** A timer handed to `move` by the delay sweep. */
export type MovedTimer = Omit<ParkedTimer, 'body' | 'bodyRef' | 'bodyBytes' | 'brokerGroup'> & { body: Uint8Array };

export type MoveStatus = 'ACCEPTED' | 'DUPLICATE' | 'CANCELLED';

const silent: TimerLogger = { info() {}, warn() {}, error() {} };

/**
 * The broker's persistent timing wheel for delayed messages.
 *
 * Timers are records of the internal topic `%TIMER%` in the commit log (`timer-records.ts` draws
 * them); the wheel in memory is a heap of (deliverAt, record offset) for the timers due within the
 * horizon. When a timer is due, the service reads its record and appends the message to its topic
 * together with a fired marker, in one batch: either both are stored or neither, so a crash never
 * delivers a timer twice or loses it. After a restart it loads its snapshot (how far it had read
 * the timer log, and the wheel at that point) and replays the timer log from there: timer records
 * add to the wheel, markers take out of it.
 *
 * Timers due beyond the horizon are stored in queue 1 and parked in the DynamoDB timer index by a
 * second reader; the delay sweep moves them back (`move`) when they come within the horizon.
 * Every way into the wheel is idempotent by message id: a timer whose id the key index already
 * knows (moved in before, cancelled, or delivered) is not taken again.
 */
export class TimerService {
  readonly #store: MessageStore;
  readonly #dir: string;
  readonly #brokerGroup: string;
  readonly #horizonMs: number;
  readonly #index: TimerIndex | undefined;
  readonly #topicExists: (topic: string) => Promise<boolean>;
  readonly #onDelivered: (topics: readonly string[]) => void;
  readonly #log: TimerLogger;
  readonly #now: () => number;
  readonly #snapshotIntervalMs: number;

  /** Pending timers: record offset -> deliverAt. */
  readonly #pending = new Map<number, number>();
  /** Moved timers' ids, both ways. */
  readonly #idOf = new Map<number, string>();
  readonly #offsetOf = new Map<string, number>();
  readonly #heap = new TimerHeap();
  /** Taken out of the wheel, but their fired or cancel marker is not durable yet. */
  readonly #inFlight = new Map<number, number>();
  /** Far timers cancelled before they were parked. */
  readonly #cancelledUnparked = new Set<string>();
  /** Queue offsets (of the far queue) in the park batch running now. */
  #parkingNow = new Set<number>();

  #nearOffset = 0;
  #farOffset = 0;
  /** Far records below this were read before the last restart: check their ids before parking. */
  #farReplayEnd = 0;
  #layout: TimerLayout | undefined;
  #bucketMs: number;

  #lock: Promise<void> = Promise.resolve();
  #fireTimer: NodeJS.Timeout | undefined;
  #armedAt: number | undefined;
  #firing: Promise<void> | undefined;
  #fireRetryAt = 0;
  #fireFailures = 0;
  #scanning: Promise<void> | undefined;
  #scanAgain = false;
  #parking: Promise<void> | undefined;
  #parkAgain = false;
  #parkBatch: Promise<unknown> = Promise.resolve();
  #snapshotTimer: NodeJS.Timeout | undefined;
  #snapshotting: Promise<void> | undefined;
  #lastSnapshotAt = 0;
  #lastSnapshotMs = 0;
  #dirty = false;
  /** False until the replay is done: nothing fires while markers may still take timers out. */
  #ready = false;
  #stopped = false;
  readonly #stop = new AbortController();
  #metrics: TimerMetrics | undefined;

  private constructor(o: TimerServiceOptions) {
    this.#store = o.store;
    this.#dir = o.dataDir;
    this.#brokerGroup = o.brokerGroup;
    this.#horizonMs = o.horizonMs ?? timerDefaults.horizonMs;
    this.#index = o.index;
    this.#topicExists = o.topicExists ?? (async () => true);
    this.#onDelivered = o.onDelivered ?? (() => undefined);
    this.#log = o.log ?? silent;
    this.#now = o.now ?? Date.now;
    this.#snapshotIntervalMs = o.snapshotIntervalMs ?? timerDefaults.snapshotIntervalMs;
    this.#bucketMs = bucketMsForHorizon(this.#horizonMs);
    if (o.registry !== undefined) this.#metrics = new TimerMetrics(o.registry, this);
  }

  /** Loads the snapshot, replays the timer log written since, and starts firing and parking. */
  static async start(options: TimerServiceOptions): Promise<TimerService> {
    const service = new TimerService(options);
    await service.#open();
    return service;
  }

  async #open(): Promise<void> {
    fs.mkdirSync(this.#dir, { recursive: true });
    let snapshot;
    try {
      snapshot = readSnapshot(this.#dir);
    } catch (error) {
      // The timer log is the truth: without a snapshot, the whole retained log is replayed.
      this.#log.warn({ err: error }, 'timer snapshot unreadable; replaying the whole timer log');
    }
    const near = this.#store.queueRange(timerTopic, timerQueue.near);
    const far = this.#store.queueRange(timerTopic, timerQueue.far);
    this.#nearOffset = clamp(snapshot?.nearOffset ?? near.minOffset, near.minOffset, near.maxOffset);
    this.#farOffset = clamp(snapshot?.farOffset ?? far.minOffset, far.minOffset, far.maxOffset);
    this.#farReplayEnd = far.maxOffset;
    for (const e of snapshot?.entries ?? []) {
      const id = e.movedId === undefined ? undefined : encodeMessageId(e.movedId.brokerId, e.movedId.physicalOffset);
      this.#add(e.timerOffset, e.deliverAt, id);
    }
    const loaded = this.#pending.size;
    await this.#scanNear();
    if (this.#index !== undefined) await this.#ensureLayout().catch((error: unknown) => this.#log.warn({ err: error }, 'timer index unavailable; parking later'));
    this.#log.info(
      { pending: this.#pending.size, fromSnapshot: loaded, nearOffset: this.#nearOffset, farOffset: this.#farOffset, unparked: far.maxOffset - this.#farOffset },
      'timer wheel loaded',
    );
    this.#snapshotTimer = setInterval(() => void this.#snapshot(), this.#snapshotIntervalMs);
    this.#snapshotTimer.unref();
    this.#ready = true;
    this.#arm();
    this.#parkLoop();
  }

  // ---------------------------------------------------------------------------------------------
  // Taking timers in

  /** The record that stores a timer sent now: in the near queue, or in the far queue to park. */
  recordFor(m: TimerMessage, nowMs: number): RecordInput {
    const far = this.#index !== undefined && m.deliverAt > nowMs + this.#parkAfterMs() && this.#index.canPark(m.body.byteLength);
    return timerRecord(m, far ? timerQueue.far : timerQueue.near);
  }

  /**
   * Tells the service that records were appended (a send): the reader of the near queue takes
   * near timers into the wheel, the parker takes far ones. Only that reader adds timer records
   * to the wheel, in log order, so a timer is always in the wheel before its fired or cancel
   * marker can exist, and a fired timer is never read again.
   */
  appended(records: readonly RecordInput[]): void {
    let near = false;
    let far = false;
    for (const r of records) {
      if (r.topic !== timerTopic) continue;
      if (r.queueId === timerQueue.near) near = true;
      else far = true;
    }
    if (near) this.#scanNear().catch(() => undefined);
    if (far) this.#parkLoop();
  }

  /** How far ahead a timer must be due to be parked rather than kept in the wheel. */
  #parkAfterMs(): number {
    // Two buckets beyond the horizon: a parked timer always lands in a bucket the sweep has not
    // passed yet, even if its write takes up to one bucket to land (see namesrv/timers.ts).
    return this.#horizonMs + 2 * this.#bucketMs;
  }

  #add(offset: number, deliverAt: number, id: string | undefined): void {
    if (this.#pending.has(offset) || this.#inFlight.has(offset)) return;
    this.#pending.set(offset, deliverAt);
    if (id !== undefined) {
      this.#idOf.set(offset, id);
      this.#offsetOf.set(id, offset);
    }
    this.#heap.push(deliverAt, offset);
    this.#dirty = true;
    if (this.#heap.size > 2 * this.#pending.size + 4096) this.#compactHeap();
    this.#arm();
  }

  #forget(offset: number): void {
    const id = this.#idOf.get(offset);
    if (id !== undefined) {
      this.#idOf.delete(offset);
      this.#offsetOf.delete(id);
    }
  }

  /** Takes a timer out of the wheel (a replayed marker). */
  #remove(offset: number): void {
    if (!this.#pending.delete(offset)) return;
    this.#forget(offset);
    this.#dirty = true;
  }

  /** Drops heap entries whose timer is gone (cancelled), which the heap only skips lazily. */
  #compactHeap(): void {
    this.#heap.clear();
    for (const [offset, deliverAt] of this.#pending) this.#heap.push(deliverAt, offset);
  }

  /** Reads the near queue of the timer log up to its end, applying timers and markers. */
  #scanNear(): Promise<void> {
    if (this.#scanning !== undefined) {
      this.#scanAgain = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      do {
        this.#scanAgain = false;
        for (;;) {
          const { minOffset, maxOffset } = this.#store.queueRange(timerTopic, timerQueue.near);
          if (this.#nearOffset < minOffset) this.#nearOffset = minOffset;
          if (this.#nearOffset >= maxOffset) break;
          const read = await this.#store.read(timerTopic, timerQueue.near, this.#nearOffset, { maxMessages: timerDefaults.scanBatchMaxCount });
          for (const m of read.messages) this.#applyNear(m);
          for (const c of read.corrupted) this.#log.error({ topic: timerTopic, queue: timerQueue.near, ...c }, 'timer record damaged; its timer is lost');
          if (read.nextOffset <= this.#nearOffset) break;
          this.#nearOffset = read.nextOffset;
          this.#dirty = true;
        }
      } while (this.#scanAgain && !this.#stopped);
    })().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  #applyNear(m: StoredMessage): void {
    const entry = classify(m, this.#store.brokerId);
    if (entry.kind === 'timer') {
      this.#add(m.physicalOffset, entry.deliverAt, entry.moved ? entry.messageId : undefined);
    } else if (entry.kind === 'marker') {
      for (const offset of entry.offsets) this.#remove(offset);
    } else {
      this.#log.error({ topic: timerTopic, queueOffset: m.queueOffset, offset: m.physicalOffset, reason: entry.reason }, 'malformed timer record skipped');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Firing

  #arm(): void {
    if (!this.#ready || this.#stopped || this.#firing !== undefined) return;
    const next = this.#peekLive();
    if (next === undefined) return;
    const at = Math.max(next, this.#fireRetryAt);
    if (this.#armedAt !== undefined && this.#armedAt <= at) return;
    if (this.#fireTimer !== undefined) clearTimeout(this.#fireTimer);
    this.#armedAt = at;
    const delay = Math.min(Math.max(0, at - this.#now()), 0x7fffffff);
    this.#fireTimer = setTimeout(() => {
      this.#fireTimer = undefined;
      this.#armedAt = undefined;
      void this.#fire();
    }, delay);
  }

  /** The earliest deliverAt of a pending timer, dropping stale heap entries on the way. */
  #peekLive(): number | undefined {
    for (;;) {
      const at = this.#heap.peekTime();
      if (at === undefined) return undefined;
      if (this.#pending.get(this.#heap.peekOffset() as number) === at) return at;
      this.#heap.pop();
    }
  }

  #fire(): Promise<void> {
    if (this.#firing !== undefined || this.#stopped) return this.#firing ?? Promise.resolve();
    this.#firing = (async () => {
      while (!this.#stopped) {
        const now = this.#now();
        if (now < this.#fireRetryAt) break;
        const due = this.#takeDue(now);
        if (due.length === 0) break;
        await this.#deliver(due);
      }
    })()
      .catch((error: unknown) => this.#log.error({ err: error }, 'timer firing failed'))
      .finally(() => {
        this.#firing = undefined;
        this.#arm();
      });
    return this.#firing;
  }

  /** Takes due timers out of the wheel, earliest first, into `#inFlight`. */
  #takeDue(now: number): Array<{ offset: number; deliverAt: number }> {
    const out: Array<{ offset: number; deliverAt: number }> = [];
    while (out.length < timerDefaults.fireBatchMaxCount) {
      const at = this.#heap.peekTime();
      if (at === undefined || at > now) break;
      const offset = this.#heap.pop() as number;
      if (this.#pending.get(offset) !== at) continue;
      this.#pending.delete(offset);
      this.#inFlight.set(offset, at);
      out.push({ offset, deliverAt: at });
    }
    return out;
  }

  /** Delivers due timers: their messages and one fired marker per append. */
  async #deliver(due: ReadonlyArray<{ offset: number; deliverAt: number }>): Promise<void> {
    const timers = await Promise.all(due.map((d) => this.#store.getByOffset(d.offset).catch(() => undefined)));
    const chunks: Array<{ records: RecordInput[]; offsets: number[]; bytes: number }> = [{ records: [], offsets: [], bytes: 0 }];
    const topics = new Map<string, boolean>();
    let dropped = 0;
    for (let i = 0; i < due.length; i++) {
      const d = due[i] as { offset: number; deliverAt: number };
      const timer = timers[i];
      let chunk = chunks[chunks.length - 1] as (typeof chunks)[number];
      const record = timer !== undefined && timer.topic === timerTopic && timer.deliverAt === d.deliverAt ? deliveryRecord(timer) : undefined;
      if (record === undefined) {
        // Retention dropped the record, or it is damaged, or a torn tail took it: nothing to send.
        this.#log.error({ topic: timerTopic, offset: d.offset, deliverAt: d.deliverAt }, 'timer record missing; the timer is lost');
        chunk.offsets.push(d.offset);
        dropped++;
        continue;
      }
      let exists = topics.get(record.topic);
      if (exists === undefined) {
        exists = await this.#topicExists(record.topic).catch(() => true);
        topics.set(record.topic, exists);
      }
      if (!exists) {
        this.#log.warn({ topic: record.topic, messageId: timer?.messageId }, 'timer of a deleted topic dropped');
        chunk.offsets.push(d.offset);
        dropped++;
        continue;
      }
      const bytes = record.body.byteLength + 1024;
      if (chunk.records.length > 0 && chunk.bytes + bytes > timerDefaults.fireBatchMaxBytes) {
        chunk = { records: [], offsets: [], bytes: 0 };
        chunks.push(chunk);
      }
      chunk.records.push(record);
      chunk.offsets.push(d.offset);
      chunk.bytes += bytes;
    }
    const delivered = new Set<string>();
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c] as (typeof chunks)[number];
      if (chunk.offsets.length === 0) continue;
      let results: AppendResult[];
      try {
        results = await this.#store.append([...chunk.records, markerRecord(timerOp.fired, chunk.offsets, this.#now())]);
      } catch (error) {
        // Nothing of this chunk (nor of the ones after it) was stored: back into the wheel.
        for (const later of chunks.slice(c)) for (const offset of later.offsets) this.#putBack(offset);
        this.#fireFailures++;
        this.#fireRetryAt = this.#now() + Math.min(timerDefaults.retryDelayMaxMs, timerDefaults.retryDelayMs * 2 ** Math.min(this.#fireFailures, 10));
        this.#log.error({ err: error, timers: due.length }, 'could not deliver due timers; retrying');
        return;
      }
      this.#fireFailures = 0;
      this.#fireRetryAt = 0;
      for (let i = 0; i < chunk.records.length; i++) {
        const record = chunk.records[i] as RecordInput;
        delivered.add(record.topic);
        this.#metrics?.lateness.observe(Math.max(0, ((results[i] as AppendResult).storeTimestamp - (record.deliverAt ?? 0)) / 1000));
      }
      for (const offset of chunk.offsets) {
        this.#inFlight.delete(offset);
        this.#forget(offset);
      }
      this.#metrics?.delivered.inc(chunk.records.length);
      this.#dirty = true;
    }
    if (dropped > 0) this.#metrics?.dropped.inc(dropped);
    if (delivered.size > 0) this.#onDelivered([...delivered]);
  }

  #putBack(offset: number): void {
    const deliverAt = this.#inFlight.get(offset);
    if (deliverAt === undefined) return;
    this.#inFlight.delete(offset);
    this.#pending.set(offset, deliverAt);
    this.#heap.push(deliverAt, offset);
  }

  // ---------------------------------------------------------------------------------------------
  // Parking far timers

  async #ensureLayout(): Promise<TimerLayout> {
    if (this.#layout !== undefined) return this.#layout;
    const index = this.#index;
    if (index === undefined) throw new Error('invariant: parking needs a timer index');
    const layout = await index.ensureLayout({ bucketMs: this.#bucketMs, shards: timerIndexLimits.shardsDefault });
    this.#layout = { bucketMs: layout.bucketMs, shards: layout.shards };
    this.#bucketMs = layout.bucketMs;
    return this.#layout;
  }

  /** Reads the far queue and parks its timers, one batch at a time, until it is drained. */
  #parkLoop(): void {
    if (this.#parking !== undefined) {
      this.#parkAgain = true;
      return;
    }
    this.#parking = (async () => {
      let failures = 0;
      do {
        this.#parkAgain = false;
        while (!this.#stopped) {
          const { minOffset, maxOffset } = this.#store.queueRange(timerTopic, timerQueue.far);
          if (this.#farOffset < minOffset) this.#farOffset = minOffset;
          if (this.#farOffset >= maxOffset) break;
          const read = await this.#store.read(timerTopic, timerQueue.far, this.#farOffset, {
            maxMessages: timerDefaults.parkBatchMaxCount,
            maxBytes: timerDefaults.parkBatchMaxBytes,
          });
          for (const c of read.corrupted) this.#log.error({ topic: timerTopic, queue: timerQueue.far, ...c }, 'timer record damaged; its timer is lost');
          this.#parkingNow = new Set(read.messages.map((m) => m.queueOffset));
          const batch = this.#parkBatchOf(read.messages);
          this.#parkBatch = batch;
          let ok: boolean;
          try {
            ok = await batch;
          } finally {
            this.#parkingNow = new Set();
          }
          if (!ok) {
            failures++;
            await sleep(Math.min(timerDefaults.retryDelayMaxMs, timerDefaults.retryDelayMs * 2 ** Math.min(failures, 10)), this.#stop.signal);
            continue;
          }
          failures = 0;
          if (read.nextOffset <= this.#farOffset) break;
          this.#farOffset = read.nextOffset;
          this.#dirty = true;
        }
      } while (this.#parkAgain && !this.#stopped);
    })()
      .catch((error: unknown) => {
        if (!this.#stopped) this.#log.error({ err: error }, 'timer parking stopped');
      })
      .finally(() => {
        this.#parking = undefined;
      });
  }

  /**
   * Parks one batch of far timers; those that came within reach meanwhile (a slow or failing
   * index) go into the wheel instead. Whether the batch is done.
   */
  async #parkBatchOf(messages: readonly StoredMessage[]): Promise<boolean> {
    const index = this.#index;
    const candidates: Array<{ m: StoredMessage; messageId: string; deliverAt: number; topic: string; queueId: number }> = [];
    for (const m of messages) {
      const entry = classify(m, this.#store.brokerId);
      if (entry.kind !== 'timer') {
        this.#log.error({ topic: timerTopic, queue: timerQueue.far, offset: m.physicalOffset }, 'malformed far timer record skipped');
        continue;
      }
      if (this.#cancelledUnparked.has(entry.messageId)) continue;
      // Read before the last restart: it may have been parked, moved back, cancelled, delivered.
      if (m.queueOffset < this.#farReplayEnd && (await this.#knownStatus(entry.messageId)) !== undefined) continue;
      candidates.push({ m, messageId: entry.messageId, deliverAt: entry.deliverAt, topic: entry.topic, queueId: entry.queueId });
    }
    let layout: TimerLayout | undefined;
    if (index !== undefined) {
      try {
        layout = await this.#ensureLayout();
      } catch (error) {
        this.#log.warn({ err: error }, 'timer index unavailable; parking later');
      }
    }
    // Decide near or far only now, just before the write, so the write lands within one bucket.
    const farAfter = this.#now() + this.#parkAfterMs();
    const toPark: ParkedTimer[] = [];
    let waiting = false;
    for (const c of candidates) {
      if (index === undefined || !index.canPark(c.m.body.byteLength) || c.deliverAt <= farAfter) {
        // Due soon (parking was slow), or it cannot be parked at all: it waits in the wheel.
        if ((await this.#knownStatus(c.messageId)) === undefined) this.#add(c.m.physicalOffset, c.deliverAt, undefined);
        continue;
      }
      if (layout === undefined) {
        waiting = true; // the index is unreachable: try again later
        continue;
      }
      toPark.push({
        messageId: c.messageId,
        deliverAt: c.deliverAt,
        brokerGroup: this.#brokerGroup,
        topic: c.topic,
        queueId: c.queueId,
        bornAt: c.m.bornTimestamp,
        bornHost: c.m.bornHost,
        tag: c.m.tag,
        keys: c.m.keys,
        properties: userProperties(c.m.properties),
        messageGroup: c.m.messageGroup,
        body: c.m.body,
        bodyBytes: c.m.body.byteLength,
      });
    }
    if (waiting) return false;
    if (toPark.length === 0 || index === undefined || layout === undefined) return true;
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(layout.bucketMs), this.#stop.signal]);
      // Each of the park's concurrent DynamoDB and S3 calls listens on it while it runs.
      setMaxListeners(4 * timerIndexLimits.concurrencyMax, signal);
      await index.park(toPark, layout, signal);
    } catch (error) {
      if (!this.#stopped) this.#log.warn({ err: error, timers: toPark.length }, 'could not park far timers; retrying');
      return false;
    }
    for (const c of candidates) this.#cancelledUnparked.delete(c.messageId);
    this.#metrics?.parked.inc(toPark.length);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Moves, cancels and lookups by id

  /** Runs `fn` alone among moves and cancels, so that an id is checked and written at once. */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * What this broker knows of a timer id: undefined when nothing (it may be taken in); CANCELLED
   * when a cancel marker names it; DUPLICATE when it is in the wheel, was moved in, or delivered.
   */
  async #knownStatus(messageId: string): Promise<Exclude<MoveStatus, 'ACCEPTED'> | undefined> {
    if (this.#offsetOf.has(messageId)) return 'DUPLICATE';
    const { brokerId, physicalOffset } = decodeMessageId(messageId);
    if (brokerId === this.#store.brokerId && (this.#pending.has(physicalOffset) || this.#inFlight.has(physicalOffset))) return 'DUPLICATE';
    if (this.#cancelledUnparked.has(messageId)) return 'CANCELLED';
    const again = await this.#store.getByUniqueKey(messageId);
    if (again.some((m) => m.topic === timerTopic && m.properties[timerProperty.op] === timerOp.cancelled)) return 'CANCELLED';
    return again.length > 0 ? 'DUPLICATE' : undefined;
  }

  /**
   * Takes timers moved back from the timer index into the wheel. A timer whose id is known is not
   * taken again; each result says which happened. Resolves once the accepted ones are durable.
   */
  async move(timers: readonly MovedTimer[]): Promise<Array<{ messageId: string; status: MoveStatus }>> {
    return this.#exclusive(async () => {
      const results: Array<{ messageId: string; status: MoveStatus }> = [];
      const accepted: Array<{ record: RecordInput; messageId: string }> = [];
      const seen = new Set<string>();
      for (const t of timers) {
        const known = seen.has(t.messageId) ? 'DUPLICATE' : await this.#knownStatus(t.messageId);
        seen.add(t.messageId);
        if (known !== undefined) {
          results.push({ messageId: t.messageId, status: known });
          continue;
        }
        const record = timerRecord(
          {
            topic: t.topic,
            queueId: t.queueId,
            deliverAt: t.deliverAt,
            body: t.body,
            tag: t.tag,
            keys: t.keys,
            properties: t.properties,
            messageGroup: t.messageGroup,
            bornTimestamp: t.bornAt,
            bornHost: t.bornHost,
            messageId: t.messageId,
          },
          timerQueue.near,
        );
        accepted.push({ record, messageId: t.messageId });
        results.push({ messageId: t.messageId, status: 'ACCEPTED' });
      }
      let at = 0;
      while (at < accepted.length) {
        let bytes = 0;
        let end = at;
        while (end < accepted.length && (end === at || bytes + (accepted[end] as (typeof accepted)[number]).record.body.byteLength + 1024 <= timerDefaults.fireBatchMaxBytes)) {
          bytes += (accepted[end] as (typeof accepted)[number]).record.body.byteLength + 1024;
          end++;
        }
        await this.#store.append(accepted.slice(at, end).map((a) => a.record));
        at = end;
      }
      this.#metrics?.moved.inc(accepted.length);
      await this.#scanNear(); // the moved timers are in the wheel when the sweep hears back
      return results;
    });
  }

  /**
   * Cancels a scheduled message: takes it out of the wheel, or out of the timer index, or stops
   * it from being parked. Resolves once the cancel is durable.
   * @returns false when there is no such scheduled message here (unknown, already delivered, or
   *   already cancelled).
   */
  async cancel(messageId: string): Promise<boolean> {
    const { brokerId, physicalOffset } = decodeMessageId(messageId);
    return this.#exclusive(async () => {
      await this.#scanNear(); // a timer sent a moment ago is in the wheel
      for (let attempt = 0; attempt < 2; attempt++) {
        // 1. In the wheel.
        const offset = this.#offsetOf.get(messageId) ?? (brokerId === this.#store.brokerId ? physicalOffset : undefined);
        if (offset !== undefined && this.#pending.has(offset)) {
          const deliverAt = this.#pending.get(offset) as number;
          this.#pending.delete(offset);
          this.#inFlight.set(offset, deliverAt);
          try {
            await this.#store.append([markerRecord(timerOp.cancelled, [offset], this.#now(), messageId)]);
          } catch (error) {
            this.#putBack(offset);
            throw error;
          }
          this.#inFlight.delete(offset);
          this.#forget(offset);
          this.#dirty = true;
          this.#metrics?.cancelled.inc();
          return true;
        }
        if (offset !== undefined && this.#inFlight.has(offset)) return false; // being delivered now
        // 2. Moved in before, cancelled before, or delivered.
        if ((await this.#store.getByUniqueKey(messageId)).length > 0) return false;
        if (this.#cancelledUnparked.has(messageId)) return false;
        if (brokerId !== this.#store.brokerId) return false;
        // 3. A far timer of this broker not parked yet.
        const own = await this.#store.getByOffset(physicalOffset).catch(() => undefined);
        const isFar = own !== undefined && own.topic === timerTopic && own.queueId === timerQueue.far && own.messageId === messageId;
        if (isFar && own.queueOffset >= this.#farOffset) {
          if (this.#parkingNow.has(own.queueOffset)) {
            await Promise.race([this.#parkBatch, sleep(timerDefaults.cancelWaitMs)]);
            if (this.#parkingNow.has(own.queueOffset)) {
              throw new SkyrocketError('SERVICE_UNAVAILABLE', 'the scheduled message is being parked; retry the cancel');
            }
            continue; // parked or taken into the wheel meanwhile: look again
          }
          this.#cancelledUnparked.add(messageId);
          await this.#store.append([markerRecord(timerOp.cancelled, [], this.#now(), messageId)]);
          this.#metrics?.cancelled.inc();
          return true;
        }
        if (own !== undefined && own.topic === timerTopic && !isFar) return false; // a near timer no longer pending: fired
        // 4. Parked in the timer index. The marker first: a move of this id racing the delete
        //    finds it and is refused.
        const index = this.#index;
        if (index === undefined || (await index.get(messageId)) === undefined) return false;
        await this.#store.append([markerRecord(timerOp.cancelled, [], this.#now(), messageId)]);
        const parked = await index.cancel(messageId);
        if (parked) this.#metrics?.cancelled.inc();
        return parked;
      }
      return false;
    });
  }

  /**
   * A message by id as far as timers are concerned: the delivered message when it was delivered,
   * the scheduled message (its topic, `queueOffset` -1, `deliverAt`) while it waits, undefined
   * when it was cancelled or is unknown here. Ordinary messages are the caller's business.
   */
  async lookup(messageId: string): Promise<StoredMessage | undefined> {
    const again = await this.#store.getByUniqueKey(messageId);
    if (again.some((m) => m.topic === timerTopic && m.properties[timerProperty.op] === timerOp.cancelled)) return undefined;
    const delivered = again.find((m) => m.topic !== timerTopic && !m.topic.startsWith('%')) ?? again.find((m) => m.topic !== timerTopic);
    if (delivered !== undefined) return delivered;
    const moved = again.find((m) => m.topic === timerTopic);
    if (moved !== undefined) return scheduledView(moved);
    const { brokerId } = decodeMessageId(messageId);
    const own = brokerId === this.#store.brokerId ? await this.#store.getById(messageId).catch(() => undefined) : undefined;
    if (own !== undefined && own.topic === timerTopic && classify(own, this.#store.brokerId).kind === 'timer') {
      if (this.#cancelledUnparked.has(messageId)) return undefined;
      return scheduledView(own);
    }
    const parked = await this.#index?.get(messageId);
    if (parked === undefined || parked.body === undefined) return undefined;
    return {
      messageId,
      topic: parked.topic,
      body: parked.body,
      keys: parked.keys ?? [],
      properties: parked.properties ?? {},
      queueId: parked.queueId,
      queueOffset: -1,
      physicalOffset: -1,
      bornTimestamp: parked.bornAt,
      bornHost: parked.bornHost,
      storeTimestamp: parked.bornAt,
      storeHost: '',
      deliveryAttempt: 1,
      deliverAt: parked.deliverAt,
      ...(parked.tag === undefined ? {} : { tag: parked.tag }),
      ...(parked.messageGroup === undefined ? {} : { messageGroup: parked.messageGroup }),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshot, stats, stop

  /**
   * Writes the snapshot if anything changed. A snapshot costs time in proportion to the timers in
   * the wheel, so with many of them it is written less often: at most 5% of the time goes to it.
   * A longer gap only means a longer replay after a crash.
   */
  async #snapshot(force = false): Promise<void> {
    if (!this.#dirty || this.#snapshotting !== undefined) return;
    const started = Date.now();
    if (!force && started - this.#lastSnapshotAt < 20 * this.#lastSnapshotMs) return;
    this.#dirty = false;
    // One instant's state; timers whose delivery or cancel is not durable yet count as pending.
    const pending = this.#pending;
    const inFlight = this.#inFlight;
    const idOf = this.#idOf;
    const encoded = encodeSnapshot({
      nearOffset: this.#nearOffset,
      farOffset: this.#farOffset,
      count: pending.size + inFlight.size,
      entries: (function* (): Generator<SnapshotEntry> {
        for (const map of [pending, inFlight]) {
          for (const [offset, deliverAt] of map) {
            const id = idOf.get(offset);
            yield { timerOffset: offset, deliverAt, movedId: id === undefined ? undefined : decodeMessageId(id) };
          }
        }
      })(),
    });
    this.#snapshotting = (async () => {
      try {
        // The snapshot may name only what is durable in the log (the async flush mode lags).
        const stats = this.#store.stats();
        if (stats.flushedOffset < stats.endOffset) await this.#store.checkpoint();
        await writeSnapshot(this.#dir, encoded);
        this.#lastSnapshotAt = Date.now();
        this.#lastSnapshotMs = this.#lastSnapshotAt - started;
      } catch (error) {
        this.#dirty = true;
        this.#log.warn({ err: error }, 'could not write the timer snapshot');
      }
    })().finally(() => {
      this.#snapshotting = undefined;
    });
    return this.#snapshotting;
  }

  stats(): { pending: number; inFlight: number; unparked: number; nearOffset: number; farOffset: number } {
    const far = this.#store.queueRange(timerTopic, timerQueue.far);
    return {
      pending: this.#pending.size,
      inFlight: this.#inFlight.size,
      unparked: Math.max(0, far.maxOffset - this.#farOffset),
      nearOffset: this.#nearOffset,
      farOffset: this.#farOffset,
    };
  }

  /** Stops firing and parking, waits for what runs, and writes a last snapshot. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    if (this.#fireTimer !== undefined) clearTimeout(this.#fireTimer);
    if (this.#snapshotTimer !== undefined) clearInterval(this.#snapshotTimer);
    await Promise.allSettled([this.#firing, this.#scanning, this.#parking, this.#lock, this.#snapshotting]);
    this.#dirty = true;
    await this.#snapshot(true);
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });
}

/** The service's Prometheus metrics. */
class TimerMetrics {
  readonly delivered: Counter;
  readonly parked: Counter;
  readonly moved: Counter;
  readonly cancelled: Counter;
  readonly dropped: Counter;
  readonly lateness: Histogram;

  constructor(registry: Registry, service: TimerService) {
    const registers = [registry];
    this.delivered = new Counter({ name: 'skyrocket_timers_delivered_total', help: 'Delayed messages delivered.', registers });
    this.parked = new Counter({ name: 'skyrocket_timers_parked_total', help: 'Far timers parked in the timer index.', registers });
    this.moved = new Counter({ name: 'skyrocket_timers_moved_total', help: 'Timers moved back from the timer index.', registers });
    this.cancelled = new Counter({ name: 'skyrocket_timers_cancelled_total', help: 'Scheduled messages cancelled.', registers });
    this.dropped = new Counter({ name: 'skyrocket_timers_dropped_total', help: 'Timers dropped: record lost, or topic deleted.', registers });
    this.lateness = new Histogram({
      name: 'skyrocket_timer_lateness_seconds',
      help: 'From a timer being due to its message being stored.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30],
      registers,
    });
    new Gauge({
      name: 'skyrocket_timers_pending',
      help: 'Timers in the wheel (in memory).',
      registers,
      collect() {
        this.set(service.stats().pending);
      },
    });
    new Gauge({
      name: 'skyrocket_timers_unparked',
      help: 'Far timers stored but not parked yet.',
      registers,
      collect() {
        this.set(service.stats().unparked);
      },
    });
  }
}
