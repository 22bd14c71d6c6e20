/**
 * The AWS side of the benchmark's Skyrocket cluster, in a process of its own so that its CPU and
 * memory are not counted as the broker's (in production this is DynamoDB and S3, not a process on
 * the broker's machine): the embedded DynamoDB and S3 stand-ins of `skyrocket dev`, the name-server
 * tables, and an admin principal.
 *
 * Arguments: the data directory, the table prefix. Reports `{ dynamodb, apiKey }` over IPC once ready, or
 * `{ error }`; stops when the IPC channel closes.
 */
import assert from 'node:assert/strict';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  NameServer,
  dynamoClientConfig,
  ensureTables,
  generateApiKey,
  startEmbeddedServers,
  type AwsEndpoint,
} from '../../namesrv/index.ts';

export type AwsProcessMessage = { dynamodb: AwsEndpoint; apiKey: string } | { error: string };

const [dataDir, tablePrefix] = process.argv.slice(2);
assert(dataDir !== undefined && tablePrefix !== undefined, 'usage: skyrocket-aws <data dir> <table prefix>');
assert(process.send !== undefined, 'skyrocket-aws must be started with an IPC channel');
const report = (message: AwsProcessMessage): void => void process.send!(message);

try {
  const servers = await startEmbeddedServers({ dataDir, host: '127.0.0.1' });
  process.once('disconnect', () => void servers.stop());
  const dynamo = new DynamoDBClient(dynamoClientConfig(servers.dynamodb));
  await ensureTables(dynamo, tablePrefix);
  const apiKey = generateApiKey();
  await new NameServer({ client: dynamo, prefix: tablePrefix }).ensurePrincipal({ name: 'bench', permissions: { admin: true }, apiKey });
  dynamo.destroy();
  report({ dynamodb: servers.dynamodb, apiKey });
} catch (error) {
  report({ error: error instanceof Error ? error.message : String(error) });
  process.disconnect();
}
