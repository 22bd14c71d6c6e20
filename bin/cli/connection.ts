/**
 * Where a command sends its requests and with which key. Each of the two is taken from the first
 * source that has it:
 *
 *   1. the flag (`--endpoint`, `--api-key`)
 *   2. the environment (`SKYROCKET_ENDPOINT`, `SKYROCKET_API_KEY`)
 *   3. `<data dir>/credentials.json`, written by `skyrocket dev` (`--data-dir`, default `.skyrocket`)
 */
import { Command } from 'commander';
import { SkyrocketClient, type ClientOptions } from '../../client/index.ts';
import { credentialsPath, readCredentials } from './credentials.ts';
import { UsageError } from './output.ts';

export interface ConnectionOptions {
  endpoint?: string;
  apiKey?: string;
  dataDir: string;
  json: boolean;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['SKYROCKET_DATA_DIR'] || '.skyrocket';
}

/** Adds the connection and output options every client command takes. */
export function withConnection(command: Command): Command {
  return command
    .option('--endpoint <url>', 'broker URL (else $SKYROCKET_ENDPOINT, else the dev cluster)')
    .option('--api-key <key>', 'API key (else $SKYROCKET_API_KEY, else the dev cluster)')
    .option('--data-dir <dir>', 'data dir of the dev cluster, for its credentials.json', defaultDataDir())
    .option('--json', 'print JSON for scripts', false);
}

/** A client of the SDK for the endpoint and key the options, environment or dev cluster name. */
export function connect(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): SkyrocketClient {
  return new SkyrocketClient(clientOptions(options, env));
}

export function clientOptions(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): ClientOptions {
  let endpoint = options.endpoint || env['SKYROCKET_ENDPOINT'] || undefined;
  let apiKey = options.apiKey || env['SKYROCKET_API_KEY'] || undefined;
  if (endpoint === undefined || apiKey === undefined) {
    let dev;
    try {
      dev = readCredentials(options.dataDir);
    } catch (error) {
      throw new UsageError(`cannot read ${credentialsPath(options.dataDir)}: ${(error as Error).message}`);
    }
    if (dev === undefined) {
      throw new UsageError(
        `no ${endpoint === undefined ? 'endpoint' : 'API key'}: pass ${endpoint === undefined ? '--endpoint' : '--api-key'}, ` +
          `set ${endpoint === undefined ? 'SKYROCKET_ENDPOINT' : 'SKYROCKET_API_KEY'}, or start a local cluster with ` +
          `\`skyrocket dev\` (looked for ${credentialsPath(options.dataDir)})`,
      );
    }
    endpoint ??= dev.endpoint;
    apiKey ??= dev.apiKey;
  }
  if (!/^https?:\/\/[^\s/]+/.test(endpoint)) {
    throw new UsageError(`endpoint ${JSON.stringify(endpoint)} must be an http:// or https:// URL`, 'endpoint');
  }
  return { endpoint, apiKey };
}
