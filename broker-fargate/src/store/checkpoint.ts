import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';

/**
 * The checkpoint: how far the derived files (consume queues, key index) are durable. Recovery
 * re-verifies the commit log from `dispatchedOffset` forward and rebuilds what lies past it.
 *
 * On disk it is one line of JSON followed by its CRC32C in hex, replaced atomically (write a
 * temporary file, sync it, rename it over the old one, sync the directory). A checkpoint that does
 * not verify is treated as absent: recovery then starts from the log's first byte, which is slow
 * but loses nothing.
 */
export interface Checkpoint {
  version: 1;
  /** Every record below this offset is reflected in synced consume queues and key index. */
  dispatchedOffset: number;
  /** The commit log was synced up to here when the checkpoint was taken. */
  flushedOffset: number;
  writtenAtMs: number;
}

const fileName = 'checkpoint';

export function readCheckpoint(dir: string): Checkpoint | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, fileName), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const newline = text.indexOf('\n');
  if (newline < 0) return undefined;
  const json = text.slice(0, newline);
  const crc = text.slice(newline + 1).trim();
  if (crc32c(json).toString(16) !== crc) return undefined;
  const parsed = JSON.parse(json) as Checkpoint;
  if (parsed.version !== 1 || !Number.isSafeInteger(parsed.dispatchedOffset)) return undefined;
  return parsed;
}

export function writeCheckpoint(dir: string, checkpoint: Checkpoint): void {
  const json = JSON.stringify(checkpoint);
  const tmp = path.join(dir, `${fileName}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, `${json}\n${crc32c(json).toString(16)}\n`);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, fileName));
  const dirFd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/** As `writeCheckpoint`, with the syncs off the event loop (the periodic checkpoint uses it). */
export async function writeCheckpointAsync(dir: string, checkpoint: Checkpoint): Promise<void> {
  const json = JSON.stringify(checkpoint);
  const tmp = path.join(dir, `${fileName}.tmp`);
  const handle = await fs.promises.open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${json}\n${crc32c(json).toString(16)}\n`);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, path.join(dir, fileName));
  const dirHandle = await fs.promises.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
