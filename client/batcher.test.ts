import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';

/** A batcher whose deliveries are recorded and answered with `item * 10`, failing odd items when asked. */
function recording(options: { lingerMs?: number; maxItems?: number; maxBytes?: number; failOdd?: boolean; ordered?: boolean } = {}) {
  const deliveries: Array<{ key: string; items: number[] }> = [];
  let release: (() => void) | undefined;
  const batcher = new Batcher<number, number>({
    lingerMs: options.lingerMs ?? 5,
    maxItems: options.maxItems ?? 100,
    maxBytes: options.maxBytes ?? 1_000_000,
    ordered: () => options.ordered ?? false,
    deliver: async (key, items) => {
      deliveries.push({ key, items: [...items] });
      if (options.ordered === true && release === undefined) await new Promise<void>((r) => (release = r));
      return items.map((i) =>
        options.failOdd === true && i % 2 === 1 ? { status: 'rejected', reason: new Error(`odd ${i}`) } : { status: 'fulfilled', value: i * 10 },
      );
    },
  });
  return { batcher, deliveries, release: () => release?.() };
}

describe('Batcher', () => {
  it('coalesces items added within the linger into one delivery per key, each caller getting its own outcome', async () => {
    const { batcher, deliveries } = recording();
    const a = [1, 2, 3].map((i) => batcher.add('a', i, 1));
    const b = batcher.add('b', 4, 1);
    expect(await Promise.all(a)).toEqual([10, 20, 30]);
    expect(await b).toBe(40);
    expect(deliveries).toEqual([
      { key: 'a', items: [1, 2, 3] },
      { key: 'b', items: [4] },
    ]);
  });

  it('closes a batch when it is full by count or by bytes, and sends an oversized item alone', async () => {
    const { batcher, deliveries } = recording({ maxItems: 2, maxBytes: 10, lingerMs: 1000 });
    const outcomes = [batcher.add('k', 1, 1), batcher.add('k', 2, 1), batcher.add('k', 3, 6), batcher.add('k', 4, 6), batcher.add('k', 5, 50)];
    expect(deliveries.map((d) => d.items)).toEqual([[1, 2], [3], [4], [5]]);
    expect(await Promise.all(outcomes)).toEqual([10, 20, 30, 40, 50]);
  });

  it('fails only the items whose outcome failed, and every item when delivery throws', async () => {
    const { batcher } = recording({ failOdd: true });
    const results = await Promise.allSettled([1, 2, 3].map((i) => batcher.add('k', i, 1)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
    const throwing = new Batcher<number, number>({ lingerMs: 0, maxItems: 10, maxBytes: 10, deliver: async () => Promise.reject(new Error('down')) });
    const failed = await Promise.allSettled([throwing.add('k', 1, 1), throwing.add('k', 2, 1)]);
    expect(failed.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual(['down', 'down']);
  });

  it('delivers the batches of an ordered key one at a time, in order', async () => {
    const { batcher, deliveries, release } = recording({ ordered: true, maxItems: 1 });
    const first = batcher.add('k', 1, 1);
    const second = batcher.add('k', 2, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(deliveries.map((d) => d.items)).toEqual([[1]]);
    release();
    expect(await Promise.all([first, second])).toEqual([10, 20]);
    expect(deliveries.map((d) => d.items)).toEqual([[1], [2]]);
  });

  it('flush delivers open batches at once and waits for them', async () => {
    const { batcher, deliveries } = recording({ lingerMs: 60_000 });
    const outcome = batcher.add('k', 7, 1);
    await batcher.flush();
    expect(deliveries).toHaveLength(1);
    expect(await outcome).toBe(70);
  });

  it('adaptive: a lone item goes at the end of the turn; while maxInflight batches are out, items wait and go as one batch when one completes', async () => {
    const deliveries: number[][] = [];
    const releases: Array<() => void> = [];
    const batcher = new Batcher<number, number>({
      lingerMs: 'adaptive',
      maxInflight: 2,
      maxItems: 100,
      maxBytes: 1_000_000,
      deliver: async (_key, items) => {
        deliveries.push([...items]);
        await new Promise<void>((r) => releases.push(r));
        return items.map((i) => ({ status: 'fulfilled', value: i }));
      },
    });
    const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
    const first = batcher.add('k', 1, 1);
    const sameTurn = batcher.add('k', 2, 1);
    expect(deliveries).toEqual([]); // not before the end of this turn
    await tick();
    expect(deliveries).toEqual([[1, 2]]);
    const second = batcher.add('k', 3, 1);
    await tick();
    expect(deliveries).toEqual([[1, 2], [3]]);
    // Two batches out: later items wait, however many turns pass.
    const waiting = [4, 5, 6].map((i) => batcher.add('k', i, 1));
    await tick();
    await tick();
    expect(deliveries).toHaveLength(2);
    releases.shift()!();
    expect(await Promise.all([first, sameTurn])).toEqual([1, 2]);
    await tick();
    expect(deliveries).toEqual([[1, 2], [3], [4, 5, 6]]);
    releases.shift()!();
    releases.shift()!();
    expect(await second).toBe(3);
    expect(await Promise.all(waiting)).toEqual([4, 5, 6]);
    await batcher.flush();
  });

  it('adaptive: an ordered key has one batch out at a time, the next growing meanwhile', async () => {
    const deliveries: number[][] = [];
    let release: (() => void) | undefined;
    const batcher = new Batcher<number, number>({
      lingerMs: 'adaptive',
      maxItems: 100,
      maxBytes: 1_000_000,
      ordered: () => true,
      deliver: async (_key, items) => {
        deliveries.push([...items]);
        await new Promise<void>((r) => (release = r));
        return items.map((i) => ({ status: 'fulfilled', value: i }));
      },
    });
    const all = [batcher.add('k', 1, 1)];
    await new Promise((r) => setImmediate(r));
    for (let i = 2; i <= 5; i++) {
      all.push(batcher.add('k', i, 1));
      await new Promise((r) => setImmediate(r));
    }
    expect(deliveries).toEqual([[1]]);
    release!();
    await new Promise((r) => setTimeout(r, 5));
    expect(deliveries).toEqual([[1], [2, 3, 4, 5]]);
    release!();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
  });
});
