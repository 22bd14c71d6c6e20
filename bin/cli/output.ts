/**
 * How commands speak: human text on stdout by default, one JSON document on stdout with `--json`,
 * errors on stderr as `error: CODE: message` (or the API's JSON error body with `--json`), and
 * progress bars on stderr when it is a terminal.
 *
 * Exit codes: 0 success, 1 an operating error (the service refused or could not be reached),
 * 2 a usage error (bad flags, no endpoint or key).
 */
import { isUtf8 } from 'node:buffer';
import cliProgress from 'cli-progress';
import { ReceivedMessage, SkyrocketError, isSkyrocketError, type Message } from '../../client/index.ts';

export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

/** A CLI-side usage error (INVALID_ARGUMENT), found before anything was sent. */
export class UsageError extends SkyrocketError {
  constructor(message: string, field?: string) {
    super('INVALID_ARGUMENT', message, field === undefined ? {} : { field });
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Left-aligned columns separated by two spaces; the header is printed as given. */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const row of cells) {
    printLine(
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    );
  }
}

/**
 * Prints an error and returns the exit code: a UsageError (found before any request was sent) is
 * a usage error; everything else is an operating error.
 */
export function reportError(error: unknown, json: boolean): number {
  const e = isSkyrocketError(error) ? error : new SkyrocketError('INTERNAL_ERROR', (error as Error)?.message ?? String(error), { cause: error });
  if (json) {
    process.stderr.write(`${JSON.stringify(e.toJSON())}\n`);
  } else {
    const field = e.field === undefined ? '' : ` (field ${e.field})`;
    process.stderr.write(`error: ${e.code}: ${e.message}${field}\n`);
  }
  return error instanceof UsageError ? exitCodes.usage : exitCodes.failed;
}

/** Runs a command's body, reporting any error and setting the exit code. */
export async function runCommand(json: boolean, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    process.exitCode = reportError(error, json);
  }
}


export interface Progress {
  increment(by: number): void;
  stop(): void;
}

/** A progress bar on stderr; draws nothing unless stderr is a terminal. */
export function progressBar(label: string, total: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted} | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      gracefulExit: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return {
    increment: (by) => bar.increment(by),
    stop: () => bar.stop(),
  };
}

/** `1234` -> `1.2 s`; under a second in milliseconds. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A message in `--json` output: the REST API's own JSON form (body as text when it is UTF-8,
 * else base64, with `bodyEncoding` saying which), plus `receiptHandle` for a received message.
 */
export function messageJson(m: Message): Record<string, unknown> {
  const utf8 = isUtf8(m.body);
  const out: Record<string, unknown> = {
    messageId: m.messageId,
    topic: m.topic,
    body: m.body.toString(utf8 ? 'utf8' : 'base64'),
    bodyEncoding: utf8 ? 'utf8' : 'base64',
    tag: m.tag ?? null,
    keys: m.keys,
    properties: m.properties,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    bornAt: m.bornAt,
    storedAt: m.storedAt,
    deliveryAttempt: m.deliveryAttempt,
  };
  if (m.messageGroup !== undefined) out['messageGroup'] = m.messageGroup;
  if (m instanceof ReceivedMessage) out['receiptHandle'] = m.receiptHandle;
  return out;
}

/** A body for one line of a terminal: control characters escaped, long bodies cut, binary summarised. */
export function displayBody(body: Buffer, maxChars = 200): string {
  if (!isUtf8(body)) return `<${body.length} bytes, not UTF-8>`;
  // Only control characters are escaped (as in JSON): quotes and the rest print as they are.
  const escaped = body.toString('utf8').replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => JSON.stringify(c).slice(1, -1));
  return escaped.length > maxChars ? `${escaped.slice(0, maxChars)}…` : escaped;
}
