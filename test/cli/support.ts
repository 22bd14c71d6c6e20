/**
 * Running the `skyrocket` CLI as a user does: a child process per command, and `skyrocket dev`
 * as a long-running child process that a test stops with SIGINT, by its own PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'bin/skyrocket.ts');

/**
 * The environment without SKYROCKET_* variables, so a developer's own endpoint or key cannot
 * leak into a test; the CLI then finds the dev cluster through `--data-dir`.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SKYROCKET_')));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to its end (at most `timeoutMs`), with stdin closed or given. */
export function runCli(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
      cwd: root,
      env: cleanEnv(),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`skyrocket ${args.join(' ')} did not finish within ${options.timeoutMs ?? 20_000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command with `--json` that must succeed, and parses its output. */
export async function cliJson<T = any>(args: readonly string[], options: { input?: string } = {}): Promise<T> {
  const r = await runCli([...args, '--json'], options);
  if (r.code !== 0) throw new Error(`skyrocket ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface DevProcess {
  child: ChildProcess;
  pid: number;
  endpoint: string;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (or the signal's name) when the process has exited. */
  exited: Promise<number | string>;
}

/** Starts `skyrocket dev` (with `extraArgs`) and resolves once it printed `ready <endpoint>`. */
export async function startDev(dataDir: string, port: number, timeoutMs = 45_000, extraArgs: readonly string[] = []): Promise<DevProcess> {
  // An IPC channel: if this test process dies, dev sees it close and stops its brokers.
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'dev', '--data-dir', dataDir, '--port', String(port), '--wire-port', '0', ...extraArgs], {
    cwd: root,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`skyrocket dev was not ready within ${timeoutMs} ms\n${stdout.join('\n')}\n${stderr.join('\n')}`));
    }, timeoutMs);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      stdout.push(line);
      const match = /^ready (\S+)$/.exec(line);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`skyrocket dev exited (${code}) before it was ready\n${stdout.join('\n')}\n${stderr.join('\n')}`));
    });
  });
  return { child, pid: child.pid!, endpoint, stdout, stderr, exited };
}

/** Sends a signal to the dev process (and only it) and waits for it to exit. */
export async function stopDev(dev: DevProcess, signal: NodeJS.Signals = 'SIGINT', timeoutMs = 30_000): Promise<number | string> {
  if (dev.child.exitCode === null && dev.child.signalCode === null) dev.child.kill(signal);
  return withTimeout(dev.exited, timeoutMs, () => {
    dev.child.kill('SIGKILL');
    return new Error(`skyrocket dev did not stop within ${timeoutMs} ms after ${signal}\n${dev.stderr.join('\n')}`);
  });
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The parent PID of a process, from /proc (Linux). */
export function parentPid(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** A port p such that p and p+1 were both free a moment ago (the dev brokers take two in a row). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await listenOn(0);
    if (first === undefined) continue;
    const port = (first.address() as net.AddressInfo).port;
    const second = port < 65535 ? await listenOn(port + 1) : undefined;
    await close(first);
    if (second !== undefined) {
      await close(second);
      return port;
    }
  }
  throw new Error('found no two free ports in a row');
}

function listenOn(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
