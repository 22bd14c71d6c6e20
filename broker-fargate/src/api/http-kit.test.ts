import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../../core/errors.ts';
import fc from 'fast-check';
import { readBody, readJson, requestTarget, Router, sendError, sendJson, toSkyrocketError, type Handler } from './http-kit.ts';

const noop: Handler = async () => undefined;

describe('requestTarget', () => {
  it('reads any target as new URL(target, base) does: pathname, search and the query parameters', () => {
    const unit = fc.constantFrom('/', 'a', 'Z', '9', '-', '.', '_', '~', '%', '2', 'F', '?', '&', '=', '#', ' ', '\\', 'é', '+', ':', '@', '..');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 30 }), (tail) => {
        for (const target of [`/${tail}`, `/v1/topics/${tail}`, tail]) {
          if (target.startsWith('//')) continue; // URL reads a host there; see below
          let expected: URL;
          try {
            expected = new URL(target, 'http://broker');
          } catch {
            expect(() => requestTarget(target)).toThrow(); // as before: not a target URL can read
            continue;
          }
          const got = requestTarget(target);
          expect([got.pathname, got.search, [...got.searchParams]]).toEqual([expected.pathname, expected.search, [...expected.searchParams]]);
        }
      }),
      { numRuns: 2000 },
    );
    expect(requestTarget(undefined).pathname).toBe('/');
    // A path that starts with "//" is a path here, not a host: it matches no route (404), where
    // URL would have read "//evil/v1/topics" as host "evil" and path "/v1/topics".
    expect(requestTarget('//evil/v1/topics').pathname).toBe('//evil/v1/topics');
    expect(requestTarget('/v1/topics/a?max=3&max=4').searchParams.getAll('max')).toEqual(['3', '4']);
  });
});

describe('Router', () => {
  const topic: Handler = async () => undefined;
  const topicPut: Handler = async () => undefined;
  const message: Handler = async () => undefined;
  const router = new Router()
    .on('GET', '/v1/topics/:topic', topic)
    .on('PUT', '/v1/topics/:topic', topicPut)
    .on('GET', '/v1/topics/:topic/messages/:messageId', message)
    .on('POST', '/v1/groups/:group/ack', noop);

  it('matches literal parts and captures parameters', () => {
    expect(router.match('GET', '/v1/topics/orders')).toEqual({ handler: topic, params: { topic: 'orders' } });
    expect(router.match('PUT', '/v1/topics/orders')).toEqual({ handler: topicPut, params: { topic: 'orders' } });
    expect(router.match('GET', '/v1/topics/orders/messages/AB12')).toEqual({
      handler: message,
      params: { topic: 'orders', messageId: 'AB12' },
    });
  });

  it('percent-decodes parameters after splitting, so an encoded "/" stays inside one parameter', () => {
    expect(router.match('GET', '/v1/topics/a%2Fb%20c%25')).toMatchObject({ params: { topic: 'a/b c%' } });
    expect(router.match('GET', '/v1/topics/%E2%9C%93')).toMatchObject({ params: { topic: '✓' } });
    // Literal parts are compared as written, not decoded.
    expect(router.match('GET', '/v1/t%6Fpics/orders')).toBe('NOT_FOUND');
  });

  it('bad percent-encoding matches no route', () => {
    expect(router.match('GET', '/v1/topics/%E0%A4%A')).toBe('NOT_FOUND');
    expect(router.match('GET', '/v1/topics/%ZZ')).toBe('NOT_FOUND');
    expect(router.match('PUT', '/v1/topics/%')).toBe('NOT_FOUND');
  });

  it('tells METHOD_NOT_ALLOWED (path known) from NOT_FOUND (path unknown)', () => {
    expect(router.match('DELETE', '/v1/topics/orders')).toBe('METHOD_NOT_ALLOWED');
    expect(router.match('GET', '/v1/groups/g/ack')).toBe('METHOD_NOT_ALLOWED');
    expect(router.match('GET', '/v1/topics')).toBe('NOT_FOUND');
    expect(router.match('GET', '/v1/topics/orders/messages')).toBe('NOT_FOUND');
    expect(router.match('GET', '/v2/topics/orders')).toBe('NOT_FOUND');
    expect(router.match('GET', '/')).toBe('NOT_FOUND');
  });

  it('ignores empty path segments (trailing and doubled slashes)', () => {
    expect(router.match('GET', '/v1/topics/orders/')).toMatchObject({ params: { topic: 'orders' } });
    expect(router.match('GET', '//v1//topics/orders')).toMatchObject({ params: { topic: 'orders' } });
  });

  it('the first route registered wins when two patterns match', () => {
    const stats: Handler = async () => undefined;
    const r = new Router().on('GET', '/topics/stats', stats).on('GET', '/topics/:name', noop);
    expect(r.match('GET', '/topics/stats')).toEqual({ handler: stats, params: {} });
    expect(r.match('GET', '/topics/other')).toEqual({ handler: noop, params: { name: 'other' } });
  });
});

describe('bodies and errors over a real server', () => {
  let server: http.Server;
  let port: number;
  /** What the handler saw for the last request: the parsed body or the error it got. */
  type Outcome = { body?: unknown; error?: unknown };
  let settle: (o: Outcome) => void = () => undefined;
  let outcome: Promise<Outcome> = Promise.resolve({});
  let limitBytes = 100;
  let reader: (req: http.IncomingMessage, limit: number) => Promise<unknown> = readJson;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      void (async () => {
        try {
          const body = await reader(req, limitBytes);
          settle({ body });
          sendJson(res, 200, { ok: true });
        } catch (error) {
          settle({ error });
          sendError(res, error);
        }
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  interface Reply {
    status?: number;
    headers?: http.IncomingHttpHeaders;
    json?: unknown;
    clientError?: string;
  }

  /** Sends `chunks` as the body; chunked unless `contentLength` is given. */
  function post(chunks: Array<string | Buffer>, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
    outcome = new Promise((resolve) => (settle = resolve));
    return new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers, agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString();
          resolve({ status: res.statusCode, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) });
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => resolve({ clientError: error.code ?? error.message }));
      for (const c of chunks) req.write(c);
      req.end();
    });
  }

  async function expectError(code: string): Promise<SkyrocketError> {
    const { error } = await outcome;
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe(code);
    return error as SkyrocketError;
  }

  it('reads a JSON object, sent whole or in pieces', async () => {
    limitBytes = 100;
    reader = readJson;
    const reply = await post(['{"a":1,', '"b":[true,null],', '"c":"ü"}']);
    expect(reply.status).toBe(200);
    expect((await outcome).body).toEqual({ a: 1, b: [true, null], c: 'ü' });
    const exact = JSON.stringify({ x: 'y'.repeat(92) }); // exactly 100 bytes: at the limit is fine
    expect(Buffer.byteLength(exact)).toBe(100);
    expect((await post([exact], { 'content-length': 100 })).status).toBe(200);
    expect((await post([exact])).status).toBe(200);
  });

  it('malformed JSON is MALFORMED_JSON (400) with the error shape', async () => {
    limitBytes = 100;
    reader = readJson;
    for (const body of ['{"a":', 'not json', '', '{"a":1}}']) {
      const reply = await post([body]);
      expect((await expectError('MALFORMED_JSON')).message).toMatch(/not valid JSON/);
      expect(reply.status).toBe(400);
      expect(reply.headers?.['content-type']).toBe('application/json');
      expect(reply.json).toEqual({ error: { code: 'MALFORMED_JSON', message: expect.stringMatching(/^request body is not valid JSON/), retriable: false } });
    }
  });

  it('valid JSON that is not an object is MALFORMED_JSON', async () => {
    limitBytes = 100;
    reader = readJson;
    for (const body of ['[]', '[{"a":1}]', 'null', '42', '"text"', 'true']) {
      const reply = await post([body]);
      expect((await expectError('MALFORMED_JSON')).message).toBe('request body must be a JSON object');
      expect(reply.status).toBe(400);
    }
  });

  it('refuses a body over the limit by its Content-Length, before reading it, with a 413', async () => {
    limitBytes = 100;
    reader = readJson;
    const body = JSON.stringify({ x: 'y'.repeat(200) });
    const reply = await post([body], { 'content-length': Buffer.byteLength(body) });
    expect((await expectError('PAYLOAD_TOO_LARGE')).message).toMatch(/of 208 bytes exceeds 100/);
    expect(reply.status).toBe(413);
    expect(reply.json).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: expect.any(String), retriable: false } });
  });

  it('refuses a chunked body once the bytes streamed pass the limit', async () => {
    limitBytes = 100;
    reader = readBody;
    await post(['x'.repeat(60), 'x'.repeat(60)]);
    expect((await expectError('PAYLOAD_TOO_LARGE')).message).toMatch(/exceeds 100 bytes/);
    expect((await outcome).body).toBeUndefined();
  });

  // BUG (http-kit.ts, readBody line 72): on a streamed (chunked) body over the limit, readBody calls
  // req.destroy(), which destroys the socket, so the 413 that sendError then writes never reaches
  // the client: it sees ECONNRESET / "socket hang up". Clients (and the SDK) treat a reset as
  // retriable and send the same oversized body again, where a 413 (retriable: false) would stop
  // them. Fix: on overflow stop buffering and drain instead of destroying (`req.off('data', onData);
  // req.resume();`), and send the error with `Connection: close` so the socket goes after the reply.
  it('a chunked body over the limit gets a 413 reply, not a reset connection', async () => {
    limitBytes = 100;
    reader = readJson;
    const reply = await post(['{"x":"', 'x'.repeat(400), '"}']);
    await expectError('PAYLOAD_TOO_LARGE');
    expect(reply.clientError).toBeUndefined();
    expect(reply.status).toBe(413);
  });
});

describe('sendError and toSkyrocketError', () => {
  let server: http.Server;
  let port: number;
  let failWith: unknown;
  let writeFirst = false;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      if (writeFirst) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
      }
      sendError(res, failWith);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function get(): Promise<{ status: number; json: unknown; body: string }> {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const body = await res.text();
    return { status: res.status, body, json: body.startsWith('{') ? JSON.parse(body) : undefined };
  }

  it('answers with the code’s HTTP status and { error: { code, message, retriable, field? } }', async () => {
    writeFirst = false;
    failWith = new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle is not valid: x', { field: 'receiptHandle' });
    expect(await get()).toMatchObject({
      status: 400,
      json: { error: { code: 'INVALID_RECEIPT_HANDLE', message: 'receipt handle is not valid: x', retriable: false, field: 'receiptHandle' } },
    });
    failWith = new SkyrocketError('TOO_MANY_REQUESTS', 'slow down');
    const throttled = await get();
    expect(throttled.status).toBe(429);
    expect(throttled.json).toEqual({ error: { code: 'TOO_MANY_REQUESTS', message: 'slow down', retriable: true } });
    failWith = new SkyrocketError('NOT_FOUND', 'no such endpoint');
    expect((await get()).status).toBe(404);
  });

  it('hides anything that is not a SkyrocketError behind a 500 INTERNAL_ERROR', async () => {
    writeFirst = false;
    for (const thrown of [new Error('secret detail: /etc/passwd'), 'a string', undefined, { code: 'NOT_FOUND' }]) {
      failWith = thrown;
      const reply = await get();
      expect(reply.status).toBe(500);
      expect(reply.json).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'internal error', retriable: true } });
      expect(reply.body).not.toContain('secret detail');
    }
    const wrapped = toSkyrocketError(new Error('boom'));
    expect(wrapped.code).toBe('INTERNAL_ERROR');
    expect((wrapped.cause as Error).message).toBe('boom');
    const own = new SkyrocketError('CONFLICT', 'x');
    expect(toSkyrocketError(own)).toBe(own);
  });

  it('destroys the connection when the headers were already sent', async () => {
    writeFirst = true;
    failWith = new SkyrocketError('INTERNAL_ERROR', 'late');
    await expect(get()).rejects.toThrow();
  });
});
