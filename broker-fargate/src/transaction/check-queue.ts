import type { StoredMessage } from '../../../core/message.ts';

/** A request to a producer group: "is this transaction committed or rolled back?" */
export interface CheckRequest {
  transactionId: string;
  /** The half message's id: the id consumers see once it is committed. */
  messageId: string;
  producerGroup: string;
  topic: string;
  /** Checks made so far, this one included. */
  checks: number;
  /** The message as consumers would see it once committed. */
  message: StoredMessage;
}

export interface CheckQueueOptions {
  /** Requests kept per producer group; the oldest is dropped beyond it (the sweep asks again). @default 10000 */
  maxPerGroup?: number;
  /** @default Date.now */
  now?: () => number;
}

/**
 * Check requests waiting for a producer of their group to long-poll them, one per transaction:
 * asking again replaces the request. Taking a request removes it; a producer that takes one and
 * dies without answering leaves the transaction unresolved, and the sweep asks again later.
 */
export class CheckQueue {
  readonly #maxPerGroup: number;
  readonly #now: () => number;
  /** producer group -> transaction id -> request, oldest first. */
  readonly #requests = new Map<string, Map<string, CheckRequest>>();
  readonly #waiters = new Map<string, Set<() => void>>();
  #interrupted = false;

  constructor(options: CheckQueueOptions = {}) {
    this.#maxPerGroup = options.maxPerGroup ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  add(request: CheckRequest): void {
    let group = this.#requests.get(request.producerGroup);
    if (group === undefined) {
      group = new Map();
      this.#requests.set(request.producerGroup, group);
    }
    group.delete(request.transactionId);
    group.set(request.transactionId, request);
    if (group.size > this.#maxPerGroup) group.delete(group.keys().next().value as string);
    this.#wake(request.producerGroup);
  }

  /** Forgets the request of a transaction that was resolved. */
  remove(producerGroup: string, transactionId: string): void {
    const group = this.#requests.get(producerGroup);
    group?.delete(transactionId);
    if (group?.size === 0) this.#requests.delete(producerGroup);
  }

  size(producerGroup: string): number {
    return this.#requests.get(producerGroup)?.size ?? 0;
  }

  /**
   * Takes up to `max` requests of the group whose topic `allowed` accepts, waiting until
   * `untilMs` for one to come; an aborted signal or `interrupt` ends the wait (empty).
   */
  async take(
    producerGroup: string,
    max: number,
    allowed: (topic: string) => boolean,
    untilMs: number,
    signal: AbortSignal,
  ): Promise<CheckRequest[]> {
    for (;;) {
      const out: CheckRequest[] = [];
      const group = this.#requests.get(producerGroup);
      if (group !== undefined) {
        for (const [id, request] of group) {
          if (out.length >= max) break;
          if (!allowed(request.topic)) continue;
          group.delete(id);
          out.push(request);
        }
        if (group.size === 0) this.#requests.delete(producerGroup);
      }
      if (out.length > 0 || signal.aborted || this.#now() >= untilMs) return out;
      const interrupted = await this.#wait(producerGroup, untilMs, signal);
      if (interrupted) return [];
    }
  }

  /** Ends every wait at once (the broker is stopping). */
  interrupt(): void {
    this.#interrupted = true;
    for (const waiters of [...this.#waiters.values()]) for (const wake of [...waiters]) wake();
  }

  #wake(producerGroup: string): void {
    const waiters = this.#waiters.get(producerGroup);
    if (waiters === undefined) return;
    this.#waiters.delete(producerGroup);
    for (const wake of waiters) wake();
  }

  /** Resolves true when interrupted, false when woken, timed out or aborted. */
  #wait(producerGroup: string, untilMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.#interrupted) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(producerGroup);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(producerGroup, waiters);
      }
      const done = (): void => {
        clearTimeout(timer);
        waiters!.delete(done);
        signal.removeEventListener('abort', done);
        resolve(this.#interrupted);
      };
      const timer = setTimeout(done, Math.max(0, untilMs - this.#now()));
      signal.addEventListener('abort', done);
      waiters.add(done);
    });
  }
}
