/**
 * `<dataDir>/credentials.json`: how to reach the local cluster that `skyrocket dev` runs. Written
 * by `dev` (mode 0600: it holds an admin key), read by every other command when neither a flag
 * nor an environment variable names the endpoint and key.
 *
 *   { "endpoint": "http://127.0.0.1:9876", "apiKey": "sk_...",
 *     "brokers": [{ "brokerId": 1, "brokerGroup": "bg-1", "url": "...", "pid": 1234 }, ...],
 *     "dynamodb": "http://127.0.0.1:...", "s3": "http://127.0.0.1:...", "bucket": "skyrocket-dev" }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DevBroker {
  brokerId: number;
  brokerGroup: string;
  url: string;
  /** The broker's wire-protocol endpoint (`skyrocket://host:port`), for the lowest latency. */
  wireUrl?: string | undefined;
  /** Process id of the broker while the dev cluster runs. */
  pid: number;
}

export interface DevCredentials {
  endpoint: string;
  apiKey: string;
  brokers: DevBroker[];
  dynamodb: string;
  s3: string;
  bucket: string;
}

export const credentialsFileName = 'credentials.json';

export function credentialsPath(dataDir: string): string {
  return path.resolve(dataDir, credentialsFileName);
}

/** The credentials of the dev cluster in `dataDir`, or undefined when it has never run there. */
export function readCredentials(dataDir: string): DevCredentials | undefined {
  let text: string;
  try {
    text = fs.readFileSync(credentialsPath(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const value = JSON.parse(text) as Partial<DevCredentials>;
  if (typeof value.endpoint !== 'string' || typeof value.apiKey !== 'string') {
    throw new Error(`${credentialsPath(dataDir)} has no endpoint or apiKey`);
  }
  return value as DevCredentials;
}

/**
 * Writes the file whole or not at all (temporary file, then rename), readable by the owner only.
 * `mode` applies only when a file is created, so an existing file is chmod-ed as well.
 */
export function writeCredentials(dataDir: string, credentials: DevCredentials): string {
  const file = credentialsPath(dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(temporary, 0o600);
  fs.renameSync(temporary, file);
  return file;
}
