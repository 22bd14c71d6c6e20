/**
 * `skyrocket topic create|list|delete`.
 *
 *   human: `created topic orders: NORMAL, 8 queues`      json: the topic `{ name, type, queues, readable, writable }`
 *   human: a table NAME TYPE QUEUES PERM                  json: `{ topics: [...] }`
 *   human: `deleted topic orders`                          json: `{ deleted: "orders" }`
 */
import { Command } from 'commander';
import { messageTypes, type MessageType } from '../../core/message.ts';
import { connect, withConnection, type ConnectionOptions } from './connection.ts';
import { oneOf, positiveInt } from './options.ts';
import { printJson, printLine, printTable, runCommand } from './output.ts';

export function topicCommand(): Command {
  const topic = new Command('topic').description('create, list and delete topics');

  withConnection(
    topic
      .command('create <name>')
      .description('create a topic')
      .option('--queues <n>', 'number of message queues (default 8)', positiveInt)
      .option('--type <type>', `message type: ${messageTypes.join(', ')}`, oneOf(messageTypes), 'NORMAL' as MessageType),
  ).action((name: string, o: ConnectionOptions & { queues?: number; type: MessageType }) =>
    runCommand(o.json, async () => {
      const created = await connect(o).createTopic({ name, type: o.type, ...(o.queues === undefined ? {} : { queues: o.queues }) });
      if (o.json) printJson(created);
      else printLine(`created topic ${created.name}: ${created.type}, ${created.queues} queue${created.queues === 1 ? '' : 's'}`);
    }),
  );

  withConnection(topic.command('list').description('list topics')).action((o: ConnectionOptions) =>
    runCommand(o.json, async () => {
      const topics = await connect(o).listTopics();
      if (o.json) {
        printJson({ topics });
        return;
      }
      if (topics.length === 0) {
        printLine('no topics (create one with `skyrocket topic create <name>`)');
        return;
      }
      printTable(
        ['NAME', 'TYPE', 'QUEUES', 'PERM'],
        topics.map((t) => [t.name, t.type, t.queues, `${t.readable ? 'r' : '-'}${t.writable ? 'w' : '-'}`]),
      );
    }),
  );

  withConnection(topic.command('delete <name>').description('delete a topic')).action((name: string, o: ConnectionOptions) =>
    runCommand(o.json, async () => {
      await connect(o).deleteTopic(name);
      if (o.json) printJson({ deleted: name });
      else printLine(`deleted topic ${name}`);
    }),
  );

  return topic;
}
