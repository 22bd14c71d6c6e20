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
}

export const configVariables = {
  brokerId: 'SKYROCKET_BROKER_ID',
  brokerGroup: 'SKYROCKET_BROKER_GROUP',
  dataDir: 'SKYROCKET_DATA_DIR',
  host: 'SKYROCKET_HOST',
  port: 'SKYROCKET_PORT',
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
  return {
    brokerId,
    brokerGroup: text(source, v.brokerGroup, `group-${brokerId}`, /^[a-zA-Z0-9_-]{1,64}$/),
    dataDir: text(source, v.dataDir, undefined),
    host,
    port,
    advertisedUrl,
    tls,
    flushMode,
    segmentSizeBytes: integer(source, v.segmentSizeBytes, 1024 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024 * 1024),
    retentionMs: integer(source, v.retentionMs, 72 * 3600 * 1000, 60_000, 10 * 365 * 24 * 3600 * 1000),
    dynamodb: { endpoint: source[v.dynamodbEndpoint] || undefined, region: text(source, v.region, 'us-east-1') },
    tablePrefix: text(source, v.tablePrefix, 'skyrocket-', /^[a-zA-Z0-9_.-]{0,200}$/),
    internalSecret,
    heartbeatIntervalMs: integer(source, v.heartbeatIntervalMs, 3000, 100, 60_000),
    shutdownGraceMs: integer(source, v.shutdownGraceMs, 20_000, 0, 120_000),
  };
}
