import assert from 'node:assert/strict';
import { SkyrocketError } from '../../../core/errors.ts';
import { limits } from '../../../core/limits.ts';
import type { StoredMessage } from '../../../core/message.ts';
import { compileSqlFilter, sqlFilterProperties } from '../../../core/sql-filter.ts';
import { parseTagExpression } from '../../../core/tag-filter.ts';
import type { ConsumerGroups, Delivery } from '../consume/consumer-groups.ts';
import type { TopicRoute } from '../directory.ts';
import { Backoff } from './backoff.ts';
import { encodeBatchEvent, parseBatchResponse, splitByPayload, type BatchEventHeader } from './batch-event.ts';
import { dispatchLimits, type DispatchConfig } from './dispatch-config.ts';
import type { DispatchMetrics } from './dispatch-metrics.ts';
import type { LambdaInvoker } from './lambda-invoker.ts';
import { subscriptionKey, type Subscription, type SubscriptionSource } from './subscriptions.ts';

/**
 * The broker's push side of consumption: for every Lambda subscription whose topic has queues on
 * this broker, it takes batches from those queues for the subscription's consumer group and
 * invokes the function with them (DESIGN.md, "Lambda consumers").
 *
 * Each subscription gets a pump of `maxConcurrency` workers; a worker loops over
 *
 *   receive (ConsumerGroups, local queues, up to batchSize, hidden for the invocation's timeout)
 *     -> invoke (one RequestResponse call per batch, split only to stay under 6 MB)
 *     -> ack the records that succeeded, nack the failed ones (retryDelayMs or the group's backoff)
 *
 * so at most `maxConcurrency` invocations of a subscription run on one broker. Delivery is the
 * pop model's, with its guarantees: a batch is in flight under receipt handles, a nacked record
 * comes back with its attempt counted up and is dead-lettered by `ConsumerGroups` after the
 * group's `maxDeliveryAttempts`; orderly groups have at most one message per message group in
 * flight, so batches hold distinct message groups and a message group is in one batch at a time.
 * A broker that dies with batches in flight loses nothing: the deliveries become visible again
 * when it restarts (their handles died with it, so nothing is acked twice), and the function
 * sees them again — at least once.
 *
 * Throttles (429) and errors that mean the function did not run (network, 5xx, not found) pause
 * the whole subscription with exponential backoff and keep the batch, extending its
 * invisibility, to invoke it again: they do not count as delivery attempts. Function errors and
 * timeouts retry the whole batch and pause the subscription the same way.
 */
export interface DispatchLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DispatcherOptions {
  groups: ConsumerGroups;
  /** This broker's group: the queues it owns are the ones it dispatches. */
  brokerGroup: string;
  subscriptions: SubscriptionSource;
  /** The topic's route; throws TOPIC_NOT_FOUND. */
  topic: (name: string) => Promise<TopicRoute>;
  invoker: LambdaInvoker;
  config: Pick<DispatchConfig, 'refreshIntervalMs' | 'invokeTimeoutMs' | 'backoffMaxMs'>;
  metrics: DispatchMetrics;
  log: DispatchLogger;
  now?: () => number;
  random?: () => number;
}

/** What runs on this broker, for logs and tests. */
export interface PumpStatus {
  group: string;
  topic: string;
  functionName: string;
  queueIds: number[];
  workers: number;
  invocations: number;
}

export class Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #pumps = new Map<string, Pump>();
  /** Pumps of removed subscriptions, finishing their batches. */
  readonly #retiring = new Set<Pump>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #stopping = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
  }

  /** Reads the subscriptions now and every `refreshIntervalMs`. */
  start(): void {
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#options.config.refreshIntervalMs);
    this.#timer.unref();
  }

  /** Messages were stored in `topic`: idle workers of its subscriptions look at once. */
  notify(topic: string): void {
    for (const pump of this.#pumps.values()) if (pump.topic === topic) pump.wake();
  }

  status(): PumpStatus[] {
    return [...this.#pumps.values()].map((p) => p.status());
  }

  /** Re-reads subscriptions and routes; starts, changes and stops pumps. Never throws. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh()
      .catch((error: unknown) => this.#options.log.error({ err: error }, 'lambda dispatch refresh failed'))
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const o = this.#options;
    let subscriptions: Subscription[];
    try {
      subscriptions = await o.subscriptions();
    } catch (error) {
      // Keep what runs: a name-server hiccup must not stop delivery.
      o.log.warn({ err: error }, 'could not read Lambda subscriptions; keeping the current ones');
      return;
    }
    const wanted = new Map<string, { subscription: Subscription; queueIds: number[] }>();
    for (const subscription of subscriptions) {
      const key = subscriptionKey(subscription);
      let route: TopicRoute;
      try {
        route = await o.topic(subscription.topic);
      } catch (error) {
        const running = this.#pumps.get(key);
        if (error instanceof SkyrocketError && error.code === 'TOPIC_NOT_FOUND') continue;
        if (running !== undefined) wanted.set(key, { subscription, queueIds: running.queueIds });
        continue;
      }
      if (!route.readable) continue;
      const queueIds: number[] = [];
      route.queueGroups.forEach((g, q) => g === o.brokerGroup && queueIds.push(q));
      if (queueIds.length > 0) wanted.set(key, { subscription, queueIds });
    }
    if (this.#stopping) return;
    for (const [key, pump] of this.#pumps) {
      if (wanted.has(key)) continue;
      this.#pumps.delete(key);
      o.log.info({ group: pump.group, topic: pump.topic }, 'lambda subscription stopped on this broker');
      this.#retiring.add(pump);
      void pump.stop(undefined).finally(() => this.#retiring.delete(pump));
    }
    for (const [key, { subscription, queueIds }] of wanted) {
      const pump = this.#pumps.get(key);
      if (pump !== undefined) {
        pump.update(subscription, queueIds);
        continue;
      }
      o.log.info(
        { group: subscription.group, topic: subscription.topic, functionName: subscription.functionName, queueIds, source: subscription.source },
        'lambda subscription started on this broker',
      );
      this.#pumps.set(key, new Pump(o, subscription, queueIds));
    }
  }

  /**
   * Stops taking batches; lets running invocations finish and record their outcome until
   * `deadlineMs`, then aborts the rest and makes their messages visible again (the function may
   * still be running them: at least once).
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    await this.#refreshing;
    await Promise.all([...this.#pumps.values(), ...this.#retiring].map((p) => p.stop(deadlineMs)));
    this.#pumps.clear();
    this.#options.invoker.close();
  }
}

/** A message taken for a batch, under its current receipt handle. */
interface Held {
  message: StoredMessage;
  handle: string;
  visibleUntilMs: number;
}

class Pump {
  readonly group: string;
  readonly topic: string;
  queueIds: number[];
  readonly #o: DispatcherOptions;
  readonly #now: () => number;
  readonly #throttle: Backoff;
  readonly #errors: Backoff;
  readonly #invisibleMs: number;
  readonly #abort = new AbortController();
  /** Sleeping workers that new messages should wake. */
  readonly #idle = new Set<() => void>();
  /** Every sleeping worker, for stop. */
  readonly #sleepers = new Set<() => void>();
  readonly #running = new Set<Promise<void>>();
  #subscription: Subscription;
  #tags: ReadonlySet<string> | undefined;
  #sql: ((m: StoredMessage) => boolean) | undefined;
  /** The filter `#tags` and `#sql` were compiled from. */
  #filterKey: string | undefined;
  /** Whether an idle worker keeps the timer that looks for messages becoming visible again. */
  #timedIdle = false;
  #workers = 0;
  #invocations = 0;
  #stopped = false;

  constructor(options: DispatcherOptions, subscription: Subscription, queueIds: number[]) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.group = subscription.group;
    this.topic = subscription.topic;
    this.queueIds = queueIds;
    const backoff = { baseMs: dispatchLimits.backoffBaseMs, maxMs: options.config.backoffMaxMs, random: options.random ?? Math.random };
    this.#throttle = new Backoff(backoff);
    this.#errors = new Backoff(backoff);
    this.#invisibleMs = Math.min(options.config.invokeTimeoutMs + dispatchLimits.invisibleMarginMs, limits.invisibleMaxMs);
    this.#subscription = subscription;
    this.update(subscription, queueIds);
  }

  status(): PumpStatus {
    const s = this.#subscription;
    return { group: s.group, topic: s.topic, functionName: s.functionName, queueIds: this.queueIds, workers: this.#workers, invocations: this.#invocations };
  }

  update(subscription: Subscription, queueIds: number[]): void {
    if (this.#stopped) return;
    this.#subscription = subscription;
    this.queueIds = queueIds;
    const filterKey = JSON.stringify(subscription.filter);
    if (filterKey !== this.#filterKey) {
      this.#filterKey = filterKey;
      const f = subscription.filter;
      this.#tags = f?.type === 'TAG' ? parseTagExpression(f.expression) : undefined;
      if (f?.type === 'SQL92') {
        const compiled = compileSqlFilter(f.expression);
        this.#sql = (m) => compiled.matches(sqlFilterProperties(m));
      } else {
        this.#sql = undefined;
      }
    }
    // More workers when the concurrency went up; extra ones leave at the top of their loop.
    while (this.#workers < subscription.maxConcurrency) {
      this.#workers++;
      const worker: Promise<void> = this.#work()
        .catch((error: unknown) => {
          // A broken invariant stops the broker; anything else costs one worker until the next refresh.
          if (error instanceof assert.AssertionError) throw error;
          this.#o.log.error({ err: error, group: this.group, topic: this.topic }, 'lambda dispatch worker failed');
        })
        .finally(() => this.#running.delete(worker));
      this.#running.add(worker);
    }
    this.wake();
  }

  wake(): void {
    for (const wake of [...this.#idle]) wake();
  }

  #wakeOne(): void {
    const first = this.#idle.values().next();
    if (first.done !== true) first.value();
  }

  async stop(deadlineMs: number | undefined): Promise<void> {
    this.#stopped = true;
    for (const wake of [...this.#sleepers]) wake();
    const all = Promise.all([...this.#running]);
    if (deadlineMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineMs - this.#now()))));
      await Promise.race([all, late]);
      clearTimeout(timer);
      this.#abort.abort();
    }
    await all;
  }

  #labels(): { group: string; topic: string } {
    return { group: this.group, topic: this.topic };
  }

  /** Resolves after `ms` (never when undefined), on stop, and (when `wakeable`) when messages may have arrived. */
  #sleep(ms: number | undefined, wakeable: boolean): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#idle.delete(done);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, Math.max(0, ms));
      this.#sleepers.add(done);
      if (wakeable) this.#idle.add(done);
    });
  }

  #pauseUntilMs(): number {
    return Math.max(this.#throttle.untilMs, this.#errors.untilMs);
  }

  async #work(): Promise<void> {
    try {
      while (!this.#stopped) {
        const s = this.#subscription;
        if (this.#workers > s.maxConcurrency) break; // the concurrency went down
        const now = this.#now();
        const pauseUntil = this.#pauseUntilMs();
        if (pauseUntil > now) {
          await this.#sleep(pauseUntil - now, false);
          continue;
        }
        let deliveries: Delivery[];
        try {
          deliveries = await this.#o.groups.receive({
            group: s.group,
            mode: 'CLUSTERING',
            topic: s.topic,
            queueIds: this.queueIds,
            max: s.batchSize,
            invisibleMs: this.#invisibleMs,
            tags: this.#tags,
            filter: this.#sql,
            orderly: s.orderly,
            maxDeliveryAttempts: s.maxDeliveryAttempts,
          });
        } catch (error) {
          if (this.#stopped) break;
          this.#o.log.warn({ err: error, group: s.group, topic: s.topic }, 'lambda dispatch could not receive');
          await this.#sleep(dispatchLimits.idlePollMs, false);
          continue;
        }
        assert(deliveries.length <= s.batchSize, 'dispatch: a receive returned more than the batch size');
        if (this.#stopped) {
          // Taken while the broker began to stop: give them back rather than start an invocation.
          this.#release(s, deliveries.map((d) => ({ message: d.message, handle: d.receiptHandle, visibleUntilMs: 0 })));
          break;
        }
        if (deliveries.length === 0) {
          // One idle worker polls on a timer (for retries becoming visible); the others wait to be
          // woken by new messages or by a sibling that found a full batch.
          const timed = !this.#timedIdle;
          if (!timed) {
            await this.#sleep(undefined, true);
            continue;
          }
          this.#timedIdle = true;
          const next = this.#o.groups.nextVisibleAt(s.group, s.topic, this.queueIds);
          const untilNext = next === undefined ? Infinity : next - this.#now();
          try {
            await this.#sleep(Math.min(dispatchLimits.idlePollMs, Math.max(1, untilNext)), true);
          } finally {
            this.#timedIdle = false;
          }
          continue;
        }
        // A full batch suggests more: let an idle sibling look too. So does an idle pump without a
        // timed poller: the sibling takes the timer over if it finds nothing.
        if (deliveries.length >= s.batchSize || !this.#timedIdle) this.#wakeOne();
        await this.#deliver(s, deliveries);
        // Acks may have freed message groups (orderly) or room: idle siblings look again.
        this.wake();
      }
    } finally {
      this.#workers--;
      assert(this.#workers >= 0, 'dispatch: worker count went negative');
    }
  }

  async #deliver(s: Subscription, deliveries: readonly Delivery[]): Promise<void> {
    const now = this.#now();
    const items: Held[] = deliveries.map((d) => ({ message: d.message, handle: d.receiptHandle, visibleUntilMs: now + this.#invisibleMs }));
    const header: BatchEventHeader = { group: s.group, topic: s.topic, brokerGroup: this.#o.brokerGroup };
    for (const run of splitByPayload(items, header, dispatchLimits.payloadMaxBytes)) {
      await this.#invoke(s, header, run);
    }
  }

  /** Invokes the function with one batch until it has an outcome for every record. */
  async #invoke(s: Subscription, header: BatchEventHeader, batch: Held[]): Promise<void> {
    const o = this.#o;
    const labels = this.#labels();
    let items = batch;
    while (items.length > 0) {
      if (this.#stopped && this.#abort.signal.aborted) {
        this.#release(s, items);
        return;
      }
      const payload = encodeBatchEvent(header, items.map((i) => i.message));
      this.#invocations++;
      o.metrics.inflight.inc(labels);
      const endTimer = o.metrics.invokeSeconds.startTimer(labels);
      const outcome = await o.invoker.invoke(s.functionName, payload, this.#abort.signal).finally(() => {
        endTimer();
        o.metrics.inflight.dec(labels);
      });
      o.metrics.invocations.inc({ ...labels, outcome: outcome.kind });
      const log = { group: s.group, topic: s.topic, functionName: s.functionName, records: items.length };
      switch (outcome.kind) {
        case 'aborted':
          this.#release(s, items);
          return;
        case 'ok': {
          const response = parseBatchResponse(outcome.payload, new Set(items.map((i) => i.message.messageId)));
          if (response.kind === 'invalid') {
            o.log.warn({ ...log, reason: response.reason }, 'lambda consumer answered with an invalid batch response; retrying the batch');
            this.#errors.fail(this.#now());
            this.#retry(s, items);
            return;
          }
          this.#throttle.succeed();
          this.#errors.succeed();
          this.#ack(s, items.filter((i) => !response.failed.has(i.message.messageId)));
          this.#retry(s, items.filter((i) => response.failed.has(i.message.messageId)));
          return;
        }
        case 'function-error':
        case 'timeout': {
          const pauseMs = this.#errors.fail(this.#now());
          o.log.warn(
            { ...log, outcome: outcome.kind, error: outcome.kind === 'function-error' ? `${outcome.errorType}: ${outcome.message}` : outcome.message, pauseMs },
            'lambda consumer failed the whole batch; retrying it',
          );
          this.#retry(s, items);
          return;
        }
        case 'throttled':
        case 'unavailable': {
          const backoff = outcome.kind === 'throttled' ? this.#throttle : this.#errors;
          const pauseMs = backoff.fail(this.#now());
          // One line per doubling, not one per attempt.
          if ((backoff.failures & (backoff.failures - 1)) === 0) {
            const level = outcome.kind === 'unavailable' && outcome.misconfigured ? 'error' : 'warn';
            o.log[level]({ ...log, outcome: outcome.kind, error: outcome.message, failures: backoff.failures, pauseMs }, 'lambda consumer not invoked; backing off');
          }
          await this.#sleep(this.#pauseUntilMs() - this.#now(), false);
          if (this.#stopped) {
            this.#release(s, items);
            return;
          }
          items = this.#extend(s, items);
          continue;
        }
      }
    }
  }

  #ack(s: Subscription, items: readonly Held[]): void {
    for (const item of items) {
      try {
        this.#o.groups.ack(item.handle, s.group, s.topic);
        this.#o.metrics.messages.inc({ ...this.#labels(), result: 'acked' });
      } catch (error) {
        this.#handleFailed('ack', item, error);
      }
    }
  }

  /** Failed records: back after the subscription's retry delay or the group's backoff. */
  #retry(s: Subscription, items: readonly Held[]): void {
    for (const item of items) {
      try {
        this.#o.groups.nack(item.handle, s.group, s.topic, s.retryDelayMs ?? undefined);
        this.#o.metrics.messages.inc({ ...this.#labels(), result: 'retried' });
      } catch (error) {
        this.#handleFailed('nack', item, error);
      }
    }
  }

  /** Records never handed to the function (stopping): visible again at once. */
  #release(s: Subscription, items: readonly Held[]): void {
    for (const item of items) {
      try {
        this.#o.groups.nack(item.handle, s.group, s.topic, 0);
        this.#o.metrics.messages.inc({ ...this.#labels(), result: 'released' });
      } catch (error) {
        this.#handleFailed('nack', item, error);
      }
    }
  }

  /** Keeps held records hidden for another invocation; drops those whose delivery ended. */
  #extend(s: Subscription, items: readonly Held[]): Held[] {
    const now = this.#now();
    const kept: Held[] = [];
    for (const item of items) {
      if (item.visibleUntilMs - now > this.#o.config.invokeTimeoutMs + dispatchLimits.invisibleMarginMs / 2) {
        kept.push(item);
        continue;
      }
      try {
        const handle = this.#o.groups.changeInvisibility(item.handle, s.group, s.topic, this.#invisibleMs);
        kept.push({ message: item.message, handle, visibleUntilMs: now + this.#invisibleMs });
      } catch (error) {
        this.#handleFailed('extend', item, error);
      }
    }
    return kept;
  }

  #handleFailed(operation: 'ack' | 'nack' | 'extend', item: Held, error: unknown): void {
    this.#o.metrics.handleFailures.inc({ ...this.#labels(), operation });
    this.#o.log.warn(
      { err: error, group: this.group, topic: this.topic, queueId: item.message.queueId, queueOffset: item.message.queueOffset, operation },
      'lambda dispatch could not settle a delivery; it will be delivered again',
    );
  }
}
