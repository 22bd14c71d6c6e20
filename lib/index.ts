/** The CDK constructs and stacks others may import. */
export { defineSkyrocket, type SkyrocketAppOptions, type SkyrocketStacks } from './app.ts';
export { ContextError, contextKeys, parseDeploymentContext, type DeploymentConfig } from './context.ts';
export { brokerSlots, deploymentNames, timerHorizonMs, type BrokerSlot, type DeploymentNames } from './deployment.ts';
export {
  LambdaConsumer,
  lambdaConsumerLimits,
  type LambdaConsumerFilter,
  type LambdaConsumerProps,
  type LambdaConsumerTarget,
  type LambdaSubscription,
} from './lambda-consumer.ts';
export { brokerMetrics } from './metrics-bridge.ts';
export { ServiceStack, type AlarmThresholds, type ServiceStackProps } from './service-stack.ts';
export { SweepFunction, SweepFunctions, sweepLimits, sweepRuntime, type SweepFunctionProps, type SweepFunctionsProps } from './sweep-functions.ts';
export { StatefulStack, type SkyrocketData, type StatefulStackProps } from './stateful-stack.ts';
