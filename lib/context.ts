/**
 * The deployment's settings, read from CDK context (`cdk deploy -c brokerGroups=3 ...` or the
 * `context` block of cdk.json) and checked before any construct is built.
 *
 * Every key, its default and its bounds live in `contextKeys` below. A bad value stops the synth
 * with a `ContextError` that names the key, says what it accepts and shows how to pass it, so an
 * operator never finds a typo as a half-created CloudFormation stack an hour later.
 *
 * Context values arrive as strings from the command line (`-c replicas=2`) and as JSON values from
 * cdk.json; both are accepted.
 */

/** A bad context value; the message names the key. */
export class ContextError extends Error {
  override name = 'ContextError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`context "${key}": ${message}`);
  }
}

/**
 * Fargate's CPU and memory combinations (task level): CPU units, then the memory MiB allowed
 * with it as [min, max, step].
 */
export const fargateMemoryByCpu: ReadonlyMap<number, readonly [number, number, number]> = new Map([
  [256, [512, 2048, 512]],
  [512, [1024, 4096, 1024]],
  [1024, [2048, 8192, 1024]],
  [2048, [4096, 16384, 1024]],
  [4096, [8192, 30720, 1024]],
  [8192, [16384, 61440, 4096]],
  [16384, [32768, 122880, 8192]],
]);

/** CloudWatch Logs' accepted retention periods, in days. */
export const logRetentionDaysAllowed: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/**
 * Every context key with its default and bounds. `brokerGroupsMax` keeps the service stack under
 * CloudFormation's 500-resource limit: each broker slot costs four resources (task definition,
 * service, Cloud Map service, alarm), and 16 groups of 3 replicas is 192 of them.
 */
export const contextKeys = {
  env: { default: 'dev', pattern: /^[a-z][a-z0-9-]{0,15}$/ },
  brokerGroups: { default: 2, min: 1, max: 16 },
  replicas: { default: 2, min: 1 },
  cpu: { default: 1024 },
  memoryMiB: { default: 2048 },
  /** Fargate gives 20 GiB free; 21 is the smallest value that changes anything, 200 the largest it allows. */
  ephemeralStorageGiB: { default: 100, min: 21, max: 200 },
  /** From one hour (the broker's own minimum is a minute) to ten years (the broker's maximum). */
  retentionHours: { default: 72, min: 1, max: 87_600 },
  logRetentionDays: { default: 30 },
  certificateArn: {},
  allowPlaintext: { default: false },
  allowedCidrs: {},
  internal: { default: false },
  availabilityZones: {},
  alarmEmail: {},
  account: {},
  region: {},
} as const;

export type ContextKey = keyof typeof contextKeys;

/** How clients reach the brokers through the load balancer. */
export type ListenerConfig =
  | { readonly protocol: 'TLS'; readonly port: 443; readonly certificateArn: string }
  | { readonly protocol: 'TCP'; readonly port: 80 };

/** The checked settings of one deployment. */
export interface DeploymentConfig {
  /** The deployment's name: `skyrocket-<env>` prefixes stacks, tables, the cluster and log groups. */
  readonly env: string;
  /** Undefined when neither `-c account=` nor the CLI's credentials name one (an offline synth). */
  readonly account: string | undefined;
  readonly region: string;
  readonly availabilityZones: readonly string[];
  readonly brokerGroups: number;
  readonly replicas: number;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly ephemeralStorageGiB: number;
  readonly retentionHours: number;
  readonly logRetentionDays: number;
  readonly listener: ListenerConfig;
  /** CIDRs allowed to reach the load balancer; `0.0.0.0/0` only when given explicitly. */
  readonly allowedCidrs: readonly string[];
  /** Whether the load balancer is internal (private subnets) instead of internet-facing. */
  readonly internal: boolean;
  readonly alarmEmail: string | undefined;
}

/** Reads one raw context value; `app.node.tryGetContext` in the app, a plain object in tests. */
export type ContextReader = (key: ContextKey) => unknown;

/** What the CDK CLI puts in the environment of the app (`CDK_DEFAULT_ACCOUNT`, `CDK_DEFAULT_REGION`). */
export interface CliEnvironment {
  readonly account?: string | undefined;
  readonly region?: string | undefined;
}

function isUnset(raw: unknown): boolean {
  return raw === undefined || raw === null || raw === '';
}

function show(raw: unknown): string {
  return typeof raw === 'string' ? JSON.stringify(raw) : String(JSON.stringify(raw) ?? raw);
}

function integer(key: ContextKey, raw: unknown, fallback: number, min: number, max: number): number {
  if (isUnset(raw)) return fallback;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ContextError(key, `must be an integer from ${min} to ${max}, got ${show(raw)} (pass -c ${key}=N)`);
  }
  return value;
}

function boolean(key: ContextKey, raw: unknown, fallback: boolean): boolean {
  if (isUnset(raw)) return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new ContextError(key, `must be true or false, got ${show(raw)}`);
}

function optionalText(key: ContextKey, raw: unknown): string | undefined {
  if (isUnset(raw)) return undefined;
  if (typeof raw !== 'string') throw new ContextError(key, `must be a string, got ${show(raw)}`);
  return raw.trim();
}

/** A list from cdk.json (a JSON array) or the command line (`a,b,c`). */
function list(key: ContextKey, raw: unknown): string[] | undefined {
  if (isUnset(raw)) return undefined;
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (items === undefined || !items.every((item) => typeof item === 'string')) {
    throw new ContextError(key, `must be a comma-separated list or a JSON array of strings, got ${show(raw)}`);
  }
  const trimmed = (items as string[]).map((item) => item.trim()).filter((item) => item !== '');
  return trimmed.length === 0 ? undefined : trimmed;
}

const ipv4CidrPattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/**
 * Checks an IPv4 CIDR: four octets of 0..255, a prefix of 0..32, and no host bits set, since a
 * security group rule for `10.0.0.1/8` almost always means a mistyped `10.0.0.1/32`.
 * @returns undefined when valid, else what is wrong.
 */
export function ipv4CidrProblem(cidr: string): string | undefined {
  const match = ipv4CidrPattern.exec(cidr);
  if (match === null) return 'is not an IPv4 CIDR like 203.0.113.0/24';
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255)) return 'has an octet above 255';
  if (prefix > 32) return 'has a prefix length above 32';
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const hostBits = 2 ** (32 - prefix);
  if (address % hostBits !== 0) {
    const network = address - (address % hostBits);
    const dotted = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
    return `has host bits set (did you mean ${dotted}/${prefix}, or ${octets.join('.')}/32?)`;
  }
  return undefined;
}

const certificateArnPattern = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate\/[A-Za-z0-9-]+$/;
const regionPattern = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
const accountPattern = /^\d{12}$/;

/**
 * Reads and checks every context value.
 * @throws ContextError naming the first bad key.
 */
export function parseDeploymentContext(read: ContextReader, cli: CliEnvironment = {}): DeploymentConfig {
  const k = contextKeys;

  const envRaw = read('env');
  const env = isUnset(envRaw) ? k.env.default : optionalText('env', envRaw)!;
  if (!k.env.pattern.test(env)) {
    throw new ContextError('env', `must be 1 to 16 lowercase letters, digits or "-", starting with a letter, got ${show(envRaw)}`);
  }

  const region = optionalText('region', read('region')) ?? (cli.region || undefined);
  if (region === undefined) {
    throw new ContextError('region', 'no region: pass -c region=us-east-1, or run the CDK CLI with AWS_REGION or a profile that sets one');
  }
  if (!regionPattern.test(region)) throw new ContextError('region', `is not an AWS region name, got ${show(region)}`);
  const account = optionalText('account', read('account')) ?? (cli.account || undefined);
  if (account !== undefined && !accountPattern.test(account)) {
    throw new ContextError('account', `must be a 12-digit AWS account id, got ${show(account)}`);
  }

  const availabilityZones = list('availabilityZones', read('availabilityZones')) ?? ['a', 'b', 'c'].map((s) => `${region}${s}`);
  const azPattern = new RegExp(`^${region}[a-z]$`);
  for (const az of availabilityZones) {
    if (!azPattern.test(az)) {
      throw new ContextError('availabilityZones', `${show(az)} is not an availability zone of ${region} (like ${region}a)`);
    }
  }
  if (new Set(availabilityZones).size !== availabilityZones.length || availabilityZones.length < 2 || availabilityZones.length > 6) {
    throw new ContextError('availabilityZones', `must name 2 to 6 distinct zones, got ${show(availabilityZones.join(','))}`);
  }

  const brokerGroups = integer('brokerGroups', read('brokerGroups'), k.brokerGroups.default, k.brokerGroups.min, k.brokerGroups.max);
  // A follower must sit in another zone than its leader (DESIGN.md, High availability), so a
  // group cannot have more replicas than there are zones.
  const replicas = integer('replicas', read('replicas'), k.replicas.default, k.replicas.min, availabilityZones.length);

  const cpu = integer('cpu', read('cpu'), k.cpu.default, 256, 16384);
  const memoryRange = fargateMemoryByCpu.get(cpu);
  if (memoryRange === undefined) {
    throw new ContextError('cpu', `must be one of Fargate's sizes ${[...fargateMemoryByCpu.keys()].join(', ')} (CPU units; 1024 = 1 vCPU), got ${cpu}`);
  }
  const [memoryMin, memoryMax, memoryStep] = memoryRange;
  const memoryMiB = integer('memoryMiB', read('memoryMiB'), Math.max(k.memoryMiB.default, memoryMin), 512, 122880);
  if (memoryMiB < memoryMin || memoryMiB > memoryMax || memoryMiB % memoryStep !== 0) {
    throw new ContextError(
      'memoryMiB',
      `${memoryMiB} is not a Fargate memory size for cpu=${cpu}: use ${memoryMin} to ${memoryMax} in steps of ${memoryStep}`,
    );
  }

  const ephemeralStorageGiB = integer(
    'ephemeralStorageGiB',
    read('ephemeralStorageGiB'),
    k.ephemeralStorageGiB.default,
    k.ephemeralStorageGiB.min,
    k.ephemeralStorageGiB.max,
  );
  const retentionHours = integer('retentionHours', read('retentionHours'), k.retentionHours.default, k.retentionHours.min, k.retentionHours.max);
  const logRetentionDays = integer('logRetentionDays', read('logRetentionDays'), k.logRetentionDays.default, 1, 3653);
  if (!logRetentionDaysAllowed.includes(logRetentionDays)) {
    throw new ContextError('logRetentionDays', `must be one of CloudWatch's periods ${logRetentionDaysAllowed.join(', ')}, got ${logRetentionDays}`);
  }

  const certificateArn = optionalText('certificateArn', read('certificateArn'));
  const allowPlaintext = boolean('allowPlaintext', read('allowPlaintext'), k.allowPlaintext.default);
  let listener: ListenerConfig;
  if (certificateArn !== undefined) {
    const match = certificateArnPattern.exec(certificateArn);
    if (match === null) {
      throw new ContextError('certificateArn', `is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>), got ${show(certificateArn)}`);
    }
    if (match[1] !== region) {
      throw new ContextError('certificateArn', `is in ${match[1]}, but a load balancer can only use a certificate of its own region ${region}`);
    }
    if (account !== undefined && match[2] !== account) {
      throw new ContextError('certificateArn', `belongs to account ${match[2]}, not the deployment's account ${account}`);
    }
    listener = { protocol: 'TLS', port: 443, certificateArn };
  } else if (allowPlaintext) {
    listener = { protocol: 'TCP', port: 80 };
  } else {
    throw new ContextError(
      'certificateArn',
      'is required: pass -c certificateArn=arn:aws:acm:... for the TLS listener, or -c allowPlaintext=true for a development deployment without TLS',
    );
  }

  const allowedCidrs = list('allowedCidrs', read('allowedCidrs'));
  if (allowedCidrs === undefined) {
    throw new ContextError(
      'allowedCidrs',
      'is required: pass the client networks, e.g. -c allowedCidrs=10.0.0.0/8,203.0.113.0/24 (or -c allowedCidrs=0.0.0.0/0 to allow everyone)',
    );
  }
  for (const cidr of allowedCidrs) {
    const problem = ipv4CidrProblem(cidr);
    if (problem !== undefined) throw new ContextError('allowedCidrs', `${show(cidr)} ${problem}`);
  }
  if (new Set(allowedCidrs).size !== allowedCidrs.length) throw new ContextError('allowedCidrs', 'lists a CIDR twice');

  const internal = boolean('internal', read('internal'), k.internal.default);
  const alarmEmail = optionalText('alarmEmail', read('alarmEmail'));
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    throw new ContextError('alarmEmail', `is not an email address, got ${show(alarmEmail)}`);
  }

  return {
    env,
    account,
    region,
    availabilityZones,
    brokerGroups,
    replicas,
    cpu,
    memoryMiB,
    ephemeralStorageGiB,
    retentionHours,
    logRetentionDays,
    listener,
    allowedCidrs,
    internal,
    alarmEmail,
  };
}
