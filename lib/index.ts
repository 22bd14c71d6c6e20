/** The CDK constructs and stacks others may import. */
export { defineSkyrocket, type SkyrocketAppOptions, type SkyrocketStacks } from './app.ts';
export { ContextError, contextKeys, parseDeploymentContext, type DeploymentConfig } from './context.ts';
export { brokerSlots, deploymentNames, type BrokerSlot, type DeploymentNames } from './deployment.ts';
export {
  LambdaConsumer,
  lambdaConsumerLimits,
  type LambdaConsumerFilter,
  type LambdaConsumerProps,
  type LambdaConsumerTarget,
  type LambdaSubscription,
} from './lambda-consumer.ts';
export { brokerMetrics } from './metrics-bridge.ts';
export { ServiceStack, type AlarmThresholds, type ServiceStackProps, type SweepFunctions } from './service-stack.ts';
export { StatefulStack, type SkyrocketData, type StatefulStackProps } from './stateful-stack.ts';
