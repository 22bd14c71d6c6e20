import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SkyrocketError } from '../../../core/errors.ts';
import type { StoredMessage } from '../../../core/message.ts';
import type { MessageStore, RecordInput } from '../store/index.ts';
import { recordFlags, systemProperty } from '../store/record.ts';
import { CheckQueue, type CheckRequest } from './check-queue.ts';
import { decodeTransactionId, encodeTransactionId, type TransactionIdParts } from './transaction-id.ts';

/**
 * Transactional messages on one broker group, as RocketMQ stores them:
 *
 * - prepare: the message is stored as a half message in the internal topic `half` (queue 0),
 *   flagged PREPARED, with its real topic and queue in properties. No consumer reads that topic.
 * - commit: one append of two records, stored together or not at all (a store batch): the real
 *   message in its topic and queue, carrying the half message's id as `UNIQ_KEY` (so consumers
 *   see that id), and an op record in the internal topic `op` that names the half message.
 * - rollback: one append of the op record alone.
 *
 * The op record is the durable resolution: its key is the half message's id, so the key index
 * finds it in one lookup, and because the real message and its op record share one atomic
 * append, a transaction that has an op record has its real message, and one that has none has
 * none. A commit never runs twice for one half message: resolutions of one transaction are
 * serialized in memory, and each first looks for an op record. After a crash the unresolved half
 * messages are found again by scanning the half topic from the progress snapshot (the lowest
 * queue offset that may still be unresolved) and looking each one's op record up.
 *
 *   half record:  topic %SYS%.TXN_HALF, queue 0, flags PREPARED, body/tag/keys/messageGroup of the
 *                 message, properties = user properties + REAL_TOPIC, REAL_QID, PGROUP, TRAN_MSG
 *   op record:    topic %SYS%.TXN_OP, queue 0, flags COMMIT or ROLLBACK, body "COMMIT"|"ROLLBACK",
 *                 keys [half id], preparedTxOffset = half offset, properties __SR_RESOLVED_BY and,
 *                 when a check made it, __SR_CHECKS
 *   real record:  the real topic and queue, flags COMMIT, preparedTxOffset = half offset, the
 *                 message's body/tag/keys/messageGroup/born time, user properties + UNIQ_KEY =
 *                 half id + __transactionId__
 *
 *   progress snapshot (<dataDir>/transaction-progress.json):
 *     {"version":1,"halfQueueOffset":N}   every half message below N is resolved
 */
export const transactionTopics = {
  /** Topic names with a `.` can never be created through the API (core/validate.ts). */
  half: '%SYS%.TXN_HALF',
  op: '%SYS%.TXN_OP',
} as const;

export const transactionProperty = {
  realTopic: 'REAL_TOPIC',
  realQueueId: 'REAL_QID',
  producerGroup: 'PGROUP',
  transactionMessage: 'TRAN_MSG',
  resolvedBy: '__SR_RESOLVED_BY',
  checks: '__SR_CHECKS',
} as const;

const internalHalfProperties: readonly string[] = [
  transactionProperty.realTopic,
  transactionProperty.realQueueId,
  transactionProperty.producerGroup,
  transactionProperty.transactionMessage,
];

export const outcomes = ['COMMIT', 'ROLLBACK'] as const;
export type Outcome = (typeof outcomes)[number];
export type TransactionState = 'PREPARED' | 'COMMITTED' | 'ROLLED_BACK';
/** Who resolved a transaction: its producer, an answer to a check, or the check limit. */
export const resolvers = ['PRODUCER', 'CHECK', 'CHECK_LIMIT'] as const;
export type ResolvedBy = (typeof resolvers)[number];

export interface PendingTransaction {
  transactionId: string;
  messageId: string;
  topic: string;
  producerGroup: string;
  /** When the half message was stored (epoch ms). */
  createdAt: number;
  /** Position of the half message in the half topic's queue. */
  halfQueueOffset: number;
  physicalOffset: number;
}

export interface TransactionStatus {
  transactionId: string;
  messageId: string;
  topic: string;
  producerGroup: string;
  state: TransactionState;
  createdAt: number;
  resolvedBy?: ResolvedBy;
  resolvedAt?: number;
  /** Checks made before a check resolved it (recorded by the sweep). */
  checks?: number;
  /** The message as consumers see it once committed (its queue offset only then). */
  message: StoredMessage;
}

/** Told about every half message stored and every transaction resolved: the DynamoDB index. */
export interface TransactionListener {
  prepared(tx: PendingTransaction): void;
  resolved(tx: { transactionId: string; producerGroup: string }): void;
}

export interface TransactionServiceOptions {
  store: MessageStore;
  brokerGroup: string;
  /** Where the progress snapshot lives. */
  dataDir: string;
  /** Written into op records as their born host. */
  host: string;
  now?: () => number;
  /** Called after a commit stored its real message, to wake waiting receives. */
  onCommitted?: (topic: string) => void;
  /** @default 1000 */
  snapshotIntervalMs?: number;
  /** Resolutions remembered in memory; older ones are looked up in the log. @default 100000 */
  resolvedCacheMax?: number;
}

interface Resolution {
  outcome: Outcome;
  resolvedBy: ResolvedBy;
  resolvedAt: number;
  checks: number | undefined;
}

interface Snapshot {
  version: 1;
  halfQueueOffset: number;
}

export class TransactionService {
  readonly checks: CheckQueue;
  /** Told about half messages and resolutions (the DynamoDB index writer). */
  listener: TransactionListener | undefined;
  /** Called after a commit stored its real message, to wake waiting receives. */
  onCommitted: (topic: string) => void;
  readonly #store: MessageStore;
  readonly #brokerGroup: string;
  readonly #host: string;
  readonly #now: () => number;
  readonly #file: string;
  readonly #resolvedCacheMax: number;
  /** Unresolved half messages, by commit-log offset. */
  readonly #pending = new Map<number, PendingTransaction>();
  /** Recent resolutions, by the half message's commit-log offset, oldest first. */
  readonly #resolved = new Map<number, Resolution>();
  /** Resolutions being written, by half offset: a second one for the same transaction waits. */
  readonly #resolving = new Map<number, Promise<unknown>>();
  #preparing = 0;
  #snapshotOffset = 0;
  #snapshotting = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: TransactionServiceOptions) {
    this.#store = options.store;
    this.#brokerGroup = options.brokerGroup;
    this.#host = options.host.slice(0, 255);
    this.#now = options.now ?? Date.now;
    this.onCommitted = options.onCommitted ?? (() => undefined);
    this.#file = path.join(options.dataDir, 'transaction-progress.json');
    this.#resolvedCacheMax = options.resolvedCacheMax ?? 100_000;
    this.checks = new CheckQueue({ now: this.#now });
  }

  /** Opens the service: finds the half messages left unresolved by earlier runs. */
  static async open(options: TransactionServiceOptions): Promise<TransactionService> {
    const service = new TransactionService(options);
    fs.mkdirSync(options.dataDir, { recursive: true });
    await service.#recover();
    service.#timer = setInterval(() => void service.snapshot().catch(() => undefined), options.snapshotIntervalMs ?? 1000);
    service.#timer.unref();
    return service;
  }

  /** Unresolved half messages, oldest first. */
  pending(): PendingTransaction[] {
    return [...this.#pending.values()].sort((a, b) => a.halfQueueOffset - b.halfQueueOffset);
  }

  isPending(transactionId: string): boolean {
    let parts: TransactionIdParts;
    try {
      parts = decodeTransactionId(transactionId);
    } catch {
      return false;
    }
    return parts.brokerGroup === this.#brokerGroup && this.#pending.has(parts.physicalOffset);
  }

  async #recover(): Promise<void> {
    const { minOffset, maxOffset } = this.#store.queueRange(transactionTopics.half, 0);
    let offset = Math.min(Math.max(readSnapshot(this.#file)?.halfQueueOffset ?? 0, minOffset), maxOffset);
    this.#snapshotOffset = offset;
    while (offset < maxOffset) {
      const read = await this.#store.read(transactionTopics.half, 0, offset, { maxMessages: 256 });
      for (const half of read.messages) {
        const resolution = await this.#findResolution(half.messageId);
        if (resolution === undefined) this.#addPending(half);
        else this.#remember(half.physicalOffset, resolution);
      }
      if (read.nextOffset <= offset) break;
      offset = read.nextOffset;
    }
  }

  /**
   * Stores the messages as half messages, all or none (one append). The records are the real
   * messages, placed in their topics and queues by the caller.
   */
  async prepare(
    records: readonly RecordInput[],
    producerGroup: string,
  ): Promise<Array<{ messageId: string; transactionId: string; queueId: number }>> {
    if (this.#closed) throw new SkyrocketError('STORE_CLOSED', 'the broker is stopping');
    const halves = records.map((r): RecordInput => {
      assert(r.topic !== transactionTopics.half && r.topic !== transactionTopics.op, 'a half message of an internal topic');
      return {
        ...r,
        topic: transactionTopics.half,
        queueId: 0,
        flags: recordFlags.transactionPrepared,
        properties: {
          ...r.properties,
          [transactionProperty.realTopic]: r.topic,
          [transactionProperty.realQueueId]: String(r.queueId),
          [transactionProperty.producerGroup]: producerGroup,
          [transactionProperty.transactionMessage]: 'true',
        },
      };
    });
    this.#preparing++;
    let results;
    try {
      results = await this.#store.append(halves);
    } finally {
      this.#preparing--;
    }
    return results.map((result, i) => {
      const record = records[i] as RecordInput;
      const tx: PendingTransaction = {
        transactionId: encodeTransactionId(this.#brokerGroup, result.messageId),
        messageId: result.messageId,
        topic: record.topic,
        producerGroup,
        createdAt: result.storeTimestamp,
        halfQueueOffset: result.queueOffset,
        physicalOffset: result.physicalOffset,
      };
      this.#pending.set(tx.physicalOffset, tx);
      this.listener?.prepared(tx);
      return { messageId: tx.messageId, transactionId: tx.transactionId, queueId: record.queueId };
    });
  }

  /** The state of a transaction of this broker group. @throws INVALID_TRANSACTION_ID */
  async status(transactionId: string): Promise<TransactionStatus> {
    const parts = this.#own(transactionId);
    await this.#resolving.get(parts.physicalOffset)?.catch(() => undefined);
    return this.#status(parts);
  }

  /**
   * Commits or rolls back. Asking again for the outcome a transaction already has answers its
   * status; asking for the other one fails with TRANSACTION_ALREADY_RESOLVED.
   */
  async resolve(transactionId: string, outcome: Outcome, resolvedBy: ResolvedBy = 'PRODUCER', checks?: number): Promise<TransactionStatus> {
    const parts = this.#own(transactionId);
    const key = parts.physicalOffset;
    for (let busy = this.#resolving.get(key); busy !== undefined; busy = this.#resolving.get(key)) {
      await busy.catch(() => undefined);
    }
    const resolving = this.#resolve(parts, outcome, resolvedBy, checks);
    this.#resolving.set(key, resolving);
    try {
      return await resolving;
    } finally {
      this.#resolving.delete(key);
    }
  }

  async #resolve(parts: TransactionIdParts, outcome: Outcome, resolvedBy: ResolvedBy, checks: number | undefined): Promise<TransactionStatus> {
    const status = await this.#status(parts);
    const wanted: TransactionState = outcome === 'COMMIT' ? 'COMMITTED' : 'ROLLED_BACK';
    if (status.state === wanted) return status;
    if (status.state !== 'PREPARED') {
      throw new SkyrocketError(
        'TRANSACTION_ALREADY_RESOLVED',
        `transaction ${status.transactionId} was ${status.state === 'COMMITTED' ? 'committed' : 'rolled back'} already; it cannot be ${outcome === 'COMMIT' ? 'committed' : 'rolled back'}`,
        { field: 'transactionId' },
      );
    }
    if (this.#closed) throw new SkyrocketError('STORE_CLOSED', 'the broker is stopping');
    const half = await this.#readHalf(parts);
    assert(half !== undefined, 'a prepared transaction has its half message');
    const opProperties: Record<string, string> = { [transactionProperty.resolvedBy]: resolvedBy };
    if (checks !== undefined) opProperties[transactionProperty.checks] = String(checks);
    const op: RecordInput = {
      topic: transactionTopics.op,
      queueId: 0,
      body: Buffer.from(outcome),
      keys: [parts.messageId],
      properties: opProperties,
      flags: outcome === 'COMMIT' ? recordFlags.transactionCommit : recordFlags.transactionRollback,
      preparedTxOffset: parts.physicalOffset,
      bornTimestamp: this.#now(),
      bornHost: this.#host,
    };
    const records: RecordInput[] = [op];
    if (outcome === 'COMMIT') {
      const real = status.message;
      records.unshift({
        topic: real.topic,
        queueId: real.queueId,
        body: real.body,
        tag: real.tag,
        keys: real.keys,
        messageGroup: real.messageGroup,
        properties: {
          ...real.properties,
          [systemProperty.originMessageId]: parts.messageId,
          [systemProperty.transactionId]: status.transactionId,
        },
        flags: recordFlags.transactionCommit,
        preparedTxOffset: parts.physicalOffset,
        bornTimestamp: real.bornTimestamp,
        bornHost: real.bornHost,
      });
    }
    const results = await this.#store.append(records);
    const opResult = results[results.length - 1]!;
    const resolution: Resolution = { outcome, resolvedBy, resolvedAt: opResult.storeTimestamp, checks };
    this.#pending.delete(parts.physicalOffset);
    this.#remember(parts.physicalOffset, resolution);
    this.checks.remove(status.producerGroup, status.transactionId);
    this.listener?.resolved({ transactionId: status.transactionId, producerGroup: status.producerGroup });
    if (outcome === 'COMMIT') {
      const committed = results[0]!;
      this.onCommitted(status.topic);
      return { ...status, ...resolutionFields(resolution), message: { ...status.message, queueOffset: committed.queueOffset } };
    }
    return { ...status, ...resolutionFields(resolution) };
  }

  /**
   * Asks the transaction's producer group for its state through the SDK producers' long polls:
   * queues a check request (replacing an earlier one). Answers the status; a resolved
   * transaction queues nothing.
   */
  async requestCheck(transactionId: string, checks: number): Promise<TransactionStatus> {
    const status = await this.status(transactionId);
    if (status.state === 'PREPARED') {
      this.checks.add({
        transactionId: status.transactionId,
        messageId: status.messageId,
        producerGroup: status.producerGroup,
        topic: status.topic,
        checks,
        message: status.message,
      });
    }
    return status;
  }

  takeChecks(producerGroup: string, max: number, allowed: (topic: string) => boolean, untilMs: number, signal: AbortSignal): Promise<CheckRequest[]> {
    return this.checks.take(producerGroup, max, allowed, untilMs, signal);
  }

  #own(transactionId: string): TransactionIdParts {
    const parts = decodeTransactionId(transactionId);
    if (parts.brokerGroup !== this.#brokerGroup || parts.brokerId !== this.#store.brokerId) {
      throw new SkyrocketError('INVALID_TRANSACTION_ID', `transaction ${transactionId} is not held by this broker`, { field: 'transactionId' });
    }
    return parts;
  }

  async #readHalf(parts: TransactionIdParts): Promise<StoredMessage | undefined> {
    let half: StoredMessage | undefined;
    try {
      half = await this.#store.getByOffset(parts.physicalOffset);
    } catch (error) {
      if (error instanceof SkyrocketError && error.code === 'STORE_CORRUPTED') throw error;
      return undefined;
    }
    if (half === undefined || half.topic !== transactionTopics.half || half.messageId !== parts.messageId) return undefined;
    return half;
  }

  async #status(parts: TransactionIdParts): Promise<TransactionStatus> {
    const half = await this.#readHalf(parts);
    if (half === undefined) {
      throw new SkyrocketError('INVALID_TRANSACTION_ID', `no transaction ${encodeTransactionId(parts.brokerGroup, parts.messageId)} (never prepared, or past retention)`, {
        field: 'transactionId',
      });
    }
    const base = this.#describe(half, parts);
    let resolution = this.#pending.has(parts.physicalOffset) ? undefined : this.#resolved.get(parts.physicalOffset);
    if (resolution === undefined && !this.#pending.has(parts.physicalOffset)) {
      resolution = await this.#findResolution(parts.messageId);
      if (resolution === undefined) this.#addPending(half);
      else this.#remember(parts.physicalOffset, resolution);
    }
    if (resolution === undefined) return base;
    const status: TransactionStatus = { ...base, ...resolutionFields(resolution) };
    if (resolution.outcome === 'COMMIT') {
      const committed = (await this.#store.getByUniqueKey(parts.messageId)).find((m) => m.topic === base.topic);
      if (committed !== undefined) status.message = { ...status.message, queueOffset: committed.queueOffset, storeTimestamp: committed.storeTimestamp };
    }
    return status;
  }

  /** A half message as its status shows it: the real message, its producer group, PREPARED. */
  #describe(half: StoredMessage, parts: TransactionIdParts): TransactionStatus {
    const props = half.properties;
    const topic = props[transactionProperty.realTopic];
    const queueId = Number(props[transactionProperty.realQueueId]);
    const producerGroup = props[transactionProperty.producerGroup];
    assert(topic !== undefined && producerGroup !== undefined && Number.isSafeInteger(queueId), 'a half message names its topic, queue and group');
    const properties: Record<string, string> = {};
    for (const [name, value] of Object.entries(props)) if (!internalHalfProperties.includes(name)) properties[name] = value;
    const message: StoredMessage = { ...half, topic, queueId, queueOffset: -1, properties };
    return {
      transactionId: encodeTransactionId(parts.brokerGroup, parts.messageId),
      messageId: parts.messageId,
      topic,
      producerGroup,
      state: 'PREPARED',
      createdAt: half.storeTimestamp,
      message,
    };
  }

  #addPending(half: StoredMessage): void {
    const producerGroup = half.properties[transactionProperty.producerGroup];
    const topic = half.properties[transactionProperty.realTopic];
    assert(producerGroup !== undefined && topic !== undefined, 'a half message names its topic and group');
    const tx: PendingTransaction = {
      transactionId: encodeTransactionId(this.#brokerGroup, half.messageId),
      messageId: half.messageId,
      topic,
      producerGroup,
      createdAt: half.storeTimestamp,
      halfQueueOffset: half.queueOffset,
      physicalOffset: half.physicalOffset,
    };
    this.#pending.set(tx.physicalOffset, tx);
  }

  /** The op record of a half message, looked up by its key. */
  async #findResolution(halfMessageId: string): Promise<Resolution | undefined> {
    for (const op of await this.#store.queryByKey(transactionTopics.op, halfMessageId, { max: 4 })) {
      const outcome = Buffer.from(op.body).toString();
      if (outcome !== 'COMMIT' && outcome !== 'ROLLBACK') continue;
      const resolvedBy = op.properties[transactionProperty.resolvedBy];
      const checks = op.properties[transactionProperty.checks];
      return {
        outcome,
        resolvedBy: (resolvers as readonly string[]).includes(resolvedBy ?? '') ? (resolvedBy as ResolvedBy) : 'PRODUCER',
        resolvedAt: op.storeTimestamp,
        checks: checks === undefined ? undefined : Number(checks),
      };
    }
    return undefined;
  }

  #remember(offset: number, resolution: Resolution): void {
    this.#resolved.delete(offset);
    this.#resolved.set(offset, resolution);
    if (this.#resolved.size > this.#resolvedCacheMax) this.#resolved.delete(this.#resolved.keys().next().value as number);
  }

  /**
   * Writes the progress snapshot when it moved: the lowest half-queue offset still unresolved.
   * Not while a prepare is in flight: its half message may already be in the queue without being
   * pending yet, and must not end up below the snapshot.
   */
  async snapshot(): Promise<void> {
    if (this.#snapshotting) return;
    this.#forgetExpired();
    if (this.#preparing > 0) return;
    let lowest = this.#store.queueRange(transactionTopics.half, 0).maxOffset;
    for (const tx of this.#pending.values()) lowest = Math.min(lowest, tx.halfQueueOffset);
    if (lowest === this.#snapshotOffset) return;
    assert(lowest > this.#snapshotOffset || this.#pending.size > 0, 'the progress snapshot only moves forward');
    this.#snapshotting = true;
    try {
      await writeSnapshot(this.#file, { version: 1, halfQueueOffset: lowest });
      this.#snapshotOffset = lowest;
    } finally {
      this.#snapshotting = false;
    }
  }

  /**
   * What `GET /v1/messages/{id}` shows for the id of a record in an internal topic: for a half
   * message, the real message once committed; otherwise nothing.
   */
  async visibleMessage(record: StoredMessage): Promise<StoredMessage | undefined> {
    if (record.topic !== transactionTopics.half) return undefined;
    const topic = record.properties[transactionProperty.realTopic];
    return (await this.#store.getByUniqueKey(record.messageId)).find((m) => m.topic === topic);
  }

  /**
   * Half messages that retention deleted before anyone resolved them are gone, as in RocketMQ:
   * they stop being pending (and leave the index), so the snapshot can move past them.
   */
  #forgetExpired(): void {
    const { minOffset } = this.#store.stats();
    for (const [offset, tx] of this.#pending) {
      if (offset >= minOffset) continue;
      this.#pending.delete(offset);
      this.checks.remove(tx.producerGroup, tx.transactionId);
      this.listener?.resolved({ transactionId: tx.transactionId, producerGroup: tx.producerGroup });
    }
  }

  /** Ends the check long polls at once (the broker is stopping). */
  interrupt(): void {
    this.checks.interrupt();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.checks.interrupt();
    while (this.#snapshotting) await new Promise((r) => setTimeout(r, 5));
    // The snapshot only saves work at the next start.
    await this.snapshot().catch(() => undefined);
  }
}

function resolutionFields(r: Resolution): Pick<TransactionStatus, 'state' | 'resolvedBy' | 'resolvedAt' | 'checks'> {
  const out: Pick<TransactionStatus, 'state' | 'resolvedBy' | 'resolvedAt' | 'checks'> = {
    state: r.outcome === 'COMMIT' ? 'COMMITTED' : 'ROLLED_BACK',
    resolvedBy: r.resolvedBy,
    resolvedAt: r.resolvedAt,
  };
  if (r.checks !== undefined) out.checks = r.checks;
  return out;
}

function readSnapshot(file: string): Snapshot | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Snapshot;
    if (value.version === 1 && Number.isSafeInteger(value.halfQueueOffset) && value.halfQueueOffset >= 0) return value;
  } catch {
    // A damaged snapshot costs a longer scan, never a lost transaction.
  }
  return undefined;
}

/**
 * Write, sync, rename: a crash leaves the old snapshot or the new one, never a torn one. Async,
 * so that a slow sync never holds up the broker (its lease heartbeat included).
 */
async function writeSnapshot(file: string, snapshot: Snapshot): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await fs.promises.open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(JSON.stringify(snapshot));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, file);
}
