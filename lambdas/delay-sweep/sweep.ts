/**
 * The delay sweep: every minute (EventBridge in the cloud, an in-process timer in `skyrocket dev`)
 * it moves the far timers due within the next horizon from the DynamoDB timer index into their
 * broker's timing wheel, and then removes them from the index.
 *
 * One run:
 *
 *   1. read the watermark W (the first bucket not yet fully moved) and the layout it names;
 *   2. for each bucket b from W to the bucket of now + horizon, for each shard of b, a page of
 *      items at a time: load bodies kept in S3, POST them to the leader of their broker group
 *      (`POST /v1/internal/timers`, internal secret), and delete from the index those the broker
 *      took (ACCEPTED), already had (DUPLICATE), had cancelled (CANCELLED) or dropped (topic gone);
 *   3. move W to one bucket before the last bucket read (so the last one is read again next
 *      time: a park may land in it after this run read it), or back to the first bucket that
 *      could not be moved.
 *
 * A crash anywhere loses nothing and delivers nothing twice: an item is deleted only after its
 * broker has the timer durably, and a broker refuses a timer whose id it already knows (its key
 * index finds the moved record, the cancel marker or the delivered message). A later run simply
 * moves the leftovers again.
 */
import { SkyrocketError } from '../../core/errors.ts';
import type { Broker, NameServer } from '../../namesrv/registry.ts';
import { bucketStart, type ParkedTimer, type TimerIndex, type TimerLayout } from '../../namesrv/timers.ts';

export interface SweepLogger {
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
}

/** Every limit of the sweep, in one place. */
export const sweepDefaults = {
  /** Stop starting new buckets after this long: the next run, a minute later, goes on. */
  budgetMs: 50_000,
  /** Timers per move request. */
  moveBatchMaxCount: 256,
  /** Body bytes per move request (base64 adds a third; the broker takes ~46 MiB). */
  moveBatchMaxBytes: 8 * 1024 * 1024,
  moveTimeoutMs: 30_000,
} as const;

export interface DelaySweepOptions {
  index: TimerIndex;
  /** The live leader's URL of each broker group. */
  leaders: () => Promise<ReadonlyMap<string, string>>;
  /** Authenticates the sweep to the brokers (`SKYROCKET_INTERNAL_SECRET`). */
  internalSecret: string;
  /** The brokers' timer horizon (`SKYROCKET_TIMER_HORIZON_MS`). */
  horizonMs: number;
  /** @default sweepDefaults.budgetMs */
  budgetMs?: number;
  /** @default Date.now */
  now?: () => number;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  log?: SweepLogger;
  /** Fault injection for tests: runs between a move and the delete of what it moved. */
  afterMove?: (messageIds: readonly string[]) => void | Promise<void>;
}

export interface SweepReport {
  /** Buckets read. */
  buckets: number;
  /** Items found due. */
  found: number;
  moved: number;
  duplicate: number;
  cancelled: number;
  dropped: number;
  /** Items left in the index for the next run (no leader, refused, a failure). */
  failed: number;
  /** The watermark after the run; undefined when nothing was ever parked. */
  watermark: number | undefined;
}

const silent: SweepLogger = { info() {}, warn() {}, error() {} };

export class DelaySweep {
  readonly #o: DelaySweepOptions;
  readonly #log: SweepLogger;
  readonly #now: () => number;
  readonly #fetch: typeof globalThis.fetch;

  constructor(options: DelaySweepOptions) {
    this.#o = options;
    this.#log = options.log ?? silent;
    this.#now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  async run(): Promise<SweepReport> {
    const report: SweepReport = { buckets: 0, found: 0, moved: 0, duplicate: 0, cancelled: 0, dropped: 0, failed: 0, watermark: undefined };
    const { index } = this.#o;
    const watermark = await index.readWatermark();
    if (watermark === undefined) return report;
    const layout: TimerLayout = { bucketMs: watermark.bucketMs, shards: watermark.shards };
    const started = this.#now();
    const last = bucketStart(started + this.#o.horizonMs, layout.bucketMs);
    const leaders = await this.#o.leaders();
    let firstFailed: number | undefined;
    for (let bucket = watermark.nextBucketMs; bucket <= last; bucket += layout.bucketMs) {
      if (this.#now() - started > (this.#o.budgetMs ?? sweepDefaults.budgetMs)) {
        firstFailed ??= bucket;
        break;
      }
      report.buckets++;
      const shards = Array.from({ length: layout.shards }, (_, shard) => this.#sweepPartition(bucket, shard, layout, leaders, report));
      const ok = (await Promise.allSettled(shards)).every((r) => r.status === 'fulfilled' && r.value);
      if (!ok) firstFailed ??= bucket;
    }
    // The last bucket is read again next time; a bucket that failed is where the next run starts.
    const target = Math.min(firstFailed ?? Number.POSITIVE_INFINITY, last - layout.bucketMs);
    if (target > watermark.nextBucketMs) await index.advanceWatermark(watermark.version, target);
    if (firstFailed !== undefined) await index.lowerWatermark(firstFailed);
    report.watermark = (await index.readWatermark())?.nextBucketMs;
    return report;
  }

  /** Moves one partition of a bucket, page by page; whether all of it was moved. */
  async #sweepPartition(bucket: number, shard: number, layout: TimerLayout, leaders: ReadonlyMap<string, string>, report: SweepReport): Promise<boolean> {
    let ok = true;
    try {
      for await (const page of this.#o.index.bucketPages(bucket, shard)) {
        report.found += page.length;
        const byGroup = new Map<string, ParkedTimer[]>();
        for (const t of page) byGroup.set(t.brokerGroup, [...(byGroup.get(t.brokerGroup) ?? []), t]);
        for (const [group, timers] of byGroup) {
          const leader = leaders.get(group);
          if (leader === undefined) {
            this.#log.warn('no live leader for the broker group of parked timers; they wait for the next run', { brokerGroup: group, timers: timers.length });
            report.failed += timers.length;
            ok = false;
            continue;
          }
          for (const batch of batches(timers)) if (!(await this.#move(leader, group, batch, layout, report))) ok = false;
        }
      }
    } catch (error) {
      this.#log.error('could not sweep a timer bucket', { bucket, shard, error: describe(error) });
      return false;
    }
    return ok;
  }

  /** Moves one batch to its broker and removes what the broker took; whether all of it went. */
  async #move(leader: string, group: string, batch: readonly ParkedTimer[], layout: TimerLayout, report: SweepReport): Promise<boolean> {
    const { index } = this.#o;
    let results: Array<{ messageId: string; status: string; code?: string; message?: string }>;
    try {
      const loaded = await Promise.all(batch.map((t) => index.loadBody(t)));
      const body = JSON.stringify({
        timers: loaded.map((t) => ({
          messageId: t.messageId,
          deliverAt: t.deliverAt,
          topic: t.topic,
          queueId: t.queueId,
          bornAt: t.bornAt,
          bornHost: t.bornHost,
          tag: t.tag,
          keys: t.keys,
          properties: t.properties,
          messageGroup: t.messageGroup,
          body: Buffer.from(t.body as Uint8Array).toString('base64'),
        })),
      });
      const response = await this.#fetch(`${leader}/v1/internal/timers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-skyrocket-internal': this.#o.internalSecret, 'x-skyrocket-principal': 'delay-sweep' },
        body,
        signal: AbortSignal.timeout(sweepDefaults.moveTimeoutMs),
      });
      const text = await response.text();
      if (response.status !== 200) throw new SkyrocketError('SERVICE_UNAVAILABLE', `broker group ${group} answered ${response.status}: ${text.slice(0, 300)}`);
      results = (JSON.parse(text) as { results: typeof results }).results;
    } catch (error) {
      this.#log.warn('could not move timers; they wait for the next run', { brokerGroup: group, timers: batch.length, error: describe(error) });
      report.failed += batch.length;
      return false;
    }
    const status = new Map(results.map((r) => [r.messageId, r]));
    const done: ParkedTimer[] = [];
    for (const t of batch) {
      const r = status.get(t.messageId);
      if (r?.status === 'ACCEPTED') report.moved++;
      else if (r?.status === 'DUPLICATE') report.duplicate++;
      else if (r?.status === 'CANCELLED') report.cancelled++;
      else if (r?.status === 'DROPPED') report.dropped++;
      else {
        this.#log.warn('a broker refused a timer; it waits for the next run', { brokerGroup: group, messageId: t.messageId, code: r?.code, reason: r?.message });
        report.failed++;
        continue;
      }
      done.push(t);
    }
    await this.#o.afterMove?.(done.map((t) => t.messageId));
    await index.remove(done, layout);
    return done.length === batch.length;
  }
}

function* batches(timers: readonly ParkedTimer[]): Generator<ParkedTimer[]> {
  let batch: ParkedTimer[] = [];
  let bytes = 0;
  for (const t of timers) {
    if (batch.length > 0 && (batch.length >= sweepDefaults.moveBatchMaxCount || bytes + t.bodyBytes > sweepDefaults.moveBatchMaxBytes)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(t);
    bytes += t.bodyBytes;
  }
  if (batch.length > 0) yield batch;
}

/**
 * The live leader of each broker group, from the name server's brokers table: the LEADER with the
 * highest epoch whose registration has not expired (as `resolveRoute` picks them).
 */
export function leadersFrom(nameServer: Pick<NameServer, 'listBrokers'>, now: () => number = Date.now): () => Promise<Map<string, string>> {
  return async () => {
    const leaders = new Map<string, Broker>();
    for (const broker of await nameServer.listBrokers()) {
      if (broker.role !== 'LEADER' || broker.expiresAt <= now()) continue;
      const seen = leaders.get(broker.brokerGroup);
      if (seen === undefined || broker.epoch > seen.epoch) leaders.set(broker.brokerGroup, broker);
    }
    return new Map([...leaders].map(([group, broker]) => [group, broker.address]));
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
