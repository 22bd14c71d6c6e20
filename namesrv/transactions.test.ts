import { afterAll, describe, expect, it } from 'vitest';
import { dynamoClient, uniquePrefix } from '../test/support/aws.ts';
import { ensureTables } from './tables.ts';
import { checkProducerGroupSpec, producerGroupDefaults, TransactionTables } from './transactions.ts';

const client = dynamoClient();
afterAll(() => client.destroy());

async function fresh(now = () => 1_000_000): Promise<TransactionTables> {
  const prefix = uniquePrefix('tx');
  await ensureTables(client, prefix);
  return new TransactionTables({ client, prefix, now });
}

describe('producer groups', () => {
  it('are registered once, read back, listed and deleted; an unregistered group gets the defaults', async () => {
    const t = await fresh();
    const created = await t.createProducerGroup({ name: 'orders', checkUrl: 'https://example.com/check', maxChecks: 3 });
    expect(created).toMatchObject({ name: 'orders', checkUrl: 'https://example.com/check', maxChecks: 3, checkDelayMs: producerGroupDefaults.checkDelayMs, registered: true });
    await expect(t.createProducerGroup({ name: 'orders' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await t.getProducerGroup('orders')).toEqual(created);
    await t.createProducerGroup({ name: 'billing', checkLambdaArn: 'arn:aws:lambda:eu-west-1:123456789012:function:check:live' });
    expect((await t.listProducerGroups()).map((g) => g.name)).toEqual(['billing', 'orders']);
    expect(await t.effectiveProducerGroup('nobody')).toMatchObject({ name: 'nobody', registered: false, ...producerGroupDefaults });
    await t.deleteProducerGroup('orders');
    await expect(t.deleteProducerGroup('orders')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await t.getProducerGroup('orders')).toBeUndefined();
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'a b' }, 'name'],
    [{ name: 'x'.repeat(121) }, 'name'],
    [{ name: 'g', checkUrl: 'ftp://x' }, 'checkUrl'],
    [{ name: 'g', checkUrl: 'https://user:pw@x' }, 'checkUrl'],
    [{ name: 'g', checkLambdaArn: 'arn:aws:s3:::bucket' }, 'checkLambdaArn'],
    [{ name: 'g', checkUrl: 'https://x', checkLambdaArn: 'arn:aws:lambda:us-east-1:123456789012:function:f' }, 'checkLambdaArn'],
    [{ name: 'g', checkDelayMs: 5 }, 'checkDelayMs'],
    [{ name: 'g', checkIntervalMs: 1.5 }, 'checkIntervalMs'],
    [{ name: 'g', maxChecks: 0 }, 'maxChecks'],
    [{ name: 'g', maxChecks: '3' }, 'maxChecks'],
  ])('refuses %j naming %s', (spec, field) => {
    expect(() => checkProducerGroupSpec(spec as never, 0)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT', field }));
  });
});

describe('the index of unresolved transactions', () => {
  const item = (txId: string, brokerGroup: string, nextCheckAt: number) => ({
    txId,
    brokerGroup,
    producerGroup: 'pg',
    topic: 't',
    messageId: '0100000001000000000000A1F0',
    createdAt: 1,
    nextCheckAt,
  });

  it('adds an item once, keeping its checks when it is added again', async () => {
    const t = await fresh();
    expect(await t.putTransaction(item('tx-1', 'bg-1', 100))).toBe(true);
    const claimed = await t.claimCheck((await t.getTransaction('tx-1'))!, 500);
    expect(claimed).toMatchObject({ checks: 1, nextCheckAt: 500, version: 2 });
    expect(await t.putTransaction(item('tx-1', 'bg-1', 100))).toBe(false);
    expect(await t.getTransaction('tx-1')).toMatchObject({ checks: 1, nextCheckAt: 500 });
  });

  it('lets only one of two sweeps claim a check', async () => {
    const t = await fresh();
    await t.putTransaction(item('tx-1', 'bg-1', 100));
    const seen = (await t.getTransaction('tx-1'))!;
    const claims = await Promise.all([t.claimCheck(seen, 200), t.claimCheck(seen, 300)]);
    expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
    await t.deleteTransaction('tx-1');
    await t.deleteTransaction('tx-1');
    expect(await t.claimCheck(seen, 400)).toBeUndefined();
  });

  it('lists items by broker group and by due time', async () => {
    const t = await fresh();
    await Promise.all([t.putTransaction(item('a', 'bg-1', 100)), t.putTransaction(item('b', 'bg-2', 200)), t.putTransaction(item('c', 'bg-1', 300))]);
    const ids = (items: Array<{ txId: string }>) => items.map((i) => i.txId).sort();
    expect(ids(await t.listTransactions())).toEqual(['a', 'b', 'c']);
    expect(ids(await t.listTransactions({ brokerGroup: 'bg-1' }))).toEqual(['a', 'c']);
    expect(ids(await t.listTransactions({ dueBy: 200 }))).toEqual(['a', 'b']);
    expect(ids(await t.listTransactions({ brokerGroup: 'bg-1', dueBy: 200 }))).toEqual(['a']);
  });
});
