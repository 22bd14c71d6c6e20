import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cli-'));

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

async function dev(): Promise<{ queue: { maxOffset: number }; appended: number; firstRead: Array<{ queueOffset: number }>; lookupByKey: string[] }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bin/skyrocket.ts', 'dev', '--data-dir', dataDir, '--messages', '20', '--json'], {
    cwd: root,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string);
}

describe('skyrocket dev (store demo)', () => {
  it('stores messages durably and continues the offsets after a restart', async () => {
    const first = await dev();
    expect(first.appended).toBe(20);
    expect(first.queue.maxOffset).toBe(20);
    expect(first.lookupByKey).toHaveLength(1);
    const second = await dev();
    expect(second.queue.maxOffset).toBe(40);
    expect(second.firstRead[0]?.queueOffset).toBe(20);
  });

  it('rejects a bad option with a clear message', async () => {
    await expect(
      run(process.execPath, ['--import', 'tsx', 'bin/skyrocket.ts', 'dev', '--messages', '0'], { cwd: root }),
    ).rejects.toMatchObject({ stderr: expect.stringContaining('must be a positive integer') });
  });
});
