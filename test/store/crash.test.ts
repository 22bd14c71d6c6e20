/**
 * Crash test: a child process appends to a store and is killed with SIGKILL at a random moment,
 * again and again on the same data directory. After each kill the store is reopened here and
 * everything the child acknowledged must be there, intact, at the offsets the ack named; queues
 * must be contiguous without duplicates; batches must be stored whole or not at all.
 *
 * SIGKILL keeps what reached the page cache, so the kills find the log at every stage of a write,
 * a roll, a seal, a segment allocation, a checkpoint and a recovery; some cycles let the next
 * child start on the crashed directory, so recovery itself gets killed too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32c } from '@node-rs/crc32';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../core/message.ts';
import { MessageStore } from '../../broker-fargate/src/store/message-store.ts';
import { crashStoreOptions, crashTopics, mulberry32, parseBody } from './crash-support.ts';
import { crashSnapshot, message, OpenStores, recordSizeAt, segmentFiles, smallStore, TempDirs } from './store-files.ts';

/** Kill/reopen cycles; about 0.6 s each here (0.2 s of it starting Node with tsx). */
const cycles = 56;
const childPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-writer.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface Ack {
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  messageId: string;
  bodyCrc: number;
  seq: number;
  batchId: string;
  batchSize: number;
}

interface ChildRun {
  acks: Ack[];
  readyEndOffset: number | undefined;
  killedAt: 'opening' | 'running';
  /** From spawn to the child's first line: the cost of starting Node with tsx. */
  startupMs: number | undefined;
}

const queueNames = crashTopics.flatMap((t) => Array.from({ length: t.queues }, (_, q) => ({ topic: t.name, queueId: q })));
const keyOf = (topic: string, queueId: number): string => `${topic}/${queueId}`;

const children = new Set<ChildProcess>();
/** The data directory every child and every reopen shares; made and removed around the test. */
let dataDir = '';

afterAll(() => {
  // Only the processes this file spawned, by their own handle.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (dataDir !== '') fs.rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Starts the writer and kills it `delayMs` after it reported `phase`. Resolves once the process
 * is gone and its stdout drained, with every complete ack line it printed.
 */
function runChild(seqBase: number, seed: number, checkpointIntervalMs: number, phase: 'opening' | 'ready', delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', tsxLoader, childPath, dataDir, String(seqBase), String(seed), String(checkpointIntervalMs)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.add(child);
    let out = '';
    let err = '';
    let armed = false;
    let killedAt: ChildRun['killedAt'] = 'opening';
    const marker = phase === 'opening' ? 'opening\n' : 'ready ';
    const spawnedAt = performance.now();
    let startupMs: number | undefined;
    let stuck = false;
    const watchdog = setTimeout(() => {
      stuck = true;
      child.kill('SIGKILL');
    }, 20_000);
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      startupMs ??= performance.now() - spawnedAt;
      if (!armed && out.includes(marker)) {
        armed = true;
        setTimeout(() => {
          killedAt = out.includes('ready ') ? 'running' : 'opening';
          child.kill('SIGKILL');
        }, delayMs);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      children.delete(child);
      if (signal !== 'SIGKILL' || stuck) {
        const why = stuck ? `never printed ${JSON.stringify(marker)}` : `exited on its own (code ${code}, signal ${signal})`;
        reject(new Error(`writer ${why}: ${err || out.slice(-2000)}`));
        return;
      }
      const acks: Ack[] = [];
      let readyEndOffset: number | undefined;
      // A line cut by the kill has no newline yet and is ignored: it was never fully reported.
      for (const line of out.slice(0, out.lastIndexOf('\n') + 1).split('\n')) {
        if (line.startsWith('ready ')) readyEndOffset = Number(line.slice(6));
        if (!line.startsWith('ack ')) continue;
        const [, topic, queueId, queueOffset, physicalOffset, messageId, bodyCrc, seq, batchId, batchSize] = line.split(' ');
        acks.push({
          topic: topic!,
          queueId: Number(queueId),
          queueOffset: Number(queueOffset),
          physicalOffset: Number(physicalOffset),
          messageId: messageId!,
          bodyCrc: Number(bodyCrc),
          seq: Number(seq),
          batchId: batchId!,
          batchSize: Number(batchSize),
        });
      }
      resolve({ acks, readyEndOffset, killedAt, startupMs });
    });
  });
}

/** Reads `[from, to)` of a queue; every offset must hold a message that verifies. */
async function readRange(store: MessageStore, topic: string, queueId: number, from: number, to: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let offset = from;
  while (offset < to) {
    const read = await store.read(topic, queueId, offset, { maxMessages: Math.min(512, to - offset) });
    expect(read.corrupted, `${topic}/${queueId} corrupted entries at ${offset}`).toEqual([]);
    expect(read.status, `${topic}/${queueId} at ${offset} of ${to}`).toBe('FOUND');
    for (const m of read.messages) {
      // Contiguous: each message sits at the next offset, no hole, no repeat.
      expect(m.queueOffset, `${topic}/${queueId}`).toBe(offset);
      offset++;
    }
    expect(read.nextOffset).toBe(offset);
    out.push(...read.messages);
  }
  return out.slice(0, to - from);
}

describe('crash: SIGKILL during appends, reopen, verify', () => {
  it(`keeps every acknowledged message across ${cycles} kills`, { timeout: 150_000 }, async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-crash-'));
    const seed = Number(process.env.SKYROCKET_CRASH_SEED ?? Date.now() % 1_000_000);
    const random = mulberry32(seed);
    const context = `seed ${seed} (set SKYROCKET_CRASH_SEED to replay the kill schedule)`;
    /** Per queue: the seq stored at each offset, as last verified. */
    const model = new Map<string, number[]>(queueNames.map((q) => [keyOf(q.topic, q.queueId), []]));
    /** Every ack so far, by seq. */
    const acked = new Map<number, Ack>();
    /** Ack of the cycles not verified yet. */
    let unverifiedAcks: Ack[] = [];
    /** Children run since the last verification (one killed early may have written without acking). */
    let unverifiedChildren = 0;
    /** Every seq found stored so far: none may be stored twice. */
    const storedSeqs = new Set<number>();
    /** Seqs below this were written by children verified already. */
    let verifiedSeqBase = 0;
    let lastEndOffset: number | undefined;
    let seqBase = 0;
    let cycle = 0;
    let verifications = 0;
    let truncations = 0;
    let killsWhileOpening = 0;
    let unackedButStored = 0;
    const spawnToKillMs: number[] = [];
    const startupMs: number[] = [];
    const verifyMs: number[] = [];
    const started = performance.now();

    const verify = async (): Promise<void> => {
      const t0 = performance.now();
      const store = await MessageStore.open(crashStoreOptions(dataDir));
      try {
        expect(store.recovery.corruptions, context).toEqual([]);
        if (store.recovery.truncatedBytes > 0) truncations++;
        const endOffset = store.stats().endOffset;
        const newAcks = new Map<number, Ack>(unverifiedAcks.map((a) => [a.seq, a]));
        const batches = new Map<string, { size: number; seen: number }>();
        const seen = new Set<number>();
        const seqLimit = seqBase;
        for (const { topic, queueId } of queueNames) {
          const key = keyOf(topic, queueId);
          const seqs = model.get(key)!;
          const { minOffset, maxOffset } = store.queueRange(topic, queueId);
          expect(minOffset).toBe(0);
          // Nothing verified before may disappear: the stored prefix only grows.
          expect(maxOffset, `${key} shrank below what was verified; ${context}`).toBeGreaterThanOrEqual(seqs.length);
          // Spot-check the verified prefix (the whole of it is compared at the end).
          for (const probe of seqs.length === 0 ? [] : [0, seqs.length - 1, Math.floor(random() * seqs.length)]) {
            const [m] = await readRange(store, topic, queueId, probe, probe + 1);
            expect(parseBody(m!.body)?.seq, `${key}@${probe}`).toBe(seqs[probe]);
          }
          const fresh = await readRange(store, topic, queueId, seqs.length, maxOffset);
          let lastPhysical = -1;
          for (const m of fresh) {
            const body = parseBody(m.body);
            expect(body, `${key}@${m.queueOffset} body`).toBeDefined();
            const { seq, batchId, batchSize } = body!;
            expect(storedSeqs.has(seq), `seq ${seq} stored twice; ${context}`).toBe(false);
            // Only the children since the last verification can have added records.
            expect(seq >= verifiedSeqBase && seq < seqLimit, `seq ${seq} out of place; ${context}`).toBe(true);
            storedSeqs.add(seq);
            seen.add(seq);
            expect(m.physicalOffset).toBeGreaterThan(lastPhysical);
            expect(m.physicalOffset + m.body.length).toBeLessThan(endOffset);
            lastPhysical = m.physicalOffset;
            const batch = batches.get(batchId) ?? { size: batchSize, seen: 0 };
            batch.seen++;
            batches.set(batchId, batch);
            seqs.push(seq);
            const ack = newAcks.get(seq);
            if (ack === undefined) {
              unackedButStored++;
              continue;
            }
            // Acked: where the ack said, with the body that was sent.
            expect({ topic: m.topic, queueId: m.queueId, queueOffset: m.queueOffset, messageId: m.messageId }).toEqual({
              topic: ack.topic,
              queueId: ack.queueId,
              queueOffset: ack.queueOffset,
              messageId: ack.messageId,
            });
            expect(crc32c(Buffer.from(m.body)), `body of seq ${seq}`).toBe(ack.bodyCrc);
          }
          expect((await store.read(topic, queueId, maxOffset)).messages, `${key} serves past its end`).toEqual([]);
        }
        // Every ack of these cycles was found in the stored range.
        for (const ack of newAcks.values()) expect(seen.has(ack.seq), `acked seq ${ack.seq} lost; ${context}`).toBe(true);
        // All or nothing: a batch that is there at all is there whole.
        for (const [batchId, b] of batches) expect(b.seen, `batch ${batchId} of ${b.size}; ${context}`).toBe(b.size);
        // By id, every new ack; by key, a sample of them and the newest.
        const last = unverifiedAcks.at(-1);
        for (const ack of newAcks.values()) {
          const byId = await store.getById(ack.messageId);
          expect(byId === undefined ? undefined : crc32c(Buffer.from(byId.body)), `getById seq ${ack.seq}`).toBe(ack.bodyCrc);
          if (ack !== last && random() >= 0.1) continue;
          const byKey = await store.queryByKey(ack.topic, `k${ack.seq}`);
          expect(byKey.map((m) => m.messageId), `queryByKey k${ack.seq}`).toEqual([ack.messageId]);
        }
        for (const ack of unverifiedAcks) acked.set(ack.seq, ack);
        unverifiedAcks = [];
        unverifiedChildren = 0;
        verifiedSeqBase = seqLimit;
        lastEndOffset = endOffset;
        verifications++;
      } finally {
        await store.close();
      }
      verifyMs.push(performance.now() - t0);
    };

    while (cycle < cycles) {
      // Most kills land while appending; some while the child opens and recovers.
      const duringOpen = random() < 0.25;
      const delayMs = duringOpen ? Math.floor(random() * 25) : 30 + Math.floor(random() * 371);
      const checkpointIntervalMs = 10 + Math.floor(random() * 300);
      const t0 = performance.now();
      const run = await runChild(seqBase, seed * 1000 + cycle, checkpointIntervalMs, duringOpen ? 'opening' : 'ready', delayMs);
      spawnToKillMs.push(performance.now() - t0);
      if (run.startupMs !== undefined) startupMs.push(run.startupMs);
      if (run.killedAt === 'opening') killsWhileOpening++;
      // The child continues where the previous verification left the log.
      if (run.readyEndOffset !== undefined && lastEndOffset !== undefined && unverifiedChildren === 0) {
        expect(run.readyEndOffset, `${context}`).toBe(lastEndOffset);
      }
      if (lastEndOffset !== undefined && run.acks[0] !== undefined) {
        const firstAcked = run.acks.reduce((min, a) => Math.min(min, a.physicalOffset), Number.POSITIVE_INFINITY);
        expect(firstAcked).toBeGreaterThanOrEqual(lastEndOffset);
      }
      unverifiedAcks.push(...run.acks);
      unverifiedChildren++;
      seqBase += 1_000_000;
      cycle++;
      // A quarter of the time the next child starts on the crashed directory unverified.
      if (random() < 0.25) continue;
      await verify();
    }
    if (unverifiedChildren > 0) await verify();

    // Finally the whole of every queue, against the model and every ack ever made.
    const store = await MessageStore.open(crashStoreOptions(dataDir));
    try {
      let total = 0;
      for (const { topic, queueId } of queueNames) {
        const seqs = model.get(keyOf(topic, queueId))!;
        const all = await readRange(store, topic, queueId, 0, store.queueRange(topic, queueId).maxOffset);
        expect(all.map((m) => parseBody(m.body)?.seq)).toEqual(seqs);
        for (const m of all) {
          const ack = acked.get(parseBody(m.body)!.seq);
          if (ack !== undefined) expect([m.messageId, crc32c(Buffer.from(m.body))]).toEqual([ack.messageId, ack.bodyCrc]);
        }
        total += all.length;
      }
      expect(total).toBeGreaterThanOrEqual(acked.size);
      const summary = {
        seed,
        cycles: cycle,
        verifications,
        killsWhileOpening,
        truncations,
        acked: acked.size,
        stored: total,
        unackedButStored,
        logBytes: store.stats().endOffset,
        sealedSegments: store.stats().sealedSegments,
        meanStartupMs: Math.round(startupMs.reduce((a, b) => a + b, 0) / startupMs.length),
        meanSpawnToKillMs: Math.round(spawnToKillMs.reduce((a, b) => a + b, 0) / spawnToKillMs.length),
        meanVerifyMs: Math.round(verifyMs.reduce((a, b) => a + b, 0) / verifyMs.length),
        totalMs: Math.round(performance.now() - started),
      };
      expect(acked.size).toBeGreaterThan(cycles * 10);
      console.log(JSON.stringify(summary));
    } finally {
      await store.close();
    }
  });
});

describe('crash with the next segment already allocated', () => {
  const dirs = new TempDirs();
  const stores = new OpenStores();
  afterAll(async () => {
    await stores.closeAll();
    dirs.removeAll();
  });

  it('continues in the segment it was writing, not in the one allocated ahead', async () => {
    const dataDir = dirs.make();
    const store = await stores.open(dataDir);
    const segmentBytes = smallStore.segmentSizeBytes;
    const nextSegment = path.join(dataDir, 'commitlog', String(segmentBytes).padStart(20, '0'));
    // Fill the first segment past the point where the next one is allocated, and wait for it.
    let last = (await store.append([message('t', 0, 0)]))[0]!;
    for (let n = 1; !fs.existsSync(nextSegment); n++) {
      expect(n, 'the next segment was never allocated').toBeLessThan(10_000);
      if (last.physicalOffset < segmentBytes * 0.75) last = (await store.append([message('t', 0, n)]))[0]!;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(last.physicalOffset).toBeLessThan(segmentBytes);
    const logEnd = last.physicalOffset + recordSizeAt(dataDir, last.physicalOffset);

    // Killed now, then restarted twice.
    const snapshot = crashSnapshot(dataDir, dirs.make());
    for (let restart = 0; restart < 2; restart++) {
      const recovered = await stores.open(snapshot);
      expect(recovered.stats().endOffset, `restart ${restart}`).toBe(logEnd);
      await stores.close(recovered);
    }
    const recovered = await stores.open(snapshot);
    const [next] = await recovered.append([message('t', 0, 99_999)]);
    expect(next!.physicalOffset).toBe(logEnd);
    expect(next!.queueOffset).toBe(last.queueOffset + 1);
    // No empty segment was sealed on the way.
    expect(segmentFiles(snapshot).filter((s) => s.sizeBytes === 0)).toEqual([]);
  });
});
