import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

/**
 * Where sealed commit-log segments live. A sealed segment is immutable: the commit log hands it
 * over once, then only reads ranges of it and finally deletes it. The local-disk implementation
 * keeps the file; the in-memory one holds the bytes (tests); the S3 tier implements the same
 * interface, so the commit log does not change when segments move off the broker's disk.
 */
export interface SealedSegment {
  /** Commit-log offset of the segment's first byte; also its name. */
  baseOffset: number;
  /** Bytes of records in it (the zero-filled tail is not kept). */
  sizeBytes: number;
  /** When its last record was stored, epoch ms; retention compares against it. */
  lastStoredAtMs: number;
}

export interface SegmentStore {
  /** Sealed segments, ascending by base offset. */
  list(): Promise<SealedSegment[]>;
  /**
   * Takes over the local file `localPath` holding the segment's records in its first
   * `sizeBytes` bytes. After it resolves the file may be gone; the segment is durable.
   */
  seal(segment: SealedSegment, localPath: string): Promise<void>;
  /** Reads `length` bytes at `position` inside the segment (fewer at its end). */
  read(baseOffset: number, position: number, length: number): Promise<Buffer>;
  delete(baseOffset: number): Promise<void>;
  close(): Promise<void>;
}

/** Segment files are named by their 20-digit zero-padded base offset, so names sort. */
export function segmentFileName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

export function parseSegmentFileName(name: string): number | undefined {
  if (!/^\d{20}$/.test(name)) return undefined;
  const value = Number(name);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Sealed segments as files in one directory. Sealing truncates the file to its records, syncs
 * it, and renames it into the directory: one atomic step on one file system.
 */
export class LocalSegmentStore implements SegmentStore {
  readonly #dir: string;
  readonly #handles = new Map<number, Promise<fsp.FileHandle>>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  async list(): Promise<SealedSegment[]> {
    await fsp.mkdir(this.#dir, { recursive: true });
    const segments: SealedSegment[] = [];
    for (const name of await fsp.readdir(this.#dir)) {
      const baseOffset = parseSegmentFileName(name);
      if (baseOffset === undefined) continue;
      const stat = await fsp.stat(path.join(this.#dir, name));
      segments.push({ baseOffset, sizeBytes: stat.size, lastStoredAtMs: Math.round(stat.mtimeMs) });
    }
    return segments.sort((a, b) => a.baseOffset - b.baseOffset);
  }

  async seal(segment: SealedSegment, localPath: string): Promise<void> {
    await fsp.mkdir(this.#dir, { recursive: true });
    const handle = await fsp.open(localPath, 'r+');
    try {
      await handle.truncate(segment.sizeBytes);
      const seconds = segment.lastStoredAtMs / 1000;
      await handle.utimes(seconds, seconds);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await fsp.rename(localPath, path.join(this.#dir, segmentFileName(segment.baseOffset)));
    await syncDirectory(this.#dir);
  }

  async read(baseOffset: number, position: number, length: number): Promise<Buffer> {
    let handle = this.#handles.get(baseOffset);
    if (handle === undefined) {
      handle = fsp.open(path.join(this.#dir, segmentFileName(baseOffset)), 'r');
      this.#handles.set(baseOffset, handle);
      handle.catch(() => this.#handles.delete(baseOffset));
    }
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await (await handle).read(buf, 0, length, position);
    return bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }

  async delete(baseOffset: number): Promise<void> {
    const handle = this.#handles.get(baseOffset);
    this.#handles.delete(baseOffset);
    if (handle !== undefined) await (await handle).close().catch(() => undefined);
    await fsp.rm(path.join(this.#dir, segmentFileName(baseOffset)), { force: true });
  }

  async close(): Promise<void> {
    const handles = [...this.#handles.values()];
    this.#handles.clear();
    await Promise.all(handles.map(async (h) => (await h).close().catch(() => undefined)));
  }
}

/** Sealed segments held in memory: the twin used by tests and by the tiering work to come. */
export class InMemorySegmentStore implements SegmentStore {
  readonly #segments = new Map<number, { meta: SealedSegment; bytes: Buffer }>();

  async list(): Promise<SealedSegment[]> {
    return [...this.#segments.values()].map((s) => ({ ...s.meta })).sort((a, b) => a.baseOffset - b.baseOffset);
  }

  async seal(segment: SealedSegment, localPath: string): Promise<void> {
    const handle = await fsp.open(localPath, 'r');
    try {
      const bytes = Buffer.alloc(segment.sizeBytes);
      await handle.read(bytes, 0, segment.sizeBytes, 0);
      this.#segments.set(segment.baseOffset, { meta: { ...segment }, bytes });
    } finally {
      await handle.close();
    }
    await fsp.rm(localPath, { force: true });
  }

  async read(baseOffset: number, position: number, length: number): Promise<Buffer> {
    const segment = this.#segments.get(baseOffset);
    if (segment === undefined) throw new Error(`sealed segment ${segmentFileName(baseOffset)} is not held`);
    return Buffer.from(segment.bytes.subarray(position, Math.min(position + length, segment.bytes.length)));
  }

  async delete(baseOffset: number): Promise<void> {
    this.#segments.delete(baseOffset);
  }

  async close(): Promise<void> {}
}

/** fsync a directory so a rename or create in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
