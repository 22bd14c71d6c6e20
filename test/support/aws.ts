/**
 * AWS clients for tests, pointed at the stand-ins `global-setup.ts` started. Call these inside
 * test files only: the endpoints come from vitest's `inject`.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { dynamoClientConfig, s3ClientConfig } from '../../namesrv/embedded.ts';
import type { BackendEndpoints } from './backends.ts';

export function backends(): BackendEndpoints {
  return inject('backends');
}

/** A new DynamoDB client; `destroy()` it when done. */
export function dynamoClient(): DynamoDBClient {
  return new DynamoDBClient(dynamoClientConfig(backends().dynamodb));
}

/** A new S3 client; `destroy()` it when done. The test bucket is `backends().s3.bucket`. */
export function s3Client(): S3Client {
  return new S3Client(s3ClientConfig(backends().s3));
}

/**
 * A table prefix no other test uses, so test files share one server without sharing tables
 * (and without deleting them: the temporary directory goes at the end of the run).
 */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(4).toString('hex')}-`;
}
