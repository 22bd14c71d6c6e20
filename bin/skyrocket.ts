#!/usr/bin/env -S node --import tsx
/**
 * The `skyrocket` command line. `npm start` runs `skyrocket dev`.
 *
 * Until the broker service lands, `dev` runs the storage engine on its own: it opens (and if
 * needed recovers) a store under the data directory, appends a batch of messages with sync flush,
 * reads them back by queue offset, by id and by key, and prints what it did. Run it twice to see
 * the data survive a restart.
 */
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { MessageStore } from '../broker-fargate/src/store/index.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

async function dev(options: { dataDir: string; messages: number; json: boolean }): Promise<void> {
  const dataDir = path.resolve(options.dataDir, 'store');
  const started = performance.now();
  const store = await MessageStore.open({ dataDir, brokerId: 1, storeHost: '127.0.0.1:10911' });
  const openedMs = performance.now() - started;
  const before = store.queueRange('demo', 0).maxOffset;
  const batch = Array.from({ length: options.messages }, (_, i) => ({
    topic: 'demo',
    queueId: 0,
    body: Buffer.from(JSON.stringify({ order: before + i, at: new Date().toISOString() })),
    tag: i % 2 === 0 ? 'even' : 'odd',
    keys: [`order-${before + i}`],
    bornTimestamp: Date.now(),
    bornHost: '127.0.0.1:0',
  }));
  const appendStarted = performance.now();
  const results = await store.append(batch);
  const appendMs = performance.now() - appendStarted;
  const read = await store.read('demo', 0, before, { maxMessages: 5 });
  const even = await store.read('demo', 0, before, { maxMessages: 5, tags: new Set(['even']) });
  const lastId = results.at(-1)?.messageId ?? '';
  const byId = await store.getById(lastId);
  const byKey = await store.queryByKey('demo', `order-${before}`);
  const summary = {
    dataDir,
    openedMs: Math.round(openedMs),
    recovery: { scannedRecords: store.recovery.scannedRecords, truncatedBytes: store.recovery.truncatedBytes },
    queue: store.queueRange('demo', 0),
    appended: results.length,
    appendMs: Math.round(appendMs * 10) / 10,
    firstRead: read.messages.map((m) => ({ queueOffset: m.queueOffset, tag: m.tag, body: m.body.toString() })),
    evenTagged: even.messages.map((m) => m.queueOffset),
    lookupById: byId === undefined ? null : { messageId: byId.messageId, queueOffset: byId.queueOffset },
    lookupByKey: byKey.map((m) => m.messageId),
  };
  await store.close();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const out = process.stdout;
  out.write(`Skyrocket store demo (the broker service is not built yet)\n`);
  out.write(`  data dir        ${summary.dataDir}\n`);
  out.write(`  opened in       ${summary.openedMs} ms (recovered ${summary.recovery.scannedRecords} records past the checkpoint)\n`);
  out.write(`  appended        ${summary.appended} messages with sync flush in ${summary.appendMs} ms\n`);
  out.write(`  queue demo/0    offsets [${summary.queue.minOffset}, ${summary.queue.maxOffset})\n`);
  for (const m of summary.firstRead) out.write(`  read @${m.queueOffset} [${m.tag}] ${m.body}\n`);
  out.write(`  tag "even"      offsets ${summary.evenTagged.join(', ')}\n`);
  out.write(`  by id           ${lastId} -> offset ${summary.lookupById?.queueOffset}\n`);
  out.write(`  by key          order-${before} -> ${summary.lookupByKey.join(', ')}\n`);
  out.write(`Run it again: the messages are still there and the offsets continue.\n`);
}

const program = new Command()
  .name('skyrocket')
  .description('Skyrocket: a managed message queue for AWS with the semantics of Apache RocketMQ');

program
  .command('dev')
  .description('run Skyrocket locally (for now: the storage engine demo)')
  .option('--data-dir <dir>', 'where local data lives', process.env['SKYROCKET_DATA_DIR'] ?? '.skyrocket')
  .option('--messages <n>', 'messages to append', positiveInt, 100)
  .option('--json', 'print one JSON object', false)
  .action(dev);

await program.parseAsync(process.argv);
