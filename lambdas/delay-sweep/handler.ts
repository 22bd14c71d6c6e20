/**
 * The `delay-sweep` Lambda function: an EventBridge scheduled event, every minute, runs one sweep
 * (see `sweep.ts`). `skyrocket dev` runs the same code on an in-process timer.
 *
 * Configuration, from the environment (the brokers' variables of the same names):
 *
 *   SKYROCKET_TABLE_PREFIX         the deployment's DynamoDB table prefix (default `skyrocket-`)
 *   SKYROCKET_INTERNAL_SECRET_ARN  the brokers' internal secret in Secrets Manager (in AWS), or
 *   SKYROCKET_INTERNAL_SECRET      the secret itself (local runs)
 *   SKYROCKET_TIMER_HORIZON_MS     the brokers' timer horizon (default 1 h; must match theirs)
 *   SKYROCKET_S3_BUCKET            where large parked bodies are (optional)
 *   SKYROCKET_DELAY_SWEEP_BUDGET_MS  stop starting new buckets after this long (default 50 s)
 *   SKYROCKET_DYNAMODB_ENDPOINT, SKYROCKET_S3_ENDPOINT, SKYROCKET_S3_ACCESS_KEY_ID,
 *   SKYROCKET_S3_SECRET_ACCESS_KEY  local stand-ins only
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { withInternalSecret } from '../shared/internal-secret.ts';
import { delaySweepFromEnv, type DelaySweepRuntime } from './from-env.ts';
import type { SweepLogger, SweepReport } from './sweep.ts';

const logger = new Logger({ serviceName: 'skyrocket-delay-sweep' });
const sweepLog: SweepLogger = {
  info: (message, extra) => logger.info(message, { ...extra }),
  warn: (message, extra) => logger.warn(message, { ...extra }),
  error: (message, extra) => logger.error(message, { ...extra }),
};

// Built on the first invocation and kept by warm ones, as Lambda functions keep their clients.
let runtime: DelaySweepRuntime | undefined;

export const handler = async (_event: unknown): Promise<SweepReport> => {
  runtime ??= delaySweepFromEnv(await withInternalSecret(process.env), sweepLog);
  const report = await runtime.sweep.run();
  logger.info('delay sweep finished', { ...report });
  return report;
};
