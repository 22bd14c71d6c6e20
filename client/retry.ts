import { setTimeout as sleep } from 'node:timers/promises';
import { isSkyrocketError } from '../core/errors.ts';
import { clientChannels, publish } from './diagnostics.ts';

/** How a failed call is retried: only errors marked `retriable`, never any other. */
export interface RetryPolicy {
  /** Retries after the first attempt; 0 means one attempt. */
  retries: number;
  /** The first backoff; each later one doubles, up to `backoffMaxMs`. */
  backoffMs: number;
  backoffMaxMs: number;
}

/**
 * The wait before retry number `attempt` (0-based): exponential with "equal jitter", half fixed
 * and half random, so clients that failed together do not return together, yet none retries at
 * once. `random` is a number in [0, 1) (`Math.random()`), passed in to keep this pure.
 */
export function backoffDelayMs(attempt: number, policy: Pick<RetryPolicy, 'backoffMs' | 'backoffMaxMs'>, random: number): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

export function isRetriable(error: unknown): boolean {
  return isSkyrocketError(error) && error.retriable;
}

/**
 * Runs `call`, retrying retriable `SkyrocketError`s up to `policy.retries` times. A retried send
 * may store a message twice (the first attempt may have been stored before its answer was lost):
 * delivery is at least once. An abort of `signal` ends the wait and rethrows the last error.
 */
export async function withRetries<T>(
  operation: string,
  policy: RetryPolicy,
  call: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= policy.retries || !isRetriable(error) || signal?.aborted === true) throw error;
      const delayMs = backoffDelayMs(attempt, policy, Math.random());
      publish(clientChannels.retry, { operation, attempt: attempt + 1, delayMs, error });
      try {
        await sleep(delayMs, undefined, signal === undefined ? undefined : { signal });
      } catch {
        throw error;
      }
    }
  }
}
