import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StoredMessage } from '../../../core/message.ts';
import type { MessageStore } from '../store/index.ts';
import { deadLetterTopic, dlqOriginTopicProperty } from './consumer-groups.ts';

/**
 * The dead letters of each consumer group on this broker: the messages in `%DLQ%<group>` (queue 0)
 * not yet redriven. Redriving everything moves a cursor past them; redriving single messages
 * remembers their offsets. Both are kept in one small file, replaced atomically.
 */
export interface DeadLetter {
  message: StoredMessage;
  /** The topic the message was consumed from. */
  originTopic: string;
  /** Its offset in the dead-letter queue on this broker. */
  dlqOffset: number;
}

interface GroupState {
  cursor: number;
  redriven: Set<number>;
}

export class DeadLetters {
  readonly #store: MessageStore;
  readonly #file: string;
  readonly #groups = new Map<string, GroupState>();

  constructor(store: MessageStore, dataDir: string) {
    this.#store = store;
    fs.mkdirSync(dataDir, { recursive: true });
    this.#file = path.join(dataDir, 'dead-letters.json');
    try {
      const saved = JSON.parse(fs.readFileSync(this.#file, 'utf8')) as Record<string, { cursor: number; redriven: number[] }>;
      for (const [group, st] of Object.entries(saved)) this.#groups.set(group, { cursor: st.cursor, redriven: new Set(st.redriven) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  #state(group: string): GroupState {
    let st = this.#groups.get(group);
    if (st === undefined) {
      st = { cursor: 0, redriven: new Set() };
      this.#groups.set(group, st);
    }
    return st;
  }

  /** Dead letters of `group` not yet redriven, oldest first, at most `max`. */
  async list(group: string, max: number): Promise<DeadLetter[]> {
    const st = this.#state(group);
    const out: DeadLetter[] = [];
    let offset = st.cursor;
    while (out.length < max) {
      const read = await this.#store.read(deadLetterTopic(group), 0, offset, { maxMessages: Math.min(256, max - out.length + st.redriven.size) });
      for (const message of read.messages) {
        if (st.redriven.has(message.queueOffset)) continue;
        const { [dlqOriginTopicProperty]: originTopic, ...properties } = message.properties;
        out.push({ message: { ...message, properties }, originTopic: originTopic ?? '', dlqOffset: message.queueOffset });
        if (out.length >= max) break;
      }
      if (read.messages.length === 0 || read.nextOffset === offset) break;
      offset = read.nextOffset;
    }
    return out;
  }

  /** Records that these dead letters went back to their topics. */
  markRedriven(group: string, offsets: readonly number[]): void {
    const st = this.#state(group);
    for (const o of offsets) if (o >= st.cursor) st.redriven.add(o);
    // Advance the cursor over the redriven prefix so the set stays small.
    while (st.redriven.has(st.cursor)) {
      st.redriven.delete(st.cursor);
      st.cursor++;
    }
    this.#save();
  }

  /** Dead letters waiting, for metrics. */
  depth(group: string): number {
    const st = this.#state(group);
    const { maxOffset } = this.#store.queueRange(deadLetterTopic(group), 0);
    return Math.max(0, maxOffset - st.cursor - st.redriven.size);
  }

  #save(): void {
    const data: Record<string, { cursor: number; redriven: number[] }> = {};
    for (const [group, st] of this.#groups) data[group] = { cursor: st.cursor, redriven: [...st.redriven] };
    const tmp = `${this.#file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(data));
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.#file);
  }
}
