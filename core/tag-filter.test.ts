import { describe, expect, it } from 'vitest';
import { parseTagExpression } from './tag-filter.ts';

describe('parseTagExpression', () => {
  it('reads * and empty as every message', () => {
    expect(parseTagExpression('*')).toBeUndefined();
    expect(parseTagExpression('  ')).toBeUndefined();
    expect(parseTagExpression(undefined)).toBeUndefined();
  });
  it('reads tags joined by ||', () => {
    expect([...(parseTagExpression('created || paid||shipped') ?? [])]).toEqual(['created', 'paid', 'shipped']);
  });
  it('rejects malformed expressions with the position', () => {
    for (const bad of ['a ||', '|| a', 'a || || b', 'a || *', 'a\u0001', 42]) {
      expect(() => parseTagExpression(bad)).toThrowError(expect.objectContaining({ code: 'INVALID_FILTER_EXPRESSION' }));
    }
    expect(() => parseTagExpression('a || || b')).toThrow(/position 4/);
  });
});
