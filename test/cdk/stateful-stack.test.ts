import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { tableDefinitions, tableNames } from '../../namesrv/tables.ts';
import { getAtt, ref, synthesize, testAccount, testRegion, type SynthesizedApp } from './support.ts';

describe('stateful stack', () => {
  let s: SynthesizedApp;
  beforeAll(() => {
    s = synthesize({ env: 'prod', retentionHours: 100 });
  });

  it('creates exactly the name-server tables of namesrv/tables.ts, with their keys', () => {
    const tables = s.statefulTemplate.findResources('AWS::DynamoDB::Table');
    const expected = tableNames('skyrocket-prod-');
    expect(Object.keys(tables)).toHaveLength(Object.keys(tableDefinitions).length);
    for (const [kind, definition] of Object.entries(tableDefinitions)) {
      // Partition key, and the sort key where the definition has one (the timer index).
      const keys: { name: string; type: string }[] = [definition.partitionKey, ...('sortKey' in definition ? [definition.sortKey] : [])];
      s.statefulTemplate.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: expected[kind as keyof typeof expected],
        KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
        AttributeDefinitions: keys.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
      });
    }
  });

  it('makes every table on-demand, recoverable, encrypted with the deployment key, protected and retained', () => {
    const key = getAtt(s.stateful.key, 'Arn');
    const tables = s.statefulTemplate.findResources('AWS::DynamoDB::Table');
    for (const table of Object.values(tables)) {
      expect(table['DeletionPolicy']).toBe('Retain');
      expect(table['UpdateReplacePolicy']).toBe('Retain');
      expect(table['Properties']).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: key },
        DeletionProtectionEnabled: true,
      });
      expect(table['Properties']).not.toHaveProperty('ProvisionedThroughput');
    }
  });

  it('keeps the KMS key, rotating it yearly, and lets CloudWatch alarms use it for the alarm topic only', () => {
    s.statefulTemplate.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        EnableKeyRotation: true,
        PendingWindowInDays: 30,
        KeyPolicy: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Sid: 'AllowCloudWatchAlarmsToUseTheAlarmTopic',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
              Condition: { StringEquals: { 'aws:SourceAccount': testAccount } },
            }),
          ]),
        },
      }),
    });
    s.statefulTemplate.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/skyrocket-prod', TargetKeyId: getAtt(s.stateful.key, 'Arn') });
  });

  it('encrypts the segments bucket with the key, blocks public access, keeps no versions and logs access', () => {
    s.statefulTemplate.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BucketName: `skyrocket-prod-segments-${testAccount}-${testRegion}`,
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: getAtt(s.stateful.key, 'Arn') } },
          ],
        },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        VersioningConfiguration: Match.absent(),
        LoggingConfiguration: { DestinationBucketName: ref(s.stateful.logsBucket), LogFilePrefix: 'segments-bucket/' },
        LifecycleConfiguration: {
          Rules: [
            // 100 hours of retention: tiered segments go after ceil(100 / 24) + 1 = 6 days;
            { Id: 'retention-backstop', Status: 'Enabled', Prefix: 'skyrocket-prod/', ExpirationInDays: 6 },
            // timer bodies a day after the longest delay (365 days), never with the segments.
            { Id: 'timer-body-backstop', Status: 'Enabled', Prefix: 'skyrocket-prod-timers/', ExpirationInDays: 366 },
            { Id: 'abort-incomplete-uploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
          ],
        },
      }),
    });
  });

  it('denies every request to either bucket that is not over TLS 1.2 or later', () => {
    for (const bucket of [s.stateful.segmentsBucket, s.stateful.logsBucket]) {
      const arns = [getAtt(bucket, 'Arn'), { 'Fn::Join': ['', [getAtt(bucket, 'Arn'), '/*']] }];
      s.statefulTemplate.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: ref(bucket),
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 's3:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Resource: arns,
            },
            {
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 's3:*',
              Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
              Resource: arns,
            },
          ]),
        },
      });
    }
  });

  it('keeps access logs in an SSE-S3 bucket that S3 and the NLB can deliver to, for 90 days', () => {
    s.statefulTemplate.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        LifecycleConfiguration: { Rules: [{ Id: 'expire-logs', Status: 'Enabled', ExpirationInDays: 90 }] },
      }),
    });
    const [policy] = Object.values(s.statefulTemplate.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: ref(s.stateful.logsBucket) } }));
    const writers = (policy!['Properties'].PolicyDocument.Statement as { Effect: string; Action: string; Principal: { Service?: string }; Resource: unknown }[])
      .filter((st) => st.Effect === 'Allow' && st.Action === 's3:PutObject')
      .map((st) => [st.Principal.Service, JSON.stringify(st.Resource)] as const);
    // S3 server access logs of the segments bucket, and the NLB's access logs, each under its prefix.
    expect(writers).toEqual(
      expect.arrayContaining([
        ['logging.s3.amazonaws.com', expect.stringContaining('/segments-bucket/*')],
        ['delivery.logs.amazonaws.com', expect.stringContaining('/nlb/skyrocket-prod/AWSLogs/123456789012/*')],
      ]),
    );
  });

  it('generates the internal secret, encrypted with the key', () => {
    s.statefulTemplate.hasResourceProperties('AWS::SecretsManager::Secret', {
      KmsKeyId: getAtt(s.stateful.key, 'Arn'),
      GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true, IncludeSpace: false },
    });
  });
});
