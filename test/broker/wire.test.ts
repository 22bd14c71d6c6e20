import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../broker-fargate/src/broker.ts';
import { ConfigError, configVariables as v, loadConfig } from '../../broker-fargate/src/config.ts';
import { NamesrvDirectory } from '../../broker-fargate/src/namesrv-directory.ts';
import { Producer, SimpleConsumer, SkyrocketClient, SkyrocketError } from '../../client/index.ts';
import {
  WireKind,
  WireReader,
  decodeWireFrame,
  encodeWireCancel,
  encodeWireRequest,
  maxWireFrameBytes,
  wireHeaderBytes,
  wireMagic,
  type WireFrame,
} from '../../core/wire.ts';
import { NameServer, RouteCache, TransactionTables, ensureTables } from '../../namesrv/index.ts';
import { backends, dynamoClient, uniquePrefix } from '../support/aws.ts';

/**
 * The wire protocol (core/wire.ts) against a real broker: the broker runs in this process (so
 * the test can read `broker.wirePort` and call `broker.stop()`), on the DynamoDB stand-in that
 * global setup started, with the wire listener on any free loopback port. The SDK speaks it
 * through `skyrocket://` endpoints; the raw tests write frames on a plain socket.
 */

interface RunningBroker {
  broker: Broker;
  apiKey: string;
  stop(): Promise<void>;
}

/** Starts a broker as main.ts does: its name-server tables, an admin principal, registered as its group's leader. */
async function startBroker(wirePort: string): Promise<RunningBroker> {
  const prefix = uniquePrefix('wire');
  const dynamo: DynamoDBClient = dynamoClient();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-wire-'));
  let cache: RouteCache | undefined;
  let broker: Broker | undefined;
  const stop = async (): Promise<void> => {
    await broker?.stop();
    cache?.close();
    dynamo.destroy();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await ensureTables(dynamo, prefix);
    const nameServer = new NameServer({ client: dynamo, prefix });
    const apiKey = `sk_test_${randomBytes(16).toString('hex')}`;
    await nameServer.ensurePrincipal({ name: 'admin', permissions: { admin: true }, apiKey });
    const { dynamodb } = backends();
    const config = loadConfig({
      [v.brokerId]: '1',
      [v.brokerGroup]: 'bg-1',
      [v.dataDir]: dataDir,
      [v.host]: '127.0.0.1',
      [v.port]: '0',
      [v.wirePort]: wirePort,
      [v.segmentSizeBytes]: String(64 * 1024 * 1024),
      [v.dynamodbEndpoint]: dynamodb.endpoint,
      [v.region]: dynamodb.region,
      [v.tablePrefix]: prefix,
      [v.internalSecret]: randomBytes(24).toString('hex'),
      [v.shutdownGraceMs]: '2000',
    });
    cache = new RouteCache({ nameServer });
    broker = await Broker.start({
      config,
      directory: new NamesrvDirectory(nameServer, cache),
      transactionRegistry: new TransactionTables({ client: dynamo, prefix }),
    });
    await nameServer.registerBroker({ brokerId: '1', brokerGroup: 'bg-1', address: broker.url, role: 'LEADER', epoch: 1, ttlMs: 3_600_000 });
    await cache.start();
    return { broker, apiKey, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Rejects when `promise` takes longer than `ms`: nothing here may hang the run. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function rejection(promise: Promise<unknown>, ms = 5_000): Promise<unknown> {
  return within(
    ms,
    promise.then(
      (value) => {
        throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
      },
      (error: unknown) => error,
    ),
    'rejection',
  );
}

/** A wire connection on a plain socket: frames written by hand, every frame read kept. */
class RawWire {
  readonly socket: net.Socket;
  readonly frames: WireFrame[] = [];
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
  ended = false;
  readonly #reader = new WireReader();
  readonly #changed = new Set<() => void>();
  readonly #apiKey: string;

  constructor(port: number, apiKey: string, hello: Buffer | string | undefined = wireMagic) {
    this.#apiKey = apiKey;
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#reader.push(chunk)) this.frames.push(decodeWireFrame(Buffer.from(frame)));
      this.#notify();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.#notify();
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    if (hello !== undefined) this.socket.write(hello);
    raws.add(this);
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  request(id: number, method: string, target: string, body?: unknown, headers: Record<string, string> = {}): void {
    const all: Record<string, string> = { authorization: `Bearer ${this.#apiKey}`, accept: 'application/json', ...headers };
    let payload: string | undefined;
    if (body !== undefined) {
      all['content-type'] ??= 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    this.write(encodeWireRequest(id, method, target, all, payload));
  }

  /** The first frame that matches, waiting up to `ms` for it. */
  async frame(match: (f: WireFrame) => boolean, ms = 5_000): Promise<WireFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such frame within ${ms} ms; frames: ${JSON.stringify(this.frames.map((f) => [f.kind, f.id]))}`);
      await new Promise<void>((resolve) => {
        const changed = this.#changed;
        const done = (): void => {
          clearTimeout(timer);
          changed.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        changed.add(done);
      });
    }
  }

  async answer(id: number, ms = 5_000): Promise<{ status: number; contentType: string; json: any }> {
    const f = (await this.frame((x) => x.kind === WireKind.answer && x.id === id, ms)) as Extract<WireFrame, { kind: 3 }>;
    return { status: f.status, contentType: f.contentType, json: f.body.length === 0 ? undefined : JSON.parse(f.body.toString('utf8')) };
  }

  /** The close frame the broker refuses with; the connection must end right after it. */
  async refusal(ms = 5_000): Promise<{ status: number; code: string; message: string }> {
    const f = (await this.frame((x) => x.kind === WireKind.close, ms)) as Extract<WireFrame, { kind: 4 }>;
    expect(f.id).toBe(0);
    await within(ms, this.closed, 'the refused connection closes');
    expect(this.ended).toBe(true);
    const { error } = JSON.parse(f.error) as { error: { code: string; message: string } };
    return { status: f.status, code: error.code, message: error.message };
  }

  destroy(): void {
    this.socket.destroy();
  }

  #notify(): void {
    for (const f of [...this.#changed]) f();
  }
}

const raws = new Set<RawWire>();

let main: RunningBroker;
let wireUrl: string;
let admin: SkyrocketClient;

beforeAll(async () => {
  main = await startBroker('0');
  expect(main.broker.wirePort).toBeTypeOf('number');
  wireUrl = `skyrocket://127.0.0.1:${main.broker.wirePort}`;
  admin = new SkyrocketClient({ endpoint: wireUrl, apiKey: main.apiKey, timeoutMs: 5_000 });
}, 30_000);

afterEach(() => {
  for (const r of raws) r.destroy();
  raws.clear();
});

afterAll(async () => {
  await main?.stop();
}, 30_000);

/** Receives until `count` messages came (acked as they come), for up to 10 s. */
async function drain(consumer: SimpleConsumer, count: number): Promise<Array<{ messageId: string; body: Buffer; tag: string | undefined }>> {
  const got: Array<{ messageId: string; body: Buffer; tag: string | undefined }> = [];
  const deadline = Date.now() + 10_000;
  while (got.length < count && Date.now() < deadline) {
    const batch = await consumer.receive(256, { waitMs: 300 });
    if (batch.length > 0) {
      const acked = await consumer.ack(batch);
      expect(acked.failed).toEqual([]);
      expect(acked.acked).toHaveLength(batch.length);
    }
    got.push(...batch.map((m) => ({ messageId: m.messageId, body: m.body, tag: m.tag })));
  }
  return got;
}

describe('the SDK over skyrocket://', () => {
  it('creates a topic and group, sends text, binary and large bodies, receives them intact and acks them', async () => {
    const topic = await admin.createTopic({ name: 'wire-basic', queues: 2 });
    expect(topic.name).toBe('wire-basic');
    await admin.createGroup({ name: 'wire-basic-g' });
    expect((await admin.listTopics()).map((t) => t.name)).toContain('wire-basic');

    const producer = new Producer({ endpoint: wireUrl, apiKey: main.apiKey, topic: 'wire-basic' });
    const binary = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0, 13, 10]);
    // Answers of 16 KiB and more leave through the uncopied write path; these make receives that large.
    const large = randomBytes(20 * 1024);
    const huge = randomBytes(1024 * 1024);
    const sent = new Map<string, Buffer>();
    const bodies: Array<[string, Buffer | string]> = [
      ['text', 'héllo wörld 😀'],
      ['binary', binary],
      ['large', large],
      ['huge', huge],
    ];
    for (const [tag, body] of bodies) {
      const r = await producer.send({ body, tag });
      expect(r.messageId).toMatch(/\S/);
      sent.set(r.messageId, Buffer.from(body));
    }
    await producer.close();
    expect(sent.size).toBe(4);

    const consumer = new SimpleConsumer({ endpoint: wireUrl, apiKey: main.apiKey, group: 'wire-basic-g', topic: 'wire-basic', waitMs: 300 });
    const got = await drain(consumer, 4);
    expect(got).toHaveLength(4);
    for (const m of got) {
      const expected = sent.get(m.messageId);
      expect(expected, m.messageId).toBeDefined();
      expect(m.body.length, m.tag).toBe(expected!.length);
      expect(m.body.equals(expected!), m.tag).toBe(true);
    }
    expect(got.find((m) => m.tag === 'text')?.body.toString('utf8')).toBe('héllo wörld 😀');
    // Everything acked: nothing comes again.
    expect(await consumer.receive(32, { waitMs: 0 })).toEqual([]);
  });

  it('a JSON answer of more than 16 KiB (a string body through the uncopied path) arrives whole', async () => {
    await admin.createTopic({ name: 'wire-json', queues: 1 });
    await admin.createGroup({ name: 'wire-json-g' });
    const body = 'ü'.repeat(12 * 1024); // 24 KiB of UTF-8, more in base64 JSON
    const { messageId } = (await admin.send('wire-json', [{ body }]))[0]!;
    // `call` asks for JSON only: the answer is sendJson's string.
    const reply = await admin.call<{ messages: Array<{ messageId: string; body: string; bodyEncoding?: string; receiptHandle: string }> }>(
      'POST',
      '/v1/groups/wire-json-g/receive',
      { topic: 'wire-json', max: 1, waitMs: 0 },
    );
    expect(reply.messages).toHaveLength(1);
    const m = reply.messages[0]!;
    expect(m.messageId).toBe(messageId);
    const text = m.bodyEncoding === 'base64' ? Buffer.from(m.body, 'base64').toString('utf8') : m.body;
    expect(text).toBe(body);
    const acked = await admin.ack('wire-json-g', 'wire-json', [m.receiptHandle]);
    expect(acked.failed).toEqual([]);
  });

  it('200 requests in flight at once on one connection all succeed with distinct message ids', async () => {
    await admin.createTopic({ name: 'wire-many', queues: 4 });
    await admin.createGroup({ name: 'wire-many-g' });
    // A counting TCP relay in front of the broker: the SDK's requests must share one connection.
    const sockets = new Set<net.Socket>();
    let connections = 0;
    const relay = net.createServer((inbound) => {
      connections++;
      const outbound = net.connect({ host: '127.0.0.1', port: main.broker.wirePort! });
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `skyrocket://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
      const client = new SkyrocketClient({ endpoint, apiKey: main.apiKey, timeoutMs: 10_000 });
      const bodies = Array.from({ length: 200 }, (_, i) => `m-${i}-${'x'.repeat(i * 7)}`);
      // One request each, all in flight together (the SkyrocketClient does not coalesce).
      const results = await within(15_000, Promise.all(bodies.map((body) => client.send('wire-many', [{ body }]))), '200 sends');
      const ids = results.map((r) => r[0]!.messageId);
      expect(new Set(ids).size).toBe(200);
      expect(connections).toBe(1);

      // And through a Producer, whose sends coalesce, on the same connection.
      const producer = new Producer({ endpoint, apiKey: main.apiKey, topic: 'wire-many' });
      const more = await within(15_000, Promise.all(bodies.map((body) => producer.send(`p-${body}`))), '200 producer sends');
      await producer.close();
      const moreIds = more.map((r) => r.messageId);
      expect(new Set([...ids, ...moreIds]).size).toBe(400);
      expect(connections).toBe(1);

      // Every body arrived as sent.
      const consumer = new SimpleConsumer({ endpoint, apiKey: main.apiKey, group: 'wire-many-g', topic: 'wire-many' });
      const got = await drain(consumer, 400);
      expect(got.map((m) => m.body.toString()).sort()).toEqual([...bodies, ...bodies.map((b) => `p-${b}`)].sort());
      expect(connections).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it('an aborted long poll rejects promptly with the signal’s reason, and the connection goes on', async () => {
    await admin.createTopic({ name: 'wire-abort', queues: 1 });
    await admin.createGroup({ name: 'wire-abort-g' });
    const consumer = new SimpleConsumer({ endpoint: wireUrl, apiKey: main.apiKey, group: 'wire-abort-g', topic: 'wire-abort' });
    const controller = new AbortController();
    const started = Date.now();
    const polling = consumer.receive(1, { waitMs: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 150);
    const error = await rejection(polling, 2_000);
    expect((error as Error).message).toBe('caller gave up');
    expect(Date.now() - started).toBeLessThan(1_500);
    // The cancelled poll took nothing: a message sent now goes to the next receive.
    await admin.send('wire-abort', [{ body: 'after the abort' }]);
    const got = await consumer.receive(1, { waitMs: 2_000 });
    expect(got.map((m) => m.bodyText())).toEqual(['after the abort']);
  });
});

describe('errors over the wire', () => {
  it('an unknown API key is UNAUTHORIZED, as over HTTP', async () => {
    const stranger = `sk_test_${randomBytes(16).toString('hex')}`;
    const overWire = await rejection(new SkyrocketClient({ endpoint: wireUrl, apiKey: stranger }).listTopics());
    const overHttp = await rejection(new SkyrocketClient({ endpoint: main.broker.url, apiKey: stranger }).listTopics());
    expect(overWire).toBeInstanceOf(SkyrocketError);
    expect((overWire as SkyrocketError).code).toBe('UNAUTHORIZED');
    expect((overHttp as SkyrocketError).code).toBe('UNAUTHORIZED');
    // The connection the refusal came on still serves the next request.
    expect((await admin.listTopics()).length).toBeGreaterThanOrEqual(0);
  });

  it('an unknown topic has the same code as over HTTP', async () => {
    const overWire = await rejection(admin.send('wire-no-such-topic', [{ body: 'x' }]));
    const overHttp = await rejection(new SkyrocketClient({ endpoint: main.broker.url, apiKey: main.apiKey }).send('wire-no-such-topic', [{ body: 'x' }]));
    expect(overWire).toBeInstanceOf(SkyrocketError);
    expect((overHttp as SkyrocketError).code).toBe('TOPIC_NOT_FOUND');
    expect((overWire as SkyrocketError).code).toBe((overHttp as SkyrocketError).code);
    expect((overWire as SkyrocketError).retriable).toBe(false);
  });

  it('a bad JSON body is MALFORMED_JSON with HTTP’s status, and an unknown endpoint NOT_FOUND', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    raw.request(1, 'POST', '/v1/topics', '{"name": "wire-bad-json",');
    raw.request(2, 'GET', '/v1/no-such-endpoint');
    raw.request(3, 'PATCH', '/v1/topics');
    const bad = await raw.answer(1);
    const http = await fetch(`${main.broker.url}/v1/topics`, {
      method: 'POST',
      headers: { authorization: `Bearer ${main.apiKey}`, 'content-type': 'application/json' },
      body: '{"name": "wire-bad-json",',
    });
    expect(bad.status).toBe(http.status);
    expect(bad.status).toBe(400);
    expect(bad.contentType).toMatch(/^application\/json/);
    expect(bad.json.error.code).toBe('MALFORMED_JSON');
    expect(((await http.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_JSON');
    const missing = await raw.answer(2);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NOT_FOUND');
    const wrongMethod = await raw.answer(3);
    const wrongMethodHttp = await fetch(`${main.broker.url}/v1/topics`, { method: 'PATCH', headers: { authorization: `Bearer ${main.apiKey}` } });
    expect(wrongMethod.status).toBe(wrongMethodHttp.status);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.json.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(((await wrongMethodHttp.json()) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
    // None of these ends the connection.
    raw.request(4, 'GET', '/healthz');
    expect((await raw.answer(4)).json.status).toBe('ok');
    expect(raw.ended).toBe(false);
  });
});

describe('the broker refuses what is not the wire protocol', () => {
  it('a connection that does not start with "SKW1" gets a MALFORMED_FRAME close frame and is ended', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
    const refusal = await raw.refusal();
    expect(refusal).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
    expect(refusal.message).toMatch(/SKW1/);
    expect(raw.frames.filter((f) => f.kind !== WireKind.close)).toEqual([]);
  });

  it('a hello that goes wrong after its first bytes is refused as soon as it does', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey, 'SK');
    await sleep(50);
    expect(raw.frames).toEqual([]);
    raw.write('X');
    expect(await raw.refusal()).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
  });

  it('a hello in pieces is accepted', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey, 'S');
    await sleep(20);
    raw.write('KW');
    await sleep(20);
    // The rest of the hello and a request, in one chunk.
    raw.write(Buffer.concat([Buffer.from('1'), encodeWireRequest(7, 'GET', '/healthz', {})]));
    expect((await raw.answer(7)).json.status).toBe('ok');
  });

  it.each([0, 3, 4, 5, 200])('a frame of kind %i from a client gets a MALFORMED_FRAME close', async (kind) => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    raw.request(1, 'GET', '/healthz');
    expect((await raw.answer(1)).status).toBe(200);
    const frame = Buffer.alloc(wireHeaderBytes + 3);
    frame.writeUInt32BE(frame.length - 4, 0);
    frame[4] = kind;
    frame.writeUInt32BE(2, 5);
    raw.write(frame);
    expect(await raw.refusal()).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
  });

  it('a request frame that does not parse gets a MALFORMED_FRAME close', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    const frame = encodeWireRequest(1, 'GET', '/healthz', {});
    frame[wireHeaderBytes] = 9; // no such method
    raw.write(frame);
    expect(await raw.refusal()).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
  });

  it('a length over maxWireFrameBytes gets a PAYLOAD_TOO_LARGE close before the bytes are sent', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    const head = Buffer.alloc(wireHeaderBytes);
    head.writeUInt32BE(maxWireFrameBytes, 0); // 4 + this > the maximum
    head[4] = WireKind.request;
    head.writeUInt32BE(1, 5);
    raw.write(head);
    expect(await raw.refusal()).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('a length shorter than a frame header gets a MALFORMED_FRAME close', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    raw.write(Buffer.from([0, 0, 0, 2, 1, 0, 0, 0, 0]));
    expect(await raw.refusal()).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
  });

  it('two requests with the same id in flight get a MALFORMED_FRAME close', async () => {
    await admin.createTopic({ name: 'wire-dup', queues: 1 });
    await admin.createGroup({ name: 'wire-dup-g' });
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    raw.request(5, 'POST', '/v1/groups/wire-dup-g/receive', { topic: 'wire-dup', max: 1, waitMs: 5_000 });
    await sleep(100);
    raw.request(5, 'GET', '/healthz');
    const refusal = await raw.refusal();
    expect(refusal).toMatchObject({ status: 400, code: 'MALFORMED_FRAME' });
    expect(refusal.message).toMatch(/5/);
    expect(raw.frames.filter((f) => f.kind === WireKind.answer)).toEqual([]);
    // The refused connection's long poll ended with it: a message sent now is free for others.
    await admin.send('wire-dup', [{ body: 'free' }]);
    const consumer = new SimpleConsumer({ endpoint: wireUrl, apiKey: main.apiKey, group: 'wire-dup-g', topic: 'wire-dup' });
    expect((await consumer.receive(1, { waitMs: 2_000 })).map((m) => m.bodyText())).toEqual(['free']);
  });

  it('an id may be used again once its request is answered', async () => {
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    raw.request(9, 'GET', '/healthz');
    await raw.answer(9);
    raw.frames.length = 0;
    raw.request(9, 'GET', '/healthz');
    expect((await raw.answer(9)).status).toBe(200);
    expect(raw.ended).toBe(false);
  });
});

describe('cancel and disconnect', () => {
  it('a cancelled long poll is never answered, stops waiting, and the connection goes on', async () => {
    await admin.createTopic({ name: 'wire-cancel', queues: 1 });
    await admin.createGroup({ name: 'wire-cancel-g' });
    const raw = new RawWire(main.broker.wirePort!, main.apiKey);
    const started = Date.now();
    raw.request(1, 'POST', '/v1/groups/wire-cancel-g/receive', { topic: 'wire-cancel', max: 1, waitMs: 3_000 });
    await sleep(150);
    raw.write(encodeWireCancel(1));
    // A cancel of an id not in flight is ignored.
    raw.write(encodeWireCancel(424242));
    raw.request(2, 'GET', '/healthz');
    expect((await raw.answer(2)).status).toBe(200);
    // A message sent after the cancel is not taken by the cancelled poll...
    raw.request(3, 'POST', '/v1/topics/wire-cancel/messages', { messages: [{ body: 'after cancel' }] });
    expect((await raw.answer(3)).status).toBe(200);
    raw.request(4, 'POST', '/v1/groups/wire-cancel-g/receive', { topic: 'wire-cancel', max: 1, waitMs: 2_000 });
    const next = await raw.answer(4);
    expect(next.status).toBe(200);
    expect(next.json.messages.map((m: { body: string }) => m.body)).toEqual(['after cancel']);
    // ...and no answer to it ever comes, also past its deadline.
    await sleep(Math.max(0, started + 3_500 - Date.now()));
    expect(raw.frames.filter((f) => f.id === 1)).toEqual([]);
    expect(raw.ended).toBe(false);
  });

  it('a client that disconnects in the middle of a long poll does not break the broker', async () => {
    await admin.createTopic({ name: 'wire-gone', queues: 1 });
    await admin.createGroup({ name: 'wire-gone-g' });
    const first = new RawWire(main.broker.wirePort!, main.apiKey);
    first.request(1, 'POST', '/v1/groups/wire-gone-g/receive', { topic: 'wire-gone', max: 1, waitMs: 5_000 });
    await sleep(150);
    first.destroy();
    await within(2_000, first.closed, 'close');
    // The next connection is served, and the abandoned poll did not take the next message.
    const second = new RawWire(main.broker.wirePort!, main.apiKey);
    second.request(1, 'POST', '/v1/topics/wire-gone/messages', { messages: [{ body: 'for the survivor' }] });
    expect((await second.answer(1)).status).toBe(200);
    second.request(2, 'POST', '/v1/groups/wire-gone-g/receive', { topic: 'wire-gone', max: 1, waitMs: 2_000 });
    const got = await second.answer(2);
    expect(got.json.messages.map((m: { body: string }) => m.body)).toEqual(['for the survivor']);
    // The SDK's connection is unaffected too.
    expect((await admin.getTopic('wire-gone')).name).toBe('wire-gone');
  });
});

describe('the wire listener and the broker’s life', () => {
  it('broker.stop() with a wire client connected completes; the client’s next request fails retriably, not hangs', async () => {
    const other = await startBroker('0');
    try {
      const port = other.broker.wirePort!;
      expect(port).toBeGreaterThan(0);
      expect(port).not.toBe(main.broker.wirePort);
      const endpoint = `skyrocket://127.0.0.1:${port}`;
      const client = new SkyrocketClient({ endpoint, apiKey: other.apiKey, timeoutMs: 3_000 });
      await client.createTopic({ name: 'wire-stop', queues: 1 });
      await client.createGroup({ name: 'wire-stop-g' });
      const raw = new RawWire(port, other.apiKey);
      raw.request(1, 'GET', '/healthz');
      await raw.answer(1);
      // A long poll in flight when the stop begins is answered (or refused) rather than left hanging.
      const polling = client.receive('wire-stop-g', { topic: 'wire-stop', max: 1, waitMs: 20_000 }).then(
        (messages) => ({ messages }),
        (error: unknown) => ({ error }),
      );
      await sleep(150);
      const t0 = Date.now();
      await within(8_000, other.broker.stop(), 'broker.stop()');
      expect(Date.now() - t0).toBeLessThan(8_000);
      const outcome = await within(3_000, polling, 'the long poll in flight');
      if ('error' in outcome) {
        expect(outcome.error).toBeInstanceOf(SkyrocketError);
        expect((outcome.error as SkyrocketError).retriable).toBe(true);
      } else {
        expect(outcome.messages).toEqual([]);
      }
      // The idle raw connection was ended by the broker.
      await within(3_000, raw.closed, 'the idle wire connection closes');
      expect(raw.ended).toBe(true);
      // The next request fails fast with a retriable error.
      const error = await rejection(client.listTopics(), 5_000);
      expect(error).toBeInstanceOf(SkyrocketError);
      expect((error as SkyrocketError).code).toBe('SERVICE_UNAVAILABLE');
      expect((error as SkyrocketError).retriable).toBe(true);
      // Nothing listens on the port any more.
      const refused = await new Promise<string>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
    } finally {
      await other.stop();
    }
  });

  it('with SKYROCKET_WIRE_PORT=off the broker has no wire port and HTTP still serves', async () => {
    const off = await startBroker('off');
    try {
      expect(off.broker.config.wirePort).toBeUndefined();
      expect(off.broker.wirePort).toBeUndefined();
      const health = await fetch(`${off.broker.url}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await off.stop();
    }
  });
});

describe('SKYROCKET_WIRE_PORT', () => {
  const required = { [v.brokerId]: '7', [v.dataDir]: '/var/lib/skyrocket', [v.internalSecret]: '0123456789abcdef' };

  // Off unless set (config.ts: a broker binds only the ports it is given; the CDK stack and
  // `skyrocket dev` set 10911): two brokers on one host must not both reach for 10911.
  it('is off when unset, empty or "off", and a port number when given', () => {
    expect(v.wirePort).toBe('SKYROCKET_WIRE_PORT');
    expect(loadConfig(required).wirePort).toBeUndefined();
    expect(loadConfig({ ...required, [v.wirePort]: '' }).wirePort).toBeUndefined();
    expect(loadConfig({ ...required, [v.wirePort]: '10911' }).wirePort).toBe(10911);
    expect(loadConfig({ ...required, [v.wirePort]: '0' }).wirePort).toBe(0);
    expect(loadConfig({ ...required, [v.wirePort]: '65535' }).wirePort).toBe(65535);
    expect(loadConfig({ ...required, [v.wirePort]: 'off' }).wirePort).toBeUndefined();
  });

  it.each(['abc', '-1', '65536', '1.5', 'OFF ', 'on'])('refuses %j with a ConfigError', (value) => {
    expect(() => loadConfig({ ...required, [v.wirePort]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...required, [v.wirePort]: value })).toThrow(/SKYROCKET_WIRE_PORT/);
  });
});

/** Large requests and answers: over the wire as over HTTP. */
describe('large requests and answers', () => {
  const threeMiB = 3 * 1024 * 1024;

  it('a receive answer of 12 MiB (4 × 3 MiB, one answer over HTTP) reaches the SDK over the wire', async () => {
    await admin.createTopic({ name: 'wire-big-receive', queues: 4 });
    await admin.createGroup({ name: 'wire-big-receive-g' });
    const sent = new Map<string, Buffer>();
    for (let i = 0; i < 4; i++) {
      const body = randomBytes(threeMiB);
      sent.set((await admin.send('wire-big-receive', [{ body }]))[0]!.messageId, body);
    }
    // The broker reads up to 4 MiB and one message per queue, from every queue, into one answer
    // (12 MiB here: over HTTP one receive returns all 4).
    const consumer = new SimpleConsumer({ endpoint: wireUrl, apiKey: main.apiKey, group: 'wire-big-receive-g', topic: 'wire-big-receive' });
    const got = await consumer.receive(32, { waitMs: 0 });
    expect(got.map((m) => m.messageId).sort()).toEqual([...sent.keys()].sort());
    for (const m of got) expect(m.body.equals(sent.get(m.messageId)!)).toBe(true);
  });

  it('a send batch of 9 MiB (batches may reach 32 MiB over HTTP) is stored over the wire', async () => {
    await admin.createTopic({ name: 'wire-big-batch', queues: 1 });
    const producer = new Producer({ endpoint: wireUrl, apiKey: main.apiKey, topic: 'wire-big-batch', retries: 0 });
    const results = await producer.sendBatch([randomBytes(threeMiB), randomBytes(threeMiB), randomBytes(threeMiB)]);
    expect(results).toHaveLength(3);
  });

  it('a request over maxWireFrameBytes fails alone with PAYLOAD_TOO_LARGE, not every request on the shared connection', async () => {
    await admin.createTopic({ name: 'wire-bystander', queues: 1 });
    await admin.createGroup({ name: 'wire-bystander-g' });
    const bystander = admin.receive('wire-bystander-g', { topic: 'wire-bystander', max: 1, waitMs: 1_000 }).then(
      (messages) => ({ messages }),
      (error: unknown) => ({ error }),
    );
    await sleep(100);
    // Over HTTP this is one 413 PAYLOAD_TOO_LARGE (the body is over /v1/topics' 64 KiB limit).
    const tooLarge = await rejection(admin.call('POST', '/v1/topics', { name: 'x'.repeat(maxWireFrameBytes) }));
    const outcome = await within(3_000, bystander, 'the long poll on the same connection');
    expect(outcome).toEqual({ messages: [] });
    expect((tooLarge as SkyrocketError).code).toBe('PAYLOAD_TOO_LARGE');
  });
});
