/**
 * `skyrocket dev`: the whole service on one machine, with the production code paths.
 *
 *   <dataDir>/aws/dynamodb/      dynalite (the DynamoDB stand-in): name-server tables
 *   <dataDir>/aws/s3/            s3rver (the S3 stand-in): the tiering bucket
 *   <dataDir>/broker-1/          broker 1 (group bg-1): commit log, queues, consumer offsets
 *   <dataDir>/broker-2/          broker 2 (group bg-2)
 *   <dataDir>/logs/broker-N.log  each broker's JSON log
 *   <dataDir>/internal-secret    shared by the brokers to authenticate forwarded requests (0600)
 *   <dataDir>/credentials.json   endpoint and admin key, for the CLI (0600)
 *
 * Start: the two stand-ins in this process, then the tables, the bucket and the admin key, then
 * the brokers as child processes (the same entry point as on Fargate), each on a fixed port. The
 * last line printed at start is `ready <endpoint>`.
 *
 * The txn-check sweep (lambdas/txn-check) runs in this process every `txnCheckIntervalMs`, as the
 * scheduled Lambda function does in the cloud every minute.
 *
 * The delay sweep (lambdas/delay-sweep) runs in this process every `delaySweepIntervalMs` (60 s, as
 * in the cloud; SKYROCKET_DELAY_SWEEP_INTERVAL_MS shortens it). SKYROCKET_TIMER_HORIZON_MS sets the
 * brokers' and the sweep's timer horizon (default 1 h), to try far timers without waiting an hour.
 *
 * Lambda consumers: a local Lambda Invoke endpoint in this process serves the handlers of a folder
 * (`--functions`, default lambdas/examples), and the brokers' dispatchers call it through the
 * AWS SDK (SKYROCKET_LAMBDA_ENDPOINT). `--example` subscribes the sample consumer.
 *
 * Stop: SIGINT or SIGTERM stops the brokers (SIGTERM to each by PID, then wait), then the
 * stand-ins, and exits 0. A broker that exits on its own is reported, the rest is stopped, and
 * the exit code is 1. Everything is on disk, so a restart finds its topics, groups, messages and
 * consumer offsets, and keeps the same key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { isSkyrocketError } from '../../core/errors.ts';
import { TransactionChecker } from '../../lambdas/txn-check/txn-check.ts';
import { delaySweepFromEnv, type DelaySweepRuntime } from '../../lambdas/delay-sweep/from-env.ts';
import {
  NameServer,
  dynamoClientConfig,
  ensureBucket,
  ensureTables,
  generateApiKey,
  s3ClientConfig,
  startEmbeddedServers,
  TransactionTables,
  type EmbeddedServers,
} from '../../namesrv/index.ts';
import { readCredentials, writeCredentials, type DevBroker } from './credentials.ts';
import { defaultFunctionsDir, example, setupExample, startDevLambda } from '../../lambdas/local-invoke/dev-lambda.ts';
import type { LocalLambdaServer } from '../../lambdas/local-invoke/index.ts';
import { brokerNodeFlags } from '../../broker-fargate/src/node-flags.ts';

export interface DevOptions {
  /** Where everything lives. @default '.skyrocket' */
  dataDir: string;
  /** Port of broker 1; broker 2 takes the next. 0: both on free ports. @default 9876 */
  port: number;
  /** Wire-protocol port of broker 1; broker 2 takes the next. 0: free ports. @default 10911 (RocketMQ's broker port) */
  wirePort?: number;
  /** @default 0 (a free port) */
  dynamodbPort: number;
  /** @default 0 (a free port) */
  s3Port: number;
  /** Folder of Lambda consumer handlers the local Invoke endpoint serves. @default lambdas/examples */
  functions?: string | undefined;
  /** Create the example topic, group and Lambda subscription (lambdas/examples/order-logger.ts). @default false */
  example?: boolean | undefined;
}

/** Names and limits of the local cluster, in one place. */
const dev = {
  host: '127.0.0.1',
  brokerCount: 2,
  tablePrefix: 'skyrocket-dev-',
  bucket: 'skyrocket-dev',
  adminPrincipal: 'admin',
  /** Small segments: each is preallocated on disk, 1 GiB (the production default) is a lot for a laptop. */
  segmentSizeBytes: 64 * 1024 * 1024,
  /** A broker's own drain time on SIGTERM, before it closes connections. */
  brokerShutdownGraceMs: 5_000,
  /** How long dev waits for a broker to exit after SIGTERM before it sends SIGKILL. */
  brokerStopTimeoutMs: 15_000,
  brokerStartTimeoutMs: 60_000,
  /** Lines of a broker's stderr kept to explain why it died. */
  stderrTailLines: 20,
  /** How often the txn-check sweep runs; more often than the cloud's minute, for a quick check-back. */
  txnCheckIntervalMs: 5_000,
  /** How often the delay sweep runs, unless SKYROCKET_DELAY_SWEEP_INTERVAL_MS says otherwise. */
  delaySweepIntervalMs: 60_000,
} as const;

const root = path.resolve(import.meta.dirname, '../..');
const brokerMain = path.join(root, 'broker-fargate/src/main.ts');
const brokerGuard = pathToFileURL(path.join(import.meta.dirname, 'broker-guard.ts')).href;
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** The txn-check sweep on its timer, and the sweep running now, which a stop waits for. */
interface TxnCheckTimer {
  timer: NodeJS.Timeout;
  running: Promise<unknown> | undefined;
  dynamo: DynamoDBClient;
}

/** The delay sweep on its timer, and the run going on now, which a stop waits for. */
interface DelaySweepTimer {
  timer: NodeJS.Timeout;
  running: Promise<unknown> | undefined;
  runtime: DelaySweepRuntime;
}

interface RunningBroker extends DevBroker {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail: string[];
  log: fs.WriteStream;
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function complain(line: string): void {
  process.stderr.write(`${line}\n`);
}

class DevFailure extends Error {
  override name = 'DevFailure';
}

export async function runDev(options: DevOptions): Promise<never> {
  // The SDK's notice that it will need Node 22 from 2027 says nothing to someone running dev.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const dataDir = path.resolve(options.dataDir);
  const cluster = new DevCluster(dataDir, options);

  // Signals are handled from the first moment, so Ctrl-C during start also cleans up.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      say(`\n${signal}: stopping the dev cluster`);
      cluster.requestStop(0);
    } else {
      complain(`${signal} again: killing the brokers`);
      cluster.kill();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Started by a supervisor or a test over IPC: stop when it goes away.
  if (process.channel !== undefined) {
    process.once('disconnect', () => cluster.requestStop(1, 'the parent process went away'));
    process.channel.unref();
  }

  let code: number;
  try {
    await cluster.start();
    code = await cluster.stopRequested;
  } catch (error) {
    if (!cluster.stopping) complain(`skyrocket dev: ${describe(error)}`);
    code = cluster.stopping ? await cluster.stopRequested : 1;
  }
  const stopCode = await cluster.stop();
  if (cluster.started) say(code === 0 && stopCode === 0 ? 'stopped' : 'stopped with errors');
  process.exit(code === 0 ? stopCode : code);
}

function describe(error: unknown): string {
  if (isSkyrocketError(error)) return `${error.code}: ${error.message}`;
  if (error instanceof DevFailure) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

class DevCluster {
  readonly #dataDir: string;
  readonly #options: DevOptions;
  readonly #brokers: RunningBroker[] = [];
  #servers: EmbeddedServers | undefined;
  /** The local Lambda Invoke endpoint the brokers' dispatchers call. */
  #lambda: LocalLambdaServer | undefined;
  #txnCheck: TxnCheckTimer | undefined;
  #delaySweep: DelaySweepTimer | undefined;
  #stopping = false;
  #resolveStop!: (code: number) => void;
  /** Resolves with the exit code once something asks the cluster to stop. */
  readonly stopRequested = new Promise<number>((resolve) => (this.#resolveStop = resolve));

  constructor(dataDir: string, options: DevOptions) {
    this.#dataDir = dataDir;
    this.#options = options;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Whether anything was started that `stop` had to stop. */
  get started(): boolean {
    return this.#servers !== undefined;
  }

  requestStop(code: number, reason?: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (reason !== undefined) complain(`skyrocket dev: ${reason}; stopping`);
    this.#resolveStop(code);
  }

  /** Second Ctrl-C: no more waiting for the brokers to drain. */
  kill(): void {
    for (const b of this.#brokers) if (isRunning(b.child)) b.child.kill('SIGKILL');
  }

  async start(): Promise<void> {
    const { port } = this.#options;
    const brokerPorts = Array.from({ length: dev.brokerCount }, (_, i) => (port === 0 ? 0 : port + i));
    const wirePort = this.#options.wirePort ?? 10911;
    const wirePorts = brokerPorts.map((_, i) => (wirePort === 0 ? 0 : wirePort + i));
    if (wirePorts.some((p) => p > 65535)) throw new DevFailure(`--wire-port ${wirePort} leaves no room for ${dev.brokerCount} brokers`);
    if (brokerPorts.some((p) => p > 65535)) throw new DevFailure(`--port ${port} leaves no room for ${dev.brokerCount} brokers`);
    await Promise.all([...brokerPorts, ...wirePorts].filter((p) => p !== 0).map((p) => checkPortFree(p)));

    fs.mkdirSync(this.#dataDir, { recursive: true });
    say(`Skyrocket dev cluster in ${this.#dataDir}`);
    say('  starting the DynamoDB and S3 stand-ins (dynalite, s3rver)');
    try {
      this.#servers = await startEmbeddedServers({
        dataDir: path.join(this.#dataDir, 'aws'),
        dynamoPort: this.#options.dynamodbPort,
        s3Port: this.#options.s3Port,
        host: dev.host,
      });
    } catch (error) {
      throw new DevFailure(
        `could not start the DynamoDB and S3 stand-ins (is another \`skyrocket dev\` using ${this.#dataDir}?): ${(error as Error).message}`,
      );
    }
    const servers = this.#servers;
    this.#throwIfStopping();

    const dynamo = new DynamoDBClient(dynamoClientConfig(servers.dynamodb));
    const s3 = new S3Client(s3ClientConfig(servers.s3));
    let apiKey: string;
    try {
      await ensureTables(dynamo, dev.tablePrefix);
      await ensureBucket(s3, dev.bucket);
      apiKey = await this.#ensureAdminKey(new NameServer({ client: dynamo, prefix: dev.tablePrefix }));
    } finally {
      dynamo.destroy();
      s3.destroy();
    }
    this.#throwIfStopping();

    const functionsDir = path.resolve(this.#options.functions ?? defaultFunctionsDir);
    const lambda = await startDevLambda({
      functionsDir,
      host: dev.host,
      onError: (name, error) => complain(`lambda ${name}: ${error instanceof Error ? error.message : String(error)}`),
    });
    this.#lambda = lambda.server;

    say(`  starting ${dev.brokerCount} brokers`);
    const secret = this.#internalSecret();
    const started = await Promise.allSettled(brokerPorts.map((p, i) => this.#startBroker(i + 1, p, wirePorts[i] as number, secret, servers)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    this.#throwIfStopping();
    this.#startTxnCheck(secret, servers);
    this.#startDelaySweep(secret, servers);

    const endpoint = (this.#brokers[0] as RunningBroker).url;
    if (this.#options.example === true) await setupExample(endpoint, apiKey);
    const brokers = this.#brokers.map(({ brokerId, brokerGroup, url, wireUrl, pid }) => ({ brokerId, brokerGroup, url, wireUrl, pid }));
    const credentials = writeCredentials(this.#dataDir, {
      endpoint,
      apiKey,
      brokers,
      dynamodb: servers.dynamodb.endpoint,
      s3: servers.s3.endpoint,
      bucket: dev.bucket,
    });

    say();
    say(`  dynamodb     ${servers.dynamodb.endpoint}  (tables ${dev.tablePrefix}*)`);
    say(`  s3           ${servers.s3.endpoint}  (bucket ${dev.bucket})`);
    for (const b of this.#brokers) {
      say(`  broker ${b.brokerId}     ${b.url}  ${b.wireUrl ?? ''}  (${b.brokerGroup}, pid ${b.pid}, log ${displayPath(b.log.path.toString())})`);
    }
    const names = lambda.functions.list();
    say(`  lambda       ${lambda.server.url}  (functions in ${displayPath(functionsDir)}: ${names.length === 0 ? 'none' : names.join(', ')})`);
    if (this.#options.example === true) {
      say(`  example      topic ${example.topic} -> group ${example.group} -> function ${example.functionName}`);
    }
    say(`  endpoint     ${endpoint}`);
    say(`  api key      ${apiKey}`);
    say(`  credentials  ${credentials}`);
    say();
    say('The CLI finds the cluster by itself: try `skyrocket topic create demo` and `skyrocket send demo hello`.');
    say('Ctrl-C stops everything; the data stays for the next start.');
    say(`ready ${endpoint}`);
  }

  #throwIfStopping(): void {
    if (this.#stopping) throw new DevFailure('stopped during start');
  }

  /** The delay sweep on a timer: the Lambda handler's code, configured as the brokers are. */
  #startDelaySweep(secret: string, servers: EmbeddedServers): void {
    const runtime = delaySweepFromEnv(
      {
        SKYROCKET_INTERNAL_SECRET: secret,
        SKYROCKET_TABLE_PREFIX: dev.tablePrefix,
        SKYROCKET_TIMER_HORIZON_MS: timerHorizonMs(),
        SKYROCKET_DYNAMODB_ENDPOINT: servers.dynamodb.endpoint,
        AWS_REGION: servers.dynamodb.region,
        AWS_ACCESS_KEY_ID: servers.dynamodb.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: servers.dynamodb.credentials.secretAccessKey,
        ...s3Variables(servers),
      },
      { info() {}, warn: (msg) => complain(`delay-sweep: ${msg}`), error: (msg) => complain(`delay-sweep: ${msg}`) },
    );
    const intervalMs = Number(process.env['SKYROCKET_DELAY_SWEEP_INTERVAL_MS'] || dev.delaySweepIntervalMs);
    const state: DelaySweepTimer = {
      timer: setInterval(() => {
        if (state.running !== undefined) return; // the previous run is still going
        state.running = runtime.sweep
          .run()
          .catch((error: unknown) => complain(`delay-sweep: ${describe(error)}`))
          .finally(() => (state.running = undefined));
      }, Number.isSafeInteger(intervalMs) && intervalMs >= 100 ? intervalMs : dev.delaySweepIntervalMs),
      running: undefined,
      runtime,
    };
    this.#delaySweep = state;
  }

  /** The txn-check sweep on a timer, with the brokers' secret and the stand-in's tables. */
  #startTxnCheck(secret: string, servers: EmbeddedServers): void {
    const dynamo = new DynamoDBClient(dynamoClientConfig(servers.dynamodb));
    const checker = new TransactionChecker({
      tables: new TransactionTables({ client: dynamo, prefix: dev.tablePrefix }),
      brokers: new NameServer({ client: dynamo, prefix: dev.tablePrefix }),
      internalSecret: secret,
      log: { info() {}, warn: (_obj, msg) => complain(`txn-check: ${msg ?? 'warning'}`) },
    });
    const state: TxnCheckTimer = {
      timer: setInterval(() => {
        state.running = checker.run().catch((error: unknown) => complain(`txn-check: ${describe(error)}`));
      }, dev.txnCheckIntervalMs),
      running: undefined,
      dynamo,
    };
    this.#txnCheck = state;
  }

  /** SKYROCKET_API_KEY when set, else the key of the last run, else a new one. */
  async #ensureAdminKey(nameServer: NameServer): Promise<string> {
    const fromEnv = process.env['SKYROCKET_API_KEY'];
    let previous: string | undefined;
    try {
      previous = readCredentials(this.#dataDir)?.apiKey;
    } catch {
      previous = undefined;
    }
    const apiKey = fromEnv || previous || generateApiKey();
    try {
      await nameServer.ensurePrincipal({ name: dev.adminPrincipal, permissions: { admin: true }, apiKey });
    } catch (error) {
      if (fromEnv && isSkyrocketError(error) && error.code === 'INVALID_ARGUMENT') {
        throw new DevFailure(`SKYROCKET_API_KEY: ${error.message}`);
      }
      throw error;
    }
    return apiKey;
  }

  /** The brokers' shared secret, made on the first start and kept in the data dir. */
  #internalSecret(): string {
    const file = path.join(this.#dataDir, 'internal-secret');
    try {
      const secret = fs.readFileSync(file, 'utf8').trim();
      if (secret.length >= 16) return secret;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const secret = randomBytes(32).toString('hex');
    fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }

  async #startBroker(brokerId: number, port: number, wirePort: number, secret: string, servers: EmbeddedServers): Promise<void> {
    const brokerGroup = `bg-${brokerId}`;
    const dataDir = path.join(this.#dataDir, `broker-${brokerId}`);
    const logDir = path.join(this.#dataDir, 'logs');
    fs.mkdirSync(logDir, { recursive: true });
    const log = fs.createWriteStream(path.join(logDir, `broker-${brokerId}.log`), { flags: 'a' });
    log.on('error', (error) => complain(`broker ${brokerId}: cannot write its log: ${error.message}`));
    const child = spawn(process.execPath, [...brokerNodeFlags, '--import', tsxLoader, '--import', brokerGuard, brokerMain], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...withoutSkyrocketVariables(process.env),
        SKYROCKET_BROKER_ID: String(brokerId),
        SKYROCKET_BROKER_GROUP: brokerGroup,
        SKYROCKET_DATA_DIR: dataDir,
        SKYROCKET_HOST: dev.host,
        SKYROCKET_PORT: String(port),
        SKYROCKET_WIRE_PORT: String(wirePort),
        SKYROCKET_SEGMENT_SIZE_BYTES: String(dev.segmentSizeBytes),
        SKYROCKET_SHUTDOWN_GRACE_MS: String(dev.brokerShutdownGraceMs),
        SKYROCKET_DYNAMODB_ENDPOINT: servers.dynamodb.endpoint,
        SKYROCKET_TABLE_PREFIX: dev.tablePrefix,
        SKYROCKET_INTERNAL_SECRET: secret,
        SKYROCKET_LAMBDA_ENDPOINT: this.#lambda?.url ?? '',
        SKYROCKET_TIMER_HORIZON_MS: timerHorizonMs(),
        ...s3Variables(servers),
        AWS_REGION: servers.dynamodb.region,
        AWS_ACCESS_KEY_ID: servers.dynamodb.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: servers.dynamodb.credentials.secretAccessKey,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })),
    );
    // Listed at once, so that a stop during start stops this broker too.
    const broker: RunningBroker = { brokerId, brokerGroup, url: '', pid: child.pid ?? -1, child, exited, stderrTail: [], log };
    this.#brokers.push(broker);
    this.#brokers.sort((a, b) => a.brokerId - b.brokerId);
    const { stderrTail } = broker;
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      log.write(`${line}\n`);
      stderrTail.push(line);
      if (stderrTail.length > dev.stderrTailLines) stderrTail.shift();
    });

    broker.url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new DevFailure(`broker ${brokerId} was not ready within ${dev.brokerStartTimeoutMs} ms`));
      }, dev.brokerStartTimeoutMs);
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        log.write(`${line}\n`);
        const entry = parseLogLine(line);
        if (entry?.['msg'] === 'ready' && typeof entry['url'] === 'string') {
          clearTimeout(timer);
          if (typeof entry['wireUrl'] === 'string') broker.wireUrl = entry['wireUrl'];
          resolve(entry['url']);
        } else if (entry !== undefined && typeof entry['level'] === 'number' && entry['level'] >= 40) {
          // pino: 40 warn, 50 error, 60 fatal. Info lines stay in the log file.
          complain(`broker ${brokerId}: ${entry['level'] >= 50 ? 'error' : 'warning'}: ${String(entry['msg'] ?? line)}`);
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new DevFailure(`broker ${brokerId} exited (${exitText(code, signal)}) before it was ready:\n${indent(stderrTail)}`));
      });
      void this.stopRequested.then(() => {
        clearTimeout(timer);
        reject(new DevFailure('stopped during start'));
      });
    });

    void exited.then(({ code, signal }) => {
      if (this.#stopping) return;
      complain(`skyrocket dev: broker ${brokerId} (${brokerGroup}, pid ${broker.pid}) exited unexpectedly (${exitText(code, signal)})`);
      if (stderrTail.length > 0) complain(indent(stderrTail));
      complain(`  its log: ${log.path.toString()}`);
      this.requestStop(1);
    });
  }

  /** Stops the brokers (SIGTERM by PID, SIGKILL after a timeout), then the stand-ins. Returns an exit code. */
  async stop(): Promise<number> {
    this.#stopping = true;
    let code = 0;
    if (this.#delaySweep !== undefined) {
      clearInterval(this.#delaySweep.timer);
      await this.#delaySweep.running;
      this.#delaySweep.runtime.close();
      this.#delaySweep = undefined;
    }
    if (this.#txnCheck !== undefined) {
      clearInterval(this.#txnCheck.timer);
      await this.#txnCheck.running;
      this.#txnCheck.dynamo.destroy();
      this.#txnCheck = undefined;
    }
    await Promise.all(
      this.#brokers.map(async (b) => {
        const running = isRunning(b.child);
        let timer: NodeJS.Timeout | undefined;
        if (running) {
          b.child.kill('SIGTERM');
          timer = setTimeout(() => {
            complain(`broker ${b.brokerId} did not stop within ${dev.brokerStopTimeoutMs} ms; killing it`);
            b.child.kill('SIGKILL');
          }, dev.brokerStopTimeoutMs);
        }
        // Waits for 'close' even when the broker had exited: its last log lines may still be on the way.
        const { code: exitCode, signal } = await b.exited;
        clearTimeout(timer);
        // A broker stopped before it installed its handlers dies of the signal itself; that is fine.
        if (running && exitCode !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') {
          complain(`broker ${b.brokerId} stopped uncleanly (${exitText(exitCode, signal)}); see ${b.log.path.toString()}`);
          code = 1;
        }
        await new Promise<void>((resolve) => b.log.end(resolve));
      }),
    );
    await this.#lambda?.close();
    if (this.#servers !== undefined) await this.#servers.stop();
    return code;
  }
}

/** The timer horizon of the brokers and the delay sweep: SKYROCKET_TIMER_HORIZON_MS, or 1 h. */
function timerHorizonMs(): string {
  return process.env['SKYROCKET_TIMER_HORIZON_MS'] || '3600000';
}

/** Where the brokers and the delay sweep park large far-timer bodies: the dev bucket in s3rver. */
function s3Variables(servers: EmbeddedServers): Record<string, string> {
  return {
    SKYROCKET_S3_BUCKET: dev.bucket,
    SKYROCKET_S3_ENDPOINT: servers.s3.endpoint,
    SKYROCKET_S3_ACCESS_KEY_ID: servers.s3.credentials.accessKeyId,
    SKYROCKET_S3_SECRET_ACCESS_KEY: servers.s3.credentials.secretAccessKey,
  };
}

/** Relative to the working directory when inside it, else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `code ${code}`;
}

function indent(lines: readonly string[]): string {
  return lines.map((l) => `    ${l}`).join('\n');
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The brokers get exactly the SKYROCKET_* settings dev chooses, none left over from the shell. */
function withoutSkyrocketVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('SKYROCKET_')));
}

/** Fails with a clear message when a broker port is taken, before anything else starts. */
async function checkPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new DevFailure(
          error.code === 'EADDRINUSE'
            ? `port ${port} is in use (another \`skyrocket dev\`?); choose other ports with --port <first> (or --wire-port <first> for the wire ports)`
            : `cannot listen on ${dev.host}:${port}: ${error.message}`,
        ),
      );
    });
    server.listen(port, dev.host, () => server.close(() => resolve()));
  });
}
