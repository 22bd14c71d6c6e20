/**
 * Starts and stops the four systems of the side-by-side benchmark, each on 127.0.0.1 only, with
 * its data in a fresh temporary directory that `stop` removes. Every process started here is
 * remembered by PID and stopped by PID (SIGTERM, then SIGKILL after a grace period); if this
 * process exits first, `killAllStarted` sends SIGKILL to whatever is left.
 *
 * | system    | processes                                   | durability when it acks                                  |
 * |-----------|---------------------------------------------|----------------------------------------------------------|
 * | skyrocket | 1 broker (`broker-fargate/src/main.ts`)     | `sync` flush: fdatasync of the commit log                |
 * |           | + AWS stand-ins (dynalite, s3rver) apart    |                                                          |
 * | redis     | redis-server                                | `appendonly yes`, `appendfsync always`: fsync of the AOF |
 * | rabbitmq  | epmd, rabbitmq-server script -> beam.smp    | quorum queue + publisher confirms: fsync of the Ra WAL   |
 * | nats      | nats-server -js, file storage               | written to the OS, not fsynced (2.9: no sync_interval)   |
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { AwsEndpoint } from '../../namesrv/index.ts';
import type { Connection, SystemName } from './clients.ts';
import type { AwsProcessMessage } from './skyrocket-aws.ts';
import { brokerNodeFlags } from '../../broker-fargate/src/node-flags.ts';

export interface RunningServer {
  system: SystemName;
  connection: Connection;
  /** Roots of the server's process trees: what its CPU and memory are read from. */
  serverPids: number[];
  /** Processes of the system that are not the server (Skyrocket's AWS stand-ins), read apart. */
  auxiliaryPids: number[];
  /** Helper processes in the server's tree that production does not have, left out of its figures. */
  excludeCommands: string[];
  dataDir: string;
  startSeconds: number;
  /** Stops every process by PID and removes the data directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Where the temporary data directories go. @default os.tmpdir() */
  tmpRoot?: string;
  /** Seconds to wait for a server to be ready. @default 120 */
  startTimeoutSeconds?: number;
  /**
   * Skyrocket only: the endpoint the clients get, the wire protocol's (`skyrocket://`) or HTTP's.
   * @default 'wire'
   */
  skyrocketTransport?: 'wire' | 'http';
}

const host = '127.0.0.1';
const stopGraceMs = 20_000;
const root = path.resolve(import.meta.dirname, '../..');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const brokerGuard = pathToFileURL(path.join(root, 'bin/cli/broker-guard.ts')).href;

/** Every process started and not yet seen to exit, for the last-resort kill on exit. */
const started = new Map<number, ChildProcess>();

/** SIGKILL to every process this module started that is still running, by PID. */
export function killAllStarted(): void {
  for (const pid of started.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

interface Proc {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines of its output, to explain a failure. */
  tail: string[];
  /** Resolves with the first line matching `pattern` on stdout or stderr. */
  waitForLine(pattern: RegExp, timeoutMs: number, what: string): Promise<string>;
}

function track(child: ChildProcess, name: string, logFile: string): Proc {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  started.set(pid, child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(pid);
      resolve({ code, signal });
    }),
  );
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  log.on('error', () => undefined);
  const tail: string[] = [];
  const watchers = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    readline.createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > 30) tail.shift();
      for (const w of watchers) w(line);
    });
  }
  void exited.then(() => setTimeout(() => log.end(), 100));
  return {
    child,
    pid,
    exited,
    tail,
    waitForLine(pattern, timeoutMs, what) {
      return new Promise<string>((resolve, reject) => {
        const watcher = (line: string): void => {
          if (!pattern.test(line)) return;
          cleanup();
          resolve(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${name}: not ${what} within ${timeoutMs} ms; last output:\n${tail.join('\n')}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          watchers.delete(watcher);
        };
        watchers.add(watcher);
        void exited.then(({ code, signal }) => {
          if (!watchers.has(watcher)) return;
          cleanup();
          reject(new Error(`${name} exited (${signal ?? code}) before it was ${what}; last output:\n${tail.join('\n')}`));
        });
      });
    },
  };
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves when it has exited. */
async function stopProc(p: Proc, graceMs = stopGraceMs): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

/** A port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function makeDataDir(system: SystemName, options: StartOptions): string {
  return fs.mkdtempSync(path.join(options.tmpRoot ?? os.tmpdir(), `skyrocket-peers-${system}-`));
}

function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function startServer(system: SystemName, options: StartOptions = {}): Promise<RunningServer> {
  const dataDir = makeDataDir(system, options);
  const t0 = performance.now();
  const timeoutMs = (options.startTimeoutSeconds ?? 120) * 1000;
  try {
    const server = await starters[system](dataDir, timeoutMs, options);
    return { ...server, system, dataDir, startSeconds: (performance.now() - t0) / 1000 };
  } catch (error) {
    removeDir(dataDir);
    throw error;
  }
}

type Starter = (dataDir: string, timeoutMs: number, options: StartOptions) => Promise<Omit<RunningServer, 'system' | 'dataDir' | 'startSeconds'>>;

/** Stops `procs` in order (the last started first is the caller's job), then removes `dataDir`. */
function stopper(procs: Proc[], dataDir: string): () => Promise<void> {
  return async () => {
    for (const p of procs) await stopProc(p);
    removeDir(dataDir);
  };
}

const starters: Record<SystemName, Starter> = {
  async redis(dataDir, timeoutMs) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--bind', host, '--port', String(port), '--dir', dataDir, '--protected-mode', 'yes', '--daemonize', 'no',
        '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--logfile', '',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const p = track(child, 'redis-server', path.join(dataDir, 'redis.log'));
    try {
      await p.waitForLine(/Ready to accept connections/, timeoutMs, 'ready');
    } catch (error) {
      await stopProc(p, 2_000);
      throw error;
    }
    return { connection: { system: 'redis', port }, serverPids: [p.pid], auxiliaryPids: [], excludeCommands: [], stop: stopper([p], dataDir) };
  },

  async nats(dataDir, timeoutMs) {
    const port = await freePort();
    const child = spawn('nats-server', ['-a', host, '-p', String(port), '-js', '-sd', path.join(dataDir, 'jetstream')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = track(child, 'nats-server', path.join(dataDir, 'nats.log'));
    try {
      await p.waitForLine(/Server is ready/, timeoutMs, 'ready');
    } catch (error) {
      await stopProc(p, 2_000);
      throw error;
    }
    return { connection: { system: 'nats', port }, serverPids: [p.pid], auxiliaryPids: [], excludeCommands: [], stop: stopper([p], dataDir) };
  },

  async rabbitmq(dataDir, timeoutMs) {
    const [amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    const home = path.join(dataDir, 'home');
    for (const d of ['home', 'mnesia', 'log']) fs.mkdirSync(path.join(dataDir, d));
    const configFile = path.join(dataDir, 'rabbitmq.conf');
    fs.writeFileSync(
      configFile,
      [
        `listeners.tcp.1 = ${host}:${amqpPort}`,
        // The bench connects as guest over loopback; no management plugin, no other listener.
        'loopback_users.guest = true',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dataDir, 'enabled_plugins'), '[].\n');
    fs.writeFileSync(path.join(dataDir, 'rabbitmq-env.conf'), '');
    const epmd = spawn('epmd', ['-address', host, '-port', String(epmdPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const e = track(epmd, 'epmd', path.join(dataDir, 'epmd.log'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      LANG: 'C.UTF-8',
      HOME: home,
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: host,
      RABBITMQ_NODENAME: `skyrocket-bench-${amqpPort}@localhost`,
      RABBITMQ_NODE_IP_ADDRESS: host,
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: path.join(dataDir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dataDir, 'log'),
      RABBITMQ_LOGS: '-',
      RABBITMQ_CONFIG_FILE: configFile,
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dataDir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dataDir, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: path.join(dataDir, 'rabbitmq-env.conf'),
      RABBITMQ_PID_FILE: path.join(dataDir, 'rabbitmq.pid'),
      // Erlang distribution (used by rabbitmqctl) on loopback only, like everything else.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    const rabbit = spawn('/usr/lib/rabbitmq/bin/rabbitmq-server', [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const r = track(rabbit, 'rabbitmq-server', path.join(dataDir, 'rabbitmq.log'));
    try {
      await r.waitForLine(/Server startup complete/, timeoutMs, 'ready');
    } catch (error) {
      await stopProc(r, 5_000);
      await stopProc(e, 2_000);
      throw error;
    }
    return {
      connection: { system: 'rabbitmq', url: `amqp://guest:guest@${host}:${amqpPort}` },
      serverPids: [r.pid, e.pid],
      auxiliaryPids: [],
      excludeCommands: [],
      stop: stopper([r, e], dataDir),
    };
  },

  async skyrocket(dataDir, timeoutMs, options) {
    const tablePrefix = 'skyrocket-bench-';
    const aws = fork(path.join(import.meta.dirname, 'skyrocket-aws.ts'), [path.join(dataDir, 'aws'), tablePrefix], {
      execArgv: ['--import', tsxLoader],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    const a = track(aws, 'skyrocket AWS stand-ins', path.join(dataDir, 'aws.log'));
    const ready = await Promise.race([
      new Promise<AwsProcessMessage>((resolve) => aws.once('message', (m) => resolve(m as AwsProcessMessage))),
      a.exited.then(({ code }): AwsProcessMessage => ({ error: `exited with code ${code}: ${a.tail.join('\n')}` })),
    ]);
    if ('error' in ready) {
      await stopAws(a);
      throw new Error(`the AWS stand-ins did not start: ${ready.error}`);
    }
    const dynamodb: AwsEndpoint = ready.dynamodb;
    const port = await freePort();
    const wirePort = await freePort();
    // For profiling the broker alone: BENCH_BROKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
    const nodeArgs = (process.env['BENCH_BROKER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    const brokerArgs = [...brokerNodeFlags, ...nodeArgs, '--import', tsxLoader, '--import', brokerGuard, path.join(root, 'broker-fargate/src/main.ts')];
    const broker = spawn(process.execPath, brokerArgs, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKYROCKET_'))),
        SKYROCKET_BROKER_ID: '1',
        SKYROCKET_BROKER_GROUP: 'bg-1',
        SKYROCKET_DATA_DIR: path.join(dataDir, 'broker-1'),
        SKYROCKET_HOST: host,
        SKYROCKET_PORT: String(port),
        SKYROCKET_WIRE_PORT: String(wirePort),
        SKYROCKET_DYNAMODB_ENDPOINT: dynamodb.endpoint,
        SKYROCKET_TABLE_PREFIX: tablePrefix,
        SKYROCKET_INTERNAL_SECRET: 'bench-internal-secret-0123456789',
        SKYROCKET_SHUTDOWN_GRACE_MS: '2000',
        AWS_REGION: dynamodb.region,
        AWS_ACCESS_KEY_ID: dynamodb.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: dynamodb.credentials.secretAccessKey,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    // BENCH_BROKER_LOG keeps the broker's output past the run (the data directory is removed).
    const b = track(broker, 'skyrocket broker', process.env['BENCH_BROKER_LOG'] ?? path.join(dataDir, 'broker-1.log'));
    try {
      await b.waitForLine(/"msg":"ready"/, timeoutMs, 'ready');
    } catch (error) {
      await stopProc(b, 5_000);
      await stopAws(a);
      throw error;
    }
    return {
      connection: {
        system: 'skyrocket',
        endpoint: options.skyrocketTransport === 'http' ? `http://${host}:${port}` : `skyrocket://${host}:${wirePort}`,
        apiKey: ready.apiKey,
      },
      serverPids: [b.pid],
      auxiliaryPids: [a.pid],
      // tsx's TypeScript transpiler, a child of the broker here; production runs the esbuild bundle.
      excludeCommands: ['esbuild'],
      async stop() {
        await stopProc(b);
        await stopAws(a);
        removeDir(dataDir);
      },
    };
  },
};

/** The AWS stand-ins stop when their IPC channel closes; SIGKILL if they do not. */
async function stopAws(a: Proc): Promise<void> {
  if (a.child.connected) a.child.disconnect();
  const timer = setTimeout(() => a.child.kill('SIGKILL'), 10_000);
  await a.exited;
  clearTimeout(timer);
}

/** The Debian package versions of the peers and their runtime. */
export function peerVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of ['redis-server', 'nats-server', 'rabbitmq-server', 'erlang-base']) {
    try {
      out[pkg] = execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }).trim();
    } catch {
      out[pkg] = 'not installed';
    }
  }
  return out;
}
