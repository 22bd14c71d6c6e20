/**
 * Queue assignment for a clustering consumer group, computed by the broker that owns the queues.
 *
 * Sticky: a queue stays with its member while that member lives and the split stays fair, so a
 * consumer keeps its warm caches and orderly groups keep their order. Balanced: every member holds
 * ⌊n/m⌋ or ⌈n/m⌉ queues, and among moves that fix the counts the queue with the largest backlog
 * goes to the member with the smallest backlog. Pure function: same input, same output.
 */
export function assignQueues(
  queueIds: readonly number[],
  members: readonly string[],
  previous: ReadonlyMap<number, string>,
  backlog: ReadonlyMap<number, number>,
): Map<number, string> {
  const result = new Map<number, string>();
  if (members.length === 0) return result;
  const sortedMembers = [...new Set(members)].sort();
  const live = new Set(sortedMembers);
  const base = Math.floor(queueIds.length / sortedMembers.length);
  let extra = queueIds.length % sortedMembers.length;
  const owned = new Map<string, number[]>(sortedMembers.map((m) => [m, []]));
  const weight = (q: number): number => backlog.get(q) ?? 0;
  const load = (m: string): number => (owned.get(m) as number[]).reduce((sum, q) => sum + weight(q), 0);

  // Keep what each live member had, heaviest queues first, up to its fair share.
  const unassigned: number[] = [];
  const byMember = new Map<string, number[]>();
  for (const q of queueIds) {
    const m = previous.get(q);
    if (m !== undefined && live.has(m)) {
      const list = byMember.get(m) ?? [];
      list.push(q);
      byMember.set(m, list);
    } else {
      unassigned.push(q);
    }
  }
  // Members that had more than base keep base+1 while extra slots last, most-loaded first.
  const capacity = new Map<string, number>(sortedMembers.map((m) => [m, base]));
  const claimants = sortedMembers
    .filter((m) => (byMember.get(m)?.length ?? 0) > base)
    .sort((a, b) => (byMember.get(b)?.length ?? 0) - (byMember.get(a)?.length ?? 0) || a.localeCompare(b));
  for (const m of claimants) {
    if (extra === 0) break;
    capacity.set(m, base + 1);
    extra--;
  }
  for (const m of sortedMembers) {
    const kept = (byMember.get(m) ?? []).sort((a, b) => weight(b) - weight(a) || a - b);
    const cap = capacity.get(m) as number;
    (owned.get(m) as number[]).push(...kept.slice(0, cap));
    unassigned.push(...kept.slice(cap));
  }
  // Remaining extra slots go to the least-loaded members.
  for (const m of [...sortedMembers].sort((a, b) => load(a) - load(b) || a.localeCompare(b))) {
    if (extra === 0) break;
    if ((capacity.get(m) as number) === base) {
      capacity.set(m, base + 1);
      extra--;
    }
  }
  // Hand out the rest: largest backlog first, to the member with room and the least load.
  unassigned.sort((a, b) => weight(b) - weight(a) || a - b);
  for (const q of unassigned) {
    let best: string | undefined;
    for (const m of sortedMembers) {
      if ((owned.get(m) as number[]).length >= (capacity.get(m) as number)) continue;
      if (best === undefined || load(m) < load(best)) best = m;
    }
    (owned.get(best as string) as number[]).push(q);
  }
  for (const [m, qs] of owned) for (const q of qs) result.set(q, m);
  return result;
}
