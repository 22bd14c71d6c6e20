/**
 * `npm run bench:timers`: delayed messages through one real broker process, on the embedded
 * DynamoDB and S3 stand-ins (dynalite, s3rver), as `skyrocket dev` runs them.
 *
 * Prints one JSON object:
 *  - lateness: 10,000 timers due at times spread evenly over 60 s (all sent first), with the
 *    broker's 1 h horizon (so all wait in its wheel). For each: `stored` = when the broker stored
 *    the delivered message minus when it was due; `observed` = when a reader polling every queue
 *    every 20 ms saw it minus when it was due. p50, p99 and max in ms, and the count delivered
 *    early (must be 0). `reference`: the same times kept by plain `setTimeout`s in this process:
 *    what the event loop itself gives.
 *  - rss: the broker's resident memory before and after parking `farTimers` timers due in 2 to
 *    30 days (so all are parked in the timer index). "Before" follows a warm-up burst of
 *    `warmupTimers` such timers, so that both sides include what a burst of sends leaves behind
 *    in V8's and the allocator's pools; each figure is the lowest of samples over 60 s (before) and
 *    90 s (after) of idling, since V8 returns a burst's garbage only some tens of seconds after it.
 *    Also the RSS right when parking drained, the V8 heap, the growth in MiB, how long parking
 *    took and its rate. When BENCH_FAR_TIMERS is below 1,000,000, the time for 1M is extrapolated.
 *
 * Options (environment): BENCH_TIMERS (10000), BENCH_SPREAD_MS (60000), BENCH_FAR_TIMERS
 * (1000000), BENCH_WARMUP_TIMERS (200000), BENCH_DIR (the OS temp dir).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { NameServer, dynamoClientConfig, ensureBucket, ensureTables, s3ClientConfig, startEmbeddedServers } from '../namesrv/index.ts';

const timerCount = Number(process.env['BENCH_TIMERS'] ?? 10_000);
const spreadMs = Number(process.env['BENCH_SPREAD_MS'] ?? 60_000);
const farTimers = Number(process.env['BENCH_FAR_TIMERS'] ?? 1_000_000);
const warmupTimers = Number(process.env['BENCH_WARMUP_TIMERS'] ?? 200_000);
const root = fs.mkdtempSync(path.join(process.env['BENCH_DIR'] ?? os.tmpdir(), 'skyrocket-bench-timers-'));
const repo = path.resolve(import.meta.dirname, '..');
const prefix = 'bench-';
const bucket = 'skyrocket-bench';
const adminKey = `sk_bench_${randomBytes(16).toString('hex')}`;
const secret = randomBytes(24).toString('hex');
const queues = 8;

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function api(base: string, method: string, pathAndQuery: string, body?: unknown): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${adminKey}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${base}${pathAndQuery}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text === '' ? undefined : JSON.parse(text) };
}

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

async function metric(base: string, name: string): Promise<number> {
  const text = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } }).then((r) => r.text());
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/** The broker's V8 heap (used and reserved) and external (Buffer) memory, from its metrics. */
async function heap(base: string): Promise<{ used: number; total: number; external: number }> {
  const mib = async (name: string): Promise<number> => Math.round(((await metric(base, name)) / 1024 / 1024) * 10) / 10;
  return {
    used: await mib('skyrocket_process_nodejs_heap_size_used_bytes'),
    total: await mib('skyrocket_process_nodejs_heap_size_total_bytes'),
    external: await mib('skyrocket_process_nodejs_external_memory_bytes'),
  };
}

/**
 * The broker's memory once it has settled: V8 collects garbage left by a burst only some tens of
 * seconds after allocation stops (its memory reducer), so RSS right after a burst counts garbage.
 * Samples every 5 s for `ms` and keeps the lowest RSS, with the heap figures of that moment.
 */
async function settle(pid: number, base: string, ms: number): Promise<{ rss: number; heap: Awaited<ReturnType<typeof heap>> }> {
  let best = { rss: rssMiB(pid), heap: await heap(base) };
  for (let waited = 0; waited < ms; waited += 5_000) {
    await new Promise((r) => setTimeout(r, 5_000));
    const rss = rssMiB(pid);
    if (rss <= best.rss) best = { rss, heap: await heap(base) };
  }
  progress(`settled: rss ${best.rss} MiB, heap ${JSON.stringify(best.heap)}`);
  return best;
}

async function startBroker(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'broker-fargate/src/main.ts')], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { msg?: string; url?: string };
        if (msg.msg === 'ready' && msg.url !== undefined) resolve(msg.url);
      } catch {
        // not the ready line
      }
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${stderr.join('')}`)));
  });
  return { child, url };
}

/** Node's own timer lateness for the same schedule: the floor any timer service stands on. */
async function reference(dueTimes: readonly number[]): Promise<{ p50: number; p99: number; max: number }> {
  const lateness: number[] = [];
  await Promise.all(
    dueTimes.map(
      (at) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            lateness.push(Date.now() - at);
            resolve();
          }, at - Date.now()),
        ),
    ),
  );
  return percentiles(lateness);
}

async function main(): Promise<void> {
  progress(`data in ${root}`);
  const servers = await startEmbeddedServers({ dataDir: path.join(root, 'aws') });
  const dynamo = new DynamoDBClient(dynamoClientConfig(servers.dynamodb));
  const s3 = new S3Client(s3ClientConfig(servers.s3));
  await ensureTables(dynamo, prefix);
  await ensureBucket(s3, bucket);
  await new NameServer({ client: dynamo, prefix }).ensurePrincipal({ name: 'admin', permissions: { admin: true }, apiKey: adminKey });
  const { child, url } = await startBroker({
    SKYROCKET_BROKER_ID: '1',
    SKYROCKET_BROKER_GROUP: 'bg-1',
    SKYROCKET_DATA_DIR: path.join(root, 'broker-1'),
    SKYROCKET_PORT: '0',
    SKYROCKET_SEGMENT_SIZE_BYTES: String(256 * 1024 * 1024),
    SKYROCKET_DYNAMODB_ENDPOINT: servers.dynamodb.endpoint,
    SKYROCKET_TABLE_PREFIX: prefix,
    SKYROCKET_INTERNAL_SECRET: secret,
    SKYROCKET_S3_BUCKET: bucket,
    SKYROCKET_S3_ENDPOINT: servers.s3.endpoint,
    SKYROCKET_S3_ACCESS_KEY_ID: servers.s3.credentials.accessKeyId,
    SKYROCKET_S3_SECRET_ACCESS_KEY: servers.s3.credentials.secretAccessKey,
    AWS_REGION: servers.dynamodb.region,
    AWS_ACCESS_KEY_ID: servers.dynamodb.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: servers.dynamodb.credentials.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  try {
    if ((await api(url, 'POST', '/v1/topics', { name: 'bench', queues, type: 'DELAY' })).status !== 201) throw new Error('could not create the topic');

    // ---- Lateness: timers spread over the spread, all sent first.
    const start = Date.now() + 3_000;
    const due = Array.from({ length: timerCount }, (_, i) => start + Math.floor((i * spreadMs) / timerCount));
    const shuffled = [...due].sort(() => Math.random() - 0.5);
    const sentAt = new Map<string, number>();
    for (let i = 0; i < shuffled.length; i += 500) {
      const batch = shuffled.slice(i, i + 500);
      const r = await api(url, 'POST', '/v1/topics/bench/messages', { messages: batch.map((at, k) => ({ body: `t-${i + k}`, deliverAt: at })) });
      if (r.status !== 200) throw new Error(`send failed: ${JSON.stringify(r.json)}`);
      r.json.results.forEach((x: { messageId: string }, k: number) => sentAt.set(x.messageId, batch[k] as number));
    }
    progress(`${timerCount} timers sent in ${Date.now() - (start - 3_000)} ms; delivering over ${spreadMs / 1000} s`);
    const referenceRun = reference(due);
    const stored: number[] = [];
    const observed: number[] = [];
    let early = 0;
    const offsets = new Array<number>(queues).fill(0);
    while (stored.length < timerCount && Date.now() < start + spreadMs + 30_000) {
      for (let q = 0; q < queues; q++) {
        const r = await api(url, 'GET', `/v1/topics/bench/queues/${q}/messages?offset=${offsets[q]}&max=1000`);
        const now = Date.now();
        for (const m of r.json.messages as Array<{ messageId: string; storedAt: number }>) {
          const at = sentAt.get(m.messageId) as number;
          if (m.storedAt < at) early++;
          stored.push(m.storedAt - at);
          observed.push(now - at);
        }
        offsets[q] = r.json.nextOffset;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const lateness = {
      timers: timerCount,
      spreadMs,
      delivered: stored.length,
      early,
      storedMs: percentiles(stored),
      observedMs: percentiles(observed),
      referenceSetTimeoutMs: await referenceRun,
    };
    progress(`lateness ${JSON.stringify(lateness)}`);

    // ---- Memory: park far timers, after a warm-up burst of the same traffic, so that what is
    // compared is memory held for parked timers, not the allocator's high-water mark of a burst.
    const park = async (count: number, label: string): Promise<{ sendMs: number; parkMs: number }> => {
      const body = 'x'.repeat(100);
      const day = 24 * 3_600_000;
      const already = await metric(url, 'skyrocket_timers_parked_total');
      const started = Date.now();
      let next = 0;
      const senders = Array.from({ length: 4 }, async () => {
        while (next < count) {
          const from = next;
          next += 1000;
          const n = Math.min(1000, count - from);
          const now = Date.now();
          const messages = Array.from({ length: n }, (_, k) => ({ body, deliverAt: now + 2 * day + Math.floor((((from + k) * 7919) % 1_000_003) / 1_000_003 * 28 * day) }));
          const r = await api(url, 'POST', '/v1/topics/bench/messages', { messages });
          if (r.status !== 200) throw new Error(`send failed: ${JSON.stringify(r.json)}`);
        }
      });
      await Promise.all(senders);
      const sendMs = Date.now() - started;
      progress(`${label}: ${count} far timers sent in ${sendMs} ms; parking`);
      let lastReport = Date.now();
      for (;;) {
        const parked = (await metric(url, 'skyrocket_timers_parked_total')) - already;
        if ((await metric(url, 'skyrocket_timers_unparked')) === 0 && parked >= count) break;
        if (Date.now() - lastReport > 10_000) {
          progress(`${label}: parked ${parked} of ${count} (${Math.round(parked / ((Date.now() - started) / 1000))}/s), rss ${rssMiB(child.pid as number)} MiB`);
          lastReport = Date.now();
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      return { sendMs, parkMs: Date.now() - started };
    };
    await park(warmupTimers, 'warm-up');
    const before = await settle(child.pid as number, url, 60_000);
    const { sendMs: sentMs, parkMs } = await park(farTimers, 'measured');
    const rssPeakish = rssMiB(child.pid as number);
    const after = await settle(child.pid as number, url, 90_000);
    const rss = {
      farTimers,
      warmupTimers,
      pendingInWheel: await metric(url, 'skyrocket_timers_pending'),
      rssBeforeMiB: before.rss,
      rssWhenParkedMiB: rssPeakish,
      rssAfterMiB: after.rss,
      growthMiB: Math.round((after.rss - before.rss) * 10) / 10,
      v8HeapUsedMiB: { before: before.heap.used, after: after.heap.used },
      externalMiB: { before: before.heap.external, after: after.heap.external },
      sendMs: sentMs,
      parkMs,
      parkedPerSecond: Math.round(farTimers / (parkMs / 1000)),
      ...(farTimers < 1_000_000 ? { extrapolatedParkMsFor1M: Math.round((parkMs * 1_000_000) / farTimers) } : {}),
    };
    process.stdout.write(`${JSON.stringify({ lateness, rss }, null, 2)}\n`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    dynamo.destroy();
    s3.destroy();
    await servers.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
