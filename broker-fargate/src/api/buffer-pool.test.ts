import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('hands back a buffer given back, by size class, and keeps at most keepPerClass', () => {
    const pool = new BufferPool({ minBytes: 1024, maxBytes: 1 << 20, keepPerClass: 2 });
    const a = pool.acquire(1500);
    expect(a.length).toBe(2048);
    pool.release(a.subarray(10, 20)); // a view is enough
    const b = pool.acquire(2000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.acquire(100).length).toBe(1024);
    const held = [pool.acquire(2048), pool.acquire(2048), pool.acquire(2048)];
    for (const h of held) pool.release(h);
    expect(pool.idleCount).toBe(2);
  });

  it('ignores buffers it did not give and buffers given back twice; never keeps oversized ones', () => {
    const pool = new BufferPool({ minBytes: 1024, maxBytes: 4096 });
    pool.release(Buffer.alloc(1024));
    expect(pool.idleCount).toBe(0);
    const a = pool.acquire(1024);
    pool.release(a);
    pool.release(a);
    expect(pool.idleCount).toBe(1);
    const big = pool.acquire(10_000);
    expect(big.length).toBe(10_000);
    pool.release(big);
    expect(pool.idleCount).toBe(1);
    // Two holders never share a buffer.
    const x = pool.acquire(1024);
    const y = pool.acquire(1024);
    expect(x.buffer).not.toBe(y.buffer);
  });
});
