/**
 * What `crash.test.ts` and its child `crash-writer.ts` agree on: the store options, the topics,
 * and the body layout that lets the parent tell which acknowledged message and batch a record is.
 */
import type { MessageStoreOptions } from '../../broker-fargate/src/store/message-store.ts';

export const crashTopics = [
  { name: 'crash-a', queues: 4 },
  { name: 'crash-b', queues: 2 },
  { name: 'crash-c', queues: 1 },
] as const;

/** Small segments, consume-queue files and index files, so every run rolls all three. */
export function crashStoreOptions(dataDir: string): MessageStoreOptions {
  return {
    dataDir,
    brokerId: 3,
    storeHost: '10.0.0.1:10911',
    flushMode: 'sync',
    segmentSizeBytes: 256 * 1024,
    maxGroupBytes: 64 * 1024,
    consumeQueueEntriesPerFile: 1024,
    indexSlotCount: 512,
    indexMaxEntries: 4096,
    retentionCheckIntervalMs: 0,
  };
}

export function messageBody(seq: number, batchId: string, batchSize: number, fillerBytes: number): Buffer {
  const head = `seq=${seq};batch=${batchId};n=${batchSize};`;
  const body = Buffer.alloc(head.length + fillerBytes, 0x61 + (seq % 26));
  body.write(head, 0, 'latin1');
  return body;
}

export interface BodyFields {
  seq: number;
  batchId: string;
  batchSize: number;
}

export function parseBody(body: Uint8Array): BodyFields | undefined {
  const text = Buffer.from(body.buffer, body.byteOffset, Math.min(body.length, 80)).toString('latin1');
  const m = /^seq=(\d+);batch=([\d.]+);n=(\d+);/.exec(text);
  if (m === null) return undefined;
  return { seq: Number(m[1]), batchId: m[2]!, batchSize: Number(m[3]) };
}

/** A small seeded generator, so a failing run can be replayed from its printed seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
