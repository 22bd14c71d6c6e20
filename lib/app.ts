/**
 * The Skyrocket CDK app: reads and checks the context, creates the stateful and service stacks,
 * and runs cdk-nag's AwsSolutions rules over everything. `bin/cdk.ts` calls this; so do the tests,
 * so what they check is what `cdk deploy` deploys.
 */
import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseDeploymentContext, type CliEnvironment, type DeploymentConfig } from './context.ts';
import { deploymentNames } from './deployment.ts';
import { ServiceStack } from './service-stack.ts';
import { StatefulStack } from './stateful-stack.ts';

export interface SkyrocketStacks {
  readonly config: DeploymentConfig;
  readonly stateful: StatefulStack;
  readonly service: ServiceStack;
}

/** What the app takes besides context: the parts that are code, not strings. */
export interface SkyrocketAppOptions {
  /** The CLI's environment (`CDK_DEFAULT_ACCOUNT`, `CDK_DEFAULT_REGION`); context overrides it. */
  readonly cli?: CliEnvironment;
  /** @default the repository root */
  readonly imageDirectory?: string;
}

/**
 * Adds a deployment to `app`.
 * @throws ContextError for bad context, naming the key.
 */
export function defineSkyrocket(app: cdk.App, options: SkyrocketAppOptions = {}): SkyrocketStacks {
  const config = parseDeploymentContext((key) => app.node.tryGetContext(key), options.cli ?? {});
  const names = deploymentNames(config.env);
  const env: cdk.Environment = config.account === undefined ? { region: config.region } : { account: config.account, region: config.region };
  const stateful = new StatefulStack(app, names.statefulStack, {
    env,
    deployment: config.env,
    retentionHours: config.retentionHours,
    description: `Skyrocket ${names.cluster}: name-server tables, tiered-segment bucket, KMS key, internal secret (retained)`,
  });
  const service = new ServiceStack(app, names.serviceStack, {
    env,
    config,
    data: stateful,
    ...(options.imageDirectory === undefined ? {} : { imageDirectory: options.imageDirectory }),
    description: `Skyrocket ${names.cluster}: VPC, ECS Fargate brokers, NLB, sweep functions, dashboard and alarms`,
  });
  cdk.Tags.of(app).add('skyrocket:deployment', config.env);
  // cdk-nag 3 is a policy-validation plugin: any unacknowledged finding stops the synth.
  cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { config, stateful, service };
}
