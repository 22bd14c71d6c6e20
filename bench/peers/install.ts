/**
 * Installs the peer brokers from Debian's packages when they are missing: `apt-cache policy` to
 * show what would come, then `apt-get update` and `apt-get install -y`. Needs root.
 *
 * The packages' maintainer scripts would start system-wide services on the default ports; a
 * `policy-rc.d` that denies every start keeps them from it. One that already exists is left as it
 * is; one written here is removed afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Debian package -> a file it installs that the benchmark runs. */
const needed: Record<string, string> = {
  'redis-server': '/usr/bin/redis-server',
  'nats-server': '/usr/sbin/nats-server',
  'rabbitmq-server': '/usr/lib/rabbitmq/bin/rabbitmq-server',
};

const policyFile = '/usr/sbin/policy-rc.d';

export function missingPackages(): string[] {
  return Object.entries(needed)
    .filter(([, file]) => !fs.existsSync(file))
    .map(([pkg]) => pkg);
}

function run(command: string, args: string[], log: (line: string) => void): void {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (output !== '') log(output.split('\n').slice(-15).join('\n'));
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed with ${result.status ?? result.signal}`);
}

/** Installs what is missing; `log` gets progress lines (the caller decides where they go). */
export function installPeers(log: (line: string) => void): void {
  const missing = missingPackages();
  if (missing.length === 0) {
    log('peers: redis-server, nats-server and rabbitmq-server are installed');
    return;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.join(', ')}; install them as root: apt-get update && apt-get install -y ${missing.join(' ')}`);
  }
  log(`peers: installing ${missing.join(', ')} from Debian's packages`);
  run('apt-cache', ['policy', ...missing], log);
  run('apt-get', ['update'], log);
  const ownPolicy = !fs.existsSync(policyFile);
  if (ownPolicy) fs.writeFileSync(policyFile, '#!/bin/sh\n# written by bench/peers: no service starts during the install\nexit 101\n', { mode: 0o755 });
  try {
    run('apt-get', ['install', '-y', ...missing], log);
  } finally {
    if (ownPolicy) fs.rmSync(policyFile, { force: true });
  }
  const still = missingPackages();
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
  // A package installed on a machine with an init system may have started its service anyway.
  try {
    execFileSync('sh', ['-c', 'command -v service >/dev/null && for s in redis-server rabbitmq-server nats-server; do service "$s" status >/dev/null 2>&1 && echo "$s"; done; true'], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .forEach((s) => log(`note: the system service ${s} is running; the benchmark starts its own servers on other ports`));
  } catch {
    // no service command: nothing was started
  }
}
