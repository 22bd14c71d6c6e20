import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSkyrocketError } from '../../core/errors.ts';
import { SkyrocketClient } from '../../client/index.ts';

/**
 * The SDK's default transport (node:http with a keep-alive agent) against a real HTTP server that
 * misbehaves on purpose: slow answers, cut connections, big bodies, and no server at all.
 */
let server: http.Server;
let base: string;
const connections = new Set<unknown>();
let connectionCount = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v1/topics' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ topics: [] }));
    } else if (url.pathname === '/v1/topics/slow' || url.pathname === '/v1/groups/slow/receive') {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 2_000).unref();
    } else if (url.pathname === '/v1/topics/cut') {
      req.socket.destroy();
    } else if (url.pathname === '/v1/topics/big') {
      // An answer of many chunks (2 MB).
      const body = JSON.stringify({ name: 't0', type: 'NORMAL', queues: 8, readable: true, writable: true, padding: 'x'.repeat(2_000_000) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    } else if (url.pathname === '/v1/topics/proxy-error') {
      res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no' } }));
    }
  });
  server.on('connection', (socket) => {
    connectionCount++;
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isSkyrocketError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

describe('the default transport', () => {
  it('keeps one connection alive across sequential requests', async () => {
    const client = new SkyrocketClient({ endpoint: base, apiKey: 'k' });
    const before = connectionCount;
    for (let i = 0; i < 20; i++) expect(await client.listTopics()).toEqual([]);
    expect(connectionCount - before).toBeLessThanOrEqual(1);
  });

  it('a late answer is REQUEST_TIMEOUT; the caller\'s abort rejects with its reason', async () => {
    const client = new SkyrocketClient({ endpoint: base, apiKey: 'k', timeoutMs: 200 });
    expect(await code(client.getTopic('slow'))).toBe('REQUEST_TIMEOUT');
    const abort = new AbortController();
    const reason = new Error('caller gave up');
    const pending = new SkyrocketClient({ endpoint: base, apiKey: 'k', timeoutMs: 5_000 }).receive(
      'slow',
      { topic: 'slow', waitMs: 0 },
      { signal: abort.signal },
    );
    setTimeout(() => abort.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
    const already = new AbortController();
    already.abort(reason);
    await expect(client.receive('slow', { topic: 'x' }, { signal: already.signal })).rejects.toBe(reason);
  });

  it('a cut connection or no server is SERVICE_UNAVAILABLE; a proxy error page gets the status code', async () => {
    const client = new SkyrocketClient({ endpoint: base, apiKey: 'k' });
    expect(await code(client.getTopic('cut'))).toBe('SERVICE_UNAVAILABLE');
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    expect(await code(new SkyrocketClient({ endpoint: `http://127.0.0.1:${port}`, apiKey: 'k' }).listTopics())).toBe('SERVICE_UNAVAILABLE');
    expect(await code(client.getTopic('proxy-error'))).toBe('SERVICE_UNAVAILABLE');
    expect(await code(client.getTopic('nothing'))).toBe('NOT_FOUND');
    // And the connection pool still works afterwards.
    expect(await client.listTopics()).toEqual([]);
    const big = (await client.getTopic('big')) as unknown as { name: string; padding: string };
    expect(big.name).toBe('t0');
    expect(big.padding).toHaveLength(2_000_000);
  });
});
