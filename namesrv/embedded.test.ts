import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClientConfig, ensureBucket, s3ClientConfig, startEmbeddedServers } from './embedded.ts';
import { NameServer } from './registry.ts';
import { ensureTables } from './tables.ts';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'skyrocket-embedded-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe('startEmbeddedServers', () => {
  it('serves DynamoDB and S3, pages S3 listings, and keeps the data across a restart', async () => {
    const first = await startEmbeddedServers({ dataDir });
    const dynamo = new DynamoDBClient(dynamoClientConfig(first.dynamodb));
    const s3 = new S3Client(s3ClientConfig(first.s3));
    try {
      await ensureTables(dynamo, 'dev-');
      await new NameServer({ client: dynamo, prefix: 'dev-' }).createGroup({ name: 'kept' });
      await ensureBucket(s3, 'segments');
      await ensureBucket(s3, 'segments');
      for (let i = 0; i < 5; i++) {
        await s3.send(new PutObjectCommand({ Bucket: 'segments', Key: `seg/${i}`, Body: Buffer.from(`segment ${i}`) }));
      }
      // Paging needs s3rver's DES continuation tokens: this is what the legacy provider is for.
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: 'segments', MaxKeys: 2, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((c) => c.Key ?? ''));
        token = page.NextContinuationToken;
      } while (token !== undefined);
      expect(keys).toEqual(['seg/0', 'seg/1', 'seg/2', 'seg/3', 'seg/4']);
    } finally {
      // The clients' keep-alive connections stay open across the stop: it must not wait for them.
      await first.stop();
      dynamo.destroy();
      s3.destroy();
    }

    const second = await startEmbeddedServers({ dataDir });
    const dynamo2 = new DynamoDBClient(dynamoClientConfig(second.dynamodb));
    const s3b = new S3Client(s3ClientConfig(second.s3));
    try {
      expect((await new NameServer({ client: dynamo2, prefix: 'dev-' }).getGroup('kept'))?.name).toBe('kept');
      const object = await s3b.send(new GetObjectCommand({ Bucket: 'segments', Key: 'seg/3' }));
      expect(await object.Body?.transformToString()).toBe('segment 3');
    } finally {
      await second.stop();
      dynamo2.destroy();
      s3b.destroy();
    }
  });

  it('fails clearly when a port is taken, and leaves nothing running', async () => {
    const running = await startEmbeddedServers({ dataDir: path.join(dataDir, 'a') });
    try {
      const port = Number(new URL(running.s3.endpoint).port);
      await expect(startEmbeddedServers({ dataDir: path.join(dataDir, 'b'), s3Port: port })).rejects.toThrow(/EADDRINUSE/);
      // The DynamoDB server of the failed start was stopped, so its LevelDB lock is free again.
      const again = await startEmbeddedServers({ dataDir: path.join(dataDir, 'b') });
      await again.stop();
    } finally {
      await running.stop();
    }
  });
});
