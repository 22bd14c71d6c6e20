/**
 * `LambdaConsumer`: makes a user's Lambda function the consumer of one topic for one consumer
 * group. The brokers' dispatcher (DESIGN.md, "Lambda consumers") invokes it with batches.
 *
 * The subscription is recorded as an SSM parameter under the deployment's subscription path,
 * `/skyrocket/<env>/lambda-consumers/<group>/<topic>`, holding the JSON document described by
 * `LambdaSubscription`. Why SSM, and not a custom resource that writes into the groups table:
 *
 * - It is plain CloudFormation: it synthesizes offline, deploys without a provider Lambda, and
 *   `cdk destroy` of the stack that holds the construct removes the subscription with it.
 * - The groups table's items are owned by the name server, which updates them with version
 *   numbers and conditional writes; a second writer outside it would have to reimplement that.
 * - The dispatcher finds every subscription with one `GetParametersByPath`, which the service
 *   stack already allows the brokers (`subscriptionPath`).
 *
 * A CfnOutput would record nothing the brokers could read. The broker's dispatcher reads these
 * documents (`parseLambdaConsumerDocument` in namesrv/lambda-subscription.ts) next to the
 * subscriptions made through the REST API, which live on the groups table.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { validateGroupName, validateTopicName } from '../core/validate.ts';
import { checkSubscriptionFilter } from '../namesrv/lambda-subscription.ts';

/** Where a deployment's brokers are; the service stack is one. */
export interface LambdaConsumerTarget {
  /** The principal the brokers run as: it is allowed to invoke the function. */
  readonly brokerRole: iam.IGrantable;
  /** The SSM path the brokers read subscriptions from, e.g. `/skyrocket/prod/lambda-consumers`. */
  readonly subscriptionPath: string;
}

/** A message filter, in the same shape as the receive API's `filter`. */
export interface LambdaConsumerFilter {
  /** `TAG`: a tag expression (`a || b`, `*`); `SQL92`: RocketMQ's SQL92 subset over properties. */
  readonly type: 'TAG' | 'SQL92';
  readonly expression: string;
}

export interface LambdaConsumerProps {
  /** The deployment whose brokers invoke the function: pass the service stack. */
  readonly target: LambdaConsumerTarget;
  /** The function that handles batches. Only this function (unqualified) may be invoked. */
  readonly fn: lambda.IFunction;
  /** The consumer group the function consumes as. */
  readonly group: string;
  /** The topic it consumes. */
  readonly topic: string;
  /**
   * Which messages of the topic it gets.
   * @default every message
   */
  readonly filter?: LambdaConsumerFilter;
  /**
   * Most messages in one invocation.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Most invocations in flight at once for this subscription (2 to 1000, as SQS event sources).
   * @default 2
   */
  readonly maxConcurrency?: number;
  /**
   * Whether delivery is ordered: one batch in flight per message group, and a failing message
   * blocks its message group until it succeeds or is dead-lettered.
   * @default false
   */
  readonly orderly?: boolean;
}

/** The document stored in the subscription parameter. `version` changes when its shape does. */
export interface LambdaSubscription {
  readonly version: 1;
  readonly group: string;
  readonly topic: string;
  readonly functionArn: string;
  readonly filter: LambdaConsumerFilter | null;
  readonly batchSize: number;
  readonly maxConcurrency: number;
  readonly orderly: boolean;
}

export const lambdaConsumerLimits = {
  batchSizeDefault: 10,
  batchSizeMin: 1,
  batchSizeMax: 1000,
  maxConcurrencyDefault: 2,
  maxConcurrencyMin: 2,
  maxConcurrencyMax: 1000,
} as const;

// SSM parameter names allow [a-zA-Z0-9_.-/]; RocketMQ names also allow % and |, which only
// system topics and groups (%RETRY%, %DLQ%) use.
const parameterSafeName = /^[a-zA-Z0-9_-]+$/;

function integerInRange(construct: string, name: string, value: number, min: number, max: number): number {
  if (!Token.isUnresolved(value) && !(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw new Error(`${construct}: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function checkedName(construct: string, kind: 'group' | 'topic', name: string): string {
  if (Token.isUnresolved(name)) throw new Error(`${construct}: ${kind} must be a literal name, not a token`);
  try {
    if (kind === 'group') validateGroupName(name);
    else validateTopicName(name);
  } catch (error) {
    throw new Error(`${construct}: ${kind} ${JSON.stringify(name)} is not a valid ${kind} name: ${(error as Error).message}`);
  }
  if (!parameterSafeName.test(name)) {
    throw new Error(`${construct}: ${kind} ${JSON.stringify(name)} may only use letters, digits, "_" and "-" for a Lambda consumer ("%" and "|" are for system ${kind}s)`);
  }
  return name;
}

/** Checks the props and returns the subscription document (pure; the construct's first step). */
export function lambdaSubscription(id: string, props: LambdaConsumerProps): LambdaSubscription {
  const where = `LambdaConsumer ${id}`;
  const group = checkedName(where, 'group', props.group);
  const topic = checkedName(where, 'topic', props.topic);
  const l = lambdaConsumerLimits;
  const batchSize = integerInRange(where, 'batchSize', props.batchSize ?? l.batchSizeDefault, l.batchSizeMin, l.batchSizeMax);
  const maxConcurrency = integerInRange(
    where,
    'maxConcurrency',
    props.maxConcurrency ?? l.maxConcurrencyDefault,
    l.maxConcurrencyMin,
    l.maxConcurrencyMax,
  );
  // Checked by the same code the brokers' dispatcher reads the document with
  // (namesrv/lambda-subscription.ts); a match-all tag expression becomes null.
  let filter: LambdaConsumerFilter | null = null;
  if (props.filter !== undefined) {
    try {
      filter = checkSubscriptionFilter(props.filter);
    } catch (error) {
      throw new Error(`${where}: filter ${JSON.stringify(props.filter)}: ${(error as Error).message}`);
    }
  }
  const subscriptionPath = props.target.subscriptionPath;
  if (!Token.isUnresolved(subscriptionPath) && !/^(\/[a-zA-Z0-9_.-]+)+$/.test(subscriptionPath)) {
    throw new Error(`${where}: target.subscriptionPath must be an SSM path like /skyrocket/prod/lambda-consumers, got ${JSON.stringify(subscriptionPath)}`);
  }
  return {
    version: 1,
    group,
    topic,
    functionArn: props.fn.functionArn,
    filter,
    batchSize,
    maxConcurrency,
    orderly: props.orderly ?? false,
  };
}

export class LambdaConsumer extends Construct {
  /** The SSM parameter that records the subscription. */
  readonly parameter: ssm.StringParameter;
  readonly subscription: LambdaSubscription;

  constructor(scope: Construct, id: string, props: LambdaConsumerProps) {
    super(scope, id);
    this.subscription = lambdaSubscription(id, props);
    const { group, topic } = this.subscription;

    // Two constructs for one (group, topic) would fight over one parameter at deploy time; say
    // so at synth instead. The marker lives on the stack, where both would meet.
    const stack = Stack.of(this);
    const markerId = `SkyrocketLambdaConsumer:${group}:${topic}`;
    if (stack.node.tryFindChild(markerId) !== undefined) {
      throw new Error(`LambdaConsumer ${id}: group ${group} already has a Lambda consumer for topic ${topic} in stack ${stack.stackName}`);
    }
    new Construct(stack, markerId);

    this.parameter = new ssm.StringParameter(this, 'Subscription', {
      parameterName: `${props.target.subscriptionPath}/${group}/${topic}`,
      description: `Skyrocket Lambda consumer: group ${group}, topic ${topic}`,
      stringValue: Stack.of(this).toJsonString(this.subscription),
      tier: ssm.ParameterTier.STANDARD,
    });

    // Exactly this function, unqualified: no versions, aliases or other functions. A role this
    // app creates (the service stack's) gets it in its own policy; an imported role, which CDK
    // must not or cannot change, through the function's resource policy instead.
    const brokers = props.target.brokerRole.grantPrincipal;
    if (iam.principalIsOwnedResource(brokers)) {
      iam.Grant.addToPrincipal({ grantee: props.target.brokerRole, actions: ['lambda:InvokeFunction'], resourceArns: [props.fn.functionArn], scope: this });
    } else {
      props.fn.addPermission(`SkyrocketBrokers-${group}-${topic}`, { principal: brokers, action: 'lambda:InvokeFunction' });
    }
  }
}
