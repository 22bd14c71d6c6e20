import { DescribeTableCommand, ListTablesCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { dynamoClient, uniquePrefix } from '../test/support/aws.ts';
import { createTableInput, ensureTables, tableDefinitions, tableNames, type TableDefinition } from './tables.ts';

const client: DynamoDBClient = dynamoClient();
afterAll(() => client.destroy());

describe('tableNames', () => {
  it('prefixes every table', () => {
    expect(tableNames('skyrocket-dev-')).toEqual({
      brokers: 'skyrocket-dev-brokers',
      topics: 'skyrocket-dev-topics',
      groups: 'skyrocket-dev-groups',
      principals: 'skyrocket-dev-principals',
      leases: 'skyrocket-dev-leases',
      producerGroups: 'skyrocket-dev-producer-groups',
      transactions: 'skyrocket-dev-transactions',
      timers: 'skyrocket-dev-timers',
    });
  });

  it.each(['has space-', 'slash/', 'x'.repeat(250)])('rejects the prefix %j', (prefix) => {
    expect(() => tableNames(prefix)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'prefix' }));
  });

  it('describes on-demand tables with one string hash key, as CDK will build them', () => {
    expect(createTableInput('p-topics', tableDefinitions.topics)).toEqual({
      TableName: 'p-topics',
      KeySchema: [{ AttributeName: 'name', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'name', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('gives the timer index a string sort key as well', () => {
    expect(createTableInput('p-timers', tableDefinitions.timers)).toEqual({
      TableName: 'p-timers',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    });
  });
});

describe('ensureTables', () => {
  it('creates every table ACTIVE with its key, and is idempotent, also when run concurrently', async () => {
    const prefix = uniquePrefix();
    const [first, second] = await Promise.all([ensureTables(client, prefix), ensureTables(client, prefix)]);
    expect(second).toEqual(first);
    await ensureTables(client, prefix);

    const listed = new Set<string>();
    let start: string | undefined;
    do {
      const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: start }));
      for (const name of page.TableNames ?? []) listed.add(name);
      start = page.LastEvaluatedTableName;
    } while (start !== undefined);

    for (const [kind, name] of Object.entries(first)) {
      expect(listed.has(name)).toBe(true);
      const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
      const definition: TableDefinition = tableDefinitions[kind as keyof typeof tableDefinitions];
      const key = definition.partitionKey;
      const sort = definition.sortKey === undefined ? [] : [{ AttributeName: definition.sortKey.name, KeyType: 'RANGE' }];
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(Table?.KeySchema).toEqual([{ AttributeName: key.name, KeyType: 'HASH' }, ...sort]);
    }
  });
});
