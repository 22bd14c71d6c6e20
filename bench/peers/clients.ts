/**
 * One small adapter per system, over its usual Node client, so that every workload runs the same
 * harness code against each: `publish` resolves when the system has acknowledged the message,
 * a consumer hands each message's body to a callback and acknowledges it.
 *
 * | system    | client            | publish                                   | consume                                                   |
 * |-----------|-------------------|-------------------------------------------|-----------------------------------------------------------|
 * | skyrocket | `client/` (SDK)   | `Producer.send` (coalesced batch requests) | `SimpleConsumer.ackAndReceive`: long poll, acks the last batch |
 * | redis     | ioredis           | XADD (auto-pipelined)                      | XREADGROUP COUNT n BLOCK + XACK per batch                 |
 * | rabbitmq  | amqplib           | confirm channel, quorum queue, persistent  | `consume` with prefetch n, manual ack (multiple) per turn |
 * | nats      | nats (JetStream)  | `js.publish` (waits for the PubAck)        | pull consumer `consume({ max_messages: n })`, ack each    |
 */
import { Redis } from 'ioredis';
import * as amqp from 'amqplib';
import { AckPolicy, DeliverPolicy, StorageType, connect as natsConnect, type ConsumerMessages, type NatsConnection } from 'nats';
import { Producer, SimpleConsumer, SkyrocketClient, isSkyrocketError, type ReceivedMessage } from '../../client/index.ts';

export const systems = ['skyrocket', 'redis', 'rabbitmq', 'nats'] as const;
export type SystemName = (typeof systems)[number];

/** How a worker process reaches a running server: plain data, sent over IPC. */
export type Connection =
  | { system: 'skyrocket'; endpoint: string; apiKey: string }
  | { system: 'redis'; port: number }
  | { system: 'rabbitmq'; url: string }
  | { system: 'nats'; port: number };

export interface PublisherOptions {
  /**
   * Skyrocket only: `coalesce` sends through `Producer.send`, which batches concurrent sends
   * (the SDK's default adaptive batching); `single` sends each message as its own request through
   * `Producer.sendBatch([m])`, for a caller that waits for every ack anyway.
   * @default 'coalesce'
   */
  skyrocketMode?: 'coalesce' | 'single';
}

export interface Publisher {
  /** Resolves when the system has acknowledged the message as stored. */
  publish(body: string): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  /** Messages a consumer may hold unacknowledged (prefetch, COUNT, max_messages, receive max). */
  window: number;
  /** Skyrocket only: receive requests kept in flight at once, each for up to `window` messages. */
  skyrocketReceivers: number;
}

export interface Consumer {
  /** Subscribes; resolves once messages will flow. */
  start(onMessage: (body: Buffer) => void): Promise<void>;
  /** Stops taking messages, waits for the acks in flight, and disconnects. */
  stop(): Promise<void>;
}

/** Creates and deletes the per-workload destination: stream, queue or topic, and its consumer group. */
export interface Admin {
  prepare(destination: string): Promise<void>;
  remove(destination: string): Promise<void>;
  close(): Promise<void>;
}

const consumerGroup = 'bench';
const host = '127.0.0.1';

export async function openAdmin(c: Connection): Promise<Admin> {
  switch (c.system) {
    case 'skyrocket': {
      const client = new SkyrocketClient({ endpoint: c.endpoint, apiKey: c.apiKey });
      return {
        async prepare(d) {
          await client.createTopic({ name: d, queues: 8 });
          await client.createGroup({ name: groupOf(d) });
        },
        async remove(d) {
          await client.deleteGroup(groupOf(d)).catch(ignoreNotFound);
          await client.deleteTopic(d).catch(ignoreNotFound);
        },
        async close() {},
      };
    }
    case 'redis': {
      const redis = new Redis({ host, port: c.port, lazyConnect: true });
      await redis.connect();
      return {
        async prepare(d) {
          // Group at id 0: it reads the stream from its start, backlog included.
          await redis.xgroup('CREATE', d, consumerGroup, '0', 'MKSTREAM');
        },
        async remove(d) {
          await redis.del(d);
        },
        async close() {
          redis.disconnect();
        },
      };
    }
    case 'rabbitmq': {
      const connection = await amqp.connect(c.url);
      const channel = await connection.createChannel();
      return {
        async prepare(d) {
          await channel.assertQueue(d, quorumQueue);
        },
        async remove(d) {
          await channel.deleteQueue(d);
        },
        async close() {
          await connection.close();
        },
      };
    }
    case 'nats': {
      const nc = await natsConnect({ servers: `${host}:${c.port}` });
      const jsm = await nc.jetstreamManager();
      return {
        async prepare(d) {
          await jsm.streams.add({ name: d, subjects: [d], storage: StorageType.File });
          await jsm.consumers.add(d, {
            durable_name: consumerGroup,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
          });
        },
        async remove(d) {
          await jsm.streams.delete(d);
        },
        async close() {
          await nc.close();
        },
      };
    }
  }
}

const quorumQueue: amqp.Options.AssertQueue = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

function groupOf(destination: string): string {
  return `${destination}-group`;
}

function ignoreNotFound(error: unknown): void {
  if (!(isSkyrocketError(error) && error.code.endsWith('NOT_FOUND'))) throw error;
}

export async function openPublisher(c: Connection, destination: string, options: PublisherOptions = {}): Promise<Publisher> {
  switch (c.system) {
    case 'skyrocket': {
      const producer = new Producer({ endpoint: c.endpoint, apiKey: c.apiKey, topic: destination });
      const publish =
        options.skyrocketMode === 'single'
          ? (body: string) => producer.sendBatch([body]).then(noop)
          : (body: string) => producer.send(body).then(noop);
      return { publish, close: () => producer.close() };
    }
    case 'redis': {
      // Commands issued in one tick travel in one write; Redis answers them after one fsync.
      const redis = new Redis({ host, port: c.port, lazyConnect: true, enableAutoPipelining: true });
      await redis.connect();
      return {
        publish: (body) => redis.xadd(destination, '*', 'd', body).then(noop),
        async close() {
          await redis.quit();
        },
      };
    }
    case 'rabbitmq': {
      const connection = await amqp.connect(c.url);
      const channel = await connection.createConfirmChannel();
      return {
        publish: (body) =>
          new Promise<void>((resolve, reject) => {
            channel.sendToQueue(destination, Buffer.from(body), { persistent: true }, (error) => (error ? reject(error) : resolve()));
          }),
        async close() {
          await channel.waitForConfirms();
          await connection.close();
        },
      };
    }
    case 'nats': {
      const nc = await natsConnect({ servers: `${host}:${c.port}` });
      const js = nc.jetstream();
      return {
        publish: (body) => js.publish(destination, Buffer.from(body)).then(noop),
        async close() {
          await nc.drain();
        },
      };
    }
  }
}

export async function openConsumer(c: Connection, destination: string, options: ConsumerOptions): Promise<Consumer> {
  switch (c.system) {
    case 'skyrocket':
      return skyrocketConsumer(c, destination, options);
    case 'redis':
      return redisConsumer(c.port, destination, options);
    case 'rabbitmq':
      return rabbitConsumer(c.url, destination, options);
    case 'nats':
      return natsConsumer(c.port, destination, options);
  }
}

function skyrocketConsumer(c: { endpoint: string; apiKey: string }, destination: string, options: ConsumerOptions): Consumer {
  const consumer = new SimpleConsumer({
    endpoint: c.endpoint,
    apiKey: c.apiKey,
    group: groupOf(destination),
    topic: destination,
    waitMs: 1_000,
    invisibleMs: 120_000,
  });
  const abort = new AbortController();
  let loops: Array<Promise<void>> = [];
  return {
    async start(onMessage) {
      const loop = async (): Promise<void> => {
        // Each receive carries the acks of the batch before it (one request per batch).
        let toAck: ReceivedMessage[] = [];
        while (!abort.signal.aborted) {
          try {
            const { messages } = await consumer.ackAndReceive(toAck, options.window, { signal: abort.signal });
            toAck = messages;
          } catch (error) {
            if (abort.signal.aborted) break;
            throw error;
          }
          for (const m of toAck) onMessage(m.body);
        }
        // The receive cut short by the stop may or may not have carried its acks to the broker:
        // ack them again, and a refusal then only says they were acked already.
        if (toAck.length > 0) await consumer.ack(toAck).catch(() => undefined);
      };
      loops = Array.from({ length: options.skyrocketReceivers }, loop);
    },
    async stop() {
      abort.abort();
      await Promise.all(loops);
    },
  };
}

async function redisConsumer(port: number, destination: string, options: ConsumerOptions): Promise<Consumer> {
  const redis = new Redis({ host, port, lazyConnect: true });
  await redis.connect();
  let stopped = false;
  const acks = new Set<Promise<unknown>>();
  let loop: Promise<void> = Promise.resolve();
  return {
    async start(onMessage) {
      loop = (async () => {
        while (!stopped) {
          const reply = (await redis.callBuffer(
            'XREADGROUP', 'GROUP', consumerGroup, 'c1', 'COUNT', options.window, 'BLOCK', 500, 'STREAMS', destination, '>',
          )) as StreamsReply;
          const entries = entriesOf(reply);
          if (entries.length === 0) continue;
          const ids: Buffer[] = [];
          for (const [id, fields] of entries) {
            ids.push(id);
            onMessage(fields[1] as Buffer);
          }
          // Pipelined ahead of the next read on the same connection.
          const ack = redis.xack(destination, consumerGroup, ...ids);
          acks.add(ack);
          void ack.then(() => acks.delete(ack), () => acks.delete(ack));
        }
      })();
    },
    async stop() {
      stopped = true;
      await loop;
      await Promise.all(acks);
      await redis.quit();
    },
  };
}

async function rabbitConsumer(url: string, destination: string, options: ConsumerOptions): Promise<Consumer> {
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.prefetch(options.window);
  let tag: string | undefined;
  let last: amqp.ConsumeMessage | undefined;
  let ackScheduled = false;
  // One ack (multiple = true) per event-loop turn covers every delivery read in that turn.
  const flushAck = (): void => {
    ackScheduled = false;
    if (last !== undefined) channel.ack(last, true);
    last = undefined;
  };
  return {
    async start(onMessage) {
      const reply = await channel.consume(
        destination,
        (msg) => {
          if (msg === null) return;
          onMessage(msg.content);
          last = msg;
          if (!ackScheduled) {
            ackScheduled = true;
            setImmediate(flushAck);
          }
        },
        { noAck: false },
      );
      tag = reply.consumerTag;
    },
    async stop() {
      if (tag !== undefined) await channel.cancel(tag);
      flushAck();
      await connection.close();
    },
  };
}

async function natsConsumer(port: number, destination: string, options: ConsumerOptions): Promise<Consumer> {
  const nc: NatsConnection = await natsConnect({ servers: `${host}:${port}` });
  const js = nc.jetstream();
  const consumer = await js.consumers.get(destination, consumerGroup);
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> = Promise.resolve();
  return {
    async start(onMessage) {
      messages = await consumer.consume({ max_messages: options.window });
      const iterator = messages;
      loop = (async () => {
        for await (const m of iterator) {
          onMessage(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
          m.ack();
        }
      })();
    },
    async stop() {
      await messages?.close();
      await loop;
      await nc.drain();
    },
  };
}

type StreamEntries = Array<[id: Buffer, fields: Buffer[]]>;
/**
 * XREADGROUP's answer for one stream, or null when BLOCK ran out. RESP2 gives
 * `[[stream, entries]]`; RESP3 (ioredis 6's default) a map, which arrives flat: `[stream, entries]`.
 */
type StreamsReply = Array<[Buffer, StreamEntries]> | [Buffer, StreamEntries] | null;

function entriesOf(reply: StreamsReply): StreamEntries {
  if (reply === null || reply.length === 0) return [];
  if (Buffer.isBuffer(reply[0])) return (reply[1] as StreamEntries | undefined) ?? [];
  return (reply[0] as [Buffer, StreamEntries])[1];
}

function noop(): void {}
