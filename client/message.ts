/**
 * Messages as the SDK hands them out and takes them in, and their JSON form in the REST API v1.
 *
 * A body travels as a JSON string with an encoding beside it:
 *
 *   wire body := { "body": <text>, "bodyEncoding": "utf8" }     text is the body itself
 *              | { "body": <base64>, "bodyEncoding": "base64" } any bytes
 *
 * The SDK sends a `string` body as utf8 and a `Uint8Array` body as base64, so bytes are never
 * reinterpreted as text. The broker answers utf8 for bodies that are valid UTF-8 and base64 for
 * the rest; either way the SDK hands out a `Buffer`.
 */

/** A message to send. */
export interface OutgoingMessage {
  /** The payload: a string is sent as its UTF-8 bytes, a `Uint8Array` byte for byte. Not empty. */
  body: string | Uint8Array;
  /** One tag that consumers can filter on (`created || paid`). @default no tag */
  tag?: string;
  /** Business keys for query by key. @default no keys */
  keys?: string[];
  /** User properties; names starting with `__` are reserved for the broker. @default none */
  properties?: Record<string, string>;
  /** FIFO topics: messages of one group are stored in one queue, in order. @default none */
  messageGroup?: string;
  /**
   * Delayed delivery at this time (epoch milliseconds), up to 365 days ahead; a time that has
   * passed sends at once. Only DELAY topics take it (others answer
   * MESSAGE_PROPERTY_CONFLICT_WITH_TYPE). Give one of `deliverAt`, `delayMs` and `delayLevel`.
   * @default now
   */
  deliverAt?: number;
  /** Delayed delivery after this many milliseconds, up to 365 days. @default 0 */
  delayMs?: number;
  /** Delayed delivery by RocketMQ delay level, 1 (1 s) to 18 (2 h). @default none */
  delayLevel?: number;
}

/** What the broker stored for one sent message. */
export interface SendResult {
  messageId: string;
  queueId: number;
  /** -1 for a delayed message: its offset is given when it is delivered. */
  queueOffset: number;
  /** A delayed message's delivery time (epoch milliseconds); `cancel` it by `messageId` until then. */
  deliverAt?: number;
}

/** A message in the REST API's JSON. */
export interface MessageJson {
  messageId: string;
  topic: string;
  /** Text or base64 in JSON; the bytes themselves when the answer was a frame. */
  body: string | Buffer;
  bodyEncoding?: 'utf8' | 'base64';
  tag: string | null;
  keys: string[];
  properties: Record<string, string>;
  queueId: number;
  queueOffset: number;
  bornAt: number;
  storedAt: number;
  deliveryAttempt: number;
  messageGroup?: string;
  deliverAt?: number;
}

export interface ReceivedMessageJson extends MessageJson {
  receiptHandle: string;
}

/** A stored message, as pull, get by id and query by key return it. */
export class Message {
  readonly messageId: string;
  readonly topic: string;
  readonly body: Buffer;
  readonly tag: string | undefined;
  readonly keys: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
  readonly messageGroup: string | undefined;
  readonly queueId: number;
  readonly queueOffset: number;
  /** Epoch milliseconds when the broker took the send request. */
  readonly bornAt: number;
  /** Epoch milliseconds when the broker stored the message. */
  readonly storedAt: number;
  /** 1 on the first delivery to a consumer group, counting up on every redelivery. */
  readonly deliveryAttempt: number;
  /** When a delayed message was due (epoch milliseconds); undefined for others. */
  readonly deliverAt: number | undefined;

  constructor(json: MessageJson) {
    this.messageId = json.messageId;
    this.topic = json.topic;
    // A frame carries the body as bytes; JSON carries it as text or base64.
    this.body = Buffer.isBuffer(json.body) ? json.body : Buffer.from(json.body, json.bodyEncoding === 'base64' ? 'base64' : 'utf8');
    this.tag = json.tag ?? undefined;
    this.keys = json.keys;
    this.properties = json.properties;
    this.messageGroup = json.messageGroup;
    this.queueId = json.queueId;
    this.queueOffset = json.queueOffset;
    this.bornAt = json.bornAt;
    this.storedAt = json.storedAt;
    this.deliveryAttempt = json.deliveryAttempt;
    this.deliverAt = json.deliverAt;
  }

  /** The body decoded as UTF-8 (invalid sequences become U+FFFD). */
  bodyText(): string {
    return this.body.toString('utf8');
  }
}

/** A message delivered to a consumer group: it stays hidden from others until acked or its invisibility runs out. */
export class ReceivedMessage extends Message {
  /**
   * Names this delivery for ack and change of invisibility. Changing the invisibility issues a
   * new handle and voids this one; `SimpleConsumer.changeInvisibility` writes the new one here.
   */
  receiptHandle: string;

  constructor(json: ReceivedMessageJson) {
    super(json);
    this.receiptHandle = json.receiptHandle;
  }
}

/** The JSON the broker expects for one message of a send request. */
export function encodeMessage(message: OutgoingMessage): Record<string, unknown> {
  const { body, ...rest } = message;
  if (typeof body === 'string') return { ...rest, body, bodyEncoding: 'utf8' };
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return { ...rest, body: bytes.toString('base64'), bodyEncoding: 'base64' };
}

/** A message's fields for a frame's meta: everything but the body, which travels as bytes. */
export function messageMeta(message: OutgoingMessage): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const key in message) if (key !== 'body') meta[key] = (message as unknown as Record<string, unknown>)[key];
  return meta;
}

/** The body's size in bytes as the broker counts it (decoded, not base64). */
export function bodyByteLength(body: string | Uint8Array): number {
  return typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
}
