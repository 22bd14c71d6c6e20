/**
 * The delay-sweep and txn-check functions as the service stack deploys them: runtime, network,
 * environment, schedule, every IAM statement, logs, alarms; and the bundles esbuild makes of the
 * handlers, run against the DynamoDB and S3 stand-ins.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureTables } from '../../namesrv/tables.ts';
import { TimerIndex } from '../../namesrv/timers.ts';
import type { SweepFunction } from '../../lib/sweep-functions.ts';
import { backends, dynamoClient, uniquePrefix } from '../support/aws.ts';
import { getAtt, logicalId, ref, synthesize, testAccount, testRegion, type SynthesizedApp } from './support.ts';

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[]; DeletionPolicy?: string };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function resources(template: Template, type: string, props: Record<string, unknown> = {}): Resource[] {
  return Object.values(template.findResources(type, props)) as Resource[];
}

/** An import of one of the stateful stack's exports whose name mentions `hint` (a logical id prefix). */
function importOf(hint: string): Record<string, unknown> {
  return { 'Fn::ImportValue': expect.stringMatching(new RegExp(`^Skyrocket-dev-Stateful:ExportsOutput.*${hint}`)) };
}

/** Every statement of every policy attached to `role`, sorted by Sid. */
function roleStatements(template: Template, role: cdk.IResource): Statement[] {
  return resources(template, 'AWS::IAM::Policy', { Properties: { Roles: Match.arrayWith([ref(role)]) } })
    .flatMap((p) => p.Properties['PolicyDocument'].Statement as Statement[])
    .sort((a, b) => (a.Sid ?? '').localeCompare(b.Sid ?? ''));
}

const bucket = `arn:aws:s3:::skyrocket-dev-segments-${testAccount}-${testRegion}`;
const key = importOf('Key.*Arn');
const secret = importOf('RefInternalSecret');
const through = (service: string) => ({ StringEquals: { 'kms:ViaService': `${service}.${testRegion}.amazonaws.com` } });

describe('sweep functions, default context', () => {
  let s: SynthesizedApp;
  let t: Template;
  let delaySweep: SweepFunction;
  let txnCheck: SweepFunction;
  beforeAll(() => {
    s = synthesize();
    t = s.serviceTemplate;
    ({ delaySweep, txnCheck } = s.service.sweeps);
  });

  it('runs both as Node.js 24 ARM64 functions in the brokers\' isolated subnets, one run at a time, with the deployment\'s environment', () => {
    const subnets = s.service.vpc.isolatedSubnets.map((subnet) => ref(subnet));
    expect(subnets).toHaveLength(3);
    const common = {
      SKYROCKET_TABLE_PREFIX: 'skyrocket-dev-',
      SKYROCKET_INTERNAL_SECRET_ARN: secret,
      NODE_OPTIONS: '--enable-source-maps',
    };
    for (const [sweep, name, memory, environment] of [
      [
        delaySweep,
        'skyrocket-dev-delay-sweep',
        512,
        { ...common, SKYROCKET_S3_BUCKET: `skyrocket-dev-segments-${testAccount}-${testRegion}`, SKYROCKET_TIMER_HORIZON_MS: '3600000' },
      ],
      [txnCheck, 'skyrocket-dev-txn-check', 256, common],
    ] as const) {
      const fn = resources(t, 'AWS::Lambda::Function', { Properties: { FunctionName: name } });
      expect(fn).toHaveLength(1);
      expect(fn[0]!.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: memory,
        Timeout: 120,
        ReservedConcurrentExecutions: 1,
        Role: getAtt(sweep.role, 'Arn'),
        LoggingConfig: { LogGroup: ref(sweep.logGroup) },
        VpcConfig: { SubnetIds: subnets, SecurityGroupIds: [getAtt(sweep.fn.connections.securityGroups[0]!, 'GroupId')] },
      });
      // Exactly these variables: the secret's ARN, never the secret.
      expect(fn[0]!.Properties['Environment']).toEqual({ Variables: environment });
      // Lambda checks the role's network-interface permissions when it creates the function.
      expect(fn[0]!.DependsOn).toEqual(expect.arrayContaining([logicalId(sweep.role.node.findChild('DefaultPolicy')), logicalId(sweep.node.findChild('NetworkInterfacesPolicy'))]));
      t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: ref(sweep.fn),
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 60,
      });
    }
    // The one other function is CDK's, which empties the VPC's default security group.
    expect(resources(t, 'AWS::Lambda::Function', { Properties: { VpcConfig: Match.anyValue() } })).toHaveLength(2);
    expect(JSON.stringify(t.toJSON())).not.toContain('{{resolve:secretsmanager');
  });

  it('runs each every minute from a rule of its own, which may invoke that function only', () => {
    const rules = resources(t, 'AWS::Events::Rule');
    expect(rules).toHaveLength(2);
    for (const sweep of [delaySweep, txnCheck]) {
      const rule = resources(t, 'AWS::Events::Rule', { Properties: { Targets: [Match.objectLike({ Arn: getAtt(sweep.fn, 'Arn') })] } });
      expect(rule).toHaveLength(1);
      expect(rule[0]!.Properties).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
      expect(rule[0]!.Properties['Targets']).toEqual([
        { Id: 'Target0', Arn: getAtt(sweep.fn, 'Arn'), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } },
      ]);
      const permissions = resources(t, 'AWS::Lambda::Permission', { Properties: { FunctionName: getAtt(sweep.fn, 'Arn') } });
      expect(permissions.map((p) => p.Properties)).toEqual([
        { Action: 'lambda:InvokeFunction', FunctionName: getAtt(sweep.fn, 'Arn'), Principal: 'events.amazonaws.com', SourceArn: getAtt(sweep.schedule, 'Arn') },
      ]);
    }
  });

  it('lets the delay sweep do exactly what it does: the timer index, the brokers\' registrations, timer bodies, the secret', () => {
    expect(roleStatements(t, delaySweep.role)).toEqual([
      { Sid: 'BrokerRegistry', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: importOf('BrokersTable') },
      { Sid: 'InternalSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secret },
      { Sid: 'InternalSecretKey', Effect: 'Allow', Action: 'kms:Decrypt', Resource: key, Condition: through('secretsmanager') },
      { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(delaySweep.logGroup, 'Arn') },
      {
        Sid: 'TableKeyThroughDynamoDb',
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: key,
        Condition: through('dynamodb'),
      },
      { Sid: 'TimerBodies', Effect: 'Allow', Action: ['s3:DeleteObject', 's3:GetObject'], Resource: `${bucket}/skyrocket-dev-timers/*` },
      { Sid: 'TimerBodyKeyThroughS3', Effect: 'Allow', Action: 'kms:Decrypt', Resource: key, Condition: through('s3') },
      {
        Sid: 'TimerIndex',
        Effect: 'Allow',
        Action: ['dynamodb:BatchWriteItem', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
        Resource: importOf('TimersTable'),
      },
      {
        Sid: 'VpcNetworkInterfaces',
        Effect: 'Allow',
        Action: [
          'ec2:AssignPrivateIpAddresses',
          'ec2:CreateNetworkInterface',
          'ec2:DeleteNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:UnassignPrivateIpAddresses',
        ],
        Resource: '*',
      },
    ]);
  });

  it('lets txn-check do exactly what it does: transactions, producer groups, the brokers\' registrations, checker functions, the secret', () => {
    const statements = roleStatements(t, txnCheck.role);
    expect(statements.map((st) => st.Sid)).toEqual([
      'BrokerRegistry',
      'CheckerFunctions',
      'InternalSecret',
      'InternalSecretKey',
      'Logs',
      'ProducerGroups',
      'TableKeyThroughDynamoDb',
      'Transactions',
      'VpcNetworkInterfaces',
    ]);
    const bySid = new Map(statements.map((st) => [st.Sid, st]));
    expect(bySid.get('Transactions')).toEqual({
      Sid: 'Transactions',
      Effect: 'Allow',
      Action: ['dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
      Resource: importOf('TransactionsTable'),
    });
    expect(bySid.get('ProducerGroups')).toEqual({ Sid: 'ProducerGroups', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: importOf('ProducerGroupsTable') });
    expect(bySid.get('BrokerRegistry')).toEqual({ Sid: 'BrokerRegistry', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: importOf('BrokersTable') });
    // Checker functions by their name prefix, in this account and region only (any version or alias).
    expect(bySid.get('CheckerFunctions')).toEqual({
      Sid: 'CheckerFunctions',
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: `arn:aws:lambda:${testRegion}:${testAccount}:function:skyrocket-dev-checker-*`,
    });
    expect(bySid.get('Logs')!.Resource).toEqual(getAtt(txnCheck.logGroup, 'Arn'));
    expect(bySid.get('TableKeyThroughDynamoDb')!.Condition).toEqual(through('dynamodb'));
    expect(bySid.get('InternalSecretKey')).toMatchObject({ Action: 'kms:Decrypt', Condition: through('secretsmanager') });
    // No S3 at all, and no table but these three.
    const text = JSON.stringify(statements);
    expect(text).not.toContain('s3:');
    expect([...text.matchAll(/ExportsOutputFnGetAtt(\w+?)Table/g)].map((m) => m[1]).sort()).toEqual(['Brokers', 'ProducerGroups', 'Transactions']);
  });

  it('gives each function a role of its own, for Lambda only, without managed policies', () => {
    for (const sweep of [delaySweep, txnCheck]) {
      const role = t.toJSON()['Resources'][logicalId(sweep.role)] as Resource;
      expect(role.Properties['AssumeRolePolicyDocument'].Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      expect(role.Properties['ManagedPolicyArns']).toBeUndefined();
    }
    expect(delaySweep.role).not.toBe(txnCheck.role);
  });

  it('lets each reach the brokers\' port and the endpoints it calls, and nothing reach it', () => {
    const brokerGroup = s.service.brokerSecurityGroup;
    const endpointGroup = (name: string) => getAtt(s.service.node.findChild('Vpc').node.findChild(`${name}Endpoint`).node.findChild('SecurityGroup'), 'GroupId');
    for (const [sweep, endpoints] of [
      [delaySweep, ['SecretsManager']],
      [txnCheck, ['SecretsManager', 'Lambda']],
    ] as const) {
      const group = sweep.fn.connections.securityGroups[0]!;
      const groupId = getAtt(group, 'GroupId');
      const own = t.toJSON()['Resources'][logicalId(group)] as Resource;
      expect(own.Properties['SecurityGroupIngress']).toBeUndefined();
      expect(own.Properties['SecurityGroupEgress']).toEqual([
        { CidrIp: '0.0.0.0/0', Description: 'AWS APIs through the VPC endpoints', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
      ]);
      const egress = resources(t, 'AWS::EC2::SecurityGroupEgress', { Properties: { GroupId: groupId } }).map((r) => [r.Properties['DestinationSecurityGroupId'], r.Properties['FromPort']]);
      expect(egress).toEqual(expect.arrayContaining([[getAtt(brokerGroup, 'GroupId'), 8080], ...endpoints.map((e) => [endpointGroup(e), 443])]));
      expect(egress).toHaveLength(1 + endpoints.length);
      expect(resources(t, 'AWS::EC2::SecurityGroupIngress', { Properties: { SourceSecurityGroupId: groupId } }).map((r) => [r.Properties['GroupId'], r.Properties['FromPort']])).toEqual(
        expect.arrayContaining([[getAtt(brokerGroup, 'GroupId'), 8080], ...endpoints.map((e) => [endpointGroup(e), 443])]),
      );
    }
    expect(delaySweep.fn.connections.securityGroups[0]).not.toBe(txnCheck.fn.connections.securityGroups[0]);
  });

  it('keeps their logs in log groups of their own for the context retention', () => {
    for (const [sweep, name] of [
      [delaySweep, '/skyrocket/dev/delay-sweep'],
      [txnCheck, '/skyrocket/dev/txn-check'],
    ] as const) {
      expect(t.toJSON()['Resources'][logicalId(sweep.logGroup)]).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { LogGroupName: name, RetentionInDays: 30 },
        DeletionPolicy: 'Delete',
      });
    }
    const longer = synthesize({ logRetentionDays: 90 }).serviceTemplate;
    for (const name of ['/skyrocket/dev/delay-sweep', '/skyrocket/dev/txn-check']) longer.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: name, RetentionInDays: 90 });
  });

  it('alarms when a sweep fails or does not run in 3 of 5 minutes, and shows both on the dashboard', () => {
    for (const sweep of [delaySweep, txnCheck]) {
      const alarms = resources(t, 'AWS::CloudWatch::Alarm', { Properties: { Namespace: 'AWS/Lambda', Dimensions: [{ Name: 'FunctionName', Value: ref(sweep.fn) }] } });
      expect(alarms).toHaveLength(1);
      expect(alarms[0]!.Properties).toMatchObject({
        MetricName: 'Errors',
        Statistic: 'Sum',
        Period: 60,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 5,
        DatapointsToAlarm: 3,
        TreatMissingData: 'breaching',
        AlarmActions: [ref(s.service.alarmTopic)],
        OKActions: [ref(s.service.alarmTopic)],
      });
      expect(s.service.alarms.map((a) => a.node.id)).toContain(`${sweep.node.id}Alarm`);
    }
    const body = new Capture();
    t.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
    const text = JSON.stringify(body.asObject());
    for (const label of ['Sweep errors', 'Sweep duration (ms, max)', 'Sweep runs and throttles', 'skyrocket-dev-delay-sweep', 'skyrocket-dev-txn-check', 'Throttles']) {
      expect(text).toContain(label);
    }
  });
});

describe('sweep functions, other contexts', () => {
  it('gives the brokers and the delay sweep the same timer horizon: a third of a short retention', () => {
    const { serviceTemplate: t } = synthesize({ retentionHours: 1 });
    const horizon = { Name: 'SKYROCKET_TIMER_HORIZON_MS', Value: String(20 * 60_000) };
    t.allResourcesProperties('AWS::ECS::TaskDefinition', { ContainerDefinitions: Match.arrayWith([Match.objectLike({ Name: 'broker', Environment: Match.arrayWith([horizon]) })]) });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'skyrocket-dev-delay-sweep',
      Environment: { Variables: Match.objectLike({ SKYROCKET_TIMER_HORIZON_MS: horizon.Value }) },
    });
  });

  it('names functions, log groups and checker prefix after the deployment', () => {
    const { serviceTemplate: t } = synthesize({ env: 'prod' });
    for (const name of ['skyrocket-prod-delay-sweep', 'skyrocket-prod-txn-check']) t.hasResourceProperties('AWS::Lambda::Function', { FunctionName: name });
    for (const name of ['/skyrocket/prod/delay-sweep', '/skyrocket/prod/txn-check']) t.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: name });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [Match.objectLike({ Sid: 'CheckerFunctions', Resource: `arn:aws:lambda:${testRegion}:${testAccount}:function:skyrocket-prod-checker-*` })] },
    });
  });
});

describe('the bundled sweep functions', () => {
  let s: SynthesizedApp;
  const bundles = new Map<string, string>();
  beforeAll(() => {
    // As `cdk synth` does it: esbuild on this machine, no Docker.
    s = synthesize({}, { bundle: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(s.assembly.directory, `${s.service.artifactId}.assets.json`), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging: string } }>;
    };
    for (const sweep of s.service.sweeps.all) {
      const code = (s.serviceTemplate.toJSON()['Resources'][logicalId(sweep.fn)] as Resource).Properties['Code'] as { S3Key: string };
      const asset = manifest.files[code.S3Key.replace(/\.zip$/, '')]!;
      expect(asset.source.packaging).toBe('zip');
      bundles.set(sweep.node.id, path.join(s.assembly.directory, asset.source.path));
    }
  }, 120_000);

  it('is one ES module per function with the AWS SDK inside and its source map', () => {
    for (const dir of bundles.values()) {
      expect(fs.readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);
      const text = fs.readFileSync(path.join(dir, 'index.mjs'), 'utf8');
      // Import statements (at the start of a statement, not inside the SDK's error messages) and
      // import() calls: Node's own modules only.
      const statements = [...text.matchAll(/(?:^|;)\s*import\s*(?:[\w{}\s,*$]+from\s*)?"([^"]+)"/g)].map((m) => m[1]!);
      const calls = [...text.matchAll(/\bimport\("([^"]+)"\)/g)].map((m) => m[1]!);
      expect(statements.length).toBeGreaterThan(0);
      expect([...statements, ...calls].filter((m) => !m.startsWith('node:'))).toEqual([]);
      expect(text).toContain('DynamoDBClient');
      // Small enough to deploy as a zip and to load quickly.
      expect(fs.statSync(path.join(dir, 'index.mjs')).size).toBeLessThan(3 * 1024 * 1024);
    }
  });

  /** Runs `handler({})` of a bundle in a fresh Node process, as Lambda would, and returns its result. */
  async function invoke(bundle: string, env: Record<string, string>): Promise<Record<string, unknown>> {
    const script = "const { handler } = await import(process.argv[1]); const out = await handler({}); process.stdout.write('\\nRESULT ' + JSON.stringify(out) + '\\n');";
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, path.join(bundle, 'index.mjs')], {
      env: { PATH: process.env['PATH'] ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, stdout + stderr).toBeDefined();
    return JSON.parse(line!.slice('RESULT '.length)) as Record<string, unknown>;
  }

  it('runs both handlers against DynamoDB and S3', async () => {
    const { dynamodb, s3 } = backends();
    const prefix = uniquePrefix('sweep-bundle');
    const client = dynamoClient();
    try {
      await ensureTables(client, prefix);
      // One second buckets over a five-second horizon: a few Queries and a watermark update.
      await new TimerIndex({ client, prefix }).ensureLayout({ bucketMs: 1000, shards: 2 });
    } finally {
      client.destroy();
    }
    const aws = {
      AWS_REGION: dynamodb.region,
      AWS_ACCESS_KEY_ID: dynamodb.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: dynamodb.credentials.secretAccessKey,
      SKYROCKET_DYNAMODB_ENDPOINT: dynamodb.endpoint,
      SKYROCKET_TABLE_PREFIX: prefix,
      // The handlers read the secret itself today (see lib/README-deploy.md); the deployment gives
      // them its ARN.
      SKYROCKET_INTERNAL_SECRET: 'sweep-bundle-test-secret-0123456789',
    };
    const delay = await invoke(bundles.get('DelaySweep')!, {
      ...aws,
      SKYROCKET_TIMER_HORIZON_MS: '5000',
      SKYROCKET_S3_BUCKET: s3.bucket,
      SKYROCKET_S3_ENDPOINT: s3.endpoint,
      SKYROCKET_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      SKYROCKET_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    });
    expect(delay).toMatchObject({ found: 0, moved: 0, failed: 0 });
    expect(delay['buckets']).toBeGreaterThan(0);
    expect(delay['watermark']).toEqual(expect.any(Number));
    const txn = await invoke(bundles.get('TxnCheck')!, aws);
    expect(txn).toEqual({ due: 0, checked: 0, committed: 0, rolledBack: 0, checkLimit: 0, unknown: 0, requested: 0, cleaned: 0, deferred: 0 });
  }, 60_000);
});
