import * as fs from 'node:fs';
import type { FlushMode } from './store/index.ts';

/**
 * Broker configuration, from the environment (how ECS passes it) with command-line flags taking
 * precedence. Every value is checked at start; a bad one stops the broker with a message naming
 * the variable and what it accepts.
 */
export interface BrokerConfig {
  /** u32, unique in the cluster; goes into message ids. */
  brokerId: number;
  /** The replica set this broker belongs to; queues are assigned to broker groups. */
  brokerGroup: string;
  dataDir: string;
  /** @default '127.0.0.1' */
  host: string;
  /** @default 8080 */
  port: number;
  /**
   * Port of the wire protocol (core/wire.ts: the same API as frames on a long-lived TCP or TLS
   * connection), or undefined for none. Off unless set (a broker binds only the ports it is
   * given); the CDK stack sets 10911, RocketMQ's broker port, and `skyrocket dev` 10911 and up.
   * @default undefined
   */
  wirePort?: number | undefined;
  /** The URL other brokers and clients use to reach this one. @default http(s)://host:port */
  advertisedUrl: string;
  tls: { cert: Buffer; key: Buffer } | undefined;
  /** @default 'sync' */
  flushMode: FlushMode;
  /** @default 1 GiB */
  segmentSizeBytes: number;
  /** @default 72 h */
  retentionMs: number;
  dynamodb: { endpoint: string | undefined; region: string };
  /** Prefix of every DynamoDB table of this deployment. @default 'skyrocket-' */
  tablePrefix: string;
  /** Shared by the brokers of a deployment: authenticates forwarded requests. */
  internalSecret: string;
  /** @default 3000 */
  heartbeatIntervalMs: number;
  /** How long to drain in-flight requests on SIGTERM (Fargate's stop timeout is 30 s). @default 20000 */
  shutdownGraceMs: number;
  /**
   * Delayed messages due within this horizon wait in the broker's timing wheel; later ones are
   * parked in the DynamoDB timer index until the delay sweep moves them back. The delay sweep must
   * use the same value. @default 3600000 (1 h)
   */
  timerHorizonMs: number;
  /**
   * Where far timers' bodies too large for a DynamoDB item go (`<tablePrefix>timers/<messageId>`).
   * @default undefined: such timers wait in the wheel instead of being parked
   */
  s3: { bucket: string; endpoint: string | undefined; credentials: { accessKeyId: string; secretAccessKey: string } | undefined } | undefined;
}

export const configVariables = {
  brokerId: 'SKYROCKET_BROKER_ID',
  brokerGroup: 'SKYROCKET_BROKER_GROUP',
  dataDir: 'SKYROCKET_DATA_DIR',
  host: 'SKYROCKET_HOST',
  port: 'SKYROCKET_PORT',
  wirePort: 'SKYROCKET_WIRE_PORT',
  advertisedUrl: 'SKYROCKET_ADVERTISED_URL',
  tlsCertFile: 'SKYROCKET_TLS_CERT_FILE',
  tlsKeyFile: 'SKYROCKET_TLS_KEY_FILE',
  flushMode: 'SKYROCKET_FLUSH_MODE',
  segmentSizeBytes: 'SKYROCKET_SEGMENT_SIZE_BYTES',
  retentionMs: 'SKYROCKET_RETENTION_MS',
  dynamodbEndpoint: 'SKYROCKET_DYNAMODB_ENDPOINT',
  region: 'AWS_REGION',
  tablePrefix: 'SKYROCKET_TABLE_PREFIX',
  internalSecret: 'SKYROCKET_INTERNAL_SECRET',
  heartbeatIntervalMs: 'SKYROCKET_HEARTBEAT_INTERVAL_MS',
  shutdownGraceMs: 'SKYROCKET_SHUTDOWN_GRACE_MS',
  timerHorizonMs: 'SKYROCKET_TIMER_HORIZON_MS',
  s3Bucket: 'SKYROCKET_S3_BUCKET',
  s3Endpoint: 'SKYROCKET_S3_ENDPOINT',
  s3AccessKeyId: 'SKYROCKET_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'SKYROCKET_S3_SECRET_ACCESS_KEY',
} as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Source = Readonly<Record<string, string | undefined>>;

function integer(source: Source, name: string, fallback: number | undefined, min: number, max: number): number {
  const raw = source[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new ConfigError(`${name} is required (an integer from ${min} to ${max})`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function text(source: Source, name: string, fallback: string | undefined, pattern?: RegExp): string {
  const raw = source[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new ConfigError(`${name} is required`);
    return fallback;
  }
  if (pattern !== undefined && !pattern.test(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} must match ${pattern}`);
  return raw;
}

/** Builds the configuration from variables (environment merged with flags). Throws ConfigError. */
export function loadConfig(source: Source): BrokerConfig {
  const v = configVariables;
  const brokerId = integer(source, v.brokerId, undefined, 0, 0xffffffff);
  const host = text(source, v.host, '127.0.0.1');
  const port = integer(source, v.port, 8080, 0, 65535);
  const wirePort = source[v.wirePort] === 'off' || !source[v.wirePort] ? undefined : integer(source, v.wirePort, undefined, 0, 65535);
  // As for every variable, an empty value counts as unset.
  const certFile = source[v.tlsCertFile] || undefined;
  const keyFile = source[v.tlsKeyFile] || undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(`${v.tlsCertFile} and ${v.tlsKeyFile} go together: give both or neither`);
  }
  let tls: BrokerConfig['tls'];
  if (certFile !== undefined && keyFile !== undefined) {
    try {
      tls = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
    } catch (error) {
      throw new ConfigError(`cannot read the TLS certificate or key: ${(error as Error).message}`);
    }
  }
  const flushMode = text(source, v.flushMode, 'sync', /^(sync|async)$/) as FlushMode;
  const advertisedUrl = text(source, v.advertisedUrl, `${tls ? 'https' : 'http'}://${host}:${port}`, /^https?:\/\/[^\s/]+$/);
  const internalSecret = text(source, v.internalSecret, undefined);
  if (internalSecret.length < 16) throw new ConfigError(`${v.internalSecret} must be at least 16 characters`);
  const retentionMs = integer(source, v.retentionMs, 72 * 3600 * 1000, 60_000, 10 * 365 * 24 * 3600 * 1000);
  // A timer waits in the wheel as a commit-log record, for up to the horizon and two index buckets
  // (half the horizon at most): the records must outlive that by a wide margin, so the horizon is
  // at most a third of the retention, and by default 1 h or that third.
  const timerHorizonMs = integer(source, v.timerHorizonMs, Math.min(3_600_000, Math.floor(retentionMs / 3)), 1_000, 7 * 24 * 3_600_000);
  if (timerHorizonMs * 3 > retentionMs) {
    throw new ConfigError(`${v.timerHorizonMs}=${timerHorizonMs} must be at most a third of ${v.retentionMs}=${retentionMs}`);
  }
  const s3Bucket = source[v.s3Bucket] || undefined;
  const s3AccessKeyId = source[v.s3AccessKeyId] || undefined;
  const s3SecretAccessKey = source[v.s3SecretAccessKey] || undefined;
  if ((s3AccessKeyId === undefined) !== (s3SecretAccessKey === undefined)) {
    throw new ConfigError(`${v.s3AccessKeyId} and ${v.s3SecretAccessKey} go together: give both or neither`);
  }
  if (s3Bucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3Bucket)) {
    throw new ConfigError(`${v.s3Bucket}=${JSON.stringify(s3Bucket)} is not an S3 bucket name`);
  }
  const s3: BrokerConfig['s3'] =
    s3Bucket === undefined
      ? undefined
      : {
          bucket: s3Bucket,
          endpoint: source[v.s3Endpoint] || undefined,
          credentials: s3AccessKeyId === undefined ? undefined : { accessKeyId: s3AccessKeyId, secretAccessKey: s3SecretAccessKey as string },
        };
  return {
    brokerId,
    brokerGroup: text(source, v.brokerGroup, `group-${brokerId}`, /^[a-zA-Z0-9_-]{1,64}$/),
    dataDir: text(source, v.dataDir, undefined),
    host,
    port,
    wirePort,
    advertisedUrl,
    tls,
    flushMode,
    segmentSizeBytes: integer(source, v.segmentSizeBytes, 1024 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024 * 1024),
    retentionMs,
    dynamodb: { endpoint: source[v.dynamodbEndpoint] || undefined, region: text(source, v.region, 'us-east-1') },
    tablePrefix: text(source, v.tablePrefix, 'skyrocket-', /^[a-zA-Z0-9_.-]{0,200}$/),
    internalSecret,
    heartbeatIntervalMs: integer(source, v.heartbeatIntervalMs, 3000, 100, 60_000),
    shutdownGraceMs: integer(source, v.shutdownGraceMs, 20_000, 0, 120_000),
    timerHorizonMs,
    s3,
  };
}
