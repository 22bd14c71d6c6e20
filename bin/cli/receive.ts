/**
 * `skyrocket receive <group> --topic t`: receive messages as a consumer group (the "simple
 * consumer": each message comes with a receipt handle and stays hidden from the group for the
 * invisibility time), and with `--ack` acknowledge them so they are not delivered again.
 *
 * One receive by default. With `--count n`, receives until n messages came (progress bar) or a
 * receive waited `--wait` ms and got nothing; fewer than n is an error (REQUEST_TIMEOUT), and the
 * messages that did come are still printed.
 *
 *   human: one line per message, `<messageId> <topic>/<queue>@<offset> tag=… keys=… attempt=n  <body>`,
 *          then `received N messages, acked N`; with --count only that summary
 *   json:  `{ group, topic, received, acked, messages: [{ messageId, body, bodyEncoding, tag, keys,
 *          properties, queueId, queueOffset, bornAt, storedAt, deliveryAttempt, receiptHandle }] }`
 */
import { Command } from 'commander';
import { SkyrocketError, type ReceivedMessage, type SkyrocketClient } from '../../client/index.ts';
import { connect, withConnection, type ConnectionOptions } from './connection.ts';
import { nonNegativeInt, positiveInt } from './options.ts';
import { displayBody, formatDuration, messageJson, printJson, printLine, progressBar, runCommand, type Progress } from './output.ts';

interface ReceiveOptions extends ConnectionOptions {
  topic: string;
  max: number;
  wait: number;
  ack: boolean;
  filter?: string;
  count?: number;
  invisible?: number;
  clientId?: string;
}

export function receiveCommand(): Command {
  return withConnection(
    new Command('receive')
      .argument('<group>', 'consumer group')
      .description('receive messages as a consumer group')
      .requiredOption('--topic <topic>', 'topic to receive from')
      .option('--max <n>', 'messages per receive request', positiveInt, 32)
      .option('--wait <ms>', 'how long a receive waits for messages to arrive', nonNegativeInt, 2000)
      .option('--ack', 'acknowledge what was received', false)
      .option('--filter <expr>', 'tag expression, such as "a || b" (default *)')
      .option('--count <n>', 'receive until n messages came, with a progress bar', positiveInt)
      .option('--invisible <ms>', 'how long received messages stay hidden from the group (default 30000)', positiveInt)
      .option('--client-id <id>', 'names this consumer (BROADCASTING groups need one)'),
  ).action((group: string, o: ReceiveOptions) => runCommand(o.json, () => receive(group, o)));
}

async function receive(group: string, o: ReceiveOptions): Promise<void> {
  const client = connect(o);
  const wanted = o.count ?? o.max;
  const progress: Progress | undefined = o.count === undefined ? undefined : progressBar('receive', o.count);
  const messages: ReceivedMessage[] = [];
  const ackFailures: Array<{ code: SkyrocketError['code']; message: string }> = [];
  let acked = 0;
  const started = performance.now();
  try {
    while (messages.length < wanted) {
      const got = await client.receive(group, {
        topic: o.topic,
        max: Math.min(o.max, wanted - messages.length),
        waitMs: o.wait,
        ...(o.invisible === undefined ? {} : { invisibleMs: o.invisible }),
        ...(o.filter === undefined ? {} : { filter: o.filter }),
        ...(o.clientId === undefined ? {} : { clientId: o.clientId }),
      });
      messages.push(...got);
      if (o.ack && got.length > 0) {
        const result = await ack(client, group, o.topic, got);
        acked += result.acked;
        ackFailures.push(...result.failed);
      }
      progress?.increment(got.length);
      if (got.length === 0 || o.count === undefined) break;
    }
  } finally {
    progress?.stop();
  }
  const elapsedMs = performance.now() - started;

  if (o.json) {
    printJson({ group, topic: o.topic, received: messages.length, acked, messages: messages.map(messageJson) });
  } else {
    if (o.count === undefined) for (const m of messages) printLine(messageLine(m));
    printLine(summary(messages.length, acked, o, elapsedMs));
  }
  const firstFailure = ackFailures[0];
  if (firstFailure !== undefined) {
    throw new SkyrocketError(firstFailure.code, `${ackFailures.length} acknowledgement(s) failed; the first: ${firstFailure.message}`);
  }
  if (o.count !== undefined && messages.length < o.count) {
    throw new SkyrocketError('REQUEST_TIMEOUT', `received ${messages.length} of ${o.count} messages: no more came within ${o.wait} ms`);
  }
}

async function ack(
  client: SkyrocketClient,
  group: string,
  topic: string,
  messages: readonly ReceivedMessage[],
): Promise<{ acked: number; failed: Array<{ code: SkyrocketError['code']; message: string }> }> {
  const reply = await client.ack(group, topic, messages.map((m) => m.receiptHandle));
  return { acked: reply.acked.length, failed: reply.failed };
}

function messageLine(m: ReceivedMessage): string {
  const parts = [m.messageId, `${m.topic}/${m.queueId}@${m.queueOffset}`];
  if (m.tag !== undefined) parts.push(`tag=${m.tag}`);
  if (m.keys.length > 0) parts.push(`keys=${m.keys.join(',')}`);
  if (m.messageGroup !== undefined) parts.push(`group=${m.messageGroup}`);
  const props = Object.entries(m.properties);
  if (props.length > 0) parts.push(`props=${props.map(([k, v]) => `${k}=${v}`).join(',')}`);
  parts.push(`attempt=${m.deliveryAttempt}`);
  return `${parts.join(' ')}  ${displayBody(m.body)}`;
}

function summary(received: number, acked: number, o: ReceiveOptions, elapsedMs: number): string {
  const noun = received === 1 ? 'message' : 'messages';
  if (received === 0) return `no messages (waited ${o.wait} ms)`;
  const ackPart = o.ack ? `, acked ${acked}` : `, not acked: they come back after ${o.invisible ?? 30_000} ms`;
  const timing = o.count === undefined ? '' : ` in ${formatDuration(elapsedMs)}`;
  return `received ${received} ${noun} from ${o.topic}${timing}${ackPart}`;
}
