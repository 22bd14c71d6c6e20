/**
 * Lambda consumers: the broker pushes batches to the functions that groups subscribe
 * (DESIGN.md, "Lambda consumers"). The broker builds one `Dispatcher` with `createDispatcher`.
 */
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Registry } from 'prom-client';
import type { ConsumerGroups } from '../consume/consumer-groups.ts';
import type { Directory } from '../directory.ts';
import { defaultDispatchConfig, type DispatchConfig } from './dispatch-config.ts';
import { DispatchMetrics } from './dispatch-metrics.ts';
import { Dispatcher, type DispatchLogger } from './dispatcher.ts';
import { SdkLambdaInvoker, type LambdaInvoker } from './lambda-invoker.ts';
import { combineSources, groupsTableSubscriptions, ssmSubscriptions, type SubscriptionSource } from './subscriptions.ts';

export { defaultDispatchConfig, dispatchLimits, dispatchVariables, loadDispatchConfig, type DispatchConfig } from './dispatch-config.ts';
export { Dispatcher, type DispatcherOptions, type DispatchLogger, type PumpStatus } from './dispatcher.ts';
export { classifyInvokeError, SdkLambdaInvoker, type InvokeOutcome, type LambdaInvoker } from './lambda-invoker.ts';
export {
  batchEvent,
  batchRecord,
  encodeBatchEvent,
  parseBatchResponse,
  splitByPayload,
  type BatchEvent,
  type BatchEventHeader,
  type BatchRecord,
  type BatchResponse,
} from './batch-event.ts';
export { combineSources, groupsTableSubscriptions, ssmSubscriptions, type Subscription, type SubscriptionSource } from './subscriptions.ts';
export { Backoff } from './backoff.ts';

export interface CreateDispatcherOptions {
  groups: ConsumerGroups;
  brokerGroup: string;
  directory: Directory;
  registry: Registry;
  log: DispatchLogger;
  /** @default defaultDispatchConfig */
  config?: DispatchConfig | undefined;
  /** @default the SDK, at `config.lambdaEndpoint` */
  invoker?: LambdaInvoker | undefined;
  /** @default the groups table, plus SSM under `config.subscriptionPath` when set */
  subscriptions?: SubscriptionSource | undefined;
  now?: () => number;
}

export function createDispatcher(options: CreateDispatcherOptions): Dispatcher {
  const config = options.config ?? defaultDispatchConfig;
  const { directory, log } = options;
  let subscriptions = options.subscriptions;
  if (subscriptions === undefined) {
    const sources: SubscriptionSource[] = [groupsTableSubscriptions(directory)];
    if (config.subscriptionPath !== undefined) {
      const ssm = new SSMClient({ region: config.region });
      sources.push(
        ssmSubscriptions(ssm, config.subscriptionPath, directory, (parameter, error) =>
          log.warn({ err: error, parameter }, 'ignoring an invalid Lambda consumer parameter'),
        ),
      );
    }
    subscriptions = combineSources(sources);
  }
  return new Dispatcher({
    groups: options.groups,
    brokerGroup: options.brokerGroup,
    subscriptions,
    topic: (name) => directory.topic(name),
    invoker: options.invoker ?? new SdkLambdaInvoker({ region: config.region, endpoint: config.lambdaEndpoint, timeoutMs: config.invokeTimeoutMs }),
    config,
    metrics: new DispatchMetrics(options.registry),
    log,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}
