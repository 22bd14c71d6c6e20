import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { readU64, writeU64 } from '../store/record.ts';

/**
 * The timer service's snapshot: how far it has read the timer log, and the timers pending in its
 * wheel at that point, so that a restart replays only the timer records written since.
 *
 *  0       4       8               16              24      28
 *  +-------+-------+---------------+---------------+-------+
 *  | magic |version|   nearOffset  |   farOffset   | count |
 *  +-------+-------+---------------+---------------+-------+
 *  28
 *  +-------------------------- count × 28 ----------------------------+
 *  | timerOffset u64 | deliverAt u64 | idBroker u32 | idOffset u64     |
 *  +-----------------------------------------------------------------+
 *  +---------+
 *  | crc32c  |   over every byte before it
 *  +---------+
 *
 * - nearOffset / farOffset: queue offsets of the timer topic's queues 0 and 1 below which every
 *   record has been applied (near) or parked, cancelled or taken into the wheel (far).
 * - timerOffset: commit-log offset of the timer's record; deliverAt: epoch ms.
 * - idBroker / idOffset: a moved timer's id (the UNIQ_KEY it carries) decoded; idOffset all ones
 *   for a direct timer, whose id is that of its own record.
 *
 * Written to a temporary file, synced and renamed, so a crash leaves the old snapshot or the new.
 */
const snapshotMagic = 0x53524b54; // "SRKT"
const snapshotVersion = 1;
const headerBytes = 28;
const entryBytes = 28;

export interface SnapshotEntry {
  timerOffset: number;
  deliverAt: number;
  /** A moved timer's id as (brokerId, offset); undefined for a direct timer. */
  movedId?: { brokerId: number; physicalOffset: number } | undefined;
}

export interface TimerSnapshot {
  nearOffset: number;
  farOffset: number;
  entries: SnapshotEntry[];
}

/** A snapshot to write: the entries may be produced on the fly, `count` of them. */
export interface SnapshotSource {
  nearOffset: number;
  farOffset: number;
  count: number;
  entries: Iterable<SnapshotEntry>;
}

export function encodeSnapshot(s: SnapshotSource | TimerSnapshot): Buffer {
  const count = 'count' in s ? s.count : s.entries.length;
  const buf = Buffer.alloc(headerBytes + count * entryBytes + 4);
  buf.writeUInt32LE(snapshotMagic, 0);
  buf.writeUInt32LE(snapshotVersion, 4);
  writeU64(buf, 8, s.nearOffset);
  writeU64(buf, 16, s.farOffset);
  buf.writeUInt32LE(count, 24);
  let at = headerBytes;
  let written = 0;
  for (const e of s.entries) {
    if (written++ === count) throw new Error(`invariant: snapshot has more than the ${count} entries it counted`);
    writeU64(buf, at, e.timerOffset);
    writeU64(buf, at + 8, e.deliverAt);
    buf.writeUInt32LE(e.movedId?.brokerId ?? 0, at + 16);
    writeU64(buf, at + 20, e.movedId?.physicalOffset ?? -1);
    at += entryBytes;
  }
  if (written !== count) throw new Error(`invariant: snapshot counted ${count} entries but has ${written}`);
  buf.writeUInt32LE(crc32c(buf.subarray(0, at)), at);
  return buf;
}

export type SnapshotDecodeResult = { ok: true; snapshot: TimerSnapshot } | { ok: false; reason: string };

export function decodeSnapshot(buf: Buffer): SnapshotDecodeResult {
  if (buf.length < headerBytes + 4) return { ok: false, reason: `${buf.length} bytes is too short` };
  if (buf.readUInt32LE(0) !== snapshotMagic) return { ok: false, reason: 'bad magic' };
  if (buf.readUInt32LE(4) !== snapshotVersion) return { ok: false, reason: `unknown version ${buf.readUInt32LE(4)}` };
  const count = buf.readUInt32LE(24);
  const end = headerBytes + count * entryBytes;
  if (buf.length !== end + 4) return { ok: false, reason: `${count} entries do not fit ${buf.length} bytes` };
  if (buf.readUInt32LE(end) !== crc32c(buf.subarray(0, end))) return { ok: false, reason: 'CRC32C mismatch' };
  const entries: SnapshotEntry[] = new Array(count);
  let at = headerBytes;
  for (let i = 0; i < count; i++) {
    const idOffset = readU64(buf, at + 20);
    entries[i] = {
      timerOffset: readU64(buf, at),
      deliverAt: readU64(buf, at + 8),
      movedId: idOffset < 0 ? undefined : { brokerId: buf.readUInt32LE(at + 16), physicalOffset: idOffset },
    };
    at += entryBytes;
  }
  return { ok: true, snapshot: { nearOffset: readU64(buf, 8), farOffset: readU64(buf, 16), entries } };
}

/** Reads the snapshot in `dir`; undefined when there is none. A damaged one is an error. */
export function readSnapshot(dir: string): TimerSnapshot | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path.join(dir, 'snapshot'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const decoded = decodeSnapshot(buf);
  if (!decoded.ok) throw new Error(`timer snapshot in ${dir} is damaged: ${decoded.reason}`);
  return decoded.snapshot;
}

/** Writes an encoded snapshot (`encodeSnapshot`) as the snapshot in `dir`, atomically. */
export async function writeSnapshot(dir: string, encoded: Buffer): Promise<void> {
  const file = path.join(dir, 'snapshot');
  const tmp = `${file}.tmp`;
  const handle = await fs.promises.open(tmp, 'w');
  try {
    await handle.writeFile(encoded);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, file);
}
