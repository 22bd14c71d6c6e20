import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../../core/message.ts';
import { CheckQueue, type CheckRequest } from './check-queue.ts';

function request(id: string, topic = 't', checks = 1, producerGroup = 'pg'): CheckRequest {
  return { transactionId: id, messageId: id, producerGroup, topic, checks, message: {} as StoredMessage };
}

const never = new AbortController().signal;
const all = (): boolean => true;

describe('CheckQueue', () => {
  it('hands each request out once, oldest first, one per transaction, only to its group and allowed topics', async () => {
    const q = new CheckQueue();
    q.add(request('a'));
    q.add(request('b', 'secret'));
    q.add(request('c'));
    q.add(request('a', 't', 2)); // asked again: replaces, moves to the end
    q.add(request('x', 't', 1, 'other'));
    expect((await q.take('pg', 10, (t) => t !== 'secret', 0, never)).map((r) => [r.transactionId, r.checks])).toEqual([
      ['c', 1],
      ['a', 2],
    ]);
    expect((await q.take('pg', 10, all, 0, never)).map((r) => r.transactionId)).toEqual(['b']);
    expect(await q.take('pg', 10, all, 0, never)).toEqual([]);
    expect(q.size('other')).toBe(1);
    q.remove('other', 'x');
    expect(q.size('other')).toBe(0);
  });

  it('keeps at most maxPerGroup requests, dropping the oldest', async () => {
    const q = new CheckQueue({ maxPerGroup: 2 });
    for (const id of ['a', 'b', 'c']) q.add(request(id));
    expect((await q.take('pg', 10, all, 0, never)).map((r) => r.transactionId)).toEqual(['b', 'c']);
  });

  it('long-polls: wakes on a new request, times out empty, and ends at once when interrupted', async () => {
    const q = new CheckQueue();
    const started = Date.now();
    const waiting = q.take('pg', 10, all, started + 5_000, never);
    setTimeout(() => q.add(request('late')), 50);
    expect((await waiting).map((r) => r.transactionId)).toEqual(['late']);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await q.take('pg', 10, all, Date.now() + 60, never)).toEqual([]);
    const abort = new AbortController();
    const aborted = q.take('pg', 10, all, Date.now() + 5_000, abort.signal);
    abort.abort();
    expect(await aborted).toEqual([]);
    const interrupted = q.take('pg', 10, all, Date.now() + 5_000, never);
    q.interrupt();
    expect(await interrupted).toEqual([]);
    // Once interrupted (the broker stops), nothing waits any more.
    const t = Date.now();
    expect(await q.take('pg', 10, all, Date.now() + 5_000, never)).toEqual([]);
    expect(Date.now() - t).toBeLessThan(1_000);
  });
});
