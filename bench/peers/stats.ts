/** Percentiles of one run, and the median, min and max of repeated runs. */

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Nearest-rank percentiles of latencies in milliseconds; sorts its argument. */
export function summarizeLatencies(values: Float64Array): LatencySummary {
  if (values.length === 0) return { count: 0, p50Ms: NaN, p99Ms: NaN, maxMs: NaN, meanMs: NaN };
  values.sort();
  const at = (p: number): number => values[Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1))] as number;
  let sum = 0;
  for (const v of values) sum += v;
  return {
    count: values.length,
    p50Ms: round3(at(0.5)),
    p99Ms: round3(at(0.99)),
    maxMs: round3(values[values.length - 1] as number),
    meanMs: round3(sum / values.length),
  };
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every repetition's value, in run order. */
  values: number[];
}

/** Median (the middle value; the mean of the two middle ones for an even count), min and max; NaN values are left out. */
export function spread(values: readonly number[]): Spread | null {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number, values: [...values] };
}

/** A growable array of doubles, for latencies recorded on a hot path. */
export class Samples {
  #values = new Float64Array(1024);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#length++] = value;
  }

  get length(): number {
    return this.#length;
  }

  /** A copy of the values recorded so far. */
  toArray(): Float64Array {
    return this.#values.slice(0, this.#length);
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
