/**
 * The workloads of one repetition against one running system. Each runs in worker processes
 * (`worker.ts`, producer and consumer apart) on a destination of its own, created before and
 * deleted after, while the server's CPU time is read around it.
 *
 *   windowed  `window` publishes kept unacknowledged for `seconds` (after a warm-up) -> msgs/s
 *   serial    each publish waits for its ack, for `seconds` (after a warm-up) -> ack latency
 *   e2e       a consumer subscribed first; a producer at `ratePerSecond` for `seconds`
 *             -> publish-to-consume latency from the send time in each body
 *   catch-up  a producer fills a backlog of `count`; then a consumer drains it -> msgs/s
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openAdmin, type Connection, type ConsumerOptions, type SystemName } from './clients.ts';
import { ResourceMeter } from './proc.ts';
import type { RunningServer } from './servers.ts';
import type {
  BacklogResult,
  DrainResult,
  FromWorker,
  Job,
  LatencyResult,
  PacedResult,
  Result,
  SerialResult,
  ToWorker,
  WindowedResult,
} from './worker.ts';

export interface Plan {
  bodyBytes: number;
  windowed: { seconds: number; warmupSeconds: number; window: number };
  serial: { seconds: number; warmupSeconds: number };
  e2e: { seconds: number; ratePerSecond: number; warmupSeconds: number; maxInFlight: number };
  catchUp: { count: number; window: number; produceTimeoutSeconds: number; consumeTimeoutSeconds: number };
  consumer: ConsumerOptions;
  /** Skyrocket's serial publish: each message its own request (`single`) or through the batcher (`coalesce`). */
  skyrocketSerialMode: 'coalesce' | 'single';
  /** The endpoint the Skyrocket clients use: the wire protocol's or HTTP's. */
  skyrocketTransport: 'wire' | 'http';
  /** The workloads to run (all by default): for looking at one before and after a change. */
  workloads?: ReadonlySet<WorkloadName>;
}

export const workloadNames = ['windowed', 'serial', 'e2e', 'catchup'] as const;
export type WorkloadName = (typeof workloadNames)[number];

/** A result with the server's CPU seconds over the workload (and the worker's own, `clientCpuSeconds`). */
export type WithCpu<T> = T & { serverCpuSeconds: number; clientCpuSeconds?: number };

export interface SystemRun {
  system: SystemName;
  repetition: number;
  startSeconds: number;
  /** How long the server kept busy after it said it was ready (boot work, preallocation) before the workloads began. */
  settleSeconds: number;
  loadAverage: { before: number[]; after: number[] };
  windowed?: WithCpu<WindowedResult>;
  serial?: WithCpu<SerialResult>;
  e2e?: WithCpu<{ producer: PacedResult; consumer: LatencyResult }>;
  catchUp?: { produce: WithCpu<BacklogResult>; consume: WithCpu<DrainResult> };
  resources?: {
    /** The peak resident memory (VmHWM) of the server's largest process: beam.smp, redis-server, nats-server, the broker. */
    peakRssMiB: number;
    /** The whole server tree at its peak: the largest sum of PSS over its processes, sampled every 250 ms. */
    treePeakPssMiB: number;
    /** Every process seen in the server's tree, with its VmHWM (forked children count shared pages again). */
    processes: Array<{ pid: number; comm: string; mib: number }>;
    /** Server CPU seconds (user + system) over the whole repetition, start included. */
    cpuSeconds: number;
    /** Skyrocket's AWS stand-ins (dynalite, s3rver), which production replaces with DynamoDB and S3. */
    auxiliary?: { peakRssMiB: number; cpuSeconds: number };
  };
  errors: string[];
}

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const workerScript = path.join(import.meta.dirname, 'worker.ts');

/** A forked worker process and the messages it sends. */
class Worker {
  readonly #child: ChildProcess;
  readonly #inbox: FromWorker[] = [];
  #wake: (() => void) | undefined;
  #exit: string | undefined;

  constructor(job: Job) {
    // For profiling the clients: BENCH_WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof-workers'.
    const nodeArgs = (process.env['BENCH_WORKER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    this.#child = fork(workerScript, [], { execArgv: [...nodeArgs, '--import', tsxLoader], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: FromWorker) => {
      this.#inbox.push(m);
      this.#wake?.();
    });
    this.#child.on('error', () => undefined);
    this.#child.once('exit', (code, signal) => {
      this.#exit = `worker exited (${signal ?? code})`;
      this.#wake?.();
    });
    this.#child.send({ type: 'job', job } satisfies ToWorker);
  }

  /** Sends unless the worker is gone (its exit then shows in `next`). */
  send(message: ToWorker): void {
    if (this.#child.connected) this.#child.send(message, (error) => void error);
  }

  /** The next message of `type`; an error message, the worker's exit or `timeoutMs` rejects. */
  async next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.#inbox.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const [m] = this.#inbox.splice(i, 1) as [FromWorker];
        if (m.type === 'error') throw new Error(m.message);
        return m as Extract<FromWorker, { type: T }>;
      }
      if (this.#exit !== undefined) throw new Error(this.#exit);
      const left = deadline - performance.now();
      if (left <= 0) {
        this.kill();
        throw new Error(`no ${type} from the worker within ${timeoutMs} ms`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
      });
    }
  }

  async result<R extends Result>(timeoutMs: number): Promise<R> {
    return (await this.next('result', timeoutMs)).result as R;
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }

  /** Gives the worker `graceMs` to exit by itself (it does after its result), then kills it. */
  async finish(graceMs = 5_000): Promise<void> {
    const deadline = performance.now() + graceMs;
    while (this.#exit === undefined && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.kill();
  }
}

/** Runs every workload once against `server`; failures are recorded in `errors`, not thrown. */
export async function runWorkloads(
  server: RunningServer,
  plan: Plan,
  repetition: number,
  log: (line: string) => void,
): Promise<SystemRun> {
  const meter = new ResourceMeter(server.serverPids, server.excludeCommands);
  const aux = server.auxiliaryPids.length > 0 ? new ResourceMeter(server.auxiliaryPids) : undefined;
  const sampler = setInterval(() => {
    meter.sample();
    aux?.sample();
  }, 250);
  const settleSeconds = await settle(meter);
  log(`  ${server.system} #${repetition + 1}: ready after ${server.startSeconds.toFixed(1)} s, settled after ${settleSeconds} s more`);
  const run: SystemRun = {
    system: server.system,
    repetition,
    startSeconds: round2(server.startSeconds),
    settleSeconds,
    loadAverage: { before: loadAverage(), after: [] },
    errors: [],
  };
  const c = server.connection;
  const admin = await openAdmin(c);
  const cpuAround = async <T>(fn: () => Promise<T>): Promise<WithCpu<T>> => {
    const before = meter.cpuSeconds();
    const value = await fn();
    return { ...value, serverCpuSeconds: round2(meter.cpuSeconds() - before) };
  };
  /** Creates the destination, runs `fn` on it, deletes it; records a failure under `name`. */
  const workload = async (name: WorkloadName, fn: (destination: string) => Promise<void>): Promise<void> => {
    if (plan.workloads !== undefined && !plan.workloads.has(name)) return;
    const destination = `bench-${name}-${repetition}`;
    log(`  ${server.system} #${repetition + 1}: ${name}`);
    try {
      await admin.prepare(destination);
      await fn(destination);
    } catch (error) {
      const text = `${name}: ${error instanceof Error ? error.message : String(error)}`;
      log(`  ${server.system} #${repetition + 1}: FAILED ${text}`);
      run.errors.push(text);
    } finally {
      await admin.remove(destination).catch((error: unknown) => run.errors.push(`${name}: removing ${destination}: ${String(error)}`));
    }
  };
  const base = (destination: string): { connection: Connection; destination: string; bodyBytes: number } => ({
    connection: c,
    destination,
    bodyBytes: plan.bodyBytes,
  });

  try {
    await workload('windowed', async (d) => {
      const { seconds, warmupSeconds, window } = plan.windowed;
      const w = new Worker({ ...base(d), kind: 'windowed', window, warmupSeconds, seconds, publisher: {} });
      run.windowed = await cpuAround(() => w.result<WindowedResult>((seconds + warmupSeconds + 60) * 1000));
      log(`    ${run.windowed.msgsPerSec} msgs/s`);
    });

    await workload('serial', async (d) => {
      const { seconds, warmupSeconds } = plan.serial;
      const w = new Worker({ ...base(d), kind: 'serial', warmupSeconds, seconds, publisher: { skyrocketMode: plan.skyrocketSerialMode } });
      run.serial = await cpuAround(() => w.result<SerialResult>((seconds + 60) * 1000));
      log(`    p50 ${run.serial.latency.p50Ms} ms, p99 ${run.serial.latency.p99Ms} ms (${run.serial.latency.count} acks)`);
    });

    await workload('e2e', async (d) => {
      const { seconds, ratePerSecond, warmupSeconds, maxInFlight } = plan.e2e;
      const total = Math.round(seconds * ratePerSecond);
      const consumer = new Worker({
        ...base(d),
        kind: 'consume-latency',
        consumer: plan.consumer,
        warmupCount: Math.round(warmupSeconds * ratePerSecond),
        capacity: total,
        timeoutSeconds: 30,
      });
      try {
        await consumer.next('ready', 60_000);
        run.e2e = await cpuAround(async () => {
          const producer = new Worker({ ...base(d), kind: 'paced', ratePerSecond, seconds, maxInFlight, publisher: {} });
          const produced = await producer.result<PacedResult>((seconds * 2 + 60) * 1000);
          consumer.send({ type: 'expect', total: produced.sent });
          return { producer: produced, consumer: await consumer.result<LatencyResult>(90_000) };
        });
      } finally {
        await consumer.finish();
      }
      const { latency } = run.e2e.consumer;
      const ack = run.e2e.producer.ackLatency;
      log(
        `    p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms (${run.e2e.consumer.distinct}/${run.e2e.producer.sent}); publish acks p50 ${ack.p50Ms} ms, p99 ${ack.p99Ms} ms`,
      );
    });

    await workload('catchup', async (d) => {
      const { count, window, produceTimeoutSeconds, consumeTimeoutSeconds } = plan.catchUp;
      const producer = new Worker({ ...base(d), kind: 'backlog', count, window, timeoutSeconds: produceTimeoutSeconds, publisher: {} });
      const produce = await cpuAround(() => producer.result<BacklogResult>((produceTimeoutSeconds + 60) * 1000));
      log(`    backlog of ${produce.published} in ${produce.seconds.toFixed(1)} s (${produce.msgsPerSec} msgs/s)`);
      const consumer = new Worker({ ...base(d), kind: 'consume-drain', consumer: plan.consumer, count: produce.published, timeoutSeconds: consumeTimeoutSeconds });
      const consume = await cpuAround(() => consumer.result<DrainResult>((consumeTimeoutSeconds + 60) * 1000));
      run.catchUp = { produce, consume };
      log(`    drained ${consume.distinct} in ${consume.seconds.toFixed(1)} s (${consume.msgsPerSec} msgs/s)`);
    });
  } finally {
    clearInterval(sampler);
    await admin.close().catch(() => undefined);
    const peak = meter.peakMemory();
    run.resources = {
      peakRssMiB: peak.largestProcessMiB,
      treePeakPssMiB: peak.pssMiB,
      processes: peak.processes,
      cpuSeconds: round2(meter.cpuSeconds()),
    };
    if (aux !== undefined) run.resources.auxiliary = { peakRssMiB: aux.peakMemory().largestProcessMiB, cpuSeconds: round2(aux.cpuSeconds()) };
    run.loadAverage.after = loadAverage();
  }
  return run;
}

/**
 * Waits until the server is quiet: less than `idleCpuShare` of a core over the last second, for
 * at most `maxSeconds`. A server may go on working after it says it is ready (RabbitMQ finishing
 * its boot, Skyrocket zero-filling its first segments); the workloads should not pay for that.
 */
async function settle(meter: ResourceMeter, idleCpuShare = 0.05, maxSeconds = 60): Promise<number> {
  const started = performance.now();
  const readings: Array<{ at: number; cpu: number }> = [];
  for (;;) {
    readings.push({ at: performance.now(), cpu: meter.cpuSeconds() });
    const first = readings.find((r) => r.at >= performance.now() - 1000 - 1);
    const last = readings[readings.length - 1]!;
    if (first !== undefined && last.at - first.at >= 900 && (last.cpu - first.cpu) / ((last.at - first.at) / 1000) < idleCpuShare) break;
    if (performance.now() - started > maxSeconds * 1000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return round2((performance.now() - started) / 1000);
}

function loadAverage(): number[] {
  return os.loadavg().map(round2);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
