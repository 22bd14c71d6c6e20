import { SkyrocketError } from '../../../core/errors.ts';
import type { MessageInput, MessageType } from '../../../core/message.ts';
import { checkProducerGroupName } from '../../../namesrv/transactions.ts';

/**
 * The transactional part of a send request:
 *
 *   { "messages": [...], "transactional": true, "producerGroup": "orders-producer" }
 *
 * Each message becomes a transaction of its own (RocketMQ's model), stored as a half message;
 * the batch is stored whole or not at all, as any batch. `producerGroup` names who is checked back
 * about the transactions. A transactional message goes to a TRANSACTION topic and is not delayed.
 *
 * @returns the producer group of a transactional send, undefined for any other send.
 * @throws SkyrocketError INVALID_ARGUMENT or MESSAGE_PROPERTY_CONFLICT_WITH_TYPE.
 */
export function parseTransactionalSend(
  body: Readonly<Record<string, unknown>>,
  topicType: MessageType,
  messages: readonly MessageInput[],
): { producerGroup: string } | undefined {
  const transactional = body['transactional'] ?? false;
  if (typeof transactional !== 'boolean') {
    throw new SkyrocketError('INVALID_ARGUMENT', 'transactional must be true or false', { field: 'transactional' });
  }
  const producerGroup = body['producerGroup'];
  if (!transactional) {
    if (producerGroup !== undefined && producerGroup !== null) {
      throw new SkyrocketError('INVALID_ARGUMENT', 'producerGroup is only taken with "transactional": true', { field: 'producerGroup' });
    }
    return undefined;
  }
  if (producerGroup === undefined || producerGroup === null) {
    throw new SkyrocketError('INVALID_ARGUMENT', 'a transactional send needs a producerGroup, which is checked back about its transactions', {
      field: 'producerGroup',
    });
  }
  const name = checkProducerGroupName(producerGroup, 'producerGroup');
  if (topicType !== 'TRANSACTION') {
    throw new SkyrocketError('MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', `transactional messages go to TRANSACTION topics; this topic is ${topicType}`, {
      field: 'transactional',
    });
  }
  messages.forEach((m, i) => {
    if (m.deliverAt !== undefined) {
      throw new SkyrocketError('MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', 'a transactional message cannot be delayed', { field: `messages[${i}]` });
    }
  });
  return { producerGroup: name };
}
