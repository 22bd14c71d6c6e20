/**
 * The `skyrocket dev` command. Its body (`dev.ts`) is imported only when it runs: it pulls in the
 * AWS SDK and the embedded servers, which every `skyrocket send` would otherwise pay to load.
 *
 * The dynamic import lives here rather than in `bin/skyrocket.ts` because tsx 4.23 fails to parse
 * a file that has both a hashbang line and an `import()` ("Parse error ... transformDynamicImport").
 */
import { Command } from 'commander';
import { defaultDataDir } from './connection.ts';
import { port } from './options.ts';

export function devCommand(): Command {
  return new Command('dev')
    .description('run a local cluster: DynamoDB and S3 stand-ins and two brokers, data on disk (Ctrl-C stops it)')
    .option('--data-dir <dir>', 'where the cluster keeps its data', defaultDataDir())
    .option('--port <n>', "broker 1's port; broker 2 takes the next one (0: free ports)", port, 9876)
    .option('--wire-port <n>', "broker 1's wire-protocol port; broker 2 takes the next one (0: free ports)", port, 10911)
    .option('--dynamodb-port <n>', 'port of the DynamoDB stand-in (default: a free port)', port, 0)
    .option('--s3-port <n>', 'port of the S3 stand-in (default: a free port)', port, 0)
    .option('--functions <dir>', 'folder of Lambda consumer handlers for the local Lambda endpoint (default: lambdas/examples)')
    .option('--example', 'create a topic, a group and a Lambda subscription to the sample consumer (lambdas/examples)')
    .action(async (options: { dataDir: string; port: number; wirePort: number; dynamodbPort: number; s3Port: number; functions?: string; example?: boolean }) => {
      const { runDev } = await import('./dev.ts');
      await runDev(options);
    });
}
