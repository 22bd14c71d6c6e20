import { SkyrocketError } from './errors.ts';

/**
 * A message id names where the message lives, so a lookup by id is one positional read:
 *
 *   "01" | brokerId: 8 hex digits | commit-log offset: 16 hex digits     (26 characters, upper case)
 *
 * The leading version lets a later layout coexist with this one.
 */
export const messageIdVersion = '01';
const messageIdPattern = /^01[0-9A-F]{8}[0-9A-F]{16}$/;

const hexByte: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, '0'));

function hex32(value: number): string {
  return (
    (hexByte[(value >>> 24) & 0xff] as string) +
    (hexByte[(value >>> 16) & 0xff] as string) +
    (hexByte[(value >>> 8) & 0xff] as string) +
    (hexByte[value & 0xff] as string)
  );
}

/** Built on every append, so it avoids `toString(16)` and `padStart` (about 8x faster). */
export function encodeMessageId(brokerId: number, physicalOffset: number): string {
  if (!Number.isInteger(brokerId) || brokerId < 0 || brokerId > 0xffffffff) {
    throw new RangeError(`brokerId ${brokerId} is not a u32`);
  }
  if (!Number.isSafeInteger(physicalOffset) || physicalOffset < 0) {
    throw new RangeError(`physical offset ${physicalOffset} is not a safe non-negative integer`);
  }
  return messageIdVersion + hex32(brokerId) + hex32(Math.floor(physicalOffset / 0x1_0000_0000)) + hex32(physicalOffset >>> 0);
}

export function decodeMessageId(id: string): { brokerId: number; physicalOffset: number } {
  if (typeof id !== 'string' || !messageIdPattern.test(id)) {
    throw new SkyrocketError('ILLEGAL_MESSAGE_ID', `message id ${JSON.stringify(id)} is not a Skyrocket message id`, {
      field: 'messageId',
    });
  }
  const physicalOffset = Number.parseInt(id.slice(10), 16);
  if (!Number.isSafeInteger(physicalOffset)) {
    throw new SkyrocketError('ILLEGAL_MESSAGE_ID', `message id ${id} names an offset beyond 2^53`, { field: 'messageId' });
  }
  return { brokerId: Number.parseInt(id.slice(2, 10), 16), physicalOffset };
}
