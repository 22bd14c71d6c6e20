/**
 * `skyrocket query --id <messageId>` or `skyrocket query --topic t --key k`: look messages up
 * without consuming them. An unknown id is an error (MESSAGE_NOT_FOUND); a key no message has
 * is an empty answer.
 *
 *   human: one block per message (id, topic/queue/offset, tag, keys, properties, times, body)
 *   json:  `{ messages: [{ messageId, topic, body, bodyEncoding, tag, keys, properties, queueId,
 *          queueOffset, bornAt, storedAt, deliveryAttempt }] }`, newest first for a key
 */
import { Command } from 'commander';
import type { Message } from '../../client/index.ts';
import { connect, withConnection, type ConnectionOptions } from './connection.ts';
import { UsageError, displayBody, messageJson, printJson, printLine, runCommand } from './output.ts';

interface QueryOptions extends ConnectionOptions {
  id?: string;
  topic?: string;
  key?: string;
}

export function queryCommand(): Command {
  return withConnection(
    new Command('query')
      .description('look up messages by id, or by topic and key')
      .option('--id <messageId>', 'message id')
      .option('--topic <topic>', 'topic, with --key')
      .option('--key <key>', 'business key, with --topic'),
  ).action((o: QueryOptions) => runCommand(o.json, () => query(o)));
}

async function query(o: QueryOptions): Promise<void> {
  const byId = o.id !== undefined;
  const byKey = o.topic !== undefined || o.key !== undefined;
  if (byId === byKey) throw new UsageError('give either --id, or --topic and --key');
  if (byKey && (o.topic === undefined || o.key === undefined)) throw new UsageError('--topic and --key go together');
  const client = connect(o);
  const messages = byId ? [await client.getMessage(o.id!)] : await client.queryByKey(o.topic!, o.key!);
  if (o.json) {
    printJson({ messages: messages.map(messageJson) });
    return;
  }
  if (messages.length === 0) {
    printLine(`no message in ${o.topic} has key ${o.key}`);
    return;
  }
  messages.forEach((m, i) => {
    if (i > 0) printLine();
    printMessage(m);
  });
}

function printMessage(m: Message): void {
  printLine(`message   ${m.messageId}`);
  printLine(`topic     ${m.topic} (queue ${m.queueId}, offset ${m.queueOffset})`);
  if (m.tag !== undefined) printLine(`tag       ${m.tag}`);
  if (m.keys.length > 0) printLine(`keys      ${m.keys.join(', ')}`);
  if (m.messageGroup !== undefined) printLine(`group     ${m.messageGroup}`);
  for (const [k, v] of Object.entries(m.properties)) printLine(`property  ${k}=${v}`);
  printLine(`born      ${new Date(m.bornAt).toISOString()}`);
  printLine(`stored    ${new Date(m.storedAt).toISOString()}`);
  printLine(`body      ${displayBody(m.body, 2000)}`);
}
