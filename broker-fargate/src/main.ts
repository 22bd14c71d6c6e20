/**
 * The broker process: reads its configuration, joins the cluster through the name server, serves
 * the API, and leaves cleanly on SIGTERM (ECS's stop signal) or SIGINT.
 *
 * Flags override environment variables of the same meaning: `--broker-id 1` for
 * SKYROCKET_BROKER_ID, and so on (see `configVariables` in config.ts).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import * as http from 'node:http';
import * as https from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { SkyrocketError } from '../../core/errors.ts';
import { NameServer, RouteCache, TransactionTables, ensureTables } from '../../namesrv/index.ts';
import { Broker } from './broker.ts';
import { ConfigError, configVariables, loadConfig } from './config.ts';
import { NamesrvDirectory } from './namesrv-directory.ts';
import { TimerIndex } from '../../namesrv/timers.ts';
import { loadDispatchConfig, type DispatchConfig } from './dispatch/index.ts';

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

/** A replica without the lease: healthy, but not serving. */
async function startStandby(config: ReturnType<typeof loadConfig>): Promise<http.Server> {
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const standbyHealth = req.method === 'GET' && (req.url === '/healthz' || req.url?.startsWith('/healthz?'));
    const body = standbyHealth
      ? JSON.stringify({ status: 'standby', brokerId: config.brokerId, brokerGroup: config.brokerGroup })
      : JSON.stringify(new SkyrocketError('NOT_LEADER', 'this broker is a standby; send to the broker group leader').toJSON());
    res.writeHead(standbyHealth ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server = config.tls ? https.createServer({ cert: config.tls.cert, key: config.tls.key }, answer) : http.createServer(answer);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  return server;
}

async function main(): Promise<void> {
  let variables: Record<string, string | undefined>;
  let config: ReturnType<typeof loadConfig>;
  let dispatch: DispatchConfig;
  try {
    variables = { ...process.env, ...flagsToVariables(process.argv.slice(2)) };
    config = loadConfig(variables);
    dispatch = loadDispatchConfig(variables);
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
  // While it waits it answers health checks as a standby (so ECS and the load balancer keep it),
  // and refuses everything else with NOT_LEADER.
  let lease = await nameServer.acquireLease(config.brokerGroup, brokerId, ttlMs);
  if (lease === undefined) {
    const standby = await startStandby(config);
    while (lease === undefined) {
      logger.warn({ brokerGroup: config.brokerGroup }, 'broker group lease is held by another broker; standing by');
      await new Promise((r) => setTimeout(r, config.heartbeatIntervalMs));
      lease = await nameServer.acquireLease(config.brokerGroup, brokerId, ttlMs);
    }
    await new Promise<void>((resolve) => standby.close(() => resolve()));
    standby.closeAllConnections();
  }

  const transactionRegistry = new TransactionTables({ client: dynamo, prefix: config.tablePrefix });
  // Far delayed messages are parked in DynamoDB, with bodies too large for an item in S3.
  const s3 =
    config.s3 === undefined
      ? undefined
      : new S3Client({
          region: config.dynamodb.region,
          ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint, forcePathStyle: true }),
          ...(config.s3.credentials === undefined ? {} : { credentials: config.s3.credentials }),
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        });
  const timerIndex = new TimerIndex({ client: dynamo, prefix: config.tablePrefix, s3: s3 === undefined ? undefined : { client: s3, bucket: config.s3!.bucket } });
  const broker = await Broker.start({ config, directory: new NamesrvDirectory(nameServer, cache), transactionRegistry, logger, dispatch, timerIndex });
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
  const wireUrl = broker.wirePort === undefined ? undefined : `skyrocket://${config.host}:${broker.wirePort}`;
  process.stdout.write(`${JSON.stringify({ msg: 'ready', url: broker.url, wireUrl, brokerId, brokerGroup: config.brokerGroup })}\n`);
}

await main();
