import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, dynamoClient, s3Client, uniquePrefix } from '../test/support/aws.ts';
import { ensureTables } from './tables.ts';
import { TimerIndex, bucketMsForHorizon, bucketStart, timerPartition, type ParkedTimer } from './timers.ts';

/** The timer index against the DynamoDB and S3 stand-ins. */
const dynamo = dynamoClient();
const s3 = s3Client();
const prefix = uniquePrefix('timers');
const now = 1_800_000_000_000;
let index: TimerIndex;

beforeAll(async () => {
  await ensureTables(dynamo, prefix);
  index = new TimerIndex({ client: dynamo, prefix, s3: { client: s3, bucket: backends().s3.bucket }, now: () => now });
});

afterAll(() => {
  dynamo.destroy();
  s3.destroy();
});

function timer(id: number, deliverAt: number, body: Uint8Array = Buffer.from(`body-${id}`)): ParkedTimer {
  return {
    messageId: `01000000010000000000${id.toString(16).toUpperCase().padStart(6, '0')}`,
    deliverAt,
    brokerGroup: 'bg-1',
    topic: 'later',
    queueId: id % 4,
    bornAt: now,
    bornHost: '10.0.0.1:5000',
    tag: 'tag',
    keys: ['k1', 'k2'],
    properties: { a: 'b' },
    body,
    bodyBytes: body.byteLength,
  };
}

async function partition(layout: { bucketMs: number; shards: number }, bucket: number): Promise<ParkedTimer[]> {
  const out: ParkedTimer[] = [];
  for (let shard = 0; shard < layout.shards; shard++) for await (const page of index.bucketPages(bucket, shard)) out.push(...page);
  return out.sort((a, b) => a.messageId.localeCompare(b.messageId));
}

describe('bucketMsForHorizon', () => {
  it('is a quarter of the horizon, from 100 ms to a minute', () => {
    expect(bucketMsForHorizon(3_600_000)).toBe(60_000);
    expect(bucketMsForHorizon(4_000)).toBe(1_000);
    expect(bucketMsForHorizon(200)).toBe(100);
  });
});

describe('TimerIndex', () => {
  it('keeps the layout of the first writer, and its watermark moves only forward unless lowered', async () => {
    expect(await index.readWatermark()).toBeUndefined();
    const first = await index.ensureLayout({ bucketMs: 1000, shards: 4 });
    expect(first).toEqual({ bucketMs: 1000, shards: 4, nextBucketMs: bucketStart(now, 1000), version: 1 });
    expect(await index.ensureLayout({ bucketMs: 60_000, shards: 8 })).toEqual(first);
    expect(await index.advanceWatermark(first.version, first.nextBucketMs + 5000)).toBe(true);
    expect(await index.advanceWatermark(first.version, first.nextBucketMs + 9000)).toBe(false); // stale version
    const moved = (await index.readWatermark())!;
    expect(moved.nextBucketMs).toBe(first.nextBucketMs + 5000);
    expect(await index.advanceWatermark(moved.version, first.nextBucketMs + 1000)).toBe(false); // never backward
    expect(await index.lowerWatermark(first.nextBucketMs + 2000)).toBe(true);
    expect(await index.lowerWatermark(first.nextBucketMs + 3000)).toBe(false); // not past it
    expect((await index.readWatermark())!.nextBucketMs).toBe(first.nextBucketMs + 2000);
  });

  it('parks timers (a large body in S3), finds them by id and by bucket, removes and cancels them', async () => {
    const layout = { bucketMs: 1000, shards: 4 };
    const due = now + 3_600_000;
    const big = Buffer.alloc(300 * 1024, 7);
    const timers = [timer(1, due), timer(2, due + 10), timer(3, due + 999, big), timer(4, due + 1000)];
    await index.park(timers, layout);
    await index.park(timers, layout); // idempotent

    const got = await index.get(timers[2]!.messageId);
    expect(got).toMatchObject({ messageId: timers[2]!.messageId, deliverAt: due + 999, topic: 'later', queueId: 3, tag: 'tag', keys: ['k1', 'k2'], properties: { a: 'b' }, bodyBytes: big.length });
    expect(Buffer.from(got!.body!).equals(big)).toBe(true);
    expect(got!.bodyRef).toBe(`${prefix}timers/${timers[2]!.messageId}`);
    await expect(s3.send(new HeadObjectCommand({ Bucket: backends().s3.bucket, Key: got!.bodyRef }))).resolves.toBeDefined();

    const bucket = bucketStart(due, 1000);
    const first = await partition(layout, bucket);
    expect(first.map((t) => t.messageId)).toEqual(timers.slice(0, 3).map((t) => t.messageId));
    expect(first[2]!.body).toBeUndefined(); // in S3 until loaded
    expect(Buffer.from((await index.loadBody(first[2]!)).body!).equals(big)).toBe(true);
    expect(Buffer.from(first[0]!.body!).toString()).toBe('body-1');
    expect((await partition(layout, bucket + 1000)).map((t) => t.messageId)).toEqual([timers[3]!.messageId]);
    expect(timerPartition(due, timers[0]!.messageId, layout)).toMatch(new RegExp(`^T#${bucket}#[0-3]$`));

    await index.remove(first, layout);
    expect(await partition(layout, bucket)).toEqual([]);
    expect(await index.get(timers[0]!.messageId)).toBeUndefined();
    await expect(s3.send(new HeadObjectCommand({ Bucket: backends().s3.bucket, Key: got!.bodyRef }))).rejects.toThrow();

    expect(await index.cancel(timers[3]!.messageId)).toBe(true);
    expect(await index.cancel(timers[3]!.messageId)).toBe(false);
    expect(await index.cancel(timers[0]!.messageId)).toBe(false); // moved: not parked any more
    expect(await partition(layout, bucket + 1000)).toEqual([]);
  });

  it('will not park a body too large for an item without S3', async () => {
    const plain = new TimerIndex({ client: dynamo, prefix });
    expect(plain.canPark(256 * 1024)).toBe(true);
    expect(plain.canPark(256 * 1024 + 1)).toBe(false);
    await expect(plain.park([timer(9, now + 1e7, Buffer.alloc(300 * 1024))], { bucketMs: 1000, shards: 4 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
