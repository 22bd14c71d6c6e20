#!/usr/bin/env -S node --import tsx
/**
 * The `skyrocket` command line. `npm start` runs `skyrocket dev`.
 *
 *   skyrocket dev                      run the service locally (bin/cli/dev.ts)
 *   skyrocket topic create|list|delete
 *   skyrocket group create|show
 *   skyrocket send <topic> [body]
 *   skyrocket receive <group> --topic <topic>
 *   skyrocket query --id <id> | --topic <topic> --key <key>
 *   skyrocket lag <group>
 *
 * Client commands find the service through `--endpoint`/`--api-key`, else `SKYROCKET_ENDPOINT`/
 * `SKYROCKET_API_KEY`, else the dev cluster's `credentials.json` (bin/cli/connection.ts). They
 * print text for people, or one JSON document with `--json`; errors go to stderr with their code.
 * Exit codes: 0 success, 1 the service refused or could not be reached, 2 a usage error.

 */
import { Command, CommanderError } from 'commander';
import { devCommand } from './cli/dev-command.ts';
import { dlqCommand, groupCommand, lagCommand } from './cli/groups.ts';
import { exitCodes } from './cli/output.ts';
import { queryCommand } from './cli/query.ts';
import { receiveCommand } from './cli/receive.ts';
import { sendCommand } from './cli/send.ts';
import { topicCommand } from './cli/topics.ts';

const program = new Command()
  .name('skyrocket')
  .description('Skyrocket: a managed message queue for AWS with the semantics of Apache RocketMQ');

program.addCommand(devCommand());
program.addCommand(topicCommand());
program.addCommand(groupCommand());
program.addCommand(sendCommand());
program.addCommand(receiveCommand());
program.addCommand(queryCommand());
program.addCommand(lagCommand());
program.addCommand(dlqCommand());

/**
 * Commander's own errors (unknown option, bad value) get the code every other error has, in JSON
 * with --json, and exit 2 (commander's 1 here means the service refused).
 */
const json = process.argv.includes('--json');
function configure(command: Command): void {
  command.exitOverride().configureOutput({
    outputError(text, write) {
      const message = text.replace(/^error: /, '').trim();
      if (json) write(`${JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message, retriable: false } })}\n`);
      else write(`error: INVALID_ARGUMENT: ${message}\n(add --help for usage)\n`);
    },
  });
  for (const sub of command.commands) configure(sub);
}
configure(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
}
