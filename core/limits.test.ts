import { describe, expect, it } from 'vitest';
import { checkLimits, isReservedPropertyName, limits, reservedPropertyNames } from './limits.ts';

describe('limits', () => {
  it('are consistent as shipped', () => {
    expect(() => checkLimits()).not.toThrow();
  });

  it.each([
    ['a batch smaller than one body', { sendBatchMaxBytes: limits.bodyMaxBytes - 1 }],
    ['an empty invisible range', { invisibleMinMs: limits.invisibleMaxMs }],
    ['a group whose DLQ topic cannot be named', { groupNameMaxChars: limits.topicNameMaxChars }],
    ['a tag larger than the properties budget', { tagMaxBytes: limits.propertiesMaxBytes + 1 }],
    ['a default queue count over the max', { topicQueuesDefaultCount: limits.topicQueuesMaxCount + 1 }],
    ['default delivery attempts over the max', { deliveryAttemptsDefaultCount: limits.deliveryAttemptsMaxCount + 1 }],
    ['a zero limit', { keysMaxCount: 0 }],
    ['a fractional limit', { delayMaxMs: 1.5 }],
  ])('reject %s', (_, change) => {
    expect(() => checkLimits({ ...limits, ...change })).toThrowError();
  });

  it("reserve RocketMQ's system property names and every __ name", () => {
    for (const name of ['KEYS', 'TAGS', 'DELAY', 'UNIQ_KEY', 'TIMER_DELIVER_MS', 'TRAN_MSG', 'PGROUP']) {
      expect(reservedPropertyNames.has(name)).toBe(true);
    }
    for (const name of reservedPropertyNames) expect(isReservedPropertyName(name)).toBe(true);
    for (const name of ['__SHARDINGKEY', '__SR_ATTEMPT', '__proto__', '__']) expect(isReservedPropertyName(name)).toBe(true);
    for (const name of ['keys', 'orderId', '_x', 'KEYS2', 'CHECK_IMMUNITY_TIME_IN_SECONDS']) {
      expect(isReservedPropertyName(name)).toBe(false);
    }
  });
});
