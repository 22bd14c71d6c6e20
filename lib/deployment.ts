/**
 * Names and broker slots of a deployment, as pure functions of its settings, so the stacks, the
 * tests and the operator docs agree on them.
 */
import { tableNames, type TableNames } from '../namesrv/tables.ts';
import { limits } from '../core/limits.ts';
import { ContextError } from './context.ts';

/** Every name a deployment `env` gives its resources. */
export interface DeploymentNames {
  /** `skyrocket-<env>`: the ECS cluster, the S3 key prefix of tiered segments, the KMS alias. */
  readonly cluster: string;
  readonly statefulStack: string;
  readonly serviceStack: string;
  /** What the brokers get as SKYROCKET_TABLE_PREFIX: `skyrocket-<env>-`. */
  readonly tablePrefix: string;
  readonly tables: TableNames;
  /** The key prefix, inside the segments bucket, of everything this cluster tiers: `skyrocket-<env>/`. */
  readonly segmentPrefix: string;
  /**
   * Where the brokers and the delay sweep put timer bodies too large for DynamoDB: namesrv/timers.ts
   * uses `<table prefix>timers/` unless told otherwise.
   */
  readonly timerBodyPrefix: string;
  readonly brokerLogGroup: string;
  readonly metricsLogGroup: string;
  /** The scheduled functions: `skyrocket-<env>-delay-sweep` and `skyrocket-<env>-txn-check`. */
  readonly delaySweepFunction: string;
  readonly txnCheckFunction: string;
  /** Their log groups: `/skyrocket/<env>/delay-sweep` and `/skyrocket/<env>/txn-check`. */
  readonly delaySweepLogGroup: string;
  readonly txnCheckLogGroup: string;
  /**
   * The name prefix of the transaction checker functions producer groups may register
   * (`checkLambdaArn`): txn-check may invoke `skyrocket-<env>-checker-*` and no other function.
   */
  readonly checkerFunctionPrefix: string;
  /** The private DNS namespace that gives each broker slot a stable name. */
  readonly dnsNamespace: string;
  /** SSM parameter path under which Lambda consumer subscriptions are recorded. */
  readonly subscriptionPath: string;
  readonly kmsAlias: string;
}

export function deploymentNames(env: string): DeploymentNames {
  const cluster = `skyrocket-${env}`;
  let tables: TableNames;
  try {
    tables = tableNames(`${cluster}-`);
  } catch (error) {
    throw new ContextError('env', `makes illegal DynamoDB table names: ${(error as Error).message}`);
  }
  return {
    cluster,
    statefulStack: `Skyrocket-${env}-Stateful`,
    serviceStack: `Skyrocket-${env}-Service`,
    tablePrefix: `${cluster}-`,
    tables,
    segmentPrefix: `${cluster}/`,
    timerBodyPrefix: `${cluster}-timers/`,
    brokerLogGroup: `/skyrocket/${env}/brokers`,
    metricsLogGroup: `/skyrocket/${env}/metrics`,
    delaySweepFunction: `${cluster}-delay-sweep`,
    txnCheckFunction: `${cluster}-txn-check`,
    delaySweepLogGroup: `/skyrocket/${env}/delay-sweep`,
    txnCheckLogGroup: `/skyrocket/${env}/txn-check`,
    checkerFunctionPrefix: `${cluster}-checker-`,
    dnsNamespace: `${cluster}.internal`,
    subscriptionPath: `/skyrocket/${env}/lambda-consumers`,
    kmsAlias: `alias/${cluster}`,
  };
}

/**
 * The segments bucket's name: `skyrocket-<env>-segments-<account>-<region>`, at most 63
 * characters. A fixed name lets the service stack scope the brokers' policy to the bucket without
 * a cross-stack reference, and tells an operator which retained bucket belongs to which
 * deployment. `account` and `region` may be CloudFormation tokens.
 */
export function segmentsBucketName(cluster: string, account: string, region: string): string {
  return `${cluster}-segments-${account}-${region}`;
}

/**
 * One broker slot: a stable identity (broker id, broker group, DNS name, zone) that one Fargate
 * service keeps filled with one task. A replacement task takes over the slot's identity.
 */
export interface BrokerSlot {
  /** 1-based. */
  readonly group: number;
  /** 1-based; which replica is leader is decided at run time by the broker group's lease. */
  readonly replica: number;
  /** SKYROCKET_BROKER_GROUP. */
  readonly brokerGroup: string;
  /** SKYROCKET_BROKER_ID: `1000 × group + replica`, so adding groups or replicas never renumbers a slot. */
  readonly brokerId: number;
  /** `bg<group>-r<replica>`: construct id, Cloud Map service name, log stream prefix. */
  readonly name: string;
  readonly availabilityZone: string;
}

/** Replicas per group are bounded by the zones (context.ts); this bounds the id arithmetic. */
export const replicasPerGroupMax = 999;

/**
 * The slots of `groups` broker groups with `replicas` each. Replica r of group g runs in zone
 * (g + r) mod zones: the replicas of one group sit in distinct zones (replicas ≤ zones), and the
 * groups' first replicas rotate over the zones.
 */
export function brokerSlots(groups: number, replicas: number, availabilityZones: readonly string[]): BrokerSlot[] {
  if (!(Number.isSafeInteger(groups) && groups >= 1)) throw new RangeError(`groups must be a positive integer, got ${groups}`);
  if (!(Number.isSafeInteger(replicas) && replicas >= 1 && replicas <= Math.min(availabilityZones.length, replicasPerGroupMax))) {
    throw new RangeError(`replicas must be from 1 to ${availabilityZones.length} (the zones), got ${replicas}`);
  }
  const slots: BrokerSlot[] = [];
  for (let group = 1; group <= groups; group++) {
    for (let replica = 1; replica <= replicas; replica++) {
      slots.push({
        group,
        replica,
        brokerGroup: `bg-${group}`,
        brokerId: 1000 * group + replica,
        name: `bg${group}-r${replica}`,
        availabilityZone: availabilityZones[(group - 1 + replica - 1) % availabilityZones.length]!,
      });
    }
  }
  return slots;
}

/**
 * Days after which the S3 lifecycle rule deletes a tiered object. The broker deletes data by its
 * retention time to the hour; the rule only catches what a broker failed to delete (a group
 * that was removed, a crash mid-delete), so it runs one whole day behind.
 */
export function segmentExpirationDays(retentionHours: number): number {
  if (!(Number.isSafeInteger(retentionHours) && retentionHours >= 1)) {
    throw new RangeError(`retentionHours must be a positive integer, got ${retentionHours}`);
  }
  return Math.ceil(retentionHours / 24) + 1;
}

/**
 * The timer horizon (SKYROCKET_TIMER_HORIZON_MS) the brokers and the delay sweep share: timers due
 * within it wait in a broker's timing wheel, later ones are parked in DynamoDB. It is the brokers'
 * own default (broker-fargate/src/config.ts: 1 h, or a third of the retention when that is
 * shorter), given to both explicitly, because the sweep's default (1 h) ignores the retention
 * and the two must agree.
 */
export function timerHorizonMs(retentionHours: number): number {
  if (!(Number.isSafeInteger(retentionHours) && retentionHours >= 1)) {
    throw new RangeError(`retentionHours must be a positive integer, got ${retentionHours}`);
  }
  return Math.min(3_600_000, Math.floor((retentionHours * 3_600_000) / 3));
}

/**
 * Days after which the lifecycle rule deletes a parked timer body: a day after the longest delay a
 * message may have (core/limits.ts `delayMaxMs`, 365 days), so only orphans (a crash between the
 * two deletes) ever reach it.
 */
export const timerBodyExpirationDays = Math.ceil(limits.delayMaxMs / 86_400_000) + 1;
