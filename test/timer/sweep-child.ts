/**
 * One delay sweep in a process of its own, for the test that kills it mid-move: after a broker
 * has taken a batch and before the batch is deleted from the index, it reports the ids over IPC
 * and waits to be killed. Argument: JSON of { dynamodb, s3, prefix, secret, horizonMs }.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { dynamoClientConfig, s3ClientConfig, type AwsEndpoint } from '../../namesrv/embedded.ts';
import { NameServer } from '../../namesrv/registry.ts';
import { TimerIndex } from '../../namesrv/timers.ts';
import { DelaySweep, leadersFrom } from '../../lambdas/delay-sweep/sweep.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  dynamodb: AwsEndpoint;
  s3: AwsEndpoint & { bucket: string };
  prefix: string;
  secret: string;
  horizonMs: number;
};
const dynamo = new DynamoDBClient(dynamoClientConfig(args.dynamodb));
const s3 = new S3Client(s3ClientConfig(args.s3));
const sweep = new DelaySweep({
  index: new TimerIndex({ client: dynamo, prefix: args.prefix, s3: { client: s3, bucket: args.s3.bucket } }),
  leaders: leadersFrom(new NameServer({ client: dynamo, prefix: args.prefix })),
  internalSecret: args.secret,
  horizonMs: args.horizonMs,
  afterMove: async (ids) => {
    process.send?.({ moved: ids });
    await new Promise(() => undefined); // killed here
  },
});
const report = await sweep.run();
process.send?.({ report });
process.disconnect();
dynamo.destroy();
s3.destroy();
