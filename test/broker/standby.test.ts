import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

/**
 * A second broker in a broker group waits for the group's lease as a standby: healthy for the
 * load balancer and ECS, refusing work with NOT_LEADER, and taking over when the leader leaves.
 */
let cluster: TestCluster;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-standby-'));

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1 }).start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a standby replica', () => {
  it('answers health checks as a standby, refuses work, and takes over the lease when the leader stops', async () => {
    const port = await freePort();
    const standby = cluster.spawnBroker({ brokerId: 9, brokerGroup: 'bg-1', dataDir, port });
    try {
      const base = `http://127.0.0.1:${port}`;
      const health = await waitFor(async () => {
        const r = await api(base, undefined, 'GET', '/healthz');
        return r.status === 200 ? r.json : undefined;
      }, 20_000);
      expect(health).toMatchObject({ status: 'standby', brokerId: 9, brokerGroup: 'bg-1' });
      const refused = await api(base, cluster.adminKey, 'GET', '/v1/topics');
      expect(refused.status).toBe(503);
      expect(refused.json.error.code).toBe('NOT_LEADER');
      expect(refused.json.error.retriable).toBe(true);

      await cluster.kill(0, 'SIGTERM'); // releases the lease
      const led = await waitFor(async () => {
        const r = await api(base, undefined, 'GET', '/healthz');
        return r.json?.status === 'ok' ? r.json : undefined;
      }, 20_000);
      expect(led).toMatchObject({ brokerId: 9, brokerGroup: 'bg-1' });
      const topics = await api(base, cluster.adminKey, 'GET', '/v1/topics');
      expect(topics.status).toBe(200);
    } finally {
      const exited = new Promise((r) => standby.once('exit', r));
      standby.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
