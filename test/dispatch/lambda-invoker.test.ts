/**
 * The dispatcher's invoker (the real `@aws-sdk/client-lambda` path) against the local Invoke
 * endpoint: every outcome the dispatcher acts on, over a real socket.
 */
import * as path from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SdkLambdaInvoker } from '../../broker-fargate/src/dispatch/index.ts';
import { FolderFunctions, InlineFunctions, LocalLambdaServer } from '../../lambdas/local-invoke/index.ts';

const functions = new InlineFunctions({
  echo: async (event) => ({ got: event }),
  nothing: async () => undefined,
  boom: async () => {
    throw new TypeError('bad record');
  },
  slow: { handler: () => new Promise((resolve) => setTimeout(resolve, 2_000)), timeoutMs: 100 },
  single: { handler: () => new Promise((resolve) => setTimeout(() => resolve('done'), 300)), reservedConcurrency: 1 },
});
let server: LocalLambdaServer;
let invoker: SdkLambdaInvoker;
const never = new AbortController().signal;

beforeAll(async () => {
  server = await LocalLambdaServer.start({ functions });
  invoker = new SdkLambdaInvoker({ region: 'us-east-1', endpoint: server.url, timeoutMs: 5_000 });
  process.env['AWS_ACCESS_KEY_ID'] ??= 'local';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'local';
});

afterAll(async () => {
  invoker?.close();
  await server?.close();
});

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

describe('local Lambda endpoint through the SDK', () => {
  it('returns the handler result, by name and by ARN', async () => {
    const byName = await invoker.invoke('echo', json({ a: 1 }), never);
    expect(byName.kind).toBe('ok');
    expect(JSON.parse(text((byName as { payload: Uint8Array }).payload))).toEqual({ got: { a: 1 } });
    const byArn = await invoker.invoke('arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST', json([1]), never);
    expect(JSON.parse(text((byArn as { payload: Uint8Array }).payload))).toEqual({ got: [1] });
    const empty = await invoker.invoke('nothing', json({}), never);
    expect(empty.kind === 'ok' && text(empty.payload)).toBe('null');
  });

  it('reports a thrown error as a function error, and a timeout as a timeout', async () => {
    expect(await invoker.invoke('boom', json({}), never)).toEqual({ kind: 'function-error', errorType: 'TypeError', message: 'bad record' });
    const slow = await invoker.invoke('slow', json({}), never);
    expect(slow).toMatchObject({ kind: 'timeout' });
    expect(server.stats('slow').timeouts).toBe(1);
    // The raw SDK sees Lambda's headers.
    const client = new LambdaClient({ region: 'us-east-1', endpoint: server.url, maxAttempts: 1 });
    const out = await client.send(new InvokeCommand({ FunctionName: 'boom', Payload: json({}) }));
    client.destroy();
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    expect(out.ExecutedVersion).toBe('$LATEST');
  });

  it('throttles with 429 TooManyRequestsException: past reserved concurrency, and on demand', async () => {
    const [first, second] = await Promise.all([invoker.invoke('single', json({}), never), invoker.invoke('single', json({}), never)]);
    expect([first.kind, second.kind].sort()).toEqual(['ok', 'throttled']);
    expect([first, second].find((o) => o.kind === 'throttled')).toMatchObject({ message: expect.stringContaining('TooManyRequestsException') });
    server.throttle('echo', 200);
    expect((await invoker.invoke('echo', json({}), never)).kind).toBe('throttled');
    await new Promise((r) => setTimeout(r, 250));
    expect((await invoker.invoke('echo', json({}), never)).kind).toBe('ok');
  });

  it('says unavailable for an unknown function or an endpoint that is down, and aborted on abort', async () => {
    expect(await invoker.invoke('missing', json({}), never)).toMatchObject({ kind: 'unavailable', misconfigured: true });
    const down = new SdkLambdaInvoker({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1', timeoutMs: 1_000 });
    expect(await down.invoke('echo', json({}), never)).toMatchObject({ kind: 'unavailable', misconfigured: false });
    down.close();
    const abort = new AbortController();
    const pending = invoker.invoke('slow', json({}), abort.signal);
    setTimeout(() => abort.abort(), 20);
    expect(await pending).toEqual({ kind: 'aborted' });
  });

  it('serves modules from a folder: the example consumer', async () => {
    const folder = new FolderFunctions(path.resolve(import.meta.dirname, '../../lambdas/examples'));
    expect(folder.list()).toContain('order-logger');
    expect(await folder.get('../etc/passwd')).toBeUndefined();
    const local = await LocalLambdaServer.start({ functions: folder });
    const client = new SdkLambdaInvoker({ region: 'us-east-1', endpoint: local.url, timeoutMs: 5_000 });
    try {
      const record = {
        messageId: 'm1', topic: 't', queueId: 0, queueOffset: 0, body: '{"orderId":"o-1","amount":5}', bodyEncoding: 'utf8',
        tag: null, keys: [], properties: {}, deliveryAttempt: 1, bornAt: 0, storedAt: 0,
      };
      const bad = { ...record, messageId: 'm2', body: 'not json' };
      const out = await client.invoke('order-logger', json({ eventSource: 'skyrocket', eventVersion: 1, group: 'g', topic: 't', brokerGroup: 'b', records: [record, bad] }), never);
      expect(out.kind === 'ok' && JSON.parse(text(out.payload))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    } finally {
      client.close();
      await local.close();
    }
  });
});
