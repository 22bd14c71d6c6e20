/**
 * The broker as the image runs it: `npm run build:broker` bundles broker-fargate/src/main.ts into
 * dist/broker/main.js (everything but the native @node-rs/crc32), and `node main.js` starts it.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { beforeAll, describe, expect, it } from 'vitest';
import { brokerNodeFlags } from '../../broker-fargate/src/node-flags.ts';
import { healthCheckScript } from '../../lib/service-stack.ts';
import { backends, uniquePrefix } from '../support/aws.ts';
import { root } from './support.ts';

const bundle = path.join(root, 'dist/broker/main.js');

describe('the bundled broker', () => {
  beforeAll(() => {
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
    execFileSync('npm', ['run', '--silent', 'build:broker'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  }, 120_000);

  it('is one file that imports no package but @node-rs/crc32', () => {
    const text = fs.readFileSync(bundle, 'utf8');
    const imported = new Set([...text.matchAll(/^import\s.*?from\s*"([^"]+)"/gm)].map((m) => m[1]).filter((s) => !s!.startsWith('node:')));
    expect([...imported]).toEqual(['@node-rs/crc32']);
    expect(fs.existsSync(`${bundle}.map`)).toBe(true);
  });

  it('runs in the image with the V8 flags every other launcher gives the broker, which node accepts in NODE_OPTIONS', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'broker-fargate/Dockerfile'), 'utf8');
    const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile)?.[1]?.split(' ') ?? [];
    for (const flag of brokerNodeFlags) expect(nodeOptions).toContain(flag);
    const run = spawnSync(process.execPath, ['-e', 'console.log(JSON.stringify(process.execArgv))'], {
      env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: nodeOptions.join(' ') },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status, run.stderr).toBe(0);
  });

  it('starts far enough to refuse a missing configuration with exit code 2', () => {
    const run = spawnSync(process.execPath, [bundle], {
      cwd: path.dirname(bundle),
      env: { PATH: process.env['PATH'] ?? '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('SKYROCKET_BROKER_ID is required');
  });

  it('serves /healthz, passes the container health check and stops cleanly on SIGTERM', async () => {
    const { dynamodb } = backends();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-bundle-'));
    const child = spawn(process.execPath, [bundle, '--ensure-tables'], {
      cwd: path.dirname(bundle),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env['PATH'] ?? '',
        SKYROCKET_BROKER_ID: '1001',
        SKYROCKET_BROKER_GROUP: 'bg-1',
        SKYROCKET_DATA_DIR: dataDir,
        SKYROCKET_PORT: '0',
        SKYROCKET_INTERNAL_SECRET: 'bundle-test-secret-0123456789',
        SKYROCKET_TABLE_PREFIX: uniquePrefix('bundle'),
        SKYROCKET_SEGMENT_SIZE_BYTES: String(64 * 1024 * 1024),
        SKYROCKET_DYNAMODB_ENDPOINT: dynamodb.endpoint,
        AWS_REGION: dynamodb.region,
        AWS_ACCESS_KEY_ID: dynamodb.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: dynamodb.credentials.secretAccessKey,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const ready = await new Promise<{ url: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ready line; stderr: ${stderr}`)), 30_000);
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line.includes('"msg":"ready"')) {
            clearTimeout(timer);
            resolve(JSON.parse(line) as { url: string });
          }
        });
        child.on('exit', (code) => reject(new Error(`broker exited ${code}: ${stderr}`)));
      });
      const health = await fetch(`${ready.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', brokerId: 1001, brokerGroup: 'bg-1' });
      // The task definition's health check command, pointed at this broker's port.
      const port = new URL(ready.url).port;
      const check = spawnSync(process.execPath, ['-e', healthCheckScript.replace(':8080/', `:${port}/`)], { timeout: 10_000 });
      expect(check.status).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
