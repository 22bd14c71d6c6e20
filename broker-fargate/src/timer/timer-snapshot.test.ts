import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, readSnapshot, writeSnapshot, type TimerSnapshot } from './timer-snapshot.ts';

const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const snapshotArb: fc.Arbitrary<TimerSnapshot> = fc.record({
  nearOffset: offset,
  farOffset: offset,
  entries: fc.array(
    fc.record({
      timerOffset: offset,
      deliverAt: offset,
      movedId: fc.option(fc.record({ brokerId: fc.integer({ min: 0, max: 0xffffffff }), physicalOffset: offset }), { nil: undefined }),
    }),
    { maxLength: 20 },
  ),
});

describe('timer snapshot codec', () => {
  it('round-trips', () => {
    fc.assert(
      fc.property(snapshotArb, (s) => {
        const decoded = decodeSnapshot(encodeSnapshot(s));
        expect(decoded).toEqual({ ok: true, snapshot: s });
      }),
    );
  });

  it('refuses any single flipped bit, and any truncation', () => {
    const buf = encodeSnapshot({ nearOffset: 7, farOffset: 3, entries: [{ timerOffset: 100, deliverAt: 1_700_000_000_000 }] });
    for (let bit = 0; bit < buf.length * 8; bit++) {
      const bad = Buffer.from(buf);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeSnapshot(bad).ok, `bit ${bit}`).toBe(false);
    }
    for (let n = 0; n < buf.length; n++) expect(decodeSnapshot(buf.subarray(0, n)).ok).toBe(false);
  });

  it('is written atomically to the directory and read back', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'timer-snapshot-'));
    try {
      expect(readSnapshot(dir)).toBeUndefined();
      const s = { nearOffset: 1, farOffset: 2, entries: [{ timerOffset: 3, deliverAt: 4, movedId: { brokerId: 5, physicalOffset: 6 } }] };
      await writeSnapshot(dir, encodeSnapshot(s));
      expect(readSnapshot(dir)).toEqual(s);
      expect(fs.readdirSync(dir)).toEqual(['snapshot']);
      fs.writeFileSync(path.join(dir, 'snapshot'), 'garbage');
      expect(() => readSnapshot(dir)).toThrow(/damaged/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
