import { timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { isUtf8 } from 'node:buffer';
import { BoundedMap } from '../../core/bounded-map.ts';
import { SkyrocketError, isErrorCode } from '../../core/errors.ts';
import { decodeFrame, encodeFrame, frameMediaType, namesFrame, type Frame } from '../../core/frame.ts';
import { deliveriesMediaType, encodeDeliveries, namesDeliveries, type DeliveryFields } from '../../core/delivery-frame.ts';
import { limits } from '../../core/limits.ts';
import { decodeMessageId } from '../../core/message-id.ts';
import type { MessageInput, StoredMessage } from '../../core/message.ts';
import { messageTypes } from '../../core/message.ts';
import { compileSqlFilter, sqlFilterProperties } from '../../core/sql-filter.ts';
import { parseTagExpression } from '../../core/tag-filter.ts';
import {
  validateBatch,
  validateGroupName,
  validateInvisibleMs,
  validateMaxMessages,
  validateTopicName,
  validateWaitMs,
} from '../../core/validate.ts';
import { BufferPool } from './api/buffer-pool.ts';
import { readBody, readJson, requestTarget, Router, type ApiRequest, type ApiResponse, type RequestTarget, sendError, sendJson, toSkyrocketError, type Params } from './api/http-kit.ts';
import { WireServer } from './api/wire-server.ts';
import { openApiDocument } from './api/openapi.ts';
import type { BrokerConfig } from './config.ts';
import { ConsumerGroups, Delivery } from './consume/consumer-groups.ts';
import { DeadLetters } from './consume/dead-letters.ts';
import { parseReceiptHandle, type ReceiptHandle } from './consume/receipt-handle.ts';
import { authorize, type Action, type Directory, type GroupInfo, type Principal, type TopicRoute } from './directory.ts';
import { BrokerMetrics } from './metrics.ts';
import { MessageStore, type RecordInput } from './store/index.ts';
import { TimerService, parseMoveRequest, timerTopic } from './timer/index.ts';
import type { TimerIndex } from '../../namesrv/timers.ts';
import { createDispatcher, type DispatchConfig, type Dispatcher, type LambdaInvoker } from './dispatch/index.ts';
import { checkLambdaSubscription } from '../../namesrv/lambda-subscription.ts';
import {
  IndexWriter,
  TransactionService,
  decodeTransactionId,
  parseTransactionalSend,
  resolvers,
  transactionTopics,
  type CheckRequest,
  type Outcome,
  type ResolvedBy,
  type TransactionRegistry,
  type TransactionStatus,
} from './transaction/index.ts';
import { checkProducerGroupName, type ProducerGroup } from '../../namesrv/transactions.ts';

/** Where a broker's log lines go: pino in the process, anything with these methods in tests. */
export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {} };

export interface BrokerOptions {
  config: BrokerConfig;
  directory: Directory;
  /** Where far delayed messages are parked (namesrv/timers.ts). @default none: every timer waits in the wheel */
  timerIndex?: TimerIndex | undefined;
  /** Producer-group registrations and the index of unresolved transactions (namesrv/transactions.ts). */
  transactionRegistry: TransactionRegistry;
  logger?: BrokerLogger;
  now?: () => number;
  /** Settings of the Lambda dispatcher (dispatch/). @default defaultDispatchConfig */
  dispatch?: DispatchConfig;
  /** Invokes Lambda consumers. @default the AWS SDK, at `dispatch.lambdaEndpoint` */
  lambdaInvoker?: LambdaInvoker;
}

interface ReceiveParams {
  group: GroupInfo;
  route: TopicRoute;
  max: number;
  invisibleMs: number;
  tags: ReadonlySet<string> | undefined;
  sql: ((m: StoredMessage) => boolean) | undefined;
  /** The SQL92 expression behind `sql`, to tell polls with the same filter apart. */
  sqlExpression?: string | undefined;
  clientId: string | undefined;
}

interface RequestContext {
  principal: Principal;
  /** A request forwarded by another broker of the cluster: serve local queues only. */
  internal: boolean;
}

const internalHeader = 'x-skyrocket-internal';
const principalHeader = 'x-skyrocket-principal';
/** Base64 bodies inflate by 4/3; a full batch of bodies plus JSON framing fits in this. */
const maxRequestBytes = Math.ceil((limits.sendBatchMaxBytes * 4) / 3) + 4 * 1024 * 1024;

/**
 * One broker process: the store, the consumption state of the queues it owns, and the REST API.
 * Any broker accepts any request; one that concerns queues of another broker group is forwarded to
 * that group's leader, so a load balancer can spread clients over all brokers.
 */
export class Broker {
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  readonly groups: ConsumerGroups;
  readonly deadLetters: DeadLetters;
  /** Pushes batches to the Lambda functions that groups subscribe. */
  readonly dispatcher: Dispatcher;
  readonly transactions: TransactionService;
  readonly metrics = new BrokerMetrics();
  /** Delayed messages; started in `start`, before the broker serves. */
  #timers!: TimerService;
  readonly #registry: TransactionRegistry;
  readonly #transactionIndex: IndexWriter;
  readonly #directory: Directory;
  readonly #log: BrokerLogger;
  readonly #now: () => number;
  readonly #server: http.Server;
  readonly #wire: WireServer | undefined;
  readonly #router = new Router();
  readonly #requestTimers = new BoundedMap<string, { observe(seconds: number): void }>(1024);
  /** Long polls waiting per topic; `key` names receives that would take the same messages. */
  readonly #waiters = new Map<string, Set<{ wake: () => void; key: string | undefined }>>();
  readonly #roundRobin = new Map<string, number>();
  #stopping = false;
  #inflightRequests = 0;
  #url = '';

  private constructor(options: BrokerOptions, store: MessageStore, transactions: TransactionService) {
    this.config = options.config;
    this.#directory = options.directory;
    this.#log = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.store = store;
    this.groups = new ConsumerGroups({
      store,
      brokerGroup: this.config.brokerGroup,
      dataDir: path.join(this.config.dataDir, 'consume'),
      now: this.#now,
    });
    this.deadLetters = new DeadLetters(store, path.join(this.config.dataDir, 'consume'));
    this.dispatcher = createDispatcher({
      groups: this.groups,
      brokerGroup: this.config.brokerGroup,
      directory: this.#directory,
      registry: this.metrics.registry,
      log: this.#log,
      config: options.dispatch,
      invoker: options.lambdaInvoker,
      now: this.#now,
    });
    this.transactions = transactions;
    this.#registry = options.transactionRegistry;
    this.#transactionIndex = new IndexWriter({
      index: this.#registry,
      brokerGroup: this.config.brokerGroup,
      isPending: (id) => transactions.isPending(id),
      onError: (err, what) => this.#log.warn({ err, brokerGroup: this.config.brokerGroup }, `transaction index: could not ${what}; retrying`),
    });
    transactions.listener = this.#transactionIndex;
    transactions.onCommitted = (topic) => this.#notify(topic);
    const handler = (req: ApiRequest, res: ApiResponse): void => void this.#handle(req, res);
    this.#server = this.config.tls
      ? https.createServer({ cert: this.config.tls.cert, key: this.config.tls.key }, handler)
      : http.createServer(handler);
    this.#server.keepAliveTimeout = 65_000;
    if (this.config.wirePort !== undefined) this.#wire = new WireServer(handler, this.config.tls);
    this.#routes();
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    const { config } = options;
    const store = await MessageStore.open({
      dataDir: path.join(config.dataDir, 'store'),
      brokerId: config.brokerId,
      storeHost: new URL(config.advertisedUrl).host,
      flushMode: config.flushMode,
      segmentSizeBytes: config.segmentSizeBytes,
      retentionMs: config.retentionMs,
    });
    const transactions = await TransactionService.open({
      store,
      brokerGroup: config.brokerGroup,
      dataDir: path.join(config.dataDir, 'transaction'),
      host: new URL(config.advertisedUrl).host,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    const broker = new Broker(options, store, transactions);
    broker.#reconcileTransactionIndex();
    broker.#timers = await TimerService.start({
      store,
      dataDir: path.join(config.dataDir, 'timer'),
      brokerGroup: config.brokerGroup,
      horizonMs: config.timerHorizonMs,
      index: options.timerIndex,
      topicExists: (topic) => broker.#topicExists(topic),
      onDelivered: (topics) => {
        for (const topic of topics) broker.#notify(topic);
      },
      log: broker.#log,
      registry: broker.metrics.registry,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    await new Promise<void>((resolve, reject) => {
      broker.#server.once('error', reject);
      broker.#server.listen(config.port, config.host, () => resolve());
    });
    if (broker.#wire !== undefined) await broker.#wire.listen(config.wirePort as number, config.host);
    const port = (broker.#server.address() as AddressInfo).port;
    broker.#url = config.port === 0 ? config.advertisedUrl.replace(/:\d+$/, `:${port}`) : config.advertisedUrl;
    broker.dispatcher.start();
    broker.#log.info(
      { brokerId: config.brokerId, brokerGroup: config.brokerGroup, url: broker.#url, wirePort: broker.wirePort, recovery: store.recovery },
      'broker started',
    );
    return broker;
  }

  /** The URL this broker answers on (with the real port when it was started on port 0). */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The port of the wire protocol (core/wire.ts), if it is on. */
  get wirePort(): number | undefined {
    return this.#wire?.port;
  }

  /** The timing wheel of delayed messages. */
  get timers(): TimerService {
    return this.#timers;
  }

  // ---------------------------------------------------------------------------------------------
  // Routing and authentication

  #routes(): void {
    const r = this.#router;
    r.on('GET', '/v1/openapi.json', async (_req, res) => sendJson(res, 200, openApiDocument));
    r.on('GET', '/metrics', async (req, res) => {
      await this.#auth(req, 'admin', '*');
      this.#updateLagMetrics();
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(text);
    });
    r.on('GET', '/readyz', async (req, res) => {
      await this.#auth(req, 'admin', '*');
      sendJson(res, this.#stopping ? 503 : 200, { status: this.#stopping ? 'stopping' : 'ready' });
    });
    r.on('POST', '/v1/topics', (req, res) => this.#createTopic(req, res));
    r.on('GET', '/v1/topics', (req, res) => this.#listTopics(req, res));
    r.on('GET', '/v1/topics/:topic', (req, res, p) => this.#getTopic(req, res, p));
    r.on('DELETE', '/v1/topics/:topic', (req, res, p) => this.#deleteTopic(req, res, p));
    r.on('GET', '/v1/topics/:topic/route', (req, res, p) => this.#topicRoute(req, res, p));
    r.on('POST', '/v1/topics/:topic/messages', (req, res, p) => this.#send(req, res, p));
    r.on('GET', '/v1/topics/:topic/messages', (req, res, p, url) => this.#queryByKey(req, res, p, url));
    r.on('GET', '/v1/topics/:topic/queues/:queueId/messages', (req, res, p, url) => this.#pull(req, res, p, url));
    r.on('POST', '/v1/groups', (req, res) => this.#createGroup(req, res));
    r.on('GET', '/v1/groups', (req, res) => this.#listGroups(req, res));
    r.on('GET', '/v1/groups/:group', (req, res, p) => this.#getGroup(req, res, p));
    r.on('DELETE', '/v1/groups/:group', (req, res, p) => this.#deleteGroup(req, res, p));
    r.on('POST', '/v1/groups/:group/receive', (req, res, p) => this.#receive(req, res, p));
    r.on('POST', '/v1/groups/:group/ack', (req, res, p) => this.#ack(req, res, p));
    r.on('POST', '/v1/groups/:group/change-invisibility', (req, res, p) => this.#changeInvisibility(req, res, p));
    r.on('POST', '/v1/groups/:group/nack', (req, res, p) => this.#nack(req, res, p));
    r.on('GET', '/v1/groups/:group/dlq', (req, res, p, url) => this.#listDeadLetters(req, res, p, url));
    r.on('POST', '/v1/groups/:group/dlq/redrive', (req, res, p) => this.#redrive(req, res, p));
    r.on('GET', '/v1/groups/:group/offsets', (req, res, p, url) => this.#getOffsets(req, res, p, url));
    r.on('PUT', '/v1/groups/:group/offsets', (req, res, p) => this.#putOffsets(req, res, p));
    r.on('PUT', '/v1/groups/:group/lambda-subscriptions/:topic', (req, res, p) => this.#putLambdaSubscription(req, res, p));
    r.on('DELETE', '/v1/groups/:group/lambda-subscriptions/:topic', (req, res, p) => this.#deleteLambdaSubscription(req, res, p));
    r.on('GET', '/v1/messages/:messageId', (req, res, p) => this.#getMessage(req, res, p));
    r.on('DELETE', '/v1/messages/:messageId', (req, res, p) => this.#cancelMessage(req, res, p));
    r.on('POST', '/v1/internal/timers', (req, res) => this.#moveTimers(req, res));
    r.on('POST', '/v1/producer-groups', (req, res) => this.#createProducerGroup(req, res));
    r.on('GET', '/v1/producer-groups', (req, res) => this.#listProducerGroups(req, res));
    r.on('GET', '/v1/producer-groups/:producerGroup', (req, res, p) => this.#getProducerGroup(req, res, p));
    r.on('DELETE', '/v1/producer-groups/:producerGroup', (req, res, p) => this.#deleteProducerGroup(req, res, p));
    r.on('POST', '/v1/producer-groups/:producerGroup/checks', (req, res, p) => this.#pollChecks(req, res, p));
    r.on('GET', '/v1/transactions/:transactionId', (req, res, p, url) => this.#getTransaction(req, res, p, url));
    r.on('POST', '/v1/transactions/:transactionId/commit', (req, res, p) => this.#commitTransaction(req, res, p));
    r.on('POST', '/v1/transactions/:transactionId/rollback', (req, res, p) => this.#rollbackTransaction(req, res, p));
    r.on('POST', '/v1/transactions/:transactionId/check', (req, res, p) => this.#checkTransaction(req, res, p));
  }

  async #handle(req: ApiRequest, res: ApiResponse): Promise<void> {
    const started = performance.now();
    let route = 'unmatched';
    this.#inflightRequests++;
    try {
      const url = requestTarget(req.url);
      if (req.method === 'GET' && url.pathname === '/healthz') {
        sendJson(res, 200, { status: 'ok', brokerId: this.config.brokerId, brokerGroup: this.config.brokerGroup });
        return;
      }
      if (this.#stopping && url.pathname !== '/readyz') {
        res.setHeader('connection', 'close');
        throw new SkyrocketError('SERVICE_UNAVAILABLE', 'the broker is shutting down; retry on another broker');
      }
      const match = this.#router.match(req.method ?? 'GET', url.pathname);
      if (match === 'NOT_FOUND') throw new SkyrocketError('NOT_FOUND', `no such endpoint: ${req.method} ${url.pathname}`);
      if (match === 'METHOD_NOT_ALLOWED') {
        throw new SkyrocketError('METHOD_NOT_ALLOWED', `method ${req.method} is not allowed on ${url.pathname}`);
      }
      route = routeLabel(url.pathname);
      await match.handler(req, res, match.params, url);
    } catch (error) {
      const e = toSkyrocketError(error);
      if (e.httpStatus >= 500) this.#log.error({ err: error, method: req.method, url: req.url }, 'request failed');
      sendError(res, e);
    } finally {
      this.#inflightRequests--;
      this.#requestTimer(route, res.statusCode).observe((performance.now() - started) / 1000);
    }
  }

  /** The request histogram's child for a route and status, looked up once (label hashing per request showed in profiles). */
  #requestTimer(route: string, status: number): { observe(seconds: number): void } {
    const key = `${status} ${route}`;
    let child = this.#requestTimers.get(key);
    if (child === undefined) {
      child = this.metrics.requestSeconds.labels({ route, status: String(status) });
      this.#requestTimers.set(key, child);
    }
    return child;
  }

  /** Authenticates the caller and checks one permission. Forwarded requests carry the secret. */
  async #auth(req: ApiRequest, action: Action, resource: string): Promise<RequestContext> {
    const ctx = await this.#authenticate(req);
    if (!authorize(ctx.principal, action, resource)) {
      throw new SkyrocketError('FORBIDDEN', `principal ${ctx.principal.name} may not ${action} ${resource === '*' ? '' : resource}`.trim());
    }
    return ctx;
  }

  /** Authenticates the caller without checking a permission (the handler checks one later). */
  async #authenticate(req: ApiRequest): Promise<RequestContext> {
    const internal = req.headers[internalHeader];
    if (typeof internal === 'string') {
      if (!constantTimeEqual(internal, this.config.internalSecret)) {
        throw new SkyrocketError('UNAUTHORIZED', 'bad internal credentials');
      }
      const name = typeof req.headers[principalHeader] === 'string' ? (req.headers[principalHeader] as string) : 'internal';
      return { principal: { name, admin: true, publish: ['*'], subscribe: ['*'] }, internal: true };
    }
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (match === null) throw new SkyrocketError('UNAUTHORIZED', 'missing API key: send "Authorization: Bearer <key>"');
    const principal = await this.#directory.authenticate(match[1] as string);
    if (principal === undefined) throw new SkyrocketError('UNAUTHORIZED', 'unknown API key');
    return { principal, internal: false };
  }

  /** Sends a request to a broker group's leader as an internal call; returns status and JSON. */
  async #forward(
    brokerGroup: string,
    ctx: RequestContext,
    method: string,
    pathAndQuery: string,
    body?: Buffer | string,
    signal?: AbortSignal,
    contentType = 'application/json',
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const base = await this.#directory.leaderUrl(brokerGroup);
    const init: RequestInit = {
      method,
      headers: {
        [internalHeader]: this.config.internalSecret,
        [principalHeader]: ctx.principal.name,
        'content-type': contentType,
      },
    };
    if (body !== undefined) init.body = body;
    if (signal !== undefined) init.signal = signal;
    let response: Response;
    try {
      response = await fetch(`${base}${pathAndQuery}`, init);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new SkyrocketError('SERVICE_UNAVAILABLE', `broker group ${brokerGroup} did not answer`, { cause: error });
    }
    return { status: response.status, json: await replyJson(response) };
  }

  /** Relays another broker's answer (success or error) unchanged. */
  #relay(res: ApiResponse, reply: { status: number; json: unknown }): void {
    sendJson(res, reply.status, reply.json);
  }

  #ownsQueue(route: TopicRoute, queueId: number): boolean {
    return route.queueGroups[queueId] === this.config.brokerGroup;
  }

  #localQueues(route: TopicRoute): number[] {
    const out: number[] = [];
    route.queueGroups.forEach((g, q) => {
      if (g === this.config.brokerGroup) out.push(q);
    });
    return out;
  }

  #ownerGroups(route: TopicRoute): string[] {
    return [...new Set(route.queueGroups)];
  }

  #next(key: string, modulo: number): number {
    const n = this.#roundRobin.get(key) ?? 0;
    this.#roundRobin.set(key, n + 1);
    return n % modulo;
  }

  // ---------------------------------------------------------------------------------------------
  // Topics and groups (administration)

  async #createTopic(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    const body = await readJson(req, 64 * 1024);
    const name = validateTopicName(body['name'], 'name');
    if (name === timerTopic) throw new SkyrocketError('ILLEGAL_TOPIC', `${timerTopic} is reserved for the broker's timers`, { field: 'name' });
    const queues = body['queues'] ?? 8;
    if (!Number.isSafeInteger(queues) || (queues as number) < 1 || (queues as number) > 1024) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'queues must be an integer from 1 to 1024', { field: 'queues' });
    }
    const type = body['type'] ?? 'NORMAL';
    if (!(messageTypes as readonly unknown[]).includes(type)) {
      throw new SkyrocketError('INVALID_ARGUMENT', `type must be one of ${messageTypes.join(', ')}`, { field: 'type' });
    }
    const topic = await this.#directory.createTopic({ name, queues: queues as number, type: type as TopicRoute['type'] });
    sendJson(res, 201, topicJson(topic));
  }

  async #listTopics(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    sendJson(res, 200, { topics: (await this.#directory.listTopics()).map(topicJson) });
  }

  async #getTopic(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateTopicName(p['topic']);
    await this.#auth(req, 'publish', name);
    sendJson(res, 200, topicJson(await this.#directory.topic(name)));
  }

  async #deleteTopic(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateTopicName(p['topic']);
    await this.#auth(req, 'admin', '*');
    await this.#directory.topic(name);
    await this.#directory.deleteTopic(name);
    res.writeHead(204).end();
  }

  async #topicRoute(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateTopicName(p['topic']);
    const header = req.headers.authorization;
    if (header === undefined && req.headers[internalHeader] === undefined) {
      throw new SkyrocketError('UNAUTHORIZED', 'missing API key: send "Authorization: Bearer <key>"');
    }
    const ctx = await this.#authAny(req, name);
    void ctx;
    const route = await this.#directory.topic(name);
    const queues = await Promise.all(
      route.queueGroups.map(async (brokerGroup, queueId) => ({
        queueId,
        brokerGroup,
        leader: await this.#directory.leaderUrl(brokerGroup).catch(() => null),
      })),
    );
    sendJson(res, 200, { topic: name, type: route.type, queues });
  }

  /** A route may be read by anyone allowed to publish to the topic or to consume at all. */
  async #authAny(req: ApiRequest, topic: string): Promise<RequestContext> {
    try {
      return await this.#auth(req, 'publish', topic);
    } catch (error) {
      if (toSkyrocketError(error).code !== 'FORBIDDEN') throw error;
      return this.#auth(req, 'subscribe', '*');
    }
  }

  async #createGroup(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    const body = await readJson(req, 64 * 1024);
    const name = validateGroupName(body['name'], 'name');
    const mode = body['mode'] ?? 'CLUSTERING';
    if (mode !== 'CLUSTERING' && mode !== 'BROADCASTING') {
      throw new SkyrocketError('INVALID_ARGUMENT', 'mode must be CLUSTERING or BROADCASTING', { field: 'mode' });
    }
    const orderly = body['orderly'] ?? false;
    if (typeof orderly !== 'boolean') throw new SkyrocketError('INVALID_ARGUMENT', 'orderly must be a boolean', { field: 'orderly' });
    const attempts = body['maxDeliveryAttempts'] ?? 16;
    if (!Number.isSafeInteger(attempts) || (attempts as number) < 1 || (attempts as number) > 1000) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'maxDeliveryAttempts must be an integer from 1 to 1000', {
        field: 'maxDeliveryAttempts',
      });
    }
    const group = await this.#directory.createGroup({ name, mode, orderly, maxDeliveryAttempts: attempts as number });
    sendJson(res, 201, group);
  }

  async #listGroups(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    sendJson(res, 200, { groups: await this.#directory.listGroups() });
  }

  async #deleteGroup(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateGroupName(p['group']);
    await this.#auth(req, 'admin', '*');
    await this.#directory.group(name);
    await this.#directory.deleteGroup(name);
    this.groups.deleteGroup(name);
    res.writeHead(204).end();
  }

  /** Makes the group's messages of one topic go to a Lambda function (dispatch/). */
  async #putLambdaSubscription(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateGroupName(p['group']);
    const topic = validateTopicName(p['topic']);
    await this.#auth(req, 'admin', '*');
    const body = await readJson(req, 64 * 1024);
    if (body['topic'] !== undefined && body['topic'] !== topic) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'topic is given by the path', { field: 'topic' });
    }
    const spec = checkLambdaSubscription({ ...body, topic });
    const group = await this.#directory.group(name);
    if (group.mode !== 'CLUSTERING') {
      throw new SkyrocketError('INVALID_ARGUMENT', 'only CLUSTERING groups can have a Lambda subscription', { field: 'group' });
    }
    await this.#directory.topic(topic);
    const updated = await this.#directory.putLambdaSubscription(name, spec);
    void this.dispatcher.refresh();
    sendJson(res, 200, updated);
  }

  async #deleteLambdaSubscription(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateGroupName(p['group']);
    const topic = validateTopicName(p['topic']);
    await this.#auth(req, 'admin', '*');
    await this.#directory.deleteLambdaSubscription(name, topic);
    void this.dispatcher.refresh();
    res.writeHead(204).end();
  }

  /** The group with its lag per topic and queue, gathered from every broker group. */
  async #getGroup(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', name);
    const group = await this.#directory.group(name);
    const lag = this.#localLag(name);
    if (!ctx.internal) {
      const topics = await this.#directory.listTopics();
      const others = new Set(topics.flatMap((t) => this.#ownerGroups(t)).filter((g) => g !== this.config.brokerGroup));
      const replies = await Promise.all(
        [...others].map((g) => this.#forward(g, ctx, 'GET', `/v1/groups/${encodeURIComponent(name)}`).catch(() => undefined)),
      );
      for (const reply of replies) {
        if (reply?.status === 200) lag.push(...((reply.json['lag'] as typeof lag | undefined) ?? []));
      }
    }
    lag.sort((a, b) => a.topic.localeCompare(b.topic) || a.queueId - b.queueId);
    const totalLag = lag.reduce((sum, q) => sum + q.lag, 0);
    sendJson(res, 200, { ...group, totalLag, lag });
  }

  #localLag(group: string): Array<{ topic: string; queueId: number; committedOffset: number; maxOffset: number; lag: number; inflight: number }> {
    const out = [];
    for (const { topic, queueId } of this.store.queueIds()) {
      if (!this.groups.hasState(group, topic, queueId)) continue; // a topic the group does not read
      const committedOffset = this.groups.committedOffset(group, topic, queueId);
      const { maxOffset } = this.store.queueRange(topic, queueId);
      out.push({
        topic,
        queueId,
        committedOffset,
        maxOffset,
        lag: Math.max(0, maxOffset - committedOffset),
        inflight: this.groups.inflightCount(group, topic, queueId),
      });
    }
    return out;
  }

  #updateLagMetrics(): void {
    this.metrics.consumerLag.reset();
    // Lag is reported for the groups that have state on this broker; others have consumed nothing.
    const seen = new Set<string>();
    for (const { topic, queueId } of this.store.queueIds()) {
      for (const group of this.groups.knownGroups()) {
        if (!this.groups.hasState(group, topic, queueId)) continue;
        seen.add(group);
        this.metrics.consumerLag.set({ group, topic, queue: String(queueId) }, this.groups.lag(group, topic, queueId));
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Produce

  async #send(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const topic = validateTopicName(p['topic']);
    const ctx = await this.#auth(req, 'publish', topic);
    const raw = await readBody(req, maxRequestBytes);
    const framed = namesFrame(req.headers['content-type']);
    let body: Record<string, unknown>;
    let decoded: unknown;
    if (framed) {
      const frame = decodeFrame(raw);
      body = frame.meta;
      decoded = framedMessages(frame, topic);
    } else {
      body = parseJsonObject(raw);
      decoded = decodeBodies(body['messages'], topic);
    }
    const route = await this.#directory.topic(topic);
    if (!route.writable) throw new SkyrocketError('FORBIDDEN', `topic ${topic} is not writable`);
    const now = this.#now();
    const messages = validateBatch(decoded, { nowMs: now });
    const transaction = parseTransactionalSend(body, route.type, messages);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as MessageInput;
      if (route.type === 'FIFO' && m.messageGroup === undefined) {
        throw new SkyrocketError('ILLEGAL_MESSAGE_GROUP', `topic ${topic} is FIFO: every message needs a messageGroup`, {
          field: `messages[${i}].messageGroup`,
        });
      }
      // As RocketMQ 5: a delivery time makes a message a DELAY message, which only DELAY topics take.
      if (m.deliverAt !== undefined && route.type !== 'DELAY') {
        throw new SkyrocketError(
          'MESSAGE_PROPERTY_CONFLICT_WITH_TYPE',
          `topic ${topic} is ${route.type}: only DELAY topics take deliverAt, delayMs or delayLevel`,
          { field: `messages[${i}]` },
        );
      }
    }
    // The batch goes to one broker group, so it is stored whole or not at all.
    const queueIds = this.#pickQueues(route, messages);
    const target = route.queueGroups[queueIds[0] as number] as string;
    if (target !== this.config.brokerGroup) {
      if (ctx.internal) throw new SkyrocketError('NOT_LEADER', `this broker does not own queues of ${topic} for this batch`);
      const contentType = framed ? frameMediaType : 'application/json';
      this.#relay(res, await this.#forward(target, ctx, 'POST', `/v1/topics/${encodeURIComponent(topic)}/messages`, raw, undefined, contentType));
      return;
    }
    const bornHost = `${req.socket.remoteAddress ?? 'unknown'}:${req.socket.remotePort ?? 0}`.slice(0, 255);
    const records: RecordInput[] = messages.map((m, i) => ({
      topic,
      queueId: queueIds[i] as number,
      body: m.body,
      tag: m.tag,
      keys: m.keys,
      properties: m.properties,
      messageGroup: m.messageGroup,
      bornTimestamp: now,
      bornHost,
    }));
    // Messages due later are stored as timers (timer/timer-records.ts); a time passed sends at once.
    for (let i = 0; i < records.length; i++) {
      const at = (messages[i] as MessageInput).deliverAt;
      if (at !== undefined && at > now) records[i] = this.#timers.recordFor({ ...(records[i] as RecordInput), deliverAt: at }, now);
    }
    if (transaction !== undefined) {
      // Half messages: stored, invisible until committed (see transaction/transaction-service.ts).
      sendJson(res, 200, { results: await this.transactions.prepare(records, transaction.producerGroup) });
      return;
    }
    const started = performance.now();
    const results = await this.store.append(records);
    this.#timers.appended(records);
    this.metrics.appendSeconds.observe((performance.now() - started) / 1000);
    let bytes = 0;
    for (const m of messages) bytes += m.body.length;
    this.metrics.messagesIn.inc({ topic }, messages.length);
    this.metrics.bytesIn.inc({ topic }, bytes);
    this.#notify(topic);
    sendJson(res, 200, {
      results: results.map((r, i) =>
        (records[i] as RecordInput).topic === timerTopic
          ? { messageId: r.messageId, queueId: queueIds[i], queueOffset: -1, deliverAt: (messages[i] as MessageInput).deliverAt }
          : { messageId: r.messageId, queueId: r.queueId, queueOffset: r.queueOffset },
      ),
    });
  }

  /**
   * Queues for a batch. FIFO messages hash their message group over all queues, so a group always
   * lands in the same queue whichever broker takes the request; the batch must then map to one
   * broker group. Other messages go round-robin over one broker group's queues: this broker's own
   * when it has some, otherwise the next owner's.
   */
  #pickQueues(route: TopicRoute, messages: readonly MessageInput[]): number[] {
    const n = route.queueGroups.length;
    if (messages.some((m) => m.messageGroup !== undefined)) {
      const ids = messages.map((m) =>
        m.messageGroup === undefined ? this.#next(`q:${route.name}`, n) : hashString(m.messageGroup) % n,
      );
      const owners = new Set(ids.map((q) => route.queueGroups[q]));
      if (owners.size > 1) {
        throw new SkyrocketError(
          'INVALID_ARGUMENT',
          'the message groups of this batch live on different brokers; send them in separate batches',
          { field: 'messages' },
        );
      }
      return ids;
    }
    let queues = this.#localQueues(route);
    if (queues.length === 0) {
      const owners = this.#ownerGroups(route);
      const owner = owners[this.#next(`g:${route.name}`, owners.length)] as string;
      queues = [];
      route.queueGroups.forEach((g, q) => g === owner && queues.push(q));
    }
    const start = this.#next(`q:${route.name}`, queues.length);
    return messages.map((_, i) => queues[(start + i) % queues.length] as number);
  }

  #notify(topic: string): void {
    this.dispatcher.notify(topic);
    this.#wake(topic);
  }

  /**
   * Wakes the long polls waiting on a topic so they look again: a message was stored, or a
   * delivery's visibility moved (a nack or change of invisibility may make one visible sooner
   * than the poll planned to wake).
   */
  #wake(topic: string): void {
    const waiters = this.#waiters.get(topic);
    if (waiters === undefined) return;
    // Of the polls that would take the same messages (one group, one consumer, one filter), the
    // longest waiting wakes and the others sleep on: woken together they would split a few
    // messages into several answers and acks. One that fills its answer wakes the next
    // (#receiveLocal), and so does one whose receiver went away.
    const woken = new Set<string>();
    for (const waiter of [...waiters]) {
      if (waiter.key !== undefined) {
        if (woken.has(waiter.key)) continue;
        woken.add(waiter.key);
      }
      waiter.wake();
    }
  }

  /**
   * Resolves when a message is stored in `topic` (see #wake for `key`), at `untilMs`, or when the
   * signal aborts.
   */
  #waitForTopic(topic: string, untilMs: number, signal: AbortSignal, key?: string): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(topic);
      if (waiters === undefined) {
        waiters = new Set();
        this.#waiters.set(topic, waiters);
      }
      const waiter = {
        key,
        wake: (): void => {
          clearTimeout(timer);
          waiters!.delete(waiter);
          if (waiters!.size === 0 && this.#waiters.get(topic) === waiters) this.#waiters.delete(topic);
          signal.removeEventListener('abort', waiter.wake);
          resolve();
        },
      };
      const timer = setTimeout(waiter.wake, Math.max(0, untilMs - this.#now()));
      signal.addEventListener('abort', waiter.wake);
      waiters.add(waiter);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Consume

  async #receive(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const groupName = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', groupName);
    // As large as an ack's: a receive may carry the acks of a whole batch (ackReceiptHandles).
    const raw = await readBody(req, 4 * 1024 * 1024);
    const body = parseJsonObject(raw);
    const topic = validateTopicName(body['topic']);
    const max = validateMaxMessages(body['max'] ?? limits.receiveMessagesDefaultCount, 'max');
    const invisibleMs = validateInvisibleMs(body['invisibleMs'] ?? 30_000);
    const waitMs = validateWaitMs(body['waitMs'] ?? 0);
    const filter = body['filter'];
    let tags: ReadonlySet<string> | undefined;
    let sql: ((m: StoredMessage) => boolean) | undefined;
    let sqlExpression: string | undefined;
    if (filter !== undefined && filter !== null) {
      const type = typeof filter === 'object' ? (filter as Record<string, unknown>)['type'] : undefined;
      const expression = typeof filter === 'object' ? (filter as Record<string, unknown>)['expression'] : undefined;
      if (type === 'TAG') {
        tags = parseTagExpression(expression);
      } else if (type === 'SQL92') {
        if (typeof expression !== 'string') {
          throw new SkyrocketError('INVALID_FILTER_EXPRESSION', 'a SQL92 filter needs an expression string', { field: 'filter.expression' });
        }
        const compiled = compileSqlFilter(expression);
        sqlExpression = expression;
        sql = (m) => compiled.matches(sqlFilterProperties(m));
      } else {
        throw new SkyrocketError(
          'INVALID_FILTER_EXPRESSION',
          'filter must be {"type":"TAG","expression":"a || b"} or {"type":"SQL92","expression":"amount > 10"}',
          { field: 'filter' },
        );
      }
    }
    const clientId = body['clientId'];
    if (clientId !== undefined && (typeof clientId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(clientId))) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'clientId must be 1 to 128 printable ASCII characters', { field: 'clientId' });
    }
    const ackHandles = body['ackReceiptHandles'] === undefined ? undefined : handleList(body, 'ackReceiptHandles');
    const [group, route] = await Promise.all([this.#directory.group(groupName), this.#directory.topic(topic)]);
    if (!route.readable) throw new SkyrocketError('FORBIDDEN', `topic ${topic} is not readable`);
    const request = { group, route, max, invisibleMs, tags, sql, sqlExpression, clientId: clientId as string | undefined };
    // Acks carried by the receive (the previous batch's, saving a request): done before taking
    // anything, as /ack would do them; the ones refused are listed in the answer.
    const ackFailed = ackHandles === undefined ? undefined : (await this.#ackHandles(ctx, groupName, topic, ackHandles, false)).failed;

    const abort = new AbortController();
    // The receiver went away before the answer was written (every answered response closes too).
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const deadline = this.#now() + waitMs;
    let deliveries: Array<Delivery | Record<string, unknown>>;
    if (ctx.internal) {
      deliveries = await this.#receiveLocal(request, deadline, abort.signal);
    } else {
      deliveries = await this.#receiveAnywhere(ctx, request, body, deadline, abort.signal);
    }
    if (abort.signal.aborted && deliveries.length > 0) {
      // The receiver went away (a forwarded long poll ended by another broker's answer, or a
      // client that hung up): nobody will see these handles, so the messages become visible again
      // now, their attempt not counted, instead of after their invisibility.
      let released = 0;
      for (const d of deliveries) {
        const handle = (d as { receiptHandle?: unknown }).receiptHandle;
        try {
          const parsed = parseReceiptHandle(handle);
          if (parsed.brokerGroup === this.config.brokerGroup) {
            this.groups.release(handle, groupName, topic, parsed);
            released++;
          }
        } catch {
          // already expired or acked: nothing to release
        }
      }
      if (released > 0) this.#wake(topic);
      this.#log.warn({ group: groupName, topic, count: deliveries.length, released }, 'receiver went away; messages released');
    }
    sendDeliveries(res, deliveries, answerForm(req.headers['accept']), topic, ackFailed);
  }

  /** Long-polls this broker's queues of the topic until messages come or the deadline passes. */
  async #receiveLocal(
    r: ReceiveParams,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Delivery[]> {
    const queueIds = this.#localQueues(r.route);
    // Polls with the same key would take the same messages: a clustering group's consumers that
    // take from every queue, with the same filter. Consumers with their own queues (clientId)
    // or their own copy (broadcasting) each need their own wake.
    const key =
      r.group.mode === 'CLUSTERING' && r.clientId === undefined
        ? `${r.group.name}\u0000${r.tags === undefined ? '*' : [...r.tags].sort().join('||')}\u0000${r.sqlExpression ?? ''}`
        : undefined;
    for (;;) {
      // A stopping broker answers its long polls at once (empty) so the drain does not wait.
      if (this.#stopping) return [];
      if (signal.aborted) {
        if (key !== undefined) this.#wake(r.route.name); // another poll may take what this one was woken for
        return [];
      }
      const got = await this.groups.receive({
        group: r.group.name,
        mode: r.group.mode,
        topic: r.route.name,
        queueIds,
        clientId: r.clientId,
        max: r.max,
        invisibleMs: r.invisibleMs,
        tags: r.tags,
        filter: r.sql,
        orderly: r.group.orderly,
        maxDeliveryAttempts: r.group.maxDeliveryAttempts,
      });
      if (got.length > 0) {
        let bytes = 0;
        for (const d of got) bytes += d.message.body.length;
        this.metrics.messagesOut.inc({ topic: r.route.name }, got.length);
        this.metrics.bytesOut.inc({ topic: r.route.name }, bytes);
        if (key !== undefined && got.length >= r.max) this.#wake(r.route.name); // there may be more
        return got;
      }
      const now = this.#now();
      if (now >= deadline) return [];
      const nextVisible = this.groups.nextVisibleAt(r.group.name, r.route.name, queueIds, r.group.mode, r.clientId);
      const until = Math.min(deadline, nextVisible !== undefined && nextVisible > now ? nextVisible : deadline);
      await this.#waitForTopic(r.route.name, until, signal, key);
    }
  }

  /**
   * Receives across every broker group that owns queues of the topic: first a pass that does not
   * wait, then, if nothing came, a long poll on all of them at once; the first to answer with
   * messages ends the others' waits.
   */
  async #receiveAnywhere(
    ctx: RequestContext,
    r: ReceiveParams,
    body: Record<string, unknown>,
    deadline: number,
    signal: AbortSignal,
  ): Promise<Array<Delivery | Record<string, unknown>>> {
    const owners = this.#ownerGroups(r.route);
    const path = `/v1/groups/${encodeURIComponent(r.group.name)}/receive`;
    // The acks a receive carries are done here already (see #receive): never forwarded again.
    const { ackReceiptHandles: _acked, ...original } = body;
    const forwardBody = (max: number, waitMs: number): string => JSON.stringify({ ...original, max, waitMs });
    // Our own deliveries stay objects until the answer is written (JSON or frame); another owner's
    // come as JSON.
    const fromOwner = async (owner: string, max: number, until: number, s: AbortSignal): Promise<Array<Delivery | Record<string, unknown>>> => {
      if (owner === this.config.brokerGroup) return this.#receiveLocal({ ...r, max }, until, s);
      const reply = await this.#forward(owner, ctx, 'POST', path, forwardBody(max, Math.max(0, until - this.#now())), s);
      if (reply.status !== 200) throw errorFromReply(reply);
      return (reply.json['messages'] as Array<Record<string, unknown>>) ?? [];
    };
    // Pass 1: take what is there now, our own queues first.
    const ordered = [...owners].sort((a, b) => (a === this.config.brokerGroup ? -1 : b === this.config.brokerGroup ? 1 : 0));
    const out: Array<Delivery | Record<string, unknown>> = [];
    for (const owner of ordered) {
      if (out.length >= r.max) break;
      out.push(...(await fromOwner(owner, r.max - out.length, 0, signal)));
    }
    if (out.length > 0 || this.#now() >= deadline) return out;
    // Pass 2: wait on the owners (at most `max` of them, so their shares never exceed `max`);
    // the first to answer with messages ends the others' waits.
    const start = this.#next(`w:${r.route.name}`, owners.length);
    const waiting = Array.from({ length: Math.min(owners.length, r.max) }, (_, i) => owners[(start + i) % owners.length] as string);
    const share = Math.floor(r.max / waiting.length);
    const stop = new AbortController();
    signal.addEventListener('abort', () => stop.abort());
    const results = await Promise.allSettled(
      waiting.map(async (owner) => {
        const got = await fromOwner(owner, share, deadline, stop.signal);
        if (got.length > 0) stop.abort();
        return got;
      }),
    );
    for (const result of results) {
      if (result.status === 'fulfilled') out.push(...result.value);
      else if ((result.reason as Error)?.name !== 'AbortError') throw result.reason;
    }
    return out.slice(0, r.max);
  }

  async #ack(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const raw = await readBody(req, 4 * 1024 * 1024);
    const body = parseJsonObject(raw);
    const topic = validateTopicName(body['topic']);
    const handles = handleList(body);
    const listAcked = body['listAcked'] ?? true;
    if (typeof listAcked !== 'boolean') throw new SkyrocketError('INVALID_ARGUMENT', 'listAcked must be true or false', { field: 'listAcked' });
    await this.#directory.group(group);
    const { done, failed } = await this.#ackHandles(ctx, group, topic, handles, true);
    // A client that knows what it sent can take a count instead of its handles echoed back.
    sendJson(res, 200, listAcked ? { acked: done, failed } : { ackedCount: done.length, failed });
  }

  /** Acks handles wherever they were issued (see #perHandle), for /ack and for a receive carrying acks. */
  #ackHandles(
    ctx: RequestContext,
    group: string,
    topic: string,
    handles: readonly unknown[],
    throwWhenAllFail: boolean,
  ): Promise<{ done: string[]; failed: HandleFailure[] }> {
    const local = (handle: unknown, parsed: ReceiptHandle): string => {
      this.groups.ack(handle, group, topic, parsed);
      return handle as string;
    };
    return this.#perHandle(ctx, group, 'ack', { topic }, handles, 'acked', local, throwWhenAllFail);
  }

  /**
   * Applies `local` to the handles this broker group issued and forwards the others to their
   * owners (`body` with only their handles), gathering per-handle results. Handles already done
   * here are not undone by a failure elsewhere: that is reported per handle. Only when every handle
   * failed is the answer an error (the first one's).
   */
  async #perHandle<T>(
    ctx: RequestContext,
    group: string,
    action: 'ack' | 'nack',
    body: Record<string, unknown>,
    handles: readonly unknown[],
    resultKey: string,
    local: (handle: unknown, parsed: ReceiptHandle) => T,
    throwWhenAllFail = true,
  ): Promise<{ done: T[]; failed: HandleFailure[] }> {
    const done: T[] = [];
    const failed: HandleFailure[] = [];
    const remote = new Map<string, unknown[]>();
    for (const handle of handles) {
      try {
        const parsed = parseReceiptHandle(handle);
        if (parsed.brokerGroup !== this.config.brokerGroup) {
          if (ctx.internal) throw new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle belongs to another broker group');
          remote.set(parsed.brokerGroup, [...(remote.get(parsed.brokerGroup) ?? []), handle]);
          continue;
        }
        done.push(local(handle, parsed));
      } catch (error) {
        const e = toSkyrocketError(error);
        failed.push({ receiptHandle: handle, code: e.code, message: e.message });
      }
    }
    for (const [owner, list] of remote) {
      const reply = await this.#forward(owner, ctx, 'POST', `/v1/groups/${encodeURIComponent(group)}/${action}`, JSON.stringify({ ...body, receiptHandles: list })).catch(
        (error: unknown) => {
          const e = toSkyrocketError(error);
          return { status: e.httpStatus, json: e.toJSON() as unknown as Record<string, unknown> };
        },
      );
      if (reply.status === 200) {
        done.push(...((reply.json[resultKey] as T[] | undefined) ?? []));
        failed.push(...((reply.json['failed'] as HandleFailure[] | undefined) ?? []));
      } else {
        const e = errorFromReply(reply);
        for (const h of list) failed.push({ receiptHandle: h, code: e.code, message: e.message });
      }
    }
    if (throwWhenAllFail && done.length === 0 && failed.length > 0) {
      const first = failed[0]!;
      throw new SkyrocketError(isErrorCode(first.code) ? first.code : 'INTERNAL_ERROR', first.message, { field: 'receiptHandles' });
    }
    return { done, failed };
  }


  async #changeInvisibility(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const raw = await readBody(req, 64 * 1024);
    const body = parseJsonObject(raw);
    const topic = validateTopicName(body['topic']);
    const invisibleMs = validateInvisibleMs(body['invisibleMs']);
    const parsed = parseReceiptHandle(body['receiptHandle']);
    if (parsed.brokerGroup !== this.config.brokerGroup) {
      if (ctx.internal) throw new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle belongs to another broker group');
      this.#relay(res, await this.#forward(parsed.brokerGroup, ctx, 'POST', `/v1/groups/${encodeURIComponent(group)}/change-invisibility`, raw));
      return;
    }
    await this.#directory.group(group);
    const receiptHandle = this.groups.changeInvisibility(body['receiptHandle'], group, topic, invisibleMs);
    this.#wake(topic);
    sendJson(res, 200, { receiptHandle, visibleAt: parseReceiptHandle(receiptHandle).visibleUntilMs });
  }

  /** The consumer failed: the messages come back after the retry backoff (or `delayMs`). */
  async #nack(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const raw = await readBody(req, 4 * 1024 * 1024);
    const body = parseJsonObject(raw);
    const topic = validateTopicName(body['topic']);
    const handles = handleList(body);
    const delayMs = body['delayMs'];
    if (delayMs !== undefined && (!Number.isSafeInteger(delayMs) || (delayMs as number) < 0 || (delayMs as number) > limits.invisibleMaxMs)) {
      throw new SkyrocketError('ILLEGAL_INVISIBLE_TIME', `delayMs must be an integer from 0 to ${limits.invisibleMaxMs}`, { field: 'delayMs' });
    }
    await this.#directory.group(group);
    const { done, failed } = await this.#perHandle(ctx, group, 'nack', body, handles, 'nacked', (handle, parsed) => ({
      receiptHandle: handle as string,
      visibleAt: this.groups.nack(handle, group, topic, delayMs as number | undefined, parsed),
    }));
    if (done.length > 0) this.#wake(topic);
    sendJson(res, 200, { nacked: done, failed });
  }


  /** Every broker group, this one first, for requests that gather from all of them. */
  async #allGroups(): Promise<string[]> {
    const groups = await this.#directory.brokerGroups();
    return [this.config.brokerGroup, ...groups.filter((g) => g !== this.config.brokerGroup)];
  }

  async #listDeadLetters(req: ApiRequest, res: ApiResponse, p: Params, url: RequestTarget): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const max = validateMaxMessages(Number(url.searchParams.get('max') ?? 32), 'max');
    await this.#directory.group(group);
    const messages: Array<Record<string, unknown>> = [];
    for (const owner of ctx.internal ? [this.config.brokerGroup] : await this.#allGroups()) {
      if (messages.length >= max) break;
      if (owner === this.config.brokerGroup) {
        for (const d of await this.deadLetters.list(group, max - messages.length)) {
          messages.push({ ...messageJson(d.message), originTopic: d.originTopic, brokerGroup: owner });
        }
        continue;
      }
      const reply = await this.#forward(owner, ctx, 'GET', `/v1/groups/${encodeURIComponent(group)}/dlq?max=${max - messages.length}`);
      if (reply.status !== 200) throw errorFromReply(reply);
      messages.push(...(reply.json['messages'] as Array<Record<string, unknown>>));
    }
    sendJson(res, 200, { group, messages });
  }

  /**
   * Sends dead letters back to the topics they came from (all of them, or those named by id) as
   * new messages with their delivery attempts reset, and stops listing them.
   */
  async #redrive(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const raw = await readBody(req, 1024 * 1024);
    const body = raw.length === 0 ? {} : parseJsonObject(raw);
    const ids = body['messageIds'];
    if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'messageIds must be a list of message ids', { field: 'messageIds' });
    }
    await this.#directory.group(group);
    const wanted = ids === undefined ? undefined : new Set(ids as string[]);
    let redriven = 0;
    const failed: Array<{ messageId: string; code: string; message: string }> = [];
    for (const owner of ctx.internal ? [this.config.brokerGroup] : await this.#allGroups()) {
      if (owner !== this.config.brokerGroup) {
        const reply = await this.#forward(owner, ctx, 'POST', `/v1/groups/${encodeURIComponent(group)}/dlq/redrive`, raw.length === 0 ? '{}' : raw);
        if (reply.status !== 200) throw errorFromReply(reply);
        redriven += reply.json['redriven'] as number;
        failed.push(...((reply.json['failed'] as typeof failed) ?? []));
        continue;
      }
      const letters = (await this.deadLetters.list(group, 100_000)).filter((d) => wanted === undefined || wanted.has(d.message.messageId));
      for (const d of letters) {
        try {
          const route = await this.#directory.topic(d.originTopic);
          const m = d.message;
          const input: MessageInput = { topic: route.name, body: m.body, keys: m.keys, properties: m.properties };
          if (m.tag !== undefined) input.tag = m.tag;
          if (m.messageGroup !== undefined) input.messageGroup = m.messageGroup;
          await this.#publishMessages(ctx, route, [input]);
          this.deadLetters.markRedriven(group, [d.dlqOffset]);
          redriven++;
        } catch (error) {
          const e = toSkyrocketError(error);
          failed.push({ messageId: d.message.messageId, code: e.code, message: e.message });
        }
      }
    }
    sendJson(res, 200, { redriven, failed });
  }

  /** Stores validated messages in one broker group (here, or forwarded); returns their places. */
  async #publishMessages(
    ctx: RequestContext,
    route: TopicRoute,
    messages: readonly MessageInput[],
  ): Promise<Array<{ messageId: string; queueId: number; queueOffset: number }>> {
    const queueIds = this.#pickQueues(route, messages);
    const target = route.queueGroups[queueIds[0] as number] as string;
    if (target !== this.config.brokerGroup) {
      const payload = JSON.stringify({
        messages: messages.map((m) => {
          const { topic: _topic, body, ...rest } = m;
          return { ...rest, body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' };
        }),
      });
      const reply = await this.#forward(target, ctx, 'POST', `/v1/topics/${encodeURIComponent(route.name)}/messages`, payload);
      if (reply.status !== 200) throw errorFromReply(reply);
      return reply.json['results'] as Array<{ messageId: string; queueId: number; queueOffset: number }>;
    }
    const now = this.#now();
    const results = await this.store.append(
      messages.map((m, i) => ({
        topic: route.name,
        queueId: queueIds[i] as number,
        body: m.body,
        tag: m.tag,
        keys: m.keys,
        properties: m.properties,
        messageGroup: m.messageGroup,
        bornTimestamp: now,
        bornHost: this.config.advertisedUrl.slice(0, 255),
      })),
    );
    this.metrics.messagesIn.inc({ topic: route.name }, messages.length);
    this.#notify(route.name);
    return results.map((r) => ({ messageId: r.messageId, queueId: r.queueId, queueOffset: r.queueOffset }));
  }

  async #getOffsets(req: ApiRequest, res: ApiResponse, p: Params, url: RequestTarget): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const topic = validateTopicName(url.searchParams.get('topic') ?? undefined);
    await this.#directory.group(group);
    const route = await this.#directory.topic(topic);
    const offsets: Array<{ queueId: number; committedOffset: number; minOffset: number; maxOffset: number }> = [];
    for (const queueId of this.#localQueues(route)) {
      const range = this.store.queueRange(topic, queueId);
      offsets.push({ queueId, committedOffset: this.groups.committedOffset(group, topic, queueId), ...range });
    }
    if (!ctx.internal) {
      for (const owner of this.#ownerGroups(route).filter((g) => g !== this.config.brokerGroup)) {
        const reply = await this.#forward(owner, ctx, 'GET', `/v1/groups/${encodeURIComponent(group)}/offsets?topic=${encodeURIComponent(topic)}`);
        if (reply.status !== 200) throw errorFromReply(reply);
        offsets.push(...(reply.json['offsets'] as typeof offsets));
      }
    }
    offsets.sort((a, b) => a.queueId - b.queueId);
    sendJson(res, 200, { group, topic, offsets });
  }

  async #putOffsets(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const group = validateGroupName(p['group']);
    const ctx = await this.#auth(req, 'subscribe', group);
    const raw = await readBody(req, 64 * 1024);
    const body = parseJsonObject(raw);
    const topic = validateTopicName(body['topic']);
    const queueId = body['queueId'];
    const offset = body['offset'];
    await this.#directory.group(group);
    const route = await this.#directory.topic(topic);
    if (!Number.isSafeInteger(queueId) || (queueId as number) < 0 || (queueId as number) >= route.queueGroups.length) {
      throw new SkyrocketError('QUEUE_NOT_FOUND', `topic ${topic} has no queue ${String(queueId)}`, { field: 'queueId' });
    }
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
      throw new SkyrocketError('ILLEGAL_OFFSET', 'offset must be a non-negative integer', { field: 'offset' });
    }
    if (!this.#ownsQueue(route, queueId as number)) {
      const owner = route.queueGroups[queueId as number] as string;
      if (ctx.internal) throw new SkyrocketError('NOT_LEADER', 'queue is owned by another broker group');
      this.#relay(res, await this.#forward(owner, ctx, 'PUT', `/v1/groups/${encodeURIComponent(group)}/offsets`, raw));
      return;
    }
    this.groups.setOffset(group, topic, queueId as number, offset as number);
    sendJson(res, 200, { group, topic, queueId, committedOffset: this.groups.committedOffset(group, topic, queueId as number) });
  }

  /** Pull by offset, for stream readers that keep their own position. */
  async #pull(req: ApiRequest, res: ApiResponse, p: Params, url: RequestTarget): Promise<void> {
    const topic = validateTopicName(p['topic']);
    const ctx = await this.#auth(req, 'subscribe', '*');
    const queueId = Number(p['queueId']);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const max = validateMaxMessages(Number(url.searchParams.get('max') ?? 32), 'max');
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new SkyrocketError('ILLEGAL_OFFSET', 'offset must be a non-negative integer', { field: 'offset' });
    }
    const route = await this.#directory.topic(topic);
    if (!route.readable) throw new SkyrocketError('FORBIDDEN', `topic ${topic} is not readable`);
    if (!Number.isSafeInteger(queueId) || queueId < 0 || queueId >= route.queueGroups.length) {
      throw new SkyrocketError('QUEUE_NOT_FOUND', `topic ${topic} has no queue ${p['queueId']}`, { field: 'queueId' });
    }
    if (!this.#ownsQueue(route, queueId)) {
      if (ctx.internal) throw new SkyrocketError('NOT_LEADER', 'queue is owned by another broker group');
      const owner = route.queueGroups[queueId] as string;
      this.#relay(res, await this.#forward(owner, ctx, 'GET', `${url.pathname}${url.search}`));
      return;
    }
    const read = await this.store.read(topic, queueId, offset, { maxMessages: max });
    sendJson(res, 200, {
      status: read.status,
      messages: read.messages.map(messageJson),
      nextOffset: read.nextOffset,
      minOffset: read.minOffset,
      maxOffset: read.maxOffset,
    });
  }

  async #getMessage(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const ctx = await this.#auth(req, 'subscribe', '*');
    const id = p['messageId'] ?? '';
    const { brokerId } = decodeMessageId(id);
    if (brokerId !== this.config.brokerId) {
      if (ctx.internal) throw new SkyrocketError('MESSAGE_NOT_FOUND', `message ${id} is not stored on this broker`);
      const url = await this.#directory.brokerUrl(brokerId);
      if (url === undefined) throw new SkyrocketError('MESSAGE_NOT_FOUND', `the broker that stored ${id} is not available`);
      let reply: Response;
      try {
        reply = await fetch(`${url}/v1/messages/${encodeURIComponent(id)}`, {
          headers: { [internalHeader]: this.config.internalSecret, [principalHeader]: ctx.principal.name },
        });
      } catch (error) {
        throw new SkyrocketError('SERVICE_UNAVAILABLE', `broker ${brokerId} did not answer`, { cause: error });
      }
      this.#relay(res, { status: reply.status, json: await replyJson(reply) });
      return;
    }
    let message = await this.store.getById(id);
    // A half message is shown as its committed message, and not before; op records never.
    if (message?.topic === transactionTopics.half || message?.topic === transactionTopics.op) message = await this.transactions.visibleMessage(message);
    // A delayed message: the delivered message, or the scheduled one while it waits.
    if (message === undefined || message.topic === timerTopic) message = await this.#timers.lookup(id);
    if (message === undefined) throw new SkyrocketError('MESSAGE_NOT_FOUND', `no message ${id}`);
    sendJson(res, 200, messageJson(message));
  }

  /**
   * Cancels a delayed message before it is delivered, on the broker that holds it. The caller
   * needs publish permission on the message's topic.
   */
  async #cancelMessage(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const id = p['messageId'] ?? '';
    const { brokerId } = decodeMessageId(id);
    const ctx = await this.#authenticate(req);
    if (brokerId !== this.config.brokerId) {
      if (ctx.internal) throw new SkyrocketError('MESSAGE_NOT_FOUND', `message ${id} is not stored on this broker`);
      const url = await this.#directory.brokerUrl(brokerId);
      if (url === undefined) throw new SkyrocketError('MESSAGE_NOT_FOUND', `the broker that stored ${id} is not available`);
      const headers = { [internalHeader]: this.config.internalSecret, [principalHeader]: ctx.principal.name };
      const call = async (method: string): Promise<{ status: number; json: Record<string, unknown> }> => {
        try {
          const reply = await fetch(`${url}/v1/messages/${encodeURIComponent(id)}`, { method, headers });
          return { status: reply.status, json: reply.status === 204 ? {} : await replyJson(reply) };
        } catch (error) {
          throw new SkyrocketError('SERVICE_UNAVAILABLE', `broker ${brokerId} did not answer`, { cause: error });
        }
      };
      if (!ctx.principal.admin) {
        const found = await call('GET');
        if (found.status !== 200) return this.#relay(res, found);
        this.#mayCancel(ctx, found.json['topic']);
      }
      const reply = await call('DELETE');
      if (reply.status === 204) res.writeHead(204).end();
      else this.#relay(res, reply);
      return;
    }
    if (!ctx.internal && !ctx.principal.admin) this.#mayCancel(ctx, (await this.#timers.lookup(id))?.topic);
    if (!(await this.#timers.cancel(id))) {
      throw new SkyrocketError('MESSAGE_NOT_FOUND', `no scheduled message ${id}: unknown, already delivered or already cancelled`);
    }
    res.writeHead(204).end();
  }

  #mayCancel(ctx: RequestContext, topic: unknown): void {
    if (typeof topic !== 'string') throw new SkyrocketError('MESSAGE_NOT_FOUND', 'no such scheduled message');
    if (!authorize(ctx.principal, 'publish', topic)) {
      throw new SkyrocketError('FORBIDDEN', `principal ${ctx.principal.name} may not publish to ${topic}, so may not cancel its messages`);
    }
  }

  /**
   * The delay sweep moves timers that come due within the horizon from the timer index back into
   * this broker's wheel. Each timer's result says whether it was taken (or was already, or was
   * cancelled, or its topic is gone: the sweep deletes those) or refused (it stays parked).
   */
  async #moveTimers(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    const raw = await readBody(req, maxRequestBytes);
    const timers = parseMoveRequest(parseJsonObject(raw));
    const results: Array<{ messageId: string; status: string; code?: string; message?: string }> = new Array(timers.length);
    const mine: Array<{ index: number; timer: (typeof timers)[number] }> = [];
    for (let i = 0; i < timers.length; i++) {
      const t = timers[i] as (typeof timers)[number];
      let route: TopicRoute;
      try {
        route = await this.#directory.topic(t.topic);
      } catch (error) {
        const e = toSkyrocketError(error);
        if (e.code !== 'TOPIC_NOT_FOUND') throw e;
        results[i] = { messageId: t.messageId, status: 'DROPPED', code: e.code, message: e.message };
        continue;
      }
      if (!this.#ownsQueue(route, t.queueId)) {
        results[i] = { messageId: t.messageId, status: 'REJECTED', code: 'NOT_LEADER', message: `queue ${t.queueId} of ${t.topic} is not owned here` };
        continue;
      }
      mine.push({ index: i, timer: t });
    }
    const moved = mine.length === 0 ? [] : await this.#timers.move(mine.map((m) => m.timer));
    mine.forEach((m, k) => (results[m.index] = moved[k] as (typeof moved)[number]));
    sendJson(res, 200, { results });
  }

  async #topicExists(topic: string): Promise<boolean> {
    try {
      await this.#directory.topic(topic);
      return true;
    } catch (error) {
      return toSkyrocketError(error).code !== 'TOPIC_NOT_FOUND';
    }
  }

  async #queryByKey(req: ApiRequest, res: ApiResponse, p: Params, url: RequestTarget): Promise<void> {
    const topic = validateTopicName(p['topic']);
    const ctx = await this.#auth(req, 'subscribe', '*');
    const key = url.searchParams.get('key');
    if (key === null || key === '') throw new SkyrocketError('INVALID_ARGUMENT', 'key is required', { field: 'key' });
    const from = url.searchParams.has('from') ? Number(url.searchParams.get('from')) : 0;
    const to = url.searchParams.has('to') ? Number(url.searchParams.get('to')) : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'from and to must be epoch milliseconds with from <= to', { field: 'from' });
    }
    const route = await this.#directory.topic(topic);
    const found: Array<Record<string, unknown>> = [];
    if (this.#localQueues(route).length > 0 || ctx.internal) {
      for (const m of await this.store.queryByKey(topic, key, { fromMs: from, toMs: to, max: 64 })) found.push(messageJson(m));
    }
    if (!ctx.internal) {
      for (const owner of this.#ownerGroups(route).filter((g) => g !== this.config.brokerGroup)) {
        const reply = await this.#forward(owner, ctx, 'GET', `${url.pathname}${url.search}`);
        if (reply.status !== 200) throw errorFromReply(reply);
        found.push(...(reply.json['messages'] as Array<Record<string, unknown>>));
      }
    }
    found.sort((a, b) => (b['storedAt'] as number) - (a['storedAt'] as number));
    sendJson(res, 200, { messages: found });
  }

  // ---------------------------------------------------------------------------------------------
  // Transactions (transaction/transaction-service.ts has the design)

  /** Adds what the DynamoDB index lacks and drops what it holds too much, until it succeeds once. */
  #reconcileTransactionIndex(): void {
    const attempt = (): void => {
      if (this.#stopping) return;
      this.#transactionIndex.reconcile(this.transactions.pending()).catch((err: unknown) => {
        this.#log.warn({ err, brokerGroup: this.config.brokerGroup }, 'transaction index: could not reconcile; retrying');
        setTimeout(attempt, 5_000).unref();
      });
    };
    attempt();
  }

  async #createProducerGroup(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    const body = await readJson(req, 64 * 1024);
    const group = await this.#registry.createProducerGroup({
      name: body['name'] as string,
      checkUrl: body['checkUrl'] as string | undefined,
      checkLambdaArn: body['checkLambdaArn'] as string | undefined,
      checkDelayMs: body['checkDelayMs'] as number | undefined,
      checkIntervalMs: body['checkIntervalMs'] as number | undefined,
      maxChecks: body['maxChecks'] as number | undefined,
    });
    sendJson(res, 201, producerGroupJson(group));
  }

  async #listProducerGroups(req: ApiRequest, res: ApiResponse): Promise<void> {
    await this.#auth(req, 'admin', '*');
    sendJson(res, 200, { producerGroups: (await this.#registry.listProducerGroups()).map(producerGroupJson) });
  }

  /** The group's settings: its registration, or the defaults an unregistered group gets. */
  async #getProducerGroup(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = checkProducerGroupName(p['producerGroup'], 'producerGroup');
    await this.#auth(req, 'admin', '*');
    sendJson(res, 200, producerGroupJson(await this.#registry.effectiveProducerGroup(name)));
  }

  async #deleteProducerGroup(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const name = checkProducerGroupName(p['producerGroup'], 'producerGroup');
    await this.#auth(req, 'admin', '*');
    await this.#registry.deleteProducerGroup(name);
    res.writeHead(204).end();
  }

  /**
   * Long poll of an SDK producer for check requests of its group, from every broker group: the
   * check requests of topics the caller may publish to.
   */
  async #pollChecks(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const producerGroup = checkProducerGroupName(p['producerGroup'], 'producerGroup');
    const ctx = await this.#authenticate(req);
    const raw = await readBody(req, 64 * 1024);
    const body = raw.length === 0 ? {} : parseJsonObject(raw);
    const max = validateMaxMessages(body['max'] ?? 32, 'max');
    const waitMs = validateWaitMs(body['waitMs'] ?? 0);
    // A forwarded poll carries the caller's publish permissions; nobody else may narrow or widen them.
    const publish = ctx.internal && Array.isArray(body['publish']) ? (body['publish'] as unknown[]).filter((t) => typeof t === 'string') : undefined;
    if (!ctx.internal && !ctx.principal.admin && ctx.principal.publish.length === 0) {
      throw new SkyrocketError('FORBIDDEN', `principal ${ctx.principal.name} may not publish to any topic`);
    }
    const allowed = (topic: string): boolean =>
      publish === undefined ? authorize(ctx.principal, 'publish', topic) : publish.includes('*') || publish.includes(topic);
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const deadline = this.#now() + waitMs;
    const local = (limit: number, until: number, signal: AbortSignal): Promise<Array<Record<string, unknown>>> =>
      this.#stopping ? Promise.resolve([]) : this.transactions.takeChecks(producerGroup, limit, allowed, until, signal).then((c) => c.map(checkJson));
    if (ctx.internal) {
      sendJson(res, 200, { checks: await local(max, deadline, abort.signal) });
      return;
    }
    const owners = await this.#allGroups();
    const forwardedPublish = ctx.principal.admin ? ['*'] : ctx.principal.publish;
    const fromOwner = async (owner: string, limit: number, until: number, signal: AbortSignal): Promise<Array<Record<string, unknown>>> => {
      if (owner === this.config.brokerGroup) return local(limit, until, signal);
      const payload = JSON.stringify({ publish: forwardedPublish, max: limit, waitMs: Math.max(0, until - this.#now()) });
      const reply = await this.#forward(owner, ctx, 'POST', `/v1/producer-groups/${encodeURIComponent(producerGroup)}/checks`, payload, signal);
      if (reply.status !== 200) throw errorFromReply(reply);
      return (reply.json['checks'] as Array<Record<string, unknown>>) ?? [];
    };
    // Pass 1: what is queued now, our own first; a broker group that does not answer is skipped.
    const checks: Array<Record<string, unknown>> = [];
    for (const owner of owners) {
      if (checks.length >= max) break;
      checks.push(...(await fromOwner(owner, max - checks.length, 0, abort.signal).catch(() => [])));
    }
    if (checks.length > 0 || this.#now() >= deadline) {
      sendJson(res, 200, { checks });
      return;
    }
    // Pass 2: wait on all of them, each for its share of `max` (a request taken beyond `max`
    // would be dropped and asked again only at the next check); the first to answer ends the others' waits.
    const stop = new AbortController();
    abort.signal.addEventListener('abort', () => stop.abort());
    const share = Math.max(1, Math.floor(max / owners.length));
    const results = await Promise.allSettled(
      owners.map(async (owner) => {
        const got = await fromOwner(owner, share, deadline, stop.signal);
        if (got.length > 0) stop.abort();
        return got;
      }),
    );
    for (const result of results) if (result.status === 'fulfilled') checks.push(...result.value);
    sendJson(res, 200, { checks: checks.slice(0, max) });
  }

  /** Where the transaction lives and whether the caller may see it; throws unless it is here. */
  async #transactionHere(ctx: RequestContext, id: string): Promise<boolean> {
    const { brokerGroup } = decodeTransactionId(id);
    if (brokerGroup === this.config.brokerGroup) return true;
    if (ctx.internal) throw new SkyrocketError('NOT_LEADER', `transaction ${id} is held by broker group ${brokerGroup}`);
    return false;
  }

  /** A caller may see and resolve the transactions of topics it may publish to. */
  #mayPublish(ctx: RequestContext, topic: unknown): void {
    if (typeof topic !== 'string' || !authorize(ctx.principal, 'publish', topic)) {
      throw new SkyrocketError('FORBIDDEN', `principal ${ctx.principal.name} may not publish to the topic of this transaction`);
    }
  }

  async #getTransaction(req: ApiRequest, res: ApiResponse, p: Params, url: RequestTarget): Promise<void> {
    const id = p['transactionId'] ?? '';
    decodeTransactionId(id);
    const ctx = await this.#authenticate(req);
    const withMessage = url.searchParams.get('message') !== 'false';
    if (!(await this.#transactionHere(ctx, id))) {
      const reply = await this.#forward(decodeTransactionId(id).brokerGroup, ctx, 'GET', `${url.pathname}${url.search}`);
      if (reply.status === 200) this.#mayPublish(ctx, reply.json['topic']);
      this.#relay(res, reply);
      return;
    }
    const status = await this.transactions.status(id);
    this.#mayPublish(ctx, status.topic);
    sendJson(res, 200, transactionJson(status, withMessage));
  }

  async #commitTransaction(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const id = p['transactionId'] ?? '';
    decodeTransactionId(id);
    const ctx = await this.#authenticate(req);
    const raw = await readBody(req, 64 * 1024);
    await this.#endTransaction(ctx, res, id, 'COMMIT', raw);
  }

  async #rollbackTransaction(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const id = p['transactionId'] ?? '';
    decodeTransactionId(id);
    const ctx = await this.#authenticate(req);
    const raw = await readBody(req, 64 * 1024);
    await this.#endTransaction(ctx, res, id, 'ROLLBACK', raw);
  }

  /**
   * Commit or rollback, here or at the owning broker group. The body is optional; the check
   * sweep (an internal caller) or an admin may say what resolved it and after how many checks.
   */
  async #endTransaction(ctx: RequestContext, res: ApiResponse, id: string, outcome: Outcome, raw: Buffer): Promise<void> {
    const body = raw.length === 0 ? {} : parseJsonObject(raw);
    let resolvedBy: ResolvedBy = 'PRODUCER';
    let checks: number | undefined;
    if (body['resolvedBy'] !== undefined || body['checks'] !== undefined) {
      if (!ctx.internal && !ctx.principal.admin) {
        throw new SkyrocketError('FORBIDDEN', 'only the check sweep or an admin key may set resolvedBy and checks');
      }
      const by = body['resolvedBy'] ?? 'PRODUCER';
      if (!(resolvers as readonly unknown[]).includes(by)) {
        throw new SkyrocketError('INVALID_ARGUMENT', `resolvedBy must be one of ${resolvers.join(', ')}`, { field: 'resolvedBy' });
      }
      resolvedBy = by as ResolvedBy;
      if (body['checks'] !== undefined && (!Number.isSafeInteger(body['checks']) || (body['checks'] as number) < 0)) {
        throw new SkyrocketError('INVALID_ARGUMENT', 'checks must be a non-negative integer', { field: 'checks' });
      }
      checks = body['checks'] as number | undefined;
    }
    const verb = outcome === 'COMMIT' ? 'commit' : 'rollback';
    if (!(await this.#transactionHere(ctx, id))) {
      const owner = decodeTransactionId(id).brokerGroup;
      const path = `/v1/transactions/${encodeURIComponent(id)}`;
      const status = await this.#forward(owner, ctx, 'GET', `${path}?message=false`);
      if (status.status !== 200) {
        this.#relay(res, status);
        return;
      }
      this.#mayPublish(ctx, status.json['topic']);
      this.#relay(res, await this.#forward(owner, ctx, 'POST', `${path}/${verb}`, raw.length === 0 ? '{}' : raw));
      return;
    }
    if (!ctx.internal) this.#mayPublish(ctx, (await this.transactions.status(id)).topic);
    const status = await this.transactions.resolve(id, outcome, resolvedBy, checks);
    this.#log.info(
      { transactionId: id, topic: status.topic, producerGroup: status.producerGroup, state: status.state, resolvedBy: status.resolvedBy, checks },
      `transaction ${verb}`,
    );
    sendJson(res, 200, transactionJson(status, false));
  }

  /** The check sweep asks the producer group through its SDK producers' long polls. */
  async #checkTransaction(req: ApiRequest, res: ApiResponse, p: Params): Promise<void> {
    const id = p['transactionId'] ?? '';
    decodeTransactionId(id);
    const ctx = await this.#auth(req, 'admin', '*');
    const raw = await readBody(req, 64 * 1024);
    const body = raw.length === 0 ? {} : parseJsonObject(raw);
    const checks = body['checks'] ?? 1;
    if (!Number.isSafeInteger(checks) || (checks as number) < 0) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'checks must be a non-negative integer', { field: 'checks' });
    }
    if (!(await this.#transactionHere(ctx, id))) {
      this.#relay(res, await this.#forward(decodeTransactionId(id).brokerGroup, ctx, 'POST', `/v1/transactions/${encodeURIComponent(id)}/check`, raw.length === 0 ? '{}' : raw));
      return;
    }
    sendJson(res, 200, transactionJson(await this.transactions.requestCheck(id, checks as number), false));
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Graceful stop: refuse new requests, let running ones finish (up to the grace period), then
   * flush and close the store.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#log.info({ brokerId: this.config.brokerId }, 'broker stopping');
    // Running invocations may finish and ack within the grace period; the store stays open for them.
    const dispatcherStopped = this.dispatcher.stop(Date.now() + this.config.shutdownGraceMs);
    for (const topic of [...this.#waiters.keys()]) this.#notify(topic);
    this.transactions.interrupt();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const wireClosed = this.#wire?.close();
    this.#server.closeIdleConnections();
    const deadline = Date.now() + this.config.shutdownGraceMs;
    while (this.#inflightRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#server.closeAllConnections();
    this.#wire?.destroyAll();
    await closed;
    await wireClosed;
    await dispatcherStopped;
    await this.#timers.stop();
    await this.groups.close();
    this.#transactionIndex.close();
    await this.transactions.close();
    await this.store.close();
    this.#log.info({ brokerId: this.config.brokerId }, 'broker stopped');
  }
}

/** Route labels by path, memoized (bounded: paths hold topic and group names). */
const routeLabels = new BoundedMap<string, string>(4096);

function routeLabel(pathname: string): string {
  let label = routeLabels.get(pathname);
  if (label === undefined) {
    label = computeRouteLabel(pathname);
    routeLabels.set(pathname, label);
  }
  return label;
}

function computeRouteLabel(pathname: string): string {
  return pathname
    .split('/')
    .map((part, i, all) => {
      const prev = all[i - 1];
      if (prev === 'topics' || prev === 'groups' || prev === 'messages' || prev === 'queues' || prev === 'lambda-subscriptions') return `:${prev}`;
      if (prev === 'transactions' || prev === 'producer-groups') return `:${prev}`;
      return part;
    })
    .join('/');
}

interface HandleFailure {
  receiptHandle: unknown;
  code: string;
  message: string;
}

/** The `receiptHandles` of an ack or nack: a list of 1 to the receive maximum. */
function handleList(body: Record<string, unknown>, field = 'receiptHandles'): unknown[] {
  const handles = body[field];
  if (!Array.isArray(handles) || handles.length === 0 || handles.length > limits.receiveMessagesMaxCount) {
    throw new SkyrocketError('INVALID_ARGUMENT', `${field} must be a list of 1 to ${limits.receiveMessagesMaxCount} handles`, { field });
  }
  return handles;
}

function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new SkyrocketError('MALFORMED_JSON', `request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SkyrocketError('MALFORMED_JSON', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/** Turns the API's `body` + `bodyEncoding` into bytes, leaving every other check to validation. */
function decodeBodies(messages: unknown, topic: string): unknown {
  if (!Array.isArray(messages)) {
    throw new SkyrocketError('INVALID_ARGUMENT', 'messages must be a list', { field: 'messages' });
  }
  return messages.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return m;
    const { body, bodyEncoding, ...rest } = m as Record<string, unknown>;
    const field = `messages[${i}].body`;
    if (typeof body !== 'string') throw new SkyrocketError('INVALID_ARGUMENT', 'body must be a string', { field });
    let bytes: Buffer;
    if (bodyEncoding === undefined || bodyEncoding === 'utf8') {
      bytes = Buffer.from(body, 'utf8');
    } else if (bodyEncoding === 'base64') {
      if (body.length % 4 !== 0 || !base64Pattern.test(body)) {
        throw new SkyrocketError('INVALID_ARGUMENT', 'body is not valid base64', { field });
      }
      bytes = Buffer.from(body, 'base64');
    } else {
      throw new SkyrocketError('INVALID_ARGUMENT', 'bodyEncoding must be utf8 or base64', { field: `messages[${i}].bodyEncoding` });
    }
    if ('topic' in rest) throw new SkyrocketError('INVALID_ARGUMENT', 'unknown message field', { field: `messages[${i}].topic` });
    return { ...rest, topic, body: bytes };
  });
}

/** The messages of a framed send, shaped as `decodeBodies` shapes the JSON ones. */
function framedMessages(frame: Frame, topic: string): unknown {
  return frame.meta.messages.map((m, i) => {
    for (const field of ['topic', 'body', 'bodyEncoding']) {
      if (field in m) throw new SkyrocketError('INVALID_ARGUMENT', 'unknown message field', { field: `messages[${i}].${field}` });
    }
    return { ...m, topic, body: frame.bodies[i] as Buffer };
  });
}

function bodyJson(body: Uint8Array): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return isUtf8(buf) ? { body: buf.toString('utf8'), bodyEncoding: 'utf8' } : { body: buf.toString('base64'), bodyEncoding: 'base64' };
}

export function messageJson(m: StoredMessage): Record<string, unknown> {
  return Object.assign(messageMeta(m), bodyJson(m.body));
}

/**
 * A message's JSON form without its body: what a frame's meta holds for it. Given the frame's
 * topic, the short form core/frame.ts allows for answers: the topic left out when it is the
 * frame's, and an absent tag, keys or properties left out.
 */
function messageMeta(m: StoredMessage, frameTopic?: string): Record<string, unknown> {
  const out: Record<string, unknown> = { messageId: m.messageId };
  const short = frameTopic !== undefined;
  if (!short || m.topic !== frameTopic) out['topic'] = m.topic;
  if (!short || m.tag !== undefined) out['tag'] = m.tag ?? null;
  if (!short || m.keys.length > 0) out['keys'] = m.keys;
  if (!short || !isEmpty(m.properties)) out['properties'] = m.properties;
  out['queueId'] = m.queueId;
  out['queueOffset'] = m.queueOffset;
  out['bornAt'] = m.bornTimestamp;
  out['storedAt'] = m.storeTimestamp;
  out['deliveryAttempt'] = m.deliveryAttempt;
  if (m.messageGroup !== undefined) out['messageGroup'] = m.messageGroup;
  if (m.deliverAt !== undefined) out['deliverAt'] = m.deliverAt;
  return out;
}

function isEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return false;
  return true;
}

function deliveryJson(d: Delivery): Record<string, unknown> {
  const out = messageJson(d.message);
  out['receiptHandle'] = d.receiptHandle;
  return out;
}

/** How a receive answer is written: as the client's Accept header asks, the binary form first. */
type AnswerForm = 'json' | 'frame' | 'deliveries';

function answerForm(accept: string | undefined): AnswerForm {
  if (namesDeliveries(accept)) return 'deliveries';
  return namesFrame(accept) ? 'frame' : 'json';
}

/** Buffers of binary receive answers, reused once written (see BufferPool). */
const answerBuffers = new BufferPool();

/**
 * Answers a receive in the form the client asked for: JSON, the frame of core/frame.ts, or the
 * binary deliveries of core/delivery-frame.ts. Deliveries are this broker's own or, from another
 * broker group, already in JSON form.
 */
function sendDeliveries(
  res: ApiResponse,
  deliveries: ReadonlyArray<Delivery | Record<string, unknown>>,
  form: AnswerForm,
  topic: string,
  ackFailed?: HandleFailure[],
): void {
  const isLocal = (d: Delivery | Record<string, unknown>): d is Delivery => d instanceof Delivery;
  const extra = ackFailed === undefined ? {} : { ackFailed };
  if (form === 'json') {
    sendJson(res, 200, { messages: deliveries.map((d) => (isLocal(d) ? deliveryJson(d) : d)), ...extra });
    return;
  }
  if (form === 'deliveries') {
    const fields = deliveries.map((d) => (isLocal(d) ? deliveryFields(d) : deliveryFieldsOfJson(d)));
    let taken: Buffer | undefined;
    const answer = encodeDeliveries(topic, fields, (bytes) => (taken = answerBuffers.acquire(bytes)), extra);
    res.writeHead(200, { 'content-type': deliveriesMediaType, 'content-length': answer.length });
    // Back to the pool once written to the socket; an answer cut short keeps its buffer.
    res.end(answer, () => answerBuffers.release(taken as Buffer));
    return;
  }
  const metas = new Array<Record<string, unknown>>(deliveries.length);
  const bodies = new Array<Uint8Array>(deliveries.length);
  deliveries.forEach((d, i) => {
    if (isLocal(d)) {
      const meta = messageMeta(d.message, topic);
      meta['receiptHandle'] = d.receiptHandle;
      metas[i] = meta;
      bodies[i] = d.message.body;
    } else {
      const { body: _body, bodyEncoding: _encoding, ...meta } = d;
      metas[i] = meta;
      bodies[i] = bodyOfJson(d);
    }
  });
  const frame = encodeFrame(metas, bodies, { topic, ...extra });
  res.writeHead(200, { 'content-type': frameMediaType, 'content-length': frame.length });
  res.end(frame);
}

function deliveryFields(d: Delivery): DeliveryFields {
  const m = d.message;
  return {
    messageId: m.messageId,
    topic: m.topic,
    tag: m.tag,
    keys: m.keys,
    properties: m.properties,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    bornAt: m.bornTimestamp,
    storedAt: m.storeTimestamp,
    deliveryAttempt: m.deliveryAttempt,
    messageGroup: m.messageGroup,
    deliverAt: m.deliverAt,
    receiptHandle: d.handle,
    body: m.body,
  };
}

/** A delivery another broker group answered in JSON (see deliveryJson), for the binary form. */
function deliveryFieldsOfJson(d: Record<string, unknown>): DeliveryFields {
  const { body: _body, bodyEncoding: _encoding, ...rest } = d;
  return { ...(rest as unknown as Omit<DeliveryFields, 'body'>), body: bodyOfJson(d) };
}

/** The body of a message in JSON form (see bodyJson): text or base64. */
function bodyOfJson(d: Record<string, unknown>): Buffer {
  return Buffer.from(String(d['body']), d['bodyEncoding'] === 'base64' ? 'base64' : 'utf8');
}

function topicJson(t: TopicRoute): Record<string, unknown> {
  return { name: t.name, type: t.type, queues: t.queueGroups.length, readable: t.readable, writable: t.writable };
}

/** A transaction's status in the REST API; the message without a queue offset until committed. */
function transactionJson(status: TransactionStatus, withMessage: boolean): Record<string, unknown> {
  const { message, ...rest } = status;
  const out: Record<string, unknown> = { ...rest };
  if (status.state === 'COMMITTED' && message.queueOffset >= 0) out['queueId'] = message.queueId;
  if (status.state === 'COMMITTED' && message.queueOffset >= 0) out['queueOffset'] = message.queueOffset;
  if (withMessage) out['message'] = pendingMessageJson(message);
  return out;
}

function pendingMessageJson(m: StoredMessage): Record<string, unknown> {
  const json = messageJson(m);
  if (m.queueOffset < 0) delete json['queueOffset'];
  return json;
}

function checkJson(c: CheckRequest): Record<string, unknown> {
  return {
    transactionId: c.transactionId,
    messageId: c.messageId,
    producerGroup: c.producerGroup,
    topic: c.topic,
    checks: c.checks,
    message: pendingMessageJson(c.message),
  };
}

function producerGroupJson(g: ProducerGroup): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: g.name,
    registered: g.registered,
    checkDelayMs: g.checkDelayMs,
    checkIntervalMs: g.checkIntervalMs,
    maxChecks: g.maxChecks,
  };
  if (g.checkUrl !== undefined) out['checkUrl'] = g.checkUrl;
  if (g.checkLambdaArn !== undefined) out['checkLambdaArn'] = g.checkLambdaArn;
  return out;
}

function errorFromReply(reply: { status: number; json: Record<string, unknown> }): SkyrocketError {
  const error = reply.json['error'] as { code?: string; message?: string; field?: string } | undefined;
  const code = error?.code;
  return new SkyrocketError(
    isErrorCode(code) ? code : 'INTERNAL_ERROR',
    error?.message ?? `another broker answered ${reply.status}`,
    error?.field === undefined ? {} : { field: error.field },
  );
}

/** Another broker's JSON answer; anything else (a proxy's HTML error page) becomes a 503. */
async function replyJson(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  return new SkyrocketError('SERVICE_UNAVAILABLE', `another broker answered ${response.status} without JSON`).toJSON() as unknown as Record<
    string,
    unknown
  >;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** FNV-1a over UTF-16 code units: stable across processes and versions, cheap. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
