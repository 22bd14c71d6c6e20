/**
 * The kit for Lambda functions that consume from Skyrocket: the batch event the brokers send,
 * the partial-batch response they read, and `batchHandler` to write one with.
 */
export {
  recordBytes,
  recordJson,
  recordText,
  type BatchItemFailure,
  type LambdaContext,
  type SkyrocketBatchEvent,
  type SkyrocketBatchResponse,
  type SkyrocketRecord,
} from './batch-event.ts';
export { batchHandler, defineHandler, type BatchHandlerOptions, type RecordHandler, type SkyrocketHandler } from './batch-handler.ts';
