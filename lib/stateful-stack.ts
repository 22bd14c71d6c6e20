/**
 * What outlives the brokers: the name server's DynamoDB tables, the S3 bucket of tiered segments,
 * the bucket their access logs go to, the KMS key that encrypts them, and the brokers' internal
 * secret. Tables, buckets and key are RETAINed: `cdk destroy` leaves them (and their data) behind.
 */
import * as cdk from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { tableDefinitions, type TableKind } from '../namesrv/tables.ts';
import { contextKeys } from './context.ts';
import { acknowledgeNag } from './nag.ts';
import { defaultKeyProps, defaultLogsBucketProps, defaultSegmentBucketProps, defaultTableProps } from './defaults.ts';
import { deploymentNames, segmentExpirationDays, segmentsBucketName, timerBodyExpirationDays, type DeploymentNames } from './deployment.ts';

export interface StatefulStackProps extends cdk.StackProps {
  /** The deployment's name (`env` context): tables are `skyrocket-<env>-<suffix>`. */
  readonly deployment: string;
  /**
   * The longest retention of any topic, in hours: the segments bucket's lifecycle rule deletes
   * objects one day after it, as a backstop to the brokers' own retention.
   * @default 72
   */
  readonly retentionHours?: number;
  /**
   * Days S3 server access logs and NLB access logs are kept.
   * @default 90
   */
  readonly accessLogRetentionDays?: number;
}

/** The stateful resources, as the service stack and Lambda functions consume them. */
export interface SkyrocketData {
  readonly names: DeploymentNames;
  readonly key: kms.IKey;
  readonly tables: { readonly [K in TableKind]: dynamodb.ITable };
  readonly segmentsBucket: s3.IBucket;
  readonly logsBucket: s3.IBucket;
  readonly internalSecret: secretsmanager.ISecret;
}

export class StatefulStack extends cdk.Stack implements SkyrocketData {
  readonly names: DeploymentNames;
  readonly key: kms.Key;
  readonly tables: { readonly [K in TableKind]: dynamodb.Table };
  readonly segmentsBucket: s3.Bucket;
  readonly logsBucket: s3.Bucket;
  readonly internalSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    this.names = deploymentNames(props.deployment);
    const retentionHours = props.retentionHours ?? contextKeys.retentionHours.default;
    const accessLogRetentionDays = props.accessLogRetentionDays ?? 90;
    if (!(Number.isSafeInteger(accessLogRetentionDays) && accessLogRetentionDays >= 1)) {
      throw new Error(`StatefulStack: accessLogRetentionDays must be a positive integer, got ${accessLogRetentionDays}`);
    }

    this.key = new kms.Key(this, 'Key', defaultKeyProps(this.names.kmsAlias));
    // CloudWatch alarms publish to the alarm topic, which this key encrypts; the AWS-managed SNS
    // key cannot be used for that, because its policy cannot be given to CloudWatch.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheAlarmTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    const tables: Partial<Record<TableKind, dynamodb.Table>> = {};
    for (const kind of Object.keys(tableDefinitions) as TableKind[]) {
      const table = new dynamodb.Table(this, `${kind[0]!.toUpperCase()}${kind.slice(1)}Table`, defaultTableProps(this.names.tables[kind], tableDefinitions[kind], this.key));
      tables[kind] = table;
    }
    this.tables = tables as Record<TableKind, dynamodb.Table>;

    this.logsBucket = new s3.Bucket(this, 'AccessLogsBucket', defaultLogsBucketProps(accessLogRetentionDays));
    // cdk-nag's S1 (server access logs) accepts this bucket as it stands: it is a log target.
    this.segmentsBucket = new s3.Bucket(this, 'SegmentsBucket', {
      ...defaultSegmentBucketProps(this.key, this.logsBucket, {
        segmentPrefix: this.names.segmentPrefix,
        segmentExpirationDays: segmentExpirationDays(retentionHours),
        timerBodyPrefix: this.names.timerBodyPrefix,
        timerBodyExpirationDays,
      }),
      bucketName: segmentsBucketName(this.names.cluster, this.account, this.region),
    });

    this.internalSecret = new secretsmanager.Secret(this, 'InternalSecret', {
      description: `Skyrocket ${this.names.cluster}: authenticates requests between brokers (SKYROCKET_INTERNAL_SECRET)`,
      encryptionKey: this.key,
      // 48 letters and digits: no characters that need quoting in an HTTP header or a shell.
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      // Nothing persisted is signed with it: a new deployment simply gets a new secret.
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    acknowledgeNag(
      this.internalSecret,
      'AwsSolutions-SMG4',
        'Brokers read the internal secret once at start (ECS injects it), so a rotation Lambda alone would split the cluster into brokers with the old and the new secret; rotate it with a rolling restart of the broker services instead (lib/README-deploy.md).',
    );

    for (const [name, value] of [
      ['KeyArn', this.key.keyArn],
      ['SegmentsBucketName', this.segmentsBucket.bucketName],
      ['TablePrefix', this.names.tablePrefix],
    ] as const) {
      new cdk.CfnOutput(this, name, { value });
    }
  }
}
