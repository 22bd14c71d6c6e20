import { SkyrocketError } from '../../core/errors.ts';
import type { Group, LambdaSubscriptionSpec, NameServer, Principal as NsPrincipal, RouteCache, Topic } from '../../namesrv/index.ts';
import type { CreateGroupInput, CreateTopicInput, Directory, GroupInfo, Principal, TopicRoute } from './directory.ts';

/**
 * The broker's view of the cluster, served from the route cache and falling back to the name
 * server on a miss. A name the cache has not seen (a topic created a moment ago through another
 * broker) is read from DynamoDB directly, so a topic is usable at once wherever it was created.
 */
export class NamesrvDirectory implements Directory {
  readonly #ns: NameServer;
  readonly #cache: RouteCache;

  constructor(nameServer: NameServer, cache: RouteCache) {
    this.#ns = nameServer;
    this.#cache = cache;
  }

  async topic(name: string): Promise<TopicRoute> {
    const topic = (await this.#cache.getTopic(name)) ?? (await this.#ns.getTopic(name));
    if (topic === undefined) throw new SkyrocketError('TOPIC_NOT_FOUND', `topic ${name} does not exist`, { field: 'topic' });
    return toRoute(topic);
  }

  async listTopics(): Promise<TopicRoute[]> {
    return (await this.#ns.listTopics()).map(toRoute);
  }

  async createTopic(input: CreateTopicInput): Promise<TopicRoute> {
    const topic = await this.#ns.createTopic({ name: input.name, queues: input.queues, type: input.type });
    void this.#cache.refresh().catch(() => undefined);
    return toRoute(topic);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#ns.deleteTopic(name);
    // This broker must stop serving the topic before it answers; others follow within a refresh.
    await this.#cache.refresh().catch(() => undefined);
  }

  async group(name: string): Promise<GroupInfo> {
    const group = (await this.#cache.getGroup(name)) ?? (await this.#ns.getGroup(name));
    if (group === undefined) {
      throw new SkyrocketError('CONSUMER_GROUP_NOT_FOUND', `consumer group ${name} does not exist`, { field: 'group' });
    }
    return toGroup(group);
  }

  async listGroups(): Promise<GroupInfo[]> {
    return (await this.#ns.listGroups()).map(toGroup);
  }

  async createGroup(input: CreateGroupInput): Promise<GroupInfo> {
    const group = await this.#ns.createGroup(input);
    void this.#cache.refresh().catch(() => undefined);
    return toGroup(group);
  }

  async deleteGroup(name: string): Promise<void> {
    await this.#ns.deleteGroup(name);
    await this.#cache.refresh().catch(() => undefined);
  }

  async putLambdaSubscription(group: string, spec: LambdaSubscriptionSpec): Promise<GroupInfo> {
    const updated = await this.#ns.putLambdaSubscription(group, spec);
    // This broker answers with the change from now on; others see it within a refresh.
    await this.#cache.refresh().catch(() => undefined);
    return toGroup(updated);
  }

  async deleteLambdaSubscription(group: string, topic: string): Promise<GroupInfo> {
    const updated = await this.#ns.deleteLambdaSubscription(group, topic);
    await this.#cache.refresh().catch(() => undefined);
    return toGroup(updated);
  }

  async leaderUrl(brokerGroup: string): Promise<string> {
    let leader = pickLeader(await this.#cache.listBrokers(), brokerGroup);
    if (leader === undefined) {
      leader = pickLeader(await this.#ns.listBrokers(), brokerGroup);
    }
    if (leader === undefined) {
      throw new SkyrocketError('SERVICE_UNAVAILABLE', `broker group ${brokerGroup} has no live leader`);
    }
    return leader;
  }

  /** Read from DynamoDB, not the cache: it serves rare requests that must not miss a new broker. */
  async brokerGroups(): Promise<string[]> {
    const now = this.#ns.now();
    const groups = new Set<string>();
    for (const b of await this.#ns.listBrokers()) if (b.role === 'LEADER' && b.expiresAt > now) groups.add(b.brokerGroup);
    return [...groups].sort();
  }

  async brokerUrl(brokerId: number): Promise<string | undefined> {
    const id = String(brokerId);
    const now = this.#ns.now();
    const find = (list: Awaited<ReturnType<NameServer['listBrokers']>>) => list.find((b) => b.brokerId === id && b.expiresAt > now);
    return (find(await this.#cache.listBrokers()) ?? find(await this.#ns.listBrokers()))?.address;
  }

  /**
   * Unlike topics and groups, an unknown key is not re-read from DynamoDB: a flood of bad keys
   * must not become a flood of reads. A new key works from the cache's next refresh (2 s).
   */
  async authenticate(apiKey: string): Promise<Principal | undefined> {
    const principal = await this.#cache.authenticate(apiKey);
    return principal === undefined ? undefined : toPrincipal(principal);
  }
}

function pickLeader(brokers: Awaited<ReturnType<NameServer['listBrokers']>>, brokerGroup: string): string | undefined {
  let best: (typeof brokers)[number] | undefined;
  for (const b of brokers) {
    if (b.brokerGroup !== brokerGroup || b.role !== 'LEADER') continue;
    if (best === undefined || b.epoch > best.epoch) best = b;
  }
  return best?.address;
}

function toRoute(topic: Topic): TopicRoute {
  return { name: topic.name, type: topic.type, queueGroups: topic.assignment, readable: topic.perm.read, writable: topic.perm.write };
}

function toGroup(group: Group): GroupInfo {
  const info: GroupInfo = { name: group.name, mode: group.mode, orderly: group.orderly, maxDeliveryAttempts: group.maxDeliveryAttempts };
  if (group.lambdaSubscriptions !== undefined && group.lambdaSubscriptions.length > 0) info.lambdaSubscriptions = group.lambdaSubscriptions;
  return info;
}

function toPrincipal(p: NsPrincipal): Principal {
  return {
    name: p.name,
    admin: p.permissions.admin === true,
    publish: p.permissions.publish ?? [],
    subscribe: p.permissions.subscribe ?? [],
  };
}
