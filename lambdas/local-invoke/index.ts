/** A local Lambda Invoke endpoint for handlers in the repository (`skyrocket dev`, tests). */
export {
  FolderFunctions,
  InlineFunctions,
  type FunctionSource,
  type LocalContext,
  type LocalFunction,
  type LocalHandler,
} from './function-source.ts';
export { functionNameOf, localLambdaDefaults, LocalLambdaServer, type InvocationStats, type LocalLambdaOptions } from './local-lambda.ts';
