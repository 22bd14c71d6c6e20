/**
 * The Skyrocket TypeScript SDK over the REST API v1.
 *
 * - `SkyrocketClient`: one typed method per endpoint, no retries.
 * - `Producer`: coalesces concurrent sends into batch requests, retries retriable errors.
 * - `SimpleConsumer`: receive, ack, change invisibility.
 * - `PushConsumer`: a handler with bounded concurrency, or `for await` iteration.
 * - `TransactionProducer`: half message, local transaction, commit or rollback; answers check-backs.
 *
 * Every failure is a `SkyrocketError` with a stable `code` and `retriable`. The SDK does not log;
 * see `clientChannels` for what it publishes on `diagnostics_channel`.
 *
 * ```ts
 * const producer = new Producer({ endpoint, apiKey, topic: 'orders' });
 * const { messageId } = await producer.send({ body: JSON.stringify(order), keys: [order.id], tag: 'created' });
 * await producer.close();
 *
 * const consumer = new PushConsumer({ endpoint, apiKey, group: 'billing', topic: 'orders', handler: async (m) => bill(JSON.parse(m.bodyText())) });
 * await consumer.start();
 * // ... on shutdown:
 * await consumer.stop();
 * ```
 */
export { SkyrocketError, isSkyrocketError, errorCodes, type ErrorCode } from '../core/errors.ts';
export type { MessageType } from '../core/message.ts';
export { clientChannels, type ConsumerErrorEvent, type RequestEvent, type RetryEvent } from './diagnostics.ts';
export { Message, ReceivedMessage, type OutgoingMessage, type SendResult } from './message.ts';
export { Producer, type ProducerMessage, type ProducerOptions } from './producer.ts';
export { PushConsumer, type PushConsumerOptions } from './push-consumer.ts';
export { SimpleConsumer, type ReceiveOptions, type SimpleConsumerOptions } from './simple-consumer.ts';
export {
  TransactionProducer,
  transactionCheckChannel,
  type HalfMessage,
  type TransactionCheck,
  type TransactionProducerOptions,
  type TransactionResolution,
  type TransactionSendResult,
  type TransactionState,
  type TransactionStatus,
} from './transaction-producer.ts';
export {
  SkyrocketClient,
  type AckResult,
  type ChangeInvisibilityInput,
  type ChangeInvisibilityResult,
  type DeadLetter,
  type NackResult,
  type RedriveResult,
  type ClientOptions,
  type ConsumeMode,
  type CreateGroupInput,
  type CreateTopicInput,
  type Group,
  type GroupStatus,
  type PullInput,
  type PullResult,
  type QueryByKeyInput,
  type QueueLag,
  type QueueOffsets,
  type ReceiveInput,
  type RequestOptions,
  type SetOffsetInput,
  type SetOffsetResult,
  type Topic,
  type TopicRoute,
} from './skyrocket-client.ts';
