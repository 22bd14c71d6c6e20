import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDeliveries, deliveriesMediaType, type DecodedDelivery } from '../../core/delivery-frame.ts';
import { decodeFrame, encodeFrame, frameMediaType } from '../../core/frame.ts';
import { api, TestCluster } from './cluster.ts';

/**
 * The frame form of send and receive (core/frame.ts) against real brokers: the same messages as
 * the JSON form, bodies byte for byte, sends forwarded between broker groups, and every malformed
 * frame refused with MALFORMED_FRAME and nothing stored.
 */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await new TestCluster({ brokers: 2 }).start();
  const admin = cluster.adminKey;
  expect((await api(cluster.url(0), admin, 'POST', '/v1/topics', { name: 'framed', queues: 4 })).status).toBe(201);
  expect((await api(cluster.url(0), admin, 'POST', '/v1/groups', { name: 'framed-group' })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

async function raw(
  broker: number,
  method: string,
  path: string,
  body: Buffer | string | undefined,
  headers: Record<string, string>,
): Promise<{ status: number; contentType: string; body: Buffer }> {
  const response = await fetch(`${cluster.url(broker)}${path}`, {
    method,
    headers: { authorization: `Bearer ${cluster.adminKey}`, ...headers },
    body,
  });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: Buffer.from(await response.arrayBuffer()) };
}

async function stored(): Promise<number> {
  const r = await api(cluster.url(0), cluster.adminKey, 'GET', '/v1/groups/framed-group/offsets?topic=framed');
  expect(r.status).toBe(200);
  return r.json.offsets.reduce((sum: number, q: { maxOffset: number }) => sum + q.maxOffset, 0);
}

describe('frames', () => {
  it('a framed send stores what a JSON send would; a framed receive gives the bodies byte for byte', async () => {
    const binary = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]);
    const sent: Array<{ meta: Record<string, unknown>; body: Buffer }> = [
      { meta: { tag: 'a', keys: ['k1'], properties: { p: '1' } }, body: Buffer.from('héllo wörld') },
      { meta: {}, body: binary },
    ];
    // Through both brokers: one of them forwards to the owner of the queues it picks.
    for (const broker of [0, 1, 0, 1]) {
      const reply = await raw(broker, 'POST', '/v1/topics/framed/messages', encodeFrame(sent.map((s) => s.meta), sent.map((s) => s.body)), {
        'content-type': frameMediaType,
      });
      expect(reply.status, reply.body.toString()).toBe(200);
      expect(reply.contentType).toMatch(/application\/json/);
      const results = JSON.parse(reply.body.toString()).results as Array<{ messageId: string }>;
      expect(results).toHaveLength(2);
    }
    expect(await stored()).toBe(8);

    const got: Array<{ meta: Record<string, unknown>; body: Buffer }> = [];
    for (let round = 0; round < 20 && got.length < 8; round++) {
      const reply = await raw(round % 2, 'POST', '/v1/groups/framed-group/receive', JSON.stringify({ topic: 'framed', max: 32, waitMs: 0 }), {
        'content-type': 'application/json',
        accept: frameMediaType,
      });
      expect(reply.status, reply.body.toString()).toBe(200);
      expect(reply.contentType).toBe(frameMediaType);
      const frame = decodeFrame(reply.body);
      // The short form: the topic once for the frame (messages forwarded from the other broker
      // group may still name it), no empty tag, keys or properties.
      expect(frame.meta['topic']).toBe('framed');
      frame.meta.messages.forEach((m, i) => got.push({ meta: m, body: frame.bodies[i]! }));
    }
    expect(got).toHaveLength(8);
    for (const g of got) {
      expect(g.meta['body']).toBeUndefined();
      expect(g.meta['bodyEncoding']).toBeUndefined();
      expect(typeof g.meta['receiptHandle']).toBe('string');
      if (g.meta['tag'] === 'a') {
        expect(g.body.toString('utf8')).toBe('héllo wörld');
        expect(g.meta['keys']).toEqual(['k1']);
        expect(g.meta['properties']).toEqual({ p: '1' });
      } else {
        expect(g.body.equals(binary)).toBe(true);
        expect(g.meta['tag'] ?? null).toBeNull();
        expect(g.meta['keys'] ?? []).toEqual([]);
        expect(g.meta['properties'] ?? {}).toEqual({});
      }
      expect(g.meta['topic'] ?? 'framed').toBe('framed');
    }
    // The handles of a framed receive ack as any others, on whichever broker.
    const ack = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/framed-group/ack', {
      topic: 'framed',
      receiptHandles: got.map((g) => g.meta['receiptHandle']),
    });
    expect(ack.status, JSON.stringify(ack.json)).toBe(200);
    expect(ack.json.acked).toHaveLength(8);
    expect(ack.json.failed).toEqual([]);
  });

  it('a receive that accepts binary deliveries gets every field and body, also from the other broker group', async () => {
    const binary = Buffer.from([0, 0xff, 0x80, 10]);
    const ids = new Map<string, 'text' | 'binary'>();
    for (const broker of [0, 1, 0, 1]) {
      const reply = await api(cluster.url(broker), cluster.adminKey, 'POST', '/v1/topics/framed/messages', {
        messages: [
          { body: 'héllo', tag: 'a', keys: ['k1', 'k2'], properties: { p: 'ü' } },
          { body: binary.toString('base64'), bodyEncoding: 'base64' },
        ],
      });
      expect(reply.status, JSON.stringify(reply.json)).toBe(200);
      ids.set(reply.json.results[0].messageId, 'text');
      ids.set(reply.json.results[1].messageId, 'binary');
    }
    const got: DecodedDelivery[] = [];
    for (let round = 0; round < 20 && got.length < 8; round++) {
      const reply = await raw(round % 2, 'POST', '/v1/groups/framed-group/receive', JSON.stringify({ topic: 'framed', max: 32, waitMs: 0 }), {
        'content-type': 'application/json',
        accept: `${deliveriesMediaType}, ${frameMediaType}, application/json`,
      });
      expect(reply.status, reply.body.toString()).toBe(200);
      expect(reply.contentType).toBe(deliveriesMediaType);
      const answer = decodeDeliveries(reply.body);
      expect(answer.topic).toBe('framed');
      got.push(...answer.messages);
    }
    expect(got.map((d) => d.messageId).sort()).toEqual([...ids.keys()].sort());
    for (const d of got) {
      expect(d.topic).toBe('framed');
      expect(d.deliveryAttempt).toBe(1);
      expect(d.queueId).toBeGreaterThanOrEqual(0);
      expect(d.queueOffset).toBeGreaterThanOrEqual(0);
      expect(d.storedAt).toBeGreaterThanOrEqual(d.bornAt);
      if (ids.get(d.messageId) === 'text') {
        expect(d.body.toString('utf8')).toBe('héllo');
        expect([d.tag, d.keys, d.properties]).toEqual(['a', ['k1', 'k2'], { p: 'ü' }]);
      } else {
        expect(d.body.equals(binary)).toBe(true);
        expect([d.tag, d.keys, d.properties]).toEqual([null, [], {}]);
      }
    }
    const badFlag = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/ack', {
      topic: 'framed',
      receiptHandles: got.map((d) => d.receiptHandle),
      listAcked: 'no',
    });
    expect(badFlag.status).toBe(400);
    expect(badFlag.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'listAcked' });
    // Nothing was acked by the refused request: all 8 ack now, half of them forwarded to the
    // other broker group, and the answer is a count.
    const ack = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/ack', {
      topic: 'framed',
      receiptHandles: [...got.map((d) => d.receiptHandle), 'not-a-handle'],
      listAcked: false,
    });
    expect(ack.status, JSON.stringify(ack.json)).toBe(200);
    expect(ack.json.acked).toBeUndefined();
    expect(ack.json.ackedCount).toBe(8);
    expect(ack.json.failed.map((f: { receiptHandle: string; code: string }) => [f.receiptHandle, f.code])).toEqual([
      ['not-a-handle', 'INVALID_RECEIPT_HANDLE'],
    ]);
  });

  it('a receive carries the acks of the batch before it: done first, also for the other broker group, refusals listed', async () => {
    for (const broker of [0, 1, 0, 1]) {
      const sent = await api(cluster.url(broker), cluster.adminKey, 'POST', '/v1/topics/framed/messages', {
        messages: [{ body: 'a' }, { body: 'b' }],
      });
      expect(sent.status).toBe(200);
    }
    const first: DecodedDelivery[] = [];
    for (let round = 0; round < 20 && first.length < 8; round++) {
      const reply = await raw(round % 2, 'POST', '/v1/groups/framed-group/receive', JSON.stringify({ topic: 'framed', max: 32 }), {
        'content-type': 'application/json',
        accept: deliveriesMediaType,
      });
      first.push(...decodeDeliveries(reply.body).messages);
    }
    expect(first).toHaveLength(8);
    // A bad list is refused before anything is acked or received.
    const bad = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/receive', {
      topic: 'framed',
      ackReceiptHandles: [],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'ackReceiptHandles' });
    // Binary answer: the refusals travel in the answer's rest; the 8 handles (from both broker
    // groups) are acked, so the group has nothing left in flight and nothing to receive.
    const reply = await raw(0, 'POST', '/v1/groups/framed-group/receive', JSON.stringify({
      topic: 'framed',
      max: 32,
      ackReceiptHandles: [...first.map((d) => d.receiptHandle), 'not-a-handle'],
    }), { 'content-type': 'application/json', accept: deliveriesMediaType });
    expect(reply.status, reply.body.toString()).toBe(200);
    const answer = decodeDeliveries(reply.body);
    expect(answer.messages).toEqual([]);
    expect((answer.ackFailed as Array<{ receiptHandle: string; code: string }>).map((f) => [f.receiptHandle, f.code])).toEqual([
      ['not-a-handle', 'INVALID_RECEIPT_HANDLE'],
    ]);
    const offsets = await api(cluster.url(0), cluster.adminKey, 'GET', '/v1/groups/framed-group/offsets?topic=framed');
    const lag = offsets.json.offsets.reduce((sum: number, q: { committedOffset: number; maxOffset: number }) => sum + q.maxOffset - q.committedOffset, 0);
    expect(lag).toBe(0);
    // JSON answer: every handle refused is still an answer, not an error (the receive happened).
    const again = await api(cluster.url(1), cluster.adminKey, 'POST', '/v1/groups/framed-group/receive', {
      topic: 'framed',
      ackReceiptHandles: [first[0]!.receiptHandle],
    });
    expect(again.status).toBe(200);
    expect(again.json.messages).toEqual([]);
    expect(again.json.ackFailed.map((f: { code: string }) => f.code)).toEqual(['INVALID_RECEIPT_HANDLE']);
    // A whole batch of handles fits: 1,024 of them at their real length (about 100 bytes each).
    const full = Array.from({ length: 1024 }, (_, i) => `${first[0]!.receiptHandle.slice(0, -4)}${String(i).padStart(4, '0')}`);
    expect(JSON.stringify(full).length).toBeGreaterThan(64 * 1024);
    const big = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/receive', { topic: 'framed', ackReceiptHandles: full });
    expect(big.status, JSON.stringify(big.json).slice(0, 300)).toBe(200);
    expect(big.json.ackFailed).toHaveLength(1024);
  });

  it('without Accept: frame, a receive answers JSON as before', async () => {
    await raw(0, 'POST', '/v1/topics/framed/messages', encodeFrame([{}], ['plain']), { 'content-type': frameMediaType });
    const reply = await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/receive', { topic: 'framed', max: 32, waitMs: 1000 });
    expect(reply.status).toBe(200);
    expect(reply.json.messages.map((m: { body: string; bodyEncoding: string }) => [m.body, m.bodyEncoding])).toEqual([['plain', 'utf8']]);
    await api(cluster.url(0), cluster.adminKey, 'POST', '/v1/groups/framed-group/ack', {
      topic: 'framed',
      receiptHandles: reply.json.messages.map((m: { receiptHandle: string }) => m.receiptHandle),
    });
  });

  it('refuses malformed frames and frame messages with a body or topic field, storing nothing', async () => {
    const good = encodeFrame([{ tag: 'x' }], ['body']);
    const cases: Array<{ body: Buffer; code: string; field?: string }> = [
      { body: Buffer.from('{"messages":[{"body":"x"}]}'), code: 'MALFORMED_FRAME' },
      { body: good.subarray(0, good.length - 1), code: 'MALFORMED_FRAME' },
      { body: Buffer.concat([good, Buffer.from('!')]), code: 'MALFORMED_FRAME' },
      { body: encodeFrame([{ body: 'inline' }], ['x']), code: 'INVALID_ARGUMENT', field: 'messages[0].body' },
      { body: encodeFrame([{ topic: 'elsewhere' }], ['x']), code: 'INVALID_ARGUMENT', field: 'messages[0].topic' },
      { body: encodeFrame([{}], ['']), code: 'MESSAGE_BODY_EMPTY' },
      { body: encodeFrame([], []), code: 'INVALID_ARGUMENT' },
      { body: encodeFrame([{ tag: 'a|b' }], ['x']), code: 'ILLEGAL_MESSAGE_TAG' },
    ];
    const before = await stored();
    for (const c of cases) {
      for (const broker of [0, 1]) {
        const reply = await raw(broker, 'POST', '/v1/topics/framed/messages', c.body, { 'content-type': frameMediaType });
        expect(reply.status, reply.body.toString()).toBe(400);
        const error = JSON.parse(reply.body.toString()).error as { code: string; field?: string };
        expect(error.code).toBe(c.code);
        if (c.field !== undefined) expect(error.field).toBe(c.field);
      }
    }
    expect(await stored()).toBe(before);
  });
});
