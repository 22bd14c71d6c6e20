/**
 * The child process of `crash.test.ts`: opens a store, appends batches until it is killed, and
 * reports every acknowledged message on stdout, one line each, only after its append resolved.
 *
 *   argv: dataDir seqBase seed checkpointIntervalMs
 *
 *   stdout := "opening\n" "ready " endOffset "\n" ack*
 *   ack    := "ack " topic queueId queueOffset physicalOffset messageId bodyCrc seq batchId batchSize "\n"
 *
 * A body is `seq=<seq>;batch=<batchId>;n=<batchSize>;` followed by filler, so the parent can check
 * every record it reads against what was acknowledged and tell which batch it belongs to.
 */
import { crc32c } from '@node-rs/crc32';
import { MessageStore } from '../../broker-fargate/src/store/message-store.ts';
import type { RecordInput } from '../../broker-fargate/src/store/record.ts';
import { crashStoreOptions, crashTopics, messageBody, mulberry32 } from './crash-support.ts';

const [dataDir, seqBaseArg, seedArg, checkpointArg] = process.argv.slice(2);
if (dataDir === undefined || seqBaseArg === undefined || seedArg === undefined || checkpointArg === undefined) {
  throw new Error('usage: crash-writer.ts dataDir seqBase seed checkpointIntervalMs');
}
const random = mulberry32(Number(seedArg));
let seq = Number(seqBaseArg);
let batchNumber = 0;

process.stdout.write('opening\n');
const store = await MessageStore.open({ ...crashStoreOptions(dataDir), checkpointIntervalMs: Number(checkpointArg) });
process.stdout.write(`ready ${store.stats().endOffset}\n`);

/** Appends batches of 1..20 messages forever; several loops run at once so writes are grouped. */
async function appendLoop(): Promise<never> {
  for (;;) {
    const batchSize = 1 + Math.floor(random() * 20);
    const batchId = `${seedArg}.${batchNumber++}`;
    const records: RecordInput[] = [];
    const seqs: number[] = [];
    for (let i = 0; i < batchSize; i++) {
      const topic = crashTopics[Math.floor(random() * crashTopics.length)]!;
      const queueId = Math.floor(random() * topic.queues);
      const s = seq++;
      seqs.push(s);
      const tagPick = Math.floor(random() * 4);
      records.push({
        topic: topic.name,
        queueId,
        body: messageBody(s, batchId, batchSize, Math.floor(random() * (random() < 0.05 ? 4000 : 300))),
        tag: tagPick === 3 ? undefined : ['red', 'green', 'blue'][tagPick],
        keys: random() < 0.3 ? [`k${s}`, `batch-${batchId}`] : [`k${s}`],
        bornTimestamp: Date.now(),
        bornHost: '10.0.0.9:4000',
      });
    }
    const results = await store.append(records);
    let lines = '';
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      const rec = records[i]!;
      lines += `ack ${rec.topic} ${r.queueId} ${r.queueOffset} ${r.physicalOffset} ${r.messageId} ${crc32c(Buffer.from(rec.body))} ${seqs[i]} ${batchId} ${batchSize}\n`;
    }
    process.stdout.write(lines);
    // A short pause keeps the log to tens of megabytes over the whole test while several loops
    // still overlap, so group commits, rolls and checkpoints all happen while the kill can land.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

await Promise.all([appendLoop(), appendLoop(), appendLoop()]);
