/**
 * The scheduled functions of DESIGN.md, each run by its own EventBridge rule once a minute:
 *
 *   rule rate(1 minute) ──▶ delay-sweep ──▶ timers table (Get, Query, Update, BatchWrite deletes),
 *                                      │     timer bodies in S3 (Get, Delete), brokers table (Scan)
 *                                      └──▶ leader brokers, port 8080: POST /v1/internal/timers
 *   rule rate(1 minute) ──▶ txn-check ───▶ transactions table (Scan, Update, Delete), producer-groups
 *                                      │     and brokers tables (Scan)
 *                                      ├──▶ leader brokers, port 8080: /v1/transactions/…
 *                                      └──▶ checker functions skyrocket-<env>-checker-* (Invoke)
 *
 * Both run in the brokers' isolated subnets, each with a security group of its own that may reach
 * the brokers' port and the VPC endpoints it needs; their roles name every action and resource.
 * Reserved concurrency 1 keeps a sweep from overlapping itself: an event that arrives while the
 * previous run still goes is throttled, and dropped after a minute, when the next one is due anyway.
 * Both are written so that a run cut short anywhere loses nothing (see their handlers).
 *
 * The handlers are bundled on the synthesizing machine with the esbuild of this repository, into
 * one ESM file each with the AWS SDK inside (the versions the tests ran against, not the
 * runtime's), so `cdk synth` needs neither Docker nor a network.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { sweepDefaults } from '../lambdas/delay-sweep/sweep.ts';
import type { DeploymentConfig } from './context.ts';
import { dataKeyActions } from './defaults.ts';
import { timerHorizonMs } from './deployment.ts';
import { acknowledgeNag, wildcardFinding } from './nag.ts';
import type { SkyrocketData } from './stateful-stack.ts';

const repositoryRoot = path.resolve(import.meta.dirname, '..');

/**
 * The functions' runtime. Node.js 24, not the brokers' 20: Lambda deprecated nodejs20.x on
 * 2026-04-30, Node 20's end of life, and some months after a deprecation it refuses to create,
 * then to update, functions on that runtime. The bundle targets this runtime; the code is the
 * brokers' (Node 20 syntax), which Node 24 runs unchanged.
 */
export const sweepRuntime = lambda.Runtime.NODEJS_24_X;

/** The environment variable that holds the internal secret's ARN (never the secret itself). */
export const internalSecretArnVariable = 'SKYROCKET_INTERNAL_SECRET_ARN';

/** Every limit of the sweep functions, in one place. */
export const sweepLimits = {
  /** Runs are scheduled this often. */
  intervalMinutes: 1,
  /**
   * The delay sweep stops starting new buckets after its budget (50 s), and its last move may
   * take the move timeout (30 s) more; the txn-check sweep has no budget, and a run cut short
   * leaves the rest to the next one.
   */
  timeoutSeconds: 120,
  /** A move request carries up to 8 MiB of bodies, base64 and JSON on top, for several shards at once. */
  delaySweepMemoryMiB: 512,
  txnCheckMemoryMiB: 256,
  /** A throttled or undeliverable event is worth nothing once the next one is due. */
  maxEventAgeSeconds: 60,
} as const;

// The delay sweep's own limits must fit in the function's: a run killed by the timeout is safe,
// but one that always runs into it never advances its watermark past the slow bucket.
assert(
  (sweepDefaults.budgetMs + sweepDefaults.moveTimeoutMs) / 1000 < sweepLimits.timeoutSeconds,
  'sweepLimits.timeoutSeconds must exceed the delay sweep\'s budget plus one move timeout',
);
assert(sweepLimits.maxEventAgeSeconds >= 60, 'Lambda and EventBridge take a maximum event age of 60 s at least');

/**
 * The ENI actions Lambda needs from a VPC function's role (the AWS managed policy
 * AWSLambdaVPCAccessExecutionRole, without its log actions). EC2 offers no resource scoping for
 * the Describe actions, and Lambda names the interfaces it creates itself.
 */
export const vpcNetworkInterfaceActions = [
  'ec2:AssignPrivateIpAddresses',
  'ec2:CreateNetworkInterface',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:UnassignPrivateIpAddresses',
] as const;

/** A statement whose resource has to end in a wildcard, with the reason cdk-nag is told. */
export interface PrefixStatement {
  readonly statement: iam.PolicyStatement;
  /** Why the resource cannot be named exactly (shown in the validation report). */
  readonly reason: string;
}

export interface SweepFunctionProps {
  /** The function's name. */
  readonly functionName: string;
  readonly description: string;
  /** The handler module (exports `handler`), bundled with esbuild at synth. */
  readonly entry: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly memorySizeMiB: number;
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly logGroupName: string;
  readonly logRetention: logs.RetentionDays;
  /** What the function does with exactly named resources; goes into the role's default policy. */
  readonly statements: readonly iam.PolicyStatement[];
  /** What it does under a name prefix: a policy of its own, each wildcard acknowledged alone. */
  readonly prefixStatements: readonly PrefixStatement[];
}

/**
 * One scheduled function: its log group, role, the function, and the rule that runs it every
 * minute.
 */
export class SweepFunction extends Construct {
  /** The function's name, as a literal (`fn.functionName` is a reference). */
  readonly functionName: string;
  readonly fn: lambdaNodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: SweepFunctionProps) {
    super(scope, id);
    this.functionName = props.functionName;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: props.logGroupName,
      retention: props.logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    // A role of its own instead of the managed AWSLambdaBasicExecutionRole and
    // AWSLambdaVPCAccessExecutionRole, which allow logging to any log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Logs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    for (const statement of props.statements) this.role.addToPolicy(statement);

    const networkInterfaces = new iam.Policy(this, 'NetworkInterfacesPolicy', {
      roles: [this.role],
      statements: [new iam.PolicyStatement({ sid: 'VpcNetworkInterfaces', actions: [...vpcNetworkInterfaceActions], resources: ['*'] })],
    });
    acknowledgeNag(
      networkInterfaces,
      'AwsSolutions-IAM5[Resource::*]',
      'Lambda creates and deletes the network interfaces of a VPC function with its role: ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets take no resource, and Lambda names the interfaces itself (the actions of AWSLambdaVPCAccessExecutionRole, without its logging to any log group).',
    );
    const dependencies: Construct[] = [this.role, networkInterfaces];
    if (props.prefixStatements.length > 0) {
      const prefixes = new iam.Policy(this, 'PrefixPolicy', { roles: [this.role], statements: props.prefixStatements.map((p) => p.statement) });
      for (const { statement, reason } of props.prefixStatements) {
        for (const resource of statement.resources) acknowledgeNag(prefixes, wildcardFinding(this, resource), reason);
      }
      dependencies.push(prefixes);
    }

    this.fn = new lambdaNodejs.NodejsFunction(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      entry: props.entry,
      handler: 'handler',
      projectRoot: repositoryRoot,
      depsLockFilePath: path.join(repositoryRoot, 'package-lock.json'),
      runtime: sweepRuntime,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySizeMiB,
      timeout: cdk.Duration.seconds(sweepLimits.timeoutSeconds),
      // One run at a time; with asynchronous invocation the event of a busy minute waits in
      // Lambda's queue, for at most maxEventAge, and is never retried after a failure.
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
      maxEventAge: cdk.Duration.seconds(sweepLimits.maxEventAgeSeconds),
      role: this.role,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroups: [props.securityGroup],
      allowPublicSubnet: false,
      logGroup: this.logGroup,
      // Stack traces name the TypeScript sources (the bundle's source map).
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        forceDockerBundling: false,
        format: lambdaNodejs.OutputFormat.ESM,
        // Bundled CommonJS dependencies call require() for Node's modules, which an ES module lacks.
        banner: "import { createRequire as __skyrocketCreateRequire } from 'node:module'; const require = __skyrocketCreateRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // Naming externals replaces the default ones (`@aws-sdk/*`), so the SDK is bundled. The
        // local stand-ins of namesrv/embedded.ts come in through the namesrv barrel, but only
        // `skyrocket dev` ever imports them (dynamically); the bundle leaves them out.
        externalModules: ['dynalite', 's3rver'],
        logLevel: lambdaNodejs.LogLevel.WARNING,
      },
    });
    // Lambda checks the role's ENI permissions when it creates the function.
    for (const dependency of dependencies) this.fn.node.addDependency(dependency);

    this.schedule = new events.Rule(this, 'Schedule', {
      description: `Runs ${props.functionName} every minute`,
      schedule: events.Schedule.rate(cdk.Duration.minutes(sweepLimits.intervalMinutes)),
      targets: [new eventsTargets.LambdaFunction(this.fn, { retryAttempts: 0, maxEventAge: cdk.Duration.seconds(sweepLimits.maxEventAgeSeconds) })],
    });
  }
}

/** What the sweeps are wired to in the service stack. */
export interface SweepFunctionsProps {
  readonly config: Pick<DeploymentConfig, 'retentionHours' | 'logRetentionDays'>;
  readonly data: SkyrocketData;
  readonly vpc: ec2.IVpc;
  /** The brokers: the sweeps call their internal API on `brokerPort`. */
  readonly brokers: ec2.IConnectable;
  readonly brokerPort: number;
  /** The segments bucket's name (timer bodies live under `data.names.timerBodyPrefix`). */
  readonly segmentsBucketName: string;
  /** The interface endpoint of Secrets Manager (the internal secret). */
  readonly secretsManagerEndpoint: ec2.IConnectable;
  /** The interface endpoint of Lambda (txn-check invokes checker functions). */
  readonly lambdaEndpoint: ec2.IConnectable;
}

/** The delay-sweep and txn-check functions of a deployment. */
export class SweepFunctions extends Construct {
  readonly delaySweep: SweepFunction;
  readonly txnCheck: SweepFunction;

  constructor(scope: Construct, id: string, props: SweepFunctionsProps) {
    super(scope, id);
    const { config, data } = props;
    const { names, tables, key } = data;
    const stack = cdk.Stack.of(this);
    const region = stack.region;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    const securityGroup = (name: string, endpoints: readonly ec2.IConnectable[]): ec2.SecurityGroup => {
      const group = new ec2.SecurityGroup(this, `${name}SecurityGroup`, {
        vpc: props.vpc,
        description: `Skyrocket ${names.cluster} ${name}: the broker port and the AWS APIs it calls`,
        allowAllOutbound: false,
      });
      props.brokers.connections.allowFrom(group, ec2.Port.tcp(props.brokerPort), `${name} to the brokers' internal API`);
      for (const endpoint of endpoints) endpoint.connections.allowFrom(group, ec2.Port.tcp(443), `${name} to the AWS API`);
      // DynamoDB and S3 through the gateway endpoints. The subnets have no route to the
      // internet, so nothing else answers on 443.
      group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs through the VPC endpoints');
      return group;
    };
    // Statements both functions have, made anew for each (a statement belongs to one policy).
    const internalSecret = (): iam.PolicyStatement[] => [
      new iam.PolicyStatement({ sid: 'InternalSecret', actions: ['secretsmanager:GetSecretValue'], resources: [data.internalSecret.secretArn] }),
      new iam.PolicyStatement({
        sid: 'InternalSecretKey',
        actions: ['kms:Decrypt'],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      }),
    ];
    // What DynamoDB asks of KMS on the caller's behalf for a table under a customer-managed key
    // (the brokers' `dataKeyActions`, through DynamoDB only).
    const tableKey = (): iam.PolicyStatement =>
      new iam.PolicyStatement({
        sid: 'TableKeyThroughDynamoDb',
        actions: [...dataKeyActions],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${region}.amazonaws.com` } },
      });
    // namesrv/registry.ts `listBrokers`: where the leaders are.
    const brokerRegistry = (): iam.PolicyStatement =>
      new iam.PolicyStatement({ sid: 'BrokerRegistry', actions: ['dynamodb:Scan'], resources: [tables.brokers.tableArn] });
    const common = { [internalSecretArnVariable]: data.internalSecret.secretArn, SKYROCKET_TABLE_PREFIX: names.tablePrefix };

    const timerBodies = `arn:${stack.partition}:s3:::${props.segmentsBucketName}/${names.timerBodyPrefix}*`;
    this.delaySweep = new SweepFunction(this, 'DelaySweep', {
      functionName: names.delaySweepFunction,
      description: `Skyrocket ${names.cluster}: moves parked timers that fall due into their brokers' timing wheels`,
      entry: path.join(repositoryRoot, 'lambdas/delay-sweep/handler.ts'),
      environment: {
        ...common,
        SKYROCKET_S3_BUCKET: props.segmentsBucketName,
        SKYROCKET_TIMER_HORIZON_MS: String(timerHorizonMs(config.retentionHours)),
      },
      memorySizeMiB: sweepLimits.delaySweepMemoryMiB,
      vpc: props.vpc,
      securityGroup: securityGroup('DelaySweep', [props.secretsManagerEndpoint]),
      logGroupName: names.delaySweepLogGroup,
      logRetention,
      statements: [
        // namesrv/timers.ts: the watermark (Get, Update), a bucket's timers (Query), removal (BatchWrite).
        new iam.PolicyStatement({
          sid: 'TimerIndex',
          actions: ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
          resources: [tables.timers.tableArn],
        }),
        brokerRegistry(),
        tableKey(),
        new iam.PolicyStatement({
          sid: 'TimerBodyKeyThroughS3',
          actions: ['kms:Decrypt'],
          resources: [key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } },
        }),
        ...internalSecret(),
      ],
      prefixStatements: [
        {
          statement: new iam.PolicyStatement({ sid: 'TimerBodies', actions: ['s3:DeleteObject', 's3:GetObject'], resources: [timerBodies] }),
          reason: `Parked timer bodies are objects under this cluster's prefix ${names.timerBodyPrefix} of the segments bucket, named at run time by message id; the sweep reads and deletes them, nothing else.`,
        },
      ],
    });

    const checkers = stack.formatArn({ service: 'lambda', resource: 'function', resourceName: `${names.checkerFunctionPrefix}*`, arnFormat: cdk.ArnFormat.COLON_RESOURCE_NAME });
    this.txnCheck = new SweepFunction(this, 'TxnCheck', {
      functionName: names.txnCheckFunction,
      description: `Skyrocket ${names.cluster}: checks back half messages left unresolved`,
      entry: path.join(repositoryRoot, 'lambdas/txn-check/handler.ts'),
      environment: common,
      memorySizeMiB: sweepLimits.txnCheckMemoryMiB,
      vpc: props.vpc,
      securityGroup: securityGroup('TxnCheck', [props.secretsManagerEndpoint, props.lambdaEndpoint]),
      logGroupName: names.txnCheckLogGroup,
      logRetention,
      statements: [
        // namesrv/transactions.ts: due items (Scan), a claim (Update), a resolved item (Delete).
        new iam.PolicyStatement({
          sid: 'Transactions',
          actions: ['dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
          resources: [tables.transactions.tableArn],
        }),
        new iam.PolicyStatement({ sid: 'ProducerGroups', actions: ['dynamodb:Scan'], resources: [tables.producerGroups.tableArn] }),
        brokerRegistry(),
        tableKey(),
        ...internalSecret(),
      ],
      prefixStatements: [
        {
          statement: new iam.PolicyStatement({ sid: 'CheckerFunctions', actions: ['lambda:InvokeFunction'], resources: [checkers] }),
          reason: `Producer groups register their checker functions at run time (checkLambdaArn); txn-check may invoke those named ${names.checkerFunctionPrefix}* (any version or alias) in this account and region, and no other function.`,
        },
      ],
    });
  }

  get all(): readonly SweepFunction[] {
    return [this.delaySweep, this.txnCheck];
  }
}
