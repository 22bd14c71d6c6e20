import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessageId } from '../../../core/message-id.ts';
import { decodeTransactionId, encodeTransactionId, transactionIdMaxChars } from './transaction-id.ts';

const brokerGroup = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,64}$/);
const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const brokerId = fc.integer({ min: 0, max: 0xffffffff });

describe('transaction ids', () => {
  it('name the broker group and the half message, whatever the group name holds', () => {
    fc.assert(
      fc.property(brokerGroup, brokerId, offset, (group, id, at) => {
        const messageId = encodeMessageId(id, at);
        const tx = encodeTransactionId(group, messageId);
        expect(tx.length).toBeLessThanOrEqual(transactionIdMaxChars);
        expect(decodeTransactionId(tx)).toEqual({ brokerGroup: group, messageId, brokerId: id, physicalOffset: at });
      }),
    );
  });

  it('are refused with INVALID_TRANSACTION_ID when malformed', () => {
    const good = encodeTransactionId('bg-1', encodeMessageId(1, 4096));
    for (const bad of [undefined, 42, '', 'garbage', good.slice(1), `${good}0`, good.replace('T1.', 'T2.'), good.replace('.01', ':01'), `T1..${good.slice(-26)}`, `T1.bg 1.${good.slice(-26)}`, good.toLowerCase()]) {
      expect(() => decodeTransactionId(bad), String(bad)).toThrowError(expect.objectContaining({ code: 'INVALID_TRANSACTION_ID', field: 'transactionId' }));
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        try {
          const parts = decodeTransactionId(s);
          return encodeTransactionId(parts.brokerGroup, parts.messageId) === s;
        } catch (error) {
          return (error as { code?: string }).code === 'INVALID_TRANSACTION_ID';
        }
      }),
    );
  });
});
