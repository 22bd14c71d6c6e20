import { SkyrocketError, isErrorCode, isSkyrocketError, type ErrorCode } from '../core/errors.ts';
import type { MessageType } from '../core/message.ts';
import { decodeDeliveries, deliveriesMediaType, namesDeliveries } from '../core/delivery-frame.ts';
import { decodeFrame, encodeFrame, frameMediaType, namesFrame } from '../core/frame.ts';
import { clientChannels, publish, type RequestEvent } from './diagnostics.ts';
import {
  Message,
  ReceivedMessage,
  messageMeta,
  type MessageJson,
  type OutgoingMessage,
  type ReceivedMessageJson,
  type SendResult,
} from './message.ts';
import { ExchangeFailure, fetchTransport, nodeTransport, type Answer, type Transport } from './transport.ts';
import { wireTransport } from './wire-transport.ts';
import { wireScheme, wireTlsScheme } from '../core/wire.ts';

/** Clients share one wire connection per endpoint (as HTTP clients share keep-alive agents). */
let sharedWire: Transport | undefined;
function wireTransportFor(ca: ClientOptions['ca']): Transport {
  if (ca !== undefined) return wireTransport({ ca });
  return (sharedWire ??= wireTransport());
}

/** A receive asks for the binary deliveries first; a broker without them answers a frame or JSON. */
const receiveAccept = `${deliveriesMediaType}, ${frameMediaType}, application/json`;

export interface ClientOptions {
  /**
   * Base URL of any broker or of the load balancer in front of them: `https://mq.example.com`.
   * `skyrocket://host:10911` (TLS: `skyrockets://`) speaks the wire protocol instead of HTTP: the
   * same API on one long-lived connection, for the lowest latency and CPU per request.
   */
  endpoint: string;
  /** An API key; it is sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /**
   * How long one request may take before it fails with REQUEST_TIMEOUT (retriable). A receive
   * that long-polls gets its `waitMs` on top.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * A `fetch` to send requests with instead of `node:http`: a wrapper can count, trace or
   * fault-inject them.
   * @default none: requests go through node:http / node:https agents that keep connections alive
   */
  fetch?: typeof globalThis.fetch;
  /**
   * Certificate authorities (PEM) to trust for an `https://` endpoint, beside Node's own: for a
   * broker with a self-signed or private certificate. Not used with `fetch`.
   * @default Node's bundled CAs (and NODE_EXTRA_CA_CERTS)
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface Topic {
  name: string;
  type: MessageType;
  queues: number;
  readable: boolean;
  writable: boolean;
}

export interface CreateTopicInput {
  name: string;
  /** @default 8 */
  queues?: number;
  /** @default 'NORMAL' */
  type?: MessageType;
}

/** Which broker group owns each queue of a topic, and where that group's leader listens. */
export interface TopicRoute {
  topic: string;
  type: MessageType;
  queues: Array<{ queueId: number; brokerGroup: string; leader: string | null }>;
}

export type ConsumeMode = 'CLUSTERING' | 'BROADCASTING';

export interface Group {
  name: string;
  mode: ConsumeMode;
  orderly: boolean;
  maxDeliveryAttempts: number;
}

export interface CreateGroupInput {
  name: string;
  /** CLUSTERING shares the messages among the group's consumers; BROADCASTING gives each consumer all. @default 'CLUSTERING' */
  mode?: ConsumeMode;
  /** @default false */
  orderly?: boolean;
  /** @default 16 */
  maxDeliveryAttempts?: number;
}

export interface QueueLag {
  topic: string;
  queueId: number;
  committedOffset: number;
  maxOffset: number;
  lag: number;
  inflight: number;
}

export interface GroupStatus extends Group {
  totalLag: number;
  lag: QueueLag[];
}

export interface ReceiveInput {
  topic: string;
  /** Most messages to return. @default 32 */
  max?: number;
  /** How long the messages stay hidden from other receives: 10 s to 12 h. @default 30000 */
  invisibleMs?: number;
  /** Long poll: how long to wait for a message when none is there, up to 30 s. @default 0 */
  waitMs?: number;
  /** A tag expression (`created || paid`, `*`). @default every message */
  filter?: string;
  /** Names the consumer: required for BROADCASTING groups. @default none */
  clientId?: string;
}

export interface AckResult {
  acked: string[];
  /** Handles the broker refused (expired, already acked, of another group). */
  failed: Array<{ receiptHandle: string; code: ErrorCode; message: string }>;
}

export interface ChangeInvisibilityInput {
  topic: string;
  receiptHandle: string;
  /** 10 s to 12 h from now. */
  invisibleMs: number;
}

export interface ChangeInvisibilityResult {
  /** The new handle; the old one no longer acks. */
  receiptHandle: string;
  /** Epoch milliseconds when the message becomes visible again. */
  visibleAt: number;
}

export interface PullInput {
  /** @default 0 */
  offset?: number;
  /** @default 32 */
  max?: number;
}

export interface PullResult {
  status: 'FOUND' | 'NO_NEW_MESSAGE' | 'NO_MATCHED_MESSAGE' | 'OFFSET_OVERFLOW';
  messages: Message[];
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

export interface QueueOffsets {
  queueId: number;
  committedOffset: number;
  minOffset: number;
  maxOffset: number;
}

export interface SetOffsetInput {
  topic: string;
  queueId: number;
  offset: number;
}

export interface SetOffsetResult {
  group: string;
  topic: string;
  queueId: number;
  committedOffset: number;
}

export interface QueryByKeyInput {
  /** Epoch milliseconds, inclusive. @default 0 */
  from?: number;
  /** Epoch milliseconds, inclusive. @default no bound */
  to?: number;
}

export interface RequestOptions {
  /**
   * Cancels the request; the call then rejects with the signal's reason, not a SkyrocketError.
   * @default none
   */
  signal?: AbortSignal;
}

/**
 * The REST API v1, one typed method per endpoint, without retries. Every failure is a
 * `SkyrocketError`: the broker's own code, or SERVICE_UNAVAILABLE when no answer came and
 * REQUEST_TIMEOUT when it came too late (both retriable).
 */
export interface NackResult {
  nacked: Array<{ receiptHandle: string; visibleAt: number }>;
  failed: Array<{ receiptHandle: unknown; code: string; message: string }>;
}

export interface DeadLetter {
  message: Message;
  /** The topic the message was consumed from. */
  originTopic: string;
  brokerGroup: string;
}

export interface RedriveResult {
  redriven: number;
  failed: Array<{ messageId: string; code: string; message: string }>;
}

export class SkyrocketClient {
  readonly endpoint: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #transport: Transport;

  constructor(options: ClientOptions) {
    this.endpoint = new URL(options.endpoint).href.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const wire = this.endpoint.startsWith(wireScheme) || this.endpoint.startsWith(wireTlsScheme);
    if (!wire && !/^https?:/.test(this.endpoint)) {
      throw new SkyrocketError('INVALID_ARGUMENT', `endpoint ${this.endpoint}: use http://, https://, skyrocket:// or skyrockets://`, { field: 'endpoint' });
    }
    if (wire && options.fetch !== undefined) {
      throw new SkyrocketError('INVALID_ARGUMENT', `a ${wireScheme}// endpoint does not go through fetch: leave out the fetch option`, { field: 'fetch' });
    }
    this.#transport = wire
      ? wireTransportFor(options.ca)
      : options.fetch === undefined
        ? nodeTransport({ ca: options.ca })
        : fetchTransport(options.fetch);
  }

  // Topics.

  async createTopic(input: CreateTopicInput): Promise<Topic> {
    return this.#request('POST', '/v1/topics', input);
  }

  async listTopics(): Promise<Topic[]> {
    return (await this.#request<{ topics: Topic[] }>('GET', '/v1/topics')).topics;
  }

  async getTopic(name: string): Promise<Topic> {
    return this.#request('GET', `/v1/topics/${enc(name)}`);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/topics/${enc(name)}`);
  }

  async getRoute(topic: string): Promise<TopicRoute> {
    return this.#request('GET', `/v1/topics/${enc(topic)}/route`);
  }

  /** Sends one batch: stored whole or not at all, on one broker group. */
  async send(topic: string, messages: readonly OutgoingMessage[]): Promise<SendResult[]> {
    const frame = encodeFrame(
      messages.map(messageMeta),
      messages.map((m) => m.body),
    );
    return (await this.#request<{ results: SendResult[] }>('POST', `/v1/topics/${enc(topic)}/messages`, undefined, { frame })).results;
  }

  // Consumer groups.

  async createGroup(input: CreateGroupInput): Promise<Group> {
    return this.#request('POST', '/v1/groups', input);
  }

  async listGroups(): Promise<Group[]> {
    return (await this.#request<{ groups: Group[] }>('GET', '/v1/groups')).groups;
  }

  /** The group with its lag per topic and queue. */
  async getGroup(name: string): Promise<GroupStatus> {
    return this.#request('GET', `/v1/groups/${enc(name)}`);
  }

  async deleteGroup(name: string): Promise<void> {
    await this.#request('DELETE', `/v1/groups/${enc(name)}`);
  }

  // Consume with receipt handles.

  async receive(group: string, input: ReceiveInput, options: RequestOptions = {}): Promise<ReceivedMessage[]> {
    return (await this.#receive(group, input, options)).messages;
  }

  /**
   * Acks deliveries and receives, in one request: the broker acks `ackReceiptHandles` first (as
   * `ack` does), then receives. The handles it refused are in `ackFailed`; unlike `ack`, the call
   * does not throw when it refuses all of them (the receive still happened).
   */
  async ackAndReceive(
    group: string,
    ackReceiptHandles: readonly string[],
    input: ReceiveInput,
    options: RequestOptions = {},
  ): Promise<{ messages: ReceivedMessage[]; ackFailed: AckResult['failed'] }> {
    if (ackReceiptHandles.length === 0) return { messages: await this.receive(group, input, options), ackFailed: [] };
    const reply = await this.#receive(group, { ...input, ackReceiptHandles }, options);
    return { messages: reply.messages, ackFailed: reply.ackFailed ?? [] };
  }

  async #receive(
    group: string,
    input: ReceiveInput & { ackReceiptHandles?: readonly string[] },
    options: RequestOptions,
  ): Promise<{ messages: ReceivedMessage[]; ackFailed?: AckResult['failed'] }> {
    const { filter, ...rest } = input;
    const body = filter === undefined ? rest : { ...rest, filter: { type: 'TAG', expression: filter } };
    const reply = await this.#request<{ messages: ReceivedMessageJson[]; ackFailed?: AckResult['failed'] }>(
      'POST',
      `/v1/groups/${enc(group)}/receive`,
      body,
      { ...options, waitMs: input.waitMs ?? 0, acceptFrame: true },
    );
    return { messages: reply.messages.map((m) => new ReceivedMessage(m)), ackFailed: reply.ackFailed };
  }

  /**
   * Acks deliveries. Handles the broker refuses are listed in `failed`; when it refuses all of
   * them the call throws the first refusal instead.
   */
  async ack(group: string, topic: string, receiptHandles: readonly string[]): Promise<AckResult> {
    // The broker answers a count and the refusals; the acked handles are the others sent.
    const reply = await this.#request<{ ackedCount: number; failed: AckResult['failed'] }>('POST', `/v1/groups/${enc(group)}/ack`, {
      topic,
      receiptHandles,
      listAcked: false,
    });
    if (reply.failed.length === 0) return { acked: [...receiptHandles], failed: [] };
    // One refusal takes out one occurrence (a handle sent twice is acked once and refused once).
    const refused = new Map<string, number>();
    for (const f of reply.failed) refused.set(f.receiptHandle, (refused.get(f.receiptHandle) ?? 0) + 1);
    const acked: string[] = [];
    for (const h of receiptHandles) {
      const n = refused.get(h) ?? 0;
      if (n > 0) refused.set(h, n - 1);
      else acked.push(h);
    }
    return { acked, failed: reply.failed };
  }

  async changeInvisibility(group: string, input: ChangeInvisibilityInput): Promise<ChangeInvisibilityResult> {
    return this.#request('POST', `/v1/groups/${enc(group)}/change-invisibility`, input);
  }

  /**
   * Reports received messages as failed: each comes back after RocketMQ's retry backoff for its
   * attempt (10 s, 30 s, 1 m, … 2 h) or after `delayMs`, and goes to the group's dead-letter topic
   * once its attempts are used up.
   */
  async nack(group: string, topic: string, receiptHandles: readonly string[], delayMs?: number): Promise<NackResult> {
    const body: Record<string, unknown> = { topic, receiptHandles };
    if (delayMs !== undefined) body['delayMs'] = delayMs;
    return this.#request('POST', `/v1/groups/${enc(group)}/nack`, body);
  }

  /** The group's dead letters (messages that used up their delivery attempts), oldest first. */
  async listDeadLetters(group: string, max = 32): Promise<DeadLetter[]> {
    const reply = await this.#request<{ messages: Array<MessageJson & { originTopic: string; brokerGroup: string }> }>(
      'GET',
      `/v1/groups/${enc(group)}/dlq?${new URLSearchParams({ max: String(max) })}`,
    );
    return reply.messages.map((m) => ({ message: new Message(m), originTopic: m.originTopic, brokerGroup: m.brokerGroup }));
  }

  /** Sends dead letters back to their topics: all of them, or those with these ids. */
  async redriveDeadLetters(group: string, messageIds?: readonly string[]): Promise<RedriveResult> {
    return this.#request('POST', `/v1/groups/${enc(group)}/dlq/redrive`, messageIds === undefined ? {} : { messageIds });
  }

  // Consume by offset.

  async pull(topic: string, queueId: number, input: PullInput = {}): Promise<PullResult> {
    const query = new URLSearchParams({ offset: String(input.offset ?? 0), max: String(input.max ?? 32) });
    const reply = await this.#request<Omit<PullResult, 'messages'> & { messages: MessageJson[] }>(
      'GET',
      `/v1/topics/${enc(topic)}/queues/${queueId}/messages?${query}`,
    );
    return { ...reply, messages: reply.messages.map((m) => new Message(m)) };
  }

  async getOffsets(group: string, topic: string): Promise<QueueOffsets[]> {
    const path = `/v1/groups/${enc(group)}/offsets?${new URLSearchParams({ topic })}`;
    return (await this.#request<{ offsets: QueueOffsets[] }>('GET', path)).offsets;
  }

  async setOffset(group: string, input: SetOffsetInput): Promise<SetOffsetResult> {
    return this.#request('PUT', `/v1/groups/${enc(group)}/offsets`, input);
  }

  // Lookup.

  async getMessage(messageId: string): Promise<Message> {
    return new Message(await this.#request<MessageJson>('GET', `/v1/messages/${enc(messageId)}`));
  }

  /**
   * Cancels a delayed message before it is delivered (needs publish permission on its topic).
   * @throws SkyrocketError MESSAGE_NOT_FOUND when no such message is scheduled: the id is unknown,
   *   or the message was delivered or cancelled already.
   */
  async cancel(messageId: string): Promise<void> {
    await this.#request('DELETE', `/v1/messages/${enc(messageId)}`);
  }

  /** Messages of the topic with this key, newest first (at most 64 per broker group). */
  async queryByKey(topic: string, key: string, input: QueryByKeyInput = {}): Promise<Message[]> {
    const query = new URLSearchParams({ key });
    if (input.from !== undefined) query.set('from', String(input.from));
    if (input.to !== undefined) query.set('to', String(input.to));
    const reply = await this.#request<{ messages: MessageJson[] }>('GET', `/v1/topics/${enc(topic)}/messages?${query}`);
    return reply.messages.map((m) => new Message(m));
  }

  /**
   * A raw REST call, for endpoints without a typed method here (the transaction endpoints that
   * `TransactionProducer` uses): JSON in, JSON out, the same errors as every other method.
   * `waitMs` extends the timeout for a long poll.
   */
  async call<T>(method: string, path: string, body?: unknown, options: RequestOptions & { waitMs?: number } = {}): Promise<T> {
    return this.#request<T>(method, path, body, options);
  }

  async #request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: RequestOptions & { waitMs?: number; frame?: Buffer; acceptFrame?: boolean } = {},
  ): Promise<T> {
    const started = performance.now();
    const timeoutMs = this.#timeoutMs + (options.waitMs ?? 0);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: options.acceptFrame === true ? receiveAccept : 'application/json',
    };
    let payload: string | Buffer | undefined;
    if (options.frame !== undefined) {
      headers['content-type'] = frameMediaType;
      payload = options.frame;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let status: number | undefined;
    let failure: unknown;
    try {
      let answer: Answer;
      try {
        answer = await this.#transport({ method, base: this.endpoint, path, headers, body: payload, timeoutMs, signal: options.signal });
      } catch (error) {
        throw this.#failure(error, options.signal, timeoutMs);
      }
      status = answer.status;
      if (status < 200 || status >= 300) throw errorFromResponse(status, answer.body.toString('utf8'));
      if (namesDeliveries(answer.contentType)) {
        try {
          return decodeDeliveries(answer.body) as T;
        } catch (error) {
          throw new SkyrocketError('INTERNAL_ERROR', `${method} ${path} answered ${status} with malformed deliveries`, { cause: error });
        }
      }
      if (namesFrame(answer.contentType)) {
        try {
          const frame = decodeFrame(answer.body);
          // Fields the frame shares or leaves at their default (core/frame.ts).
          const topic = frame.meta['topic'];
          frame.meta.messages.forEach((m, i) => {
            m['body'] = frame.bodies[i];
            m['topic'] ??= topic;
            m['tag'] ??= null;
            m['keys'] ??= [];
            m['properties'] ??= {};
          });
          return frame.meta as T;
        } catch (error) {
          throw new SkyrocketError('INTERNAL_ERROR', `${method} ${path} answered ${status} with a malformed frame`, { cause: error });
        }
      }
      try {
        return (answer.body.length === 0 ? undefined : JSON.parse(answer.body.toString('utf8'))) as T;
      } catch (error) {
        throw new SkyrocketError('INTERNAL_ERROR', `${method} ${path} answered ${status} with a body that is not JSON`, { cause: error });
      }
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      if (clientChannels.request.hasSubscribers) {
        const event: RequestEvent = { method, path, durationMs: performance.now() - started };
        if (status !== undefined) event.status = status;
        if (failure !== undefined) event.error = failure;
        publish(clientChannels.request, event);
      }
    }
  }

  /** Names a failure without an answer: the caller's abort, a timeout, or no answer at all. */
  #failure(error: unknown, callerSignal: AbortSignal | undefined, timeoutMs: number): unknown {
    if (isSkyrocketError(error)) return error;
    if (callerSignal?.aborted === true) return callerSignal.reason;
    if (error instanceof ExchangeFailure && error.kind === 'timeout') {
      return new SkyrocketError('REQUEST_TIMEOUT', `${this.endpoint} did not answer within ${timeoutMs} ms`, { cause: error });
    }
    const reason = error instanceof ExchangeFailure ? error.message : (error as Error).message;
    return new SkyrocketError('SERVICE_UNAVAILABLE', `could not reach ${this.endpoint}: ${reason}`, { cause: error });
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

/**
 * The error of a non-2xx answer. The broker always sends `{"error":{code,message,field?}}`; a
 * proxy or load balancer in between may not, and then the HTTP status picks the code.
 */
export function errorFromResponse(status: number, text: string): SkyrocketError {
  let error: { code?: unknown; message?: unknown; field?: unknown } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    // not JSON: a proxy's error page
  }
  const message = typeof error?.message === 'string' ? error.message : text.slice(0, 200);
  if (isErrorCode(error?.code)) {
    return new SkyrocketError(error.code, message, { field: typeof error.field === 'string' ? error.field : undefined });
  }
  return new SkyrocketError(codeForStatus(status), `HTTP ${status}${error?.code === undefined ? '' : ` ${String(error.code)}`}: ${message}`);
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 408:
      return 'REQUEST_TIMEOUT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'TOO_MANY_REQUESTS';
    case 502:
    case 503:
      return 'SERVICE_UNAVAILABLE';
    case 504:
      return 'UPSTREAM_TIMEOUT';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
  }
}
