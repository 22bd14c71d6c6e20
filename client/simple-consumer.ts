import { limits } from '../core/limits.ts';
import { validateInvisibleMs, validateWaitMs } from '../core/validate.ts';
import type { ReceivedMessage } from './message.ts';
import { SkyrocketClient, type AckResult, type ClientOptions, type ReceiveInput, type RequestOptions } from './skyrocket-client.ts';

export interface SimpleConsumerOptions extends ClientOptions {
  /** The consumer group; it must exist (`SkyrocketClient.createGroup`). */
  group: string;
  topic: string;
  /** A tag expression: `created || paid`, or `*` for every message. @default every message */
  filter?: string;
  /** How long received messages stay hidden from other consumers: 10 s to 12 h. @default 30000 */
  invisibleMs?: number;
  /** Long poll: how long a receive waits for messages when none are there, up to 30 s. @default 20000 */
  waitMs?: number;
  /**
   * Names this consumer. BROADCASTING groups need one per consumer; in a CLUSTERING group it
   * makes the broker assign queues to consumers, and a consumer that goes away keeps its queues
   * until the broker stops hearing from it (30 s).
   * @default none: a clustering consumer takes from every queue
   */
  clientId?: string;
}

export interface ReceiveOptions extends RequestOptions {
  /** How long this receive waits for messages when none are there. @default the consumer's `waitMs` */
  waitMs?: number;
}

/**
 * The RocketMQ 5 "simple consumer" (SQS-like): receive hides messages for `invisibleMs`; ack
 * ends their delivery; a message not acked in time is delivered again with `deliveryAttempt`
 * counted up.
 */
export class SimpleConsumer {
  readonly client: SkyrocketClient;
  readonly group: string;
  readonly topic: string;
  readonly invisibleMs: number;
  readonly waitMs: number;
  readonly #filter: string | undefined;
  readonly #clientId: string | undefined;

  constructor(options: SimpleConsumerOptions) {
    this.client = new SkyrocketClient(options);
    this.group = options.group;
    this.topic = options.topic;
    this.invisibleMs = validateInvisibleMs(options.invisibleMs ?? 30_000);
    this.waitMs = validateWaitMs(options.waitMs ?? 20_000);
    this.#filter = options.filter;
    this.#clientId = options.clientId;
  }

  /** Receives up to `max` messages (at most 1024), waiting up to `waitMs` when none are there. */
  async receive(max: number = limits.receiveMessagesDefaultCount, options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    return this.client.receive(this.group, this.#input(max, options), { signal: options.signal });
  }

  /**
   * Acks `messages` (the previous batch, say) and receives the next ones in one request, which
   * saves the ack's round trip. Refused handles are listed in `ackFailed`; nothing is thrown for
   * them, since the receive took place.
   */
  async ackAndReceive(
    messages: ReadonlyArray<ReceivedMessage | string>,
    max: number = limits.receiveMessagesDefaultCount,
    options: ReceiveOptions = {},
  ): Promise<{ messages: ReceivedMessage[]; ackFailed: AckResult['failed'] }> {
    const handles = messages.map((m: ReceivedMessage | string) => (typeof m === 'string' ? m : m.receiptHandle));
    return this.client.ackAndReceive(this.group, handles, this.#input(max, options), { signal: options.signal });
  }

  #input(max: number, options: ReceiveOptions): ReceiveInput {
    return {
      topic: this.topic,
      max,
      invisibleMs: this.invisibleMs,
      waitMs: options.waitMs ?? this.waitMs,
      filter: this.#filter,
      clientId: this.#clientId,
    };
  }

  /**
   * Acks messages (or bare receipt handles) in one request (none for an empty list). Refused
   * handles are listed in `failed`; when every handle is refused, the call throws the first refusal.
   */
  async ack(messages: ReceivedMessage | string | ReadonlyArray<ReceivedMessage | string>): Promise<AckResult> {
    const list = Array.isArray(messages) ? messages : [messages];
    const handles = list.map((m: ReceivedMessage | string) => (typeof m === 'string' ? m : m.receiptHandle));
    if (handles.length === 0) return { acked: [], failed: [] };
    return this.client.ack(this.group, this.topic, handles);
  }

  /**
   * Hides the message for `invisibleMs` from now (10 s to 12 h) instead of what is left of its
   * invisibility. The broker issues a new receipt handle; it is written to `message.receiptHandle`,
   * so ack the message object (not a handle copied earlier).
   */
  async changeInvisibility(message: ReceivedMessage, invisibleMs: number): Promise<void> {
    const changed = await this.client.changeInvisibility(this.group, {
      topic: this.topic,
      receiptHandle: message.receiptHandle,
      invisibleMs,
    });
    message.receiptHandle = changed.receiptHandle;
  }
}
