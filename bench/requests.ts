/**
 * `npm run bench:requests`: the broker's CPU per request, for the request kinds of the hot paths,
 * against a bare node:http server measured in the same run as the reference. One client process
 * sends requests one at a time (the serial-publish pattern), so the figures are the fixed cost of
 * a request rather than of its messages. Prints JSON: wall and server CPU µs per request.
 *
 *   --requests 20000
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { encodeFrame, frameMediaType } from '../core/frame.ts';
import { SkyrocketClient } from '../client/index.ts';
import { startServer } from './peers/servers.ts';

const { values } = parseArgs({ options: { requests: { type: 'string' } } });
const count = Number(values.requests ?? 20_000);

function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function request(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent, headers: { ...headers, 'content-length': String(body?.length ?? 0) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function measure(pid: number, n: number, one: () => Promise<number>): Promise<{ wallMicros: number; serverCpuMicros: number }> {
  for (let i = 0; i < Math.min(2000, n); i++) if ((await one()) >= 300) throw new Error('request failed');
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await one();
  return { wallMicros: +(((performance.now() - t0) * 1000) / n).toFixed(1), serverCpuMicros: +(((cpuSeconds(pid) - c0) * 1e6) / n).toFixed(1) };
}

// Reference: a bare node:http server that reads the body and answers a small JSON.
const bare = fork(new URL('./requests-bare-server.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'] });
const barePort = await new Promise<number>((resolve) => bare.once('message', (m) => resolve(m as number)));
const body = encodeFrame([{}], [Buffer.alloc(1024, 'x')]);
const headers = { 'content-type': frameMediaType, authorization: 'Bearer x' };
const reference = await measure(bare.pid!, count, () => request(barePort, 'POST', '/v1/topics/t/messages', headers, body));
bare.kill();

const server = await startServer('skyrocket');
try {
  if (server.connection.system !== 'skyrocket') throw new Error('unexpected');
  const { endpoint, apiKey } = server.connection;
  const port = Number(new URL(endpoint).port);
  const client = new SkyrocketClient({ endpoint, apiKey });
  await client.createTopic({ name: 'req', queues: 8 });
  await client.createGroup({ name: 'req-group' });
  const pid = server.serverPids[0]!;
  const auth = { authorization: `Bearer ${apiKey}` };
  const send = await measure(pid, count, () => request(port, 'POST', '/v1/topics/req/messages', { ...auth, 'content-type': frameMediaType }, body));
  const receive = await measure(pid, count, async () => {
    const reply = await client.receive('req-group', { topic: 'req', max: 1 });
    if (reply.length !== 1) throw new Error('receive found no message');
    return 200;
  });
  const empty = await measure(pid, Math.min(count, 5000), () => request(port, 'GET', '/v1/topics/req', auth));
  console.log(
    JSON.stringify({
      requests: count,
      reference: { what: 'bare node:http server, same request', ...reference },
      send: { what: 'POST one 1 KiB message (frame), sync flush', ...send },
      receive: { what: 'receive of one message through the SDK (client CPU not counted)', ...receive },
      getTopic: { what: 'GET /v1/topics/{t}: auth, routing and a cached lookup', ...empty },
    }),
  );
} finally {
  await server.stop();
}
