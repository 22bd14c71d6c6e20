import { afterAll, describe, expect, it } from 'vitest';
import { SkyrocketError } from '../core/errors.ts';
import { dynamoClient, uniquePrefix } from '../test/support/aws.ts';
import { checkLambdaSubscription, parseLambdaConsumerDocument } from './lambda-subscription.ts';
import { NameServer } from './registry.ts';
import { ensureTables } from './tables.ts';

function failure(f: () => unknown): { code: string; field: string | undefined } {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    return { code: (error as SkyrocketError).code, field: (error as SkyrocketError).field };
  }
  throw new Error('expected a SkyrocketError');
}

describe('checkLambdaSubscription', () => {
  it('fills in the defaults and normalises a match-all tag filter to null', () => {
    expect(checkLambdaSubscription({ topic: 'orders', functionName: 'f' })).toEqual({
      topic: 'orders', functionName: 'f', filter: null, batchSize: 10, maxConcurrency: 2, retryDelayMs: null,
    });
    expect(checkLambdaSubscription({ topic: 'orders', functionName: 'f', filter: { type: 'TAG', expression: ' * ' } }).filter).toBeNull();
    expect(checkLambdaSubscription({ topic: 'orders', functionName: 'f', filter: { type: 'TAG', expression: ' a || b ' } }).filter).toEqual({
      type: 'TAG',
      expression: 'a || b',
    });
  });

  it('takes names, partial ARNs and full ARNs of functions, and nothing else', () => {
    for (const name of ['f', 'my-fn_1', '123456789012:function:f', 'arn:aws:lambda:eu-west-1:123456789012:function:f:live', 'arn:aws-cn:lambda:cn-north-1:123456789012:function:f']) {
      expect(checkLambdaSubscription({ topic: 't', functionName: name }).functionName).toBe(name);
    }
    for (const name of ['', 'has space', 'a/b', 'x'.repeat(171), 42]) {
      expect(failure(() => checkLambdaSubscription({ topic: 't', functionName: name }))).toEqual({ code: 'INVALID_ARGUMENT', field: 'functionName' });
    }
  });

  it('names the bad field', () => {
    const base = { topic: 't', functionName: 'f' };
    expect(failure(() => checkLambdaSubscription({ ...base, batchSize: 1001 }))).toEqual({ code: 'INVALID_ARGUMENT', field: 'batchSize' });
    expect(failure(() => checkLambdaSubscription({ ...base, maxConcurrency: 0 }))).toEqual({ code: 'INVALID_ARGUMENT', field: 'maxConcurrency' });
    expect(failure(() => checkLambdaSubscription({ ...base, retryDelayMs: -1 }))).toEqual({ code: 'INVALID_ARGUMENT', field: 'retryDelayMs' });
    expect(failure(() => checkLambdaSubscription({ ...base, extra: 1 }))).toEqual({ code: 'INVALID_ARGUMENT', field: 'extra' });
    expect(failure(() => checkLambdaSubscription({ ...base, topic: 'a b' }))).toMatchObject({ field: 'topic' });
    expect(failure(() => checkLambdaSubscription({ ...base, filter: { type: 'SQL92', expression: 'a >' } }))).toEqual({
      code: 'INVALID_FILTER_EXPRESSION',
      field: 'filter.expression',
    });
    expect(failure(() => checkLambdaSubscription({ ...base, filter: { type: 'REGEX', expression: '.*' } }))).toMatchObject({ code: 'INVALID_FILTER_EXPRESSION' });
  });
});

describe('parseLambdaConsumerDocument', () => {
  it('reads what the LambdaConsumer construct writes', () => {
    const doc = {
      version: 1, group: 'billing', topic: 'orders', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:bill',
      filter: { type: 'TAG', expression: 'paid' }, batchSize: 25, maxConcurrency: 4, orderly: true,
    };
    expect(parseLambdaConsumerDocument(JSON.stringify(doc))).toEqual({
      group: 'billing',
      orderly: true,
      subscription: {
        topic: 'orders', functionName: doc.functionArn, filter: { type: 'TAG', expression: 'paid' }, batchSize: 25, maxConcurrency: 4, retryDelayMs: null,
      },
    });
    expect(failure(() => parseLambdaConsumerDocument(JSON.stringify({ ...doc, version: 2 })))).toMatchObject({ field: 'version' });
    expect(failure(() => parseLambdaConsumerDocument('{'))).toMatchObject({ field: 'document' });
  });
});

describe('Lambda subscriptions in the groups table', () => {
  const client = dynamoClient();
  afterAll(() => client.destroy());

  it('adds, replaces and removes one subscription per topic, keeping the group settings', async () => {
    const prefix = uniquePrefix();
    await ensureTables(client, prefix);
    const ns = new NameServer({ client, prefix });
    await ns.createGroup({ name: 'billing', orderly: true });
    const one = await ns.putLambdaSubscription('billing', checkLambdaSubscription({ topic: 'orders', functionName: 'a' }));
    expect(one).toMatchObject({ orderly: true, version: 2, lambdaSubscriptions: [{ topic: 'orders', functionName: 'a' }] });
    await ns.putLambdaSubscription('billing', checkLambdaSubscription({ topic: 'refunds', functionName: 'b' }));
    const replaced = await ns.putLambdaSubscription('billing', checkLambdaSubscription({ topic: 'orders', functionName: 'c', batchSize: 3 }));
    expect(replaced.lambdaSubscriptions?.map((s) => [s.topic, s.functionName, s.batchSize])).toEqual([
      ['orders', 'c', 3],
      ['refunds', 'b', 10],
    ]);
    // Concurrent writers do not lose each other's subscriptions.
    await Promise.all(['t1', 't2', 't3'].map((topic) => ns.putLambdaSubscription('billing', checkLambdaSubscription({ topic, functionName: 'x' }))));
    expect((await ns.requireGroup('billing')).lambdaSubscriptions?.map((s) => s.topic)).toEqual(['orders', 'refunds', 't1', 't2', 't3']);
    for (const topic of ['orders', 'refunds', 't1', 't2', 't3']) await ns.deleteLambdaSubscription('billing', topic);
    const none = await ns.requireGroup('billing');
    expect(none).not.toHaveProperty('lambdaSubscriptions');
    expect(none.orderly).toBe(true);
    await expect(ns.deleteLambdaSubscription('billing', 'orders')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(ns.putLambdaSubscription('nope', checkLambdaSubscription({ topic: 'orders', functionName: 'a' }))).rejects.toMatchObject({
      code: 'CONSUMER_GROUP_NOT_FOUND',
    });
  });
});
