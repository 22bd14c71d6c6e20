/**
 * The Lambda side of `skyrocket dev`: the local Invoke endpoint over a folder of handlers, and
 * the sample consumer that `--example` wires in.
 */
import * as path from 'node:path';
import { FolderFunctions } from './function-source.ts';
import { LocalLambdaServer } from './local-lambda.ts';

/** Where `skyrocket dev` finds functions unless told otherwise: the repository's examples. */
export const defaultFunctionsDir = path.resolve(import.meta.dirname, '../examples');

/** What `skyrocket dev --example` creates. */
export const example = {
  topic: 'example-orders',
  group: 'example-order-logger',
  functionName: 'order-logger',
  queues: 4,
  maxDeliveryAttempts: 3,
  batchSize: 10,
  maxConcurrency: 2,
} as const;

export async function startDevLambda(options: {
  functionsDir: string;
  host: string;
  port?: number;
  onError: (functionName: string, error: unknown) => void;
}): Promise<{ server: LocalLambdaServer; functions: FolderFunctions }> {
  const functions = new FolderFunctions(options.functionsDir);
  const server = await LocalLambdaServer.start({ functions, host: options.host, port: options.port ?? 0, onError: options.onError });
  return { server, functions };
}

/**
 * Creates the example topic, group and Lambda subscription through the REST API; what exists
 * already is kept, so a restart changes nothing. Throws with the API's message on failure.
 */
export async function setupExample(endpoint: string, apiKey: string): Promise<void> {
  const call = async (method: string, pathname: string, body: unknown, okStatuses: number[]): Promise<void> => {
    const response = await fetch(`${endpoint}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!okStatuses.includes(response.status)) {
      const text = await response.text();
      throw new Error(`${method} ${pathname} answered ${response.status}: ${text}`);
    }
    await response.arrayBuffer().catch(() => undefined);
  };
  await call('POST', '/v1/topics', { name: example.topic, queues: example.queues }, [201, 409]);
  await call('POST', '/v1/groups', { name: example.group, maxDeliveryAttempts: example.maxDeliveryAttempts }, [201, 409]);
  await call(
    'PUT',
    `/v1/groups/${example.group}/lambda-subscriptions/${example.topic}`,
    { functionName: example.functionName, batchSize: example.batchSize, maxConcurrency: example.maxConcurrency },
    [200],
  );
}
