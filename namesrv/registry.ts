/**
 * The name server: Skyrocket's routing registry, kept in DynamoDB.
 *
 * Every write is a single-item conditional write, and every item that changes carries a `version`
 * that each write increments. The embedded DynamoDB-compatible server has no TransactWriteItems
 * and no TTL expiry, so nothing here needs either: an item whose `expiresAt` has passed reads as
 * absent, whether or not anything has deleted it yet.
 *
 * Queue placement: a topic has queue ids `0 … queues-1`, global to the topic. At creation each
 * queue is given to one broker group, round-robin over the named broker groups (by default every
 * broker group with a live broker, sorted by name), and the list `assignment[queueId] = group`
 * is stored in the topic's item. The assignment never changes by itself: a broker group that goes
 * away leaves its queues without a leader until it returns, because the queues' data lives there.
 * A route resolves each queue to the address of its group's live leader.
 */
import assert from 'node:assert/strict';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
  paginateScan,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { SkyrocketError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { messageTypes, type MessageType } from '../core/message.ts';
import {
  validateGroupName,
  validateMaxDeliveryAttempts,
  validateQueueCount,
  validateTopicName,
} from '../core/validate.ts';
import { generateApiKey, hashApiKey, isWellFormedApiKey, wildcard, type Permissions, type Principal } from './auth.ts';
import { checkLambdaSubscription, lambdaSubscriptionLimits, type LambdaSubscriptionSpec } from './lambda-subscription.ts';
import { tableNames, type TableNames } from './tables.ts';

// ---- Brokers ----

export const brokerRoles = ['LEADER', 'FOLLOWER'] as const;
export type BrokerRole = (typeof brokerRoles)[number];

export interface BrokerRegistration {
  /** Stable identity of the broker process (its slot), 1 to 64 characters of `[a-zA-Z0-9_.-]`. */
  brokerId: string;
  /** The replica set the broker belongs to; same character rules as `brokerId`. */
  brokerGroup: string;
  /** Where other brokers and clients reach it: an `http:` or `https:` URL. */
  address: string;
  role: BrokerRole;
  /** The leader-lease epoch the broker acts under; a registration with an older one is refused. */
  epoch: number;
  /**
   * How long the registration counts as live without a heartbeat.
   * @default 10_000
   */
  ttlMs?: number;
}

export interface Broker {
  brokerId: string;
  brokerGroup: string;
  address: string;
  role: BrokerRole;
  epoch: number;
  heartbeatAt: number;
  /** Epoch milliseconds after which the broker counts as gone. */
  expiresAt: number;
  version: number;
}

// ---- Topics ----

export interface TopicPerm {
  read: boolean;
  write: boolean;
}

export interface TopicSpec {
  name: string;
  /**
   * Number of message queues, from 1 to `limits.topicQueuesMaxCount`.
   * @default limits.topicQueuesDefaultCount (8)
   */
  queues?: number;
  /** @default 'NORMAL' */
  type?: MessageType;
  /** @default { read: true, write: true } */
  perm?: Partial<TopicPerm>;
  /**
   * How long messages are kept, in milliseconds.
   * @default the cluster's retention
   */
  retentionMs?: number;
  /**
   * The broker groups to spread the queues over, round-robin in the order given.
   * @default every broker group with a live broker, sorted by name
   */
  brokerGroups?: readonly string[];
}

export interface Topic {
  name: string;
  type: MessageType;
  queues: number;
  /** `assignment[queueId]` is the broker group that holds the queue. */
  assignment: string[];
  perm: TopicPerm;
  retentionMs?: number;
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface TopicUpdate {
  name: string;
  /** The version the caller read; the update fails with CONFLICT if the topic changed since. */
  version: number;
  perm?: Partial<TopicPerm>;
  /** A number sets the topic's retention; `null` removes it, so the cluster's applies. */
  retentionMs?: number | null;
}

/** Where one queue of a topic lives now. */
export interface QueueRoute {
  queueId: number;
  brokerGroup: string;
  /** The address of the group's live leader, or undefined while the group has none. */
  leaderAddress: string | undefined;
}

// ---- Consumer groups ----

export const consumeModes = ['CLUSTERING', 'BROADCASTING'] as const;
export type ConsumeMode = (typeof consumeModes)[number];

export interface GroupSpec {
  name: string;
  /** @default 'CLUSTERING' */
  mode?: ConsumeMode;
  /** Whether each queue (and message group) is consumed one message at a time, in order. @default false */
  orderly?: boolean;
  /**
   * Deliveries of one message before it moves to the group's dead-letter topic.
   * @default limits.deliveryAttemptsDefaultCount (16)
   */
  maxDeliveryAttempts?: number;
}

export interface Group {
  name: string;
  mode: ConsumeMode;
  orderly: boolean;
  maxDeliveryAttempts: number;
  /** The topics whose messages the brokers push to a Lambda function; absent when none. */
  lambdaSubscriptions?: LambdaSubscriptionSpec[];
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface GroupUpdate {
  name: string;
  /** The version the caller read; the update fails with CONFLICT if the group changed since. */
  version: number;
  mode?: ConsumeMode;
  orderly?: boolean;
  maxDeliveryAttempts?: number;
}

// ---- Leases ----

export interface Lease {
  brokerGroup: string;
  holder: string;
  /** Increases by one every time the lease passes to a holder that did not hold it unexpired. */
  epoch: number;
  expiresAt: number;
}

// ---- The name server ----

export interface NameServerOptions {
  /** A plain client is wrapped in a document client; its middleware stack is shared. */
  client: DynamoDBClient | DynamoDBDocumentClient;
  /** Prefix of the deployment's table names, such as `skyrocket-dev-`. */
  prefix: string;
  /**
   * The clock for heartbeats, expiry and leases, in epoch milliseconds. Leases and expiry compare
   * times written by other processes, so the clocks must agree to well within the TTLs used.
   * @default Date.now
   */
  now?: () => number;
}

const brokerTtlDefaultMs = 10_000;
// One day: a longer TTL would make a dead broker or leader linger past any useful failover.
const ttlMaxMs = 24 * 3600 * 1000;

export class NameServer {
  readonly tables: TableNames;
  readonly now: () => number;
  readonly #db: DynamoDBDocumentClient;

  constructor(options: NameServerOptions) {
    this.tables = tableNames(options.prefix);
    this.now = options.now ?? Date.now;
    this.#db =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  // ---- Brokers ----

  /**
   * Registers a broker, or replaces its registration, live for `ttlMs`.
   * @throws SkyrocketError CONFLICT when the broker is registered under a newer epoch.
   */
  async registerBroker(input: BrokerRegistration): Promise<Broker> {
    const brokerId = checkId(input.brokerId, 'brokerId');
    const brokerGroup = checkId(input.brokerGroup, 'brokerGroup');
    const address = checkAddress(input.address);
    const role = checkOneOf(input.role, brokerRoles, 'role');
    const epoch = checkInteger(input.epoch, 'epoch', 0, Number.MAX_SAFE_INTEGER);
    const ttlMs = checkInteger(input.ttlMs ?? brokerTtlDefaultMs, 'ttlMs', 1, ttlMaxMs);
    const now = this.now();
    const update = setFields({ brokerGroup, address, role, epoch, heartbeatAt: now, expiresAt: now + ttlMs });
    const out = await this.#update('register broker', {
      TableName: this.tables.brokers,
      Key: { brokerId },
      ...update,
      // A broker of a deposed leadership must not overwrite a newer registration of its slot.
      ConditionExpression: 'attribute_not_exists(#epoch) OR #epoch <= :epoch',
    });
    if (out === undefined) {
      throw new SkyrocketError('CONFLICT', `broker ${brokerId} is registered under a newer epoch`, { field: 'epoch' });
    }
    return decodeBroker(out);
  }

  /**
   * Keeps a registered broker live for another `ttlMs` from now. A broker whose registration
   * expired but was not removed comes back to life; leadership is fenced by lease epochs instead.
   * @throws SkyrocketError NOT_FOUND when the broker is not registered.
   */
  async heartbeat(brokerId: string, ttlMs: number): Promise<Broker> {
    checkId(brokerId, 'brokerId');
    checkInteger(ttlMs, 'ttlMs', 1, ttlMaxMs);
    const now = this.now();
    const out = await this.#update('broker heartbeat', {
      TableName: this.tables.brokers,
      Key: { brokerId },
      ...setFields({ heartbeatAt: now, expiresAt: now + ttlMs }, { '#brokerId': 'brokerId' }),
      ConditionExpression: 'attribute_exists(#brokerId)',
    });
    if (out === undefined) throw new SkyrocketError('NOT_FOUND', `broker ${brokerId} is not registered`, { field: 'brokerId' });
    return decodeBroker(out);
  }

  /** Removes a broker's registration; removing an absent one is not an error. */
  async deregisterBroker(brokerId: string): Promise<void> {
    checkId(brokerId, 'brokerId');
    await call('deregister broker', this.#db.send(new DeleteCommand({ TableName: this.tables.brokers, Key: { brokerId } })));
  }

  /** The brokers whose registration has not expired, sorted by id. */
  async listBrokers(): Promise<Broker[]> {
    const now = this.now();
    const brokers = (await this.#scan(this.tables.brokers)).map(decodeBroker);
    return brokers.filter((b) => b.expiresAt > now).sort((a, b) => compare(a.brokerId, b.brokerId));
  }

  // ---- Topics ----

  /**
   * Creates a topic and places its queues on broker groups.
   * @throws SkyrocketError ALREADY_EXISTS; SERVICE_UNAVAILABLE when no broker group is named
   *   and none has a live broker; ILLEGAL_TOPIC or INVALID_ARGUMENT for bad input.
   */
  async createTopic(spec: TopicSpec): Promise<Topic> {
    const name = validateTopicName(spec.name, 'name');
    const queues = validateQueueCount(spec.queues ?? limits.topicQueuesDefaultCount);
    const type = checkOneOf(spec.type ?? 'NORMAL', messageTypes, 'type');
    const perm = checkPerm(spec.perm ?? {}, { read: true, write: true });
    const retentionMs = spec.retentionMs === undefined ? undefined : checkRetention(spec.retentionMs);
    let groups: string[];
    if (spec.brokerGroups === undefined) {
      groups = [...new Set((await this.listBrokers()).map((b) => b.brokerGroup))].sort(compare);
      if (groups.length === 0) {
        throw new SkyrocketError('SERVICE_UNAVAILABLE', 'no broker group is live to place the queues on');
      }
    } else {
      if (!Array.isArray(spec.brokerGroups) || spec.brokerGroups.length === 0) {
        throw new SkyrocketError('INVALID_ARGUMENT', 'brokerGroups must be a non-empty array', { field: 'brokerGroups' });
      }
      groups = spec.brokerGroups.map((g, i) => checkId(g, `brokerGroups[${i}]`));
    }
    const now = this.now();
    const topic: Topic = {
      name,
      type,
      queues,
      assignment: Array.from({ length: queues }, (_, queueId) => groups[queueId % groups.length] as string),
      perm,
      ...(retentionMs === undefined ? {} : { retentionMs }),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    await this.#create(this.tables.topics, topic, 'name', () => `topic ${name} already exists`);
    return topic;
  }

  /** The topic, or undefined when it does not exist. */
  async getTopic(name: string): Promise<Topic | undefined> {
    validateTopicName(name, 'name');
    const item = await this.#get(this.tables.topics, { name });
    return item === undefined ? undefined : decodeTopic(item);
  }

  /** @throws SkyrocketError TOPIC_NOT_FOUND */
  async requireTopic(name: string): Promise<Topic> {
    return (await this.getTopic(name)) ?? throwNotFound('TOPIC_NOT_FOUND', `topic ${name} does not exist`);
  }

  /** All topics, sorted by name. */
  async listTopics(): Promise<Topic[]> {
    return (await this.#scan(this.tables.topics)).map(decodeTopic).sort((a, b) => compare(a.name, b.name));
  }

  /**
   * Changes a topic's permissions or retention, if nobody changed the topic since `version`.
   * @throws SkyrocketError TOPIC_NOT_FOUND, or CONFLICT on a stale version.
   */
  async updateTopic(update: TopicUpdate): Promise<Topic> {
    const name = validateTopicName(update.name, 'name');
    const current = checkVersion(await this.getTopic(name), update.version, 'TOPIC_NOT_FOUND', `topic ${name}`);
    const next: Topic = { ...current, perm: checkPerm(update.perm ?? {}, current.perm) };
    if (update.retentionMs === null) delete next.retentionMs;
    else if (update.retentionMs !== undefined) next.retentionMs = checkRetention(update.retentionMs);
    return this.#replace(this.tables.topics, next, `topic ${name}`);
  }

  /** @throws SkyrocketError TOPIC_NOT_FOUND */
  async deleteTopic(name: string): Promise<void> {
    validateTopicName(name, 'name');
    await this.#delete(this.tables.topics, 'name', name, 'TOPIC_NOT_FOUND', `topic ${name} does not exist`);
  }

  /** Where each queue of the topic lives now. @throws SkyrocketError TOPIC_NOT_FOUND */
  async getRoute(topicName: string): Promise<QueueRoute[]> {
    const [topic, brokers] = await Promise.all([this.requireTopic(topicName), this.listBrokers()]);
    return resolveRoute(topic, brokers, this.now());
  }

  // ---- Consumer groups ----

  /** @throws SkyrocketError ALREADY_EXISTS, ILLEGAL_CONSUMER_GROUP or INVALID_ARGUMENT. */
  async createGroup(spec: GroupSpec): Promise<Group> {
    const name = validateGroupName(spec.name, 'name');
    const now = this.now();
    const group: Group = {
      name,
      mode: checkOneOf(spec.mode ?? 'CLUSTERING', consumeModes, 'mode'),
      orderly: checkBoolean(spec.orderly ?? false, 'orderly'),
      maxDeliveryAttempts: validateMaxDeliveryAttempts(spec.maxDeliveryAttempts ?? limits.deliveryAttemptsDefaultCount),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    await this.#create(this.tables.groups, group, 'name', () => `consumer group ${name} already exists`);
    return group;
  }

  /** The consumer group, or undefined when it does not exist. */
  async getGroup(name: string): Promise<Group | undefined> {
    validateGroupName(name, 'name');
    const item = await this.#get(this.tables.groups, { name });
    return item === undefined ? undefined : decodeGroup(item);
  }

  /** @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND */
  async requireGroup(name: string): Promise<Group> {
    return (await this.getGroup(name)) ?? throwNotFound('CONSUMER_GROUP_NOT_FOUND', `consumer group ${name} does not exist`);
  }

  /** All consumer groups, sorted by name. */
  async listGroups(): Promise<Group[]> {
    return (await this.#scan(this.tables.groups)).map(decodeGroup).sort((a, b) => compare(a.name, b.name));
  }

  /**
   * Changes a group's settings, if nobody changed the group since `version`.
   * @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND, or CONFLICT on a stale version.
   */
  async updateGroup(update: GroupUpdate): Promise<Group> {
    const name = validateGroupName(update.name, 'name');
    const what = `consumer group ${name}`;
    const current = checkVersion(await this.getGroup(name), update.version, 'CONSUMER_GROUP_NOT_FOUND', what);
    const next: Group = {
      ...current,
      mode: checkOneOf(update.mode ?? current.mode, consumeModes, 'mode'),
      orderly: checkBoolean(update.orderly ?? current.orderly, 'orderly'),
      maxDeliveryAttempts: validateMaxDeliveryAttempts(update.maxDeliveryAttempts ?? current.maxDeliveryAttempts),
    };
    return this.#replace(this.tables.groups, next, what);
  }

  /**
   * Adds or replaces the group's Lambda subscription to `spec.topic`. The write is conditional on
   * the version read, and retried on a concurrent change, so two writers never lose each other's
   * subscriptions.
   * @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND, INVALID_ARGUMENT.
   */
  async putLambdaSubscription(groupName: string, spec: LambdaSubscriptionSpec): Promise<Group> {
    const checked = checkLambdaSubscription(spec);
    return this.#changeSubscriptions(groupName, (list) => {
      const next = [...list.filter((s) => s.topic !== checked.topic), checked].sort((a, b) => compare(a.topic, b.topic));
      if (next.length > lambdaSubscriptionLimits.perGroupMaxCount) {
        invalid('topic', `a group has at most ${lambdaSubscriptionLimits.perGroupMaxCount} Lambda subscriptions`);
      }
      return next;
    });
  }

  /**
   * Removes the group's Lambda subscription to `topic`.
   * @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND, or NOT_FOUND when there is none.
   */
  async deleteLambdaSubscription(groupName: string, topic: string): Promise<Group> {
    validateTopicName(topic);
    return this.#changeSubscriptions(groupName, (list) => {
      if (!list.some((s) => s.topic === topic)) {
        throw new SkyrocketError('NOT_FOUND', `consumer group ${groupName} has no Lambda subscription to ${topic}`, { field: 'topic' });
      }
      return list.filter((s) => s.topic !== topic);
    });
  }

  async #changeSubscriptions(groupName: string, change: (list: LambdaSubscriptionSpec[]) => LambdaSubscriptionSpec[]): Promise<Group> {
    const name = validateGroupName(groupName, 'group');
    const what = `consumer group ${name}`;
    for (let attempt = 1; ; attempt++) {
      const current = await this.requireGroup(name);
      const { lambdaSubscriptions: _old, ...rest } = current;
      const list = change(current.lambdaSubscriptions ?? []);
      const next: Group = list.length === 0 ? rest : { ...rest, lambdaSubscriptions: list };
      try {
        return await this.#replace(this.tables.groups, next, what);
      } catch (error) {
        // Someone else changed the group between the read and the write: read it again.
        if (!(error instanceof SkyrocketError && error.code === 'CONFLICT') || attempt >= 5) throw error;
      }
    }
  }

  /** @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND */
  async deleteGroup(name: string): Promise<void> {
    validateGroupName(name, 'name');
    await this.#delete(this.tables.groups, 'name', name, 'CONSUMER_GROUP_NOT_FOUND', `consumer group ${name} does not exist`);
  }

  // ---- Principals ----

  /**
   * Creates a principal with a freshly generated API key. The key is returned here and nowhere
   * else: only its SHA-256 is stored.
   */
  async createPrincipal(input: { name: string; permissions: Permissions }): Promise<{ apiKey: string; principal: Principal }> {
    const apiKey = generateApiKey();
    const principal = this.#principal(input, apiKey);
    // A collision of 256 random bits will not happen; the condition makes sure it cannot overwrite.
    await this.#create(this.tables.principals, principal, 'keyHash', () => 'API key collision');
    return { apiKey, principal };
  }

  /**
   * Creates or replaces the principal of a given API key, such as the admin key from
   * `SKYROCKET_API_KEY`. Calling it again with the same input changes nothing.
   * @throws SkyrocketError INVALID_ARGUMENT for a key shorter than 16 or longer than 256
   *   characters, or one with characters other than printable ASCII.
   */
  async ensurePrincipal(input: { name: string; permissions: Permissions; apiKey: string }): Promise<Principal> {
    if (!isWellFormedApiKey(input.apiKey)) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'an API key must be 16 to 256 printable ASCII characters', {
        field: 'apiKey',
      });
    }
    const principal = this.#principal(input, input.apiKey);
    await call('put principal', this.#db.send(new PutCommand({ TableName: this.tables.principals, Item: principal })));
    return principal;
  }

  /**
   * The principal an API key belongs to, or undefined for an unknown or malformed key: one
   * GetItem by the key's SHA-256 (see `auth.ts` on why no comparison needs constant time).
   */
  async authenticate(apiKey: unknown): Promise<Principal | undefined> {
    if (!isWellFormedApiKey(apiKey)) return undefined;
    return this.getPrincipalByHash(hashApiKey(apiKey));
  }

  /** The principal whose API key has this SHA-256 (hex), or undefined. */
  async getPrincipalByHash(keyHash: string): Promise<Principal | undefined> {
    const item = await this.#get(this.tables.principals, { keyHash });
    return item === undefined ? undefined : decodePrincipal(item);
  }

  /** All principals, sorted by name. */
  async listPrincipals(): Promise<Principal[]> {
    return (await this.#scan(this.tables.principals)).map(decodePrincipal).sort((a, b) => compare(a.name, b.name));
  }

  #principal(input: { name: string; permissions: Permissions }, apiKey: string): Principal {
    return {
      name: checkPrincipalName(input.name),
      permissions: checkPermissions(input.permissions),
      keyHash: hashApiKey(apiKey),
      createdAt: this.now(),
    };
  }

  // ---- Leases ----

  /**
   * Takes the lease of a broker group for `ttlMs` if nobody holds it unexpired, or extends it if
   * `holder` already does. Taking it over bumps the epoch, so epochs strictly increase across
   * holders; extending keeps it.
   * @returns the lease, or undefined when another holder has it.
   */
  async acquireLease(brokerGroup: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    checkId(brokerGroup, 'brokerGroup');
    checkHolder(holder);
    checkInteger(ttlMs, 'ttlMs', 1, ttlMaxMs);
    const now = this.now();
    // The increment happens inside DynamoDB under the condition, so two acquirers that both saw
    // the lease expired cannot both win, and the item is never deleted, so the epoch never resets.
    const taken = await this.#update('acquire lease', {
      TableName: this.tables.leases,
      Key: { brokerGroup },
      UpdateExpression: 'SET #holder = :holder, #expiresAt = :expiresAt, #epoch = if_not_exists(#epoch, :zero) + :one',
      ConditionExpression: 'attribute_not_exists(#epoch) OR #expiresAt <= :now',
      ExpressionAttributeNames: { '#holder': 'holder', '#expiresAt': 'expiresAt', '#epoch': 'epoch' },
      ExpressionAttributeValues: { ':holder': holder, ':expiresAt': now + ttlMs, ':zero': 0, ':one': 1, ':now': now },
    });
    if (taken !== undefined) return decodeLease(taken);
    return this.#extendLease(brokerGroup, holder, undefined, ttlMs);
  }

  /**
   * Extends a lease its holder still holds, unexpired, under the same epoch.
   * @returns the extended lease, or undefined when it was lost (expired, taken over, released).
   */
  async renewLease(lease: Pick<Lease, 'brokerGroup' | 'holder' | 'epoch'>, ttlMs: number): Promise<Lease | undefined> {
    checkId(lease.brokerGroup, 'brokerGroup');
    checkHolder(lease.holder);
    checkInteger(ttlMs, 'ttlMs', 1, ttlMaxMs);
    return this.#extendLease(lease.brokerGroup, lease.holder, lease.epoch, ttlMs);
  }

  /**
   * Gives a lease up at once, so the next acquirer need not wait for it to expire. The item
   * stays, expired, to keep its epoch.
   * @returns whether the lease was held (by this holder, at this epoch) and is now released.
   */
  async releaseLease(lease: Pick<Lease, 'brokerGroup' | 'holder' | 'epoch'>): Promise<boolean> {
    checkId(lease.brokerGroup, 'brokerGroup');
    const out = await this.#update('release lease', {
      TableName: this.tables.leases,
      Key: { brokerGroup: lease.brokerGroup },
      UpdateExpression: 'SET #expiresAt = :zero',
      ConditionExpression: '#holder = :holder AND #epoch = :epoch',
      ExpressionAttributeNames: { '#holder': 'holder', '#expiresAt': 'expiresAt', '#epoch': 'epoch' },
      ExpressionAttributeValues: { ':holder': lease.holder, ':epoch': lease.epoch, ':zero': 0 },
    });
    return out !== undefined;
  }

  /** The lease of a broker group as stored, expired or not; undefined if never taken. */
  async getLease(brokerGroup: string): Promise<Lease | undefined> {
    checkId(brokerGroup, 'brokerGroup');
    const item = await this.#get(this.tables.leases, { brokerGroup });
    return item === undefined ? undefined : decodeLease(item);
  }

  async #extendLease(brokerGroup: string, holder: string, epoch: number | undefined, ttlMs: number): Promise<Lease | undefined> {
    const now = this.now();
    // DynamoDB rejects aliases an expression does not use, so `#epoch` is added only with its test.
    const names: Record<string, string> = { '#holder': 'holder', '#expiresAt': 'expiresAt' };
    const values: Record<string, unknown> = { ':holder': holder, ':expiresAt': now + ttlMs, ':now': now };
    let condition = '#holder = :holder AND #expiresAt > :now';
    if (epoch !== undefined) {
      condition += ' AND #epoch = :epoch';
      names['#epoch'] = 'epoch';
      values[':epoch'] = epoch;
    }
    const out = await this.#update('extend lease', {
      TableName: this.tables.leases,
      Key: { brokerGroup },
      UpdateExpression: 'SET #expiresAt = :expiresAt',
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    return out === undefined ? undefined : decodeLease(out);
  }

  // ---- Item plumbing ----

  async #get(table: string, key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const out = await call(`read ${table}`, this.#db.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true })));
    return out.Item;
  }

  async #scan(table: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    try {
      for await (const page of paginateScan({ client: this.#db }, { TableName: table, ConsistentRead: true })) {
        items.push(...(page.Items ?? []));
      }
    } catch (error) {
      throw unavailable(`scan ${table}`, error);
    }
    return items;
  }

  /** A conditional UpdateItem: the item as updated, or undefined when the condition did not hold. */
  async #update(what: string, input: Omit<UpdateCommandInput, 'ReturnValues'>): Promise<Record<string, unknown> | undefined> {
    const out = await conditional(what, this.#db.send(new UpdateCommand({ ...input, ReturnValues: 'ALL_NEW' })));
    return out === undefined ? undefined : (out.Attributes ?? {});
  }

  /** Puts a new item, failing with ALREADY_EXISTS if one with its key exists. */
  async #create(table: string, item: object, keyName: string, exists: () => string): Promise<void> {
    const put = new PutCommand({
      TableName: table,
      Item: item as Record<string, unknown>,
      ConditionExpression: 'attribute_not_exists(#key)',
      ExpressionAttributeNames: { '#key': keyName },
    });
    if ((await conditional(`create in ${table}`, this.#db.send(put))) === undefined) {
      throw new SkyrocketError('ALREADY_EXISTS', exists(), { field: 'name' });
    }
  }

  /** Writes the next version of an item, only if the stored one is still the one it came from. */
  async #replace<T extends { version: number; updatedAt: number }>(table: string, item: T, what: string): Promise<T> {
    const next = { ...item, version: item.version + 1, updatedAt: this.now() };
    const put = new PutCommand({
      TableName: table,
      Item: next as Record<string, unknown>,
      ConditionExpression: '#version = :version',
      ExpressionAttributeNames: { '#version': 'version' },
      ExpressionAttributeValues: { ':version': item.version },
    });
    // The item may also have been deleted since it was read; either way the caller must re-read.
    if ((await conditional(`update ${what}`, this.#db.send(put))) === undefined) {
      throw staleVersion(what, item.version, undefined);
    }
    return next;
  }

  async #delete(table: string, keyName: string, key: string, notFound: 'TOPIC_NOT_FOUND' | 'CONSUMER_GROUP_NOT_FOUND', message: string): Promise<void> {
    const del = new DeleteCommand({
      TableName: table,
      Key: { [keyName]: key },
      ConditionExpression: 'attribute_exists(#key)',
      ExpressionAttributeNames: { '#key': keyName },
    });
    if ((await conditional(`delete from ${table}`, this.#db.send(del))) === undefined) throwNotFound(notFound, message);
  }
}

// ---- Pure functions ----

/**
 * Resolves each queue of a topic to its broker group's leader: the live LEADER broker of the
 * group with the highest epoch. Two live leaders can be seen during a failover, before the
 * deposed one's registration expires; the higher epoch is the one the lease fences in.
 */
export function resolveRoute(topic: Topic, brokers: readonly Broker[], nowMs: number): QueueRoute[] {
  const leaders = new Map<string, Broker>();
  for (const broker of brokers) {
    if (broker.role !== 'LEADER' || broker.expiresAt <= nowMs) continue;
    const seen = leaders.get(broker.brokerGroup);
    if (seen === undefined || broker.epoch > seen.epoch) leaders.set(broker.brokerGroup, broker);
  }
  return topic.assignment.map((brokerGroup, queueId) => ({
    queueId,
    brokerGroup,
    leaderAddress: leaders.get(brokerGroup)?.address,
  }));
}

// ---- DynamoDB calls ----

/** Awaits a DynamoDB call; any failure becomes a retriable SERVICE_UNAVAILABLE. */
async function call<T>(what: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    throw unavailable(what, error);
  }
}

/** Awaits a conditional write; resolves to undefined when its condition did not hold. */
async function conditional<T>(what: string, request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
    throw unavailable(what, error);
  }
}

function unavailable(what: string, cause: unknown): SkyrocketError {
  return new SkyrocketError('SERVICE_UNAVAILABLE', `DynamoDB: could not ${what}`, { cause });
}

function throwNotFound(code: 'TOPIC_NOT_FOUND' | 'CONSUMER_GROUP_NOT_FOUND', message: string): never {
  throw new SkyrocketError(code, message, { field: 'name' });
}

/** The item as read, if it is still at the version the caller read; the write re-checks it. */
function checkVersion<T extends { version: number }>(
  current: T | undefined,
  version: number,
  notFound: 'TOPIC_NOT_FOUND' | 'CONSUMER_GROUP_NOT_FOUND',
  what: string,
): T {
  checkInteger(version, 'version', 1, Number.MAX_SAFE_INTEGER);
  if (current === undefined) throwNotFound(notFound, `${what} does not exist`);
  if (current.version !== version) throw staleVersion(what, version, current.version);
  return current;
}

function staleVersion(what: string, expected: number, found: number | undefined): SkyrocketError {
  const now = found === undefined ? 'it changed' : `it is at version ${found}`;
  return new SkyrocketError('CONFLICT', `${what} was updated by someone else: expected version ${expected}, ${now}; read it again`, {
    field: 'version',
  });
}

/**
 * `SET #f = :f, …` for each field, plus `version` incremented (1 on a new item). Every value is
 * aliased, so no attribute name can collide with DynamoDB's reserved words (`name`, `role`, …).
 */
function setFields(fields: Record<string, unknown>, extraNames: Record<string, string> = {}) {
  const names: Record<string, string> = { ...extraNames, '#version': 'version' };
  const values: Record<string, unknown> = { ':zero': 0, ':one': 1 };
  const sets = ['#version = if_not_exists(#version, :zero) + :one'];
  for (const [field, value] of Object.entries(fields)) {
    names[`#${field}`] = field;
    values[`:${field}`] = value;
    sets.push(`#${field} = :${field}`);
  }
  return { UpdateExpression: `SET ${sets.join(', ')}`, ExpressionAttributeNames: names, ExpressionAttributeValues: values };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- Input checks ----

// Broker ids and groups appear in S3 keys and log lines, so they keep to a safe alphabet.
const idPattern = /^[a-zA-Z0-9_.-]{1,64}$/;
// Lease holders are task ids or ARNs: any printable ASCII without spaces.
const holderPattern = /^[\x21-\x7e]{1,256}$/;
const principalNamePattern = /^[a-zA-Z0-9_.@-]{1,128}$/;

function invalid(field: string, message: string): never {
  throw new SkyrocketError('INVALID_ARGUMENT', message, { field });
}

function checkId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !idPattern.test(value)) invalid(field, `${field} must be 1 to 64 characters of [a-zA-Z0-9_.-]`);
  return value;
}

function checkHolder(value: unknown): string {
  if (typeof value !== 'string' || !holderPattern.test(value)) invalid('holder', 'holder must be 1 to 256 printable ASCII characters');
  return value;
}

function checkPrincipalName(value: unknown): string {
  if (typeof value !== 'string' || !principalNamePattern.test(value)) {
    invalid('name', 'a principal name must be 1 to 128 characters of [a-zA-Z0-9_.@-]');
  }
  return value;
}

function checkAddress(value: unknown): string {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    invalid('address', 'address must be an http: or https: URL');
  }
  return value as string;
}

function checkOneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (!allowed.includes(value as T)) invalid(field, `${field} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') invalid(field, `${field} must be true or false`);
  return value;
}

function checkInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function checkRetention(value: unknown): number {
  return checkInteger(value, 'retentionMs', 1, Number.MAX_SAFE_INTEGER);
}

function checkPerm(value: unknown, base: TopicPerm): TopicPerm {
  if (typeof value !== 'object' || value === null) invalid('perm', 'perm must be an object');
  const { read = base.read, write = base.write } = value as Partial<TopicPerm>;
  return { read: checkBoolean(read, 'perm.read'), write: checkBoolean(write, 'perm.write') };
}

function checkPermissions(value: unknown): Permissions {
  if (typeof value !== 'object' || value === null) invalid('permissions', 'permissions must be an object');
  const { admin, publish, subscribe, ...unknown } = value as Permissions;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) invalid(`permissions.${extra}`, 'unknown permission');
  const permissions: Permissions = {};
  if (admin !== undefined) permissions.admin = checkBoolean(admin, 'permissions.admin');
  if (publish !== undefined) permissions.publish = checkNames(publish, 'permissions.publish', validateTopicName);
  if (subscribe !== undefined) permissions.subscribe = checkNames(subscribe, 'permissions.subscribe', validateGroupName);
  return permissions;
}

function checkNames(value: unknown, field: string, validate: (name: unknown, field: string) => string): string[] {
  if (!Array.isArray(value)) invalid(field, `${field} must be an array of names`);
  const names: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const name: unknown = value[i];
    names.push(name === wildcard ? wildcard : validate(name, `${field}[${i}]`));
  }
  return names;
}

// ---- Item decoding ----
// Items are checked as they are read, the pair of the checks made before they were written: a
// stored item of the wrong shape is a broken invariant, not bad input.

function decodeBroker(item: Record<string, unknown>): Broker {
  const broker = item as unknown as Broker;
  assert(typeof broker.brokerId === 'string' && typeof broker.brokerGroup === 'string' && typeof broker.address === 'string');
  assert(brokerRoles.includes(broker.role), 'broker role');
  assert(Number.isSafeInteger(broker.epoch) && Number.isSafeInteger(broker.expiresAt) && broker.version >= 1);
  return broker;
}

function decodeTopic(item: Record<string, unknown>): Topic {
  const topic = item as unknown as Topic;
  assert(typeof topic.name === 'string' && messageTypes.includes(topic.type), 'topic name and type');
  assert(Array.isArray(topic.assignment) && topic.assignment.length === topic.queues, 'one broker group per queue');
  assert(typeof topic.perm?.read === 'boolean' && typeof topic.perm.write === 'boolean', 'topic perm');
  assert(Number.isSafeInteger(topic.version) && topic.version >= 1, 'topic version');
  return topic;
}

function decodeGroup(item: Record<string, unknown>): Group {
  const group = item as unknown as Group;
  assert(typeof group.name === 'string' && consumeModes.includes(group.mode), 'group name and mode');
  assert(typeof group.orderly === 'boolean' && Number.isSafeInteger(group.maxDeliveryAttempts), 'group settings');
  assert(Number.isSafeInteger(group.version) && group.version >= 1, 'group version');
  assert(group.lambdaSubscriptions === undefined || Array.isArray(group.lambdaSubscriptions), 'group Lambda subscriptions');
  return group;
}

function decodePrincipal(item: Record<string, unknown>): Principal {
  const principal = item as unknown as Principal;
  assert(typeof principal.name === 'string' && /^[0-9a-f]{64}$/.test(principal.keyHash), 'principal name and key hash');
  assert(typeof principal.permissions === 'object' && principal.permissions !== null, 'principal permissions');
  return principal;
}

function decodeLease(item: Record<string, unknown>): Lease {
  const lease = item as unknown as Lease;
  assert(typeof lease.brokerGroup === 'string' && typeof lease.holder === 'string', 'lease group and holder');
  assert(Number.isSafeInteger(lease.epoch) && lease.epoch >= 1 && Number.isSafeInteger(lease.expiresAt), 'lease epoch');
  return lease;
}
