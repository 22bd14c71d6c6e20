import { channel } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { SkyrocketError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { Message, encodeMessage, type MessageJson, type OutgoingMessage } from './message.ts';
import { integerOption } from './options.ts';
import { backoffDelayMs, withRetries, type RetryPolicy } from './retry.ts';
import { SkyrocketClient, type ClientOptions } from './skyrocket-client.ts';

/** What a local transaction or a checker decides. UNKNOWN leaves the decision to a later check. */
export type TransactionResolution = 'COMMIT' | 'ROLLBACK' | 'UNKNOWN';

export type TransactionState = 'PREPARED' | 'COMMITTED' | 'ROLLED_BACK';

/** A half message the broker stored: invisible until it is committed. */
export interface HalfMessage {
  /** The id consumers will see once the message is committed. */
  messageId: string;
  transactionId: string;
  topic: string;
  queueId: number;
}

export interface TransactionSendResult extends HalfMessage {
  /** What the local transaction decided (an exception counts as UNKNOWN). */
  resolution: TransactionResolution;
  /** PREPARED when the outcome was UNKNOWN or could not be delivered: the broker will check back. */
  state: TransactionState;
  /** The error of the local transaction or of the commit/rollback request, if one failed. */
  error?: unknown;
}

/** A check request from the broker: the transaction and its message as consumers would see it. */
export interface TransactionCheck {
  transactionId: string;
  messageId: string;
  producerGroup: string;
  topic: string;
  /** Checks made so far, this one included. */
  checks: number;
  message: Message;
}

export interface TransactionStatus {
  transactionId: string;
  messageId: string;
  topic: string;
  producerGroup: string;
  state: TransactionState;
  createdAt: number;
  resolvedBy?: 'PRODUCER' | 'CHECK' | 'CHECK_LIMIT';
  resolvedAt?: number;
  checks?: number;
  queueId?: number;
  queueOffset?: number;
}

export interface TransactionProducerOptions extends ClientOptions {
  /** Names who is checked back about this producer's transactions; any producer of the group may answer. */
  producerGroup: string;
  /** The topic of messages that name none (a TRANSACTION topic). @default none */
  topic?: string;
  /**
   * Answers the broker's checks of transactions left unresolved (this producer or another of the
   * group crashed, or a local transaction answered UNKNOWN). While the producer is started, it
   * long-polls the brokers for check requests and calls this for each. Without it, `start()` polls
   * nothing and unresolved transactions wait for another producer of the group (or the group's
   * registered checker).
   * @default none
   */
  checker?: (check: TransactionCheck) => Promise<TransactionResolution> | TransactionResolution;
  /** Checker calls in flight at once. @default 4 */
  checkConcurrency?: number;
  /** How long one poll for check requests waits on the broker (up to 30 s). @default 20000 */
  checkPollWaitMs?: number;
  /** Retries of a request that failed with a retriable error. @default 3 */
  retries?: number;
  /** The first retry's backoff; each later one doubles, with jitter. @default 100 */
  retryBackoffMs?: number;
  /** @default 5000 */
  retryBackoffMaxMs?: number;
}

/**
 * `skyrocket:client:transaction-check`: a check that could not be answered, when it ends:
 * `{ producerGroup, stage: 'poll' | 'checker' | 'resolve', error, transactionId? }`.
 */
export const transactionCheckChannel = channel('skyrocket:client:transaction-check');

/**
 * RocketMQ's transactional producer over the REST API: `send` stores the message as a half
 * message (invisible to consumers), runs the local transaction, and commits or rolls back by its
 * result. Whatever stays unresolved (an UNKNOWN result, a crash between the half message and the
 * commit) is checked back by the broker: a started producer with a `checker` answers the checks
 * of its producer group.
 *
 * ```ts
 * const producer = new TransactionProducer({ endpoint, apiKey, producerGroup: 'orders', topic: 'order-events',
 *   checker: async (check) => ((await db.orderExists(check.message.keys[0])) ? 'COMMIT' : 'ROLLBACK') });
 * await producer.start();
 * await producer.send({ body: JSON.stringify(order), keys: [order.id] }, async () => {
 *   await db.insertOrder(order);
 *   return 'COMMIT';
 * });
 * ```
 *
 * A half message whose send is retried after a lost answer may be stored twice, as two
 * transactions: the checker sees both and should decide from the message (its keys), not from
 * memory of what it sent.
 */
export class TransactionProducer {
  readonly endpoint: string;
  readonly producerGroup: string;
  readonly #client: SkyrocketClient;
  readonly #topic: string | undefined;
  readonly #checker: TransactionProducerOptions['checker'];
  readonly #checkConcurrency: number;
  readonly #pollWaitMs: number;
  readonly #retry: RetryPolicy;
  readonly #checking = new Set<Promise<void>>();
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #closed = false;

  constructor(options: TransactionProducerOptions) {
    this.#client = new SkyrocketClient(options);
    this.endpoint = this.#client.endpoint;
    if (typeof options.producerGroup !== 'string' || options.producerGroup === '') {
      throw new SkyrocketError('INVALID_ARGUMENT', 'producerGroup is required', { field: 'producerGroup' });
    }
    this.producerGroup = options.producerGroup;
    this.#topic = options.topic;
    this.#checker = options.checker;
    this.#checkConcurrency = integerOption(options.checkConcurrency, 4, 'checkConcurrency', 1, 1024);
    this.#pollWaitMs = integerOption(options.checkPollWaitMs, 20_000, 'checkPollWaitMs', 0, limits.longPollWaitMaxMs);
    this.#retry = {
      retries: integerOption(options.retries, 3, 'retries', 0, 100),
      backoffMs: integerOption(options.retryBackoffMs, 100, 'retryBackoffMs', 1, 60_000),
      backoffMaxMs: integerOption(options.retryBackoffMaxMs, 5_000, 'retryBackoffMaxMs', 1, 600_000),
    };
  }

  /** Starts answering check requests (when there is a checker). */
  async start(): Promise<void> {
    if (this.#closed) throw new SkyrocketError('BAD_REQUEST', 'the producer is closed');
    if (this.#checker === undefined || this.#loop !== undefined) return;
    this.#abort = new AbortController();
    this.#loop = this.#pollChecks(this.#abort.signal);
  }

  /** Stops polling for checks and waits for the checks in progress. Later sends fail. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.#loop;
    this.#loop = undefined;
    await Promise.all(this.#checking);
  }

  /**
   * Sends one message as a half message, runs `executeLocalTransaction` with it, and commits or
   * rolls back by the result. An exception in the local transaction counts as UNKNOWN: the
   * message stays unresolved and is checked back later. The send itself failing throws (nothing
   * was stored, or nothing that is known: see the class comment); a failed commit or rollback
   * does not throw, it is reported in the result and left to the check.
   */
  async send(
    message: (OutgoingMessage & { topic?: string }) | string | Uint8Array,
    executeLocalTransaction: (half: HalfMessage) => Promise<TransactionResolution> | TransactionResolution,
  ): Promise<TransactionSendResult> {
    const half = await this.sendHalf(message);
    let resolution: TransactionResolution;
    try {
      resolution = normalizeResolution(await executeLocalTransaction(half));
    } catch (error) {
      return { ...half, resolution: 'UNKNOWN', state: 'PREPARED', error };
    }
    if (resolution === 'UNKNOWN') return { ...half, resolution, state: 'PREPARED' };
    try {
      const status = resolution === 'COMMIT' ? await this.commit(half.transactionId) : await this.rollback(half.transactionId);
      return { ...half, resolution, state: status.state };
    } catch (error) {
      return { ...half, resolution, state: 'PREPARED', error };
    }
  }

  /** Stores a half message without running anything: resolve it with `commit` or `rollback`. */
  async sendHalf(message: (OutgoingMessage & { topic?: string }) | string | Uint8Array): Promise<HalfMessage> {
    if (this.#closed) throw new SkyrocketError('BAD_REQUEST', 'the producer is closed');
    const { topic = this.#topic, ...outgoing } = typeof message === 'string' || message instanceof Uint8Array ? { body: message } : message;
    if (topic === undefined) throw new SkyrocketError('INVALID_ARGUMENT', 'the message names no topic and the producer has none', { field: 'topic' });
    const body = { transactional: true, producerGroup: this.producerGroup, messages: [encodeMessage(outgoing)] };
    type HalfResults = { results: Array<{ messageId: string; transactionId: string; queueId: number }> };
    const reply = await withRetries<HalfResults>('send', this.#retry, () => this.#client.call<HalfResults>('POST', `/v1/topics/${enc(topic)}/messages`, body));
    const result = reply.results[0];
    if (result === undefined) throw new SkyrocketError('INTERNAL_ERROR', 'the broker answered no result for the half message');
    return { ...result, topic };
  }

  /** Makes the message visible. Idempotent; fails with TRANSACTION_ALREADY_RESOLVED after a rollback. */
  async commit(transactionId: string): Promise<TransactionStatus> {
    return withRetries('commit', this.#retry, () => this.#client.call('POST', `/v1/transactions/${enc(transactionId)}/commit`, {}));
  }

  /** Discards the message. Idempotent; fails with TRANSACTION_ALREADY_RESOLVED after a commit. */
  async rollback(transactionId: string): Promise<TransactionStatus> {
    return withRetries('rollback', this.#retry, () => this.#client.call('POST', `/v1/transactions/${enc(transactionId)}/rollback`, {}));
  }

  async getTransaction(transactionId: string): Promise<TransactionStatus> {
    return this.#client.call('GET', `/v1/transactions/${enc(transactionId)}?message=false`);
  }

  async #pollChecks(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      // At most `checkConcurrency` checks run; the next poll asks for the free places only.
      while (this.#checking.size >= this.#checkConcurrency && !signal.aborted) await Promise.race(this.#checking);
      if (signal.aborted) break;
      let checks: Array<Omit<TransactionCheck, 'message'> & { message: MessageJson }>;
      try {
        const reply = await this.#client.call<{ checks: Array<Omit<TransactionCheck, 'message'> & { message: MessageJson }> }>(
          'POST',
          `/v1/producer-groups/${enc(this.producerGroup)}/checks`,
          { max: this.#checkConcurrency - this.#checking.size, waitMs: this.#pollWaitMs },
          { signal, waitMs: this.#pollWaitMs },
        );
        checks = reply.checks;
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        this.#report('poll', error);
        const delayMs = backoffDelayMs(failures++, this.#retry, Math.random());
        await sleep(delayMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      for (const check of checks) {
        const running = this.#answer({ ...check, message: new Message({ ...check.message, queueOffset: (check.message as Partial<MessageJson>).queueOffset ?? -1 }) }).finally(() => this.#checking.delete(running));
        this.#checking.add(running);
      }
    }
  }

  async #answer(check: TransactionCheck): Promise<void> {
    let resolution: TransactionResolution;
    try {
      resolution = normalizeResolution(await (this.#checker as NonNullable<TransactionProducerOptions['checker']>)(check));
    } catch (error) {
      this.#report('checker', error, check.transactionId);
      return;
    }
    if (resolution === 'UNKNOWN') return;
    try {
      if (resolution === 'COMMIT') await this.commit(check.transactionId);
      else await this.rollback(check.transactionId);
    } catch (error) {
      this.#report('resolve', error, check.transactionId);
    }
  }

  #report(stage: 'poll' | 'checker' | 'resolve', error: unknown, transactionId?: string): void {
    if (transactionCheckChannel.hasSubscribers) {
      transactionCheckChannel.publish({ producerGroup: this.producerGroup, stage, error, ...(transactionId === undefined ? {} : { transactionId }) });
    }
  }
}

function normalizeResolution(value: unknown): TransactionResolution {
  return value === 'COMMIT' || value === 'ROLLBACK' ? value : 'UNKNOWN';
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
