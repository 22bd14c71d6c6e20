import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTables } from '../../namesrv/tables.ts';
import { TimerIndex, bucketStart, type ParkedTimer } from '../../namesrv/timers.ts';
import { backends, dynamoClient, s3Client, uniquePrefix } from '../../test/support/aws.ts';
import { DelaySweep } from './sweep.ts';

/**
 * The sweep against the DynamoDB and S3 stand-ins and a stand-in broker (an HTTP server that
 * answers the move endpoint as told): what it removes, what it leaves, where its watermark goes.
 */
const dynamo = dynamoClient();
const s3 = s3Client();
const bucketMs = 1000;
const horizonMs = 4000;
let server: Server;
let brokerUrl: string;
/** What the stand-in broker answers for each id; ACCEPTED when not named. */
const answers = new Map<string, string>();
const received: Array<{ secret: string | undefined; ids: string[] }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const timers = (JSON.parse(body) as { timers: Array<{ messageId: string }> }).timers;
      received.push({ secret: req.headers['x-skyrocket-internal'] as string | undefined, ids: timers.map((t) => t.messageId) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ results: timers.map((t) => ({ messageId: t.messageId, status: answers.get(t.messageId) ?? 'ACCEPTED' })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  brokerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  dynamo.destroy();
  s3.destroy();
});

function timer(n: number, deliverAt: number): ParkedTimer {
  const body = Buffer.from(`t${n}`);
  return {
    messageId: `0100000001${n.toString(16).toUpperCase().padStart(16, '0')}`,
    deliverAt,
    brokerGroup: 'bg-1',
    topic: 'later',
    queueId: 0,
    bornAt: 1,
    bornHost: 'p:1',
    body,
    bodyBytes: body.byteLength,
  };
}

async function setup(): Promise<{ index: TimerIndex; clock: { now: number }; sweep: (leaders?: Map<string, string>) => DelaySweep }> {
  const prefix = uniquePrefix('sweep');
  await ensureTables(dynamo, prefix);
  const clock = { now: 1_900_000_000_000 };
  const index = new TimerIndex({ client: dynamo, prefix, s3: { client: s3, bucket: backends().s3.bucket }, now: () => clock.now });
  const sweep = (leaders = new Map([['bg-1', brokerUrl]])): DelaySweep =>
    new DelaySweep({ index, leaders: async () => leaders, internalSecret: 'sixteen-chars-secret', horizonMs, now: () => clock.now });
  return { index, clock, sweep };
}

describe('DelaySweep', () => {
  it('does nothing while nothing was ever parked', async () => {
    const { sweep } = await setup();
    expect(await sweep().run()).toMatchObject({ buckets: 0, found: 0, watermark: undefined });
  });

  it('moves what is due within the horizon, removes what the broker took, keeps what it refused', async () => {
    const { index, clock, sweep } = await setup();
    const layout = await index.ensureLayout({ bucketMs, shards: 2 });
    const t0 = clock.now;
    const soon = [timer(1, t0 + 3000), timer(2, t0 + 3500), timer(3, t0 + 3900)];
    const later = timer(4, t0 + 20_000);
    await index.park([...soon, later], layout);
    answers.set(soon[2]!.messageId, 'REJECTED');
    received.length = 0;

    const first = await sweep().run();
    expect(first).toMatchObject({ found: 3, moved: 2, failed: 1 });
    expect(received.flatMap((r) => r.ids).sort()).toEqual(soon.map((t) => t.messageId).sort());
    expect(received.every((r) => r.secret === 'sixteen-chars-secret')).toBe(true);
    expect(await index.get(soon[0]!.messageId)).toBeUndefined();
    expect(await index.get(soon[2]!.messageId)).toBeDefined();
    expect(await index.get(later.messageId)).toBeDefined();
    // The watermark stays at the bucket that failed.
    expect(first.watermark).toBe(bucketStart(t0 + 3900, bucketMs));

    // Without a leader for the group, nothing moves and nothing is removed.
    answers.clear();
    expect(await sweep(new Map()).run()).toMatchObject({ found: 1, moved: 0, failed: 1 });
    expect(await index.get(soon[2]!.messageId)).toBeDefined();

    // Then the broker takes it (DUPLICATE counts as taken too), and the watermark moves on to one
    // bucket before the last it read.
    answers.set(soon[2]!.messageId, 'DUPLICATE');
    const third = await sweep().run();
    expect(third).toMatchObject({ found: 1, duplicate: 1, failed: 0 });
    expect(await index.get(soon[2]!.messageId)).toBeUndefined();
    expect(third.watermark).toBe(bucketStart(t0 + horizonMs, bucketMs) - bucketMs);

    // The far one, once within the horizon.
    clock.now = t0 + 17_000;
    expect(await sweep().run()).toMatchObject({ found: 1, moved: 1 });
    expect(await index.get(later.messageId)).toBeUndefined();
  });

  it('leaves a batch in the index when the step after the move fails', async () => {
    const { index, clock } = await setup();
    const layout = await index.ensureLayout({ bucketMs, shards: 2 });
    const t = timer(9, clock.now + 2000);
    await index.park([t], layout);
    const failing = new DelaySweep({
      index,
      leaders: async () => new Map([['bg-1', brokerUrl]]),
      internalSecret: 'sixteen-chars-secret',
      horizonMs,
      now: () => clock.now,
      afterMove: () => {
        throw new Error('injected');
      },
    });
    expect(await failing.run()).toMatchObject({ found: 1, moved: 1 });
    expect(await index.get(t.messageId)).toBeDefined();
  });
});
