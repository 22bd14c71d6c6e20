/**
 * The broker cluster: a VPC over the deployment's zones, an ECS cluster with one Fargate service
 * per broker slot, a Network Load Balancer in front of all brokers, and the dashboard and alarms.
 *
 *   clients ──TLS 443──▶ NLB (allowedCidrs only) ──TCP 8080──▶ broker tasks (one per slot)
 *                                                               │  ▲ forwarding between brokers,
 *                                                               ▼  │ by stable DNS names (Cloud Map)
 *                         gateway endpoints: DynamoDB, S3 ◀─────┘
 *                         interface endpoints: ECR, Logs, Secrets Manager, SSM, Lambda
 *
 *   EventBridge, every minute ──▶ delay-sweep, txn-check (Lambda, in the broker subnets)
 *                                   ──TCP 8080──▶ leader brokers (sweep-functions.ts)
 *
 * Networking: the brokers run in isolated subnets with no route to the internet. DynamoDB and S3
 * are reached through gateway endpoints (free, and no per-GB charge on the tiering traffic);
 * the image pull, the log driver, the secret, SSM and Lambda (the dispatcher) through interface
 * endpoints. Three NAT gateways (one per zone, so that a zone outage does not cut the others off)
 * cost $98.55 a month against the endpoints' $131.40, but add $0.045 per GB against $0.01, and
 * every batch pushed to a Lambda consumer crosses that line: above about 940 GB a month the
 * endpoints are cheaper, and they give the brokers no path to the internet at all. Public subnets
 * exist only for an internet-facing NLB.
 */
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { IgnoreMode } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from './context.ts';
import { dataKeyActions } from './defaults.ts';
import { brokerSlots, segmentsBucketName, timerHorizonMs, type BrokerSlot, type DeploymentNames } from './deployment.ts';
import type { LambdaConsumerTarget } from './lambda-consumer.ts';
import { acknowledgeNag, wildcardFinding } from './nag.ts';
import { brokerMetrics, metricsBridgeScript, metricsBridgeVariables } from './metrics-bridge.ts';
import type { SkyrocketData } from './stateful-stack.ts';
import { SweepFunctions, type SweepFunction } from './sweep-functions.ts';

/** The port the broker listens on inside its task (SKYROCKET_PORT). */
export const brokerPort = 8080;
/** The port of the broker's wire protocol (SKYROCKET_WIRE_PORT), in the task and on the NLB. */
export const brokerWirePort = 10911;
/** Where the task's ephemeral storage is mounted, and the broker keeps its store (SKYROCKET_DATA_DIR). */
export const brokerDataDir = '/data';
/**
 * Drain time on SIGTERM. ECS waits for the NLB deregistration delay, then sends SIGTERM, then
 * SIGKILL after the stop timeout: grace < stop timeout, and a long poll (≤ 30 s) ends within both.
 */
export const brokerShutdownGraceSeconds = 20;
export const brokerStopTimeoutSeconds = 30;
export const deregistrationDelaySeconds = 30;
/** How long after a start ECS ignores failed health checks: recovery re-verifies the log tail. */
export const brokerStartGraceSeconds = 120;

export interface AlarmThresholds {
  /**
   * Alarm when the p99 append latency of any broker stays above this for 5 minutes.
   * @default 50 (a synced append on a Fargate task disk takes 1 to 5 ms)
   */
  readonly appendLatencyP99Ms?: number;
  /**
   * Alarm when some consumer group lags by more than this many messages for 15 minutes.
   * @default 100000
   */
  readonly consumerLagMessages?: number;
  /**
   * Alarm when more than this percentage of requests fail with 5xx in 3 of 5 minutes.
   * @default 1
   */
  readonly http5xxPercent?: number;
}

export interface ServiceStackProps extends cdk.StackProps {
  /** The checked deployment settings (`parseDeploymentContext`). */
  readonly config: DeploymentConfig;
  /** The stateful stack's resources. */
  readonly data: SkyrocketData;
  /** @default see `AlarmThresholds` */
  readonly alarmThresholds?: AlarmThresholds;
  /**
   * The Docker build context of the broker image: the repository root, which holds
   * `broker-fargate/Dockerfile` and the `.dockerignore` that keeps the context small.
   * @default the parent of lib/
   */
  readonly imageDirectory?: string;
}

/** The broker container's environment: everything but the internal secret. */
export function brokerEnvironment(
  slot: BrokerSlot,
  names: DeploymentNames,
  config: Pick<DeploymentConfig, 'region' | 'retentionHours'>,
  segmentsBucketName: string,
): Record<string, string> {
  return {
    SKYROCKET_BROKER_ID: String(slot.brokerId),
    SKYROCKET_BROKER_GROUP: slot.brokerGroup,
    SKYROCKET_DATA_DIR: brokerDataDir,
    SKYROCKET_HOST: '0.0.0.0',
    SKYROCKET_PORT: String(brokerPort),
    SKYROCKET_WIRE_PORT: String(brokerWirePort),
    // The slot's Cloud Map name follows the task, whatever private IP it gets.
    SKYROCKET_ADVERTISED_URL: `http://${slot.name}.${names.dnsNamespace}:${brokerPort}`,
    SKYROCKET_FLUSH_MODE: 'sync',
    SKYROCKET_RETENTION_MS: String(config.retentionHours * 3_600_000),
    SKYROCKET_TABLE_PREFIX: names.tablePrefix,
    // The delay sweep gets the same value (sweep-functions.ts): the two must agree.
    SKYROCKET_TIMER_HORIZON_MS: String(timerHorizonMs(config.retentionHours)),
    SKYROCKET_SHUTDOWN_GRACE_MS: String(brokerShutdownGraceSeconds * 1000),
    AWS_REGION: config.region,
    // Large parked timer bodies today (namesrv/timers.ts); tiered segments when tiering lands.
    SKYROCKET_S3_BUCKET: segmentsBucketName,
    // Where the dispatcher finds the LambdaConsumer subscriptions (lambda-consumer.ts).
    SKYROCKET_SUBSCRIPTION_PATH: names.subscriptionPath,
  };
}

/** `GET /healthz` from inside the container; the image has Node but no curl. */
export const healthCheckScript = `fetch('http://127.0.0.1:${brokerPort}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;

/**
 * The exact data-plane actions the broker's name-server code uses (namesrv/registry.ts,
 * transactions.ts, timers.ts: Get/Put/Update/Delete, Scan, Query, BatchWrite): no table admin,
 * no transactions, no streams.
 */
export const nameServerTableActions = [
  'dynamodb:BatchWriteItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:Scan',
  'dynamodb:UpdateItem',
] as const;

/** What the brokers do to their objects: tiered segments, and parked timer bodies. */
export const brokerObjectActions = ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject'] as const;

export class ServiceStack extends cdk.Stack implements LambdaConsumerTarget {
  readonly vpc: ec2.Vpc;
  /** The brokers' security group: the NLB, the other brokers and the sweep functions may reach it. */
  readonly brokerSecurityGroup: ec2.SecurityGroup;
  readonly cluster: ecs.Cluster;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;
  readonly wireTargetGroup: elbv2.NetworkTargetGroup;
  /** The role every broker task runs as; the grant target for Lambda consumers. */
  readonly brokerTaskRole: iam.Role;
  readonly services: readonly ecs.FargateService[];
  readonly slots: readonly BrokerSlot[];
  readonly brokerLogGroup: logs.LogGroup;
  /** The delay-sweep and txn-check functions, each run every minute. */
  readonly sweeps: SweepFunctions;
  readonly alarmTopic: sns.Topic;
  readonly alarms: readonly cloudwatch.Alarm[];
  readonly dashboard: cloudwatch.Dashboard;
  /** The URL clients use. */
  readonly endpoint: string;
  /** `skyrocket(s)://<nlb>:10911`: the wire protocol through the same load balancer. */
  readonly wireEndpoint: string;
  readonly subscriptionPath: string;
  /** The segments bucket's name, derived like the stateful stack derives it (no cross-stack reference). */
  readonly segmentsBucketName: string;
  readonly #availabilityZones: readonly string[];

  get brokerRole(): iam.IGrantable {
    return this.brokerTaskRole;
  }

  /**
   * The zones come from context, not from a lookup, so that `cdk synth` needs no AWS credentials
   * (overriding this getter is how CDK lets a stack skip the availability-zone context lookup).
   */
  override get availabilityZones(): string[] {
    return [...this.#availabilityZones];
  }

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { config, data } = props;
    // Declared before any grant, so that grants on the stateful stack's key go into this stack's
    // policies instead of the key policy (which would make the stateful stack depend on this one).
    const dataStack = cdk.Stack.of(data.key);
    if (dataStack !== this) this.addStackDependency(dataStack);
    this.segmentsBucketName = segmentsBucketName(data.names.cluster, this.account, this.region);
    const names = data.names;
    this.#availabilityZones = config.availabilityZones;
    this.subscriptionPath = names.subscriptionPath;
    this.slots = brokerSlots(config.brokerGroups, config.replicas, config.availabilityZones);

    // ---- Network ------------------------------------------------------------------------------
    const subnetConfiguration: ec2.SubnetConfiguration[] = [
      { name: 'brokers', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
    ];
    if (!config.internal) subnetConfiguration.unshift({ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 });
    const flowLogGroup = new logs.LogGroup(this, 'VpcFlowLogs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      availabilityZones: [...config.availabilityZones],
      natGateways: 0,
      subnetConfiguration,
      gatewayEndpoints: {
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
      // Rejected flows only: what a security review asks for, without paying to log every
      // accepted byte of replication and tiering traffic.
      flowLogs: { Rejected: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup), trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    const listenerPort = config.listener.port;
    const loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `Skyrocket ${names.cluster} NLB: clients from allowedCidrs only`,
      allowAllOutbound: false,
    });
    for (const cidr of config.allowedCidrs) {
      loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(listenerPort), `Skyrocket clients ${cidr} (allowedCidrs)`);
      loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(brokerWirePort), `Skyrocket wire-protocol clients ${cidr} (allowedCidrs)`);
    }
    if (config.allowedCidrs.includes('0.0.0.0/0')) {
      acknowledgeNag(
        loadBalancerSecurityGroup,
        'AwsSolutions-EC23',
        'The operator passed allowedCidrs=0.0.0.0/0 explicitly: the endpoint is meant to be public, and every request is authenticated by API key.',
      );
    }
    const brokerSecurityGroup = (this.brokerSecurityGroup = new ec2.SecurityGroup(this, 'BrokerSecurityGroup', {
      vpc: this.vpc,
      description: `Skyrocket ${names.cluster} brokers: the NLB and other brokers only`,
      allowAllOutbound: false,
    }));
    brokerSecurityGroup.connections.allowFrom(loadBalancerSecurityGroup, ec2.Port.tcp(brokerPort), 'client traffic and health checks from the NLB');
    brokerSecurityGroup.connections.allowFrom(loadBalancerSecurityGroup, ec2.Port.tcp(brokerWirePort), 'wire-protocol client traffic from the NLB');
    brokerSecurityGroup.connections.allowInternally(ec2.Port.tcp(brokerPort), 'requests forwarded between brokers');
    // HTTPS to AWS APIs. The subnets have no route to the internet, so only the VPC endpoints
    // (and the gateway endpoints' service ranges) can answer.
    brokerSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs through the VPC endpoints');

    cdk.Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason:
        'The zones are named on purpose (context availabilityZones): each broker slot is pinned to one zone so that the replicas of a broker group never share one, and Fn::GetAZs cannot promise which zones it returns.',
    });
    const brokerSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    const endpoints = new Map<string, ec2.InterfaceVpcEndpoint>();
    for (const [name, service] of [
      ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      // The dispatcher: Lambda consumer subscriptions (SSM) and the invocations themselves.
      ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
      ['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA],
    ] as const) {
      // Reachable from the brokers only, not from the whole VPC.
      const endpoint = this.vpc.addInterfaceEndpoint(`${name}Endpoint`, { service, subnets: brokerSubnets, privateDnsEnabled: true, open: false });
      endpoint.connections.allowFrom(brokerSecurityGroup, ec2.Port.tcp(443), 'brokers to the AWS API');
      endpoints.set(name, endpoint);
    }

    // ---- Cluster, roles, logs -----------------------------------------------------------------
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      clusterName: names.cluster,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: {
        name: names.dnsNamespace,
        type: servicediscovery.NamespaceType.DNS_PRIVATE,
        vpc: this.vpc,
      },
    });

    const ecsTasks = new iam.ServicePrincipal('ecs-tasks.amazonaws.com').withConditions({
      StringEquals: { 'aws:SourceAccount': this.account },
      ArnLike: { 'aws:SourceArn': this.formatArn({ service: 'ecs', resource: '*' }) },
    });
    this.brokerTaskRole = new iam.Role(this, 'BrokerTaskRole', {
      assumedBy: ecsTasks,
      description: `Skyrocket ${names.cluster} broker tasks: name-server tables, tiered segments, Lambda consumers`,
    });
    this.#grantBrokerData(data);
    const executionRole = new iam.Role(this, 'BrokerExecutionRole', {
      assumedBy: ecsTasks,
      description: `Skyrocket ${names.cluster}: pulls the broker image, writes its logs, reads the internal secret`,
    });
    // The secret by ARN, without its key: granting through the key itself would put this stack's
    // role into the stateful stack's key policy, a reference back that closes a cycle. The key
    // is granted here instead, for Secrets Manager's use only.
    const internalSecret = secretsmanager.Secret.fromSecretAttributes(this, 'InternalSecret', {
      secretCompleteArn: data.internalSecret.secretArn,
    });
    executionRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'InternalSecretKey',
        actions: ['kms:Decrypt'],
        resources: [data.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
      }),
    );

    const brokerLogGroup = (this.brokerLogGroup = new logs.LogGroup(this, 'BrokerLogs', {
      logGroupName: names.brokerLogGroup,
      retention: config.logRetentionDays as logs.RetentionDays,
      // Broker logs are what a post-mortem needs; they outlive the stack.
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    }));
    const metricsLogGroup = new logs.LogGroup(this, 'MetricsLogs', {
      logGroupName: names.metricsLogGroup,
      // CloudWatch extracts the metrics on ingestion; the EMF lines themselves are not needed long.
      retention: logs.RetentionDays.ONE_WEEK,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });

    const image = ecs.ContainerImage.fromAsset(props.imageDirectory ?? path.resolve(import.meta.dirname, '..'), {
      file: 'broker-fargate/Dockerfile',
      ignoreMode: IgnoreMode.DOCKER,
      platform: Platform.LINUX_AMD64,
    });

    // ---- Load balancer ------------------------------------------------------------------------
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      internetFacing: !config.internal,
      vpcSubnets: { subnetType: config.internal ? ec2.SubnetType.PRIVATE_ISOLATED : ec2.SubnetType.PUBLIC },
      securityGroups: [loadBalancerSecurityGroup],
      // Each broker sits in one zone; without cross-zone, a client resolved to another zone's
      // NLB node could not reach it.
      crossZoneEnabled: true,
    });
    this.loadBalancer.logAccessLogs(data.logsBucket, `nlb/${names.cluster}`);
    // Targets on a broker port, healthy while the broker's HTTP side answers /healthz (the same
    // process serves the wire protocol).
    const brokerTargets = (id: string, port: number): elbv2.NetworkTargetGroup =>
      new elbv2.NetworkTargetGroup(this, id, {
        vpc: this.vpc,
        port,
        protocol: elbv2.Protocol.TCP,
        targetType: elbv2.TargetType.IP,
        deregistrationDelay: cdk.Duration.seconds(deregistrationDelaySeconds),
        healthCheck: {
          protocol: elbv2.Protocol.HTTP,
          path: '/healthz',
          port: port === brokerPort ? 'traffic-port' : String(brokerPort),
          healthyHttpCodes: '200',
          interval: cdk.Duration.seconds(10),
          timeout: cdk.Duration.seconds(5),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
        },
      });
    this.targetGroup = brokerTargets('BrokerTargets', brokerPort);
    const listener =
      config.listener.protocol === 'TLS'
        ? this.loadBalancer.addListener('Listener', {
            port: 443,
            protocol: elbv2.Protocol.TLS,
            certificates: [elbv2.ListenerCertificate.fromArn(config.listener.certificateArn)],
            sslPolicy: elbv2.SslPolicy.TLS13_12_RES_PQ,
            defaultTargetGroups: [this.targetGroup],
          })
        : this.loadBalancer.addListener('Listener', {
            port: 80,
            protocol: elbv2.Protocol.TCP,
            defaultTargetGroups: [this.targetGroup],
          });
    if (config.listener.protocol === 'TCP') {
      cdk.Annotations.of(listener).addWarningV2(
        'skyrocket:plaintextListener',
        'allowPlaintext=true: clients reach the brokers over plain TCP on port 80, API keys included. Use this for development only; pass certificateArn for TLS.',
      );
    }
    this.endpoint = config.listener.protocol === 'TLS' ? `https://${this.loadBalancer.loadBalancerDnsName}` : `http://${this.loadBalancer.loadBalancerDnsName}`;
    // The wire protocol (core/wire.ts): its own listener and targets, TLS ended at the NLB as for HTTPS.
    this.wireTargetGroup = brokerTargets('BrokerWireTargets', brokerWirePort);
    this.loadBalancer.addListener('WireListener', {
      port: brokerWirePort,
      protocol: config.listener.protocol === 'TLS' ? elbv2.Protocol.TLS : elbv2.Protocol.TCP,
      ...(config.listener.protocol === 'TLS'
        ? { certificates: [elbv2.ListenerCertificate.fromArn(config.listener.certificateArn)], sslPolicy: elbv2.SslPolicy.TLS13_12_RES_PQ }
        : {}),
      defaultTargetGroups: [this.wireTargetGroup],
    });
    this.wireEndpoint = `${config.listener.protocol === 'TLS' ? 'skyrockets' : 'skyrocket'}://${this.loadBalancer.loadBalancerDnsName}:${brokerWirePort}`;

    // ---- One service per broker slot ----------------------------------------------------------
    const services: ecs.FargateService[] = [];
    for (const slot of this.slots) {
      const taskDefinition = new ecs.FargateTaskDefinition(this, `${slot.name}Task`, {
        family: `${names.cluster}-${slot.name}`,
        cpu: config.cpu,
        memoryLimitMiB: config.memoryMiB,
        ephemeralStorageGiB: config.ephemeralStorageGiB,
        runtimePlatform: { operatingSystemFamily: ecs.OperatingSystemFamily.LINUX, cpuArchitecture: ecs.CpuArchitecture.X86_64 },
        taskRole: this.brokerTaskRole,
        executionRole,
        // Both bind mounts live on the task's ephemeral storage; the root filesystem is read-only.
        volumes: [{ name: 'data' }, { name: 'tmp' }],
      });
      const secret = ecs.Secret.fromSecretsManager(internalSecret);
      const broker = taskDefinition.addContainer('broker', {
        image,
        essential: true,
        environment: brokerEnvironment(slot, names, config, this.segmentsBucketName),
        secrets: { SKYROCKET_INTERNAL_SECRET: secret },
        portMappings: [
          { containerPort: brokerPort, name: 'http' },
          { containerPort: brokerWirePort, name: 'wire' },
        ],
        readonlyRootFilesystem: true,
        stopTimeout: cdk.Duration.seconds(brokerStopTimeoutSeconds),
        healthCheck: {
          command: ['CMD', 'node', '-e', healthCheckScript],
          interval: cdk.Duration.seconds(10),
          timeout: cdk.Duration.seconds(5),
          retries: 3,
          startPeriod: cdk.Duration.seconds(brokerStartGraceSeconds),
        },
        logging: ecs.LogDrivers.awsLogs({
          logGroup: brokerLogGroup,
          streamPrefix: slot.name,
          // A full log buffer must not stall the event loop that acks producers.
          mode: ecs.AwsLogDriverMode.NON_BLOCKING,
          maxBufferSize: cdk.Size.mebibytes(25),
        }),
      });
      broker.addMountPoints(
        { sourceVolume: 'data', containerPath: brokerDataDir, readOnly: false },
        { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
      );
      const v = metricsBridgeVariables;
      taskDefinition.addContainer('metrics', {
        image,
        essential: false,
        entryPoint: ['node', '-e', metricsBridgeScript],
        environment: {
          [v.url]: `http://127.0.0.1:${brokerPort}/metrics`,
          [v.intervalMs]: '60000',
          [v.deployment]: config.env,
          [v.brokerGroup]: slot.brokerGroup,
          [v.brokerId]: String(slot.brokerId),
        },
        secrets: { [v.internalSecret]: secret },
        readonlyRootFilesystem: true,
        // Not essential, so ECS would leave it stopped after a crash: restart it in place.
        enableRestartPolicy: true,
        restartAttemptPeriod: cdk.Duration.seconds(60),
        logging: ecs.LogDrivers.awsLogs({ logGroup: metricsLogGroup, streamPrefix: slot.name }),
      });
      acknowledgeNag(
        taskDefinition,
        'AwsSolutions-ECS2',
        'The environment holds the slot identity and non-secret settings (broker id and group, ports, table prefix, bucket name); the one secret, SKYROCKET_INTERNAL_SECRET, comes from Secrets Manager.',
      );

      const service = new ecs.FargateService(this, `${slot.name}Service`, {
        cluster: this.cluster,
        taskDefinition,
        desiredCount: 1,
        // A slot is an identity (broker id, DNS name, zone): never two tasks of it at once.
        minHealthyPercent: 0,
        maxHealthyPercent: 100,
        circuitBreaker: { enable: true, rollback: true },
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED, availabilityZones: [slot.availabilityZone] },
        securityGroups: [brokerSecurityGroup],
        assignPublicIp: false,
        platformVersion: ecs.FargatePlatformVersion.LATEST,
        healthCheckGracePeriod: cdk.Duration.seconds(brokerStartGraceSeconds),
        cloudMapOptions: { name: slot.name, dnsRecordType: servicediscovery.DnsRecordType.A, dnsTtl: cdk.Duration.seconds(10) },
        propagateTags: ecs.PropagatedTagSource.SERVICE,
        enableECSManagedTags: true,
      });
      this.targetGroup.addTarget(service.loadBalancerTarget({ containerName: 'broker', containerPort: brokerPort }));
      this.wireTargetGroup.addTarget(service.loadBalancerTarget({ containerName: 'broker', containerPort: brokerWirePort }));
      services.push(service);
    }
    this.services = services;

    // ---- Scheduled functions ------------------------------------------------------------------
    this.sweeps = new SweepFunctions(this, 'Sweeps', {
      config,
      data,
      vpc: this.vpc,
      brokers: brokerSecurityGroup,
      brokerPort,
      segmentsBucketName: this.segmentsBucketName,
      secretsManagerEndpoint: endpoints.get('SecretsManager')!,
      lambdaEndpoint: endpoints.get('Lambda')!,
    });

    // ---- Alarms and dashboard -----------------------------------------------------------------
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `Skyrocket ${names.cluster} alarms`,
      masterKey: data.key,
      enforceSSL: true,
    });
    if (config.alarmEmail !== undefined) this.alarmTopic.addSubscription(new snsSubscriptions.EmailSubscription(config.alarmEmail));
    const thresholds = props.alarmThresholds ?? {};
    for (const [name, value] of Object.entries(thresholds)) {
      if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
        throw new Error(`ServiceStack: alarmThresholds.${name} must be a positive number, got ${value}`);
      }
    }
    const { alarms, dashboard } = this.#monitoring(config, names, thresholds);
    this.alarms = alarms;
    this.dashboard = dashboard;

    new cdk.CfnOutput(this, 'Endpoint', { value: this.endpoint, description: 'The Skyrocket API endpoint (HTTPS REST)' });
    new cdk.CfnOutput(this, 'WireEndpoint', { value: this.wireEndpoint, description: 'The same API over the wire protocol, for the SDK (lowest latency)' });
    new cdk.CfnOutput(this, 'LoadBalancerDnsName', { value: this.loadBalancer.loadBalancerDnsName });
    new cdk.CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new cdk.CfnOutput(this, 'SubscriptionPath', { value: this.subscriptionPath });

    this.#suppressFindings(executionRole);
  }

  /**
   * The brokers' data permissions, statement by statement, with exact actions and resources.
   * The two statements that must end in a wildcard (object names and parameter names made at
   * run time) each sit alone in a policy of their own, and only those two policies acknowledge
   * cdk-nag's IAM5: a wildcard added anywhere else still fails the synth.
   */
  #grantBrokerData(data: SkyrocketData): void {
    const role = this.brokerTaskRole;
    const bucketArn = `arn:${this.partition}:s3:::${this.segmentsBucketName}`;
    const segmentObjects = `${bucketArn}/${data.names.segmentPrefix}*`;
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'NameServerTables',
        actions: [...nameServerTableActions],
        resources: Object.values(data.tables).map((t) => t.tableArn),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'TieredSegmentListing',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${data.names.segmentPrefix}*`] } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DataKeyThroughDynamoDbAndS3',
        actions: [...dataKeyActions],
        resources: [data.key.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': [`dynamodb.${this.region}.amazonaws.com`, `s3.${this.region}.amazonaws.com`] },
        },
      }),
    );

    const timerBodies = `${bucketArn}/${data.names.timerBodyPrefix}*`;
    const objects = new iam.Policy(this, 'BrokerObjectsPolicy', {
      roles: [role],
      statements: [
        new iam.PolicyStatement({ sid: 'TieredSegmentObjects', actions: [...brokerObjectActions], resources: [segmentObjects] }),
        new iam.PolicyStatement({ sid: 'TimerBodyObjects', actions: [...brokerObjectActions], resources: [timerBodies] }),
      ],
    });
    acknowledgeNag(
      objects,
      wildcardFinding(this, segmentObjects),
      `Tiered segments are objects under this cluster's own prefix ${data.names.segmentPrefix} of the segments bucket, named at run time by their start offsets, so the resource ends in "*".`,
    );
    acknowledgeNag(
      objects,
      wildcardFinding(this, timerBodies),
      `Parked timer bodies are objects under this cluster's prefix ${data.names.timerBodyPrefix} of the segments bucket, named at run time by message id, so the resource ends in "*".`,
    );
    // The dispatcher discovers Lambda consumers (lambda-consumer.ts) under this path.
    const path = this.formatArn({ service: 'ssm', resource: 'parameter', resourceName: this.subscriptionPath.slice(1) });
    const subscriptions = new iam.Policy(this, 'LambdaConsumerSubscriptionsPolicy', {
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          sid: 'LambdaConsumerSubscriptions',
          actions: ['ssm:GetParameter', 'ssm:GetParametersByPath'],
          resources: [path, `${path}/*`],
        }),
      ],
    });
    acknowledgeNag(
      subscriptions,
      wildcardFinding(this, `${path}/*`),
      `Lambda consumer subscriptions are SSM parameters ${this.subscriptionPath}/<group>/<topic>, created by LambdaConsumer constructs after this stack; this policy reads that path and nothing else.`,
    );
  }

  #monitoring(
    config: DeploymentConfig,
    names: DeploymentNames,
    thresholds: AlarmThresholds,
  ): { alarms: cloudwatch.Alarm[]; dashboard: cloudwatch.Dashboard } {
    const m = brokerMetrics;
    const deployment = { [m.dimensions.deployment]: config.env };
    const minute = cdk.Duration.minutes(1);
    const skyrocket = (metricName: string, statistic: string, period = minute): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: m.namespace, metricName, dimensionsMap: deployment, statistic, period });
    const action = new cloudwatchActions.SnsAction(this.alarmTopic);
    const alarms: cloudwatch.Alarm[] = [];
    const alarm = (id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm => {
      const a = new cloudwatch.Alarm(this, id, props);
      a.addAlarmAction(action);
      a.addOkAction(action);
      alarms.push(a);
      return a;
    };

    const unhealthy = this.targetGroup.metrics.unHealthyHostCount({ statistic: 'Maximum', period: minute });
    alarm('UnhealthyTargetsAlarm', {
      alarmDescription: 'A broker task fails the NLB health check (GET /healthz).',
      metric: unhealthy,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const runningTasks = this.services.map(
      (service) =>
        new cloudwatch.Metric({
          namespace: 'ECS/ContainerInsights',
          metricName: 'RunningTaskCount',
          dimensionsMap: { ClusterName: names.cluster, ServiceName: service.serviceName },
          statistic: 'Minimum',
          period: minute,
        }),
    );
    this.slots.forEach((slot, i) => {
      alarm(`${slot.name}TaskAlarm`, {
        alarmDescription: `Broker slot ${slot.name} (broker ${slot.brokerId}, ${slot.brokerGroup}, ${slot.availabilityZone}) has no running task.`,
        metric: runningTasks[i]!,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 3,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    });
    const errorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { errors: skyrocket(m.http5xx, 'Sum'), requests: skyrocket(m.requests, 'Sum') },
      label: '5xx (% of requests)',
      period: minute,
    });
    alarm('Http5xxRateAlarm', {
      alarmDescription: 'Brokers answer more than the threshold percentage of requests with 5xx.',
      metric: errorRate,
      threshold: thresholds.http5xxPercent ?? 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const appendP99 = skyrocket(m.appendLatencyP99, 'Maximum');
    alarm('AppendLatencyAlarm', {
      alarmDescription: 'The p99 append latency (batch to durable) of some broker is above the threshold.',
      metric: appendP99,
      threshold: thresholds.appendLatencyP99Ms ?? 50,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const lagMax = skyrocket(m.consumerLagMax, 'Maximum', cdk.Duration.minutes(5));
    alarm('ConsumerLagAlarm', {
      alarmDescription: 'Some consumer group lags behind by more than the threshold number of messages.',
      metric: lagMax,
      threshold: thresholds.consumerLagMessages ?? 100_000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // Lambda counts Errors (0 or 1) for every invocation, and the rule invokes each sweep every
    // minute: a minute without a data point is a sweep that did not run, which is as bad as one
    // that failed. Three bad minutes of five, so that one slow run (its successor throttled and
    // dropped) or one transient failure does not page anyone.
    for (const sweep of this.sweeps.all) {
      alarm(`${sweep.node.id}Alarm`, {
        alarmDescription: `The sweep function ${sweep.functionName} (run every minute) failed or did not run in 3 of the last 5 minutes; see its log group.`,
        metric: sweep.fn.metricErrors({ statistic: 'Sum', period: minute }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
    }

    const search = (dimensions: string, metricName: string, statistic: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${m.namespace},${dimensions}} MetricName="${metricName}" ${m.dimensions.deployment}="${config.env}"', '${statistic}', 60)`,
        label,
        period: minute,
      });
    const nlb = this.loadBalancer.metrics;
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: names.cluster,
      defaultInterval: cdk.Duration.hours(3),
    });
    dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms, width: 24, height: 4 }));
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Requests and 5xx',
        left: [skyrocket(m.requests, 'Sum'), skyrocket(m.http5xx, 'Sum')],
        right: [errorRate],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Append latency p99 (ms)',
        left: [appendP99, search(`${m.dimensions.deployment},${m.dimensions.brokerGroup}`, m.appendLatencyP99, 'Maximum', '')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Consumer lag (messages)',
        left: [lagMax, search(`${m.dimensions.deployment},${m.dimensions.consumerGroup}`, m.consumerLag, 'Maximum', '')],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Load balancer targets',
        left: [this.targetGroup.metrics.healthyHostCount({ statistic: 'Minimum', period: minute }), unhealthy],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Load balancer flows',
        left: [nlb.activeFlowCount({ period: minute }), nlb.newFlowCount({ period: minute })],
        right: [nlb.tcpElbResetCount({ period: minute }), nlb.tcpTargetResetCount({ period: minute })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Load balancer bytes',
        left: [nlb.processedBytes({ period: minute })],
        width: 8,
      }),
    );
    const ecsSearch = (metricName: string, statistic: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{ECS/ContainerInsights,ClusterName,ServiceName} MetricName="${metricName}" ClusterName="${names.cluster}"', '${statistic}', 60)`,
        label: '',
        period: minute,
      });
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Running tasks per slot', left: runningTasks, width: 8 }),
      new cloudwatch.GraphWidget({ title: 'CPU used (units)', left: [ecsSearch('CpuUtilized', 'Average')], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Memory used (MiB)', left: [ecsSearch('MemoryUtilized', 'Average')], width: 8 }),
    );
    const sweepMetric = (metric: (sweep: SweepFunction) => cloudwatch.Metric): cloudwatch.Metric[] => this.sweeps.all.map(metric);
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Sweep errors',
        left: sweepMetric((sweep) => sweep.fn.metricErrors({ statistic: 'Sum', period: minute, label: sweep.functionName })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Sweep duration (ms, max)',
        left: sweepMetric((sweep) => sweep.fn.metricDuration({ statistic: 'Maximum', period: minute, label: sweep.functionName })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Sweep runs and throttles',
        left: sweepMetric((sweep) => sweep.fn.metricInvocations({ statistic: 'Sum', period: minute, label: `${sweep.functionName} runs` })),
        right: sweepMetric((sweep) => sweep.fn.metricThrottles({ statistic: 'Sum', period: minute, label: `${sweep.functionName} throttled` })),
        width: 8,
      }),
    );
    return { alarms, dashboard };
  }

  #suppressFindings(executionRole: iam.Role): void {
    acknowledgeNag(
      executionRole,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken has no resource-level permissions, so AWS requires Resource "*" for it; the image pull actions themselves are scoped to the asset repository.',
    );
  }
}
