/**
 * ENOSPC on a real file system: a small tmpfs holds the store, a filler file takes the rest of it.
 * Appends must then fail with DISK_FULL (retriable), acknowledged data must stay readable, reads
 * must keep working, and once space is back appends must succeed again and every message, old and
 * new, must be readable, also after close and reopen.
 *
 * Mounting needs root (or CAP_SYS_ADMIN). Where it is not allowed the test is skipped, and its
 * title says why, taken from the failed mount itself.
 */
import { spawnSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../core/errors.ts';
import type { AppendResult, MessageStore } from '../../broker-fargate/src/store/message-store.ts';
import type { RecordInput } from '../../broker-fargate/src/store/record.ts';
import { message, OpenStores } from './store-files.ts';

const tmpfsBytes = 6 * 1024 * 1024;

/** Mounts a tmpfs of `tmpfsBytes` now, while the file is collected, so `skipIf` can use the result. */
function mountTmpfs(): { dir: string; mounted: true } | { dir: string; mounted: false; reason: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-diskfull-'));
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${tmpfsBytes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (result.error === undefined && result.status === 0) return { dir, mounted: true };
  // A skipped file runs no hooks: nothing would remove the directory later.
  fs.rmSync(dir, { recursive: true, force: true });
  const reason =
    result.error !== undefined ? `mount could not run: ${result.error.message}` : `mount exited ${result.status}: ${result.stderr.trim()}`;
  return { dir, mounted: false, reason };
}

const mount = mountTmpfs();
const stores = new OpenStores();

afterAll(async () => {
  await stores.closeAll();
  if (!mount.mounted) return;
  const result = spawnSync('umount', [mount.dir], { encoding: 'utf8' });
  // A descriptor still open would keep it busy; detach it rather than leave a mount behind.
  if (result.status !== 0) spawnSync('umount', ['-l', mount.dir]);
  fs.rmSync(mount.dir, { recursive: true, force: true });
});

interface Acked {
  input: RecordInput;
  result: AppendResult;
}

const storeOptions = { segmentSizeBytes: 64 * 1024, maxGroupBytes: 16 * 1024, checkpointIntervalMs: 100 };

/** Every acked message is served at its offset with its body, and each queue is contiguous. */
async function unreadable(store: MessageStore, acked: Acked[]): Promise<string[]> {
  const problems: string[] = [];
  const queues = new Map<string, Acked[]>();
  for (const a of acked) {
    const k = `${a.input.topic}/${a.input.queueId}`;
    queues.set(k, [...(queues.get(k) ?? []), a]);
  }
  for (const [k, list] of queues) {
    const { topic, queueId } = list[0]!.input;
    const read = await store.read(topic, queueId, 0, { maxMessages: 100_000 });
    if (read.corrupted.length > 0) problems.push(`${k}: corrupted ${JSON.stringify(read.corrupted)}`);
    const served = new Map(read.messages.map((m) => [m.queueOffset, m]));
    for (const a of list) {
      const m = served.get(a.result.queueOffset);
      if (m === undefined) problems.push(`${k}@${a.result.queueOffset} not served`);
      else if (!Buffer.from(m.body).equals(Buffer.from(a.input.body)) || m.messageId !== a.result.messageId) {
        problems.push(`${k}@${a.result.queueOffset} differs`);
      }
    }
    const offsets = read.messages.map((m) => m.queueOffset);
    if (offsets.some((o, i) => o !== i)) problems.push(`${k}: offsets not contiguous`);
  }
  return problems;
}

async function eventually(check: () => Promise<string[]>, timeoutMs: number): Promise<string[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const problems = await check();
    if (problems.length === 0 || performance.now() > deadline) return problems;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Writes a file until the file system refuses; returns its size. */
function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'w');
  let bytes = 0;
  try {
    for (const chunk of [Buffer.alloc(256 * 1024, 1), Buffer.alloc(4096, 1)]) {
      for (;;) {
        try {
          bytes += fs.writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

describe('disk full', () => {
  const title = mount.mounted
    ? 'rejects appends with DISK_FULL, keeps serving reads, and recovers when space is back'
    : `is skipped: a tmpfs cannot be mounted here (${mount.reason})`;

  it.skipIf(!mount.mounted)(title, { timeout: 30_000 }, async () => {
    const dataDir = path.join(mount.dir, 'store');
    const fillerFile = path.join(mount.dir, 'filler');
    const events = { stalled: 0, appendFailed: [] as string[] };
    const onStalled = (): void => void events.stalled++;
    const onAppendFailed = (m: unknown): void => void events.appendFailed.push((m as { code: string }).code);
    diagnosticsChannel.subscribe('skyrocket:store:dispatch-stalled', onStalled);
    diagnosticsChannel.subscribe('skyrocket:store:append-failed', onAppendFailed);
    try {
      let store = await stores.open(dataDir, storeOptions);
      const acked: Acked[] = [];
      let n = 0;
      const appendOne = async (inputs: RecordInput[]): Promise<void> => {
        const results = await store.append(inputs);
        acked.push(...inputs.map((input, i) => ({ input, result: results[i]! })));
      };

      // Before: a few segments over three queues, with keys.
      for (let i = 0; i < 120; i++) await appendOne([message('full', i % 3, n++), message('full', (i + 1) % 3, n++)]);
      const before = acked.length;

      const fillerBytes = fillDisk(fillerFile);
      expect(fillerBytes).toBeGreaterThan(0);

      // Appends go on into the current segment (allocated ahead) and then fail at a roll. They go
      // to one queue, so its consume queue needs new pages (a page holds 204 entries) while the
      // disk is full: dispatch stalls, and must catch up once space is back.
      let failure: unknown;
      for (let i = 0; i < 5_000 && failure === undefined; i++) {
        await appendOne([message('full', 0, n++, { body: Buffer.alloc(100, 0x41 + (i % 26)) })]).catch((error: unknown) => {
          failure = error;
        });
      }
      expect(failure, 'appends never failed on a full disk').toBeInstanceOf(SkyrocketError);
      expect(failure).toMatchObject({ code: 'DISK_FULL', retriable: true });
      // Retrying while full keeps failing the same way, and changes nothing stored.
      const ackedWhileFull = acked.length - before;
      for (let i = 0; i < 3; i++) {
        await expect(store.append([message('full', 1, n++)])).rejects.toMatchObject({ code: 'DISK_FULL', retriable: true });
      }
      expect(acked.length - before).toBe(ackedWhileFull);
      expect(events.appendFailed).toContain('DISK_FULL');

      // Reads keep working while full: everything acked before the disk filled is intact.
      expect(await unreadable(store, acked.slice(0, before))).toEqual([]);
      for (const a of acked.slice(0, before).filter((_, i) => i % 17 === 0)) {
        expect((await store.getById(a.result.messageId))?.body.toString()).toBe(Buffer.from(a.input.body).toString());
        expect((await store.queryByKey(a.input.topic, a.input.keys![0]!)).map((m) => m.messageId)).toEqual([a.result.messageId]);
      }
      expect(events.stalled, 'the consume queue never hit the full disk').toBeGreaterThan(0);

      // Space back: appends succeed at once, across several segment rolls.
      fs.rmSync(fillerFile);
      for (let i = 0; i < 150; i++) await appendOne([message('full', i % 3, n++, { body: Buffer.alloc(300 + (i % 7), 0x61 + (i % 26)) }), message('more', 0, n++)]);
      expect(await eventually(() => unreadable(store, acked), 5_000)).toEqual([]);
      for (const a of acked.filter((_, i) => i % 23 === 0)) {
        expect((await store.getById(a.result.messageId))?.body.toString()).toBe(Buffer.from(a.input.body).toString());
        expect((await store.queryByKey(a.input.topic, a.input.keys![0]!)).map((m) => m.messageId)).toEqual([a.result.messageId]);
      }

      // And after close and reopen.
      await stores.close(store);
      store = await stores.open(dataDir, storeOptions);
      expect(store.recovery.corruptions).toEqual([]);
      expect(await unreadable(store, acked)).toEqual([]);
      const last = acked.filter((a) => a.input.topic === 'full' && a.input.queueId === 0).at(-1)!;
      await appendOne([message('full', 0, n++)]);
      expect(acked.at(-1)!.result.queueOffset).toBe(last.result.queueOffset + 1);
      expect(await unreadable(store, acked)).toEqual([]);
    } finally {
      diagnosticsChannel.unsubscribe('skyrocket:store:dispatch-stalled', onStalled);
      diagnosticsChannel.unsubscribe('skyrocket:store:append-failed', onAppendFailed);
      await stores.closeAll();
    }
  });
});
