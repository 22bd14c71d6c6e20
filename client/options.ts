import { SkyrocketError } from '../core/errors.ts';

/**
 * An integer option, or its default when absent. A value out of range is the caller's mistake and
 * fails the constructor with INVALID_ARGUMENT naming the option, long before any request.
 */
export function integerOption(value: number | undefined, fallback: number, name: string, min: number, max: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) {
    throw new SkyrocketError('INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}`, { field: name });
  }
  return chosen;
}
