/**
 * `npm run bench:peers`: Skyrocket side by side with Redis streams (AOF, fsync always), RabbitMQ
 * (quorum queue, publisher confirms) and NATS JetStream (file storage), on this machine, in one run.
 *
 * It installs the peers from Debian's packages when they are missing, starts each system on
 * 127.0.0.1 with its data in a temporary directory, runs the workloads of `peers/workloads.ts`
 * with producers and consumers in worker processes, stops what it started (by PID) and removes the
 * data. Each system is started afresh for every repetition; the order of the systems rotates from
 * one repetition to the next. Writes `bench/results/peers-<date>.{json,md,svg}` and prints a JSON
 * summary.
 *
 * `npm run bench` (`--quick`): Skyrocket alone, one repetition of shorter workloads, in about a
 * minute, for before/after figures of a hot-path change. Prints JSON only.
 *
 * Options (all optional):
 *   --systems skyrocket,redis,rabbitmq,nats   --repetitions 3        --quick
 *   --windowed-seconds 10   --serial-seconds 10   --e2e-seconds 20   --e2e-rate 5000
 *   --backlog 1000000       --window 1000         --skyrocket-receivers 2
 *   --skyrocket-serial single|coalesce            --skip-install     --print-only
 *   --skyrocket-transport wire|http   (default wire: the SDK on a skyrocket:// endpoint)
 *   --out bench/results     --max-minutes 150     --tmp-dir <dir>
 *   --workloads windowed,serial,e2e,catchup   (default all)
 *   --render bench/results/peers-<date>.json   (no measuring: writes that run's .md and .svg again)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { renderChart } from './peers/chart.ts';
import { systems as allSystems, type SystemName } from './peers/clients.ts';
import { installPeers } from './peers/install.ts';
import { checkTargets, renderMarkdown, summarize } from './peers/report.ts';
import { killAllStarted, peerVersions, startServer, type RunningServer } from './peers/servers.ts';
import { runWorkloads, workloadNames, type Plan, type SystemRun, type WorkloadName } from './peers/workloads.ts';

const root = path.resolve(import.meta.dirname, '..');

const { values: args } = parseArgs({
  options: {
    systems: { type: 'string' },
    repetitions: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'windowed-seconds': { type: 'string' },
    'serial-seconds': { type: 'string' },
    'e2e-seconds': { type: 'string' },
    'e2e-rate': { type: 'string' },
    backlog: { type: 'string' },
    window: { type: 'string' },
    'skyrocket-receivers': { type: 'string' },
    'skyrocket-serial': { type: 'string' },
    'skyrocket-transport': { type: 'string' },
    'skip-install': { type: 'boolean', default: false },
    'print-only': { type: 'boolean', default: false },
    out: { type: 'string' },
    'max-minutes': { type: 'string' },
    'tmp-dir': { type: 'string' },
    render: { type: 'string' },
    workloads: { type: 'string' },
  },
  strict: true,
});

function numberArg(name: keyof typeof args, fallback: number, min: number, max: number): number {
  const raw = args[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`--${name} ${String(raw)}: expected a number from ${min} to ${max}`);
  }
  return value;
}

const quick = args.quick;
const systems: SystemName[] = (args.systems ?? (quick ? 'skyrocket' : allSystems.join(','))).split(',').map((s) => {
  const name = s.trim() as SystemName;
  if (!allSystems.includes(name)) throw new Error(`--systems: unknown system ${s}; choose from ${allSystems.join(', ')}`);
  return name;
});
const repetitions = numberArg('repetitions', quick ? 1 : 3, 1, 20);
const window = numberArg('window', 1000, 1, 100_000);
const serialMode = args['skyrocket-serial'] ?? 'coalesce';
if (serialMode !== 'single' && serialMode !== 'coalesce') throw new Error('--skyrocket-serial: single or coalesce');
const transport = args['skyrocket-transport'] ?? 'wire';
if (transport !== 'wire' && transport !== 'http') throw new Error('--skyrocket-transport: wire or http');

const plan: Plan = {
  bodyBytes: 1024,
  windowed: { seconds: numberArg('windowed-seconds', quick ? 5 : 10, 0.5, 600), warmupSeconds: 1, window },
  serial: { seconds: numberArg('serial-seconds', quick ? 5 : 10, 0.5, 600), warmupSeconds: quick ? 1 : 2 },
  e2e: {
    seconds: numberArg('e2e-seconds', quick ? 10 : 20, 1, 600),
    ratePerSecond: numberArg('e2e-rate', 5000, 1, 1_000_000),
    warmupSeconds: 1,
    maxInFlight: 20_000,
  },
  catchUp: {
    count: Math.round(numberArg('backlog', quick ? 100_000 : 1_000_000, 1000, 10_000_000)),
    window,
    produceTimeoutSeconds: 600,
    consumeTimeoutSeconds: 600,
  },
  consumer: { window: Math.min(window, 1024), skyrocketReceivers: numberArg('skyrocket-receivers', 2, 1, 64) },
  skyrocketSerialMode: serialMode,
  skyrocketTransport: transport,
  workloads:
    args.workloads === undefined
      ? undefined
      : new Set(
          args.workloads.split(',').map((w) => {
            const name = w.trim() as WorkloadName;
            if (!workloadNames.includes(name)) throw new Error(`--workloads: unknown workload ${w}; choose from ${workloadNames.join(', ')}`);
            return name;
          }),
        ),
};
const maxMinutes = numberArg('max-minutes', quick ? 5 : 150, 1, 600);
const outDir = path.resolve(args.out ?? path.join(root, 'bench/results'));
const writeFiles = !args['print-only'] && !quick;

/** Progress goes to stderr; stdout carries only the JSON result. */
function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function sh(command: string, argv: string[]): string {
  try {
    return execFileSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function machine(tmpRoot: string): Record<string, unknown> {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const osName = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '')?.[1];
  return {
    cpu: cpuModel,
    cores: os.availableParallelism(),
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: os.release(),
    os: osName ?? os.type(),
    node: process.version,
    'data directories': `${tmpRoot} (${sh('df', ['-hT', tmpRoot]).split('\n')[1]?.split(/\s+/).slice(0, 3).join(' ') ?? 'unknown'})`,
    'load average at start (1, 5, 15 min)': os.loadavg().map((x) => x.toFixed(2)).join(', '),
  };
}

function versions(): Record<string, string> {
  const dirty = sh('git', ['-C', root, 'status', '--porcelain']) === '' ? '' : ' (with uncommitted changes)';
  return {
    skyrocket: `${sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD'])}${dirty}`,
    ...(systems.some((s) => s !== 'skyrocket') ? peerVersions() : {}),
    'ioredis (npm)': packageVersion('ioredis'),
    'amqplib (npm)': packageVersion('amqplib'),
    'nats (npm)': packageVersion('nats'),
  };
}

function notes(): string[] {
  const p = plan;
  const scaled = p.catchUp.count === 1_000_000 ? '' : ` (scaled down from the 1,000,000 of the issue: ${quick ? 'quick mode' : 'see the command'})`;
  return [
    `Bodies of ${p.bodyBytes} bytes (ASCII; the first 30 hold the send time and a sequence number). One Node ${process.version} harness for every system; producer and consumer are separate processes (\`child_process.fork\`); every connection goes to 127.0.0.1.`,
    `Windowed publish: ${p.windowed.window} publishes kept unacknowledged; ${p.windowed.warmupSeconds} s of warm-up, then acks counted over ${p.windowed.seconds} s.`,
    `Serial publish: one publish at a time, each waiting for its ack, for ${p.serial.seconds} s after ${p.serial.warmupSeconds} s of warm-up publishes (the same for every system: the Node clients and Skyrocket's broker run their first few thousand requests before the JIT has compiled the hot path); p50/p99 of the ack latency.`,
    `End to end: the consumer subscribes first, then the producer publishes ${p.e2e.ratePerSecond} msgs/s for ${p.e2e.seconds} s without waiting for acks (at most ${p.e2e.maxInFlight} unacknowledged). Latency = receive time − send time from the body (CLOCK_MONOTONIC, shared by the processes); the first ${p.e2e.warmupSeconds} s of messages are left out.`,
    `Catch-up: a backlog of ${p.catchUp.count.toLocaleString('en-US')} messages${scaled} is published with ${p.catchUp.window} in flight, then a fresh consumer drains it; rate = backlog ÷ time from subscribing to the last message.`,
    `Consumers hold up to ${p.consumer.window} messages unacknowledged: RabbitMQ \`prefetch(${p.consumer.window})\` with one multiple-ack per event-loop turn; Redis \`XREADGROUP COUNT ${p.consumer.window}\` with one \`XACK\` per read; NATS pull consumer \`consume({ max_messages: ${p.consumer.window} })\`, each message acked; Skyrocket \`SimpleConsumer.ackAndReceive(previous, ${p.consumer.window})\` with ${p.consumer.skyrocketReceivers} receives in flight, each carrying the acks of the batch before it.`,
    `Skyrocket: one broker (the peers run one node each), started from the production entry point \`broker-fargate/src/main.ts\` (through tsx) with its defaults (\`sync\` flush, 1 GiB segments), topics of 8 queues; the name server runs on the embedded DynamoDB stand-in (dynalite) in a separate process whose CPU and memory are recorded apart (\`resources.auxiliary\`), not as the broker's. Publishing through the SDK's \`Producer.send\` with its defaults (adaptive batching: a send goes out at the end of the event-loop turn while fewer than 4 requests are in flight, otherwise with the sends that queued meanwhile, up to 256 messages per request); serial publish through \`Producer.${p.skyrocketSerialMode === 'single' ? 'sendBatch([message])' : 'send'}\`. The SDK sends messages as frames (\`application/vnd.skyrocket.frame\`: a JSON meta and the bodies as bytes) and receives them in binary (\`application/vnd.skyrocket.deliveries\`), ${p.skyrocketTransport === 'wire' ? 'over the wire protocol (a \`skyrocket://\` endpoint: the same API as frames on one long-lived TCP connection per process, core/wire.ts)' : 'over node:http keep-alive connections (an \`http://\` endpoint)'}; its acks ask for a count rather than the handles echoed back. The broker runs with the V8 flags every launcher gives it (\`--max-semi-space-size=32\`).`,
    "Peak RSS: the VmHWM (/proc/<pid>/status) of the server's main process: beam.smp for RabbitMQ, redis-server, nats-server, Skyrocket's broker process. The JSON also lists every process of each server's tree (RabbitMQ's start script, erl_child_setup, inet_gethost, epmd; the AOF-rewrite children Redis forks; not tsx's esbuild helper beside Skyrocket's broker, which the production bundle does not have) and the tree's peak summed PSS, sampled every 250 ms (PSS divides shared pages among their sharers, so Redis's forks do not count its dataset again; it also divides Node's binary among the other Node processes on the machine, which flatters Skyrocket). CPU: utime + stime of every process of the tree, from /proc/<pid>/stat.",
    `Each system is started afresh for every repetition, with an empty data directory; the order of the systems rotates between repetitions. Every workload uses its own stream/queue/topic, deleted afterwards.`,
    'The machine is shared: the load average before and after each system\'s repetition is in the JSON (`runs[].loadAverage`).',
  ];
}

let current: RunningServer | undefined;
let interrupted = false;

async function measure(): Promise<void> {
  const started = performance.now();
  const deadline = started + maxMinutes * 60_000;
  if (!args['skip-install'] && systems.some((s) => s !== 'skyrocket')) installPeers(log);
  const tmpRoot = args['tmp-dir'] ?? os.tmpdir();
  const machineInfo = machine(tmpRoot);
  const versionInfo = versions();
  const runs: SystemRun[] = [];
  log(`systems ${systems.join(', ')}; ${repetitions} repetition(s); backlog ${plan.catchUp.count}`);

  for (let rep = 0; rep < repetitions && !interrupted; rep++) {
    const order = systems.map((_, i) => systems[(i + rep) % systems.length] as SystemName);
    for (const system of order) {
      if (interrupted) break;
      if (performance.now() > deadline) {
        log(`${system} #${rep + 1}: skipped, past --max-minutes ${maxMinutes}`);
        runs.push({ system, repetition: rep, startSeconds: NaN, settleSeconds: NaN, loadAverage: { before: os.loadavg(), after: [] }, errors: ['skipped: past --max-minutes'] });
        continue;
      }
      log(`${system} #${rep + 1}: starting`);
      try {
        current = await startServer(system, { tmpRoot, skyrocketTransport: plan.skyrocketTransport });
      } catch (error) {
        log(`${system} #${rep + 1}: could not start: ${(error as Error).message}`);
        runs.push({ system, repetition: rep, startSeconds: NaN, settleSeconds: NaN, loadAverage: { before: os.loadavg(), after: [] }, errors: [`start: ${(error as Error).message}`] });
        continue;
      }
      try {
        runs.push(await runWorkloads(current, plan, rep, log));
      } finally {
        const server = current;
        current = undefined;
        await server.stop();
      }
    }
  }

  const summary = summarize(runs, systems);
  const targets = systems.length > 1 ? checkTargets(summary) : [];
  const date = new Date().toISOString().slice(0, 10);
  const command = `npm run ${quick ? 'bench' : 'bench:peers'}${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const result: RunResult = {
    date,
    command,
    minutes: Math.round((performance.now() - started) / 600) / 100,
    machine: { ...machineInfo, 'load average at end (1, 5, 15 min)': os.loadavg().map((x) => x.toFixed(2)).join(', ') },
    versions: versionInfo,
    plan,
    notes: notes(),
    figures: figuresOf(summary),
    summary,
    targets,
    runs,
  };
  if (writeFiles) writeReport(result, outDir);
  const printed = writeFiles ? { date, command, figures: result.figures, targets } : result;
  process.stdout.write(`${JSON.stringify(printed, null, 2)}\n`);
}

type RunResult = {
  date: string;
  command: string;
  minutes: number;
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  plan: Plan;
  notes: string[];
  figures: Record<string, Record<string, number | null>>;
  summary: ReturnType<typeof summarize>;
  targets: ReturnType<typeof checkTargets>;
  runs: SystemRun[];
};

/** The medians alone, per system: the figures to compare before and after a change. */
function figuresOf(summary: ReturnType<typeof summarize>): RunResult['figures'] {
  return Object.fromEntries(
    Object.entries(summary).map(([system, row]) => [system, Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v?.median ?? null]))]),
  );
}

/** Writes `peers-<date>.json`, `.md` and `.svg` into `dir`. */
function writeReport(result: RunResult, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const { date, summary } = result;
  const ordered = allSystems.filter((s) => s in summary);
  const repetitionCount = Math.max(...ordered.map((s) => result.runs.filter((r) => r.system === s).length));
  const base = path.join(dir, `peers-${date}`);
  const chartFile = `peers-${date}.svg`;
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, chartFile), renderChart(summary, ordered, `Skyrocket and peers, ${date}, medians of ${repetitionCount} (1 KiB messages)`));
  fs.writeFileSync(
    `${base}.md`,
    renderMarkdown({ ...result, repetitions: repetitionCount, systems: ordered, chartFile }),
  );
  log(`wrote ${base}.json, ${base}.md and ${path.join(dir, chartFile)}`);
}

/** `--render <json>`: recomputes the summary of a saved run and writes its files again, without measuring. */
function render(file: string): void {
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult;
  const ordered = allSystems.filter((s) => saved.runs.some((r) => r.system === s));
  const summary = summarize(saved.runs, ordered);
  writeReport({ ...saved, summary, figures: figuresOf(summary), targets: ordered.length > 1 ? checkTargets(summary) : [] }, path.dirname(path.resolve(file)));
}

// Whatever happens, no server is left behind.
process.on('exit', killAllStarted);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      killAllStarted();
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping (again to kill at once)`);
    const server = current;
    void (server === undefined ? Promise.resolve() : server.stop()).finally(() => process.exit(130));
  });
}

const main = args.render === undefined ? measure : async () => render(args.render as string);
main().catch((error: unknown) => {
  log(`bench:peers: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  const server = current;
  void (server === undefined ? Promise.resolve() : server.stop()).finally(() => process.exit(1));
});
