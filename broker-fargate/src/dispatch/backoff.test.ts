import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

describe('Backoff', () => {
  it('doubles the ceiling up to the maximum, waits at least half of it, and resets on success', () => {
    const low = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0 });
    const high = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6].map(() => low.fail(0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map(() => high.fail(0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(high.untilMs).toBe(1000);
    high.succeed();
    expect([high.failures, high.untilMs]).toEqual([0, 0]);
  });
});
