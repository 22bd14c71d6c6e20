/**
 * A sample Lambda consumer: logs each order of the `example-orders` topic. `skyrocket dev
 * --example` creates the topic, the group `example-order-logger` and the subscription that sends
 * it here; try `skyrocket send example-orders '{"orderId":"o-1","amount":42}'`.
 *
 * Deployed, the same module is the function's handler (`order-logger.handler`), wired up with the
 * CDK `LambdaConsumer` construct. A record whose body is not an order is reported as failed: it is
 * retried with the group's backoff and, after its last attempt, dead-lettered to
 * `%DLQ%example-order-logger` (`skyrocket` and `GET /v1/groups/example-order-logger/dlq` show it).
 */
import { batchHandler, recordJson } from '../consumer-kit/index.ts';

interface Order {
  orderId: string;
  amount: number;
}

function isOrder(value: unknown): value is Order {
  const v = value as Partial<Order> | null;
  return typeof v === 'object' && v !== null && typeof v.orderId === 'string' && typeof v.amount === 'number';
}

export const handler = batchHandler(async (record) => {
  const order = recordJson(record);
  if (!isOrder(order)) throw new Error(`message ${record.messageId} is not an order`);
  // Idempotent by construction: logging twice is harmless. A real consumer would write the order
  // keyed on record.messageId (or orderId) so that a redelivery changes nothing.
  console.log(JSON.stringify({ msg: 'order', orderId: order.orderId, amount: order.amount, messageId: record.messageId, attempt: record.deliveryAttempt }));
});
