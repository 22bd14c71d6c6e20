/**
 * `npm run bench:consume`: the broker's consuming path without HTTP — a backlog in a real store on
 * disk, drained through ConsumerGroups (receive, then ack of every handle), as the catch-up
 * workload of `npm run bench` does through the API. Prints JSON: messages/s and CPU µs per message.
 *
 *   --messages 200000  --queues 8  --batch 1000
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ConsumerGroups } from '../broker-fargate/src/consume/consumer-groups.ts';
import { MessageStore } from '../broker-fargate/src/store/index.ts';

const { values } = parseArgs({ options: { messages: { type: 'string' }, queues: { type: 'string' }, batch: { type: 'string' } } });
const total = Number(values.messages ?? 200_000);
const queues = Number(values.queues ?? 8);
const batch = Number(values.batch ?? 1000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-bench-consume-'));
try {
  const store = await MessageStore.open({ dataDir: path.join(root, 'store'), brokerId: 1, storeHost: '127.0.0.1:1', flushMode: 'async', retentionCheckIntervalMs: 0 });
  const body = Buffer.alloc(1024, 'x');
  for (let sent = 0; sent < total; ) {
    const n = Math.min(256, total - sent);
    await store.append(Array.from({ length: n }, (_, i) => ({ topic: 't', queueId: (sent + i) % queues, body, bornTimestamp: Date.now(), bornHost: 'h' })));
    sent += n;
  }
  const groups = new ConsumerGroups({ store, brokerGroup: 'bg', dataDir: path.join(root, 'consume'), snapshotIntervalMs: 3_600_000 });
  const queueIds = Array.from({ length: queues }, (_, i) => i);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let got = 0;
  while (got < total) {
    const deliveries = await groups.receive({ group: 'g', mode: 'CLUSTERING', topic: 't', queueIds, max: batch, invisibleMs: 60_000 });
    if (deliveries.length === 0) throw new Error(`stalled at ${got}`);
    for (const d of deliveries) groups.ack(d.receiptHandle, 'g', 't');
    got += deliveries.length;
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ messages: got, seconds, msgsPerSec: Math.round(got / seconds), cpuMicrosPerMessage: +((used.user + used.system) / got).toFixed(2) }));
  await groups.close();
  await store.close();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
