import type { BatchItemFailure, LambdaContext, SkyrocketBatchEvent, SkyrocketBatchResponse, SkyrocketRecord } from './batch-event.ts';

/** A Lambda handler for Skyrocket batches. */
export type SkyrocketHandler = (event: SkyrocketBatchEvent, context: LambdaContext) => Promise<SkyrocketBatchResponse>;

/** Handles one record; a thrown error (or rejection) marks the record for retry. */
export type RecordHandler = (record: SkyrocketRecord, context: LambdaContext, event: SkyrocketBatchEvent) => Promise<void> | void;

export interface BatchHandlerOptions {
  /**
   * Records processed at once. Records of one message group are still processed one after the
   * other, in batch order.
   * @default 1 (one record at a time, in batch order)
   */
  concurrency?: number;
  /**
   * Called with each failed record and its error, e.g. to log it. The record is retried whatever
   * this does; an error it throws is ignored.
   * @default none
   */
  onError?: (record: SkyrocketRecord, error: unknown) => void;
}

/**
 * Makes a Lambda handler from a per-record function: each record that throws is reported in
 * `batchItemFailures` and retried by the broker; the others are acknowledged.
 *
 * **Deliveries are at least once.** A record can reach the function more than once: when it
 * failed before, when the function succeeded but timed out or its answer was lost, and when a
 * broker restarted before it recorded the acknowledgement (such a duplicate may even say
 * `deliveryAttempt: 1`). Make the handler idempotent:
 * - key side effects on `record.messageId`, which is the same on every delivery, e.g. a
 *   DynamoDB `PutItem` with `attribute_not_exists(messageId)`, an `INSERT … ON CONFLICT DO
 *   NOTHING`, or an idempotency key on the downstream API;
 * - or make the effect naturally idempotent (set a state, not increment a counter);
 * - do not rely on `deliveryAttempt` to detect duplicates; use it to give up on (or alert about)
 *   a record that keeps failing before the group's `maxDeliveryAttempts` dead-letters it.
 *
 * **Order.** In an orderly (FIFO) group the broker sends at most one record per message group
 * per batch and waits for its outcome before sending the next, so a failed record blocks its
 * message group until it succeeds or is dead-lettered. Should a batch ever hold several records
 * of one message group, the records after a failed one are failed without being processed, so
 * they are never handled out of order.
 *
 * @example
 * export const handler = batchHandler(async (record) => {
 *   const order = recordJson<{ id: string }>(record);
 *   await saveOnce(record.messageId, order);
 * });
 */
export function batchHandler(handle: RecordHandler, options: BatchHandlerOptions = {}): SkyrocketHandler {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError('batchHandler: concurrency must be a positive integer');
  return async (event, context) => {
    const records = Array.isArray(event?.records) ? event.records : [];
    const failed = new Set<string>();
    const failedGroups = new Set<string>();
    // Records of one message group form a chain: each waits for the one before it.
    const chains = new Map<string, Promise<void>>();
    let running = 0;
    const slots: Array<() => void> = [];
    const acquire = async (): Promise<void> => {
      if (running < concurrency) {
        running++;
        return;
      }
      await new Promise<void>((resolve) => slots.push(resolve));
    };
    const release = (): void => {
      const next = slots.shift();
      if (next !== undefined) next();
      else running--;
    };
    const run = async (record: SkyrocketRecord): Promise<void> => {
      const group = record.messageGroup;
      if (group !== undefined && failedGroups.has(group)) {
        failed.add(record.messageId);
        return;
      }
      await acquire();
      try {
        await handle(record, context, event);
      } catch (error) {
        failed.add(record.messageId);
        if (group !== undefined) failedGroups.add(group);
        try {
          options.onError?.(record, error);
        } catch {
          // The record is retried whatever the callback does.
        }
      } finally {
        release();
      }
    };
    const all: Promise<void>[] = [];
    for (const record of records) {
      const group = record.messageGroup;
      const before = group === undefined ? undefined : chains.get(group);
      const done = before === undefined ? run(record) : before.then(() => run(record));
      if (group !== undefined) chains.set(group, done);
      all.push(done);
    }
    await Promise.all(all);
    const batchItemFailures: BatchItemFailure[] = records.filter((r) => failed.has(r.messageId)).map((r) => ({ itemIdentifier: r.messageId }));
    return { batchItemFailures };
  };
}

/**
 * Types a whole-batch handler: for handlers that process the batch together (one bulk write)
 * and report failures themselves. Throwing retries the whole batch.
 *
 * @example
 * export const handler = defineHandler(async (event) => {
 *   const failed = await bulkWrite(event.records);
 *   return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.messageId })) };
 * });
 */
export function defineHandler(handle: SkyrocketHandler): SkyrocketHandler {
  return handle;
}
