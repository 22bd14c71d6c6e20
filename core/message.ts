/**
 * The message model shared by every part of Skyrocket.
 *
 * A producer builds a `MessageInput`; the broker validates it, fills the system properties and
 * stores a `StoredMessage`. The names follow RocketMQ 5 (`messageGroup` is RocketMQ's sharding key
 * for FIFO topics; `deliveryAttempt` counts from 1).
 */

/** What a producer sends. */
export interface MessageInput {
  topic: string;
  body: Uint8Array;
  /** At most one tag; consumers filter on it (`a || b`). */
  tag?: string;
  /** Business keys for query by key. */
  keys?: string[];
  /** User properties; names that the broker reserves are rejected. */
  properties?: Record<string, string>;
  /** FIFO topics: messages of one group are stored in one queue and consumed in order. */
  messageGroup?: string;
  /** Delayed delivery: absolute epoch milliseconds. */
  deliverAt?: number;
  /** Delayed delivery: milliseconds from now. Exclusive with `deliverAt`. */
  delayMs?: number;
  /**
   * Delayed delivery by one of RocketMQ's 18 delay levels (1 s, 5 s, 10 s, 30 s, 1 m … 2 h; see
   * `delay-levels.ts`). Exclusive with `deliverAt` and `delayMs`; validation turns it into `deliverAt`.
   */
  delayLevel?: number;
}

/** What the broker adds when it stores a message. */
export interface SystemProperties {
  messageId: string;
  queueId: number;
  /** Offsets are JS numbers: exact up to 2^53 bytes (8 PiB), far beyond any one log. */
  queueOffset: number;
  /** Commit-log offset of the record. */
  physicalOffset: number;
  bornTimestamp: number;
  bornHost: string;
  storeTimestamp: number;
  storeHost: string;
  /** 1 on first delivery; counts up on every redelivery. */
  deliveryAttempt: number;
  transactionId?: string;
}

export interface StoredMessage extends SystemProperties {
  topic: string;
  body: Uint8Array;
  tag?: string;
  keys: string[];
  properties: Record<string, string>;
  messageGroup?: string;
  deliverAt?: number;
}

/** Topic message types (RocketMQ 5 `TopicMessageType`). */
export const messageTypes = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION'] as const;
export type MessageType = (typeof messageTypes)[number];
