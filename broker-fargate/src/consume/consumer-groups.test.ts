import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SkyrocketError } from '../../../core/errors.ts';
import { MessageStore } from '../store/index.ts';
import { ConsumerGroups, type ConsumerGroupsOptions, type Delivery, type ReceiveRequest } from './consumer-groups.ts';
import { encodeReceiptHandle, parseReceiptHandle } from './receipt-handle.ts';

const topic = 'orders';
const group = 'billing';
const t0 = 1_700_000_000_000;

const dirs: string[] = [];
const stores: MessageStore[] = [];
const opened: ConsumerGroups[] = [];

afterEach(async () => {
  for (const groups of opened.splice(0)) await groups.close();
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

interface Fixture {
  store: MessageStore;
  groups: ConsumerGroups;
  clock: { now: number };
  dataDir: string;
  /** A second ConsumerGroups on the same store and data dir, as after a restart. */
  reopen(): ConsumerGroups;
  produce(queueId: number, count: number, tag?: (i: number) => string | undefined): Promise<void>;
  receive(extra?: Partial<ReceiveRequest>): Promise<Delivery[]>;
}

async function setup(options: Partial<ConsumerGroupsOptions> = {}): Promise<Fixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-groups-'));
  dirs.push(root);
  const store = await MessageStore.open({
    dataDir: path.join(root, 'store'),
    brokerId: 1,
    storeHost: '127.0.0.1:8080',
    segmentSizeBytes: 1024 * 1024,
    maxGroupBytes: 256 * 1024,
    consumeQueueEntriesPerFile: 1024,
    indexSlotCount: 64,
    indexMaxEntries: 256,
    retentionCheckIntervalMs: 0,
  });
  stores.push(store);
  const clock = { now: t0 };
  const dataDir = path.join(root, 'consume');
  const make = (): ConsumerGroups => {
    const groups = new ConsumerGroups({ store, brokerGroup: 'group-1', dataDir, now: () => clock.now, snapshotIntervalMs: 3_600_000, ...options });
    opened.push(groups);
    return groups;
  };
  const groups = make();
  let produced = 0;
  return {
    store,
    groups,
    clock,
    dataDir,
    reopen: make,
    async produce(queueId, count, tag) {
      const records = Array.from({ length: count }, (_, i) => ({
        topic,
        queueId,
        body: Buffer.from(`message ${produced + i}`),
        tag: tag?.(i),
        bornTimestamp: t0,
        bornHost: '10.0.0.1:5000',
      }));
      produced += count;
      await store.append(records);
    },
    receive(extra = {}) {
      return groups.receive({ group, mode: 'CLUSTERING', topic, queueIds: [0], max: 32, invisibleMs: 30_000, ...extra });
    },
  };
}

const offsets = (ds: readonly Delivery[]): number[] => ds.map((d) => d.message.queueOffset).sort((a, b) => a - b);

function invalidHandle(fn: () => unknown): SkyrocketError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe('INVALID_RECEIPT_HANDLE');
    return error as SkyrocketError;
  }
  throw new Error('expected INVALID_RECEIPT_HANDLE, but the handle was accepted');
}

describe('ConsumerGroups: receive, ack, invisibility', () => {
  it('receive hands out messages with handles and hides them; the next receive gets the next ones', async () => {
    const f = await setup();
    await f.produce(0, 10);
    const first = await f.receive({ max: 4, invisibleMs: 5_000 });
    expect(offsets(first)).toEqual([0, 1, 2, 3]);
    for (const d of first) {
      expect(d.message.deliveryAttempt).toBe(1);
      expect(d.message.topic).toBe(topic);
      expect(Buffer.from(d.message.body).toString()).toBe(`message ${d.message.queueOffset}`);
      expect(parseReceiptHandle(d.receiptHandle)).toMatchObject({
        group,
        topic,
        queueId: 0,
        queueOffset: d.message.queueOffset,
        brokerGroup: 'group-1',
        visibleUntilMs: t0 + 5_000,
      });
    }
    expect(new Set(first.map((d) => d.receiptHandle)).size).toBe(4);
    expect(offsets(await f.receive({ max: 4 }))).toEqual([4, 5, 6, 7]);
    expect(offsets(await f.receive({ max: 4 }))).toEqual([8, 9]);
    expect(await f.receive({ max: 4 })).toEqual([]);
    expect(f.groups.inflightCount(group, topic, 0)).toBe(10);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(0);
    expect(f.groups.lag(group, topic, 0)).toBe(10);
    expect(f.groups.nextVisibleAt(group, topic, [0])).toBe(t0 + 5_000);
  });

  it('ack ends a delivery; the committed offset moves only past the acked prefix', async () => {
    const f = await setup();
    await f.produce(0, 6);
    const got = await f.receive({ max: 5 });
    const handle = (offset: number): string => got.find((d) => d.message.queueOffset === offset)!.receiptHandle;
    f.groups.ack(handle(2), group, topic);
    f.groups.ack(handle(3), group, topic);
    expect(f.groups.inflightCount(group, topic, 0)).toBe(3);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(0);
    f.groups.ack(handle(0), group, topic);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(1);
    f.groups.ack(handle(1), group, topic);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(4);
    f.groups.ack(handle(4), group, topic);
    // Nothing in flight: the committed offset is where receiving continues.
    expect(f.groups.committedOffset(group, topic, 0)).toBe(5);
    expect(f.groups.lag(group, topic, 0)).toBe(1);
    expect(f.groups.nextVisibleAt(group, topic, [0])).toBeUndefined();
    // A used handle is refused, and acked messages are not delivered again.
    expect(invalidHandle(() => f.groups.ack(handle(2), group, topic)).message).toMatch(/already used/);
    f.clock.now += 60_000;
    expect(offsets(await f.receive())).toEqual([5]);
  });

  it('an expired delivery comes back (oldest first) with deliveryAttempt 2, and its old handle is refused', async () => {
    const f = await setup();
    await f.produce(0, 3);
    const first = await f.receive({ max: 2, invisibleMs: 1_000 });
    expect(offsets(first)).toEqual([0, 1]);
    f.clock.now += 999;
    const third = await f.receive({ invisibleMs: 1_000 });
    expect(offsets(third)).toEqual([2]);
    f.clock.now += 1; // invisibility of 0 and 1 ends now
    expect(invalidHandle(() => f.groups.ack(first[0]!.receiptHandle, group, topic)).message).toMatch(/expired/);
    const again = await f.receive({ invisibleMs: 1_000 });
    expect(again.map((d) => [d.message.queueOffset, d.message.deliveryAttempt])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    for (const d of first) invalidHandle(() => f.groups.ack(d.receiptHandle, group, topic));
    for (const d of again) f.groups.ack(d.receiptHandle, group, topic);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(2);
    f.clock.now += 1_000;
    const fourth = await f.receive();
    expect(fourth.map((d) => [d.message.queueOffset, d.message.deliveryAttempt])).toEqual([[2, 2]]);
    f.clock.now += 30_000;
    expect((await f.receive())[0]?.message.deliveryAttempt).toBe(3);
  });

  it('changeInvisibility returns a new handle and refuses the old one', async () => {
    const f = await setup();
    await f.produce(0, 1);
    const [d] = await f.receive({ invisibleMs: 1_000 });
    f.clock.now += 500;
    const renewed = f.groups.changeInvisibility(d!.receiptHandle, group, topic, 10_000);
    expect(renewed).not.toBe(d!.receiptHandle);
    expect(parseReceiptHandle(renewed)).toMatchObject({ queueOffset: 0, visibleUntilMs: t0 + 10_500 });
    invalidHandle(() => f.groups.ack(d!.receiptHandle, group, topic));
    invalidHandle(() => f.groups.changeInvisibility(d!.receiptHandle, group, topic, 1));
    f.clock.now += 5_000; // past the first deadline, before the new one
    expect(await f.receive()).toEqual([]);
    f.groups.ack(renewed, group, topic);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(1);
  });

  it('refuses handles of another group, another topic or another broker', async () => {
    const f = await setup();
    await f.produce(0, 1);
    const [d] = await f.receive();
    expect(invalidHandle(() => f.groups.ack(d!.receiptHandle, 'other-group', topic)).message).toMatch(/another group or topic/);
    expect(invalidHandle(() => f.groups.ack(d!.receiptHandle, group, 'other-topic')).message).toMatch(/another group or topic/);
    invalidHandle(() => f.groups.changeInvisibility(d!.receiptHandle, 'other-group', topic, 1_000));
    invalidHandle(() => f.groups.ack('not a handle', group, topic));
    invalidHandle(() => f.groups.ack(undefined, group, topic));
    // Another broker's delivery of the same queue offset carries another nonce.
    const g = await setup();
    await g.produce(0, 1);
    const [foreign] = await g.receive();
    expect(invalidHandle(() => f.groups.ack(foreign!.receiptHandle, group, topic)).message).toMatch(/already used or its delivery expired/);
    // A handle made up for the very delivery in flight, with a guessed nonce, is refused too.
    const real = parseReceiptHandle(d!.receiptHandle);
    const guessed = encodeReceiptHandle({ ...real, nonce: `${real.nonce.slice(0, 16)}1` });
    expect(invalidHandle(() => f.groups.ack(guessed, group, topic)).message).toMatch(/already used or its delivery expired/);
    // The refusals changed nothing: the real handle still works.
    f.groups.ack(d!.receiptHandle, group, topic);
  });

  it('respects maxInflightPerQueue, and still redelivers expired deliveries at the cap', async () => {
    const f = await setup({ maxInflightPerQueue: 3 });
    await f.produce(0, 10);
    const first = await f.receive({ max: 10, invisibleMs: 1_000 });
    expect(offsets(first)).toEqual([0, 1, 2]);
    expect(await f.receive({ max: 10 })).toEqual([]);
    f.groups.ack(first[1]!.receiptHandle, group, topic);
    expect(offsets(await f.receive({ max: 10, invisibleMs: 1_000 }))).toEqual([3]);
    f.clock.now += 1_000;
    const again = await f.receive({ max: 10 });
    expect(offsets(again)).toEqual([0, 2, 3]);
    expect(f.groups.inflightCount(group, topic, 0)).toBe(3);
  });

  it('a tag filter skips other messages and counts them as done', async () => {
    const f = await setup();
    const tags = ['a', 'b', 'a', undefined, 'c', 'b'];
    await f.produce(0, tags.length, (i) => tags[i]);
    const got = await f.receive({ tags: new Set(['a']) });
    expect(got.map((d) => [d.message.queueOffset, d.message.tag])).toEqual([
      [0, 'a'],
      [2, 'a'],
    ]);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(0);
    for (const d of got) f.groups.ack(d.receiptHandle, group, topic);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(6);
    expect(f.groups.lag(group, topic, 0)).toBe(0);
    // Skipped messages are done for the group, whatever filter it uses next.
    expect(await f.receive()).toEqual([]);
    await f.produce(0, 2, (i) => ['b', 'a'][i]);
    expect(offsets(await f.receive({ tags: new Set(['b', 'c']) }))).toEqual([6]);
  });

  it('concurrent receives on the same queues never hand out a message twice', async () => {
    const f = await setup();
    const queueIds = [0, 1, 2];
    for (const q of queueIds) await f.produce(q, 20);
    const seen = new Set<string>();
    let rounds = 0;
    while (seen.size < 60 && rounds++ < 50) {
      const batches = await Promise.all(Array.from({ length: 8 }, () => f.receive({ queueIds, max: 7 })));
      for (const d of batches.flat()) {
        const key = `${d.message.queueId}@${d.message.queueOffset}`;
        expect(seen.has(key), key).toBe(false);
        seen.add(key);
      }
    }
    expect(seen.size).toBe(60);
    for (const q of queueIds) expect(f.groups.inflightCount(group, topic, q)).toBe(20);
  });
});

describe('ConsumerGroups: broadcasting', () => {
  it('gives every clientId every message, with its own position and handles', async () => {
    const f = await setup();
    await f.produce(0, 3);
    await f.produce(1, 2);
    const req = { mode: 'BROADCASTING' as const, queueIds: [0, 1], group: 'audit' };
    const one = await f.receive({ ...req, clientId: 'c1' });
    const two = await f.receive({ ...req, clientId: 'c2' });
    const ids = (ds: Delivery[]): string[] => ds.map((d) => `${d.message.queueId}@${d.message.queueOffset}`).sort();
    expect(ids(one)).toEqual(['0@0', '0@1', '0@2', '1@0', '1@1']);
    expect(ids(two)).toEqual(ids(one));
    expect(parseReceiptHandle(one[0]!.receiptHandle).group).toBe('audit#c1');
    // Acks are per client: c1's ack does not touch c2's deliveries, and c1 cannot ack for c2.
    for (const d of one) f.groups.ack(d.receiptHandle, 'audit', topic);
    for (const d of one) invalidHandle(() => f.groups.ack(d.receiptHandle, 'audit', topic));
    f.clock.now += 30_000;
    expect(await f.receive({ ...req, clientId: 'c1' })).toEqual([]);
    const redelivered = await f.receive({ ...req, clientId: 'c2' });
    expect(redelivered).toHaveLength(5);
    for (const d of redelivered) expect(d.message.deliveryAttempt).toBe(2);
    // A broadcasting group is not a clustering group on this broker.
    expect(f.groups.knownGroups()).not.toContain('audit');
  });

  it('refuses a broadcasting receive without a clientId', async () => {
    const f = await setup();
    await f.produce(0, 1);
    const error = await f.receive({ mode: 'BROADCASTING', clientId: undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SkyrocketError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'clientId' });
  });

  // BUG (consumer-groups.ts, nextVisibleAt line 338): it looks up `${group}\0${topic}\0${q}`, but a
  // broadcasting client's state lives under `${group}#${clientId}\0...`, and the method takes no
  // clientId. broker.ts #receiveLocal uses it to wake a long poll when an in-flight delivery
  // expires, so a broadcasting consumer's redelivery waits for the whole poll deadline (or for a
  // new message on the topic) instead.
  it('nextVisibleAt sees the in-flight deliveries of a broadcasting client', async () => {
    const f = await setup();
    await f.produce(0, 1);
    await f.receive({ mode: 'BROADCASTING', group: 'audit', clientId: 'c1', invisibleMs: 1_000 });
    expect(f.groups.nextVisibleAt('audit', topic, [0], 'BROADCASTING', 'c1')).toBe(t0 + 1_000);
  });
});

describe('ConsumerGroups: clustering assignment', () => {
  const clustering = (clientId: string): Pick<ReceiveRequest, 'group' | 'mode' | 'topic' | 'queueIds' | 'clientId'> => ({
    group,
    mode: 'CLUSTERING',
    topic,
    queueIds: [0, 1, 2, 3, 4],
    clientId,
  });

  it('splits the queues between clientIds: disjoint, covering, balanced; receive takes only its own', async () => {
    const f = await setup({ memberTimeoutMs: 1_000 });
    for (const q of [0, 1, 2, 3, 4]) await f.produce(q, 2);
    f.groups.assignedQueues(clustering('c1'));
    const a = f.groups.assignedQueues(clustering('c1'));
    const b = f.groups.assignedQueues(clustering('c2'));
    const a2 = f.groups.assignedQueues(clustering('c1')); // c1 sees the split after c2 joined
    expect(a.length).toBe(5);
    expect(a2.filter((q) => b.includes(q))).toEqual([]);
    expect([...a2, ...b].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(Math.abs(a2.length - b.length)).toBe(1);
    expect(
      f.groups
        .members(group, topic)
        .map((m) => [m.clientId, m.queueIds.sort()])
        .sort(),
    ).toEqual([
      ['c1', a2.sort()],
      ['c2', b.sort()],
    ]);
    const got = await f.receive({ queueIds: [0, 1, 2, 3, 4], clientId: 'c2' });
    expect(new Set(got.map((d) => d.message.queueId))).toEqual(new Set(b));
    expect(got).toHaveLength(2 * b.length);
    // Without a clientId a clustering receive may take from every queue.
    expect(f.groups.assignedQueues({ ...clustering('x'), clientId: undefined })).toEqual([0, 1, 2, 3, 4]);
  });

  it('a member that stops polling loses its queues once memberTimeoutMs passes', async () => {
    const f = await setup({ memberTimeoutMs: 1_000 });
    f.groups.assignedQueues(clustering('c1'));
    f.groups.assignedQueues(clustering('c2'));
    expect(f.groups.assignedQueues(clustering('c1')).length).toBeGreaterThan(0);
    f.clock.now += 1_000;
    expect(f.groups.assignedQueues(clustering('c2'))).toEqual([0, 1, 2, 3, 4]);
    expect(f.groups.members(group, topic).map((m) => m.clientId)).toEqual(['c2']);
  });

  // BUG (consumer-groups.ts, assignedQueues line 161): `before` is computed with the timeout
  // filter at the *current* time, so a member that timed out is already missing from `before`.
  // When the surviving member keeps polling (so it is in `before`), before.length === live.length
  // and the assignment is not recomputed: the dead member keeps its queues and nobody consumes
  // them until membership changes again. Fix: take `before` as the members the assignment was made
  // for, e.g. `const before = [...members.keys()]` (the map is pruned on every call), or keep the
  // member list next to each assignment and recompute whenever the live set differs from it.
  it('a member that stops polling loses its queues while the other keeps polling', async () => {
    const f = await setup({ memberTimeoutMs: 1_000 });
    f.groups.assignedQueues(clustering('c1'));
    const survivorBefore = f.groups.assignedQueues(clustering('c2'));
    expect(survivorBefore.length).toBeLessThan(5);
    for (let i = 0; i < 8; i++) {
      f.clock.now += 250; // c2 polls every 250 ms; c1 is silent from t0 on
      f.groups.assignedQueues(clustering('c2'));
    }
    expect(f.groups.members(group, topic).map((m) => m.clientId)).toEqual(['c2']);
    expect(f.groups.assignedQueues(clustering('c2'))).toEqual([0, 1, 2, 3, 4]);
  });

  // BUG (consumer-groups.ts, assignedQueues line 167): `queuesChanged` only notices queues that
  // were added. When queues leave this broker (e.g. moved to another broker group), the old
  // assignment stays, so one member may own every remaining queue while the other idles. Fix:
  // also recompute when the assignment holds a queue not in req.queueIds (or compare the sets).
  it('the split is rebalanced when the topic loses queues on this broker', async () => {
    const f = await setup({ memberTimeoutMs: 1_000 });
    const four = (clientId: string): ReturnType<typeof clustering> => ({ ...clustering(clientId), queueIds: [0, 1, 2, 3] });
    f.groups.assignedQueues(four('c1'));
    f.groups.assignedQueues(four('c2'));
    const c1 = f.groups.assignedQueues(four('c1'));
    expect(c1).toHaveLength(2);
    const two = (clientId: string): ReturnType<typeof clustering> => ({ ...clustering(clientId), queueIds: c1 });
    const after1 = f.groups.assignedQueues(two('c1'));
    const after2 = f.groups.assignedQueues(two('c2'));
    expect([after1.length, after2.length]).toEqual([1, 1]);
  });
});

describe('ConsumerGroups: setOffset', () => {
  it('moves the position, drops in-flight deliveries, clamps to the retained range', async () => {
    const f = await setup();
    await f.produce(0, 10);
    const got = await f.receive({ max: 3 });
    f.groups.setOffset(group, topic, 0, 7);
    expect(f.groups.inflightCount(group, topic, 0)).toBe(0);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(7);
    invalidHandle(() => f.groups.ack(got[0]!.receiptHandle, group, topic));
    expect(offsets(await f.receive())).toEqual([7, 8, 9]);
    f.groups.setOffset(group, topic, 0, 0);
    expect(offsets(await f.receive({ max: 2 }))).toEqual([0, 1]);
    f.groups.setOffset(group, topic, 0, 1_000);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(10);
    // A group never seen before can be positioned too.
    f.groups.setOffset('fresh', topic, 0, 4);
    expect(f.groups.committedOffset('fresh', topic, 0)).toBe(4);
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => f.groups.setOffset(group, topic, 0, bad)).toThrow(expect.objectContaining({ code: 'ILLEGAL_OFFSET' }));
    }
  });

  // BUG (consumer-groups.ts, #receiveFrom lines 236-244): a receive that is awaiting the store
  // when setOffset runs carries on with its stale QueueState: it re-adds its deliveries to
  // `inflight` and writes `popOffset = read.nextOffset`, undoing the reset. An operator's offset
  // reset during live consumption is silently lost. Fix: give QueueState a generation counter that
  // setOffset/deleteGroup bump (or replace the state object), and have #receiveFrom drop what it
  // read if the generation changed across its awaits.
  it('setOffset while a receive is reading the store is not undone by that receive', async () => {
    const f = await setup();
    await f.produce(0, 10);
    const pending = f.receive({ max: 5 });
    f.groups.setOffset(group, topic, 0, 8);
    await pending;
    expect(f.groups.committedOffset(group, topic, 0)).toBe(8);
  });
});

describe('ConsumerGroups: snapshot and restart', () => {
  it('after a restart, acked work stays done and in-flight deliveries come back at once, attempt counted up', async () => {
    const f = await setup();
    await f.produce(0, 6);
    const got = await f.receive({ max: 4, invisibleMs: 60_000 });
    f.groups.ack(got[0]!.receiptHandle, group, topic);
    f.groups.ack(got[1]!.receiptHandle, group, topic);
    await f.groups.close(); // writes the snapshot

    const after = f.reopen();
    expect(after.committedOffset(group, topic, 0)).toBe(2);
    expect(after.inflightCount(group, topic, 0)).toBe(2);
    expect(after.knownGroups()).toEqual([group]);
    // The in-flight records of the previous run carry no nonce, so every pre-restart handle is
    // refused as used/expired, and the message is delivered again.
    for (const d of got) {
      expect(invalidHandle(() => after.ack(d.receiptHandle, group, topic)).message).toMatch(/already used or its delivery expired/);
    }
    // Still well inside the old invisibility (the clock has not moved): in-flight work is visible
    // at once after a restart.
    const redelivered = await after.receive({ group, mode: 'CLUSTERING', topic, queueIds: [0], max: 32, invisibleMs: 30_000 });
    expect(redelivered.map((d) => [d.message.queueOffset, d.message.deliveryAttempt])).toEqual([
      [2, 2],
      [3, 2],
      [4, 1],
      [5, 1],
    ]);
    for (const d of redelivered) after.ack(d.receiptHandle, group, topic);
    expect(after.committedOffset(group, topic, 0)).toBe(6);
  });

  it('snapshot() writes the state without closing; a handle of the new run is refused by the old instance', async () => {
    const f = await setup();
    await f.produce(0, 3);
    const got = await f.receive({ max: 1 });
    f.groups.ack(got[0]!.receiptHandle, group, topic);
    f.groups.snapshot();
    const file = JSON.parse(fs.readFileSync(path.join(f.dataDir, 'consumer-offsets.json'), 'utf8')) as {
      version: number;
      queues: Array<{ popOffset: number; inflight: unknown[] }>;
    };
    expect(file.version).toBe(1);
    expect(file.queues).toEqual([{ key: `${group}\u0000${topic}\u00000`, popOffset: 1, inflight: [], pending: [] }]);
    const second = f.reopen();
    const next = await second.receive({ group, mode: 'CLUSTERING', topic, queueIds: [0], max: 1, invisibleMs: 1_000 });
    expect(offsets(next)).toEqual([1]);
    // The first instance has no such delivery in flight.
    expect(invalidHandle(() => f.groups.ack(next[0]!.receiptHandle, group, topic)).message).toMatch(/already used|expired/);
    second.ack(next[0]!.receiptHandle, group, topic);
  });

  it('deleteGroup forgets a group, its broadcasting clients too', async () => {
    const f = await setup();
    await f.produce(0, 2);
    await f.receive();
    await f.receive({ mode: 'BROADCASTING', clientId: 'c1' });
    await f.receive({ group: 'other' });
    f.groups.deleteGroup(group);
    expect(f.groups.knownGroups()).toEqual(['other']);
    expect(f.groups.inflightCount(group, topic, 0)).toBe(0);
    expect(offsets(await f.receive({ mode: 'BROADCASTING', clientId: 'c1' }))).toEqual([0, 1]);
  });
});

describe('ConsumerGroups: retries, dead letters and orderly groups', () => {
  it("nacks with RocketMQ's backoff: 10 s after attempt 1, 30 s after attempt 2", async () => {
    const f = await setup();
    await f.produce(0, 1);
    let [d] = await f.receive();
    expect(f.groups.nack(d!.receiptHandle, group, topic)).toBe(t0 + 10_000);
    f.clock.now = t0 + 9_999;
    expect(await f.receive()).toEqual([]);
    f.clock.now = t0 + 10_000;
    [d] = await f.receive();
    expect(d!.message.deliveryAttempt).toBe(2);
    expect(f.groups.nack(d!.receiptHandle, group, topic)).toBe(t0 + 40_000);
    invalidHandle(() => f.groups.ack(d!.receiptHandle, group, topic));
  });

  it('moves a message to %DLQ%<group> once its attempts are used up, keeping its id and origin', async () => {
    const f = await setup();
    await f.produce(0, 1);
    const [first] = await f.receive({ maxDeliveryAttempts: 2, invisibleMs: 10_000 });
    f.clock.now += 10_000;
    const [second] = await f.receive({ maxDeliveryAttempts: 2, invisibleMs: 10_000 });
    expect(second!.message.deliveryAttempt).toBe(2);
    f.clock.now += 10_000;
    expect(await f.receive({ maxDeliveryAttempts: 2 })).toEqual([]);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(1);
    const dead = await f.store.read(`%DLQ%${group}`, 0, 0);
    expect(dead.messages).toHaveLength(1);
    expect(dead.messages[0]).toMatchObject({
      messageId: first!.message.messageId,
      deliveryAttempt: 3,
      properties: { DLQ_ORIGIN_TOPIC: topic },
    });
    expect(dead.messages[0]!.body.toString()).toBe('message 0');
  });

  it('orderly: one message per message group in flight, the next only after an ack, across a restart', async () => {
    const f = await setup();
    const records = ['a', 'a', 'b', 'a', 'b', 'c'].map((g, i) => ({
      topic,
      queueId: 0,
      body: Buffer.from(`${g}${i}`),
      messageGroup: g,
      bornTimestamp: t0,
      bornHost: 'h',
    }));
    await f.store.append(records);
    const bodies = (ds: Delivery[]) => ds.map((d) => d.message.body.toString());
    const first = await f.receive({ orderly: true });
    expect(bodies(first)).toEqual(['a0', 'b2', 'c5']);
    expect(await f.receive({ orderly: true })).toEqual([]);
    f.groups.ack(first[0]!.receiptHandle, group, topic);
    expect(bodies(await f.receive({ orderly: true }))).toEqual(['a1']);
    expect(f.groups.committedOffset(group, topic, 0)).toBe(1);
    // Restart: held-back and in-flight messages come back in order, nothing skipped.
    f.groups.snapshot();
    const again = f.reopen();
    const after = await again.receive({ group, mode: 'CLUSTERING', topic, queueIds: [0], max: 32, invisibleMs: 30_000, orderly: true });
    expect(after.map((d) => d.message.body.toString()).sort()).toEqual(['a1', 'b2', 'c5']);
  });
});

describe('ConsumerGroups: release', () => {
  it('makes an undelivered message visible at once without counting the attempt', async () => {
    const f = await setup();
    await f.produce(0, 1);
    const [d] = await f.receive();
    f.groups.release(d!.receiptHandle, group, topic);
    invalidHandle(() => f.groups.ack(d!.receiptHandle, group, topic));
    const [again] = await f.receive();
    expect(again!.message.queueOffset).toBe(d!.message.queueOffset);
    expect(again!.message.deliveryAttempt).toBe(1);
  });
});
