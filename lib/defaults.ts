/**
 * Secure defaults, as pure functions from a few inputs to construct props (the AWS Solutions
 * Constructs habit): the stacks build from these, and a reader sees every security-relevant
 * setting of a resource in one place.
 */
import * as cdk from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { TableDefinition } from '../namesrv/tables.ts';

const attributeTypes = {
  S: dynamodb.AttributeType.STRING,
  N: dynamodb.AttributeType.NUMBER,
  B: dynamodb.AttributeType.BINARY,
} as const;

/**
 * A name-server table: the key from namesrv's `tableDefinitions`, on-demand billing (the name
 * server's load is a few heartbeats a second, far below what provisioned capacity would pay off),
 * point-in-time recovery, the deployment's KMS key, deletion protection, and RETAIN, because
 * topics, groups, API keys and the tiered-segment manifest live nowhere else.
 */
export function defaultTableProps(tableName: string, definition: TableDefinition, key: kms.IKey): dynamodb.TableProps {
  return {
    tableName,
    partitionKey: { name: definition.partitionKey.name, type: attributeTypes[definition.partitionKey.type] },
    ...(definition.sortKey === undefined ? {} : { sortKey: { name: definition.sortKey.name, type: attributeTypes[definition.sortKey.type] } }),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey: key,
    deletionProtection: true,
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  };
}

/** The bucket every other bucket of the deployment logs to, and where the NLB writes access logs. */
export function defaultLogsBucketProps(expirationDays: number): s3.BucketProps {
  return {
    // S3 server access logs and NLB access logs can only be delivered to SSE-S3 buckets.
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: false,
    lifecycleRules: [{ id: 'expire-logs', expiration: cdk.Duration.days(expirationDays) }],
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  };
}

/** What the brokers keep in the segments bucket, and for how long at most. */
export interface BucketLayout {
  /** Tiered commit-log segments: `<cluster>/<brokerGroup>/...`. */
  readonly segmentPrefix: string;
  readonly segmentExpirationDays: number;
  /** Bodies of far-term timers too large for their DynamoDB item (namesrv/timers.ts). */
  readonly timerBodyPrefix: string;
  readonly timerBodyExpirationDays: number;
}

/**
 * The bucket of tiered segments (and of large parked timer bodies). Versioning stays off:
 * objects are written once under names derived from their offset or message id and deleted by
 * the brokers, and versions would keep deleted data (and its cost) around. An S3 Bucket Key cuts
 * the KMS requests of many small range reads. The lifecycle rules are backstops, one per prefix:
 * segments a day after the longest retention, timer bodies a day after the longest delay.
 */
export function defaultSegmentBucketProps(key: kms.IKey, logsBucket: s3.IBucket, layout: BucketLayout): s3.BucketProps {
  return {
    encryption: s3.BucketEncryption.KMS,
    encryptionKey: key,
    bucketKeyEnabled: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: false,
    serverAccessLogsBucket: logsBucket,
    serverAccessLogsPrefix: 'segments-bucket/',
    lifecycleRules: [
      { id: 'retention-backstop', prefix: layout.segmentPrefix, expiration: cdk.Duration.days(layout.segmentExpirationDays) },
      { id: 'timer-body-backstop', prefix: layout.timerBodyPrefix, expiration: cdk.Duration.days(layout.timerBodyExpirationDays) },
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: cdk.Duration.days(1) },
    ],
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  };
}

/**
 * What DynamoDB and S3 ask of KMS on the caller's behalf for a table or SSE-KMS object under a
 * customer-managed key; granted only with a `kms:ViaService` condition naming those services.
 */
export const dataKeyActions = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'] as const;

/** The deployment's key: yearly rotation, and kept, since retained tables and objects need it. */
export function defaultKeyProps(alias: string): kms.KeyProps {
  return {
    alias,
    description: `Skyrocket ${alias}: name-server tables, tiered segments, internal secret, alarm topic`,
    enableKeyRotation: true,
    pendingWindow: cdk.Duration.days(30),
    removalPolicy: cdk.RemovalPolicy.RETAIN,
  };
}
