/**
 * `skyrocket group create|show` and `skyrocket lag`.
 *
 *   group create   human: `created group billing: CLUSTERING, max 16 delivery attempts`
 *                  json:  the group `{ name, mode, orderly, maxDeliveryAttempts }`
 *   group show     human: the group's settings, then a table TOPIC QUEUE COMMITTED MAX LAG INFLIGHT
 *                  json:  `{ name, mode, orderly, maxDeliveryAttempts, totalLag, lag: [{ topic, queueId,
 *                         committedOffset, maxOffset, lag, inflight }] }`
 *   lag            human: lag per topic (per queue with --queues), then `total lag N`
 *                  json:  `{ group, totalLag, topics: [{ topic, lag, inflight }], lag: [...per queue] }`
 *
 * Groups have no subscription list: the broker reports a group's lag for the queues it has read
 * from. `lag <group> --topic t` asks for the topic's offsets instead, so it also shows the lag of
 * a group that has not read the topic yet (everything stored, as a new group starts at the oldest
 * retained message).
 */
import { Command } from 'commander';
import type { QueueLag } from '../../client/index.ts';
import { connect, withConnection, type ConnectionOptions } from './connection.ts';
import { positiveInt } from './options.ts';
import { printJson, printLine, printTable, runCommand } from './output.ts';

export function groupCommand(): Command {
  const group = new Command('group').description('create and inspect consumer groups');

  withConnection(
    group
      .command('create <name>')
      .description('create a consumer group')
      .option('--broadcasting', 'deliver every message to every member (default: clustering, members share queues)', false)
      .option('--orderly', 'consume each queue in order, one message at a time', false)
      .option('--max-delivery-attempts <n>', 'deliveries before a message is dead-lettered (default 16)', positiveInt),
  ).action(
    (name: string, o: ConnectionOptions & { broadcasting: boolean; orderly: boolean; maxDeliveryAttempts?: number }) =>
      runCommand(o.json, async () => {
        const created = await connect(o).createGroup({
          name,
          mode: o.broadcasting ? 'BROADCASTING' : 'CLUSTERING',
          orderly: o.orderly,
          ...(o.maxDeliveryAttempts === undefined ? {} : { maxDeliveryAttempts: o.maxDeliveryAttempts }),
        });
        if (o.json) {
          printJson(created);
          return;
        }
        const orderly = created.orderly ? ', orderly' : '';
        printLine(`created group ${created.name}: ${created.mode}${orderly}, max ${created.maxDeliveryAttempts} delivery attempts`);
      }),
  );

  withConnection(group.command('show <name>').description('show a consumer group with its lag per queue')).action(
    (name: string, o: ConnectionOptions) =>
      runCommand(o.json, async () => {
        const g = await connect(o).getGroup(name);
        if (o.json) {
          printJson(g);
          return;
        }
        printLine(`group      ${g.name}`);
        printLine(`mode       ${g.mode}${g.orderly ? ', orderly' : ''}`);
        printLine(`attempts   ${g.maxDeliveryAttempts} deliveries, then dead-letter`);
        printLine(`total lag  ${g.totalLag}${g.lag.length === 0 ? ' (it has not read from any queue yet)' : ''}`);
        if (g.lag.length > 0) {
          printLine();
          printTable(
            ['TOPIC', 'QUEUE', 'COMMITTED', 'MAX', 'LAG', 'INFLIGHT'],
            g.lag.map((q) => [q.topic, q.queueId, q.committedOffset, q.maxOffset, q.lag, q.inflight]),
          );
        }
      }),
  );

  return group;
}

export function lagCommand(): Command {
  return withConnection(
    new Command('lag')
      .argument('<group>')
      .description('messages a consumer group has not consumed yet')
      .option('--topic <topic>', 'only this topic, including queues the group has not read yet')
      .option('--queues', 'one line per queue', false),
  ).action((name: string, o: ConnectionOptions & { topic?: string; queues: boolean }) =>
    runCommand(o.json, async () => {
      const client = connect(o);
      const g = await client.getGroup(name);
      let lag = g.lag;
      if (o.topic !== undefined) {
        const topic = o.topic;
        const inflight = new Map(g.lag.filter((q) => q.topic === topic).map((q) => [q.queueId, q.inflight]));
        lag = (await client.getOffsets(name, topic)).map((q) => ({
          topic,
          queueId: q.queueId,
          committedOffset: q.committedOffset,
          maxOffset: q.maxOffset,
          lag: Math.max(0, q.maxOffset - q.committedOffset),
          inflight: inflight.get(q.queueId) ?? 0,
        }));
      }
      const topics = perTopic(lag);
      const totalLag = lag.reduce((sum, q) => sum + q.lag, 0);
      if (o.json) {
        printJson({ group: g.name, totalLag, topics, lag });
        return;
      }
      if (lag.length === 0) {
        printLine(`group ${g.name} has not read from any queue yet (try --topic <topic>)`);
        return;
      }
      if (o.queues) {
        printTable(['TOPIC', 'QUEUE', 'COMMITTED', 'MAX', 'LAG', 'INFLIGHT'], lag.map((q) => [q.topic, q.queueId, q.committedOffset, q.maxOffset, q.lag, q.inflight]));
      } else {
        printTable(['TOPIC', 'LAG', 'INFLIGHT'], topics.map((t) => [t.topic, t.lag, t.inflight]));
      }
      printLine(`total lag ${totalLag}`);
    }),
  );
}

function perTopic(lag: readonly QueueLag[]): Array<{ topic: string; lag: number; inflight: number }> {
  const out = new Map<string, { topic: string; lag: number; inflight: number }>();
  for (const q of lag) {
    const t = out.get(q.topic) ?? { topic: q.topic, lag: 0, inflight: 0 };
    t.lag += q.lag;
    t.inflight += q.inflight;
    out.set(q.topic, t);
  }
  return [...out.values()];
}

/** `skyrocket dlq <group>`: list a group's dead letters; `--redrive` sends them back (all or `--id`s). */
export function dlqCommand(): Command {
  return withConnection(
    new Command('dlq')
      .argument('<group>')
      .description("list a consumer group's dead letters, or send them back to their topics")
      .option('--max <n>', 'how many to list', '32')
      .option('--redrive', 'send them back to the topics they came from (all, or those given with --id)', false)
      .option('--id <messageId...>', 'only these dead letters (with --redrive)'),
  ).action((name: string, o: ConnectionOptions & { max: string; redrive: boolean; id?: string[] }) =>
    runCommand(o.json, async () => {
      const client = connect(o);
      if (o.redrive) {
        const result = await client.redriveDeadLetters(name, o.id);
        if (o.json) {
          printJson({ group: name, ...result });
          return;
        }
        printLine(`redrove ${result.redriven} dead letter${result.redriven === 1 ? '' : 's'} of ${name}`);
        for (const f of result.failed) printLine(`  failed ${f.messageId}: ${f.code}: ${f.message}`);
        return;
      }
      const letters = await client.listDeadLetters(name, Number(o.max));
      if (o.json) {
        printJson({
          group: name,
          messages: letters.map((d) => ({ messageId: d.message.messageId, originTopic: d.originTopic, body: d.message.bodyText(), deliveryAttempt: d.message.deliveryAttempt })),
        });
        return;
      }
      if (letters.length === 0) {
        printLine(`no dead letters in ${name}`);
        return;
      }
      printTable(
        ['MESSAGE ID', 'FROM TOPIC', 'ATTEMPTS', 'BODY'],
        letters.map((d) => [d.message.messageId, d.originTopic, d.message.deliveryAttempt - 1, d.message.bodyText().slice(0, 60)]),
      );
    }),
  );
}
