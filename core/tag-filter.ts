import { SkyrocketError } from './errors.ts';

/**
 * RocketMQ's tag expression: `*` (or empty) for every message, or tags joined by `||`
 * (`created || paid`). Returns the set of tags, or undefined for "every message".
 */
export function parseTagExpression(expression: unknown, field = 'filter.expression'): ReadonlySet<string> | undefined {
  if (expression === undefined || expression === null) return undefined;
  if (typeof expression !== 'string') {
    throw new SkyrocketError('INVALID_FILTER_EXPRESSION', 'a tag expression must be a string', { field });
  }
  const trimmed = expression.trim();
  if (trimmed === '' || trimmed === '*') return undefined;
  const tags = new Set<string>();
  let position = 0;
  for (const part of expression.split('||')) {
    const tag = part.trim();
    if (tag === '' || tag === '*' || /[\u0000-\u001f\u007f|]/.test(tag)) {
      throw new SkyrocketError(
        'INVALID_FILTER_EXPRESSION',
        `tag expression has an empty or malformed tag at position ${position}: use "*" or "a || b"`,
        { field },
      );
    }
    tags.add(tag);
    position += part.length + 2;
  }
  return tags;
}
