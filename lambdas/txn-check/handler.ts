/**
 * The `txn-check` Lambda function: scheduled by EventBridge every minute, one sweep per call
 * (txn-check.ts). Configuration comes from the environment:
 *
 *   SKYROCKET_TABLE_PREFIX        the deployment's table prefix (required)
 *   SKYROCKET_INTERNAL_SECRET_ARN the brokers' internal secret in Secrets Manager (in AWS), or
 *   SKYROCKET_INTERNAL_SECRET     the secret itself (local runs)
 *   SKYROCKET_DYNAMODB_ENDPOINT   a DynamoDB endpoint other than AWS's (local runs)
 *   AWS_REGION                    set by Lambda
 *
 * The clients are made on the first call and kept while the execution environment lives, as
 * Lambda functions do to reuse connections.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { pino } from 'pino';
import { NameServer, TransactionTables } from '../../namesrv/index.ts';
import { withInternalSecret } from '../shared/internal-secret.ts';
import { TransactionChecker, lambdaInvoker, type TransactionCheckerOptions, type TxnCheckSummary } from './txn-check.ts';

let checker: TransactionChecker | undefined;

export async function handler(_event?: unknown): Promise<TxnCheckSummary> {
  checker ??= checkerFromEnvironment(await withInternalSecret(process.env));
  return checker.run();
}

/** A checker wired from environment variables (see the file comment). */
export function checkerFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  extra: Partial<TransactionCheckerOptions> = {},
): TransactionChecker {
  const prefix = env['SKYROCKET_TABLE_PREFIX'];
  const internalSecret = env['SKYROCKET_INTERNAL_SECRET'];
  if (prefix === undefined || prefix === '') throw new Error('SKYROCKET_TABLE_PREFIX is required');
  if (internalSecret === undefined || internalSecret.length < 16) throw new Error('SKYROCKET_INTERNAL_SECRET is required (at least 16 characters)');
  const region = env['AWS_REGION'] || 'us-east-1';
  const endpoint = env['SKYROCKET_DYNAMODB_ENDPOINT'] || undefined;
  const dynamo = new DynamoDBClient({ region, ...(endpoint === undefined ? {} : { endpoint }) });
  return new TransactionChecker({
    tables: new TransactionTables({ client: dynamo, prefix }),
    brokers: new NameServer({ client: dynamo, prefix }),
    internalSecret,
    invokeLambda: lambdaInvoker(new LambdaClient({ region })),
    log: pino({ base: { fn: 'txn-check' } }),
    ...extra,
  });
}
