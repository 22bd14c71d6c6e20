/**
 * The embedded AWS stand-ins of local mode: dynalite for DynamoDB and s3rver for S3, both kept on
 * disk under one data directory, so `skyrocket dev` restarts with its data and tests run against
 * real servers over real sockets.
 *
 *   <dataDir>/dynamodb/   dynalite's LevelDB store
 *   <dataDir>/s3/         s3rver's buckets, one directory each
 *
 * s3rver encrypts listing continuation tokens with DES, which OpenSSL 3 only has in its legacy
 * provider, and a process can only load that provider at start (`--openssl-legacy-provider`).
 * When this process lacks it, s3rver runs in a child process that has it; otherwise in-process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { getCiphers } from 'node:crypto';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand, type S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** How to reach one AWS-compatible service; plain data, so it can cross process boundaries. */
export interface AwsEndpoint {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface EmbeddedServersOptions {
  /** Directory that holds both servers' data; created if missing. */
  dataDir: string;
  /**
   * Port of the DynamoDB-compatible server.
   * @default 0 (a free port)
   */
  dynamoPort?: number;
  /**
   * Port of the S3-compatible server.
   * @default 0 (a free port)
   */
  s3Port?: number;
  /**
   * Address both servers listen on.
   * @default '127.0.0.1'
   */
  host?: string;
}

export interface EmbeddedServers {
  dynamodb: AwsEndpoint;
  s3: AwsEndpoint;
  /** Whether s3rver runs in a child process (see the module comment). */
  s3InChildProcess: boolean;
  /** Stops both servers, dropping open keep-alive connections; the data stays on disk. */
  stop(): Promise<void>;
}

const region = 'us-east-1';
// dynalite accepts any credentials; s3rver checks signatures against its one built-in key pair.
const dynaliteCredentials = { accessKeyId: 'skyrocket', secretAccessKey: 'skyrocket' };
const s3rverCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export async function startEmbeddedServers(options: EmbeddedServersOptions): Promise<EmbeddedServers> {
  const host = options.host ?? '127.0.0.1';
  const dynamoDir = path.join(options.dataDir, 'dynamodb');
  const s3Dir = path.join(options.dataDir, 's3');
  await Promise.all([mkdir(dynamoDir, { recursive: true }), mkdir(s3Dir, { recursive: true })]);

  const inChild = !hasLegacyCrypto();
  const [dynamo, s3] = await Promise.allSettled([
    startDynalite(dynamoDir, host, options.dynamoPort ?? 0),
    inChild ? startS3rverChild(s3Dir, host, options.s3Port ?? 0) : startS3rver(s3Dir, host, options.s3Port ?? 0),
  ]);
  if (dynamo.status === 'rejected' || s3.status === 'rejected') {
    await Promise.allSettled([dynamo, s3].map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    throw dynamo.status === 'rejected' ? dynamo.reason : (s3 as PromiseRejectedResult).reason;
  }
  return {
    dynamodb: { endpoint: `http://${host}:${dynamo.value.port}`, region, credentials: dynaliteCredentials },
    s3: { endpoint: `http://${host}:${s3.value.port}`, region, credentials: s3rverCredentials },
    s3InChildProcess: inChild,
    async stop() {
      await Promise.all([dynamo.value.stop(), s3.value.stop()]);
    },
  };
}

/** Client settings for a DynamoDB endpoint. */
export function dynamoClientConfig(endpoint: AwsEndpoint): DynamoDBClientConfig {
  return { endpoint: endpoint.endpoint, region: endpoint.region, credentials: endpoint.credentials };
}

/**
 * Client settings for an S3 endpoint: path-style addressing (bucket names do not resolve as
 * hosts on loopback), and checksums only where S3 requires them, because s3rver does not know
 * the CRC32 trailers the SDK sends by default.
 */
export function s3ClientConfig(endpoint: AwsEndpoint): S3ClientConfig {
  return {
    endpoint: endpoint.endpoint,
    region: endpoint.region,
    credentials: endpoint.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/** Creates a bucket unless this account already has it. */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    if (name === 'BucketAlreadyOwnedByYou') return;
    // s3rver answers BucketAlreadyExists for our own bucket too, which S3 keeps for other
    // accounts' buckets: the bucket is ours if we may read it.
    if (name !== 'BucketAlreadyExists') throw error;
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  }
}

/** Whether OpenSSL's legacy provider, and with it DES, is loaded in this process. */
export function hasLegacyCrypto(): boolean {
  return getCiphers().includes('des');
}

interface Running {
  port: number;
  stop(): Promise<void>;
}

// dynalite and s3rver are loaded on first use, so that importing the name server (as every broker
// does) does not load two servers only local mode runs.

async function startDynalite(dir: string, host: string, port: number): Promise<Running> {
  const { default: dynalite } = await import('dynalite');
  // Tables become ACTIVE at once: nothing here gains from dynalite's simulated 500 ms delays.
  const server = dynalite({ path: dir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await listen(server, port, host);
  return { port: (server.address() as AddressInfo).port, stop: () => closeServer(server) };
}

async function startS3rver(dir: string, host: string, port: number): Promise<Running> {
  const { default: S3rver } = await import('s3rver');
  const server = createServer(new S3rver({ silent: true, directory: dir }).callback());
  await listen(server, port, host);
  return { port: (server.address() as AddressInfo).port, stop: () => closeServer(server) };
}

/** What `s3rver-process.ts` reports over IPC once it listens, or why it could not. */
export type S3rverProcessMessage = { port: number } | { error: string };

async function startS3rverChild(dir: string, host: string, port: number): Promise<Running> {
  const script = fileURLToPath(new URL('./s3rver-process.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child = fork(script, [dir, host, String(port)], {
    execArgv: ['--openssl-legacy-provider', '--import', tsx],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const first = await Promise.race([
    once(child, 'message').then(([message]) => message as S3rverProcessMessage),
    exited.then(([code]) => ({ error: `it exited with code ${code}` })),
  ]);
  if ('error' in first) {
    child.kill();
    throw new Error(`s3rver could not start on ${host}:${port}: ${first.error}`);
  }
  return { port: first.port, stop: () => stopChild(child, exited) };
}

/** The child exits when its IPC channel closes, which also happens if this process dies. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.disconnect();
  await exited;
}

/** Listens, turning a failure such as EADDRINUSE into a rejection rather than an `error` event. */
async function listen(server: Server, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** `close` alone waits for clients' keep-alive connections to end, which may be never. */
async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  server.closeAllConnections();
  await closed;
}
