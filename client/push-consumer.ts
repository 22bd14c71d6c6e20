import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SkyrocketError, isErrorCode } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { validateInvisibleMs } from '../core/validate.ts';
import { Batcher } from './batcher.ts';
import { clientChannels, publish, type ConsumerErrorEvent } from './diagnostics.ts';
import type { ReceivedMessage } from './message.ts';
import { integerOption } from './options.ts';
import { backoffDelayMs, isRetriable, withRetries, type RetryPolicy } from './retry.ts';
import { SimpleConsumer, type SimpleConsumerOptions } from './simple-consumer.ts';

export interface PushConsumerOptions extends SimpleConsumerOptions {
  /**
   * Handles one message. When it resolves the message is acked; when it throws the message is
   * left unacked and is delivered again once its invisibility runs out (see `retryDelayMs`).
   * Needed by `start()`; iteration with `for await` needs none.
   * @default none
   */
  handler?: (message: ReceivedMessage) => Promise<void> | void;
  /**
   * Handler calls in flight at once. Iteration handles one message at a time and fetches up to
   * this many ahead.
   * @default 8
   */
  concurrency?: number;
  /**
   * After a handler fails, hide the message for this long from then (10 s to 12 h), so it comes
   * back sooner (or later) than the rest of its `invisibleMs`.
   * @default the rest of its invisibleMs
   */
  retryDelayMs?: number;
  /** The first backoff after a failed receive or ack; later ones double, with jitter. @default 100 */
  retryBackoffMs?: number;
  /** The longest backoff between two receives that failed. @default 5000 */
  retryBackoffMaxMs?: number;
}

/** Acks that fail with a retriable error are retried this many times before being reported. */
const ackRetries = 3;
/** Acks of handlers that finish within this window share one request. */
const ackLingerMs = 1;

/**
 * Calls a handler for every message of a topic, at most `concurrency` at once, and acks the
 * messages it handled. Or, without a handler, an async iterable of messages:
 *
 * ```ts
 * for await (const message of consumer) {
 *   await work(message); // acked when the loop asks for the next message
 * }
 * ```
 *
 * In a `for await` loop, a message is acked when the loop body finishes normally and the loop
 * asks for the next one. Leaving the body by `throw`, `break` or `return` leaves that message
 * unacked (JavaScript tells the iterator the same thing for all three): it is delivered again
 * after `retryDelayMs`, or after its invisibility. To keep a message you `break` on, call
 * `await consumer.ack(message)` first. Messages fetched ahead but not yet handed out when the loop
 * ends come back after their invisibility. `stop()` ends the loop at its next iteration.
 *
 * Errors that no caller can receive (a failed receive, handler, ack or change of invisibility)
 * are published on `skyrocket:client:consumer-error`; the consumer backs off and carries on.
 * Delivery is at least once: a handler must tolerate seeing a message again.
 */
export class PushConsumer implements AsyncIterable<ReceivedMessage> {
  readonly #consumer: SimpleConsumer;
  readonly #handler: PushConsumerOptions['handler'];
  readonly #concurrency: number;
  readonly #retryDelayMs: number | undefined;
  readonly #backoff: RetryPolicy;
  readonly #acks: Batcher<string, void>;
  /** Messages acked by `ack()`, so that iteration does not ack them again. */
  readonly #acked = new WeakSet<ReceivedMessage>();
  readonly #inflight = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #state: 'idle' | 'running' | 'iterating' = 'idle';
  #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: PushConsumerOptions) {
    this.#consumer = new SimpleConsumer(options);
    this.#handler = options.handler;
    this.#concurrency = integerOption(options.concurrency, 8, 'concurrency', 1, limits.receiveMessagesMaxCount);
    this.#retryDelayMs = options.retryDelayMs === undefined ? undefined : validateInvisibleMs(options.retryDelayMs, 'retryDelayMs');
    this.#backoff = {
      retries: ackRetries,
      backoffMs: integerOption(options.retryBackoffMs, 100, 'retryBackoffMs', 1, 60_000),
      backoffMaxMs: integerOption(options.retryBackoffMaxMs, 5_000, 'retryBackoffMaxMs', 1, 600_000),
    };
    this.#acks = new Batcher({
      lingerMs: ackLingerMs,
      maxItems: limits.receiveMessagesMaxCount,
      maxBytes: Number.MAX_SAFE_INTEGER,
      deliver: (topic, handles) => this.#deliverAcks(topic, handles),
    });
  }

  get group(): string {
    return this.#consumer.group;
  }

  get topic(): string {
    return this.#consumer.topic;
  }

  /**
   * Starts calling the handler. The first receive happens before this resolves, so a wrong
   * group, topic or API key rejects here; later failures are published and retried.
   */
  async start(): Promise<void> {
    assert(this.#handler !== undefined, 'start() needs a handler; without one, iterate: for await (const m of consumer)');
    assert(this.#state === 'idle', `the consumer is already ${this.#state}`);
    this.#state = 'running';
    this.#abort = new AbortController();
    const { signal } = this.#abort;
    try {
      this.#dispatch(await this.#consumer.receive(this.#concurrency, { waitMs: 0, signal }));
    } catch (error) {
      this.#state = 'idle';
      if (signal.aborted) return;
      throw error;
    }
    this.#loop = this.#run(signal);
  }

  /**
   * Stops receiving (an open long poll is cancelled), waits for the handlers in flight and their
   * acks. An iterating loop ends at its next iteration.
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
    await this.#acks.flush();
    if (this.#state === 'running') this.#state = 'idle';
  }

  /** Acks a message now; for a message a `for await` loop leaves early. */
  async ack(message: ReceivedMessage): Promise<void> {
    this.#acked.add(message);
    await this.#acks.add(this.topic, message.receiptHandle, 0);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ReceivedMessage, void, undefined> {
    assert(this.#state === 'idle', `the consumer is already ${this.#state}`);
    this.#state = 'iterating';
    this.#abort = new AbortController();
    const { signal } = this.#abort;
    const ahead: Array<{ message: ReceivedMessage; hiddenUntil: number }> = [];
    let current: ReceivedMessage | undefined;
    let failures = 0;
    try {
      while (!signal.aborted) {
        const next = ahead.shift();
        if (next === undefined) {
          try {
            const got = await this.#consumer.receive(this.#concurrency, { signal });
            const hiddenUntil = Date.now() + this.#consumer.invisibleMs;
            for (const message of got) ahead.push({ message, hiddenUntil });
            failures = 0;
          } catch (error) {
            if (signal.aborted) break;
            if (!isRetriable(error)) throw error;
            await this.#pause(failures++, signal);
          }
          continue;
        }
        // Its invisibility ran out while it waited here: it is being delivered again, maybe elsewhere.
        if (Date.now() >= next.hiddenUntil) continue;
        current = next.message;
        yield current;
        if (!this.#acked.has(current)) void this.#ackQuietly(current);
        current = undefined;
      }
    } finally {
      if (current !== undefined && !this.#acked.has(current)) await this.#release(current);
      this.#state = 'idle';
      await this.#acks.flush();
    }
  }

  /** Receives while running, when at least half the handler slots are free. */
  async #run(signal: AbortSignal): Promise<void> {
    // Waiting for half the slots (not one) lets a busy consumer receive in batches rather than
    // send one receive per finished handler.
    const threshold = Math.ceil(this.#concurrency / 2);
    let failures = 0;
    while (!signal.aborted) {
      while (!signal.aborted && this.#concurrency - this.#inflight.size < threshold) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
      if (signal.aborted) break;
      try {
        this.#dispatch(await this.#consumer.receive(this.#concurrency - this.#inflight.size, { signal }));
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        this.#report('receive', error);
        await this.#pause(failures++, signal);
      }
    }
  }

  #dispatch(messages: readonly ReceivedMessage[]): void {
    for (const message of messages) {
      const task = this.#handle(message);
      this.#inflight.add(task);
      void task.then(() => {
        this.#inflight.delete(task);
        const wake = this.#wake;
        this.#wake = undefined;
        wake?.();
      });
    }
  }

  async #handle(message: ReceivedMessage): Promise<void> {
    try {
      await (this.#handler as NonNullable<PushConsumerOptions['handler']>)(message);
    } catch (error) {
      this.#report('handler', error, message);
      await this.#release(message);
      return;
    }
    await this.#ackQuietly(message);
  }

  async #ackQuietly(message: ReceivedMessage): Promise<void> {
    try {
      await this.#acks.add(this.topic, message.receiptHandle, 0);
    } catch (error) {
      this.#report('ack', error, message);
    }
  }

  /** Leaves a failed message unacked, shortened to `retryDelayMs` when one is set. */
  async #release(message: ReceivedMessage): Promise<void> {
    if (this.#retryDelayMs === undefined) return;
    try {
      await this.#consumer.changeInvisibility(message, this.#retryDelayMs);
    } catch (error) {
      this.#report('change-invisibility', error, message);
    }
  }

  async #deliverAcks(topic: string, handles: readonly string[]): Promise<Array<PromiseSettledResult<void>>> {
    const result = await withRetries('ack', this.#backoff, () => this.#consumer.client.ack(this.group, topic, handles));
    const refused = new Map(result.failed.map((f) => [f.receiptHandle, f]));
    return handles.map((handle) => {
      const f = refused.get(handle);
      if (f === undefined) return { status: 'fulfilled', value: undefined };
      const code = isErrorCode(f.code) ? f.code : 'INTERNAL_ERROR';
      return { status: 'rejected', reason: new SkyrocketError(code, f.message, { field: 'receiptHandle' }) };
    });
  }

  async #pause(failures: number, signal: AbortSignal): Promise<void> {
    await sleep(backoffDelayMs(failures, this.#backoff, Math.random()), undefined, { signal }).catch(() => undefined);
  }

  #report(stage: ConsumerErrorEvent['stage'], error: unknown, message?: ReceivedMessage): void {
    const event: ConsumerErrorEvent = { group: this.group, topic: this.topic, stage, error };
    if (message !== undefined) event.messageId = message.messageId;
    publish(clientChannels.consumerError, event);
  }
}
