import * as http from 'node:http';
import * as https from 'node:https';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

/**
 * How one synchronous invocation ended, as the dispatcher acts on it:
 *
 * | kind             | what happened                                          | the batch          |
 * |------------------|--------------------------------------------------------|--------------------|
 * | `ok`             | the function returned (its payload)                     | acked / per item   |
 * | `function-error` | the function threw, or Lambda refused the payload size  | retried whole      |
 * | `timeout`        | the function (or the call) ran past its time            | retried whole      |
 * | `throttled`      | 429 and kin: the function did not run                   | held, invoked again|
 * | `unavailable`    | network, 5xx, or a 4xx about the function (not found,   | held, invoked again|
 * |                  | access denied): it did not run, or may not have         |                    |
 * | `aborted`        | the dispatcher is stopping                              | left in flight     |
 *
 * "Held" batches keep their delivery attempt: only an invocation that reached the function counts
 * against the group's `maxDeliveryAttempts`.
 */
export type InvokeOutcome =
  | { kind: 'ok'; payload: Uint8Array }
  | { kind: 'function-error'; errorType: string; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'throttled'; message: string }
  | { kind: 'unavailable'; message: string; misconfigured: boolean }
  | { kind: 'aborted' };

/** The Lambda Invoke call, behind an interface so the dispatcher does not know the SDK. */
export interface LambdaInvoker {
  invoke(functionName: string, payload: Uint8Array, signal: AbortSignal): Promise<InvokeOutcome>;
  close(): void;
}

export interface SdkLambdaInvokerOptions {
  region: string;
  /** @default the SDK's regional endpoint */
  endpoint?: string | undefined;
  /** The longest one invocation may take. */
  timeoutMs: number;
  /** @default 5000 */
  connectTimeoutMs?: number;
  /** Sockets kept to the endpoint: at least the concurrency of all subscriptions. @default 256 */
  maxSockets?: number;
}

/** Error names (restJson1 `x-amzn-errortype`) that mean "not now, the function did not run". */
const throttleErrors = new Set([
  'TooManyRequestsException',
  'EC2ThrottledException',
  'ResourceNotReadyException',
  'ResourceConflictException',
  'ThrottlingException',
]);

/**
 * Invokes with `@aws-sdk/client-lambda` (`RequestResponse`). Region and credentials come the usual
 * AWS way (AWS_REGION, the task role, AWS_ACCESS_KEY_ID…). The SDK's own retries are off: the
 * dispatcher decides what a throttle or an error means for the batch and when to try again.
 */
export class SdkLambdaInvoker implements LambdaInvoker {
  readonly #client: LambdaClient;

  constructor(options: SdkLambdaInvokerOptions) {
    const maxSockets = options.maxSockets ?? 256;
    this.#client = new LambdaClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      maxAttempts: 1,
      requestHandler: {
        requestTimeout: options.timeoutMs,
        connectionTimeout: options.connectTimeoutMs ?? 5_000,
        httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
        httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
      },
    });
  }

  async invoke(functionName: string, payload: Uint8Array, signal: AbortSignal): Promise<InvokeOutcome> {
    try {
      const out = await this.#client.send(
        new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: payload }),
        { abortSignal: signal },
      );
      if (out.FunctionError !== undefined) return functionError(out.Payload);
      return { kind: 'ok', payload: out.Payload ?? new Uint8Array() };
    } catch (error) {
      return classifyInvokeError(error, signal);
    }
  }

  close(): void {
    this.#client.destroy();
  }
}

/** Reads Lambda's error payload `{errorType, errorMessage}`; a timed-out sandbox is a timeout. */
function functionError(payload: Uint8Array | undefined): InvokeOutcome {
  let errorType = 'Unhandled';
  let message = '';
  try {
    const body = JSON.parse(Buffer.from(payload ?? new Uint8Array()).toString('utf8')) as { errorType?: unknown; errorMessage?: unknown };
    if (typeof body.errorType === 'string') errorType = body.errorType;
    if (typeof body.errorMessage === 'string') message = body.errorMessage;
  } catch {
    // An error payload that is not JSON still is a function error.
  }
  if (errorType === 'Sandbox.Timedout' || /Task timed out after/.test(message)) return { kind: 'timeout', message: message || errorType };
  return { kind: 'function-error', errorType, message };
}

/** Sorts an exception of the SDK call into an outcome. */
export function classifyInvokeError(error: unknown, signal?: AbortSignal): InvokeOutcome {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? 'Error';
  const message = `${name}: ${e?.message ?? String(error)}`;
  if (signal?.aborted === true || name === 'AbortError') return { kind: 'aborted' };
  const status = e?.$metadata?.httpStatusCode;
  if (throttleErrors.has(name) || status === 429) return { kind: 'throttled', message };
  if (name === 'RequestTooLargeException' || status === 413) return { kind: 'function-error', errorType: name, message };
  if (name === 'TimeoutError') {
    // The SDK's connection timeout means the request never left; its request timeout means
    // the function ran (or runs) for too long.
    if (/without establishing a connection/i.test(e?.message ?? '')) return { kind: 'unavailable', message, misconfigured: false };
    return { kind: 'timeout', message };
  }
  if (status !== undefined && status >= 400 && status < 500) return { kind: 'unavailable', message, misconfigured: true };
  return { kind: 'unavailable', message, misconfigured: false };
}
