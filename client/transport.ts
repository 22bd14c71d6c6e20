import * as http from 'node:http';
import * as https from 'node:https';

/**
 * How the SDK sends one HTTP request: through `node:http`/`node:https` with keep-alive agents by
 * default, or through a caller's `fetch` (to count, trace or fault-inject requests).
 *
 * node:http is the default because it is what the SDK's hot paths measured fastest with: a
 * coalesced send or a receive costs the client about a third of what the same request costs
 * through `fetch` (undici's web-streams body handling and per-request AbortSignals), and the
 * bodies stay Buffers end to end.
 */
export interface Exchange {
  method: string;
  /** The endpoint, without a trailing slash: `https://mq.example.com` or `http://host:port/prefix`. */
  base: string;
  /** Path and query below the endpoint: `/v1/topics`. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Why an exchange failed without an answer; `#failure` in the client turns it into an error. */
export class ExchangeFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'aborted' | 'network',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type Transport = (exchange: Exchange) => Promise<Answer>;

// Free sockets are closed after 30 s, well before the broker's keep-alive timeout (65 s) and a
// load balancer's idle timeout, so a request never goes out on a socket the other end is closing.
const agentOptions: http.AgentOptions = { keepAlive: true, timeout: 30_000, scheduling: 'lifo' };
let httpAgent: http.Agent | undefined;
let httpsAgent: https.Agent | undefined;

/**
 * The node:http transport. Clients share one keep-alive agent per protocol; a client that trusts
 * its own certificate authorities (`ca`) gets an HTTPS agent of its own.
 */
export function nodeTransport(options: { ca?: string | Buffer | Array<string | Buffer> | undefined } = {}): Transport {
  const ownHttps = options.ca === undefined ? undefined : new https.Agent({ ...agentOptions, ca: options.ca });
  // The endpoint parsed once, not per request (a client talks to one endpoint).
  let base: string | undefined;
  let url: URL | undefined;
  return (x) => {
    if (x.base !== base || url === undefined) {
      url = new URL(x.base);
      base = x.base;
    }
    return exchange(x, url, ownHttps);
  };
}

function exchange(x: Exchange, url: URL, ownHttps: https.Agent | undefined): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const agent = secure ? (ownHttps ?? (httpsAgent ??= new https.Agent(agentOptions))) : (httpAgent ??= new http.Agent(agentOptions));
    const headers: Record<string, string | number> = { ...x.headers };
    if (x.body !== undefined) headers['content-length'] = typeof x.body === 'string' ? Buffer.byteLength(x.body) : x.body.length;
    let settled = false;
    const finish = (error: Error | undefined, answer?: Answer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      x.signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) reject(error);
      else resolve(answer as Answer);
    };
    const req = (secure ? https : http).request(
      { protocol: url.protocol, hostname: url.hostname, port: url.port, path: `${url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')}${x.path}`, method: x.method, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
          }),
        );
        res.on('error', (error) => finish(new ExchangeFailure('network', error.message, { cause: error })));
        res.on('aborted', () => finish(new ExchangeFailure('network', 'the answer was cut off')));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => finish(new ExchangeFailure('network', error.code ?? error.message, { cause: error })));
    const timer = setTimeout(() => {
      const failure = new ExchangeFailure('timeout', `no answer within ${x.timeoutMs} ms`);
      finish(failure);
      req.destroy(failure);
    }, x.timeoutMs);
    const onAbort = (): void => {
      const failure = new ExchangeFailure('aborted', 'aborted', { cause: x.signal?.reason });
      finish(failure);
      req.destroy(failure);
    };
    if (x.signal !== undefined) {
      if (x.signal.aborted) {
        onAbort();
        return;
      }
      x.signal.addEventListener('abort', onAbort, { once: true });
    }
    req.end(x.body);
  });
}

/** A transport over a `fetch` function. */
export function fetchTransport(fetchFn: typeof globalThis.fetch): Transport {
  return async (x) => {
    const timeout = AbortSignal.timeout(x.timeoutMs);
    const init: RequestInit = {
      method: x.method,
      headers: x.headers,
      signal: x.signal === undefined ? timeout : AbortSignal.any([timeout, x.signal]),
    };
    if (x.body !== undefined) init.body = x.body;
    try {
      const response = await fetchFn(`${x.base}${x.path}`, init);
      return {
        status: response.status,
        contentType: response.headers.get('content-type') ?? '',
        body: Buffer.from(await response.arrayBuffer()),
      };
    } catch (error) {
      if (x.signal?.aborted === true) throw new ExchangeFailure('aborted', 'aborted', { cause: error });
      if (timeout.aborted) throw new ExchangeFailure('timeout', `no answer within ${x.timeoutMs} ms`, { cause: error });
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new ExchangeFailure('network', cause?.code ?? cause?.message ?? (error as Error).message, { cause: error });
    }
  };
}
