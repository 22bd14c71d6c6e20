/**
 * RocketMQ's fixed delay levels and the retry backoff built from them.
 *
 * Skyrocket delivers at any time up to `limits.delayMaxMs` ahead; the levels exist so that
 * RocketMQ 4 producers that set `delayTimeLevel` keep working. RocketMQ's broker retries a failed
 * message at level 3 + (attempts so far), so its backoff is the level table from 10 s on.
 */
import assert from 'node:assert/strict';
import { SkyrocketError } from './errors.ts';
import { limits } from './limits.ts';

const s = 1000;
const m = 60 * s;
const h = 60 * m;

/** Delay of level n at index n - 1: RocketMQ's `messageDelayLevel` default "1s 5s 10s 30s 1m … 2h". */
export const delayLevelsMs: readonly number[] = [
  1 * s, 5 * s, 10 * s, 30 * s, 1 * m, 2 * m, 3 * m, 4 * m, 5 * m, 6 * m, 7 * m, 8 * m, 9 * m,
  10 * m, 20 * m, 30 * m, 1 * h, 2 * h,
];

/** Wait before redelivery after failed attempt n at index n - 1: 10 s, 30 s, 1 m, … 2 h. */
export const retryBackoffScheduleMs: readonly number[] = delayLevelsMs.slice(2);

assert.equal(delayLevelsMs.length, 18);
assert.equal(retryBackoffScheduleMs.length, 16);
assert(delayLevelsMs.every((ms, i) => i === 0 || ms > (delayLevelsMs[i - 1] ?? 0)), 'levels must rise');
assert((delayLevelsMs.at(-1) ?? 0) <= limits.delayMaxMs, 'every level must be a legal delay');

/**
 * The delay of a RocketMQ delay level, 1-based: level 1 is 1 s, level 18 is 2 h.
 * @throws SkyrocketError ILLEGAL_DELIVERY_TIME for anything but an integer from 1 to 18.
 */
export function delayLevelToMs(level: number, field = 'delayLevel'): number {
  const ms = Number.isInteger(level) ? delayLevelsMs[level - 1] : undefined;
  if (ms === undefined) {
    const message = `delay level must be an integer from 1 to ${delayLevelsMs.length}`;
    throw new SkyrocketError('ILLEGAL_DELIVERY_TIME', message, { field });
  }
  return ms;
}

/**
 * How long to wait before redelivering a message whose delivery attempt `deliveryAttempt`
 * (1 for the first delivery) failed: 10 s after the first, 30 s after the second, … and 2 h
 * after the 16th and every later one.
 */
export function retryBackoffMs(deliveryAttempt: number): number {
  assert(Number.isSafeInteger(deliveryAttempt) && deliveryAttempt >= 1, 'deliveryAttempt counts from 1');
  const index = Math.min(deliveryAttempt, retryBackoffScheduleMs.length) - 1;
  const ms = retryBackoffScheduleMs[index];
  assert(ms !== undefined);
  return ms;
}
