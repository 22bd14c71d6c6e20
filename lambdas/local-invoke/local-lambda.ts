/**
 * A local stand-in for the Lambda Invoke API, so that the brokers' dispatcher runs its real
 * `@aws-sdk/client-lambda` path against handlers in the repository (DESIGN.md, "Local mode").
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=…]
 *     X-Amz-Invocation-Type: RequestResponse (default) | Event | DryRun
 *     body: the JSON payload
 *
 *   200  the handler's result as JSON (`null` for undefined), X-Amz-Executed-Version: $LATEST
 *   200  + X-Amz-Function-Error: Unhandled, body {errorType, errorMessage, trace}: the handler
 *        threw, or ran past its timeout (errorType "Sandbox.Timedout")
 *   202  Event: accepted, run in the background;  204  DryRun: the function exists
 *   400  InvalidRequestContentException: the payload is not JSON
 *   404  ResourceNotFoundException: no such function
 *   413  RequestTooLargeException: payload over 6 MB
 *   429  TooManyRequestsException (Reason ReservedFunctionConcurrentInvocationLimitExceeded):
 *        past the function's reserved concurrency, or while `throttle()` says so
 *
 * Errors are restJson1 errors, as the SDK reads them: the type in `x-amzn-errortype`, the details
 * in a JSON body. FunctionName may be a name, a partial ARN or a full ARN; the qualifier is
 * ignored ($LATEST is the only version). Authentication headers are accepted and not checked.
 *
 * Handlers run in this process, on its event loop, not in workers: they are the repository's
 * own code, tests can watch what they do (counters, gates) without any message passing, and a
 * handler's `import`s resolve through the same loader (tsx in `skyrocket dev`, Vite in vitest).
 * The price is isolation: a handler that blocks the event loop blocks the endpoint, and one that
 * runs past its timeout is answered as timed out but keeps running in the background.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FunctionSource, LocalContext, LocalFunction } from './function-source.ts';

export const localLambdaDefaults = {
  timeoutMs: 30_000,
  /** Lambda's limit for a synchronous invocation's request payload: 6 MB. */
  payloadMaxBytes: 6 * 1024 * 1024,
  region: 'us-east-1',
  accountId: '000000000000',
} as const;

export interface LocalLambdaOptions {
  functions: FunctionSource;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** Told about each invocation that failed, for logs. @default none */
  onError?: (functionName: string, error: unknown) => void;
}

/** What the endpoint did with one function's invocations since it started. */
export interface InvocationStats {
  invocations: number;
  /** Answered 429. */
  throttled: number;
  /** Handler threw or timed out. */
  errors: number;
  timeouts: number;
  /** Invocations running now, and the most seen at once. */
  running: number;
  maxRunning: number;
}

const invokePath = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

export class LocalLambdaServer {
  readonly #functions: FunctionSource;
  readonly #server: http.Server;
  readonly #onError: LocalLambdaOptions['onError'];
  readonly #stats = new Map<string, InvocationStats>();
  readonly #throttledUntil = new Map<string, number>();
  #url = '';

  private constructor(options: LocalLambdaOptions) {
    this.#functions = options.functions;
    this.#onError = options.onError;
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 65_000;
  }

  static async start(options: LocalLambdaOptions): Promise<LocalLambdaServer> {
    const server = new LocalLambdaServer(options);
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(options.port ?? 0, host, () => resolve());
    });
    server.#url = `http://${host}:${(server.#server.address() as AddressInfo).port}`;
    return server;
  }

  /** Where the SDK's `endpoint` should point (SKYROCKET_LAMBDA_ENDPOINT). */
  get url(): string {
    return this.#url;
  }

  /** Answers every invocation of `functionName` with 429 for the next `durationMs`. */
  throttle(functionName: string, durationMs: number): void {
    this.#throttledUntil.set(functionName, Date.now() + durationMs);
  }

  stats(functionName: string): InvocationStats {
    let s = this.#stats.get(functionName);
    if (s === undefined) {
      s = { invocations: 0, throttled: 0, errors: 0, timeouts: 0, running: 0, maxRunning: 0 };
      this.#stats.set(functionName, s);
    }
    return s;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://lambda');
      const match = invokePath.exec(url.pathname);
      if (match === null) {
        sendError(res, 404, 'UnknownOperationException', 'only Invoke (POST /2015-03-31/functions/{name}/invocations) is served here');
        return;
      }
      if (req.method !== 'POST') {
        sendError(res, 405, 'UnknownOperationException', `method ${req.method} is not allowed`);
        return;
      }
      const name = functionNameOf(decodeURIComponent(match[1] as string));
      const body = await readBody(req, localLambdaDefaults.payloadMaxBytes);
      if (body === undefined) {
        sendError(res, 413, 'RequestTooLargeException', `Request must be smaller than ${localLambdaDefaults.payloadMaxBytes} bytes for the InvokeFunction operation`);
        return;
      }
      const fn = await this.#functions.get(name).catch((error: unknown) => {
        this.#onError?.(name, error);
        return error instanceof Error ? error : new Error(String(error));
      });
      if (fn === undefined) {
        sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${arn(name)}`);
        return;
      }
      let event: unknown = null;
      if (body.length > 0) {
        try {
          event = JSON.parse(body.toString('utf8'));
        } catch {
          sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
          return;
        }
      }
      const type = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
      if (type === 'DryRun') {
        res.writeHead(204).end();
        return;
      }
      const stats = this.stats(name);
      const reserved = fn instanceof Error ? undefined : fn.reservedConcurrency;
      if ((this.#throttledUntil.get(name) ?? 0) > Date.now() || (reserved !== undefined && stats.running >= reserved)) {
        stats.throttled++;
        sendError(res, 429, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' });
        return;
      }
      if (type === 'Event') {
        res.writeHead(202, { 'x-amzn-requestid': randomUUID() }).end();
        void this.#run(name, fn, event);
        return;
      }
      if (type !== 'RequestResponse') {
        sendError(res, 400, 'InvalidParameterValueException', `unknown invocation type ${type}`);
        return;
      }
      const outcome = await this.#run(name, fn, event);
      const headers: http.OutgoingHttpHeaders = {
        'content-type': 'application/json',
        'x-amz-executed-version': '$LATEST',
        'x-amzn-requestid': outcome.requestId,
      };
      if (outcome.error !== undefined) headers['x-amz-function-error'] = 'Unhandled';
      const payload = JSON.stringify(outcome.error ?? outcome.result ?? null);
      res.writeHead(200, headers).end(payload);
    } catch (error) {
      if (!res.headersSent) sendError(res, 500, 'ServiceException', (error as Error).message);
      else res.destroy();
    }
  }

  async #run(
    name: string,
    fn: LocalFunction | Error,
    event: unknown,
  ): Promise<{ requestId: string; result?: unknown; error?: { errorType: string; errorMessage: string; trace: string[] } }> {
    const requestId = randomUUID();
    const stats = this.stats(name);
    stats.invocations++;
    stats.running++;
    stats.maxRunning = Math.max(stats.maxRunning, stats.running);
    try {
      if (fn instanceof Error) throw fn; // the module did not load: Lambda reports an init error the same way
      const timeoutMs = fn.timeoutMs ?? localLambdaDefaults.timeoutMs;
      const deadline = Date.now() + timeoutMs;
      const context: LocalContext = {
        functionName: name,
        functionVersion: '$LATEST',
        invokedFunctionArn: arn(name),
        memoryLimitInMB: '128',
        awsRequestId: requestId,
        logGroupName: `/aws/lambda/${name}`,
        logStreamName: `local/${requestId}`,
        getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      };
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`)), timeoutMs);
      });
      try {
        const result = await Promise.race([Promise.resolve().then(() => fn.handler(event, context)), timedOut]);
        return { requestId, result };
      } finally {
        clearTimeout(timer);
      }
    } catch (error) {
      stats.errors++;
      if (error instanceof TimeoutError) stats.timeouts++;
      this.#onError?.(name, error);
      const e = error instanceof Error ? error : new Error(String(error));
      return {
        requestId,
        error: {
          errorType: e instanceof TimeoutError ? 'Sandbox.Timedout' : e.name,
          errorMessage: e.message,
          trace: (e.stack ?? '').split('\n'),
        },
      };
    } finally {
      stats.running--;
    }
  }
}

class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** The function name of a name, a partial ARN (`123456789012:function:name`) or a full ARN, without qualifier. */
export function functionNameOf(reference: string): string {
  const parts = reference.split(':');
  const at = parts.indexOf('function');
  if (at >= 0 && parts[at + 1] !== undefined) return parts[at + 1] as string;
  return parts[0] as string; // `name` or `name:qualifier`
}

function arn(name: string): string {
  return `arn:aws:lambda:${localLambdaDefaults.region}:${localLambdaDefaults.accountId}:function:${name}`;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** A restJson1 error, as the AWS SDK parses it. */
function sendError(res: http.ServerResponse, status: number, type: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ Type: 'User', message, ...extra });
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type, 'x-amzn-requestid': randomUUID() }).end(body);
}

/** The request body, or undefined when it is over `limitBytes` (the rest is drained). */
function readBody(req: http.IncomingMessage, limitBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limitBytes) over = true;
      if (!over) chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
