/** Transactional messages: half messages, commit/rollback, check requests, the DynamoDB index. */
export { CheckQueue, type CheckRequest } from './check-queue.ts';
export { IndexWriter, type IndexWriterOptions, type TransactionIndex, type TransactionRegistry } from './index-writer.ts';
export { parseTransactionalSend } from './send-options.ts';
export { decodeTransactionId, encodeTransactionId, transactionIdMaxChars, type TransactionIdParts } from './transaction-id.ts';
export {
  outcomes,
  resolvers,
  transactionProperty,
  transactionTopics,
  TransactionService,
  type Outcome,
  type PendingTransaction,
  type ResolvedBy,
  type TransactionListener,
  type TransactionServiceOptions,
  type TransactionState,
  type TransactionStatus,
} from './transaction-service.ts';
