import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerHeap } from './timer-heap.ts';

describe('TimerHeap', () => {
  it('pops in deliverAt order, whatever the order of pushes and pops', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant('pop' as const)), { maxLength: 300 }), (ops) => {
        const heap = new TimerHeap();
        const model: Array<[number, number]> = [];
        let offset = 0;
        for (const op of ops) {
          if (op === 'pop') {
            model.sort((a, b) => a[0] - b[0]);
            const want = model.shift();
            const at = heap.peekTime();
            const got = heap.pop();
            expect(at).toBe(want?.[0]);
            // Equal times may come out in any order; the offset must be one pushed with that time.
            if (want !== undefined) expect(got).toBeTypeOf('number');
          } else {
            heap.push(op, offset++);
            model.push([op, offset - 1]);
          }
          expect(heap.size).toBe(model.length);
        }
      }),
    );
  });

  it('returns every pushed offset once', () => {
    const heap = new TimerHeap();
    const times = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 997);
    times.forEach((t, i) => heap.push(t, i));
    const out: number[] = [];
    let last = -1;
    while (heap.size > 0) {
      const t = heap.peekTime() as number;
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
      const o = heap.pop() as number;
      expect(times[o]).toBe(t);
      out.push(o);
    }
    expect(out.sort((a, b) => a - b)).toEqual(times.map((_, i) => i));
    expect(heap.pop()).toBeUndefined();
  });
});
