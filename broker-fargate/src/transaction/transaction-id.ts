import { SkyrocketError } from '../../../core/errors.ts';
import { decodeMessageId } from '../../../core/message-id.ts';

/**
 * A transaction id names the broker group that holds the half message and the half message's id,
 * so any broker can forward a commit or rollback to the owner without a lookup:
 *
 *   transactionId := "T1." brokerGroup "." messageId
 *                    brokerGroup: 1 to 64 of [a-zA-Z0-9_.-]     messageId: 26 characters (core/message-id.ts)
 *
 * The message id has a fixed length, so a broker group containing "." still parses. The half
 * message's id is also the id consumers see once the transaction commits.
 */
const prefix = 'T1.';
const messageIdChars = 26;
const brokerGroupPattern = /^[a-zA-Z0-9_.-]{1,64}$/;
export const transactionIdMaxChars = prefix.length + 64 + 1 + messageIdChars;

export function encodeTransactionId(brokerGroup: string, halfMessageId: string): string {
  if (!brokerGroupPattern.test(brokerGroup)) throw new RangeError(`broker group ${brokerGroup} cannot go into a transaction id`);
  decodeMessageId(halfMessageId);
  return `${prefix}${brokerGroup}.${halfMessageId}`;
}

export interface TransactionIdParts {
  brokerGroup: string;
  /** The half message's id. */
  messageId: string;
  brokerId: number;
  /** Commit-log offset of the half message on the owning broker. */
  physicalOffset: number;
}

/** @throws SkyrocketError INVALID_TRANSACTION_ID for anything that is not a transaction id. */
export function decodeTransactionId(value: unknown, field = 'transactionId'): TransactionIdParts {
  const bad = (): never => {
    throw new SkyrocketError('INVALID_TRANSACTION_ID', 'not a Skyrocket transaction id', { field });
  };
  if (typeof value !== 'string' || value.length > transactionIdMaxChars || !value.startsWith(prefix)) return bad();
  const messageId = value.slice(-messageIdChars);
  const brokerGroup = value.slice(prefix.length, -messageIdChars - 1);
  if (value.at(-messageIdChars - 1) !== '.' || !brokerGroupPattern.test(brokerGroup)) return bad();
  let decoded: { brokerId: number; physicalOffset: number };
  try {
    decoded = decodeMessageId(messageId);
  } catch {
    return bad();
  }
  return { brokerGroup, messageId, ...decoded };
}
