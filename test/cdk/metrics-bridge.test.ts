/**
 * The metrics sidecar, run as ECS runs it (`node -e <script>`), against a server that serves the
 * broker's own prom-client registry behind the broker's internal-secret check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as readline from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerMetrics } from '../../broker-fargate/src/metrics.ts';
import { brokerMetrics as m, metricsBridgeScript, metricsBridgeVariables as v } from '../../lib/metrics-bridge.ts';

const secret = 'metrics-secret-0123456789';

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

/** Serves `metrics` like the broker's GET /metrics: 401 without the internal secret. */
async function fakeBroker(metrics: BrokerMetrics): Promise<{ url: string; server: http.Server; scrapes: () => number }> {
  let scrapes = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics' || req.headers['x-skyrocket-internal'] !== secret) {
      res.writeHead(401).end();
      return;
    }
    scrapes++;
    void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server, scrapes: () => scrapes };
}

let children: ChildProcess[] = [];
let servers: http.Server[] = [];
afterEach(() => {
  for (const child of children) child.kill('SIGTERM');
  for (const server of servers) server.close();
  children = [];
  servers = [];
});

/** Starts the sidecar; returns a function that waits for the next EMF line matching `accept`. */
function startBridge(url: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['-e', metricsBridgeScript], {
    env: {
      PATH: process.env['PATH'] ?? '',
      [v.url]: url,
      [v.intervalMs]: '150',
      [v.deployment]: 'prod',
      [v.brokerGroup]: 'bg-3',
      [v.brokerId]: '3001',
      [v.internalSecret]: secret,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Emf[] = [];
  const waiters: (() => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(JSON.parse(line) as Emf);
    for (const wake of waiters.splice(0)) wake();
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async (accept: (line: Emf) => boolean, timeoutMs = 10_000): Promise<Emf> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = lines.findIndex(accept);
      if (index >= 0) return lines.splice(0, index + 1).at(-1)!;
      if (Date.now() > deadline) throw new Error(`no matching EMF line; stderr: ${stderr}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  return { next, stderr: () => stderr, lines };
}

describe('metrics sidecar', () => {
  it('turns the broker\'s Prometheus metrics into EMF: append p99, requests, 5xx, consumer lag', async () => {
    const metrics = new BrokerMetrics();
    const broker = await fakeBroker(metrics);
    servers.push(broker.server);
    metrics.consumerLag.set({ group: 'billing', topic: 'orders', queue: '0' }, 7);
    metrics.consumerLag.set({ group: 'billing', topic: 'orders', queue: '1' }, 5);
    metrics.consumerLag.set({ group: 'audit', topic: 'orders', queue: '0' }, 3);
    const bridge = startBridge(broker.url);

    // The first scrape only sets the baseline for counters; lag is a gauge and is reported at once.
    const first = await bridge.next((l) => l[m.consumerLagMax] !== undefined);
    expect(first[m.consumerLagMax]).toBe(12);
    expect(first[m.appendLatencyP99]).toBeUndefined();
    expect(first).toMatchObject({ Deployment: 'prod', BrokerGroup: 'bg-3', BrokerId: '3001' });
    expect(first._aws.CloudWatchMetrics[0]!.Namespace).toBe('Skyrocket');
    expect(first._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['Deployment'], ['Deployment', 'BrokerGroup']]);
    const perGroup = await bridge.next((l) => l[m.consumerLag] !== undefined && l['ConsumerGroup'] === 'audit');
    expect(perGroup[m.consumerLag]).toBe(3);
    expect(perGroup._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['Deployment', 'ConsumerGroup']]);

    // 98 appends at 0.2 ms and 2 at 3 ms: the 99th of 100 lies halfway into the (2.5, 5] ms bucket.
    for (let i = 0; i < 98; i++) metrics.appendSeconds.observe(0.0002);
    metrics.appendSeconds.observe(0.003);
    metrics.appendSeconds.observe(0.003);
    for (let i = 0; i < 40; i++) metrics.requestSeconds.observe({ route: '/v1/topics/:topic/messages', status: '200' }, 0.001);
    metrics.requestSeconds.observe({ route: '/v1/topics/:topic/messages', status: '503' }, 0.001);
    metrics.requestSeconds.observe({ route: '/v1/groups/:group/receive', status: '500' }, 0.001);
    const busy = await bridge.next((l) => l[m.appendLatencyP99] !== undefined);
    expect(busy[m.appendLatencyP99]).toBeCloseTo(3.75, 6);
    expect(busy[m.appends]).toBe(100);
    expect(busy[m.requests]).toBe(42);
    expect(busy[m.http5xx]).toBe(2);
    const declared = busy._aws.CloudWatchMetrics[0]!.Metrics;
    expect(declared).toContainEqual({ Name: m.appendLatencyP99, Unit: 'Milliseconds' });
    expect(declared).toContainEqual({ Name: m.http5xx, Unit: 'Count' });

    // An interval without appends reports counts of zero and no percentile.
    const quiet = await bridge.next((l) => l[m.requests] === 0);
    expect(quiet[m.appendLatencyP99]).toBeUndefined();
    expect(quiet._aws.CloudWatchMetrics[0]!.Metrics.map((x) => x.Name)).not.toContain(m.appendLatencyP99);
  });

  it('keeps going, and says why on stderr, when the broker refuses it', async () => {
    const broker = await fakeBroker(new BrokerMetrics());
    servers.push(broker.server);
    const bridge = startBridge(broker.url, { [v.internalSecret]: 'wrong-secret-0123456789' });
    await expect.poll(() => bridge.stderr(), { timeout: 10_000 }).toMatch(/metrics scrape failed.*HTTP 401/);
    const failures = () => bridge.stderr().split('\n').filter((l) => l.includes('HTTP 401')).length;
    const before = failures();
    await expect.poll(failures, { timeout: 10_000 }).toBeGreaterThan(before);
    expect(bridge.lines).toEqual([]);
  });
});
