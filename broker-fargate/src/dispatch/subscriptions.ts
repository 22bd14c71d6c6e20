import { GetParametersByPathCommand, SSMClient, type GetParametersByPathCommandOutput } from '@aws-sdk/client-ssm';
import { SkyrocketError } from '../../../core/errors.ts';
import { limits } from '../../../core/limits.ts';
import { parseLambdaConsumerDocument, type LambdaSubscriptionSpec } from '../../../namesrv/lambda-subscription.ts';
import type { Directory, GroupInfo } from '../directory.ts';

/** A Lambda subscription with what the dispatcher needs of its group. */
export interface Subscription extends LambdaSubscriptionSpec {
  group: string;
  /** One message (and batch) per message group in flight, in order. */
  orderly: boolean;
  maxDeliveryAttempts: number;
  /** Where it was found: the groups table (REST API) or an SSM parameter (CDK `LambdaConsumer`). */
  source: 'groups-table' | 'ssm';
}

/** Reads every Lambda subscription of the cluster. Throws when the source cannot be read. */
export type SubscriptionSource = () => Promise<Subscription[]>;

/** Subscriptions recorded on the groups' items (`PUT /v1/groups/{group}/lambda-subscriptions/{topic}`). */
export function groupsTableSubscriptions(directory: Pick<Directory, 'listGroups'>): SubscriptionSource {
  return async () => {
    const out: Subscription[] = [];
    for (const group of await directory.listGroups()) {
      // The API refuses subscriptions on broadcasting groups; one written otherwise is ignored.
      if (group.mode !== 'CLUSTERING') continue;
      for (const spec of group.lambdaSubscriptions ?? []) out.push(fromGroup(group, spec, 'groups-table', group.orderly));
    }
    return out;
  };
}

function fromGroup(group: GroupInfo, spec: LambdaSubscriptionSpec, source: Subscription['source'], orderly: boolean): Subscription {
  return { ...spec, group: group.name, orderly, maxDeliveryAttempts: group.maxDeliveryAttempts, source };
}

/**
 * Subscriptions recorded by CDK `LambdaConsumer` constructs: one SSM parameter per (group, topic)
 * under `path`, holding a version-1 document. The group's settings come from the groups table
 * when the group exists there, else the defaults (clustering, 16 attempts); the document's
 * `orderly` makes delivery orderly even when the group is not.
 */
export function ssmSubscriptions(
  ssm: Pick<SSMClient, 'send'>,
  path: string,
  directory: Pick<Directory, 'group'>,
  onInvalid: (parameter: string, error: unknown) => void,
): SubscriptionSource {
  return async () => {
    const out: Subscription[] = [];
    let nextToken: string | undefined;
    do {
      let page: GetParametersByPathCommandOutput;
      try {
        page = await ssm.send(new GetParametersByPathCommand({ Path: path, Recursive: true, ...(nextToken === undefined ? {} : { NextToken: nextToken }) }));
      } catch (error) {
        throw new SkyrocketError('SERVICE_UNAVAILABLE', `SSM: could not read ${path}`, { cause: error });
      }
      for (const parameter of page.Parameters ?? []) {
        try {
          const doc = parseLambdaConsumerDocument(parameter.Value ?? '');
          let group: GroupInfo;
          try {
            group = await directory.group(doc.group);
          } catch (error) {
            if (!(error instanceof SkyrocketError && error.code === 'CONSUMER_GROUP_NOT_FOUND')) throw error;
            group = { name: doc.group, mode: 'CLUSTERING', orderly: false, maxDeliveryAttempts: limits.deliveryAttemptsDefaultCount };
          }
          if (group.mode !== 'CLUSTERING') throw new SkyrocketError('INVALID_ARGUMENT', `group ${group.name} is not a clustering group`);
          out.push(fromGroup(group, doc.subscription, 'ssm', group.orderly || doc.orderly));
        } catch (error) {
          if (error instanceof SkyrocketError && error.code === 'SERVICE_UNAVAILABLE') throw error;
          onInvalid(parameter.Name ?? '?', error);
        }
      }
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return out;
  };
}

/**
 * All sources together. When two name the same (group, topic), the first source's wins: the
 * groups table, written at run time, over SSM, written at deploy time.
 */
export function combineSources(sources: readonly SubscriptionSource[]): SubscriptionSource {
  return async () => {
    const seen = new Set<string>();
    const out: Subscription[] = [];
    for (const list of await Promise.all(sources.map((s) => s()))) {
      for (const s of list) {
        const key = subscriptionKey(s);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(s);
      }
    }
    return out;
  };
}

export function subscriptionKey(s: Pick<Subscription, 'group' | 'topic'>): string {
  return `${s.group}\u0000${s.topic}`;
}
