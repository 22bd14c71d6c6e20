import * as cdk from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { LambdaConsumer, lambdaSubscription, type LambdaConsumerProps, type LambdaSubscription } from '../../lib/lambda-consumer.ts';
import { parseLambdaConsumerDocument } from '../../namesrv/lambda-subscription.ts';
import { ref, synthesize, testAccount, testRegion } from './support.ts';

const functionArn = `arn:aws:lambda:${testRegion}:${testAccount}:function:orders-handler`;

/** A stand-in target and function for checking props without a whole deployment. */
function bare(): { stack: cdk.Stack; props: Pick<LambdaConsumerProps, 'target' | 'fn'> } {
  const stack = new cdk.Stack(new cdk.App(), 'Bare', { env: { account: testAccount, region: testRegion } });
  const brokerRole = new iam.Role(stack, 'Brokers', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  const fn = lambda.Function.fromFunctionArn(stack, 'Fn', functionArn);
  return { stack, props: { target: { brokerRole, subscriptionPath: '/skyrocket/dev/lambda-consumers' }, fn } };
}

describe('LambdaConsumer', () => {
  it('records the subscription in SSM and lets the brokers invoke exactly that function', () => {
    const s = synthesize({}, {
      extend: ({ service }) => {
        const fn = lambda.Function.fromFunctionArn(service, 'OrdersHandler', functionArn);
        new LambdaConsumer(service, 'OrdersConsumer', {
          target: service,
          fn,
          group: 'billing',
          topic: 'orders',
          filter: { type: 'TAG', expression: ' created || paid ' },
          batchSize: 50,
          maxConcurrency: 4,
          orderly: true,
        });
      },
    });
    const t = s.serviceTemplate;
    const expected: LambdaSubscription = {
      version: 1,
      group: 'billing',
      topic: 'orders',
      functionArn,
      filter: { type: 'TAG', expression: 'created || paid' },
      batchSize: 50,
      maxConcurrency: 4,
      orderly: true,
    };
    t.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/skyrocket/dev/lambda-consumers/billing/orders',
      Type: 'String',
      Tier: 'Standard',
      Value: JSON.stringify(expected),
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: Match.arrayWith([ref(s.service.brokerTaskRole)]),
      PolicyDocument: {
        Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: functionArn }]),
      },
    });
    // No version or alias wildcard anywhere.
    expect(JSON.stringify(t.toJSON())).not.toContain(`${functionArn}:*`);
  });

  it('takes SQL92 filters, and reads a match-all tag expression as no filter', () => {
    const { props } = bare();
    expect(lambdaSubscription('C', { ...props, group: 'g', topic: 't', filter: { type: 'SQL92', expression: "region = 'eu' AND amount > 100" } }).filter).toEqual({
      type: 'SQL92',
      expression: "region = 'eu' AND amount > 100",
    });
    expect(lambdaSubscription('C', { ...props, group: 'g', topic: 't', filter: { type: 'TAG', expression: ' * ' } }).filter).toBeNull();
  });

  it('writes the document the brokers\' dispatcher reads', () => {
    const { props } = bare();
    const document = lambdaSubscription('C', { ...props, group: 'billing', topic: 'orders', batchSize: 25, orderly: true, filter: { type: 'TAG', expression: 'paid' } });
    expect(parseLambdaConsumerDocument(JSON.stringify(document))).toEqual({
      group: 'billing',
      orderly: true,
      subscription: { topic: 'orders', functionName: functionArn, filter: { type: 'TAG', expression: 'paid' }, batchSize: 25, maxConcurrency: 2, retryDelayMs: null },
    });
  });

  it('applies its defaults: batches of 10, 2 in flight, unordered, every message', () => {
    const { props } = bare();
    expect(lambdaSubscription('C', { ...props, group: 'g', topic: 't' })).toEqual({
      version: 1,
      group: 'g',
      topic: 't',
      functionArn,
      filter: null,
      batchSize: 10,
      maxConcurrency: 2,
      orderly: false,
    });
  });

  it('works from a stack of the user\'s own, and falls back to the function policy for a role it may not change', () => {
    const { stack, props } = bare();
    const imported = iam.Role.fromRoleArn(stack, 'ImportedBrokers', `arn:aws:iam::${testAccount}:role/brokers`, { mutable: false });
    const fn = new lambda.Function(stack, 'Handler', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
    });
    new LambdaConsumer(stack, 'Consumer', { target: { brokerRole: imported, subscriptionPath: props.target.subscriptionPath }, fn, group: 'g', topic: 't' });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: `arn:aws:iam::${testAccount}:role/brokers`,
    });
  });

  it.each<[string, Partial<LambdaConsumerProps>, RegExp]>([
    ['a batch of 0', { batchSize: 0 }, /batchSize must be an integer from 1 to 1000, got 0/],
    ['a batch of 1001', { batchSize: 1001 }, /batchSize must be an integer from 1 to 1000/],
    ['one invocation in flight', { maxConcurrency: 1 }, /maxConcurrency must be an integer from 2 to 1000, got 1/],
    ['a fractional concurrency', { maxConcurrency: 2.5 }, /maxConcurrency/],
    ['an empty group', { group: '' }, /group "" is not a valid group name/],
    ['a group with a space', { group: 'bill ing' }, /not a valid group name/],
    ['a system group', { group: '%DLQ%billing' }, /letters, digits/],
    ['a topic too long', { topic: 't'.repeat(128) }, /not a valid topic name/],
    ['a malformed tag filter', { filter: { type: 'TAG', expression: 'a || ' } }, /filter .*empty or malformed tag/],
    ['a malformed SQL92 filter', { filter: { type: 'SQL92', expression: 'a >' } }, /filter .*SQL92/],
    ['an unknown filter type', { filter: { type: 'JSONPATH' as 'TAG', expression: '$.a' } }, /TAG or SQL92/],
    ['a subscription path that is not one', { target: { brokerRole: new iam.AnyPrincipal(), subscriptionPath: 'skyrocket/dev' } as never }, /SSM path/],
  ])('refuses %s at synth time, naming the construct', (_what, override, message) => {
    const { stack, props } = bare();
    expect(() => new LambdaConsumer(stack, 'Bad', { ...props, group: 'g', topic: 't', ...override })).toThrow(message);
    expect(() => new LambdaConsumer(stack, 'Bad2', { ...props, group: 'g', topic: 't', ...override })).toThrow(/^LambdaConsumer Bad2: /);
  });

  it('refuses a second consumer for the same group and topic', () => {
    const { stack, props } = bare();
    new LambdaConsumer(stack, 'First', { ...props, group: 'g', topic: 't' });
    new LambdaConsumer(stack, 'OtherTopic', { ...props, group: 'g', topic: 'u' });
    expect(() => new LambdaConsumer(stack, 'Second', { ...props, group: 'g', topic: 't' })).toThrow(/group g already has a Lambda consumer for topic t/);
  });
});
