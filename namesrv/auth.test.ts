import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize, generateApiKey, hashApiKey, isWellFormedApiKey, type Action, type Permissions } from './auth.ts';

describe('API keys', () => {
  it('are generated fresh, well formed, and hashed to 64 hex digits', () => {
    const keys = new Set(Array.from({ length: 100 }, generateApiKey));
    expect(keys.size).toBe(100);
    for (const key of keys) {
      expect(key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
      expect(isWellFormedApiKey(key)).toBe(true);
      expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    }
    // The SHA-256 of "abc", from FIPS 180-2.
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('must be 16 to 256 printable ASCII characters', () => {
    expect(isWellFormedApiKey('x'.repeat(16))).toBe(true);
    expect(isWellFormedApiKey('x'.repeat(256))).toBe(true);
    for (const bad of ['x'.repeat(15), 'x'.repeat(257), 'sixteen chars ok', 'ключ-ключ-ключ-ключ', 42, null]) {
      expect(isWellFormedApiKey(bad)).toBe(false);
    }
  });
});

describe('authorize', () => {
  const p = (permissions: Permissions) => ({ permissions });

  it('follows the permission lists', () => {
    expect(authorize(p({ admin: true }), 'admin', '')).toBe(true);
    expect(authorize(p({ admin: true }), 'subscribe', 'any')).toBe(true);
    expect(authorize(p({ publish: ['*'] }), 'admin', '')).toBe(false);
    expect(authorize(p({ publish: ['orders'] }), 'publish', 'orders')).toBe(true);
    expect(authorize(p({ publish: ['orders'] }), 'publish', 'order')).toBe(false);
    expect(authorize(p({ publish: ['orders'] }), 'subscribe', 'orders')).toBe(false);
    expect(authorize(p({ subscribe: ['*'] }), 'subscribe', 'g')).toBe(true);
    expect(authorize(p({ subscribe: ['*'] }), 'publish', 'g')).toBe(false);
    expect(authorize(p({}), 'publish', 'orders')).toBe(false);
  });

  const name = fc.constantFrom('a', 'b', 'orders', '%DLQ%g', '*');
  const permissions: fc.Arbitrary<Permissions> = fc.record(
    { admin: fc.boolean(), publish: fc.array(name, { maxLength: 4 }), subscribe: fc.array(name, { maxLength: 4 }) },
    { requiredKeys: [] },
  );
  const action = fc.constantFrom<Action>('admin', 'publish', 'subscribe');

  it('matches a reference model', () => {
    fc.assert(
      fc.property(permissions, action, name, (perms, act, resource) => {
        const list = act === 'publish' ? perms.publish : act === 'subscribe' ? perms.subscribe : [];
        const expected = perms.admin === true || (list ?? []).some((n) => n === '*' || n === resource);
        expect(authorize(p(perms), act, resource)).toBe(expected);
      }),
    );
  });

  it('never loses access when permissions are added', () => {
    fc.assert(
      fc.property(permissions, permissions, action, name, (base, extra, act, resource) => {
        const merged: Permissions = {
          admin: base.admin === true || extra.admin === true,
          publish: [...(base.publish ?? []), ...(extra.publish ?? [])],
          subscribe: [...(base.subscribe ?? []), ...(extra.subscribe ?? [])],
        };
        if (authorize(p(base), act, resource)) expect(authorize(p(merged), act, resource)).toBe(true);
      }),
    );
  });

  it('grants one action only through that action’s own list, unless admin', () => {
    fc.assert(
      fc.property(fc.array(name), name, (names, resource) => {
        expect(authorize(p({ publish: names }), 'subscribe', resource)).toBe(false);
        expect(authorize(p({ subscribe: names }), 'publish', resource)).toBe(false);
        expect(authorize(p({ publish: names, subscribe: names }), 'admin', resource)).toBe(false);
      }),
    );
  });
});
