/**
 * Exponential backoff with "equal jitter": after the n-th failure in a row the pause is drawn
 * from [d/2, d], d = min(max, base·2^(n-1)). Half of it is always waited, so a crowd of workers
 * cannot hammer a throttled function; the random half spreads them out. A success resets it.
 */
export class Backoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #failures = 0;
  #untilMs = 0;

  constructor(options: { baseMs: number; maxMs: number; random?: () => number }) {
    if (!(options.baseMs > 0 && options.maxMs >= options.baseMs)) throw new RangeError('Backoff: need 0 < baseMs <= maxMs');
    this.#baseMs = options.baseMs;
    this.#maxMs = options.maxMs;
    this.#random = options.random ?? Math.random;
  }

  /** Failures in a row. */
  get failures(): number {
    return this.#failures;
  }

  /** Until when to pause (epoch ms); in the past when there is nothing to wait for. */
  get untilMs(): number {
    return this.#untilMs;
  }

  /** Counts a failure at `nowMs`; returns the pause it starts. */
  fail(nowMs: number): number {
    this.#failures++;
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(this.#failures - 1, 30));
    const pauseMs = Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
    this.#untilMs = Math.max(this.#untilMs, nowMs + pauseMs);
    return pauseMs;
  }

  succeed(): void {
    this.#failures = 0;
    this.#untilMs = 0;
  }
}
