import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignQueues } from './assignment.ts';

// Distinct queue ids (a topic's queues on one broker) and distinct member ids (client ids).
const queueIdsArb = fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 40 });
const memberArb = fc.stringMatching(/^[a-z0-9]{1,4}$/);
const membersArb = fc.uniqueArray(memberArb, { minLength: 1, maxLength: 9 });
const backlogArb = (queueIds: readonly number[]): fc.Arbitrary<Map<number, number>> =>
  fc.array(fc.nat({ max: 1000 }), { minLength: queueIds.length, maxLength: queueIds.length }).map(
    (weights) => new Map(queueIds.map((q, i) => [q, weights[i] as number])),
  );

/** Queues, live members, an arbitrary previous assignment (with dead owners and gaps) and a backlog. */
const scenarioArb = fc
  .record({ queueIds: queueIdsArb, members: membersArb, dead: fc.uniqueArray(fc.stringMatching(/^x[a-z]{1,3}$/), { maxLength: 3 }) })
  .chain(({ queueIds, members, dead }) =>
    fc.record({
      queueIds: fc.constant(queueIds),
      members: fc.constant(members),
      previous: fc
        .array(fc.option(fc.constantFrom(...members, ...dead), { nil: undefined }), {
          minLength: queueIds.length,
          maxLength: queueIds.length,
        })
        .map((owners) => {
          const previous = new Map<number, string>();
          queueIds.forEach((q, i) => {
            const owner = owners[i];
            if (owner !== undefined) previous.set(q, owner);
          });
          return previous;
        }),
      backlog: backlogArb(queueIds),
    }),
  );

function countsOf(assignment: ReadonlyMap<number, string>, members: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>(members.map((m) => [m, 0]));
  for (const m of assignment.values()) counts.set(m, (counts.get(m) ?? 0) + 1);
  return counts;
}

function sortedEntries(assignment: ReadonlyMap<number, string>): Array<[number, string]> {
  return [...assignment].sort(([a], [b]) => a - b);
}

function movedQueues(before: ReadonlyMap<number, string>, after: ReadonlyMap<number, string>): number[] {
  return [...after].filter(([q, m]) => before.get(q) !== m).map(([q]) => q);
}

describe('assignQueues', () => {
  it('gives no member nothing: empty members → empty map', () => {
    fc.assert(
      fc.property(queueIdsArb, (queueIds) => {
        const previous = new Map(queueIds.map((q) => [q, 'gone']));
        expect(assignQueues(queueIds, [], previous, new Map()).size).toBe(0);
      }),
    );
  });

  it('assigns every queue to exactly one live member', () => {
    fc.assert(
      fc.property(scenarioArb, ({ queueIds, members, previous, backlog }) => {
        const result = assignQueues(queueIds, members, previous, backlog);
        expect(sortedEntries(result).map(([q]) => q)).toEqual([...queueIds].sort((a, b) => a - b));
        const live = new Set(members);
        for (const m of result.values()) expect(live.has(m)).toBe(true);
      }),
    );
  });

  it('balances: every member holds ⌊n/m⌋ or ⌈n/m⌉ queues', () => {
    fc.assert(
      fc.property(scenarioArb, ({ queueIds, members, previous, backlog }) => {
        const counts = [...countsOf(assignQueues(queueIds, members, previous, backlog), members).values()];
        const floor = Math.floor(queueIds.length / members.length);
        for (const c of counts) expect(c === floor || c === Math.ceil(queueIds.length / members.length)).toBe(true);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('is stable: re-running on its own result with the same members moves nothing, whatever the backlog now is', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.nat({ max: 1000 }), { maxLength: 40 }), (s, later) => {
        const first = assignQueues(s.queueIds, s.members, s.previous, s.backlog);
        const laterBacklog = new Map(s.queueIds.map((q, i) => [q, later[i] ?? 0]));
        const second = assignQueues(s.queueIds, s.members, first, laterBacklog);
        expect(sortedEntries(second)).toEqual(sortedEntries(first));
      }),
    );
  });

  it('is deterministic: same input gives the same output, whatever the order or repetition of members', () => {
    fc.assert(
      fc.property(
        scenarioArb.chain((s) => fc.record({ s: fc.constant(s), shuffled: fc.shuffledSubarray([...s.members, ...s.members], { minLength: 2 * s.members.length }) })),
        ({ s, shuffled }) => {
          const a = assignQueues(s.queueIds, s.members, s.previous, s.backlog);
          const b = assignQueues(s.queueIds, s.members, s.previous, s.backlog);
          const c = assignQueues([...s.queueIds].reverse(), shuffled, new Map(s.previous), new Map(s.backlog));
          expect(sortedEntries(b)).toEqual(sortedEntries(a));
          expect(sortedEntries(c)).toEqual(sortedEntries(a));
        },
      ),
    );
  });

  it('moves the fewest queues any balanced assignment could, from any previous assignment', () => {
    // Let c_i be how many of member i's previous queues are still offered, base = ⌊n/m⌋ and
    // extra = n mod m. A balanced result gives `extra` members a cap of base+1 and the rest base;
    // a member keeps at most min(c_i, cap_i). A cap of base+1 instead of base helps only a member
    // with c_i > base, so no balanced assignment keeps more than
    //   Σ min(c_i, base) + min(extra, #{i : c_i > base}),
    // and every other queue (including those of dead members or of none) must change owner. The
    // algorithm hands its extra slots first to members holding more than base (which of them gets
    // one when there are too few is a tie-break that does not change the count), so it reaches
    // that bound exactly.
    fc.assert(
      fc.property(scenarioArb, ({ queueIds, members, previous, backlog }) => {
        const result = assignQueues(queueIds, members, previous, backlog);
        const n = queueIds.length;
        const base = Math.floor(n / members.length);
        const extra = n % members.length;
        const had = members.map((m) => queueIds.filter((q) => previous.get(q) === m).length);
        const keptMax = had.reduce((sum, c) => sum + Math.min(c, base), 0) + Math.min(extra, had.filter((c) => c > base).length);
        expect(movedQueues(previous, result).length).toBe(n - keptMax);
        // And every live member keeps at least what its base share allows.
        members.forEach((m, i) => {
          const kept = queueIds.filter((q) => previous.get(q) === m && result.get(q) === m).length;
          expect(kept).toBeGreaterThanOrEqual(Math.min(had[i] as number, base));
        });
      }),
    );
  });

  it('when a member leaves, only its queues move', () => {
    // The survivors each held b or b+1 queues (b = ⌊n/m⌋) and now have a share b' = ⌊n/(m-1)⌋ ≥ b.
    // If b' > b every survivor is within its base share. If b' = b, extra' = b + extra ≥ extra is
    // at least the number of survivors holding b+1, so each of them gets a base+1 cap. Either way
    // no survivor gives anything up: exactly the leaver's queues move.
    fc.assert(
      fc.property(
        queueIdsArb,
        fc.uniqueArray(memberArb, { minLength: 2, maxLength: 9 }),
        fc.nat(),
        fc.array(fc.nat({ max: 1000 }), { maxLength: 40 }),
        (queueIds, members, pick, weights) => {
          const backlog = new Map(queueIds.map((q, i) => [q, weights[i] ?? 0]));
          const before = assignQueues(queueIds, members, new Map(), backlog);
          const leaver = members[pick % members.length] as string;
          const survivors = members.filter((m) => m !== leaver);
          const after = assignQueues(queueIds, survivors, before, backlog);
          for (const q of queueIds) {
            if (before.get(q) !== leaver) expect(after.get(q)).toBe(before.get(q));
          }
          expect(movedQueues(before, after).sort((a, b) => a - b)).toEqual(
            queueIds.filter((q) => before.get(q) === leaver).sort((a, b) => a - b),
          );
        },
      ),
    );
  });

  it('when a member joins, exactly ⌊n/(m+1)⌋ queues move, all of them to the newcomer', () => {
    // Old members hold b or b+1 (b = ⌊n/m⌋, `extra` of them b+1); the new share is b' = ⌊n/(m+1)⌋.
    // If b' < b, every old member holds more than b' and so claims a base+1 cap first; there are m
    // of them and extra' = n mod (m+1) ≤ m, so the claimants use up every extra slot and the
    // newcomer's cap is b'. If b' = b, extra' = extra - b: the first extra' of the b+1 holders keep
    // b+1, the other b of them give up one queue each, and the newcomer (cap b) takes those b. In
    // both cases the old members never grow, so no queue moves between them, and the newcomer ends
    // with b' = ⌊n/(m+1)⌋ queues — the least any balanced assignment could give it. That is also the
    // least movement possible: the newcomer owned nothing, so each of its queues is a move.
    fc.assert(
      fc.property(
        queueIdsArb,
        membersArb,
        fc.array(fc.nat({ max: 1000 }), { maxLength: 40 }),
        fc.array(fc.nat({ max: 1000 }), { maxLength: 40 }),
        (queueIds, members, weights, laterWeights) => {
          const joiner = 'joiner'; // longer than any generated member name, so always new
          const before = assignQueues(queueIds, members, new Map(), new Map(queueIds.map((q, i) => [q, weights[i] ?? 0])));
          const after = assignQueues(
            queueIds,
            [...members, joiner],
            before,
            new Map(queueIds.map((q, i) => [q, laterWeights[i] ?? 0])),
          );
          const moved = movedQueues(before, after);
          expect(moved.length).toBe(Math.floor(queueIds.length / (members.length + 1)));
          for (const q of moved) expect(after.get(q)).toBe(joiner);
        },
      ),
    );
  });

  it('ignores previous owners that are not live and queues that are not offered', () => {
    const result = assignQueues([0, 1, 2, 3], ['a', 'b'], new Map([[0, 'dead'], [1, 'a'], [2, 'a'], [9, 'b']]), new Map());
    expect(sortedEntries(result)).toEqual([
      [0, 'b'],
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
    ]);
  });

  it('a member over its share keeps its heaviest queues; freed queues go heaviest first to the least-loaded member', () => {
    // 'a' held all four; its share is two, so it keeps the two with the largest backlog.
    const kept = assignQueues([0, 1, 2, 3], ['a', 'b'], new Map([[0, 'a'], [1, 'a'], [2, 'a'], [3, 'a']]), new Map([[0, 1], [1, 50], [2, 10], [3, 0]]));
    expect(sortedEntries(kept)).toEqual([
      [0, 'b'],
      [1, 'a'],
      [2, 'a'],
      [3, 'b'],
    ]);
    // No history: queue 0 (backlog 100) goes first, to 'a'; then 'b' is the lighter member and
    // takes queues 1 and 2, and 'a' gets the last one.
    const fresh = assignQueues([0, 1, 2, 3], ['b', 'a'], new Map(), new Map([[0, 100], [1, 1], [2, 1], [3, 1]]));
    expect(sortedEntries(fresh)).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'b'],
      [3, 'a'],
    ]);
  });

  it('with more members than queues, each queue still has one owner and nobody holds two', () => {
    const result = assignQueues([5, 6], ['a', 'b', 'c', 'd'], new Map([[5, 'c']]), new Map());
    expect(result.get(5)).toBe('c');
    expect(new Set(result.values()).size).toBe(2);
  });
});
