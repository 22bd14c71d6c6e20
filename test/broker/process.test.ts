import { Producer, SimpleConsumer, SkyrocketClient } from '../../client/index.ts';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, TestCluster } from './cluster.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('the broker process', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await new TestCluster({ brokers: 1 }).start();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('counts messages and latency in Prometheus metrics', async () => {
    expect((await api(cluster.url(), cluster.adminKey, 'POST', '/v1/topics', { name: 'metered', queues: 1 })).status).toBe(201);
    expect((await api(cluster.url(), cluster.adminKey, 'POST', '/v1/groups', { name: 'meters' })).status).toBe(201);
    await api(cluster.url(), cluster.adminKey, 'POST', '/v1/topics/metered/messages', { messages: [{ body: 'abc' }, { body: 'de' }] });
    await api(cluster.url(), cluster.adminKey, 'POST', '/v1/groups/meters/receive', { topic: 'metered' });
    const response = await fetch(`${cluster.url()}/metrics`, { headers: { authorization: `Bearer ${cluster.adminKey}` } });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('skyrocket_messages_in_total{topic="metered"} 2');
    expect(text).toContain('skyrocket_bytes_in_total{topic="metered"} 5');
    expect(text).toContain('skyrocket_messages_out_total{topic="metered"} 2');
    expect(text).toMatch(/skyrocket_append_seconds_count \d+/);
    expect(text).toMatch(/skyrocket_request_seconds_bucket\{le="[^"]+",route="\/v1\/topics\/:topics\/messages",status="200"\}/);
    expect(text).toContain('skyrocket_consumer_lag_messages{group="meters",topic="metered",queue="0"} 2');
    const ready = await api(cluster.url(), cluster.adminKey, 'GET', '/readyz');
    expect(ready.json.status).toBe('ready');
  });

  it('serves its OpenAPI document', async () => {
    const r = await api(cluster.url(), cluster.adminKey, 'GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toMatch(/^3\./);
  });

  it('drains on SIGTERM: a waiting long poll is answered, then the process exits 0 and deregisters', async () => {
    await api(cluster.url(), cluster.adminKey, 'POST', '/v1/topics', { name: 'draining', queues: 1 });
    await api(cluster.url(), cluster.adminKey, 'POST', '/v1/groups', { name: 'drainers' });
    const started = Date.now();
    const poll = api(cluster.url(), cluster.adminKey, 'POST', '/v1/groups/drainers/receive', { topic: 'draining', waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 200));
    const code = await cluster.kill(0, 'SIGTERM');
    const answered = await poll;
    expect(answered.status).toBe(200);
    expect(answered.json.messages).toEqual([]);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const live = await cluster.nameServer.listBrokers();
    expect(live.map((b) => b.brokerId)).not.toContain('1');
    await cluster.startBroker(0);
  }, 30_000);
});

describe('broker configuration', () => {
  it('refuses a bad value with a message naming the variable, exit code 2', () => {
    const run = (env: Record<string, string>): { status: number | null; stderr: string } => {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', 'broker-fargate/src/main.ts'], {
          cwd: root,
          env: { PATH: process.env['PATH'] ?? '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 20_000,
        });
        return { status: 0, stderr: '' };
      } catch (error) {
        const e = error as { status: number | null; stderr: Buffer };
        return { status: e.status, stderr: e.stderr.toString() };
      }
    };
    const base = { SKYROCKET_BROKER_ID: '1', SKYROCKET_DATA_DIR: os.tmpdir(), SKYROCKET_INTERNAL_SECRET: 'x'.repeat(32) };
    let r = run({ ...base, SKYROCKET_PORT: '70000' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('SKYROCKET_PORT');
    r = run({ ...base, SKYROCKET_FLUSH_MODE: 'sometimes' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('SKYROCKET_FLUSH_MODE');
    r = run({ SKYROCKET_DATA_DIR: os.tmpdir(), SKYROCKET_INTERNAL_SECRET: 'x'.repeat(32) });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('SKYROCKET_BROKER_ID is required');
    const flags = spawn(process.execPath, ['--import', 'tsx', 'broker-fargate/src/main.ts', '--no-such-flag', '1'], { cwd: root });
    return new Promise<void>((resolve) => {
      let stderr = '';
      flags.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      flags.on('exit', (code) => {
        expect(code).toBe(2);
        expect(stderr).toContain('unknown flag --no-such-flag');
        resolve();
      });
    });
  }, 60_000);
});

describe('HTTPS', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  let cluster: TestCluster;

  beforeAll(async () => {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
    ], { stdio: 'ignore' });
    cluster = await new TestCluster({
      brokers: 1,
      extraEnv: { SKYROCKET_TLS_CERT_FILE: cert, SKYROCKET_TLS_KEY_FILE: key },
    }).start();
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('terminates TLS with the configured certificate', async () => {
    expect(cluster.url()).toMatch(/^https:\/\//);
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.request(`${cluster.url()}/v1/topics`, {
        method: 'GET',
        ca: fs.readFileSync(cert),
        headers: { authorization: `Bearer ${cluster.adminKey}` },
      }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body)).toEqual({ topics: [] });
  });

  it('the SDK sends and receives over TLS when told to trust the certificate, and refuses it otherwise', async () => {
    const options = { endpoint: cluster.url(), apiKey: cluster.adminKey };
    const client = new SkyrocketClient({ ...options, ca: fs.readFileSync(cert) });
    await client.createTopic({ name: 'tls-topic', queues: 2 });
    await client.createGroup({ name: 'tls-group' });
    const producer = new Producer({ ...options, ca: fs.readFileSync(cert), topic: 'tls-topic' });
    await Promise.all(['a', 'b', 'c'].map((body) => producer.send(body)));
    await producer.close();
    const consumer = new SimpleConsumer({ ...options, ca: fs.readFileSync(cert), group: 'tls-group', topic: 'tls-topic', waitMs: 1000 });
    const got: string[] = [];
    for (let i = 0; i < 10 && got.length < 3; i++) {
      const messages = await consumer.receive(32);
      got.push(...messages.map((m) => m.bodyText()));
      if (messages.length > 0) await consumer.ack(messages);
    }
    expect(got.sort()).toEqual(['a', 'b', 'c']);
    const untrusting = new SkyrocketClient(options);
    await expect(untrusting.listTopics()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });
});
