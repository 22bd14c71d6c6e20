/**
 * A real Skyrocket cluster for tests: broker processes (the production entry point, started with
 * `node --import tsx`) on loopback ports, joined through the name server on the DynamoDB stand-in
 * that global setup started. Each cluster uses its own table prefix and data directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { NameServer, ensureTables } from '../../namesrv/index.ts';
import { backends, dynamoClient, uniquePrefix } from '../support/aws.ts';

const root = path.resolve(import.meta.dirname, '../..');

export interface BrokerProcess {
  index: number;
  brokerId: number;
  brokerGroup: string;
  dataDir: string;
  url: string;
  /** The wire-protocol endpoint, when the cluster's env turns it on (SKYROCKET_WIRE_PORT). */
  wireUrl: string | undefined;
  child: ChildProcess;
  stderr: string[];
}

export interface ClusterOptions {
  brokers?: number;
  /** @default 'sync' */
  flushMode?: 'sync' | 'async';
  /** @default 64 MiB: small segments keep test disks small */
  segmentSizeBytes?: number;
  extraEnv?: Record<string, string>;
}

export class TestCluster {
  readonly prefix = uniquePrefix('c');
  readonly adminKey = `sk_test_${randomBytes(16).toString('hex')}`;
  readonly secret = randomBytes(24).toString('hex');
  readonly brokers: BrokerProcess[] = [];
  readonly nameServer: NameServer;
  readonly #dynamo = dynamoClient();
  readonly #root = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cluster-'));
  readonly #options: Required<Omit<ClusterOptions, 'extraEnv'>> & { extraEnv: Record<string, string> };

  constructor(options: ClusterOptions = {}) {
    this.#options = {
      brokers: options.brokers ?? 2,
      flushMode: options.flushMode ?? 'sync',
      segmentSizeBytes: options.segmentSizeBytes ?? 64 * 1024 * 1024,
      extraEnv: options.extraEnv ?? {},
    };
    this.nameServer = new NameServer({ client: this.#dynamo, prefix: this.prefix });
  }

  async start(): Promise<this> {
    await ensureTables(this.#dynamo, this.prefix);
    await this.nameServer.ensurePrincipal({ name: 'admin', permissions: { admin: true }, apiKey: this.adminKey });
    await Promise.all(Array.from({ length: this.#options.brokers }, (_, i) => this.startBroker(i)));
    return this;
  }

  /**
   * Starts a broker process with this cluster's settings and any slot (a second broker in an
   * existing group is a standby until it gets the group's lease). Does not wait for it.
   */
  spawnBroker(slot: { brokerId: number; brokerGroup: string; dataDir: string; port: number }): ChildProcess {
    const { dynamodb } = backends();
    return spawn(process.execPath, ['--import', 'tsx', path.join(root, 'broker-fargate/src/main.ts')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...this.#options.extraEnv,
        SKYROCKET_BROKER_ID: String(slot.brokerId),
        SKYROCKET_BROKER_GROUP: slot.brokerGroup,
        SKYROCKET_DATA_DIR: slot.dataDir,
        SKYROCKET_PORT: String(slot.port),
        SKYROCKET_FLUSH_MODE: this.#options.flushMode,
        SKYROCKET_SEGMENT_SIZE_BYTES: String(this.#options.segmentSizeBytes),
        SKYROCKET_DYNAMODB_ENDPOINT: dynamodb.endpoint,
        SKYROCKET_TABLE_PREFIX: this.prefix,
        SKYROCKET_INTERNAL_SECRET: this.secret,
        SKYROCKET_HEARTBEAT_INTERVAL_MS: '500',
        SKYROCKET_SHUTDOWN_GRACE_MS: '2000',
        AWS_REGION: dynamodb.region,
        AWS_ACCESS_KEY_ID: dynamodb.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: dynamodb.credentials.secretAccessKey,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
  }

  /** Starts (or restarts) broker `index` on its own data directory; resolves when it serves. */
  async startBroker(index: number): Promise<BrokerProcess> {
    const brokerId = index + 1;
    const brokerGroup = `bg-${index + 1}`;
    const dataDir = path.join(this.#root, `broker-${brokerId}`);
    const child = this.spawnBroker({ brokerId, brokerGroup, dataDir, port: 0 });
    const stderr: string[] = [];
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    let wireUrl: string | undefined;
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`broker ${brokerId} did not start: ${stderr.join('')}`)), 30_000);
      const lines = readline.createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { msg?: string; url?: string; wireUrl?: string };
          if (msg.msg === 'ready' && msg.url !== undefined) {
            clearTimeout(timer);
            wireUrl = msg.wireUrl;
            resolve(msg.url);
          }
        } catch {
          // pino lines and anything else are not the ready line
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`broker ${brokerId} exited with ${code}: ${stderr.join('')}`));
      });
    });
    const broker: BrokerProcess = { index, brokerId, brokerGroup, dataDir, url, wireUrl, child, stderr };
    this.brokers[index] = broker;
    return broker;
  }

  /** Sends a signal to broker `index` (only a process this cluster started) and waits for it to exit. */
  async kill(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const broker = this.brokers[index];
    if (broker === undefined || broker.child.exitCode !== null) return broker?.child.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => broker.child.once('exit', (code) => resolve(code)));
    broker.child.kill(signal);
    return exited;
  }

  url(index = 0): string {
    return (this.brokers[index] as BrokerProcess).url;
  }

  async stop(): Promise<void> {
    await Promise.all(this.brokers.map((_, i) => this.kill(i, 'SIGTERM')));
    this.#dynamo.destroy();
    fs.rmSync(this.#root, { recursive: true, force: true });
  }
}

/** A small JSON client for the REST API. */
export async function api(
  base: string,
  key: string | undefined,
  method: string,
  pathAndQuery: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
  let payload: string | undefined;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(`${base}${pathAndQuery}`, { method, headers, body: payload });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
}
