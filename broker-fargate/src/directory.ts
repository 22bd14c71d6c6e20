import type { MessageType } from '../../core/message.ts';
import type { LambdaSubscriptionSpec } from '../../namesrv/lambda-subscription.ts';

/**
 * What the broker needs to know about the cluster: topics and their queue layout, consumer groups,
 * API keys, and where each broker group's leader listens. Backed by the name server on DynamoDB
 * through a cache (`namesrv-directory.ts`); tests may put any implementation behind it.
 */
export interface TopicRoute {
  name: string;
  type: MessageType;
  /** Queue id -> the broker group that owns the queue. */
  queueGroups: readonly string[];
  readable: boolean;
  writable: boolean;
}

export interface GroupInfo {
  name: string;
  mode: 'CLUSTERING' | 'BROADCASTING';
  orderly: boolean;
  maxDeliveryAttempts: number;
  /** Topics whose messages the brokers push to a Lambda function (dispatch/); absent when none. */
  lambdaSubscriptions?: readonly LambdaSubscriptionSpec[];
}

export interface Principal {
  name: string;
  admin: boolean;
  /** Topics the principal may publish to; '*' for all. */
  publish: readonly string[];
  /** Groups the principal may consume as; '*' for all. */
  subscribe: readonly string[];
}

export type Action = 'admin' | 'publish' | 'subscribe';

export interface CreateTopicInput {
  name: string;
  queues: number;
  type: MessageType;
}

export interface CreateGroupInput {
  name: string;
  mode: 'CLUSTERING' | 'BROADCASTING';
  orderly: boolean;
  maxDeliveryAttempts: number;
}

export interface Directory {
  /** Throws TOPIC_NOT_FOUND. */
  topic(name: string): Promise<TopicRoute>;
  listTopics(): Promise<TopicRoute[]>;
  createTopic(input: CreateTopicInput): Promise<TopicRoute>;
  deleteTopic(name: string): Promise<void>;
  /** Throws CONSUMER_GROUP_NOT_FOUND. */
  group(name: string): Promise<GroupInfo>;
  listGroups(): Promise<GroupInfo[]>;
  createGroup(input: CreateGroupInput): Promise<GroupInfo>;
  deleteGroup(name: string): Promise<void>;
  /** Adds or replaces the group's Lambda subscription to `spec.topic`. Throws CONSUMER_GROUP_NOT_FOUND. */
  putLambdaSubscription(group: string, spec: LambdaSubscriptionSpec): Promise<GroupInfo>;
  /** Throws CONSUMER_GROUP_NOT_FOUND, or NOT_FOUND when the group has no subscription to `topic`. */
  deleteLambdaSubscription(group: string, topic: string): Promise<GroupInfo>;
  /** The URL of a broker group's leader; throws SERVICE_UNAVAILABLE when none is alive. */
  leaderUrl(brokerGroup: string): Promise<string>;
  /** Broker groups with a live leader. */
  brokerGroups(): Promise<string[]>;
  /** The URL of the broker with this id, if alive. */
  brokerUrl(brokerId: number): Promise<string | undefined>;
  authenticate(apiKey: string): Promise<Principal | undefined>;
}

export function authorize(principal: Principal, action: Action, resource: string): boolean {
  if (principal.admin) return true;
  if (action === 'admin') return false;
  const allowed = action === 'publish' ? principal.publish : principal.subscribe;
  return allowed.includes('*') || allowed.includes(resource);
}
