import assert from 'node:assert/strict';

/**
 * Coalesces items added by many callers into batches, one batch per key, and gives each caller
 * its own item's outcome. A batch is delivered `lingerMs` after its first item, or at once when
 * it reaches `maxItems` or `maxBytes`. Batches of an ordered key are delivered one at a time, in
 * the order they were closed; other keys may have any number in flight.
 */
export interface BatcherOptions<T, R> {
  /**
   * How long a batch stays open after its first item; `'adaptive'`: until the end of the current
   * event-loop turn when fewer than `maxInflight` batches of the key are in flight, otherwise
   * until one of them completes. Adaptive batching sends a lone message at once, and batches
   * grow by themselves as the send rate outgrows the round trip.
   */
  lingerMs: number | 'adaptive';
  /** Adaptive batching: batches of one key in flight at once (1 for ordered keys). @default 4 */
  maxInflight?: number;
  maxItems: number;
  /** An item larger than this travels alone. */
  maxBytes: number;
  /**
   * Delivers one batch and returns one outcome per item, in order. A throw fails every item
   * with the thrown error.
   */
  deliver(key: string, items: readonly T[]): Promise<Array<PromiseSettledResult<R>>>;
  /** Whether batches of this key must not overtake each other. @default never */
  ordered?(key: string): boolean;
}

interface OpenBatch<T, R> {
  items: T[];
  bytes: number;
  waiters: Array<{ resolve: (value: R) => void; reject: (error: unknown) => void }>;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
}

export class Batcher<T, R> {
  readonly #options: BatcherOptions<T, R>;
  readonly #open = new Map<string, OpenBatch<T, R>>();
  readonly #inflight = new Set<Promise<void>>();
  /** The last delivery of each ordered key: the next one starts after it. */
  readonly #tails = new Map<string, Promise<void>>();
  /** Batches of each key closed and not yet completed. */
  readonly #inflightByKey = new Map<string, number>();

  constructor(options: BatcherOptions<T, R>) {
    this.#options = options;
  }

  add(key: string, item: T, bytes: number): Promise<R> {
    const { maxItems, maxBytes, lingerMs } = this.#options;
    let batch = this.#open.get(key);
    if (batch !== undefined && batch.bytes + bytes > maxBytes) {
      this.#close(key);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { items: [], bytes: 0, waiters: [], timer: undefined, immediate: undefined };
      if (lingerMs === 'adaptive') {
        if (this.#roomFor(key)) batch.immediate = setImmediate(() => this.#close(key));
        // else: closed when a batch of this key completes (#completed)
      } else {
        batch.timer = setTimeout(() => this.#close(key), lingerMs);
      }
      this.#open.set(key, batch);
    }
    const outcome = new Promise<R>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    batch.items.push(item);
    batch.bytes += bytes;
    if (batch.items.length >= maxItems || batch.bytes >= maxBytes) this.#close(key);
    return outcome;
  }

  /** Delivers every open batch now and resolves when nothing is in flight. */
  async flush(): Promise<void> {
    for (const key of [...this.#open.keys()]) this.#close(key);
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
  }

  #roomFor(key: string): boolean {
    const limit = this.#options.ordered?.(key) === true ? 1 : (this.#options.maxInflight ?? 4);
    return (this.#inflightByKey.get(key) ?? 0) < limit;
  }

  /** Adaptive batching: a batch of `key` completed, so the one waiting for room may go. */
  #completed(key: string): void {
    const left = (this.#inflightByKey.get(key) ?? 1) - 1;
    if (left > 0) this.#inflightByKey.set(key, left);
    else this.#inflightByKey.delete(key);
    const waiting = this.#open.get(key);
    if (waiting !== undefined && waiting.immediate === undefined && waiting.timer === undefined) this.#close(key);
  }

  #close(key: string): void {
    const batch = this.#open.get(key);
    if (batch === undefined) return;
    this.#open.delete(key);
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    if (batch.immediate !== undefined) clearImmediate(batch.immediate);
    this.#inflightByKey.set(key, (this.#inflightByKey.get(key) ?? 0) + 1);
    const run = async (): Promise<void> => {
      try {
        const outcomes = await this.#options.deliver(key, batch.items);
        assert.equal(outcomes.length, batch.items.length, 'deliver must return one outcome per item');
        batch.waiters.forEach((waiter, i) => {
          const outcome = outcomes[i] as PromiseSettledResult<R>;
          if (outcome.status === 'fulfilled') waiter.resolve(outcome.value);
          else waiter.reject(outcome.reason);
        });
      } catch (error) {
        for (const waiter of batch.waiters) waiter.reject(error);
      }
    };
    let delivery: Promise<void>;
    if (this.#options.ordered?.(key) === true) {
      delivery = (this.#tails.get(key) ?? Promise.resolve()).then(run);
      this.#tails.set(key, delivery);
    } else {
      delivery = run();
    }
    this.#inflight.add(delivery);
    void delivery.then(() => {
      this.#inflight.delete(delivery);
      if (this.#tails.get(key) === delivery) this.#tails.delete(key);
      this.#completed(key);
    });
  }
}
