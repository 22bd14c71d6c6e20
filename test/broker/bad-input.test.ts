import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeReceiptHandle } from '../../broker-fargate/src/consume/receipt-handle.ts';
import { api, TestCluster } from './cluster.ts';

/**
 * Every bad request gets its exact status and stable code, and nothing of it is stored.
 */
let cluster: TestCluster;
let limitedKey: string;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 1 }).start();
  const admin = cluster.adminKey;
  expect((await api(cluster.url(), admin, 'POST', '/v1/topics', { name: 'inputs', queues: 2 })).status).toBe(201);
  expect((await api(cluster.url(), admin, 'POST', '/v1/topics', { name: 'fifo-inputs', queues: 2, type: 'FIFO' })).status).toBe(201);
  expect((await api(cluster.url(), admin, 'POST', '/v1/groups', { name: 'inputs-group' })).status).toBe(201);
  const created = await cluster.nameServer.createPrincipal({
    name: 'limited',
    permissions: { publish: ['other-topic'], subscribe: ['other-group'] },
  });
  limitedKey = created.apiKey;
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

async function storedCount(topic: string): Promise<number> {
  const r = await api(cluster.url(), cluster.adminKey, 'GET', `/v1/groups/inputs-group/offsets?topic=${topic}`);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.offsets.reduce((sum: number, q: { maxOffset: number }) => sum + q.maxOffset, 0);
}

async function expectRejected(
  request: { method: string; path: string; body?: unknown; key?: string | null },
  status: number,
  code: string,
  field?: string,
): Promise<void> {
  const before = await storedCount('inputs');
  const key = request.key === null ? undefined : (request.key ?? cluster.adminKey);
  const r = await api(cluster.url(), key, request.method, request.path, request.body);
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  expect(typeof r.json.error.retriable).toBe('boolean');
  if (field !== undefined) expect(r.json.error.field).toBe(field);
  expect(await storedCount('inputs')).toBe(before);
}

const send = (body: unknown, key?: string | null) => ({ method: 'POST', path: '/v1/topics/inputs/messages', body, ...(key === undefined ? {} : { key }) });

describe('bad input', () => {
  it('malformed JSON', async () => {
    await expectRejected(send('{"messages": [ {"body": "x" }'), 400, 'MALFORMED_JSON');
    await expectRejected(send('[1,2]'), 400, 'MALFORMED_JSON');
  });

  it('a body over 4 MiB', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024 + 1);
    await expectRejected(send({ messages: [{ body: 'fine' }, { body: big }] }), 413, 'MESSAGE_BODY_TOO_LARGE', 'messages[1].body');
  });

  it('too many properties', async () => {
    const properties = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`p${i}`, 'v']));
    await expectRejected(send({ messages: [{ body: 'x', properties }] }), 413, 'MESSAGE_PROPERTIES_TOO_LARGE', 'messages[0].properties');
  });

  it('an empty body, a bad tag, a bad key, a reserved property, bad base64', async () => {
    await expectRejected(send({ messages: [{ body: '' }] }), 400, 'MESSAGE_BODY_EMPTY', 'messages[0].body');
    await expectRejected(send({ messages: [{ body: 'x', tag: 'a|b' }] }), 400, 'ILLEGAL_MESSAGE_TAG', 'messages[0].tag');
    await expectRejected(send({ messages: [{ body: 'x', keys: ['ok', 'bad\u0001'] }] }), 400, 'ILLEGAL_MESSAGE_KEY');
    await expectRejected(send({ messages: [{ body: 'x', properties: { TAGS: 'sneaky' } }] }), 400, 'ILLEGAL_MESSAGE_PROPERTY_KEY');
    await expectRejected(send({ messages: [{ body: '!!!', bodyEncoding: 'base64' }] }), 400, 'INVALID_ARGUMENT', 'messages[0].body');
    await expectRejected(send({ messages: [{ body: 'x', unknown: 1 }] }), 400, 'INVALID_ARGUMENT', 'messages[0].unknown');
    await expectRejected(send({ messages: [] }), 400, 'INVALID_ARGUMENT');
  });

  it('a delivery time beyond 365 days', async () => {
    await expectRejected(send({ messages: [{ body: 'x', delayMs: 366 * 24 * 3600 * 1000 }] }), 400, 'ILLEGAL_DELIVERY_TIME');
  });

  it('a FIFO message without a message group', async () => {
    const r = await api(cluster.url(), cluster.adminKey, 'POST', '/v1/topics/fifo-inputs/messages', { messages: [{ body: 'x' }] });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('ILLEGAL_MESSAGE_GROUP');
  });

  it('an invalid topic name', async () => {
    await expectRejected({ method: 'POST', path: '/v1/topics/bad%20name!/messages', body: { messages: [{ body: 'x' }] } }, 400, 'ILLEGAL_TOPIC');
    await expectRejected({ method: 'POST', path: '/v1/topics', body: { name: 'a b' } }, 400, 'ILLEGAL_TOPIC', 'name');
  });

  it('an unknown topic or group', async () => {
    await expectRejected({ method: 'POST', path: '/v1/topics/nope/messages', body: { messages: [{ body: 'x' }] } }, 404, 'TOPIC_NOT_FOUND');
    await expectRejected({ method: 'POST', path: '/v1/groups/nobody/receive', body: { topic: 'inputs' } }, 404, 'CONSUMER_GROUP_NOT_FOUND');
    await expectRejected({ method: 'POST', path: '/v1/groups/inputs-group/receive', body: { topic: 'nope' } }, 404, 'TOPIC_NOT_FOUND');
  });

  it('a missing, unknown or unprivileged API key', async () => {
    await expectRejected(send({ messages: [{ body: 'x' }] }, null), 401, 'UNAUTHORIZED');
    await expectRejected(send({ messages: [{ body: 'x' }] }, 'sk_not_a_real_key'), 401, 'UNAUTHORIZED');
    await expectRejected(send({ messages: [{ body: 'x' }] }, limitedKey), 403, 'FORBIDDEN');
    await expectRejected({ method: 'POST', path: '/v1/topics', body: { name: 'x1' }, key: limitedKey }, 403, 'FORBIDDEN');
    await expectRejected({ method: 'POST', path: '/v1/groups/inputs-group/receive', body: { topic: 'inputs' }, key: limitedKey }, 403, 'FORBIDDEN');
    const health = await api(cluster.url(), undefined, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect((await api(cluster.url(), undefined, 'GET', '/metrics')).status).toBe(401);
  });

  it('a receipt handle that is forged, mangled, or for another group', async () => {
    const ack = (receiptHandles: unknown[]) => ({ method: 'POST', path: '/v1/groups/inputs-group/ack', body: { topic: 'inputs', receiptHandles } });
    const forged = encodeReceiptHandle(
      { group: 'inputs-group', topic: 'inputs', queueId: 0, queueOffset: 0, nonce: 'abc', brokerGroup: 'bg-1', visibleUntilMs: Date.now() + 60_000 },
    );
    await expectRejected(ack([forged]), 400, 'INVALID_RECEIPT_HANDLE');
    await expectRejected(ack(['not-a-handle']), 400, 'INVALID_RECEIPT_HANDLE');
    await expectRejected(ack([]), 400, 'INVALID_ARGUMENT', 'receiptHandles');
  });

  it('receive parameters out of range', async () => {
    const receive = (body: Record<string, unknown>) => ({ method: 'POST', path: '/v1/groups/inputs-group/receive', body: { topic: 'inputs', ...body } });
    await expectRejected(receive({ invisibleMs: 5 }), 400, 'ILLEGAL_INVISIBLE_TIME');
    await expectRejected(receive({ waitMs: 10 * 60 * 1000 }), 400, 'ILLEGAL_POLLING_TIME');
    await expectRejected(receive({ filter: { type: 'TAG', expression: 'a || ' } }), 400, 'INVALID_FILTER_EXPRESSION');
    await expectRejected(receive({ max: 0 }), 400, 'INVALID_ARGUMENT');
  });

  it('unknown endpoints and methods', async () => {
    await expectRejected({ method: 'GET', path: '/v1/nothing-here' }, 404, 'NOT_FOUND');
    await expectRejected({ method: 'PATCH', path: '/v1/topics' }, 405, 'METHOD_NOT_ALLOWED');
  });

  it('stores a good batch whole after all those refusals', async () => {
    const before = await storedCount('inputs');
    const r = await api(cluster.url(), cluster.adminKey, 'POST', '/v1/topics/inputs/messages', { messages: [{ body: 'a' }, { body: 'b' }] });
    expect(r.status).toBe(200);
    expect(await storedCount('inputs')).toBe(before + 2);
  });
});
