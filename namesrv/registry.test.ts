import { GetItemCommand, ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkyrocketError, type ErrorCode } from '../core/errors.ts';
import { dynamoClient, uniquePrefix } from '../test/support/aws.ts';
import { hashApiKey } from './auth.ts';
import { NameServer, resolveRoute, type Broker, type Topic } from './registry.ts';
import { ensureTables } from './tables.ts';

const client: DynamoDBClient = dynamoClient();
afterAll(() => client.destroy());

/** A name server on fresh tables, with a clock the test moves by hand. */
async function fresh(): Promise<{ ns: NameServer; clock: { ms: number } }> {
  const prefix = uniquePrefix();
  await ensureTables(client, prefix);
  const clock = { ms: 1_700_000_000_000 };
  return { ns: new NameServer({ client, prefix, now: () => clock.ms }), clock };
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode, field?: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SkyrocketError);
  expect((error as SkyrocketError).code).toBe(code);
  if (field !== undefined) expect((error as SkyrocketError).field).toBe(field);
}

function broker(id: string, group: string, extra: Partial<Parameters<NameServer['registerBroker']>[0]> = {}) {
  return { brokerId: id, brokerGroup: group, address: `http://${id}.local:8080`, role: 'LEADER' as const, epoch: 1, ...extra };
}

describe('brokers', () => {
  let ns: NameServer;
  let clock: { ms: number };
  beforeAll(async () => ({ ns, clock } = await fresh()));

  it('registers, lists live brokers, and renews with heartbeats', async () => {
    const b = await ns.registerBroker(broker('b-1', 'g-1', { ttlMs: 5000 }));
    expect(b).toMatchObject({ brokerId: 'b-1', brokerGroup: 'g-1', role: 'LEADER', epoch: 1, expiresAt: clock.ms + 5000, version: 1 });
    await ns.registerBroker(broker('b-0', 'g-1', { role: 'FOLLOWER' }));
    expect((await ns.listBrokers()).map((x) => x.brokerId)).toEqual(['b-0', 'b-1']);

    clock.ms += 4000;
    const beat = await ns.heartbeat('b-1', 5000);
    expect(beat.expiresAt).toBe(clock.ms + 5000);
    expect(beat.version).toBe(2);
  });

  it('treats an expired broker as absent although its item is still stored', async () => {
    await ns.registerBroker(broker('b-2', 'g-2', { ttlMs: 1000 }));
    clock.ms += 1000;
    expect((await ns.listBrokers()).map((x) => x.brokerId)).not.toContain('b-2');
    const raw = await client.send(new GetItemCommand({ TableName: ns.tables.brokers, Key: { brokerId: { S: 'b-2' } } }));
    expect(raw.Item).toBeDefined();
    // A late heartbeat brings it back.
    await ns.heartbeat('b-2', 1000);
    expect((await ns.listBrokers()).map((x) => x.brokerId)).toContain('b-2');
  });

  it('refuses a registration under an older epoch, and heartbeats of unknown brokers', async () => {
    await ns.registerBroker(broker('b-3', 'g-3', { epoch: 7 }));
    await expectCode(ns.registerBroker(broker('b-3', 'g-3', { epoch: 6 })), 'CONFLICT', 'epoch');
    expect((await ns.registerBroker(broker('b-3', 'g-3', { epoch: 8, role: 'FOLLOWER' }))).version).toBe(2);
    await expectCode(ns.heartbeat('nobody', 1000), 'NOT_FOUND', 'brokerId');
  });

  it('deregisters, idempotently', async () => {
    await ns.registerBroker(broker('b-4', 'g-4'));
    await ns.deregisterBroker('b-4');
    await ns.deregisterBroker('b-4');
    expect((await ns.listBrokers()).map((x) => x.brokerId)).not.toContain('b-4');
  });

  it.each([
    [{ brokerId: 'has space' }, 'brokerId'],
    [{ brokerGroup: '' }, 'brokerGroup'],
    [{ address: 'ftp://x' }, 'address'],
    [{ address: 'not a url' }, 'address'],
    [{ role: 'BOSS' }, 'role'],
    [{ epoch: -1 }, 'epoch'],
    [{ ttlMs: 0 }, 'ttlMs'],
  ])('rejects %j', async (change, field) => {
    await expectCode(ns.registerBroker({ ...broker('b-9', 'g-9'), ...(change as object) }), 'INVALID_ARGUMENT', field);
  });
});

describe('topics', () => {
  let ns: NameServer;
  let clock: { ms: number };
  beforeAll(async () => ({ ns, clock } = await fresh()));

  it('cannot place a topic while no broker group is live', async () => {
    await expectCode(ns.createTopic({ name: 'early' }), 'SERVICE_UNAVAILABLE');
  });

  it('spreads the queues round-robin over the live broker groups, sorted, with defaults', async () => {
    await ns.registerBroker(broker('b-b', 'group-b'));
    await ns.registerBroker(broker('b-a', 'group-a'));
    await ns.registerBroker(broker('b-a2', 'group-a', { role: 'FOLLOWER' }));
    const topic = await ns.createTopic({ name: 'orders' });
    expect(topic).toEqual({
      name: 'orders',
      type: 'NORMAL',
      queues: 8,
      assignment: ['group-a', 'group-b', 'group-a', 'group-b', 'group-a', 'group-b', 'group-a', 'group-b'],
      perm: { read: true, write: true },
      version: 1,
      createdAt: clock.ms,
      updatedAt: clock.ms,
    });
    expect(await ns.getTopic('orders')).toEqual(topic);
    expect(await ns.requireTopic('orders')).toEqual(topic);
  });

  it('places queues on the broker groups given, live or not', async () => {
    const topic = await ns.createTopic({
      name: 'payments',
      queues: 3,
      type: 'FIFO',
      perm: { write: false },
      retentionMs: 86_400_000,
      brokerGroups: ['group-z'],
    });
    expect(topic).toMatchObject({ type: 'FIFO', queues: 3, assignment: ['group-z', 'group-z', 'group-z'], retentionMs: 86_400_000 });
    expect(topic.perm).toEqual({ read: true, write: false });
  });

  it('refuses a second topic of the same name', async () => {
    await expectCode(ns.createTopic({ name: 'orders', brokerGroups: ['x'] }), 'ALREADY_EXISTS', 'name');
  });

  it('lets exactly one of several concurrent creations win', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => ns.createTopic({ name: 'race', queues: i + 1, brokerGroups: ['group-a'] })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await ns.getTopic('race')).toEqual((won[0] as PromiseFulfilledResult<Topic>).value);
  });

  it('reports a missing topic as undefined, or TOPIC_NOT_FOUND when required', async () => {
    expect(await ns.getTopic('missing')).toBeUndefined();
    await expectCode(ns.requireTopic('missing'), 'TOPIC_NOT_FOUND');
    await expectCode(ns.deleteTopic('missing'), 'TOPIC_NOT_FOUND');
    await expectCode(ns.updateTopic({ name: 'missing', version: 1 }), 'TOPIC_NOT_FOUND');
    await expectCode(ns.getRoute('missing'), 'TOPIC_NOT_FOUND');
  });

  it.each([
    [{ name: 'a/b' }, 'ILLEGAL_TOPIC', 'name'],
    [{ name: 't'.repeat(128) }, 'ILLEGAL_TOPIC', 'name'],
    [{ name: 'q', queues: 0 }, 'INVALID_ARGUMENT', 'queues'],
    [{ name: 'q', queues: 1025 }, 'INVALID_ARGUMENT', 'queues'],
    [{ name: 'q', type: 'LIFO' }, 'INVALID_ARGUMENT', 'type'],
    [{ name: 'q', perm: { read: 'yes' } }, 'INVALID_ARGUMENT', 'perm.read'],
    [{ name: 'q', retentionMs: 0 }, 'INVALID_ARGUMENT', 'retentionMs'],
    [{ name: 'q', brokerGroups: [] }, 'INVALID_ARGUMENT', 'brokerGroups'],
    [{ name: 'q', brokerGroups: ['ok', 'not ok'] }, 'INVALID_ARGUMENT', 'brokerGroups[1]'],
  ] as const)('rejects %j with %s', async (spec, code, field) => {
    await expectCode(ns.createTopic(spec as never), code, field);
  });

  it('accepts 1 and 1024 queues', async () => {
    expect((await ns.createTopic({ name: 'one', queues: 1, brokerGroups: ['g'] })).assignment).toEqual(['g']);
    expect((await ns.createTopic({ name: 'many', queues: 1024, brokerGroups: ['g', 'h'] })).assignment).toHaveLength(1024);
  });

  it('updates with an optimistic version check', async () => {
    const v1 = await ns.requireTopic('payments');
    clock.ms += 10;
    const v2 = await ns.updateTopic({ name: 'payments', version: v1.version, perm: { write: true }, retentionMs: null });
    expect(v2).toMatchObject({ version: 2, perm: { read: true, write: true }, updatedAt: clock.ms, createdAt: v1.createdAt });
    expect(v2.retentionMs).toBeUndefined();
    expect(await ns.getTopic('payments')).toEqual(v2);
    // Whoever still holds version 1 must re-read.
    await expectCode(ns.updateTopic({ name: 'payments', version: v1.version, perm: { read: false } }), 'CONFLICT', 'version');
    expect((await ns.updateTopic({ name: 'payments', version: 2, retentionMs: 60_000 })).retentionMs).toBe(60_000);
  });

  it('lets exactly one of several concurrent updates from the same version win', async () => {
    const { version } = await ns.requireTopic('orders');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => ns.updateTopic({ name: 'orders', version, retentionMs: 1000 * (i + 1) })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CONFLICT' });
    const stored = await ns.requireTopic('orders');
    expect(stored.version).toBe(version + 1);
    expect(stored).toEqual((won[0] as PromiseFulfilledResult<Topic>).value);
  });

  it('lists and deletes', async () => {
    expect((await ns.listTopics()).map((t) => t.name)).toEqual(['many', 'one', 'orders', 'payments', 'race']);
    await ns.deleteTopic('race');
    expect(await ns.getTopic('race')).toBeUndefined();
    await expectCode(ns.deleteTopic('race'), 'TOPIC_NOT_FOUND');
  });

  it('routes each queue to its group leader, and to nobody while the group has none', async () => {
    const route = await ns.getRoute('orders');
    expect(route.slice(0, 2)).toEqual([
      { queueId: 0, brokerGroup: 'group-a', leaderAddress: 'http://b-a.local:8080' },
      { queueId: 1, brokerGroup: 'group-b', leaderAddress: 'http://b-b.local:8080' },
    ]);
    expect((await ns.getRoute('payments')).every((q) => q.leaderAddress === undefined)).toBe(true);
  });
});

describe('resolveRoute', () => {
  const topic: Topic = {
    name: 't', type: 'NORMAL', queues: 3, assignment: ['a', 'b', 'a'], perm: { read: true, write: true },
    version: 1, createdAt: 0, updatedAt: 0,
  };
  const b = (brokerId: string, brokerGroup: string, role: Broker['role'], epoch: number, expiresAt: number): Broker => ({
    brokerId, brokerGroup, role, epoch, expiresAt, address: `http://${brokerId}`, heartbeatAt: 0, version: 1,
  });

  it('picks the live leader with the highest epoch, skipping followers and expired brokers', () => {
    const brokers = [
      b('old', 'a', 'LEADER', 3, 200), b('new', 'a', 'LEADER', 4, 200), b('f', 'a', 'FOLLOWER', 9, 200),
      b('newest-but-dead', 'a', 'LEADER', 5, 100), b('bf', 'b', 'FOLLOWER', 1, 200),
    ];
    expect(resolveRoute(topic, brokers, 100)).toEqual([
      { queueId: 0, brokerGroup: 'a', leaderAddress: 'http://new' },
      { queueId: 1, brokerGroup: 'b', leaderAddress: undefined },
      { queueId: 2, brokerGroup: 'a', leaderAddress: 'http://new' },
    ]);
  });
});

describe('groups', () => {
  let ns: NameServer;
  beforeAll(async () => ({ ns } = await fresh()));

  it('creates with defaults, reads, lists, updates and deletes', async () => {
    const g = await ns.createGroup({ name: 'billing' });
    expect(g).toMatchObject({ name: 'billing', mode: 'CLUSTERING', orderly: false, maxDeliveryAttempts: 16, version: 1 });
    await ns.createGroup({ name: 'audit', mode: 'BROADCASTING', orderly: true, maxDeliveryAttempts: 1000 });
    expect((await ns.listGroups()).map((x) => x.name)).toEqual(['audit', 'billing']);
    expect(await ns.requireGroup('billing')).toEqual(g);

    const g2 = await ns.updateGroup({ name: 'billing', version: 1, orderly: true, maxDeliveryAttempts: 3 });
    expect(g2).toMatchObject({ orderly: true, maxDeliveryAttempts: 3, mode: 'CLUSTERING', version: 2 });
    await expectCode(ns.updateGroup({ name: 'billing', version: 1, orderly: false }), 'CONFLICT', 'version');

    await ns.deleteGroup('billing');
    expect(await ns.getGroup('billing')).toBeUndefined();
  });

  it('uses the exists and not-found codes', async () => {
    await ns.createGroup({ name: 'dup' });
    await expectCode(ns.createGroup({ name: 'dup' }), 'ALREADY_EXISTS', 'name');
    await expectCode(ns.requireGroup('nope'), 'CONSUMER_GROUP_NOT_FOUND');
    await expectCode(ns.deleteGroup('nope'), 'CONSUMER_GROUP_NOT_FOUND');
    await expectCode(ns.updateGroup({ name: 'nope', version: 1 }), 'CONSUMER_GROUP_NOT_FOUND');
  });

  it('lets exactly one of several concurrent creations win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => ns.createGroup({ name: 'race' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it.each([
    [{ name: 'g'.repeat(121) }, 'ILLEGAL_CONSUMER_GROUP', 'name'],
    [{ name: 'a b' }, 'ILLEGAL_CONSUMER_GROUP', 'name'],
    [{ name: 'g', mode: 'FANOUT' }, 'INVALID_ARGUMENT', 'mode'],
    [{ name: 'g', orderly: 1 }, 'INVALID_ARGUMENT', 'orderly'],
    [{ name: 'g', maxDeliveryAttempts: 0 }, 'INVALID_ARGUMENT', 'maxDeliveryAttempts'],
    [{ name: 'g', maxDeliveryAttempts: 1001 }, 'INVALID_ARGUMENT', 'maxDeliveryAttempts'],
  ] as const)('rejects %j with %s', async (spec, code, field) => {
    await expectCode(ns.createGroup(spec as never), code, field);
  });
});

describe('principals', () => {
  let ns: NameServer;
  beforeAll(async () => ({ ns } = await fresh()));

  it('creates a principal with a fresh key and stores only the key hash', async () => {
    const { apiKey, principal } = await ns.createPrincipal({ name: 'svc-orders', permissions: { publish: ['orders'] } });
    expect(apiKey).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(principal).toMatchObject({ name: 'svc-orders', permissions: { publish: ['orders'] }, keyHash: hashApiKey(apiKey) });
    const other = await ns.createPrincipal({ name: 'svc-orders', permissions: {} });
    expect(other.apiKey).not.toBe(apiKey);

    const scanned = JSON.stringify((await client.send(new ScanCommand({ TableName: ns.tables.principals }))).Items);
    expect(scanned).toContain(hashApiKey(apiKey));
    expect(scanned).not.toContain(apiKey);
    expect(scanned).not.toContain(apiKey.slice(3));

    expect(await ns.authenticate(apiKey)).toEqual(principal);
    expect(await ns.authenticate(other.apiKey)).toMatchObject({ permissions: {} });
  });

  it('authenticates nothing for unknown, malformed or non-string keys', async () => {
    for (const key of [`sk_${'A'.repeat(43)}`, 'short', '', 'x'.repeat(257), 'has spaces in it, sixteen+', 42, undefined, null]) {
      expect(await ns.authenticate(key)).toBeUndefined();
    }
  });

  it('ensures the principal of a given key, idempotently', async () => {
    const apiKey = 'dev-admin-key-0123456789';
    const first = await ns.ensurePrincipal({ name: 'admin', permissions: { admin: true }, apiKey });
    const again = await ns.ensurePrincipal({ name: 'admin', permissions: { admin: true }, apiKey });
    expect(again).toMatchObject({ name: 'admin', permissions: { admin: true }, keyHash: first.keyHash });
    expect(await ns.authenticate(apiKey)).toEqual(again);
    expect((await ns.listPrincipals()).filter((p) => p.name === 'admin')).toHaveLength(1);
    await expectCode(ns.ensurePrincipal({ name: 'admin', permissions: {}, apiKey: 'too-short' }), 'INVALID_ARGUMENT', 'apiKey');
  });

  it.each([
    [{ name: 'bad name', permissions: {} }, 'INVALID_ARGUMENT', 'name'],
    [{ name: 'p', permissions: { publish: ['ok', 'a/b'] } }, 'ILLEGAL_TOPIC', 'permissions.publish[1]'],
    [{ name: 'p', permissions: { subscribe: ['g'.repeat(121)] } }, 'ILLEGAL_CONSUMER_GROUP', 'permissions.subscribe[0]'],
    [{ name: 'p', permissions: { publish: 'orders' } }, 'INVALID_ARGUMENT', 'permissions.publish'],
    [{ name: 'p', permissions: { admin: 'yes' } }, 'INVALID_ARGUMENT', 'permissions.admin'],
    [{ name: 'p', permissions: { delete: true } }, 'INVALID_ARGUMENT', 'permissions.delete'],
    [{ name: 'p', permissions: null }, 'INVALID_ARGUMENT', 'permissions'],
  ] as const)('rejects %j with %s', async (input, code, field) => {
    await expectCode(ns.createPrincipal(input as never), code, field);
  });
});

describe('leases', () => {
  let ns: NameServer;
  let clock: { ms: number };
  beforeAll(async () => ({ ns, clock } = await fresh()));

  it('is held by one holder until it expires, then passes on with a higher epoch', async () => {
    const a = await ns.acquireLease('g-1', 'task-a', 1000);
    expect(a).toEqual({ brokerGroup: 'g-1', holder: 'task-a', epoch: 1, expiresAt: clock.ms + 1000 });
    expect(await ns.acquireLease('g-1', 'task-b', 1000)).toBeUndefined();
    clock.ms += 999;
    expect(await ns.acquireLease('g-1', 'task-b', 1000)).toBeUndefined();
    clock.ms += 1;
    const b = await ns.acquireLease('g-1', 'task-b', 1000);
    expect(b).toMatchObject({ holder: 'task-b', epoch: 2 });
    // The old holder has lost it: renewing fails, and so does re-acquiring.
    expect(await ns.renewLease(a as NonNullable<typeof a>, 1000)).toBeUndefined();
    expect(await ns.acquireLease('g-1', 'task-a', 1000)).toBeUndefined();
  });

  it('extends under the same epoch for its holder', async () => {
    const a = await ns.acquireLease('g-2', 'task-a', 1000);
    clock.ms += 500;
    const again = await ns.acquireLease('g-2', 'task-a', 1000);
    expect(again).toEqual({ ...a, expiresAt: clock.ms + 1000 });
    clock.ms += 500;
    const renewed = await ns.renewLease(again as NonNullable<typeof again>, 2000);
    expect(renewed).toEqual({ ...a, expiresAt: clock.ms + 2000 });
    expect(await ns.renewLease({ brokerGroup: 'g-2', holder: 'task-a', epoch: 99 }, 1000)).toBeUndefined();
  });

  it('renews nothing once expired, even for the same holder, who must re-acquire with a new epoch', async () => {
    const a = await ns.acquireLease('g-3', 'task-a', 1000);
    clock.ms += 1000;
    expect(await ns.renewLease(a as NonNullable<typeof a>, 1000)).toBeUndefined();
    expect(await ns.acquireLease('g-3', 'task-a', 1000)).toMatchObject({ holder: 'task-a', epoch: 2 });
  });

  it('is released only by its holder at its epoch, and the next holder need not wait', async () => {
    const a = await ns.acquireLease('g-4', 'task-a', 60_000);
    if (a === undefined) throw new Error('not acquired');
    expect(await ns.releaseLease({ ...a, holder: 'task-b' })).toBe(false);
    expect(await ns.releaseLease({ ...a, epoch: a.epoch + 1 })).toBe(false);
    expect(await ns.releaseLease(a)).toBe(true);
    expect(await ns.acquireLease('g-4', 'task-b', 60_000)).toMatchObject({ holder: 'task-b', epoch: a.epoch + 1 });
    // The item stays, expired or not, so the epoch never restarts.
    expect(await ns.getLease('g-4')).toMatchObject({ holder: 'task-b', epoch: 2 });
  });

  it('goes to exactly one of several concurrent acquirers', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => ns.acquireLease('g-5', `task-${i}`, 1000)));
    const won = results.filter((r) => r !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]?.epoch).toBe(1);
  });

  it('has strictly increasing epochs across any sequence of handovers', async () => {
    let last = 0;
    const holders = ['a', 'b', 'c'];
    for (let round = 0; round < 12; round++) {
      const holder = holders[round % holders.length] as string;
      const lease = await ns.acquireLease('g-6', holder, 100);
      expect(lease?.holder).toBe(holder);
      expect(lease?.epoch).toBe(last + 1);
      last = lease?.epoch ?? last;
      if (round % 2 === 0) clock.ms += 100;
      else expect(await ns.releaseLease(lease as NonNullable<typeof lease>)).toBe(true);
    }
  });

  it('validates its input', async () => {
    await expectCode(ns.acquireLease('bad group', 'a', 1000), 'INVALID_ARGUMENT', 'brokerGroup');
    await expectCode(ns.acquireLease('g', 'has space', 1000), 'INVALID_ARGUMENT', 'holder');
    await expectCode(ns.acquireLease('g', 'a', 0), 'INVALID_ARGUMENT', 'ttlMs');
  });
});
