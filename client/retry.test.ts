import { describe, expect, it } from 'vitest';
import { SkyrocketError } from '../core/errors.ts';
import { backoffDelayMs, withRetries } from './retry.ts';

describe('retries', () => {
  it('backs off exponentially with equal jitter, up to the cap', () => {
    const policy = { backoffMs: 100, backoffMaxMs: 1000 };
    expect([0, 1, 2, 3, 4].map((a) => backoffDelayMs(a, policy, 0))).toEqual([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((a) => backoffDelayMs(a, policy, 0.999999))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelayMs(1e6, policy, 0.5)).toBe(750);
  });

  it('retries retriable errors up to the limit and never a non-retriable one', async () => {
    const policy = { retries: 2, backoffMs: 1, backoffMaxMs: 1 };
    let calls = 0;
    await expect(
      withRetries('t', policy, async () => {
        calls++;
        throw new SkyrocketError('SERVICE_UNAVAILABLE', 'down');
      }),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetries('t', policy, async () => {
        calls++;
        throw new SkyrocketError('ILLEGAL_TOPIC', 'bad');
      }),
    ).rejects.toMatchObject({ code: 'ILLEGAL_TOPIC' });
    expect(calls).toBe(1);
    calls = 0;
    expect(await withRetries('t', policy, async () => (++calls < 3 ? Promise.reject(new SkyrocketError('NOT_LEADER', 'moved')) : 'ok'))).toBe('ok');
  });
});
