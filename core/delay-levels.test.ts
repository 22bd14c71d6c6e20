import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { delayLevelsMs, delayLevelToMs, retryBackoffMs, retryBackoffScheduleMs } from './delay-levels.ts';
import { SkyrocketError } from './errors.ts';

const s = 1000;
const m = 60 * s;
const h = 60 * m;

describe('delayLevelToMs', () => {
  it('maps RocketMQ levels 1..18 to 1s 5s 10s 30s 1m..10m 20m 30m 1h 2h', () => {
    const expected = [1 * s, 5 * s, 10 * s, 30 * s, ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30].map((n) => n * m), 1 * h, 2 * h];
    expect(expected.map((_, i) => delayLevelToMs(i + 1))).toEqual(expected);
    expect(delayLevelsMs).toEqual(expected);
  });

  it.each([0, 19, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects level %s', (level) => {
    let thrown: unknown;
    try {
      delayLevelToMs(level);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SkyrocketError);
    expect(thrown).toMatchObject({ code: 'ILLEGAL_DELIVERY_TIME', field: 'delayLevel' });
  });
});

describe('retryBackoffMs', () => {
  it('backs off 10s 30s 1m..10m 20m 30m 1h 2h after attempts 1..16', () => {
    const expected = [10 * s, 30 * s, ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30].map((n) => n * m), 1 * h, 2 * h];
    expect(expected.map((_, i) => retryBackoffMs(i + 1))).toEqual(expected);
    expect(retryBackoffScheduleMs).toEqual(expected);
  });

  it('never shrinks and stays at 2 h after the schedule ends', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (attempt) => {
        expect(retryBackoffMs(attempt + 1)).toBeGreaterThanOrEqual(retryBackoffMs(attempt));
        if (attempt >= 16) expect(retryBackoffMs(attempt)).toBe(2 * h);
      }),
    );
  });

  it('treats an attempt below 1 as a programming error', () => {
    expect(() => retryBackoffMs(0)).toThrowError(/deliveryAttempt/);
    expect(() => retryBackoffMs(1.5)).toThrowError(/deliveryAttempt/);
  });
});
