/**
 * `skyrocket dev --example` as a user runs it: the local Lambda endpoint serves lambdas/examples,
 * the brokers invoke the sample consumer through the AWS SDK, and what it logs shows in dev's output.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDev, stopDev, type DevProcess } from '../cli/support.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-dev-example-'));
let dev: DevProcess | undefined;

beforeAll(async () => {
  dev = await startDev(dataDir, 0, 45_000, ['--example']);
}, 60_000);

afterAll(async () => {
  if (dev !== undefined) await stopDev(dev).catch(() => undefined);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('skyrocket dev --example', () => {
  it('wires the sample consumer: a sent order reaches the handler', async () => {
    const out = dev!.stdout.join('\n');
    expect(out).toMatch(/lambda {7}http:\/\/127\.0\.0\.1:\d+ {2}\(functions in .*: order-logger\)/);
    expect(out).toContain('example      topic example-orders -> group example-order-logger -> function order-logger');
    const sent = await runCli(['send', 'example-orders', '{"orderId":"o-77","amount":12.5}', '--data-dir', dataDir]);
    expect(sent.code, sent.stderr).toBe(0);
    const deadline = Date.now() + 20_000;
    const logged = (): string | undefined => dev!.stdout.find((line) => line.includes('"orderId":"o-77"'));
    while (logged() === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(JSON.parse(logged() ?? '{}')).toMatchObject({ msg: 'order', orderId: 'o-77', amount: 12.5, attempt: 1 });
    expect(await stopDev(dev!)).toBe(0);
    dev = undefined;
  });
});
