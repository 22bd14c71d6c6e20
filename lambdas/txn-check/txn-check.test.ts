import { describe, expect, it } from 'vitest';
import type { Broker } from '../../namesrv/registry.ts';
import { checkerFromEnvironment } from './handler.ts';
import { leaderAddresses, parseCheckAnswer } from './txn-check.ts';

describe('parseCheckAnswer', () => {
  it.each([
    ['{"status":"COMMIT"}', 'COMMIT'],
    ['{"status":"rollback"}', 'ROLLBACK'],
    ['"COMMIT_MESSAGE"', 'COMMIT'],
    ['ROLLBACK_MESSAGE', 'ROLLBACK'],
    [' commit\n', 'COMMIT'],
    ['{"status":"UNKNOW"}', 'UNKNOWN'],
    ['{"status":"UNKNOWN"}', 'UNKNOWN'],
    ['{"state":"COMMIT"}', 'UNKNOWN'],
    ['{"status":1}', 'UNKNOWN'],
    ['<html>', 'UNKNOWN'],
    ['', 'UNKNOWN'],
    ['null', 'UNKNOWN'],
  ])('%j is %s', (text, answer) => {
    expect(parseCheckAnswer(text)).toBe(answer);
  });
});

describe('leaderAddresses', () => {
  const broker = (brokerId: string, brokerGroup: string, role: Broker['role'], epoch: number, expiresAt: number): Broker => ({
    brokerId,
    brokerGroup,
    address: `http://${brokerId}`,
    role,
    epoch,
    expiresAt,
    heartbeatAt: 0,
    version: 1,
  });

  it('picks the live leader with the highest epoch of each group', () => {
    const leaders = leaderAddresses(
      [
        broker('1', 'bg-1', 'LEADER', 1, 100),
        broker('2', 'bg-1', 'LEADER', 2, 100),
        broker('3', 'bg-1', 'LEADER', 3, 10), // expired
        broker('4', 'bg-2', 'FOLLOWER', 9, 100),
        broker('5', 'bg-3', 'LEADER', 1, 100),
      ],
      50,
    );
    expect([...leaders]).toEqual([
      ['bg-1', 'http://2'],
      ['bg-3', 'http://5'],
    ]);
  });
});

describe('checkerFromEnvironment', () => {
  it('needs the table prefix and the internal secret', () => {
    expect(() => checkerFromEnvironment({ SKYROCKET_INTERNAL_SECRET: 'x'.repeat(16) })).toThrow(/SKYROCKET_TABLE_PREFIX/);
    expect(() => checkerFromEnvironment({ SKYROCKET_TABLE_PREFIX: 'p-', SKYROCKET_INTERNAL_SECRET: 'short' })).toThrow(/SKYROCKET_INTERNAL_SECRET/);
    expect(checkerFromEnvironment({ SKYROCKET_TABLE_PREFIX: 'p-', SKYROCKET_INTERNAL_SECRET: 'x'.repeat(16), AWS_REGION: 'eu-west-1' })).toBeDefined();
  });
});
