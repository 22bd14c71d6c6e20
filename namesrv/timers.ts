/**
 * The timer index: far-term delayed messages parked in DynamoDB, so that a timer due in months
 * costs no broker memory and outlives the commit log's retention. Bodies too large for an item
 * go to S3. The owning broker parks a timer shortly after storing it; the `delay-sweep` Lambda
 * moves the timers due within the next horizon back into their broker's timing wheel (an internal
 * broker endpoint, idempotent by message id) and then removes them here.
 *
 * Items of the `timers` table (string partition key `pk`, string sort key `sk`):
 *
 *   kind       pk                               sk           attributes
 *   ---------  -------------------------------  -----------  ---------------------------------------
 *   timer      "T#" bucketStartMs "#" shard     messageId    deliverAt N, brokerGroup S, topic S,
 *                                                            queueId N, bornAt N, bornHost S,
 *                                                            tag S?, keys L<S>?, properties M<S>?,
 *                                                            messageGroup S?, bodyBytes N, parkedAt N,
 *                                                            and body B (inline) or bodyRef S (S3 key)
 *   lookup     "M#" messageId                   "M"          timerPk S, deliverAt N
 *   watermark  "W"                              "W"          nextBucketMs N, bucketMs N, shards N,
 *                                                            version N, updatedAt N
 *
 * - bucketStartMs = floor(deliverAt / bucketMs) * bucketMs; shard = FNV-1a(messageId) % shards.
 *   The sweep Queries the `shards` partitions of each bucket in turn; shards spread the writes of
 *   a busy minute over several partitions.
 * - The lookup item lets a cancel find a timer by its id alone (the broker may no longer hold the
 *   record that says when it is due). It is written before the timer item and deleted after it,
 *   so a timer item always has one; a lookup without a timer is a leftover and means "not parked".
 * - The watermark is the first bucket the sweep still has to read. The first broker that parks
 *   writes it (with the bucket width and shard count it uses), and everyone reads those two from
 *   it, so brokers and sweep never disagree on the layout.
 * - S3 bodies live at `<keyPrefix><messageId>`; an object whose item is gone is garbage (a crash
 *   between the two deletes), which the bucket's lifecycle rule removes.
 *
 * Writes are idempotent puts and deletes: parking the same timer twice writes the same items.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
  paginateQuery,
} from '@aws-sdk/lib-dynamodb';
import { SkyrocketError } from '../core/errors.ts';
import { tableNames } from './tables.ts';

/** Every limit of the timer index, in one place. */
export const timerIndexLimits = {
  /** Bodies up to this size go into the item; DynamoDB's item limit is 400 KB. */
  inlineBodyMaxBytes: 256 * 1024,
  /** BatchWriteItem takes at most 25 requests. */
  batchWriteMaxItems: 25,
  /** Partitions per bucket. */
  shardsDefault: 8,
  bucketMinMs: 100,
  bucketMaxMs: 60_000,
  /** Concurrent DynamoDB or S3 calls of one park or remove. */
  concurrencyMax: 16,
} as const;

/** How the table is cut into buckets. Stored in the watermark item; see the module comment. */
export interface TimerLayout {
  bucketMs: number;
  shards: number;
}

/**
 * The bucket width for a horizon: a quarter of it, between 100 ms and one minute (the sweep's
 * schedule in the cloud), so that a bucket is moved well before its first timer is due.
 */
export function bucketMsForHorizon(horizonMs: number): number {
  return Math.min(timerIndexLimits.bucketMaxMs, Math.max(timerIndexLimits.bucketMinMs, Math.floor(horizonMs / 4)));
}

/** A far timer: a whole message and where and when to deliver it. */
export interface ParkedTimer {
  messageId: string;
  deliverAt: number;
  /** The broker group that owns the target queue, and so the timer. */
  brokerGroup: string;
  topic: string;
  queueId: number;
  bornAt: number;
  bornHost: string;
  tag?: string | undefined;
  keys?: string[] | undefined;
  properties?: Record<string, string> | undefined;
  messageGroup?: string | undefined;
  /** The body; absent on a timer read from the index whose body is in S3, until `loadBody`. */
  body?: Uint8Array | undefined;
  /** Where the body is when it is not inline: an S3 key. */
  bodyRef?: string | undefined;
  bodyBytes: number;
}

export interface Watermark extends TimerLayout {
  nextBucketMs: number;
  version: number;
}

export interface TimerIndexOptions {
  client: DynamoDBClient | DynamoDBDocumentClient;
  /** The deployment's table prefix. */
  prefix: string;
  /** Where bodies too large for an item go. @default none: such timers cannot be parked */
  s3?: { client: S3Client; bucket: string } | undefined;
  /** @default `${prefix}timers/` */
  s3KeyPrefix?: string;
  /** @default Date.now */
  now?: () => number;
  /** @default timerIndexLimits.inlineBodyMaxBytes */
  inlineBodyMaxBytes?: number;
}

const watermarkKey = { pk: 'W', sk: 'W' } as const;

export class TimerIndex {
  readonly table: string;
  readonly #db: DynamoDBDocumentClient;
  readonly #s3: { client: S3Client; bucket: string } | undefined;
  readonly #s3KeyPrefix: string;
  readonly #now: () => number;
  readonly #inlineMax: number;

  constructor(options: TimerIndexOptions) {
    this.table = tableNames(options.prefix).timers;
    this.#db =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, { marshallOptions: { removeUndefinedValues: true } });
    this.#s3 = options.s3;
    this.#s3KeyPrefix = options.s3KeyPrefix ?? `${options.prefix}timers/`;
    this.#now = options.now ?? Date.now;
    this.#inlineMax = options.inlineBodyMaxBytes ?? timerIndexLimits.inlineBodyMaxBytes;
  }

  /** Whether a body of this size can be parked: inline, or in S3 when S3 is configured. */
  canPark(bodyBytes: number): boolean {
    return bodyBytes <= this.#inlineMax || this.#s3 !== undefined;
  }

  // ---- Layout and watermark ----

  /**
   * The layout everyone uses: the one in the watermark item, which this call writes (starting at
   * the bucket of now) when no one has yet.
   */
  async ensureLayout(proposed: TimerLayout): Promise<Watermark> {
    checkLayout(proposed);
    const now = this.#now();
    const put = new PutCommand({
      TableName: this.table,
      Item: { ...watermarkKey, ...proposed, nextBucketMs: bucketStart(now, proposed.bucketMs), version: 1, updatedAt: now },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    await conditional('create the timer watermark', this.#db.send(put));
    const watermark = await this.readWatermark();
    if (watermark === undefined) throw new SkyrocketError('SERVICE_UNAVAILABLE', 'the timer watermark vanished after it was written');
    return watermark;
  }

  /** The watermark, or undefined when nothing was ever parked. */
  async readWatermark(): Promise<Watermark | undefined> {
    const out = await call('read the timer watermark', this.#db.send(new GetCommand({ TableName: this.table, Key: watermarkKey, ConsistentRead: true })));
    const item = out.Item;
    if (item === undefined) return undefined;
    const watermark: Watermark = {
      nextBucketMs: Number(item['nextBucketMs']),
      bucketMs: Number(item['bucketMs']),
      shards: Number(item['shards']),
      version: Number(item['version']),
    };
    checkLayout(watermark);
    return watermark;
  }

  /** Moves the watermark forward to `toMs` if it is still at `version`; whether it moved. */
  async advanceWatermark(version: number, toMs: number): Promise<boolean> {
    const update = new UpdateCommand({
      TableName: this.table,
      Key: watermarkKey,
      UpdateExpression: 'SET nextBucketMs = :to, updatedAt = :now ADD version :one',
      ConditionExpression: 'version = :v AND nextBucketMs < :to',
      ExpressionAttributeValues: { ':to': toMs, ':now': this.#now(), ':one': 1, ':v': version },
    });
    return (await conditional('advance the timer watermark', this.#db.send(update))) !== undefined;
  }

  /** Moves the watermark back to `toMs` if it is past it (a bucket that could not be moved). */
  async lowerWatermark(toMs: number): Promise<boolean> {
    const update = new UpdateCommand({
      TableName: this.table,
      Key: watermarkKey,
      UpdateExpression: 'SET nextBucketMs = :to, updatedAt = :now ADD version :one',
      ConditionExpression: 'nextBucketMs > :to',
      ExpressionAttributeValues: { ':to': toMs, ':now': this.#now(), ':one': 1 },
    });
    return (await conditional('lower the timer watermark', this.#db.send(update))) !== undefined;
  }

  // ---- Park, read, cancel, remove ----

  /**
   * Parks timers: bodies that do not fit an item go to S3 first, then each timer's lookup item and
   * timer item are written. Idempotent. On failure some of them may be parked; parking them again
   * is how to finish.
   * @throws SkyrocketError SERVICE_UNAVAILABLE; INVALID_ARGUMENT for a body S3 would have to take
   *   when none is configured.
   */
  async park(timers: readonly ParkedTimer[], layout: TimerLayout, signal?: AbortSignal): Promise<void> {
    const items: Array<Record<string, unknown>> = [];
    await forEachLimited(timers, timerIndexLimits.concurrencyMax, async (t) => {
      if (t.body === undefined) throw new Error('invariant: a timer to park carries its body');
      let bodyAttributes: Record<string, unknown>;
      if (t.body.byteLength <= this.#inlineMax) {
        bodyAttributes = { body: t.body };
      } else {
        if (this.#s3 === undefined) {
          throw new SkyrocketError('INVALID_ARGUMENT', `a body of ${t.body.byteLength} bytes needs S3, and none is configured`);
        }
        const key = this.#s3KeyPrefix + t.messageId;
        await call(
          'store a timer body in S3',
          this.#s3.client.send(new PutObjectCommand({ Bucket: this.#s3.bucket, Key: key, Body: t.body }), signal === undefined ? {} : { abortSignal: signal }),
        );
        bodyAttributes = { bodyRef: key };
      }
      const pk = timerPartition(t.deliverAt, t.messageId, layout);
      items.push({ pk: lookupPartition(t.messageId), sk: 'M', timerPk: pk, deliverAt: t.deliverAt });
      items.push({
        pk,
        sk: t.messageId,
        deliverAt: t.deliverAt,
        brokerGroup: t.brokerGroup,
        topic: t.topic,
        queueId: t.queueId,
        bornAt: t.bornAt,
        bornHost: t.bornHost,
        tag: t.tag,
        keys: t.keys !== undefined && t.keys.length > 0 ? t.keys : undefined,
        properties: t.properties !== undefined && Object.keys(t.properties).length > 0 ? t.properties : undefined,
        messageGroup: t.messageGroup,
        bodyBytes: t.body.byteLength,
        parkedAt: this.#now(),
        ...bodyAttributes,
      });
    });
    // A timer's lookup goes in the same batch as, or an earlier one than, its timer item; a
    // failure leaves both to the caller's retry either way.
    await this.#batchWrite(items.map((Item) => ({ PutRequest: { Item } })), signal);
  }

  /** The parked timer with this id (its body loaded), or undefined. */
  async get(messageId: string): Promise<ParkedTimer | undefined> {
    const lookup = await this.#getItem({ pk: lookupPartition(messageId), sk: 'M' });
    if (lookup === undefined) return undefined;
    const item = await this.#getItem({ pk: String(lookup['timerPk']), sk: messageId });
    if (item === undefined) return undefined;
    const timer = decodeTimer(item);
    return this.loadBody(timer);
  }

  /**
   * Cancels a parked timer: deletes its items and its S3 body.
   * @returns whether it was parked (false: never parked, already moved, or already cancelled).
   */
  async cancel(messageId: string): Promise<boolean> {
    const lookupKey = { pk: lookupPartition(messageId), sk: 'M' };
    const lookup = await this.#getItem(lookupKey);
    if (lookup === undefined) return false;
    const out = await call(
      'delete a parked timer',
      this.#db.send(new DeleteCommand({ TableName: this.table, Key: { pk: String(lookup['timerPk']), sk: messageId }, ReturnValues: 'ALL_OLD' })),
    );
    await call('delete a timer lookup', this.#db.send(new DeleteCommand({ TableName: this.table, Key: lookupKey })));
    const old = out.Attributes;
    if (old === undefined) return false;
    if (typeof old['bodyRef'] === 'string') await this.#deleteBodies([old['bodyRef']]);
    return true;
  }

  /**
   * The timers of one partition of a bucket, a page (at most 1 MB) at a time; bodies kept in S3
   * are not loaded (see `loadBody`).
   */
  async *bucketPages(bucketStartMs: number, shard: number): AsyncGenerator<ParkedTimer[]> {
    const pages = paginateQuery(
      { client: this.#db },
      {
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `T#${bucketStartMs}#${shard}` },
        ConsistentRead: true,
      },
    );
    const iterator = pages[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<{ Items?: Array<Record<string, unknown>> }>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw new SkyrocketError('SERVICE_UNAVAILABLE', 'DynamoDB: could not read a timer bucket', { cause: error });
      }
      if (next.done === true) return;
      yield (next.value.Items ?? []).map(decodeTimer);
    }
  }

  /** The timer with its body, fetched from S3 when it is not inline. */
  async loadBody(timer: ParkedTimer): Promise<ParkedTimer> {
    if (timer.body !== undefined || timer.bodyRef === undefined) return timer;
    if (this.#s3 === undefined) throw new SkyrocketError('SERVICE_UNAVAILABLE', `timer ${timer.messageId} has its body in S3, and no S3 is configured`);
    const s3 = this.#s3;
    const body = await call('read a timer body from S3', (async () => {
      const out = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: timer.bodyRef }));
      return out.Body === undefined ? new Uint8Array() : await out.Body.transformToByteArray();
    })());
    if (body.byteLength !== timer.bodyBytes) {
      throw new SkyrocketError('SERVICE_UNAVAILABLE', `the S3 body of timer ${timer.messageId} has ${body.byteLength} bytes, not ${timer.bodyBytes}`);
    }
    return { ...timer, body };
  }

  /** Removes moved (or dropped) timers: their timer items, then their lookups, then S3 bodies. */
  async remove(timers: readonly ParkedTimer[], layout: TimerLayout): Promise<void> {
    await this.#batchWrite(timers.map((t) => ({ DeleteRequest: { Key: { pk: timerPartition(t.deliverAt, t.messageId, layout), sk: t.messageId } } })));
    await this.#batchWrite(timers.map((t) => ({ DeleteRequest: { Key: { pk: lookupPartition(t.messageId), sk: 'M' } } })));
    await this.#deleteBodies(timers.flatMap((t) => (t.bodyRef === undefined ? [] : [t.bodyRef])));
  }

  async #deleteBodies(keys: readonly string[]): Promise<void> {
    const s3 = this.#s3;
    if (s3 === undefined || keys.length === 0) return;
    await forEachLimited(keys, timerIndexLimits.concurrencyMax, (Key) =>
      call('delete a timer body from S3', s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key }))),
    );
  }

  async #getItem(key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const out = await call('read the timer index', this.#db.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true })));
    return out.Item;
  }

  /** BatchWriteItem in batches of 25, several at once, retrying what DynamoDB left unprocessed. */
  async #batchWrite(requests: ReadonlyArray<Record<string, unknown>>, signal?: AbortSignal): Promise<void> {
    const batches: Array<Array<Record<string, unknown>>> = [];
    for (let i = 0; i < requests.length; i += timerIndexLimits.batchWriteMaxItems) {
      batches.push(requests.slice(i, i + timerIndexLimits.batchWriteMaxItems));
    }
    await forEachLimited(batches, timerIndexLimits.concurrencyMax, async (batch) => {
      let pending: Array<Record<string, unknown>> = batch;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > 8) throw new SkyrocketError('SERVICE_UNAVAILABLE', 'DynamoDB kept leaving timer writes unprocessed');
          await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
        }
        const out = await call(
          'write the timer index',
          this.#db.send(
            new BatchWriteCommand({ RequestItems: { [this.table]: pending as never } }),
            signal === undefined ? {} : { abortSignal: signal },
          ),
        );
        pending = (out.UnprocessedItems?.[this.table] as Array<Record<string, unknown>> | undefined) ?? [];
      }
    });
  }
}

// ---- Pure functions ----

export function bucketStart(timeMs: number, bucketMs: number): number {
  return Math.floor(timeMs / bucketMs) * bucketMs;
}

/** The partition key of a timer item. */
export function timerPartition(deliverAt: number, messageId: string, layout: TimerLayout): string {
  return `T#${bucketStart(deliverAt, layout.bucketMs)}#${fnv1a(messageId) % layout.shards}`;
}

function lookupPartition(messageId: string): string {
  return `M#${messageId}`;
}

function checkLayout(layout: TimerLayout): void {
  const { bucketMs, shards } = layout;
  if (!Number.isSafeInteger(bucketMs) || bucketMs < timerIndexLimits.bucketMinMs || bucketMs > timerIndexLimits.bucketMaxMs) {
    throw new SkyrocketError('INVALID_ARGUMENT', `timer bucket width ${bucketMs} ms is outside ${timerIndexLimits.bucketMinMs}..${timerIndexLimits.bucketMaxMs}`);
  }
  if (!Number.isSafeInteger(shards) || shards < 1 || shards > 256) {
    throw new SkyrocketError('INVALID_ARGUMENT', `timer shard count ${shards} is outside 1..256`);
  }
}

function decodeTimer(item: Record<string, unknown>): ParkedTimer {
  const timer: ParkedTimer = {
    messageId: String(item['sk']),
    deliverAt: Number(item['deliverAt']),
    brokerGroup: String(item['brokerGroup']),
    topic: String(item['topic']),
    queueId: Number(item['queueId']),
    bornAt: Number(item['bornAt']),
    bornHost: String(item['bornHost'] ?? ''),
    bodyBytes: Number(item['bodyBytes']),
  };
  if (typeof item['tag'] === 'string') timer.tag = item['tag'];
  if (Array.isArray(item['keys'])) timer.keys = (item['keys'] as unknown[]).map(String);
  if (typeof item['properties'] === 'object' && item['properties'] !== null) {
    timer.properties = Object.fromEntries(Object.entries(item['properties'] as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }
  if (typeof item['messageGroup'] === 'string') timer.messageGroup = item['messageGroup'];
  if (item['body'] instanceof Uint8Array) timer.body = item['body'];
  if (typeof item['bodyRef'] === 'string') timer.bodyRef = item['bodyRef'];
  return timer;
}

/** FNV-1a over UTF-16 code units: stable across processes and versions. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

async function call<T>(what: string, request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof SkyrocketError) throw error;
    throw new SkyrocketError('SERVICE_UNAVAILABLE', `could not ${what}`, { cause: error });
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
