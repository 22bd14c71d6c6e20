import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as cdk from 'aws-cdk-lib';
import { Annotations, Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { brokerSlots } from '../../lib/deployment.ts';
import { tableDefinitions } from '../../namesrv/tables.ts';
import { brokerMetrics } from '../../lib/metrics-bridge.ts';
import { dataKeyActions } from '../../lib/defaults.ts';
import { brokerObjectActions, nameServerTableActions } from '../../lib/service-stack.ts';
import { getAtt, logicalId, ref, synthesize, testAccount, testCertificateArn, testRegion, type SynthesizedApp } from './support.ts';

type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function resources(template: Template, type: string, props: Record<string, unknown> = {}): Resource[] {
  return Object.values(template.findResources(type, props)) as Resource[];
}

/** An import of one of the stateful stack's exports whose name mentions `hint` (a logical id prefix). */
function importOf(hint: string): Record<string, unknown> {
  return { 'Fn::ImportValue': Match.stringLikeRegexp(`^Skyrocket-dev-Stateful:ExportsOutput.*${hint}`) };
}

/** The statements of every policy attached to `role`. */
function roleStatements(template: Template, role: cdk.IResource): Statement[] {
  return resources(template, 'AWS::IAM::Policy', { Properties: { Roles: Match.arrayWith([ref(role)]) } }).flatMap(
    (p) => p.Properties['PolicyDocument'].Statement as Statement[],
  );
}

describe('service stack, default context (2 groups × 2 replicas)', () => {
  let s: SynthesizedApp;
  let t: Template;
  beforeAll(() => {
    s = synthesize();
    t = s.serviceTemplate;
  });

  it('spreads the VPC over three zones with no NAT gateway, and endpoints for every AWS API the brokers use', () => {
    const subnets = resources(t, 'AWS::EC2::Subnet');
    expect(subnets.map((r) => r.Properties['AvailabilityZone']).sort()).toEqual(
      ['us-east-1a', 'us-east-1a', 'us-east-1b', 'us-east-1b', 'us-east-1c', 'us-east-1c'],
    );
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    for (const service of ['dynamodb', 's3']) {
      t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${service}`]] },
      });
    }
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 2 + 6);
    for (const service of ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager', 'ssm', 'lambda']) {
      t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        ServiceName: `com.amazonaws.${testRegion}.${service}`,
        PrivateDnsEnabled: true,
      });
    }
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'REJECT' });
  });

  it('runs an ECS cluster with Container Insights and a private DNS name per slot', () => {
    t.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterName: 'skyrocket-dev',
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    t.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'skyrocket-dev.internal' });
    const names = resources(t, 'AWS::ServiceDiscovery::Service').map((r) => r.Properties['Name']).sort();
    expect(names).toEqual(['bg1-r1', 'bg1-r2', 'bg2-r1', 'bg2-r2']);
  });

  it('runs one Fargate service per slot: one task, never two, rolled back when a deployment fails', () => {
    const services = resources(t, 'AWS::ECS::Service');
    expect(services).toHaveLength(2 * 2);
    for (const service of services) {
      expect(service.Properties).toMatchObject({
        LaunchType: 'FARGATE',
        DesiredCount: 1,
        DeploymentConfiguration: {
          MinimumHealthyPercent: 0,
          MaximumPercent: 100,
          DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        },
        HealthCheckGracePeriodSeconds: 120,
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
        LoadBalancers: [
          { ContainerName: 'broker', ContainerPort: 8080, TargetGroupArn: ref(s.service.targetGroup) },
          { ContainerName: 'broker', ContainerPort: 10911, TargetGroupArn: ref(s.service.wireTargetGroup) },
        ],
      });
      expect(service.Properties['NetworkConfiguration'].AwsvpcConfiguration.Subnets).toHaveLength(1);
    }
  });

  it('pins the replicas of a broker group to different zones', () => {
    const template = t.toJSON() as { Resources: Record<string, Resource> };
    const zoneOfService = (service: Resource): string => {
      const subnet = service.Properties['NetworkConfiguration'].AwsvpcConfiguration.Subnets[0] as { Ref: string };
      return template.Resources[subnet.Ref]!.Properties['AvailabilityZone'] as string;
    };
    const taskOf = (service: Resource): Resource => template.Resources[(service.Properties['TaskDefinition'] as { Ref: string }).Ref]!;
    const groupOf = (service: Resource): string =>
      (taskOf(service).Properties['ContainerDefinitions'][0].Environment as { Name: string; Value: string }[]).find(
        (e) => e.Name === 'SKYROCKET_BROKER_GROUP',
      )!.Value;
    const zonesByGroup = new Map<string, string[]>();
    for (const service of resources(t, 'AWS::ECS::Service')) {
      zonesByGroup.set(groupOf(service), [...(zonesByGroup.get(groupOf(service)) ?? []), zoneOfService(service)]);
    }
    expect([...zonesByGroup.keys()].sort()).toEqual(['bg-1', 'bg-2']);
    for (const zones of zonesByGroup.values()) expect(new Set(zones).size).toBe(zones.length);
  });

  it('sizes each task from context and gives each broker its slot identity and settings', () => {
    const tasks = resources(t, 'AWS::ECS::TaskDefinition');
    expect(tasks).toHaveLength(4);
    const slots = brokerSlots(2, 2, ['us-east-1a', 'us-east-1b', 'us-east-1c']);
    for (const slot of slots) {
      t.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Family: `skyrocket-dev-${slot.name}`,
        Cpu: '1024',
        Memory: '2048',
        EphemeralStorage: { SizeInGiB: 100 },
        NetworkMode: 'awsvpc',
        RequiresCompatibilities: ['FARGATE'],
        TaskRoleArn: getAtt(s.service.brokerTaskRole, 'Arn'),
        Volumes: [{ Name: 'data' }, { Name: 'tmp' }],
        ContainerDefinitions: Match.arrayWith([
          Match.objectLike({
            Name: 'broker',
            Essential: true,
            ReadonlyRootFilesystem: true,
            StopTimeout: 30,
            PortMappings: [Match.objectLike({ ContainerPort: 8080, Protocol: 'tcp' }), Match.objectLike({ ContainerPort: 10911, Protocol: 'tcp' })],
            MountPoints: [
              { ContainerPath: '/data', ReadOnly: false, SourceVolume: 'data' },
              { ContainerPath: '/tmp', ReadOnly: false, SourceVolume: 'tmp' },
            ],
            Environment: Match.arrayWith([
              { Name: 'SKYROCKET_BROKER_ID', Value: String(slot.brokerId) },
              { Name: 'SKYROCKET_BROKER_GROUP', Value: slot.brokerGroup },
              { Name: 'SKYROCKET_DATA_DIR', Value: '/data' },
              { Name: 'SKYROCKET_HOST', Value: '0.0.0.0' },
              { Name: 'SKYROCKET_PORT', Value: '8080' },
              { Name: 'SKYROCKET_WIRE_PORT', Value: '10911' },
              { Name: 'SKYROCKET_ADVERTISED_URL', Value: `http://${slot.name}.skyrocket-dev.internal:8080` },
              { Name: 'SKYROCKET_FLUSH_MODE', Value: 'sync' },
              { Name: 'SKYROCKET_RETENTION_MS', Value: String(72 * 3_600_000) },
              { Name: 'SKYROCKET_TABLE_PREFIX', Value: 'skyrocket-dev-' },
              { Name: 'SKYROCKET_TIMER_HORIZON_MS', Value: '3600000' },
              { Name: 'AWS_REGION', Value: testRegion },
              { Name: 'SKYROCKET_S3_BUCKET', Value: `skyrocket-dev-segments-${testAccount}-${testRegion}` },
              { Name: 'SKYROCKET_SUBSCRIPTION_PATH', Value: '/skyrocket/dev/lambda-consumers' },
            ]),
            Secrets: [{ Name: 'SKYROCKET_INTERNAL_SECRET', ValueFrom: importOf('InternalSecret') }],
            HealthCheck: {
              Command: ['CMD', 'node', '-e', Match.stringLikeRegexp("fetch\\('http://127\\.0\\.0\\.1:8080/healthz'\\)")],
              Interval: 10,
              Timeout: 5,
              Retries: 3,
              StartPeriod: 120,
            },
            LogConfiguration: {
              LogDriver: 'awslogs',
              Options: Match.objectLike({ 'awslogs-stream-prefix': slot.name, mode: 'non-blocking' }),
            },
          }),
          Match.objectLike({
            Name: 'metrics',
            Essential: false,
            ReadonlyRootFilesystem: true,
            EntryPoint: ['node', '-e', Match.stringLikeRegexp('skyrocket_append_seconds_bucket')],
            Secrets: [{ Name: 'SKYROCKET_INTERNAL_SECRET', ValueFrom: importOf('InternalSecret') }],
            Environment: Match.arrayWith([
              { Name: 'SKYROCKET_DEPLOYMENT', Value: 'dev' },
              { Name: 'SKYROCKET_BROKER_GROUP', Value: slot.brokerGroup },
              { Name: 'SKYROCKET_BROKER_ID', Value: String(slot.brokerId) },
            ]),
          }),
        ]),
      });
    }
    // The image is the broker-fargate/Dockerfile asset, the same for every task.
    const images = new Set(tasks.flatMap((task) => (task.Properties['ContainerDefinitions'] as { Image: unknown }[]).map((c) => JSON.stringify(c.Image))));
    expect(images.size).toBe(1);
    const manifest = JSON.parse(fs.readFileSync(path.join(s.assembly.directory, `${s.service.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string; dockerFile: string; platform: string } }>;
    };
    const [image] = Object.values(manifest.dockerImages);
    expect(Object.keys(manifest.dockerImages)).toHaveLength(1);
    expect(image!.source).toMatchObject({ dockerFile: 'broker-fargate/Dockerfile', platform: 'linux/amd64' });
  });

  it('builds the image from a context with only what the broker needs (.dockerignore)', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(s.assembly.directory, `${s.service.artifactId}.assets.json`), 'utf8')) as {
      dockerImages: Record<string, { source: { directory: string } }>;
    };
    const context = path.join(s.assembly.directory, Object.values(manifest.dockerImages)[0]!.source.directory);
    const files = fs.readdirSync(context, { recursive: true, encoding: 'utf8' }).map((f) => f.split(path.sep).join('/'));
    expect(fs.readdirSync(context).sort()).toEqual(['.dockerignore', 'broker-fargate', 'core', 'namesrv', 'package-lock.json', 'package.json']);
    expect(files).toContain('broker-fargate/Dockerfile');
    expect(files).toContain('broker-fargate/src/main.ts');
    expect(files.filter((f) => f.endsWith('.test.ts') || f.includes('node_modules') || f.includes('fixtures'))).toEqual([]);
  });

  it('keeps broker logs for the context retention and outlives the stack', () => {
    t.hasResource('AWS::Logs::LogGroup', {
      DeletionPolicy: 'Retain',
      Properties: { LogGroupName: '/skyrocket/dev/brokers', RetentionInDays: 30, Tags: Match.anyValue() },
    });
    t.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/skyrocket/dev/metrics', RetentionInDays: 7 });
    for (const task of resources(t, 'AWS::ECS::TaskDefinition')) {
      const broker = (task.Properties['ContainerDefinitions'] as { Name: string; LogConfiguration: { Options: Record<string, unknown> } }[]).find(
        (c) => c.Name === 'broker',
      )!;
      expect(broker.LogConfiguration.Options['awslogs-group']).toEqual(ref(s.service.brokerLogGroup));
    }
  });

  it('ends TLS at the NLB on 443 with the context certificate and forwards to the brokers\' HTTP port', () => {
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internet-facing',
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
        { Key: 'access_logs.s3.enabled', Value: 'true' },
      ]),
    });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 2);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'TLS',
      Certificates: [{ CertificateArn: testCertificateArn }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: ref(s.service.targetGroup) }],
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8080,
      Protocol: 'TCP',
      TargetType: 'ip',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPath: '/healthz',
      HealthCheckPort: 'traffic-port',
      Matcher: { HttpCode: '200' },
      TargetGroupAttributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }],
    });
    // The wire protocol: TLS ended at the NLB on 10911 too, to the brokers' wire port, healthy
    // when the same broker's HTTP side is.
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 10911,
      Protocol: 'TLS',
      Certificates: [{ CertificateArn: testCertificateArn }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09',
      DefaultActions: [{ Type: 'forward', TargetGroupArn: ref(s.service.wireTargetGroup) }],
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 10911,
      Protocol: 'TCP',
      TargetType: 'ip',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPath: '/healthz',
      HealthCheckPort: '8080',
    });
    t.hasOutput('WireEndpoint', { Value: { 'Fn::Join': ['', ['skyrockets://', Match.anyValue(), ':10911']] } });
  });

  it('lets only allowedCidrs reach the NLB, and only the NLB, other brokers and the sweeps reach a broker', () => {
    const nlbGroup = s.service.loadBalancer.connections.securityGroups[0]!;
    const ingress = new Capture();
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { SecurityGroups: [getAtt(nlbGroup, 'GroupId')] });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', { GroupDescription: Match.stringLikeRegexp('NLB'), SecurityGroupIngress: ingress });
    expect(ingress.asArray()).toEqual([
      expect.objectContaining({ CidrIp: '10.0.0.0/8', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
      expect.objectContaining({ CidrIp: '10.0.0.0/8', FromPort: 10911, ToPort: 10911, IpProtocol: 'tcp' }),
      expect.objectContaining({ CidrIp: '203.0.113.0/24', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
      expect.objectContaining({ CidrIp: '203.0.113.0/24', FromPort: 10911, ToPort: 10911, IpProtocol: 'tcp' }),
    ]);
    // Nothing in the stack is open to the world.
    for (const group of resources(t, 'AWS::EC2::SecurityGroup')) {
      for (const rule of (group.Properties['SecurityGroupIngress'] ?? []) as { CidrIp?: string }[]) expect(rule.CidrIp).not.toBe('0.0.0.0/0');
    }
    const brokerGroupId = getAtt(s.service.services[0]!.connections.securityGroups[0]!, 'GroupId');
    const toBrokers = resources(t, 'AWS::EC2::SecurityGroupIngress', { Properties: { GroupId: brokerGroupId } });
    const sweepGroupIds = s.service.sweeps.all.map((sweep) => getAtt(sweep.fn.connections.securityGroups[0]!, 'GroupId'));
    expect(toBrokers.map((r) => [r.Properties['SourceSecurityGroupId'], r.Properties['FromPort'], r.Properties['ToPort']])).toEqual(
      expect.arrayContaining([
        [getAtt(nlbGroup, 'GroupId'), 8080, 8080],
        [getAtt(nlbGroup, 'GroupId'), 10911, 10911],
        [brokerGroupId, 8080, 8080],
        ...sweepGroupIds.map((id) => [id, 8080, 8080]),
      ]),
    );
    expect(toBrokers).toHaveLength(3 + 2);
    const brokerGroup = resources(t, 'AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('brokers') } })[0]!;
    expect(brokerGroup.Properties['SecurityGroupIngress']).toBeUndefined();
  });

  it('lets the task role do exactly what the brokers do: table items, their segment prefix, the key through DynamoDB and S3', () => {
    const statements = roleStatements(t, s.service.brokerTaskRole);
    const bySid = new Map(statements.map((st) => [st.Sid, st]));
    expect([...bySid.keys()].sort()).toEqual([
      'DataKeyThroughDynamoDbAndS3',
      'LambdaConsumerSubscriptions',
      'NameServerTables',
      'TieredSegmentListing',
      'TieredSegmentObjects',
      'TimerBodyObjects',
    ]);
    // Every table of namesrv's tableDefinitions, and nothing else.
    const tables = Object.values(s.stateful.tables).map((table) => ({
      'Fn::ImportValue': expect.stringMatching(new RegExp(`^Skyrocket-dev-Stateful:ExportsOutputFnGetAtt${logicalId(table)}Arn`)),
    }));
    expect(Object.keys(s.stateful.tables).sort()).toEqual(Object.keys(tableDefinitions).sort());
    expect(bySid.get('NameServerTables')).toEqual({
      Sid: 'NameServerTables',
      Effect: 'Allow',
      Action: [...nameServerTableActions],
      Resource: expect.arrayContaining(tables),
    });
    expect(bySid.get('NameServerTables')!.Resource).toHaveLength(tables.length);
    const bucket = `arn:aws:s3:::skyrocket-dev-segments-${testAccount}-${testRegion}`;
    expect(bySid.get('TieredSegmentObjects')).toEqual({
      Sid: 'TieredSegmentObjects',
      Effect: 'Allow',
      Action: [...brokerObjectActions],
      Resource: `${bucket}/skyrocket-dev/*`,
    });
    expect(bySid.get('TimerBodyObjects')).toEqual({
      Sid: 'TimerBodyObjects',
      Effect: 'Allow',
      Action: [...brokerObjectActions],
      Resource: `${bucket}/skyrocket-dev-timers/*`,
    });
    expect(bySid.get('TieredSegmentListing')).toEqual({
      Sid: 'TieredSegmentListing',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: bucket,
      Condition: { StringLike: { 's3:prefix': ['skyrocket-dev/*'] } },
    });
    expect(bySid.get('DataKeyThroughDynamoDbAndS3')).toEqual({
      Sid: 'DataKeyThroughDynamoDbAndS3',
      Effect: 'Allow',
      Action: [...dataKeyActions],
      Resource: { 'Fn::ImportValue': expect.stringMatching(/^Skyrocket-dev-Stateful:ExportsOutputFnGetAttKey.*Arn/) },
      Condition: { StringEquals: { 'kms:ViaService': [`dynamodb.${testRegion}.amazonaws.com`, `s3.${testRegion}.amazonaws.com`] } },
    });
    const parameters = `arn:aws:ssm:${testRegion}:${testAccount}:parameter/skyrocket/dev/lambda-consumers`;
    expect(bySid.get('LambdaConsumerSubscriptions')).toEqual({
      Sid: 'LambdaConsumerSubscriptions',
      Effect: 'Allow',
      Action: ['ssm:GetParameter', 'ssm:GetParametersByPath'],
      Resource: [parameters, `${parameters}/*`],
    });
    // The segments bucket in the policy is the one the stateful stack creates.
    s.statefulTemplate.hasResourceProperties('AWS::S3::Bucket', { BucketName: `skyrocket-dev-segments-${testAccount}-${testRegion}` });
  });

  it('lets only ECS tasks of this account assume the roles', () => {
    for (const role of resources(t, 'AWS::IAM::Role', { Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' } })] } } })) {
      expect(role.Properties['AssumeRolePolicyDocument'].Statement[0].Condition).toEqual({
        StringEquals: { 'aws:SourceAccount': testAccount },
        ArnLike: { 'aws:SourceArn': `arn:aws:ecs:${testRegion}:${testAccount}:*` },
      });
    }
  });

  it('lets the execution role read the internal secret, decrypting it only through Secrets Manager', () => {
    const executionRole = s.service.node.findChild('BrokerExecutionRole') as iam.Role;
    const statements = roleStatements(t, executionRole);
    expect(statements).toEqual(
      expect.arrayContaining([
        {
          Effect: 'Allow',
          Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
          Resource: { 'Fn::ImportValue': expect.stringMatching(/InternalSecret/) },
        },
        {
          Sid: 'InternalSecretKey',
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: { 'Fn::ImportValue': expect.stringMatching(/Key.*Arn/) },
          Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${testRegion}.amazonaws.com` } },
        },
      ]),
    );
  });

  it('alarms on unhealthy targets, each slot without a task, 5xx rate, append p99 and consumer lag, to the alarm topic', () => {
    const alarms = resources(t, 'AWS::CloudWatch::Alarm');
    // 4 deployment alarms, 1 per slot, 1 per sweep function (sweep-functions.test.ts).
    expect(alarms).toHaveLength(4 + 4 + 2);
    for (const alarm of alarms) {
      expect(alarm.Properties['AlarmActions']).toEqual([ref(s.service.alarmTopic)]);
      expect(alarm.Properties['OKActions']).toEqual([ref(s.service.alarmTopic)]);
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/NetworkELB',
      MetricName: 'UnHealthyHostCount',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(resources(t, 'AWS::CloudWatch::Alarm', { Properties: { Namespace: 'ECS/ContainerInsights', MetricName: 'RunningTaskCount' } })).toHaveLength(4);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: brokerMetrics.namespace,
      MetricName: brokerMetrics.appendLatencyP99,
      Dimensions: [{ Name: 'Deployment', Value: 'dev' }],
      Statistic: 'Maximum',
      Threshold: 50,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: brokerMetrics.namespace,
      MetricName: brokerMetrics.consumerLagMax,
      Threshold: 100_000,
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'IF(requests > 0, 100 * errors / requests, 0)' }),
        Match.objectLike({ Id: 'errors', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: brokerMetrics.http5xx }) }) }),
      ]),
      Threshold: 1,
    });
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: importOf('Key') });
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    const body = new Capture();
    t.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'skyrocket-dev', DashboardBody: body });
    const text = JSON.stringify(body.asObject());
    for (const metric of [brokerMetrics.appendLatencyP99, brokerMetrics.consumerLag, brokerMetrics.http5xx, 'UnHealthyHostCount', 'RunningTaskCount']) {
      expect(text).toContain(metric);
    }
  });

  it('exposes the endpoint and what a Lambda consumer needs', () => {
    t.hasOutput('Endpoint', { Value: { 'Fn::Join': ['', ['https://', getAtt(s.service.loadBalancer, 'DNSName')]] } });
    expect(s.service.subscriptionPath).toBe('/skyrocket/dev/lambda-consumers');
    expect(s.service.brokerRole).toBe(s.service.brokerTaskRole);
  });
});

describe('service stack, other contexts', () => {
  it.each([
    [1, 1],
    [3, 3],
    [6, 2],
  ])('runs %i groups × %i replicas as that many services, task definitions and alarms', (groups, replicas) => {
    const { serviceTemplate: t } = synthesize({ brokerGroups: groups, replicas, cpu: 4096, memoryMiB: 8192, ephemeralStorageGiB: 200 });
    t.resourceCountIs('AWS::ECS::Service', groups * replicas);
    t.resourceCountIs('AWS::ECS::TaskDefinition', groups * replicas);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 4 + groups * replicas + 2);
    t.allResourcesProperties('AWS::ECS::TaskDefinition', { Cpu: '4096', Memory: '8192', EphemeralStorage: { SizeInGiB: 200 } });
  });

  it('serves plain TCP on port 80 when allowPlaintext is chosen, and warns about it', () => {
    const s = synthesize({ certificateArn: undefined, allowPlaintext: true });
    const t = s.serviceTemplate;
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'TCP', Certificates: Match.absent() });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('NLB'),
      SecurityGroupIngress: Match.arrayWith([Match.objectLike({ FromPort: 80, ToPort: 80 })]),
    });
    Annotations.fromStack(s.service).hasWarning('*', Match.stringLikeRegexp('allowPlaintext=true'));
    t.hasOutput('Endpoint', { Value: { 'Fn::Join': ['', ['http://', Match.anyValue()]] } });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 10911, Protocol: 'TCP', Certificates: Match.absent() });
    t.hasOutput('WireEndpoint', { Value: { 'Fn::Join': ['', ['skyrocket://', Match.anyValue(), ':10911']] } });
  });

  it('puts an internal NLB in the private subnets, without public subnets or an internet gateway', () => {
    const t = synthesize({ internal: true }).serviceTemplate;
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.resourceCountIs('AWS::EC2::Subnet', 3);
    t.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
  });

  it('opens the NLB to everyone only when allowedCidrs says 0.0.0.0/0, with the finding acknowledged', () => {
    const t = synthesize({ allowedCidrs: '0.0.0.0/0' }).serviceTemplate;
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('NLB'),
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 443 }), Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 10911 })],
    });
  });

  it('subscribes the alarm email when one is given', () => {
    synthesize({ alarmEmail: 'oncall@example.com' }).serviceTemplate.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  it('stays within CloudFormation\'s limits at the largest size the context allows', () => {
    const s = synthesize({ brokerGroups: 16, replicas: 3 });
    const template = s.serviceTemplate.toJSON() as { Resources: Record<string, unknown> };
    expect(Object.keys(template.Resources).length).toBeLessThan(500);
    expect(JSON.stringify(template).length).toBeLessThan(1_000_000);
  });

  it('refuses an alarm threshold that is not a positive number', async () => {
    const { ServiceStack } = await import('../../lib/service-stack.ts');
    const base = synthesize();
    expect(
      () =>
        new ServiceStack(base.app, 'Again', {
          env: { account: testAccount, region: testRegion },
          config: base.config,
          data: base.stateful,
          alarmThresholds: { appendLatencyP99Ms: -5 },
        }),
    ).toThrow('ServiceStack: alarmThresholds.appendLatencyP99Ms must be a positive number, got -5');
  });
});
