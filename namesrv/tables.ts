/**
 * The name server's DynamoDB tables, as pure data, and their idempotent creation.
 *
 * `tableDefinitions` is plain data so that the CDK stack can build its `Table`s from it too, and a
 * deployed table and one made by `ensureTables` (local mode, tests) always have the same keys. Every table has a single string
 * partition key and no sort key, except the timer index, which also has a string sort key so
 * that the delay sweep can Query the timers of one time bucket. Each item is read and written
 * alone, by conditional single-item writes, because the embedded server has no transactions.
 * Adding a table is one entry below.
 */
import {
  CreateTableCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { SkyrocketError } from '../core/errors.ts';

/** A key attribute, in the shape CDK's `Attribute` takes (`AttributeType.STRING` is `'S'`). */
export interface KeyAttribute {
  readonly name: string;
  readonly type: 'S' | 'N' | 'B';
}

export interface TableDefinition {
  /** What follows the deployment prefix in the table name: `brokers` in `skyrocket-dev-brokers`. */
  readonly suffix: string;
  readonly partitionKey: KeyAttribute;
  /** Only for tables read by Query over a partition (the timer index). @default none */
  readonly sortKey?: KeyAttribute;
}

export const tableDefinitions = {
  /** One item per broker process: group, address, role, epoch, heartbeat expiry. */
  brokers: { suffix: 'brokers', partitionKey: { name: 'brokerId', type: 'S' } },
  /** One item per topic: type, permissions, retention, and which broker group holds each queue. */
  topics: { suffix: 'topics', partitionKey: { name: 'name', type: 'S' } },
  /** One item per consumer group: mode, ordering, max delivery attempts. */
  groups: { suffix: 'groups', partitionKey: { name: 'name', type: 'S' } },
  /** One item per API key, keyed by the key's SHA-256, so authentication is one GetItem. */
  principals: { suffix: 'principals', partitionKey: { name: 'keyHash', type: 'S' } },
  /** One item per broker group: the leader lease (holder, epoch, expiry). Never deleted. */
  leases: { suffix: 'leases', partitionKey: { name: 'brokerGroup', type: 'S' } },
  /** One item per registered producer group: how its transactions are checked back (transactions.ts). */
  producerGroups: { suffix: 'producer-groups', partitionKey: { name: 'name', type: 'S' } },
  /** One item per unresolved half message, for the txn-check sweep (transactions.ts). */
  transactions: { suffix: 'transactions', partitionKey: { name: 'txId', type: 'S' } },
  /**
   * Far-term delayed messages, parked until the delay sweep moves them into their broker's timing
   * wheel, and the sweep's watermark (`namesrv/timers.ts` draws the item layout).
   */
  timers: { suffix: 'timers', partitionKey: { name: 'pk', type: 'S' }, sortKey: { name: 'sk', type: 'S' } },
} as const satisfies Record<string, TableDefinition>;

export type TableKind = keyof typeof tableDefinitions;
export type TableNames = { readonly [K in TableKind]: string };

const tableKinds = Object.keys(tableDefinitions) as TableKind[];

// DynamoDB's own rule for table names: 3 to 255 characters of [a-zA-Z0-9_.-].
const tableNamePattern = /^[a-zA-Z0-9_.-]{3,255}$/;

/**
 * The full table names of a deployment: the prefix followed by each table's suffix.
 * @throws SkyrocketError INVALID_ARGUMENT when the prefix would make an illegal table name.
 */
export function tableNames(prefix: string): TableNames {
  const names = Object.fromEntries(tableKinds.map((kind) => [kind, prefix + tableDefinitions[kind].suffix]));
  for (const name of Object.values(names)) {
    if (!tableNamePattern.test(name)) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'table prefix may only contain letters, digits and _.-', {
        field: 'prefix',
      });
    }
  }
  return names as TableNames;
}

/** The CreateTable request for one table; on-demand billing, as the deployed stack uses. */
export function createTableInput(tableName: string, definition: TableDefinition): CreateTableCommandInput {
  const key = definition.partitionKey;
  const sort = definition.sortKey;
  return {
    TableName: tableName,
    KeySchema: [{ AttributeName: key.name, KeyType: 'HASH' }, ...(sort === undefined ? [] : [{ AttributeName: sort.name, KeyType: 'RANGE' as const }])],
    AttributeDefinitions: [
      { AttributeName: key.name, AttributeType: key.type },
      ...(sort === undefined ? [] : [{ AttributeName: sort.name, AttributeType: sort.type }]),
    ],
    BillingMode: 'PAY_PER_REQUEST',
  };
}

export interface EnsureTablesOptions {
  /**
   * How long to wait for a table to become ACTIVE.
   * @default 120 (seconds; real DynamoDB takes a few seconds, dynalite none)
   */
  maxWaitSeconds?: number;
}

/**
 * Creates the deployment's tables that do not exist yet and waits until all are ACTIVE. Safe to
 * call from several processes at once: a table another caller is creating is simply awaited.
 */
export async function ensureTables(
  client: DynamoDBClient,
  prefix: string,
  options: EnsureTablesOptions = {},
): Promise<TableNames> {
  const names = tableNames(prefix);
  const maxWaitTime = options.maxWaitSeconds ?? 120;
  await Promise.all(
    tableKinds.map(async (kind) => {
      try {
        await client.send(new CreateTableCommand(createTableInput(names[kind], tableDefinitions[kind])));
      } catch (error) {
        // The table exists or is being created: both are what we want.
        if (!(error instanceof Error && error.name === 'ResourceInUseException')) {
          throw new SkyrocketError('SERVICE_UNAVAILABLE', `could not create table ${names[kind]}`, { cause: error });
        }
      }
      // The waiter polls DescribeTable at once, then backs off from 50 ms: dynalite makes a
      // table ACTIVE within milliseconds, DynamoDB within seconds.
      try {
        await waitUntilTableExists({ client, maxWaitTime, minDelay: 0.05, maxDelay: 5 }, { TableName: names[kind] });
      } catch (error) {
        throw new SkyrocketError('SERVICE_UNAVAILABLE', `table ${names[kind]} did not become ACTIVE`, { cause: error });
      }
    }),
  );
  return names;
}
