/**
 * Transactional messages' state in the name server's DynamoDB tables:
 *
 * - `producerGroups`: how a producer group's unresolved transactions are checked back (an HTTPS
 *   callback, a checker Lambda, or the group's SDK producers long-polling the brokers) and how
 *   patiently (first check after `checkDelayMs`, then every `checkIntervalMs`, at most
 *   `maxChecks` checks before the broker rolls the message back). Registering a group is optional:
 *   an unregistered group is checked through its SDK producers with the defaults below.
 * - `transactions`: the index of unresolved half messages that the `txn-check` sweep reads. The
 *   owning broker writes an item after a half message is stored (off the ack path) and deletes it
 *   once the transaction is resolved; on restart it reconciles the table with its commit log, so a
 *   lost write is repaired. The commit log is the truth; this table only says when to check.
 *
 * As elsewhere in the name server, every write is a single-item (conditional) write.
 */
import assert from 'node:assert/strict';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { SkyrocketError } from '../core/errors.ts';
import { limits, resourceNamePattern } from '../core/limits.ts';
import { tableNames, type TableNames } from './tables.ts';

/** What an unregistered producer group gets, and what a registration leaves out. */
export const producerGroupDefaults = {
  /** RocketMQ's `transactionTimeOut`: a half message younger than this is not checked. */
  checkDelayMs: 6_000,
  /** Between two checks of one half message; the sweep runs every minute in the cloud. */
  checkIntervalMs: 60_000,
  /** RocketMQ's `transactionCheckMax`: after this many checks the message is rolled back. */
  maxChecks: 15,
} as const;

/** Bounds of a producer group's settings, named in one place. */
export const producerGroupLimits = {
  checkDelayMinMs: 100,
  checkDelayMaxMs: 24 * 3_600_000,
  checkIntervalMinMs: 100,
  checkIntervalMaxMs: 24 * 3_600_000,
  maxChecksMax: 1_000,
  checkUrlMaxChars: 2_048,
} as const;

export interface ProducerGroupSpec {
  name: string;
  /**
   * An `http:` or `https:` URL the sweep POSTs a check request to; it answers the transaction's
   * state. Exclusive with `checkLambdaArn`.
   * @default none: checked through the group's SDK producers
   */
  checkUrl?: string | undefined;
  /**
   * A Lambda function the sweep invokes with a check request; it returns the state.
   * Exclusive with `checkUrl`.
   * @default none
   */
  checkLambdaArn?: string | undefined;
  /** @default producerGroupDefaults.checkDelayMs (6 s) */
  checkDelayMs?: number | undefined;
  /** @default producerGroupDefaults.checkIntervalMs (60 s) */
  checkIntervalMs?: number | undefined;
  /** @default producerGroupDefaults.maxChecks (15) */
  maxChecks?: number | undefined;
}

export interface ProducerGroup {
  name: string;
  checkUrl?: string;
  checkLambdaArn?: string;
  checkDelayMs: number;
  checkIntervalMs: number;
  maxChecks: number;
  /** False for the defaults of a group nobody registered. */
  registered: boolean;
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** One unresolved half message, as the sweep sees it. */
export interface TransactionItem {
  txId: string;
  /** The broker group whose commit log holds the half message. */
  brokerGroup: string;
  producerGroup: string;
  topic: string;
  /** The half message's id: the id consumers see once it is committed. */
  messageId: string;
  /** When the half message was stored (epoch ms). */
  createdAt: number;
  /** Checks made so far. */
  checks: number;
  /** The sweep checks the transaction at or after this time (epoch ms). */
  nextCheckAt: number;
  version: number;
}

export type NewTransactionItem = Omit<TransactionItem, 'checks' | 'version'>;

export interface TransactionTablesOptions {
  client: DynamoDBClient | DynamoDBDocumentClient;
  prefix: string;
  /** @default Date.now */
  now?: () => number;
}

const lambdaArnPattern = /^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9_-]{1,64}(:[a-zA-Z0-9_$-]{1,128})?$/;

export class TransactionTables {
  readonly tables: TableNames;
  readonly now: () => number;
  readonly #db: DynamoDBDocumentClient;

  constructor(options: TransactionTablesOptions) {
    this.tables = tableNames(options.prefix);
    this.now = options.now ?? Date.now;
    this.#db =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  // ---- Producer groups ----

  /**
   * Registers a producer group.
   * @throws SkyrocketError ALREADY_EXISTS, or INVALID_ARGUMENT for bad settings.
   */
  async createProducerGroup(spec: ProducerGroupSpec): Promise<ProducerGroup> {
    const group = checkProducerGroupSpec(spec, this.now());
    const { registered: _registered, ...item } = group;
    const put = new PutCommand({
      TableName: this.tables.producerGroups,
      Item: item,
      ConditionExpression: 'attribute_not_exists(#name)',
      ExpressionAttributeNames: { '#name': 'name' },
    });
    if ((await conditional('create producer group', this.#db.send(put))) === undefined) {
      throw new SkyrocketError('ALREADY_EXISTS', `producer group ${group.name} already exists`, { field: 'name' });
    }
    return group;
  }

  /** The registered group, or undefined. */
  async getProducerGroup(name: string): Promise<ProducerGroup | undefined> {
    checkProducerGroupName(name, 'name');
    const out = await call(
      'read producer group',
      this.#db.send(new GetCommand({ TableName: this.tables.producerGroups, Key: { name }, ConsistentRead: true })),
    );
    return out.Item === undefined ? undefined : decodeProducerGroup(out.Item);
  }

  /** The registered group, or the defaults under its name. */
  async effectiveProducerGroup(name: string): Promise<ProducerGroup> {
    return (await this.getProducerGroup(name)) ?? defaultProducerGroup(name);
  }

  async listProducerGroups(): Promise<ProducerGroup[]> {
    const items = await this.#scan(this.tables.producerGroups);
    return items.map(decodeProducerGroup).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** @throws SkyrocketError NOT_FOUND */
  async deleteProducerGroup(name: string): Promise<void> {
    checkProducerGroupName(name, 'name');
    const del = new DeleteCommand({
      TableName: this.tables.producerGroups,
      Key: { name },
      ConditionExpression: 'attribute_exists(#name)',
      ExpressionAttributeNames: { '#name': 'name' },
    });
    if ((await conditional('delete producer group', this.#db.send(del))) === undefined) {
      throw new SkyrocketError('NOT_FOUND', `producer group ${name} is not registered`, { field: 'name' });
    }
  }

  // ---- The index of unresolved half messages ----

  /**
   * Adds a half message to the index. Idempotent: an item that exists already keeps its check
   * count and schedule, so a broker that re-adds it after a restart does not reset them.
   * @returns whether the item was new.
   */
  async putTransaction(input: NewTransactionItem): Promise<boolean> {
    const item: TransactionItem = { ...input, checks: 0, version: 1 };
    checkTransactionItem(item);
    const put = new PutCommand({
      TableName: this.tables.transactions,
      Item: item,
      ConditionExpression: 'attribute_not_exists(#txId)',
      ExpressionAttributeNames: { '#txId': 'txId' },
    });
    return (await conditional('put transaction', this.#db.send(put))) !== undefined;
  }

  async getTransaction(txId: string): Promise<TransactionItem | undefined> {
    const out = await call(
      'read transaction',
      this.#db.send(new GetCommand({ TableName: this.tables.transactions, Key: { txId }, ConsistentRead: true })),
    );
    return out.Item === undefined ? undefined : decodeTransactionItem(out.Item);
  }

  /** Removes a half message from the index; removing an absent one is not an error. */
  async deleteTransaction(txId: string): Promise<void> {
    await call('delete transaction', this.#db.send(new DeleteCommand({ TableName: this.tables.transactions, Key: { txId } })));
  }

  /**
   * Items of the index, optionally only those of one broker group or those due by a time.
   * A Scan: the index holds only unresolved transactions, which stay few.
   */
  async listTransactions(filter: { brokerGroup?: string; dueBy?: number } = {}): Promise<TransactionItem[]> {
    const conditions: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    if (filter.brokerGroup !== undefined) {
      conditions.push('#brokerGroup = :brokerGroup');
      names['#brokerGroup'] = 'brokerGroup';
      values[':brokerGroup'] = filter.brokerGroup;
    }
    if (filter.dueBy !== undefined) {
      conditions.push('#nextCheckAt <= :dueBy');
      names['#nextCheckAt'] = 'nextCheckAt';
      values[':dueBy'] = filter.dueBy;
    }
    const extra =
      conditions.length === 0
        ? {}
        : { FilterExpression: conditions.join(' AND '), ExpressionAttributeNames: names, ExpressionAttributeValues: values };
    return (await this.#scan(this.tables.transactions, extra)).map(decodeTransactionItem);
  }

  /**
   * Takes a due item for one check: counts the check and moves `nextCheckAt` to `nextCheckAt`,
   * only if nobody else did since `item` was read, so two sweeps that overlap never check one
   * transaction twice at once.
   * @returns the item as updated, or undefined when another sweep took it (or it was deleted).
   */
  async claimCheck(item: TransactionItem, nextCheckAt: number): Promise<TransactionItem | undefined> {
    const out = await conditional(
      'claim transaction check',
      this.#db.send(
        new UpdateCommand({
          TableName: this.tables.transactions,
          Key: { txId: item.txId },
          UpdateExpression: 'SET #checks = #checks + :one, #nextCheckAt = :next, #version = #version + :one',
          ConditionExpression: '#version = :version',
          ExpressionAttributeNames: { '#checks': 'checks', '#nextCheckAt': 'nextCheckAt', '#version': 'version' },
          ExpressionAttributeValues: { ':one': 1, ':next': nextCheckAt, ':version': item.version },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out?.Attributes === undefined ? undefined : decodeTransactionItem(out.Attributes);
  }

  async #scan(table: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    try {
      for await (const page of paginateScan({ client: this.#db }, { TableName: table, ConsistentRead: true, ...extra })) {
        items.push(...(page.Items ?? []));
      }
    } catch (error) {
      throw new SkyrocketError('SERVICE_UNAVAILABLE', `DynamoDB: could not scan ${table}`, { cause: error });
    }
    return items;
  }
}

// ---- Pure functions ----

/** The settings of a producer group nobody registered. */
export function defaultProducerGroup(name: string): ProducerGroup {
  return { name, ...producerGroupDefaults, registered: false, version: 0, createdAt: 0, updatedAt: 0 };
}

/** Checks a producer group name: RocketMQ's resource-name pattern, as consumer groups. */
export function checkProducerGroupName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > limits.groupNameMaxChars || !resourceNamePattern.test(value)) {
    throw new SkyrocketError(
      'INVALID_ARGUMENT',
      `${field} must be 1 to ${limits.groupNameMaxChars} characters of [%|a-zA-Z0-9_-]`,
      { field },
    );
  }
  return value;
}

/**
 * Checks a registration and fills in the defaults.
 * @throws SkyrocketError INVALID_ARGUMENT naming the field.
 */
export function checkProducerGroupSpec(spec: ProducerGroupSpec, nowMs: number): ProducerGroup {
  const l = producerGroupLimits;
  const name = checkProducerGroupName(spec.name, 'name');
  const group: ProducerGroup = {
    name,
    checkDelayMs: checkInteger(spec.checkDelayMs ?? producerGroupDefaults.checkDelayMs, 'checkDelayMs', l.checkDelayMinMs, l.checkDelayMaxMs),
    checkIntervalMs: checkInteger(
      spec.checkIntervalMs ?? producerGroupDefaults.checkIntervalMs,
      'checkIntervalMs',
      l.checkIntervalMinMs,
      l.checkIntervalMaxMs,
    ),
    maxChecks: checkInteger(spec.maxChecks ?? producerGroupDefaults.maxChecks, 'maxChecks', 1, l.maxChecksMax),
    registered: true,
    version: 1,
    createdAt: nowMs,
    updatedAt: nowMs,
  };
  if (spec.checkUrl !== undefined && spec.checkUrl !== null) {
    const url = typeof spec.checkUrl === 'string' && spec.checkUrl.length <= l.checkUrlMaxChars && URL.canParse(spec.checkUrl) ? new URL(spec.checkUrl) : undefined;
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '') {
      throw new SkyrocketError('INVALID_ARGUMENT', `checkUrl must be an http: or https: URL of at most ${l.checkUrlMaxChars} characters, without credentials`, {
        field: 'checkUrl',
      });
    }
    group.checkUrl = spec.checkUrl;
  }
  if (spec.checkLambdaArn !== undefined && spec.checkLambdaArn !== null) {
    if (typeof spec.checkLambdaArn !== 'string' || !lambdaArnPattern.test(spec.checkLambdaArn)) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'checkLambdaArn must be the ARN of a Lambda function', { field: 'checkLambdaArn' });
    }
    group.checkLambdaArn = spec.checkLambdaArn;
  }
  if (group.checkUrl !== undefined && group.checkLambdaArn !== undefined) {
    throw new SkyrocketError('INVALID_ARGUMENT', 'give checkUrl or checkLambdaArn, not both', { field: 'checkLambdaArn' });
  }
  return group;
}

function checkInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new SkyrocketError('INVALID_ARGUMENT', `${field} must be an integer from ${min} to ${max}`, { field });
  }
  return value;
}

function checkTransactionItem(item: TransactionItem): void {
  assert(typeof item.txId === 'string' && item.txId.length > 0, 'transaction id');
  assert(typeof item.brokerGroup === 'string' && typeof item.producerGroup === 'string', 'transaction groups');
  assert(typeof item.topic === 'string' && typeof item.messageId === 'string', 'transaction topic and message id');
  assert(Number.isSafeInteger(item.createdAt) && Number.isSafeInteger(item.nextCheckAt), 'transaction times');
  assert(Number.isSafeInteger(item.checks) && item.checks >= 0 && Number.isSafeInteger(item.version) && item.version >= 1, 'transaction counters');
}

function decodeProducerGroup(item: Record<string, unknown>): ProducerGroup {
  const group = { ...item, registered: true } as unknown as ProducerGroup;
  assert(typeof group.name === 'string', 'producer group name');
  assert(Number.isSafeInteger(group.checkDelayMs) && Number.isSafeInteger(group.checkIntervalMs), 'producer group check times');
  assert(Number.isSafeInteger(group.maxChecks) && group.maxChecks >= 1, 'producer group max checks');
  assert(group.checkUrl === undefined || typeof group.checkUrl === 'string', 'producer group check URL');
  assert(group.checkLambdaArn === undefined || typeof group.checkLambdaArn === 'string', 'producer group check Lambda');
  return group;
}

function decodeTransactionItem(item: Record<string, unknown>): TransactionItem {
  const tx = item as unknown as TransactionItem;
  checkTransactionItem(tx);
  return tx;
}

// ---- DynamoDB calls ----

async function call<T>(what: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    throw new SkyrocketError('SERVICE_UNAVAILABLE', `DynamoDB: could not ${what}`, { cause: error });
  }
}

async function conditional<T>(what: string, request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
    throw new SkyrocketError('SERVICE_UNAVAILABLE', `DynamoDB: could not ${what}`, { cause: error });
  }
}
