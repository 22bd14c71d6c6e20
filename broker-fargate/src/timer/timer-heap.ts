/**
 * The in-memory side of the timing wheel: a binary min-heap of (deliverAt, timer offset), earliest
 * first. Two parallel number arrays rather than an object per entry, so a million pending timers
 * cost two arrays of doubles. Removal is lazy: the service keeps the live set and skips popped
 * entries that are no longer in it, so cancelling is O(1).
 */
export class TimerHeap {
  readonly #at: number[] = [];
  readonly #offset: number[] = [];

  get size(): number {
    return this.#at.length;
  }

  push(deliverAt: number, offset: number): void {
    const at = this.#at;
    const off = this.#offset;
    let i = at.length;
    at.push(deliverAt);
    off.push(offset);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((at[parent] as number) <= deliverAt) break;
      at[i] = at[parent] as number;
      off[i] = off[parent] as number;
      i = parent;
    }
    at[i] = deliverAt;
    off[i] = offset;
  }

  /** The earliest time, or undefined when empty. */
  peekTime(): number | undefined {
    return this.#at[0];
  }

  /** The earliest entry's offset, or undefined when empty. */
  peekOffset(): number | undefined {
    return this.#offset[0];
  }

  /** Removes the earliest entry and returns its offset (the caller read its time by `peekTime`). */
  pop(): number | undefined {
    const at = this.#at;
    const off = this.#offset;
    if (at.length === 0) return undefined;
    const top = off[0] as number;
    const lastAt = at.pop() as number;
    const lastOff = off.pop() as number;
    const n = at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && (at[right] as number) < (at[left] as number) ? right : left;
        if ((at[child] as number) >= lastAt) break;
        at[i] = at[child] as number;
        off[i] = off[child] as number;
        i = child;
      }
      at[i] = lastAt;
      off[i] = lastOff;
    }
    return top;
  }

  clear(): void {
    this.#at.length = 0;
    this.#offset.length = 0;
  }
}
