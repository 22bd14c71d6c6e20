import { describe, expect, it } from 'vitest';
import { BoundedMap } from './bounded-map.ts';

describe('BoundedMap', () => {
  it('forgets everything when a new key would pass the limit, and keeps updating known keys', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2);
    m.set('a', 3); // a known key: nothing forgotten
    expect([...m]).toEqual([['a', 3], ['b', 2]]);
    m.set('c', 4);
    expect([...m]).toEqual([['c', 4]]);
  });
});
