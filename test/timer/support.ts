/**
 * Helpers for the delayed-message tests: cluster settings, a consumer that records when each
 * message arrived, and the delay sweep pointed at the test cluster.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { dynamoClientConfig, s3ClientConfig } from '../../namesrv/embedded.ts';
import { TimerIndex } from '../../namesrv/timers.ts';
import { DelaySweep, leadersFrom, type DelaySweepOptions } from '../../lambdas/delay-sweep/sweep.ts';
import { backends } from '../support/aws.ts';
import { api, type TestCluster } from '../broker/cluster.ts';

/** Broker variables for a short timer horizon, with S3 for large parked bodies. */
export function timerEnv(horizonMs: number): Record<string, string> {
  const { s3 } = backends();
  return {
    SKYROCKET_TIMER_HORIZON_MS: String(horizonMs),
    SKYROCKET_S3_BUCKET: s3.bucket,
    SKYROCKET_S3_ENDPOINT: s3.endpoint,
    SKYROCKET_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    SKYROCKET_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
  };
}

/**
 * What the cluster's brokers said about trouble (errors on stdout, all of stderr)
 * and how they exited, for a failing test's message. Watches brokers started from now on too.
 */
export function brokerTrouble(cluster: TestCluster): () => string {
  const lines: string[] = [];
  const watched = new Set<unknown>();
  const watch = (): void => {
    for (const b of cluster.brokers) {
      if (b === undefined || watched.has(b.child)) continue;
      watched.add(b.child);
      b.child.stdout?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter((l) => /"level":[56]0/.test(l)).map((l) => `broker ${b.brokerId}: ${l}`)));
      b.child.stderr?.on('data', (d: Buffer) => lines.push(`broker ${b.brokerId} stderr: ${d.toString()}`));
      // A kill by the test itself, or the stop at the end, is no trouble.
      b.child.once('exit', (code, signal) => signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0 && lines.push(`broker ${b.brokerId} exited: code ${code}, signal ${signal}`));
    }
  };
  watch();
  const timer = setInterval(watch, 100);
  timer.unref();
  return () => lines.join('\n').slice(-6000);
}

export async function createTopic(cluster: TestCluster, name: string, queues: number, type = 'DELAY'): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/topics', { name, queues, type });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

export async function createGroup(cluster: TestCluster, name: string): Promise<void> {
  const r = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups', { name });
  expect(r.status, JSON.stringify(r.json)).toBe(201);
}

export interface Arrival {
  messageId: string;
  body: string;
  deliverAt: number | undefined;
  storedAt: number;
  receivedAt: number;
}

/** Long-polls a group through one broker, acking everything, and records each arrival. */
export class Consumer {
  readonly arrivals: Arrival[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(cluster: TestCluster, group: string, topic: string, via = 0) {
    this.#done = (async () => {
      while (this.#running) {
        let r: { status: number; json: any };
        try {
          r = await api(cluster.url(via), cluster.adminKey, 'POST', `/v1/groups/${group}/receive`, { topic, max: 256, waitMs: 1000, invisibleMs: 600_000 });
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100)); // the broker restarts
          continue;
        }
        const receivedAt = Date.now();
        if (r.status !== 200) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        for (const m of r.json.messages) {
          this.arrivals.push({ messageId: m.messageId, body: m.body, deliverAt: m.deliverAt, storedAt: m.storedAt, receivedAt });
        }
        if (r.json.messages.length > 0) {
          void api(cluster.url(via), cluster.adminKey, 'POST', `/v1/groups/${group}/ack`, {
            topic,
            receiptHandles: r.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
          }).catch(() => undefined);
        }
      }
    })();
  }

  /** Resolves when `count` messages arrived, or after `timeoutMs`. */
  async waitFor(count: number, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.arrivals.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/**
 * Reads every queue of a topic by offset (pull: nothing is hidden, nothing acked), every 20 ms,
 * and records each arrival. With several broker groups this is exact where receive is not: a
 * receive that spans broker groups may leave messages hidden for their invisibility when it ends
 * one owner's long poll after that owner took messages (see `#receiveAnywhere` in broker.ts).
 */
export class Puller {
  readonly arrivals: Arrival[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(cluster: TestCluster, topic: string, queues: number, via = 0) {
    const offsets = new Array<number>(queues).fill(0);
    this.#done = (async () => {
      while (this.#running) {
        for (let q = 0; q < queues; q++) {
          let r: { status: number; json: any };
          try {
            r = await api(cluster.url(via), cluster.adminKey, 'GET', `/v1/topics/${topic}/queues/${q}/messages?offset=${offsets[q]}&max=1000`);
          } catch {
            continue; // the broker restarts
          }
          const receivedAt = Date.now();
          if (r.status !== 200) continue;
          for (const m of r.json.messages) {
            this.arrivals.push({ messageId: m.messageId, body: m.body, deliverAt: m.deliverAt, storedAt: m.storedAt, receivedAt });
          }
          offsets[q] = r.json.nextOffset;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
  }

  async waitFor(count: number, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.arrivals.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/** The value below which `p` (0..1) of the values lie. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** The delay sweep against the test cluster's tables and bucket, and what it needs closed. */
export function testSweep(cluster: TestCluster, horizonMs: number, extra: Partial<DelaySweepOptions> = {}): { sweep: DelaySweep; index: TimerIndex; close(): void } {
  const { dynamodb, s3 } = backends();
  const dynamo = new DynamoDBClient(dynamoClientConfig(dynamodb));
  const s3Client = new S3Client(s3ClientConfig(s3));
  const index = new TimerIndex({ client: dynamo, prefix: cluster.prefix, s3: { client: s3Client, bucket: s3.bucket } });
  const sweep = new DelaySweep({ index, leaders: leadersFrom(cluster.nameServer), internalSecret: cluster.secret, horizonMs, ...extra });
  return {
    sweep,
    index,
    close() {
      dynamo.destroy();
      s3Client.destroy();
    },
  };
}

/** Runs `sweep` every `intervalMs` until stopped; errors are kept, not thrown. */
export function sweepEvery(sweep: DelaySweep, intervalMs: number): { stop(): Promise<void>; errors: unknown[] } {
  const errors: unknown[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      await sweep.run().catch((error: unknown) => errors.push(error));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    errors,
    async stop() {
      running = false;
      await done;
    },
  };
}
