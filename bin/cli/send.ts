/**
 * `skyrocket send <topic> [body]`: send one message, `--count` copies of one, a file's bytes, or
 * one message per line of stdin, through the SDK's Producer (which batches concurrent sends into
 * one request each and retries retriable failures).
 *
 * With `--count n`, `{i}` in the body, keys, tag, property values and message group becomes the message's
 * number (0 to n-1), so `--key order-{i}` gives every message its own key; without a body the
 * messages are `message {i}`.
 *
 *   human: `sent to orders: <messageId> (queue 3, offset 17)`, or for many
 *          `sent 50 messages to orders in 120 ms (416 msg/s)`
 *   json:  `{ topic, sent, elapsedMs, results: [{ messageId, queueId, queueOffset }] }`, in the
 *          order the messages were given
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { Command } from 'commander';
import { Producer, SkyrocketError, isSkyrocketError, type OutgoingMessage, type SendResult } from '../../client/index.ts';
import { clientOptions, withConnection, type ConnectionOptions } from './connection.ts';
import { collect, collectProperty, positiveInt } from './options.ts';
import { UsageError, formatDuration, printJson, printLine, progressBar, runCommand, type Progress } from './output.ts';

interface SendOptions extends ConnectionOptions {
  tag?: string;
  key?: string[];
  property?: Record<string, string>;
  messageGroup?: string;
  count?: number;
  file?: string;
  batch: number;
}

/** Sends in flight at once: enough to keep several batch requests going, bounded in memory. */
const inflightMax = 4096;

export function sendCommand(): Command {
  return withConnection(
    new Command('send')
      .argument('<topic>')
      .argument('[body]', 'message body (else --file, else one message per line of stdin)')
      .description('send messages to a topic')
      .option('--tag <tag>', 'message tag, for consumers to filter on')
      .option('--key <key>', 'business key, for query by key (repeatable)', collect)
      .option('--property <name=value>', 'user property (repeatable)', collectProperty)
      .option('--message-group <group>', 'message group (FIFO topics: messages of one group stay in order)')
      .option('--count <n>', 'send n messages, with a progress bar; {i} in body, tag, keys, properties and group is the number', positiveInt)
      .option('--file <path>', 'read the body from a file (sent byte for byte)')
      .option('--batch <n>', 'most messages per request', positiveInt, 256),
  ).action((topic: string, body: string | undefined, o: SendOptions) => runCommand(o.json, () => send(topic, body, o)));
}

async function send(topic: string, body: string | undefined, o: SendOptions): Promise<void> {
  if (body !== undefined && o.file !== undefined) throw new UsageError('give a body or --file, not both');
  const producer = new Producer({ ...clientOptions(o), topic, maxBatchMessages: Math.min(o.batch, 1024) });
  const messages = await collectMessages(body, o);
  if (messages.length === 0) throw new UsageError('nothing to send: stdin had no lines');

  const progress: Progress | undefined = o.count !== undefined || messages.length > o.batch ? progressBar('send', messages.length) : undefined;
  const results: SendResult[] = new Array(messages.length);
  let sent = 0;
  let failure: unknown;
  const inflight = new Set<Promise<void>>();
  const started = performance.now();
  try {
    for (let i = 0; i < messages.length && failure === undefined; i++) {
      const done: Promise<void> = producer.send(messages[i]!).then(
        (result) => {
          results[i] = result;
          sent++;
          progress?.increment(1);
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      inflight.add(done);
      void done.finally(() => inflight.delete(done));
      if (inflight.size >= inflightMax) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    await producer.close();
  } finally {
    progress?.stop();
  }
  if (failure !== undefined) {
    if (sent === 0 || !isSkyrocketError(failure)) throw failure;
    throw new SkyrocketError(failure.code, `${failure.message} (${sent} of ${messages.length} messages were sent)`, {
      cause: failure,
      ...(failure.field === undefined ? {} : { field: failure.field }),
    });
  }
  const elapsedMs = performance.now() - started;

  if (o.json) {
    printJson({ topic, sent, elapsedMs: Math.round(elapsedMs), results });
  } else if (sent === 1) {
    const r = results[0]!;
    printLine(`sent to ${topic}: ${r.messageId} (queue ${r.queueId}, offset ${r.queueOffset})`);
  } else {
    const rate = Math.round(sent / Math.max(elapsedMs / 1000, 0.001));
    printLine(`sent ${sent} messages to ${topic} in ${formatDuration(elapsedMs)} (${rate} msg/s)`);
  }
}

async function collectMessages(body: string | undefined, o: SendOptions): Promise<OutgoingMessage[]> {
  if (o.file !== undefined) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(o.file);
    } catch (error) {
      throw new UsageError(`cannot read --file ${o.file}: ${(error as Error).message}`, 'file');
    }
    return repeat(bytes, o);
  }
  if (body !== undefined) return repeat(body, o);
  if (o.count !== undefined) return repeat('message {i}', o);
  if (process.stdin.isTTY) throw new UsageError('no body: give one, use --file, or pipe lines on stdin');
  const out: OutgoingMessage[] = [];
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line !== '') out.push(decorate(line, o, undefined));
  }
  return out;
}

function repeat(body: string | Buffer, o: SendOptions): OutgoingMessage[] {
  if (o.count === undefined) return [decorate(body, o, undefined)];
  return Array.from({ length: o.count }, (_, i) => decorate(body, o, i));
}

/** Adds tag, keys, properties and message group; with a number, fills in `{i}` (not in file bodies). */
function decorate(body: string | Buffer, o: SendOptions, i: number | undefined): OutgoingMessage {
  const fill = (s: string): string => (i === undefined ? s : s.replaceAll('{i}', String(i)));
  const m: OutgoingMessage = { body: typeof body === 'string' ? fill(body) : body };
  if (o.tag !== undefined) m.tag = fill(o.tag);
  if (o.key !== undefined) m.keys = o.key.map(fill);
  if (o.property !== undefined) m.properties = Object.fromEntries(Object.entries(o.property).map(([k, v]) => [k, fill(v)]));
  // The producer batches each message group apart, so per-message groups are fine, if slower.
  if (o.messageGroup !== undefined) m.messageGroup = fill(o.messageGroup);
  return m;
}
