/**
 * The delay sweep built from variables: the Lambda function's environment, or what
 * `skyrocket dev` passes. The variables are listed in `handler.ts`.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { NameServer } from '../../namesrv/registry.ts';
import { TimerIndex } from '../../namesrv/timers.ts';
import { DelaySweep, leadersFrom, sweepDefaults, type SweepLogger } from './sweep.ts';

export interface DelaySweepRuntime {
  sweep: DelaySweep;
  /** Releases the AWS clients' connections. */
  close(): void;
}

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name}=${JSON.stringify(raw)} must be a positive integer`);
  return value;
}

/** Builds a sweep from variables (the Lambda's environment, or what `skyrocket dev` passes). */
export function delaySweepFromEnv(env: Env, log?: SweepLogger): DelaySweepRuntime {
  const internalSecret = env['SKYROCKET_INTERNAL_SECRET'];
  if (internalSecret === undefined || internalSecret.length < 16) throw new Error('SKYROCKET_INTERNAL_SECRET is required (at least 16 characters)');
  const prefix = env['SKYROCKET_TABLE_PREFIX'] || 'skyrocket-';
  const region = env['AWS_REGION'] || 'us-east-1';
  const dynamoEndpoint = env['SKYROCKET_DYNAMODB_ENDPOINT'] || undefined;
  // Credentials from the variables when they name them (the Lambda runtime does; `skyrocket dev`
  // passes the stand-in's), else the SDK's default chain.
  const keyId = env['AWS_ACCESS_KEY_ID'] || undefined;
  const secretKey = env['AWS_SECRET_ACCESS_KEY'] || undefined;
  const sessionToken = env['AWS_SESSION_TOKEN'] || undefined;
  const awsCredentials =
    keyId === undefined || secretKey === undefined ? {} : { credentials: { accessKeyId: keyId, secretAccessKey: secretKey, ...(sessionToken === undefined ? {} : { sessionToken }) } };
  const dynamo = new DynamoDBClient({ region, ...awsCredentials, ...(dynamoEndpoint === undefined ? {} : { endpoint: dynamoEndpoint }) });
  const bucket = env['SKYROCKET_S3_BUCKET'] || undefined;
  const s3Endpoint = env['SKYROCKET_S3_ENDPOINT'] || undefined;
  const accessKeyId = env['SKYROCKET_S3_ACCESS_KEY_ID'] || undefined;
  const secretAccessKey = env['SKYROCKET_S3_SECRET_ACCESS_KEY'] || undefined;
  const s3 =
    bucket === undefined
      ? undefined
      : new S3Client({
          region,
          ...(s3Endpoint === undefined ? {} : { endpoint: s3Endpoint, forcePathStyle: true }),
          ...(accessKeyId === undefined || secretAccessKey === undefined ? awsCredentials : { credentials: { accessKeyId, secretAccessKey } }),
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        });
  const sweep = new DelaySweep({
    index: new TimerIndex({ client: dynamo, prefix, s3: s3 === undefined || bucket === undefined ? undefined : { client: s3, bucket } }),
    leaders: leadersFrom(new NameServer({ client: dynamo, prefix })),
    internalSecret,
    horizonMs: integer(env, 'SKYROCKET_TIMER_HORIZON_MS', 3_600_000),
    budgetMs: integer(env, 'SKYROCKET_DELAY_SWEEP_BUDGET_MS', sweepDefaults.budgetMs),
    ...(log === undefined ? {} : { log }),
  });
  return {
    sweep,
    close() {
      dynamo.destroy();
      s3?.destroy();
    },
  };
}
