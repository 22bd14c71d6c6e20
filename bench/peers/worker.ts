/**
 * A producer or consumer process of the side-by-side benchmark (`bench/peers.ts` forks it). It
 * takes one job over IPC, runs it against one system through `clients.ts`, reports one result,
 * and exits.
 *
 * Message bodies carry their send time and sequence number (see `body.ts`).
 *
 * IPC, parent to worker:  { type: 'job', job } then, for `consume-latency`, { type: 'expect', total }
 *      worker to parent:  { type: 'ready' } (consumers, once subscribed), then { type: 'result', result }
 *                         or { type: 'error', message }
 */
import assert from 'node:assert/strict';
import { makeBody, paddingFor, readBody } from './body.ts';
import { openConsumer, openPublisher, type Connection, type ConsumerOptions, type Publisher, type PublisherOptions } from './clients.ts';
import { Samples, summarizeLatencies, type LatencySummary } from './stats.ts';

interface JobBase {
  connection: Connection;
  destination: string;
  bodyBytes: number;
}

export type Job =
  /** Keeps `window` publishes unacknowledged; counts acks over `seconds` after `warmupSeconds`. */
  | (JobBase & { kind: 'windowed'; window: number; warmupSeconds: number; seconds: number; publisher: PublisherOptions })
  /** One publish at a time; ack latency of each after the first `warmupSeconds`. */
  | (JobBase & { kind: 'serial'; warmupSeconds: number; seconds: number; publisher: PublisherOptions })
  /** Publishes at `ratePerSecond` for `seconds`, without waiting for acks (at most `maxInFlight` unacked). */
  | (JobBase & { kind: 'paced'; ratePerSecond: number; seconds: number; maxInFlight: number; publisher: PublisherOptions })
  /** Publishes `count` messages with `window` unacknowledged, as fast as acks come back. */
  | (JobBase & { kind: 'backlog'; count: number; window: number; timeoutSeconds: number; publisher: PublisherOptions })
  /** Consumes until it has seen `total` (sent later) distinct messages; latency of those with sequence ≥ `warmupCount`. */
  | (JobBase & { kind: 'consume-latency'; consumer: ConsumerOptions; warmupCount: number; capacity: number; timeoutSeconds: number })
  /** Consumes a backlog of `count` messages as fast as it can. */
  | (JobBase & { kind: 'consume-drain'; consumer: ConsumerOptions; count: number; timeoutSeconds: number });

export interface WindowedResult {
  msgsPerSec: number;
  acked: number;
  seconds: number;
  errors: number;
  firstError?: string;
}
export interface SerialResult {
  latency: LatencySummary;
  errors: number;
  firstError?: string;
}
export interface PacedResult {
  sent: number;
  acked: number;
  errors: number;
  firstError?: string;
  achievedPerSec: number;
  /** Publish-to-ack latency of the messages after the first second: the publishing part of the end-to-end latency. */
  ackLatency: LatencySummary;
  /** Ticks when `maxInFlight` held sending back: the system could not keep up. */
  throttledTicks: number;
}
export interface BacklogResult {
  published: number;
  seconds: number;
  msgsPerSec: number;
  errors: number;
  firstError?: string;
  complete: boolean;
}
export interface LatencyResult {
  latency: LatencySummary;
  received: number;
  distinct: number;
  complete: boolean;
}
export interface DrainResult {
  received: number;
  distinct: number;
  seconds: number;
  msgsPerSec: number;
  complete: boolean;
}
/** Every result also carries the worker's own CPU time (user + system) over its job. */
export type Result = (WindowedResult | SerialResult | PacedResult | BacklogResult | LatencyResult | DrainResult) & { clientCpuSeconds?: number };

export type ToWorker = { type: 'job'; job: Job } | { type: 'expect'; total: number };
export type FromWorker = { type: 'ready' } | { type: 'result'; result: Result } | { type: 'error'; message: string };

const nowMs = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Waits until `inFlight()` is 0, or `timeoutMs` passes. */
async function drain(inFlight: () => number, timeoutMs: number): Promise<void> {
  const until = nowMs() + timeoutMs;
  while (inFlight() > 0 && nowMs() < until) await sleep(5);
}

async function windowed(pub: Publisher, job: Extract<Job, { kind: 'windowed' }>): Promise<WindowedResult> {
  const padding = paddingFor(job.bodyBytes);
  let seq = 0;
  let inFlight = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stopped = false;
  const issue = (): void => {
    while (!stopped && inFlight < job.window) {
      inFlight++;
      pub.publish(makeBody(seq++, padding)).then(
        () => {
          inFlight--;
          acked++;
          issue();
        },
        (error: unknown) => {
          inFlight--;
          errors++;
          firstError ??= describe(error);
          issue();
        },
      );
    }
  };
  let a0 = 0;
  let t0 = 0;
  issue();
  await sleep(job.warmupSeconds * 1000);
  a0 = acked;
  t0 = nowMs();
  await sleep(job.seconds * 1000);
  const a1 = acked;
  const t1 = nowMs();
  stopped = true;
  await drain(() => inFlight, 30_000);
  const seconds = (t1 - t0) / 1000;
  return { msgsPerSec: Math.round((a1 - a0) / seconds), acked: a1 - a0, seconds, errors, ...(firstError ? { firstError } : {}) };
}

async function serial(pub: Publisher, job: Extract<Job, { kind: 'serial' }>): Promise<SerialResult> {
  const padding = paddingFor(job.bodyBytes);
  const samples = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const measureFrom = nowMs() + job.warmupSeconds * 1000;
  const deadline = measureFrom + job.seconds * 1000;
  for (let seq = 0; nowMs() < deadline; seq++) {
    const measured = nowMs() >= measureFrom;
    const started = process.hrtime.bigint();
    try {
      await pub.publish(makeBody(seq, padding));
    } catch (error) {
      errors++;
      firstError ??= describe(error);
      if (errors > 100) break;
      continue;
    }
    if (measured) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { latency: summarizeLatencies(samples.toArray()), errors, ...(firstError ? { firstError } : {}) };
}

async function paced(pub: Publisher, job: Extract<Job, { kind: 'paced' }>): Promise<PacedResult> {
  const padding = paddingFor(job.bodyBytes);
  const total = Math.round(job.ratePerSecond * job.seconds);
  let sent = 0;
  let acked = 0;
  let inFlight = 0;
  let errors = 0;
  let firstError: string | undefined;
  let throttledTicks = 0;
  const ackSamples = new Samples();
  const warmupCount = job.ratePerSecond;
  const started = nowMs();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((nowMs() - started) * job.ratePerSecond) / 1000));
      while (sent < due) {
        if (inFlight >= job.maxInFlight) {
          throttledTicks++;
          break;
        }
        inFlight++;
        const seq = sent++;
        const sentAt = process.hrtime.bigint();
        pub.publish(makeBody(seq, padding)).then(
          () => {
            inFlight--;
            acked++;
            if (seq >= warmupCount) ackSamples.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
          },
          (error: unknown) => {
            inFlight--;
            errors++;
            firstError ??= describe(error);
          },
        );
      }
      if (sent < total && nowMs() - started < job.seconds * 1000 * 2) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const elapsed = (nowMs() - started) / 1000;
  await drain(() => inFlight, 30_000);
  return {
    sent,
    acked,
    errors,
    ...(firstError ? { firstError } : {}),
    achievedPerSec: Math.round(sent / elapsed),
    ackLatency: summarizeLatencies(ackSamples.toArray()),
    throttledTicks,
  };
}

async function backlog(pub: Publisher, job: Extract<Job, { kind: 'backlog' }>): Promise<BacklogResult> {
  const padding = paddingFor(job.bodyBytes);
  let seq = 0;
  let inFlight = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = nowMs();
  const deadline = started + job.timeoutSeconds * 1000;
  await new Promise<void>((resolve) => {
    const issue = (): void => {
      while (seq < job.count && inFlight < job.window && nowMs() < deadline) {
        inFlight++;
        const mine = seq++;
        pub.publish(makeBody(mine, padding)).then(
          () => {
            inFlight--;
            acked++;
            issue();
          },
          (error: unknown) => {
            inFlight--;
            errors++;
            firstError ??= describe(error);
            issue();
          },
        );
      }
      if (inFlight === 0) resolve();
    };
    issue();
  });
  const seconds = (nowMs() - started) / 1000;
  return {
    published: acked,
    seconds,
    msgsPerSec: Math.round(acked / seconds),
    errors,
    ...(firstError ? { firstError } : {}),
    complete: acked === job.count,
  };
}

async function consumeLatency(job: Extract<Job, { kind: 'consume-latency' }>, expected: Promise<number>): Promise<LatencyResult> {
  const consumer = await openConsumer(job.connection, job.destination, job.consumer);
  const samples = new Samples();
  const seen = new Uint8Array(job.capacity);
  let received = 0;
  let distinct = 0;
  let total = Infinity;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.start((body) => {
    const now = process.hrtime.bigint();
    const { sentNs, seq } = readBody(body);
    received++;
    if (seq < seen.length && seen[seq] === 0) {
      seen[seq] = 1;
      distinct++;
      if (seq >= job.warmupCount) samples.push(Number(now - sentNs) / 1e6);
    }
    if (distinct >= total) done();
  });
  process.send!({ type: 'ready' } satisfies FromWorker);
  total = await expected;
  if (distinct < total) await Promise.race([finished, sleep(job.timeoutSeconds * 1000)]);
  await consumer.stop();
  return { latency: summarizeLatencies(samples.toArray()), received, distinct, complete: distinct >= total };
}

async function consumeDrain(job: Extract<Job, { kind: 'consume-drain' }>): Promise<DrainResult> {
  const consumer = await openConsumer(job.connection, job.destination, job.consumer);
  const seen = new Uint8Array(job.count);
  let received = 0;
  let distinct = 0;
  let last = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const started = nowMs();
  await consumer.start((body) => {
    received++;
    const { seq } = readBody(body);
    if (seq < seen.length && seen[seq] === 0) {
      seen[seq] = 1;
      distinct++;
      last = nowMs();
      if (distinct === job.count) done();
    }
  });
  await Promise.race([finished, sleep(job.timeoutSeconds * 1000)]);
  await consumer.stop();
  const seconds = ((distinct === job.count ? last : nowMs()) - started) / 1000;
  return { received, distinct, seconds, msgsPerSec: Math.round(distinct / seconds), complete: distinct === job.count };
}

async function run(job: Job, expected: Promise<number>): Promise<Result> {
  switch (job.kind) {
    case 'consume-latency':
      return consumeLatency(job, expected);
    case 'consume-drain':
      return consumeDrain(job);
    default: {
      const pub = await openPublisher(job.connection, job.destination, job.publisher);
      try {
        switch (job.kind) {
          case 'windowed':
            return await windowed(pub, job);
          case 'serial':
            return await serial(pub, job);
          case 'paced':
            return await paced(pub, job);
          case 'backlog':
            return await backlog(pub, job);
        }
      } finally {
        await pub.close();
      }
    }
  }
}

function main(): void {
  assert(process.send !== undefined, 'worker.ts is started by bench/peers.ts with an IPC channel');
  let resolveExpected!: (total: number) => void;
  const expected = new Promise<number>((resolve) => (resolveExpected = resolve));
  const reply = (message: FromWorker): void => {
    process.send!(message, undefined, undefined, () => process.exit(0));
  };
  process.on('message', (message: ToWorker) => {
    if (message.type === 'expect') {
      resolveExpected(message.total);
      return;
    }
    const cpu = process.cpuUsage();
    run(message.job, expected).then(
      (result) => {
        const used = process.cpuUsage(cpu);
        reply({ type: 'result', result: { ...result, clientCpuSeconds: Math.round((used.user + used.system) / 1e4) / 100 } });
      },
      (error: unknown) => reply({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  // The parent going away ends the worker, whatever it was doing.
  process.once('disconnect', () => process.exit(1));
}

main();
