/**
 * A map for memos keyed by names that come from requests (topics, routes, API keys, tags): it
 * forgets everything once it holds `limit` entries and a new key arrives, so it cannot grow
 * without bound, and a working set below the limit stays cached.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.limit && !this.has(key)) this.clear();
    return super.set(key, value);
  }
}
