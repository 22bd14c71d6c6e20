/**
 * The broker's in-memory view of the name server, so that no request waits on DynamoDB.
 *
 * Every `refreshIntervalMs` the cache reads the brokers, topics, groups and principals tables
 * whole (one paginated Scan each) and swaps its maps. A name missing from the maps is fetched
 * with one GetItem, shared by all callers asking for it at the same time (single flight), so a
 * topic created a moment ago works at once; a name that does not exist is remembered as absent
 * until the next refresh, so a client retrying a wrong name costs one read per interval.
 *
 * Full scans, rather than refreshing keys one by one, because every broker serves every topic
 * and a scan costs read units by bytes, not by item: re-reading a thousand small topics by
 * GetItem costs a thousand units, scanning them a few dozen. Deletions and changes are seen
 * within one interval; expiry of brokers is applied on every read, not only at refresh.
 */
import { channel } from 'node:diagnostics_channel';
import { SkyrocketError } from '../core/errors.ts';
import { hashApiKey, type Principal } from './auth.ts';
import { resolveRoute, type Broker, type Group, type NameServer, type QueueRoute, type Topic } from './registry.ts';
import { BoundedMap } from '../core/bounded-map.ts';

/**
 * Published after every refresh: `{ durationMs, error? }`. A failed refresh keeps the previous
 * maps, so the broker goes on serving what it last knew while DynamoDB is unreachable.
 */
export const routeCacheRefreshChannel = channel('skyrocket:namesrv:route-cache:refresh');

export interface RouteCacheOptions {
  nameServer: NameServer;
  /**
   * How often to re-read the tables, in milliseconds.
   * @default 2000
   */
  refreshIntervalMs?: number;
}

/** A name the cache looked up and found absent is kept as `null` until the next refresh. */
type Entries<T> = Map<string, T | null>;

export class RouteCache {
  readonly refreshIntervalMs: number;
  readonly #ns: NameServer;
  #brokers: Broker[] = [];
  #topics: Entries<Topic> = new Map();
  #groups: Entries<Group> = new Map();
  #principals: Entries<Principal> = new Map();
  /** One pending fetch per `kind:name`, shared by every caller that misses on it. */
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Hashes of the API keys seen lately (at most 1,024), so a request does not hash its key again. */
  readonly #keyHashes = new BoundedMap<string, string>(1024);
  #refreshing: Promise<void> | undefined;
  #loaded = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RouteCacheOptions) {
    this.#ns = options.nameServer;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 2000;
  }

  /** Loads everything once, then keeps refreshing until `close`. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer ??= setInterval(() => void this.refresh().catch(() => {}), this.refreshIntervalMs);
    // The cache must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-reads all four tables; a refresh already running is joined, not repeated. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const started = performance.now();
    try {
      const [brokers, topics, groups, principals] = await Promise.all([
        this.#ns.listBrokers(),
        this.#ns.listTopics(),
        this.#ns.listGroups(),
        this.#ns.listPrincipals(),
      ]);
      this.#brokers = brokers;
      this.#topics = new Map(topics.map((t) => [t.name, t]));
      this.#groups = new Map(groups.map((g) => [g.name, g]));
      this.#principals = new Map(principals.map((p) => [p.keyHash, p]));
      this.#loaded = true;
      routeCacheRefreshChannel.publish({ durationMs: performance.now() - started });
    } catch (error) {
      routeCacheRefreshChannel.publish({ durationMs: performance.now() - started, error });
      throw error;
    }
  }

  /** The live brokers, as of the last refresh less those expired since. */
  async listBrokers(): Promise<Broker[]> {
    if (!this.#loaded) await this.refresh();
    const now = this.#ns.now();
    return this.#brokers.filter((b) => b.expiresAt > now);
  }

  async getTopic(name: string): Promise<Topic | undefined> {
    return this.#lookup('topic', name, () => this.#topics, (n) => this.#ns.getTopic(n));
  }

  /** @throws SkyrocketError TOPIC_NOT_FOUND */
  async requireTopic(name: string): Promise<Topic> {
    const topic = await this.getTopic(name);
    if (topic === undefined) throw new SkyrocketError('TOPIC_NOT_FOUND', `topic ${name} does not exist`, { field: 'topic' });
    return topic;
  }

  async getGroup(name: string): Promise<Group | undefined> {
    return this.#lookup('group', name, () => this.#groups, (n) => this.#ns.getGroup(n));
  }

  /** @throws SkyrocketError CONSUMER_GROUP_NOT_FOUND */
  async requireGroup(name: string): Promise<Group> {
    const group = await this.getGroup(name);
    if (group === undefined) {
      throw new SkyrocketError('CONSUMER_GROUP_NOT_FOUND', `consumer group ${name} does not exist`, { field: 'group' });
    }
    return group;
  }

  /** The principal of an API key, or undefined. A revoked key stops working within one interval. */
  async authenticate(apiKey: unknown): Promise<Principal | undefined> {
    // Only well-formed keys reach the name server; it answers undefined for the rest at once.
    if (typeof apiKey !== 'string') return undefined;
    // Every request names its key: hashing it each time was a few percent of a small request.
    let keyHash = this.#keyHashes.get(apiKey);
    if (keyHash === undefined) {
      keyHash = hashApiKey(apiKey);
      this.#keyHashes.set(apiKey, keyHash);
    }
    return this.#lookup('principal', keyHash, () => this.#principals, () => this.#ns.authenticate(apiKey));
  }

  /** Where each queue of the topic lives now. @throws SkyrocketError TOPIC_NOT_FOUND */
  async getRoute(topicName: string): Promise<QueueRoute[]> {
    const [topic, brokers] = await Promise.all([this.requireTopic(topicName), this.listBrokers()]);
    return resolveRoute(topic, brokers, this.#ns.now());
  }

  /**
   * Serves `name` from the current map, or fetches it once for all concurrent callers. The map
   * is looked up through `entries()` at each step because a refresh may swap it meanwhile; the
   * fetched value is stored only where the refresh has not put a newer one.
   */
  async #lookup<T>(kind: string, name: string, entries: () => Entries<T>, fetch: (name: string) => Promise<T | undefined>): Promise<T | undefined> {
    const cached = entries().get(name);
    if (cached !== undefined) return cached ?? undefined;
    const key = `${kind}:${name}`;
    let pending = this.#inflight.get(key) as Promise<T | undefined> | undefined;
    if (pending === undefined) {
      pending = fetch(name)
        .then((value) => {
          const map = entries();
          if (!map.has(name)) map.set(name, value ?? null);
          return value;
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }
}
