/**
 * The benchmark's message body: ASCII, so every client sends the same bytes whatever its body type.
 *
 *   offset  0  20 digits  process.hrtime.bigint() at send, ns (CLOCK_MONOTONIC: one clock for
 *                         every process on this machine, so producer and consumer can compare)
 *   offset 20  10 digits  sequence number within the workload, from 0
 *   offset 30  'x' up to the body size
 */
import assert from 'node:assert/strict';

const stampDigits = 20;
const seqDigits = 10;

/** A message body carrying its send time and sequence number. */
export function makeBody(seq: number, padding: string): string {
  return process.hrtime.bigint().toString().padStart(stampDigits, '0') + String(seq).padStart(seqDigits, '0') + padding;
}

export function paddingFor(bodyBytes: number): string {
  assert(bodyBytes >= stampDigits + seqDigits, `a body needs at least ${stampDigits + seqDigits} bytes`);
  return 'x'.repeat(bodyBytes - stampDigits - seqDigits);
}

export function readBody(body: Buffer): { sentNs: bigint; seq: number } {
  return {
    sentNs: BigInt(body.toString('latin1', 0, stampDigits)),
    seq: Number(body.toString('latin1', stampDigits, stampDigits + seqDigits)),
  };
}

