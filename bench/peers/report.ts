/**
 * Turns the repetitions of a run into medians (with min and max), checks Skyrocket's targets
 * against the best fsyncing peer, and writes the Markdown page.
 */
import type { SystemName } from './clients.ts';
import { spread, type Spread } from './stats.ts';
import type { SystemRun } from './workloads.ts';

/** The figures quoted per system; each is the spread over the repetitions. */
export const metrics = {
  windowedMsgsPerSec: { label: 'windowed publish (1,000 in flight), msgs/s', better: 'higher', pick: (r: SystemRun) => r.windowed?.msgsPerSec },
  serialP50Ms: { label: 'serial publish, ack latency p50, ms', better: 'lower', pick: (r: SystemRun) => r.serial?.latency.p50Ms },
  serialP99Ms: { label: 'serial publish, ack latency p99, ms', better: 'lower', pick: (r: SystemRun) => r.serial?.latency.p99Ms },
  e2eP50Ms: { label: 'end to end at 5,000 msgs/s, p50, ms', better: 'lower', pick: (r: SystemRun) => r.e2e?.consumer.latency.p50Ms },
  e2eP99Ms: { label: 'end to end at 5,000 msgs/s, p99, ms', better: 'lower', pick: (r: SystemRun) => r.e2e?.consumer.latency.p99Ms },
  e2eMaxMs: { label: 'end to end at 5,000 msgs/s, max, ms', better: 'lower', pick: (r: SystemRun) => r.e2e?.consumer.latency.maxMs },
  e2ePublishAckP99Ms: {
    label: 'end to end at 5,000 msgs/s, publish ack p99 (its publishing part), ms',
    better: 'lower',
    pick: (r: SystemRun) => r.e2e?.producer.ackLatency.p99Ms,
  },
  catchUpMsgsPerSec: { label: 'catch-up: consume the backlog, msgs/s', better: 'higher', pick: (r: SystemRun) => r.catchUp?.consume.msgsPerSec },
  backlogPublishMsgsPerSec: {
    label: 'filling the backlog (1,000 in flight), msgs/s',
    better: 'higher',
    pick: (r: SystemRun) => r.catchUp?.produce.msgsPerSec,
  },
  peakRssMiB: { label: 'server process peak RSS (VmHWM), MiB', better: 'lower', pick: (r: SystemRun) => r.resources?.peakRssMiB },
  treePeakPssMiB: {
    label: 'server process tree at its peak (summed PSS), MiB',
    better: 'lower',
    pick: (r: SystemRun) => r.resources?.treePeakPssMiB,
  },
  cpuSeconds: { label: 'server CPU seconds, whole repetition', better: 'lower', pick: (r: SystemRun) => r.resources?.cpuSeconds },
  windowedCpuSeconds: { label: 'server CPU seconds, windowed publish', better: 'lower', pick: (r: SystemRun) => r.windowed?.serverCpuSeconds },
  catchUpCpuSeconds: { label: 'server CPU seconds, draining the backlog', better: 'lower', pick: (r: SystemRun) => r.catchUp?.consume.serverCpuSeconds },
  catchUpClientCpuSeconds: {
    label: 'consumer (client) CPU seconds, draining the backlog',
    better: 'lower',
    pick: (r: SystemRun) => r.catchUp?.consume.clientCpuSeconds,
  },
  windowedClientCpuSeconds: {
    label: 'producer (client) CPU seconds, windowed publish',
    better: 'lower',
    pick: (r: SystemRun) => r.windowed?.clientCpuSeconds,
  },
} as const satisfies Record<string, { label: string; better: 'higher' | 'lower'; pick: (r: SystemRun) => number | undefined }>;

export type MetricName = keyof typeof metrics;
export type Summary = Partial<Record<SystemName, Partial<Record<MetricName, Spread | null>>>>;

export function summarize(runs: readonly SystemRun[], systemsInOrder: readonly SystemName[]): Summary {
  const out: Summary = {};
  for (const system of systemsInOrder) {
    const mine = runs.filter((r) => r.system === system);
    const row: Partial<Record<MetricName, Spread | null>> = {};
    for (const [name, m] of Object.entries(metrics) as Array<[MetricName, (typeof metrics)[MetricName]]>) {
      row[name] = spread(mine.map((r) => m.pick(r) ?? NaN));
    }
    out[system] = row;
  }
  return out;
}

export const displayName: Record<SystemName, string> = {
  skyrocket: 'Skyrocket (1 broker, sync flush)',
  redis: 'Redis streams (AOF, fsync always)',
  rabbitmq: 'RabbitMQ (quorum queue, confirms)',
  nats: 'NATS JetStream (file, no fsync)',
};

export const shortName: Record<SystemName, string> = {
  skyrocket: 'Skyrocket',
  redis: 'Redis',
  rabbitmq: 'RabbitMQ',
  nats: 'NATS',
};

/** What each system has done with a message when it acknowledges it. */
export const durability: Record<SystemName, string> = {
  skyrocket:
    'acks a send after the batch is durable in the commit log (`sync` flush, the default: the segment being written is opened with O_DSYNC, so each group-commit write returns once its bytes are on disk, as write + fdatasync); one broker, no replica (replication between broker replicas is not built yet)',
  redis: '`appendonly yes`, `appendfsync always`: Redis writes and fsyncs the AOF before it answers the commands of an event-loop turn',
  rabbitmq:
    'quorum queue (Raft, one member here) with publisher confirms: the confirm comes after the entry is in the Ra write-ahead log and fsync-ed',
  nats:
    "JetStream file storage: the PubAck comes once the message is written to the OS; Debian's nats-server 2.9 has no `sync_interval` and does not fsync before acking, so an OS crash or power loss can lose acknowledged messages",
};

export interface TargetCheck {
  target: string;
  skyrocket: number | null;
  bestPeer: { system: SystemName; value: number } | null;
  /** Skyrocket / best peer. */
  ratio: number | null;
  /** What the ratio must reach (or stay under). */
  needed: string;
  met: boolean | null;
}

/** The fsyncing peers Skyrocket's targets are set against. */
const fsyncingPeers: SystemName[] = ['redis', 'rabbitmq'];

export function checkTargets(summary: Summary): TargetCheck[] {
  const median = (system: SystemName, metric: MetricName): number | null => summary[system]?.[metric]?.median ?? null;
  const best = (metric: MetricName, better: 'higher' | 'lower', among: SystemName[] = fsyncingPeers): TargetCheck['bestPeer'] => {
    let pick: TargetCheck['bestPeer'] = null;
    for (const system of among) {
      const value = median(system, metric);
      if (value === null) continue;
      if (pick === null || (better === 'higher' ? value > pick.value : value < pick.value)) pick = { system, value };
    }
    return pick;
  };
  const check = (target: string, metric: MetricName, kind: 'atLeastTimes' | 'atMost', factor: number, among?: SystemName[]): TargetCheck => {
    const sky = median('skyrocket', metric);
    const peer = best(metric, kind === 'atLeastTimes' ? 'higher' : 'lower', among);
    const ratio = sky === null || peer === null || peer.value === 0 ? null : sky / peer.value;
    const met = ratio === null ? null : kind === 'atLeastTimes' ? ratio >= factor : ratio <= factor;
    return { target, skyrocket: sky, bestPeer: peer, ratio, needed: kind === 'atLeastTimes' ? `≥ ${factor}×` : `≤ ${factor}×`, met };
  };
  return [
    check('windowed publish ≥ 2× the best of Redis-always / RabbitMQ-quorum', 'windowedMsgsPerSec', 'atLeastTimes', 2),
    check('serial publish p99 no worse than the best fsyncing peer', 'serialP99Ms', 'atMost', 1),
    check('end-to-end p99 no worse than the best fsyncing peer', 'e2eP99Ms', 'atMost', 1),
    check('catch-up ≥ 2× the best fsyncing peer', 'catchUpMsgsPerSec', 'atLeastTimes', 2),
    check('peak RSS no worse than RabbitMQ', 'peakRssMiB', 'atMost', 1, ['rabbitmq']),
  ];
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function cell(s: Spread | null | undefined): string {
  if (s === null || s === undefined) return 'n/a';
  if (s.values.length === 1) return formatNumber(s.median);
  return `**${formatNumber(s.median)}** (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

export interface ReportInput {
  date: string;
  command: string;
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  repetitions: number;
  systems: SystemName[];
  summary: Summary;
  targets: TargetCheck[];
  runs: SystemRun[];
  notes: string[];
  chartFile: string;
}

export function markdownTable(summary: Summary, systems: readonly SystemName[], names: readonly MetricName[] = Object.keys(metrics) as MetricName[]): string {
  const lines = [
    `| | ${systems.map((s) => displayName[s]).join(' | ')} |`,
    `|---|${systems.map(() => '---:').join('|')}|`,
  ];
  for (const name of names) {
    const m = metrics[name];
    lines.push(`| ${m.label} (${m.better} is better) | ${systems.map((s) => cell(summary[s]?.[name])).join(' | ')} |`);
  }
  return lines.join('\n');
}

export function targetsTable(targets: readonly TargetCheck[]): string {
  const lines = ['| target | Skyrocket | best fsyncing peer | Skyrocket ÷ peer | needed | met? |', '|---|---:|---:|---:|---:|---|'];
  for (const t of targets) {
    const peer = t.bestPeer === null ? 'n/a' : `${formatNumber(t.bestPeer.value)} (${shortName[t.bestPeer.system]})`;
    const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'missed';
    lines.push(
      `| ${t.target} | ${t.skyrocket === null ? 'n/a' : formatNumber(t.skyrocket)} | ${peer} | ${t.ratio === null ? 'n/a' : `${t.ratio.toFixed(2)}×`} | ${t.needed} | ${verdict} |`,
    );
  }
  return lines.join('\n');
}

export function renderMarkdown(r: ReportInput): string {
  const machineRows = Object.entries(r.machine).map(([k, v]) => `| ${k} | ${typeof v === 'string' ? v : JSON.stringify(v)} |`);
  const versionRows = Object.entries(r.versions).map(([k, v]) => `| ${k} | ${v} |`);
  const errors = r.runs.flatMap((run) => run.errors.map((e) => `- ${shortName[run.system]} repetition ${run.repetition + 1}: ${e}`));
  const loads = r.runs.flatMap((run) => [run.loadAverage.before[0], run.loadAverage.after[0]]).filter((x): x is number => x !== undefined);
  const loadLine =
    loads.length === 0
      ? []
      : [
          `The 1-minute load average on this ${String(r.machine['cores'] ?? '?')}-core machine was ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} around the repetitions (${loads.some((x) => x > 2) ? 'other jobs were running: compare the min–max ranges before reading much into one median' : 'a quiet machine'}).`,
        ];
  return [
    `# Skyrocket side by side with Redis, RabbitMQ and NATS — ${r.date}`,
    '',
    `\`${r.command}\`: ${r.repetitions} repetition${r.repetitions === 1 ? '' : 's'} per system, each on a freshly started server with an empty data directory.`,
    `Cells show the **median** and, in brackets, the min–max over the repetitions. Raw figures: [peers-${r.date}.json](peers-${r.date}.json).`,
    ...loadLine,
    '',
    markdownTable(r.summary, r.systems),
    '',
    `![chart: windowed publish, serial and end-to-end p99, catch-up and peak RSS per system](${r.chartFile})`,
    '',
    '## Targets (Skyrocket against the best fsyncing peer, medians)',
    '',
    targetsTable(r.targets),
    '',
    '## What an ack means',
    '',
    ...r.systems.map((s) => `- **${shortName[s]}**: ${durability[s]}.`),
    '',
    '## How it was measured',
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    ...machineRows,
    '',
    '| software | version |',
    '|---|---|',
    ...versionRows,
    '',
    ...(errors.length > 0 ? ['## Failures', '', ...errors, ''] : []),
  ].join('\n');
}
