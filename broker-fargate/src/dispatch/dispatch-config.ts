import { limits } from '../../../core/limits.ts';
import { ConfigError } from '../config.ts';

/**
 * Settings of the Lambda dispatcher, from the environment. Kept apart from `BrokerConfig`: every
 * one has a default, and a broker with no Lambda subscriptions never uses them.
 */
export interface DispatchConfig {
  /**
   * Where the Lambda Invoke API is: set in local mode (the endpoint `skyrocket dev` starts).
   * @default the SDK's regional AWS endpoint
   */
  lambdaEndpoint: string | undefined;
  /** @default 'us-east-1' (AWS_REGION) */
  region: string;
  /**
   * SSM path under which `LambdaConsumer` constructs record subscriptions (lib/lambda-consumer.ts),
   * read in addition to the groups table.
   * @default none: subscriptions come from the groups table only
   */
  subscriptionPath: string | undefined;
  /** How often the subscriptions and topic routes are re-read. @default 5000 */
  refreshIntervalMs: number;
  /**
   * How long one invocation may take before the dispatcher gives up on it and retries the batch;
   * also sets how long the batch stays invisible (this plus `dispatchLimits.invisibleMarginMs`).
   * @default 900_000 (Lambda's longest function timeout)
   */
  invokeTimeoutMs: number;
  /** Longest pause after throttling or errors. @default 20_000 */
  backoffMaxMs: number;
}

/** Fixed numbers of the dispatcher, in one place. */
export const dispatchLimits = {
  /** Lambda's limit on a synchronous invocation's request, 6 MB, less room for the envelope. */
  payloadMaxBytes: 6 * 1024 * 1024 - 64 * 1024,
  /** A batch stays hidden this much longer than an invocation may take. */
  invisibleMarginMs: 30_000,
  /** First pause after a throttle or error; doubles per failure up to `backoffMaxMs`. */
  backoffBaseMs: 100,
  /** An idle subscription looks for visible messages at least this often without a wake-up. */
  idlePollMs: 1_000,
  invokeTimeoutMaxMs: 900_000,
  invokeTimeoutMinMs: 1_000,
} as const;

export const dispatchVariables = {
  lambdaEndpoint: 'SKYROCKET_LAMBDA_ENDPOINT',
  region: 'AWS_REGION',
  subscriptionPath: 'SKYROCKET_SUBSCRIPTION_PATH',
  refreshIntervalMs: 'SKYROCKET_DISPATCH_REFRESH_MS',
  invokeTimeoutMs: 'SKYROCKET_LAMBDA_TIMEOUT_MS',
  backoffMaxMs: 'SKYROCKET_DISPATCH_BACKOFF_MAX_MS',
} as const;

export const defaultDispatchConfig: DispatchConfig = {
  lambdaEndpoint: undefined,
  region: 'us-east-1',
  subscriptionPath: undefined,
  refreshIntervalMs: 5_000,
  invokeTimeoutMs: dispatchLimits.invokeTimeoutMaxMs,
  backoffMaxMs: 20_000,
};

// The receive that takes a batch hides it for the invocation's timeout plus the margin.
if (dispatchLimits.invokeTimeoutMaxMs + dispatchLimits.invisibleMarginMs > limits.invisibleMaxMs) {
  throw new Error('dispatchLimits: the longest invocation must fit the longest invisibility');
}

type Source = Readonly<Record<string, string | undefined>>;

function integer(source: Source, name: string, fallback: number, min: number, max: number): number {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Reads the dispatcher's settings; throws ConfigError naming the variable. */
export function loadDispatchConfig(source: Source): DispatchConfig {
  const v = dispatchVariables;
  const d = defaultDispatchConfig;
  const endpoint = source[v.lambdaEndpoint] || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+\/?$/.test(endpoint)) {
    throw new ConfigError(`${v.lambdaEndpoint}=${JSON.stringify(endpoint)} must be an http(s) URL with no path`);
  }
  const subscriptionPath = source[v.subscriptionPath] || undefined;
  if (subscriptionPath !== undefined && !/^(\/[a-zA-Z0-9_.-]+)+$/.test(subscriptionPath)) {
    throw new ConfigError(`${v.subscriptionPath}=${JSON.stringify(subscriptionPath)} must be an SSM path like /skyrocket/prod/lambda-consumers`);
  }
  return {
    lambdaEndpoint: endpoint,
    region: source[v.region] || d.region,
    subscriptionPath,
    refreshIntervalMs: integer(source, v.refreshIntervalMs, d.refreshIntervalMs, 100, 600_000),
    invokeTimeoutMs: integer(source, v.invokeTimeoutMs, d.invokeTimeoutMs, dispatchLimits.invokeTimeoutMinMs, dispatchLimits.invokeTimeoutMaxMs),
    backoffMaxMs: integer(source, v.backoffMaxMs, d.backoffMaxMs, dispatchLimits.backoffBaseMs, 600_000),
  };
}
