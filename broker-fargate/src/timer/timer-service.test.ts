import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore } from '../store/index.ts';
import { TimerService } from './timer-service.ts';
import { timerTopic } from './timer-records.ts';

/**
 * The timing wheel over a real store, without a timer index (every timer stays in the wheel):
 * timers fire once at their time, survive a restart with or without a clean stop, and cancel.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function open(dir: string): Promise<{ store: MessageStore; timers: TimerService }> {
  const store = await MessageStore.open({ dataDir: path.join(dir, 'store'), brokerId: 1, storeHost: 'h:1', segmentSizeBytes: 16 * 1024 * 1024, retentionCheckIntervalMs: 0 });
  const timers = await TimerService.start({ store, dataDir: path.join(dir, 'timer'), brokerGroup: 'bg-1', snapshotIntervalMs: 50 });
  return { store, timers };
}

async function schedule(store: MessageStore, timers: TimerService, bodies: string[], deliverAt: number): Promise<string[]> {
  const now = Date.now();
  const records = bodies.map((b) => timers.recordFor({ topic: 't', queueId: 0, deliverAt, body: Buffer.from(b), bornTimestamp: now, bornHost: 'p:1' }, now));
  const results = await store.append(records);
  timers.appended(records);
  return results.map((r) => r.messageId);
}

async function deliveredBodies(store: MessageStore): Promise<string[]> {
  const r = await store.read('t', 0, 0, { maxMessages: 10_000 });
  return r.messages.map((m) => `${m.messageId}:${Buffer.from(m.body).toString()}`).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A crash image: the store closed (its files consistent, as after recovery), the directory copied
 * as it is, and only then the old service stopped, so that its last snapshot lands in the old
 * directory, not in the image. The image is what a restarted broker finds.
 */
async function crash(dir: string, store: MessageStore, timers: TimerService, patch?: (image: string) => void): Promise<string> {
  await store.close();
  const image = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-image-'));
  dirs.push(image);
  fs.cpSync(dir, image, { recursive: true });
  patch?.(image);
  await timers.stop();
  return image;
}

describe('TimerService', () => {
  it.each([
    ['after a clean stop', true],
    ['after a crash (no stop, no last snapshot)', false],
  ])('fires each timer once, at its time, and not again %s', async (_, clean) => {
    let dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-'));
    dirs.push(dir);
    let { store, timers } = await open(dir);
    const at = Date.now() + 150;
    const early = await schedule(store, timers, ['a', 'b'], at);
    const late = await schedule(store, timers, ['c'], at + 1500);
    await sleep(400);
    expect(await deliveredBodies(store)).toEqual([`${early[0]}:a`, `${early[1]}:b`].sort());
    for (const m of (await store.read('t', 0, 0)).messages) expect(m.storeTimestamp).toBeGreaterThanOrEqual(at);
    if (clean) {
      await timers.stop();
      await store.close();
    } else {
      dir = await crash(dir, store, timers);
    }
    ({ store, timers } = await open(dir));
    expect(timers.stats().pending).toBe(1);
    await sleep(at + 1700 - Date.now());
    expect(await deliveredBodies(store)).toEqual([`${early[0]}:a`, `${early[1]}:b`, `${late[0]}:c`].sort());
    await timers.stop();
    await store.close();
  });

  it('replays fired markers over a snapshot taken before the timers fired', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-'));
    dirs.push(dir);
    let { store, timers } = await open(dir);
    const ids = await schedule(store, timers, ['x', 'y'], Date.now() + 300);
    await sleep(150);
    const stale = fs.readFileSync(path.join(dir, 'timer', 'snapshot'));
    await sleep(400);
    expect(await deliveredBodies(store)).toHaveLength(2);
    // A crash after the firing, before the next snapshot.
    const image = await crash(dir, store, timers, (d) => fs.writeFileSync(path.join(d, 'timer', 'snapshot'), stale));
    ({ store, timers } = await open(image));
    expect(timers.stats().pending).toBe(0);
    await sleep(200);
    expect(await deliveredBodies(store)).toEqual([`${ids[0]}:x`, `${ids[1]}:y`].sort());
    await timers.stop();
    await store.close();
  });

  it('cancels a pending timer, durably', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-'));
    dirs.push(dir);
    let { store, timers } = await open(dir);
    const [keep, drop] = await schedule(store, timers, ['keep', 'drop'], Date.now() + 400);
    expect(await timers.cancel(drop!)).toBe(true);
    expect(await timers.cancel(drop!)).toBe(false);
    const image = await crash(dir, store, timers); // right after the cancel
    ({ store, timers } = await open(image));
    await sleep(500);
    expect(await deliveredBodies(store)).toEqual([`${keep}:keep`]);
    expect(await timers.cancel(keep!)).toBe(false); // delivered
    expect((await timers.lookup(keep!))?.topic).toBe('t');
    expect(await timers.lookup(drop!)).toBeUndefined();
    expect(store.queueRange(timerTopic, 0).maxOffset).toBe(4); // two timers, a cancel marker, a fired marker
    await timers.stop();
    await store.close();
  });
});
