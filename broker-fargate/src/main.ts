/**
 * The broker process: reads its configuration, joins the cluster through the name server, serves
 * the API, and leaves cleanly on SIGTERM (ECS's stop signal) or SIGINT.
 *
 * Flags override environment variables of the same meaning: `--broker-id 1` for
 * SKYROCKET_BROKER_ID, and so on (see `configVariables` in config.ts).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { pino } from 'pino';
import { NameServer, RouteCache, ensureTables } from '../../namesrv/index.ts';
import { Broker } from './broker.ts';
import { ConfigError, configVariables, loadConfig } from './config.ts';
import { NamesrvDirectory } from './namesrv-directory.ts';

function flagsToVariables(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const byFlag = new Map(
    Object.entries(configVariables).map(([key, variable]) => [key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), variable]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'ensure-tables') {
      out['SKYROCKET_ENSURE_TABLES'] = 'true';
      continue;
    }
    const variable = byFlag.get(name);
    if (variable === undefined) throw new ConfigError(`unknown flag --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    out[variable] = value;
  }
  return out;
}

async function main(): Promise<void> {
  let variables: Record<string, string | undefined>;
  let config: ReturnType<typeof loadConfig>;
  try {
    variables = { ...process.env, ...flagsToVariables(process.argv.slice(2)) };
    config = loadConfig(variables);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`skyrocket broker: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ base: { brokerId: config.brokerId, brokerGroup: config.brokerGroup } });
  for (const event of ['corruption', 'truncated', 'truncated-batch', 'append-failed', 'dispatch-stalled', 'checkpoint-failed', 'failed']) {
    diagnosticsChannel.subscribe(`skyrocket:store:${event}`, (payload) => logger.warn({ event, ...(payload as object) }, `store ${event}`));
  }

  const dynamo = new DynamoDBClient({
    region: config.dynamodb.region,
    ...(config.dynamodb.endpoint === undefined ? {} : { endpoint: config.dynamodb.endpoint }),
  });
  if (variables['SKYROCKET_ENSURE_TABLES'] === 'true') await ensureTables(dynamo, config.tablePrefix);
  const nameServer = new NameServer({ client: dynamo, prefix: config.tablePrefix });
  const cache = new RouteCache({ nameServer });
  const brokerId = String(config.brokerId);
  const ttlMs = config.heartbeatIntervalMs * 3;

  // Leadership of the broker group is a lease with an epoch; a replica that cannot get it waits.
  let lease = await nameServer.acquireLease(config.brokerGroup, brokerId, ttlMs);
  while (lease === undefined) {
    logger.warn({ brokerGroup: config.brokerGroup }, 'broker group lease is held by another broker; waiting');
    await new Promise((r) => setTimeout(r, config.heartbeatIntervalMs));
    lease = await nameServer.acquireLease(config.brokerGroup, brokerId, ttlMs);
  }

  const broker = await Broker.start({ config, directory: new NamesrvDirectory(nameServer, cache), logger });
  await nameServer.registerBroker({
    brokerId,
    brokerGroup: config.brokerGroup,
    address: broker.url,
    role: 'LEADER',
    epoch: lease.epoch,
    ttlMs,
  });
  await cache.start();
  const heartbeat = setInterval(() => {
    const current = lease!;
    void (async () => {
      try {
        const renewed = await nameServer.renewLease(current, ttlMs);
        if (renewed === undefined) {
          logger.error({ brokerGroup: config.brokerGroup }, 'lost the broker group lease; stopping');
          await shutdown('lease lost', 1);
          return;
        }
        lease = renewed;
        await nameServer.heartbeat(brokerId, ttlMs);
      } catch (error) {
        logger.warn({ err: error }, 'heartbeat failed');
      }
    })();
  }, config.heartbeatIntervalMs);

  let stopping = false;
  async function shutdown(reason: string, code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'shutting down');
    clearInterval(heartbeat);
    await nameServer.deregisterBroker(brokerId).catch((error: unknown) => logger.warn({ err: error }, 'deregister failed'));
    await broker.stop();
    await nameServer.releaseLease(lease!).catch(() => undefined);
    cache.close();
    dynamo.destroy();
    logger.flush();
    process.exit(code);
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  // A line other processes (skyrocket dev, tests) wait for.
  process.stdout.write(`${JSON.stringify({ msg: 'ready', url: broker.url, brokerId, brokerGroup: config.brokerGroup })}\n`);
}

await main();
