import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config.ts';
import { defaultDispatchConfig, loadDispatchConfig } from './dispatch-config.ts';

describe('loadDispatchConfig', () => {
  it('defaults, reads and checks its variables', () => {
    expect(loadDispatchConfig({})).toEqual(defaultDispatchConfig);
    expect(
      loadDispatchConfig({
        SKYROCKET_LAMBDA_ENDPOINT: 'http://127.0.0.1:9001',
        AWS_REGION: 'eu-west-1',
        SKYROCKET_SUBSCRIPTION_PATH: '/skyrocket/prod/lambda-consumers',
        SKYROCKET_DISPATCH_REFRESH_MS: '500',
        SKYROCKET_LAMBDA_TIMEOUT_MS: '60000',
        SKYROCKET_DISPATCH_BACKOFF_MAX_MS: '5000',
      }),
    ).toEqual({
      lambdaEndpoint: 'http://127.0.0.1:9001',
      region: 'eu-west-1',
      subscriptionPath: '/skyrocket/prod/lambda-consumers',
      refreshIntervalMs: 500,
      invokeTimeoutMs: 60_000,
      backoffMaxMs: 5_000,
    });
    expect(() => loadDispatchConfig({ SKYROCKET_LAMBDA_ENDPOINT: 'localhost:9001' })).toThrow(ConfigError);
    expect(() => loadDispatchConfig({ SKYROCKET_LAMBDA_TIMEOUT_MS: '900001' })).toThrow(/SKYROCKET_LAMBDA_TIMEOUT_MS/);
    expect(() => loadDispatchConfig({ SKYROCKET_SUBSCRIPTION_PATH: 'no-slash' })).toThrow(ConfigError);
  });
});
