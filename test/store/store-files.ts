/**
 * Helpers for the store's fault tests: find the bytes of a record on disk by its commit-log
 * offset, damage them, put back an older checkpoint, and take a "crash snapshot" of a store that
 * is still open (a copy of its files as a SIGKILL at that moment would leave them).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MessageStore, type MessageStoreOptions } from '../../broker-fargate/src/store/message-store.ts';
import type { RecordInput } from '../../broker-fargate/src/store/record.ts';

export const smallStore = {
  brokerId: 5,
  storeHost: '10.0.0.5:10911',
  segmentSizeBytes: 64 * 1024,
  maxGroupBytes: 16 * 1024,
  consumeQueueEntriesPerFile: 1024,
  indexSlotCount: 64,
  indexMaxEntries: 256,
  retentionCheckIntervalMs: 0,
  // Checkpoints happen only where a test asks for one, so it knows what recovery starts from.
  checkpointIntervalMs: 3_600_000,
} as const satisfies Omit<MessageStoreOptions, 'dataDir'>;

export class TempDirs {
  readonly #dirs: string[] = [];

  make(prefix = 'skyrocket-fault-'): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  removeAll(): void {
    for (const dir of this.#dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export class OpenStores {
  readonly #stores = new Set<MessageStore>();
  readonly #defaults: Partial<MessageStoreOptions>;

  /** `defaults` apply to every store this opens, over `smallStore`. */
  constructor(defaults: Partial<MessageStoreOptions> = {}) {
    this.#defaults = defaults;
  }

  async open(dataDir: string, extra: Partial<MessageStoreOptions> = {}): Promise<MessageStore> {
    const store = await MessageStore.open({ dataDir, ...smallStore, ...this.#defaults, ...extra });
    this.#stores.add(store);
    return store;
  }

  async close(store: MessageStore): Promise<void> {
    this.#stores.delete(store);
    await store.close();
  }

  async closeAll(): Promise<void> {
    for (const store of [...this.#stores]) await this.close(store);
  }
}

export function message(topic: string, queueId: number, n: number, extra: Partial<RecordInput> = {}): RecordInput {
  return {
    topic,
    queueId,
    body: Buffer.from(`body ${n} `.padEnd(60 + (n % 50), String.fromCharCode(0x61 + (n % 26)))),
    keys: [`key-${n}`],
    tag: n % 2 === 0 ? 'even' : 'odd',
    bornTimestamp: 1_700_000_000_000 + n,
    bornHost: '10.0.0.77:4000',
    ...extra,
  };
}

interface SegmentFile {
  baseOffset: number;
  file: string;
  sizeBytes: number;
}

/** Commit-log segment files, local and sealed, ascending. */
export function segmentFiles(dataDir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const sub of ['commitlog', 'sealed']) {
    const dir = path.join(dataDir, sub);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir)) {
      if (!/^\d{20}$/.test(name)) continue;
      const file = path.join(dir, name);
      out.push({ baseOffset: Number(name), file, sizeBytes: fs.statSync(file).size });
    }
  }
  return out.sort((a, b) => a.baseOffset - b.baseOffset);
}

/** The file holding commit-log offset `offset`, and where in it. */
export function locate(dataDir: string, offset: number): { file: string; position: number; segment: SegmentFile } {
  const segment = segmentFiles(dataDir).findLast((s) => s.baseOffset <= offset);
  if (segment === undefined || offset - segment.baseOffset >= segment.sizeBytes) {
    throw new Error(`no segment file holds offset ${offset}`);
  }
  return { file: segment.file, position: offset - segment.baseOffset, segment };
}

export function readAt(dataDir: string, offset: number, length: number): Buffer {
  const { file, position } = locate(dataDir, offset);
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const got = fs.readSync(fd, buf, 0, length, position);
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeAt(dataDir: string, offset: number, bytes: Uint8Array): void {
  const { file, position } = locate(dataDir, offset);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The record's totalSize field, read from disk. */
export function recordSizeAt(dataDir: string, offset: number): number {
  return readAt(dataDir, offset, 4).readUInt32LE(0);
}

export function flipBit(dataDir: string, offset: number, bit: number): void {
  const byte = readAt(dataDir, offset, 1);
  byte[0]! ^= 1 << bit;
  writeAt(dataDir, offset, byte);
}

export function readCheckpointFile(dataDir: string): Buffer {
  return fs.readFileSync(path.join(dataDir, 'checkpoint'));
}

export function writeCheckpointFile(dataDir: string, bytes: Buffer): void {
  fs.writeFileSync(path.join(dataDir, 'checkpoint'), bytes);
}

/**
 * Copies the files of an open, idle store: what a SIGKILL now would leave on disk (the page
 * cache survives a killed process), including what the store holds only in memory not being there.
 */
export function crashSnapshot(dataDir: string, into: string): string {
  fs.cpSync(dataDir, into, { recursive: true });
  return into;
}
