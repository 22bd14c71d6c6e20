import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support.ts';

/** Mistakes the CLI catches before or without a cluster: each names its code and exits non-zero. */
const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cli-empty-'));
afterAll(() => fs.rmSync(empty, { recursive: true, force: true }));

describe('skyrocket CLI without a cluster', () => {
  it('says how to get an endpoint when none is configured (usage error, exit 2)', async () => {
    const r = await runCli(['topic', 'list', '--data-dir', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('INVALID_ARGUMENT');
    expect(r.stderr).toContain('skyrocket dev');
    expect(r.stderr).toContain('SKYROCKET_ENDPOINT');
  });

  it('rejects a bad option value with its code, in JSON with --json', async () => {
    const human = await runCli(['topic', 'create', 'x', '--queues', '0', '--data-dir', empty]);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain("error: INVALID_ARGUMENT: option '--queues <n>' argument '0' is invalid. must be a positive integer");
    const json = await runCli(['topic', 'create', 'x', '--type', 'BOGUS', '--json', '--data-dir', empty]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('NORMAL, FIFO') } });
  });

  it('asks for --id or --topic with --key', async () => {
    const r = await runCli(['query', '--topic', 'orders', '--endpoint', 'http://127.0.0.1:9', '--api-key', 'k'.repeat(20)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--topic and --key go together');
  });

  it('reports an endpoint that does not answer as SERVICE_UNAVAILABLE (exit 1)', async () => {
    // A port that was free a moment ago: nothing listens there.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await runCli(['topic', 'list', '--endpoint', `http://127.0.0.1:${port}`, '--api-key', 'k'.repeat(20)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: SERVICE_UNAVAILABLE: .*ECONNREFUSED/);
  });
});
