/**
 * The AWS stand-ins the tests run against, started once per test run by `global-setup.ts`.
 *
 * LocalStack (in a container, through testcontainers) when a container runtime answers, since it
 * is closer to AWS; otherwise the embedded servers of local mode, dynalite and s3rver, in a
 * temporary directory. `SKYROCKET_TEST_BACKENDS=embedded|localstack` forces the choice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { ensureBucket, s3ClientConfig, startEmbeddedServers, type AwsEndpoint } from '../../namesrv/embedded.ts';

export type BackendsKind = 'localstack' | 'embedded';

/** What tests receive: plain data, so vitest can pass it from the main process to workers. */
export interface BackendEndpoints {
  kind: BackendsKind;
  dynamodb: AwsEndpoint;
  /** `bucket` exists when the tests start. */
  s3: AwsEndpoint & { bucket: string };
}

export interface Backends extends BackendEndpoints {
  stop(): Promise<void>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    backends: BackendEndpoints;
  }
}

/**
 * The image tag is pinned so that a run today and a run next year test against the same
 * emulator; `SKYROCKET_LOCALSTACK_IMAGE` overrides it.
 */
const localstackImage = 'localstack/localstack:4.4.0';
const testBucket = 'skyrocket-test';

export async function startBackends(): Promise<Backends> {
  const kind = await chooseKind(process.env['SKYROCKET_TEST_BACKENDS']);
  const backends = kind === 'localstack' ? await startLocalstack() : await startEmbedded();
  try {
    const s3 = new S3Client(s3ClientConfig(backends.s3));
    await ensureBucket(s3, backends.s3.bucket);
    s3.destroy();
  } catch (error) {
    await backends.stop();
    throw error;
  }
  return backends;
}

async function chooseKind(forced: string | undefined): Promise<BackendsKind> {
  if (forced === 'embedded' || forced === 'localstack') return forced;
  if (forced !== undefined && forced !== '') throw new Error(`SKYROCKET_TEST_BACKENDS must be embedded or localstack, not ${forced}`);
  const { getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
    return 'localstack';
  } catch {
    return 'embedded';
  }
}

async function startEmbedded(): Promise<Backends> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'skyrocket-test-'));
  const servers = await startEmbeddedServers({ dataDir });
  return {
    kind: 'embedded',
    dynamodb: servers.dynamodb,
    s3: { ...servers.s3, bucket: testBucket },
    async stop() {
      await servers.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function startLocalstack(): Promise<Backends> {
  const { LocalstackContainer } = await import('@testcontainers/localstack');
  const image = process.env['SKYROCKET_LOCALSTACK_IMAGE'] ?? localstackImage;
  const container = await new LocalstackContainer(image).withEnvironment({ SERVICES: 'dynamodb,s3' }).start();
  // LocalStack accepts any credentials; `test` is its documented convention.
  const endpoint: AwsEndpoint = {
    endpoint: container.getConnectionUri(),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  return {
    kind: 'localstack',
    dynamodb: endpoint,
    s3: { ...endpoint, bucket: testBucket },
    async stop() {
      await container.stop();
    },
  };
}
