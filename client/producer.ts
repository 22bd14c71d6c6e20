import { SkyrocketError, isSkyrocketError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { Batcher } from './batcher.ts';
import { bodyByteLength, type OutgoingMessage, type SendResult } from './message.ts';
import { integerOption } from './options.ts';
import { isRetriable, withRetries, type RetryPolicy } from './retry.ts';
import { SkyrocketClient, type ClientOptions } from './skyrocket-client.ts';

export interface ProducerOptions extends ClientOptions {
  /** The topic of messages that name none. @default none: every message names its topic */
  topic?: string;
  /**
   * How long a send waits for others to share its request: sends to one topic within this
   * window travel in one batch request. By default batching is adaptive: a send goes out at the
   * end of the current event-loop turn (with the sends made in that turn) while fewer than
   * `maxInflightBatches` requests of its topic are in flight, and otherwise waits for one of them
   * to complete, so a lone send is not delayed and batches grow with the send rate.
   * @default adaptive
   */
  lingerMs?: number;
  /** Adaptive batching: requests of one topic in flight at once (FIFO message groups: 1). @default 4 */
  maxInflightBatches?: number;
  /** A batch is sent at once when it holds this many messages (at most 1024). @default 256 */
  maxBatchMessages?: number;
  /** A batch is sent at once when its bodies reach this many bytes; a larger body travels alone. @default 1048576 (1 MiB) */
  maxBatchBytes?: number;
  /** Retries of a request that failed with a retriable error. Non-retriable errors are never retried. @default 3 */
  retries?: number;
  /** The first retry's backoff; each later one doubles, with jitter. @default 100 */
  retryBackoffMs?: number;
  /** The longest backoff between two retries. @default 5000 */
  retryBackoffMaxMs?: number;
}

/** A message for `Producer.send`, which may name its own topic. */
export interface ProducerMessage extends OutgoingMessage {
  /** @default the producer's `topic` */
  topic?: string;
}

/**
 * Sends messages, coalescing concurrent `send` calls to one topic into batch requests.
 *
 * Delivery is at least once: a retried request may store a message that the first attempt had
 * already stored. Messages of one `messageGroup` (FIFO topics) are batched only with each other
 * and their batches are sent one at a time, so they are stored in the order they were sent.
 */
export class Producer {
  readonly client: SkyrocketClient;
  readonly #topic: string | undefined;
  readonly #retry: RetryPolicy;
  readonly #batcher: Batcher<OutgoingMessage, SendResult>;
  /** `sendBatch` calls in flight, for `close` to wait for. */
  readonly #batches = new Set<Promise<void>>();
  #closed = false;

  constructor(options: ProducerOptions) {
    this.client = new SkyrocketClient(options);
    this.#topic = options.topic;
    this.#retry = {
      retries: integerOption(options.retries, 3, 'retries', 0, 100),
      backoffMs: integerOption(options.retryBackoffMs, 100, 'retryBackoffMs', 1, 60_000),
      backoffMaxMs: integerOption(options.retryBackoffMaxMs, 5_000, 'retryBackoffMaxMs', 1, 600_000),
    };
    this.#batcher = new Batcher({
      lingerMs: options.lingerMs === undefined ? 'adaptive' : integerOption(options.lingerMs, 0, 'lingerMs', 0, 60_000),
      maxInflight: integerOption(options.maxInflightBatches, 4, 'maxInflightBatches', 1, 1024),
      maxItems: integerOption(options.maxBatchMessages, 256, 'maxBatchMessages', 1, limits.sendBatchMaxCount),
      maxBytes: integerOption(options.maxBatchBytes, 1024 * 1024, 'maxBatchBytes', 1, limits.sendBatchMaxBytes),
      deliver: (key, items) => this.#deliver(key, items),
      ordered: (key) => !key.endsWith(keySeparator),
    });
  }

  /**
   * Sends one message, in a batch with the sends made around the same time. A string or bytes
   * is shorthand for `{ body }`. A field error names the message's own field (`message.tag`).
   */
  async send(message: ProducerMessage | string | Uint8Array): Promise<SendResult> {
    const { topic, outgoing } = this.#prepare(message);
    if (this.#closed) throw new SkyrocketError('BAD_REQUEST', 'the producer is closed');
    return this.#batcher.add(`${topic}${keySeparator}${outgoing.messageGroup ?? ''}`, outgoing, bodyByteLength(outgoing.body));
  }

  /**
   * Sends the messages in one request, by themselves: they are stored all or none, on one broker
   * group. All must go to one topic. A field error names the batch position (`messages[3].tag`).
   */
  async sendBatch(messages: ReadonlyArray<ProducerMessage | string | Uint8Array>): Promise<SendResult[]> {
    const prepared = messages.map((m) => this.#prepare(m));
    const topic = prepared[0]?.topic ?? this.#topic;
    if (topic === undefined) throw new SkyrocketError('INVALID_ARGUMENT', 'an empty batch names no topic', { field: 'topic' });
    if (prepared.some((p) => p.topic !== topic)) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'the messages of a batch must all go to one topic', { field: 'topic' });
    }
    if (this.#closed) throw new SkyrocketError('BAD_REQUEST', 'the producer is closed');
    const outgoing = prepared.map((p) => p.outgoing);
    const sending = withRetries('send', this.#retry, () => this.client.send(topic, outgoing));
    const settled = sending.then(() => undefined, () => undefined);
    this.#batches.add(settled);
    void settled.then(() => this.#batches.delete(settled));
    return sending;
  }

  /** Sends what is pending and waits for every request in flight. Later sends fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#batcher.flush(), ...this.#batches]);
  }

  #prepare(message: ProducerMessage | string | Uint8Array): { topic: string; outgoing: OutgoingMessage } {
    const { topic = this.#topic, ...outgoing } = typeof message === 'string' || message instanceof Uint8Array ? { body: message } : message;
    if (topic === undefined) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'the message names no topic and the producer has none', { field: 'topic' });
    }
    return { topic, outgoing };
  }

  /**
   * Sends one coalesced batch. The broker refuses a whole batch for one bad message, so a
   * non-retriable error that names a message fails that message alone and the rest are sent again.
   */
  async #deliver(key: string, items: readonly OutgoingMessage[]): Promise<Array<PromiseSettledResult<SendResult>>> {
    const topic = key.slice(0, key.indexOf(keySeparator));
    const outcomes: Array<PromiseSettledResult<SendResult>> = new Array(items.length);
    const left = items.map((_, i) => i);
    while (left.length > 0) {
      try {
        const results = await withRetries('send', this.#retry, () => this.client.send(topic, left.map((i) => items[i] as OutgoingMessage)));
        left.forEach((i, j) => (outcomes[i] = { status: 'fulfilled', value: results[j] as SendResult }));
        break;
      } catch (error) {
        const culprit = isRetriable(error) ? undefined : culpritOf(error);
        if (culprit === undefined || culprit >= left.length || left.length === 1) {
          for (const i of left) outcomes[i] = { status: 'rejected', reason: ownError(error) };
          break;
        }
        outcomes[left[culprit] as number] = { status: 'rejected', reason: ownError(error) };
        left.splice(culprit, 1);
      }
    }
    return outcomes;
  }
}

/** Joins topic and message group in a batch key; control characters are in neither. */
const keySeparator = '\u0000';
const messageField = /^messages\[(\d+)\](.*)$/;

/** The batch position an error names (`messages[3].tag` → 3), if it names one. */
function culpritOf(error: unknown): number | undefined {
  if (!isSkyrocketError(error) || error.field === undefined) return undefined;
  const match = messageField.exec(error.field);
  return match === null ? undefined : Number(match[1]);
}

/** Re-points an error at the caller's message: `messages[3].tag` → `message.tag`. */
function ownError(error: unknown): unknown {
  const match = isSkyrocketError(error) && error.field !== undefined ? messageField.exec(error.field) : null;
  if (match === null) return error;
  const e = error as SkyrocketError;
  return new SkyrocketError(e.code, e.message, { field: `message${match[2] ?? ''}`, cause: e });
}
