import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { dynamoClient, uniquePrefix } from '../test/support/aws.ts';
import { NameServer } from './registry.ts';
import { RouteCache, routeCacheRefreshChannel } from './route-cache.ts';
import { ensureTables } from './tables.ts';

/**
 * A real client whose every request is counted, by operation, as it goes on the wire, and which
 * can be told to fail (as an unreachable DynamoDB would) before sending.
 */
function instrumentedClient(): { client: DynamoDBClient; calls: string[]; fault: { on: boolean } } {
  const client = dynamoClient();
  const calls: string[] = [];
  const fault = { on: false };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (fault.on) throw new Error('injected: DynamoDB unreachable');
      calls.push(context.commandName?.replace(/Command$/, '') ?? '?');
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { client, calls, fault };
}

const { client, calls, fault } = instrumentedClient();
afterAll(() => client.destroy());

let ns: NameServer;
let clock: { ms: number };
let cache: RouteCache;

beforeEach(async () => {
  const prefix = uniquePrefix();
  await ensureTables(client, prefix);
  clock = { ms: 1_700_000_000_000 };
  ns = new NameServer({ client, prefix, now: () => clock.ms });
  await ns.registerBroker({ brokerId: 'b-1', brokerGroup: 'g-1', address: 'http://b1:8080', role: 'LEADER', epoch: 1, ttlMs: 10_000 });
  await ns.createTopic({ name: 'orders', queues: 2 });
  await ns.createGroup({ name: 'billing' });
  // A long interval: these tests drive refreshes by hand unless they say otherwise.
  cache = new RouteCache({ nameServer: ns, refreshIntervalMs: 3_600_000 });
  fault.on = false;
  calls.length = 0;
  return () => cache.close();
});

describe('RouteCache', () => {
  it('loads every table once, then serves reads from memory', async () => {
    await cache.start();
    expect([...calls].sort()).toEqual(['Scan', 'Scan', 'Scan', 'Scan']);
    calls.length = 0;
    for (let i = 0; i < 20; i++) {
      expect((await cache.requireTopic('orders')).queues).toBe(2);
      expect((await cache.requireGroup('billing')).mode).toBe('CLUSTERING');
      expect(await cache.getRoute('orders')).toEqual([
        { queueId: 0, brokerGroup: 'g-1', leaderAddress: 'http://b1:8080' },
        { queueId: 1, brokerGroup: 'g-1', leaderAddress: 'http://b1:8080' },
      ]);
    }
    expect(calls).toEqual([]);
  });

  it('fetches a name it has not seen once, however many callers ask at the same time', async () => {
    await cache.start();
    await ns.createTopic({ name: 'fresh', queues: 1 });
    calls.length = 0;
    const topics = await Promise.all(Array.from({ length: 10 }, () => cache.getTopic('fresh')));
    expect(topics.every((t) => t?.name === 'fresh')).toBe(true);
    expect(calls).toEqual(['GetItem']);
    await cache.getTopic('fresh');
    expect(calls).toEqual(['GetItem']);
  });

  it('remembers an absent name until the next refresh', async () => {
    await cache.start();
    calls.length = 0;
    await Promise.all([cache.getTopic('nope'), cache.getTopic('nope')]);
    await expect(cache.requireTopic('nope')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await expect(cache.requireGroup('nope')).rejects.toMatchObject({ code: 'CONSUMER_GROUP_NOT_FOUND' });
    expect(calls).toEqual(['GetItem', 'GetItem']);

    await ns.createTopic({ name: 'nope', queues: 1 });
    expect(await cache.getTopic('nope')).toBeUndefined();
    await cache.refresh();
    expect((await cache.getTopic('nope'))?.name).toBe('nope');
  });

  it('sees changes and deletions at the next refresh', async () => {
    await cache.start();
    const before = await cache.requireTopic('orders');
    await ns.updateTopic({ name: 'orders', version: before.version, perm: { write: false } });
    await ns.deleteGroup('billing');
    expect((await cache.requireTopic('orders')).perm.write).toBe(true);
    await cache.refresh();
    expect((await cache.requireTopic('orders')).perm.write).toBe(false);
    expect(await cache.getGroup('billing')).toBeUndefined();
  });

  it('joins a refresh already running instead of starting another', async () => {
    await Promise.all([cache.refresh(), cache.refresh(), cache.refresh()]);
    expect(calls).toHaveLength(4);
  });

  it('drops brokers as they expire, between refreshes', async () => {
    await cache.start();
    expect((await cache.getRoute('orders'))[0]?.leaderAddress).toBe('http://b1:8080');
    clock.ms += 10_000;
    expect(await cache.listBrokers()).toEqual([]);
    expect((await cache.getRoute('orders'))[0]?.leaderAddress).toBeUndefined();
  });

  it('authenticates from memory, and new keys with one read', async () => {
    const { apiKey: early } = await ns.createPrincipal({ name: 'early', permissions: { publish: ['*'] } });
    await cache.start();
    calls.length = 0;
    expect((await cache.authenticate(early))?.name).toBe('early');
    expect(calls).toEqual([]);
    const { apiKey: late } = await ns.createPrincipal({ name: 'late', permissions: {} });
    calls.length = 0;
    expect((await Promise.all([cache.authenticate(late), cache.authenticate(late)])).map((p) => p?.name)).toEqual(['late', 'late']);
    expect(await cache.authenticate('sk_unknown-key-0123456789')).toBeUndefined();
    expect(await cache.authenticate(42)).toBeUndefined();
    expect(calls).toEqual(['GetItem', 'GetItem']);
  });

  it('refreshes on its interval', async () => {
    const quick = new RouteCache({ nameServer: ns, refreshIntervalMs: 20 });
    try {
      await quick.start();
      await ns.createGroup({ name: 'later' });
      calls.length = 0;
      // Eight scans after the change hold one whole refresh that started after it: a refresh
      // already running when the counter was reset adds at most four.
      await vi.waitFor(() => expect(calls.filter((c) => c === 'Scan').length).toBeGreaterThanOrEqual(8), { timeout: 2000 });
      // Served from the scan, so no GetItem is needed.
      calls.length = 0;
      expect((await quick.getGroup('later'))?.name).toBe('later');
      expect(calls.filter((c) => c === 'GetItem')).toEqual([]);
    } finally {
      quick.close();
    }
  });

  it('keeps serving what it knew when a refresh fails, and reports the failure', async () => {
    await cache.start();
    const events: Array<{ error?: unknown }> = [];
    const listener = (message: unknown) => events.push(message as { error?: unknown });
    subscribe(routeCacheRefreshChannel.name, listener);
    try {
      fault.on = true;
      await expect(cache.refresh()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect((await cache.requireTopic('orders')).name).toBe('orders');
      await expect(cache.getTopic('unseen')).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      fault.on = false;
      await cache.refresh();
      expect(events.map((e) => e.error !== undefined)).toEqual([true, false]);
    } finally {
      unsubscribe(routeCacheRefreshChannel.name, listener);
    }
  });
});
