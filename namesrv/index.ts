/** The name server: what brokers, Lambdas, the CLI and the CDK stack may import from it. */
export {
  createTableInput,
  ensureTables,
  tableDefinitions,
  tableNames,
  type EnsureTablesOptions,
  type KeyAttribute,
  type TableDefinition,
  type TableKind,
  type TableNames,
} from './tables.ts';
export {
  authorize,
  generateApiKey,
  hashApiKey,
  isWellFormedApiKey,
  wildcard,
  type Action,
  type Permissions,
  type Principal,
} from './auth.ts';
export {
  brokerRoles,
  consumeModes,
  NameServer,
  resolveRoute,
  type Broker,
  type BrokerRegistration,
  type BrokerRole,
  type ConsumeMode,
  type Group,
  type GroupSpec,
  type GroupUpdate,
  type Lease,
  type NameServerOptions,
  type QueueRoute,
  type Topic,
  type TopicPerm,
  type TopicSpec,
  type TopicUpdate,
} from './registry.ts';
export { RouteCache, routeCacheRefreshChannel, type RouteCacheOptions } from './route-cache.ts';
export {
  dynamoClientConfig,
  ensureBucket,
  hasLegacyCrypto,
  s3ClientConfig,
  startEmbeddedServers,
  type AwsEndpoint,
  type EmbeddedServers,
  type EmbeddedServersOptions,
} from './embedded.ts';
