import type { NewTransactionItem, ProducerGroup, ProducerGroupSpec, TransactionItem } from '../../../namesrv/transactions.ts';
import type { PendingTransaction, TransactionListener } from './transaction-service.ts';
import { BoundedMap } from '../../../core/bounded-map.ts';

/** The part of the name server the broker's transactions use (namesrv/transactions.ts). */
export interface TransactionIndex {
  putTransaction(item: NewTransactionItem): Promise<boolean>;
  deleteTransaction(txId: string): Promise<void>;
  listTransactions(filter: { brokerGroup?: string }): Promise<TransactionItem[]>;
  /** The group's registration, or the defaults for an unregistered group. */
  effectiveProducerGroup(name: string): Promise<ProducerGroup>;
}

/** The index, and the producer-group registrations the REST API manages. */
export interface TransactionRegistry extends TransactionIndex {
  createProducerGroup(spec: ProducerGroupSpec): Promise<ProducerGroup>;
  listProducerGroups(): Promise<ProducerGroup[]>;
  deleteProducerGroup(name: string): Promise<void>;
}

export interface IndexWriterOptions {
  index: TransactionIndex;
  brokerGroup: string;
  /** Whether a transaction is still unresolved: a put for one that is not is skipped. */
  isPending: (transactionId: string) => boolean;
  /** @default 1000 */
  retryDelayMs?: number;
  /** Writes in flight at once. @default 8 */
  concurrency?: number;
  /** How long a producer group's settings are reused. @default 5000 */
  producerGroupTtlMs?: number;
  /** Called with every failed write (it is retried). @default nothing */
  onError?: (error: unknown, what: string) => void;
  now?: () => number;
}

type Op = { kind: 'put'; tx: PendingTransaction } | { kind: 'delete' };

/**
 * Keeps the DynamoDB index of unresolved half messages in step with the commit log, off the ack
 * path: a send or a commit never waits for DynamoDB. Writes are queued per transaction (a later
 * write replaces a queued one), run a few at a time, and are retried until they succeed. A write
 * lost to a crash is repaired by `reconcile` at the next start, which compares the table with the
 * half messages the log says are unresolved.
 */
export class IndexWriter implements TransactionListener {
  readonly #o: Required<Omit<IndexWriterOptions, 'onError'>> & Pick<IndexWriterOptions, 'onError'>;
  readonly #queue = new Map<string, Op>();
  readonly #inflight = new Set<string>();
  readonly #groups = new BoundedMap<string, { group: ProducerGroup; at: number }>(1024);
  readonly #idle = new Set<() => void>();
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: IndexWriterOptions) {
    this.#o = { retryDelayMs: 1000, concurrency: 8, producerGroupTtlMs: 5000, now: Date.now, ...options };
  }

  prepared(tx: PendingTransaction): void {
    this.#enqueue(tx.transactionId, { kind: 'put', tx });
  }

  resolved(tx: { transactionId: string }): void {
    this.#enqueue(tx.transactionId, { kind: 'delete' });
  }

  /**
   * Brings the table in line with the log: adds the unresolved half messages it lacks, removes
   * this broker group's items whose transactions are resolved. Runs in the background.
   */
  async reconcile(pending: readonly PendingTransaction[]): Promise<void> {
    const items = await this.#o.index.listTransactions({ brokerGroup: this.#o.brokerGroup });
    const listed = new Set(items.map((i) => i.txId));
    for (const tx of pending) if (!listed.has(tx.transactionId)) this.prepared(tx);
    for (const item of items) if (!this.#o.isPending(item.txId)) this.#enqueue(item.txId, { kind: 'delete' });
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.#queue.size === 0 && this.#inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
  }

  #enqueue(txId: string, op: Op): void {
    if (this.#closed) return;
    this.#queue.delete(txId);
    this.#queue.set(txId, op);
    this.#pump();
  }

  #pump(): void {
    for (const [txId, op] of this.#queue) {
      if (this.#inflight.size >= this.#o.concurrency) break;
      if (this.#inflight.has(txId)) continue;
      this.#queue.delete(txId);
      this.#inflight.add(txId);
      void this.#run(txId, op).then(
        () => this.#done(txId),
        (error: unknown) => {
          this.#o.onError?.(error, `${op.kind} transaction ${txId}`);
          // Retried later unless a newer write for the transaction came in meanwhile.
          if (!this.#queue.has(txId) && !this.#closed) this.#queue.set(txId, op);
          this.#done(txId, true);
        },
      );
    }
    this.#checkIdle();
  }

  #done(txId: string, failed = false): void {
    this.#inflight.delete(txId);
    if (failed) {
      this.#retryTimer ??= setTimeout(() => {
        this.#retryTimer = undefined;
        this.#pump();
      }, this.#o.retryDelayMs);
      this.#retryTimer.unref();
      this.#checkIdle();
      return;
    }
    this.#pump();
  }

  #checkIdle(): void {
    if (this.#queue.size > 0 || this.#inflight.size > 0) return;
    for (const resolve of this.#idle) resolve();
    this.#idle.clear();
  }

  async #run(txId: string, op: Op): Promise<void> {
    if (op.kind === 'delete') {
      await this.#o.index.deleteTransaction(txId);
      return;
    }
    if (!this.#o.isPending(txId)) return;
    const group = await this.#producerGroup(op.tx.producerGroup);
    await this.#o.index.putTransaction({
      txId,
      brokerGroup: this.#o.brokerGroup,
      producerGroup: op.tx.producerGroup,
      topic: op.tx.topic,
      messageId: op.tx.messageId,
      createdAt: op.tx.createdAt,
      nextCheckAt: op.tx.createdAt + group.checkDelayMs,
    });
  }

  async #producerGroup(name: string): Promise<ProducerGroup> {
    const now = this.#o.now();
    const cached = this.#groups.get(name);
    if (cached !== undefined && now - cached.at < this.#o.producerGroupTtlMs) return cached.group;
    const group = await this.#o.index.effectiveProducerGroup(name);
    this.#groups.set(name, { group, at: now });
    return group;
  }
}
