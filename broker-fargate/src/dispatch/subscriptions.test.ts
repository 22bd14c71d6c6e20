import type { SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../../core/errors.ts';
import type { GroupInfo } from '../directory.ts';
import { combineSources, groupsTableSubscriptions, ssmSubscriptions, type Subscription } from './subscriptions.ts';

const spec = { functionName: 'f', filter: null, batchSize: 10, maxConcurrency: 2, retryDelayMs: null };

describe('groupsTableSubscriptions', () => {
  it('lists the subscriptions of clustering groups with their group settings', async () => {
    const groups: GroupInfo[] = [
      { name: 'a', mode: 'CLUSTERING', orderly: true, maxDeliveryAttempts: 3, lambdaSubscriptions: [{ ...spec, topic: 't1' }, { ...spec, topic: 't2' }] },
      { name: 'b', mode: 'CLUSTERING', orderly: false, maxDeliveryAttempts: 16 },
      { name: 'c', mode: 'BROADCASTING', orderly: false, maxDeliveryAttempts: 16, lambdaSubscriptions: [{ ...spec, topic: 't1' }] },
    ];
    const subs = await groupsTableSubscriptions({ listGroups: async () => groups })();
    expect(subs).toEqual([
      { ...spec, topic: 't1', group: 'a', orderly: true, maxDeliveryAttempts: 3, source: 'groups-table' },
      { ...spec, topic: 't2', group: 'a', orderly: true, maxDeliveryAttempts: 3, source: 'groups-table' },
    ]);
  });
});

/**
 * No SSM stand-in runs here, so a stub answers GetParametersByPath with what the construct
 * writes: two pages, one document broken.
 */
describe('ssmSubscriptions', () => {
  const doc = (group: string, topic: string, extra: object = {}) =>
    JSON.stringify({ version: 1, group, topic, functionArn: `arn:aws:lambda:us-east-1:123456789012:function:${group}`, filter: null, batchSize: 5, maxConcurrency: 2, orderly: false, ...extra });
  const pages = [
    { Parameters: [{ Name: '/p/billing/orders', Value: doc('billing', 'orders') }, { Name: '/p/bad/x', Value: '{"version":9}' }], NextToken: 'n1' },
    { Parameters: [{ Name: '/p/audit/orders', Value: doc('audit', 'orders', { orderly: true }) }] },
  ];

  it('reads every page, takes group settings from the table when the group exists, and skips broken documents', async () => {
    const asked: Array<{ Path?: string; NextToken?: string; Recursive?: boolean }> = [];
    const ssm = {
      send: async (command: { input: { Path?: string; NextToken?: string; Recursive?: boolean } }) => {
        asked.push(command.input);
        return pages[command.input.NextToken === undefined ? 0 : 1];
      },
    } as unknown as Pick<SSMClient, 'send'>;
    const invalid: string[] = [];
    const directory = {
      group: async (name: string): Promise<GroupInfo> => {
        if (name === 'billing') return { name, mode: 'CLUSTERING', orderly: false, maxDeliveryAttempts: 4 };
        throw new SkyrocketError('CONSUMER_GROUP_NOT_FOUND', 'no');
      },
    };
    const subs = await ssmSubscriptions(ssm, '/p', directory, (parameter) => invalid.push(parameter))();
    expect(asked).toEqual([
      { Path: '/p', Recursive: true },
      { Path: '/p', Recursive: true, NextToken: 'n1' },
    ]);
    expect(invalid).toEqual(['/p/bad/x']);
    expect(subs.map((s) => [s.group, s.topic, s.functionName, s.batchSize, s.orderly, s.maxDeliveryAttempts, s.source])).toEqual([
      ['billing', 'orders', 'arn:aws:lambda:us-east-1:123456789012:function:billing', 5, false, 4, 'ssm'],
      ['audit', 'orders', 'arn:aws:lambda:us-east-1:123456789012:function:audit', 5, true, 16, 'ssm'],
    ]);
  });

  it('fails as a whole when SSM does not answer, so the dispatcher keeps what runs', async () => {
    const ssm = { send: async () => Promise.reject(new Error('network')) } as unknown as Pick<SSMClient, 'send'>;
    await expect(ssmSubscriptions(ssm, '/p', { group: async () => ({}) as GroupInfo }, () => {})()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });
});

describe('combineSources', () => {
  it('keeps the first source for a (group, topic) named twice', async () => {
    const sub = (group: string, topic: string, source: Subscription['source']): Subscription => ({
      ...spec, topic, group, orderly: false, maxDeliveryAttempts: 16, source,
    });
    const combined = combineSources([async () => [sub('g', 't', 'groups-table')], async () => [sub('g', 't', 'ssm'), sub('g', 'u', 'ssm')]]);
    expect((await combined()).map((s) => [s.group, s.topic, s.source])).toEqual([
      ['g', 't', 'groups-table'],
      ['g', 'u', 'ssm'],
    ]);
  });
});
