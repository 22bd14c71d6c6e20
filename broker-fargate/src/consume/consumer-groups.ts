import * as fs from 'node:fs';
import * as path from 'node:path';
import { retryBackoffMs } from '../../../core/delay-levels.ts';
import { SkyrocketError } from '../../../core/errors.ts';
import { dlqTopicPrefix } from '../../../core/limits.ts';
import type { StoredMessage } from '../../../core/message.ts';
import type { MessageStore } from '../store/index.ts';
import { systemProperty } from '../store/record.ts';
import { assignQueues } from './assignment.ts';
import { encodeReceiptHandle, IssuedHandle, newNonceSource, parseReceiptHandle, type ReceiptHandle } from './receipt-handle.ts';

/**
 * Consumption state of the queues this broker owns: for each (group, topic, queue) where the group
 * has read to, which deliveries are in flight and until when they stay invisible. It is the pop
 * model of RocketMQ 5 and SQS: a receive hides messages behind receipt handles; an ack ends a
 * delivery; a delivery whose invisibility runs out is delivered again with its attempt counted up.
 *
 * A queue position is "done" when it is below `popOffset` and not in flight. The committed offset
 * (reported as the group's offset, and used for lag) is the lowest in-flight offset, or
 * `popOffset` when nothing is in flight. State is snapshotted to disk every `snapshotIntervalMs`
 * and on close: after a restart, acked work is not replayed, and deliveries that were in flight
 * become visible at once.
 */
export interface ConsumerGroupsOptions {
  store: MessageStore;
  /** The broker group this broker belongs to: written into receipt handles for routing. */
  brokerGroup: string;
  /** Where the consumption state is snapshotted. */
  dataDir: string;
  now?: () => number;
  /** @default 10000 */
  maxInflightPerQueue?: number;
  /** A clustering member not heard from for this long loses its queues. @default 30000 */
  memberTimeoutMs?: number;
  /** @default 1000 */
  snapshotIntervalMs?: number;
}

export type ConsumeMode = 'CLUSTERING' | 'BROADCASTING';

export interface ReceiveRequest {
  group: string;
  mode: ConsumeMode;
  topic: string;
  /** The topic's queues that this broker owns. */
  queueIds: readonly number[];
  /** Identifies the consumer: required for broadcasting, enables queue assignment for clustering. */
  clientId?: string | undefined;
  max: number;
  invisibleMs: number;
  /** Tag filter; undefined means every message. */
  tags?: ReadonlySet<string> | undefined;
  /** Any further filter (SQL92 on properties); applied after the tag filter. */
  filter?: ((message: StoredMessage) => boolean) | undefined;
  /**
   * Orderly: each message group (the whole queue for messages without one) has at most one
   * message in flight, and the next is delivered only after the previous is acked or
   * dead-lettered. @default false
   */
  orderly?: boolean | undefined;
  /** A delivery beyond this many attempts goes to the group's dead-letter topic. @default 16 */
  maxDeliveryAttempts?: number | undefined;
}

/** A message delivered to a consumer group, with the handle that names this delivery. */
export class Delivery {
  constructor(
    readonly message: StoredMessage,
    readonly handle: IssuedHandle,
  ) {}

  get receiptHandle(): string {
    return this.handle.toString();
  }
}

interface InFlight {
  visibleAt: number;
  attempt: number;
  nonce: string;
  /** Orderly groups: the message group this delivery blocks. */
  messageGroup?: string | undefined;
}

interface QueueState {
  popOffset: number;
  inflight: Map<number, InFlight>;
  busy: boolean;
  /**
   * No in-flight delivery becomes visible before this (a lower bound: acks only raise the true
   * minimum). A receive scans the in-flight deliveries for expired ones only once it has passed.
   */
  earliestVisibleAt: number;
  /** While busy: resolves when the receive taking from this queue is done with it. */
  released?: Promise<void> | undefined;
  /** Bumped by `setOffset`: a receive that read before the reset must not write its result. */
  generation: number;
  /**
   * Orderly groups: messages read but held back because an earlier message of their message
   * group is still in flight (offset -> message group). Not done; delivered in offset order.
   */
  pending: Map<number, string>;
}

interface Snapshot {
  version: 1;
  queues: Array<{
    key: string;
    popOffset: number;
    /** [offset, attempt] or, for orderly groups, [offset, attempt, messageGroup]. */
    inflight: Array<[number, number] | [number, number, string]>;
    pending?: Array<[number, string]>;
  }>;
}

/** Where a message that used up its delivery attempts goes. */
export function deadLetterTopic(group: string): string {
  return `${dlqTopicPrefix}${group}`;
}

/** The property that keeps a dead letter's original topic. */
export const dlqOriginTopicProperty = 'DLQ_ORIGIN_TOPIC';

export class ConsumerGroups {
  readonly #store: MessageStore;
  readonly #brokerGroup: string;
  readonly #now: () => number;
  readonly #maxInflight: number;
  readonly #memberTimeoutMs: number;
  readonly #file: string;
  readonly #states = new Map<string, QueueState>();
  /** (group, topic) -> member -> last seen. */
  readonly #members = new Map<string, Map<string, number>>();
  readonly #assignments = new Map<string, Map<number, string>>();
  /** The queue state the last handle named (see #stateOfHandle). */
  #lastLookup: { group: string; topic: string; queueId: number; st: QueueState } | undefined;
  #dirty = false;
  #snapshotting = false;
  #timer: NodeJS.Timeout;

  constructor(options: ConsumerGroupsOptions) {
    this.#store = options.store;
    this.#brokerGroup = options.brokerGroup;
    this.#now = options.now ?? Date.now;
    this.#maxInflight = options.maxInflightPerQueue ?? 10_000;
    this.#memberTimeoutMs = options.memberTimeoutMs ?? 30_000;
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.#file = path.join(options.dataDir, 'consumer-offsets.json');
    this.#load();
    this.#timer = setInterval(() => void this.#snapshotAsync(), options.snapshotIntervalMs ?? 1000);
    this.#timer.unref();
  }

  #load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.#file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const snapshot = JSON.parse(text) as Snapshot;
    for (const q of snapshot.queues) {
      // In-flight deliveries of the previous run become visible now, their attempt kept.
      const inflight = new Map<number, InFlight>();
      for (const [offset, attempt, messageGroup] of q.inflight) inflight.set(offset, { visibleAt: 0, attempt, nonce: '', messageGroup });
      this.#states.set(q.key, {
        popOffset: q.popOffset,
        inflight,
        busy: false,
        earliestVisibleAt: 0,
        generation: 0,
        pending: new Map(q.pending ?? []),
      });
    }
  }

  /** Writes the state to disk (atomically) if it changed. Blocks: for close and tests. */
  snapshot(): void {
    const text = this.#takeSnapshot();
    if (text === undefined) return;
    const tmp = `${this.#file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, text);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.#file);
  }

  /**
   * The periodic snapshot: the state is captured at once, the write and sync run off the event
   * loop (a blocking fdatasync every second showed up in receive and send latency p99).
   */
  async #snapshotAsync(): Promise<void> {
    if (this.#snapshotting) return;
    const text = this.#takeSnapshot();
    if (text === undefined) return;
    this.#snapshotting = true;
    const tmp = `${this.#file}.tmp`;
    try {
      const handle = await fs.promises.open(tmp, 'w');
      try {
        await handle.writeFile(text);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, this.#file);
    } catch {
      this.#dirty = true; // try again at the next tick
    } finally {
      this.#snapshotting = false;
    }
  }

  #takeSnapshot(): string | undefined {
    if (!this.#dirty) return undefined;
    this.#dirty = false;
    const snapshot: Snapshot = { version: 1, queues: [] };
    for (const [key, st] of this.#states) {
      snapshot.queues.push({
        key,
        popOffset: st.popOffset,
        inflight: [...st.inflight].map(([o, f]) => (f.messageGroup === undefined ? [o, f.attempt] : [o, f.attempt, f.messageGroup])),
        pending: [...st.pending],
      });
    }
    return JSON.stringify(snapshot);
  }

  #state(stateKey: string, topic: string, queueId: number): QueueState {
    let st = this.#states.get(stateKey);
    if (st === undefined) {
      // A new group starts at the earliest message still retained.
      st = {
        popOffset: this.#store.queueRange(topic, queueId).minOffset,
        inflight: new Map(),
        busy: false,
        earliestVisibleAt: Number.POSITIVE_INFINITY,
        generation: 0,
        pending: new Map(),
      };
      this.#states.set(stateKey, st);
      this.#dirty = true;
    }
    return st;
  }

  /** The queues a receive may take from: for clustering with a client id, its assigned ones. */
  assignedQueues(req: Pick<ReceiveRequest, 'group' | 'mode' | 'topic' | 'queueIds' | 'clientId'>): number[] {
    if (req.mode === 'BROADCASTING' || req.clientId === undefined) return [...req.queueIds];
    const now = this.#now();
    const key = `${req.group}\u0000${req.topic}`;
    let members = this.#members.get(key);
    if (members === undefined) {
      members = new Map();
      this.#members.set(key, members);
    }
    // The map is pruned on every call, so its keys are exactly the members live at the last call.
    const before = [...members.keys()];
    members.set(req.clientId, now);
    const live = [...members.keys()].filter((m) => (members.get(m) as number) > now - this.#memberTimeoutMs);
    for (const m of [...members.keys()]) if (!live.includes(m)) members.delete(m);
    let assignment = this.#assignments.get(key);
    const changed = assignment === undefined || before.length !== live.length || !before.includes(req.clientId);
    const queuesChanged =
      assignment !== undefined && (assignment.size !== req.queueIds.length || req.queueIds.some((q) => !assignment!.has(q)));
    if (changed || queuesChanged) {
      const backlog = new Map(req.queueIds.map((q) => [q, this.lag(req.group, req.topic, q)]));
      assignment = assignQueues(req.queueIds, live, assignment ?? new Map(), backlog);
      this.#assignments.set(key, assignment);
    }
    return req.queueIds.filter((q) => assignment!.get(q) === req.clientId);
  }

  /** Live members of a clustering group on this broker, with their queues. */
  members(group: string, topic: string): Array<{ clientId: string; queueIds: number[] }> {
    const assignment = this.#assignments.get(`${group}\u0000${topic}`) ?? new Map<number, string>();
    const now = this.#now();
    const members = this.#members.get(`${group}\u0000${topic}`) ?? new Map<string, number>();
    return [...members]
      .filter(([, seen]) => seen > now - this.#memberTimeoutMs)
      .map(([clientId]) => ({ clientId, queueIds: [...assignment].filter(([, m]) => m === clientId).map(([q]) => q) }));
  }

  #stateKey(group: string, mode: ConsumeMode, clientId: string | undefined, topic: string, queueId: number): string {
    if (mode === 'BROADCASTING') {
      if (clientId === undefined) {
        throw new SkyrocketError('INVALID_ARGUMENT', 'a broadcasting group needs a clientId per consumer', { field: 'clientId' });
      }
      return `${group}#${clientId}\u0000${topic}\u0000${queueId}`;
    }
    return `${group}\u0000${topic}\u0000${queueId}`;
  }

  /** Takes up to `max` visible messages from the given queues; does not wait. */
  async receive(req: ReceiveRequest): Promise<Delivery[]> {
    const out: Delivery[] = [];
    const queues = this.assignedQueues(req);
    // Start at a different queue each time so no queue starves.
    const start = queues.length === 0 ? 0 : Math.floor(Math.random() * queues.length);
    // Queues another receive is taking from are visited last, once it is done with them.
    const order = Array.from({ length: queues.length }, (_, i) => queues[(start + i) % queues.length] as number);
    const later: number[] = [];
    const nonce = newNonceSource();
    for (let pass = 0; pass < 2; pass++) {
      const list = pass === 0 ? order : later.splice(0);
      for (let i = 0; i < list.length && out.length < req.max; i++) {
        const queueId = list[i] as number;
        const key = this.#stateKey(req.group, req.mode, req.clientId, req.topic, queueId);
        const st = this.#state(key, req.topic, queueId);
        if (st.busy && pass === 0) {
          later.push(queueId);
          continue;
        }
        while (st.busy) await st.released;
        // An even share of what is left for each queue still to visit: a topic's queues
        // interleave in the commit log, so taking from all of them reads one stretch of the log
        // once (and a queue with less to give leaves its share to the ones after it).
        const toVisit = list.length - i + (pass === 0 ? later.length : 0);
        const share = Math.ceil((req.max - out.length) / toVisit);
        st.busy = true;
        let release!: () => void;
        st.released = new Promise<void>((r) => (release = r));
        try {
          await this.#receiveFrom({ ...req, max: out.length + share }, key, queueId, st, out, nonce);
        } finally {
          st.busy = false;
          st.released = undefined;
          release();
        }
      }
    }
    return out;
  }

  async #receiveFrom(
    req: ReceiveRequest,
    key: string,
    queueId: number,
    st: QueueState,
    out: Delivery[],
    nonce: () => string,
  ): Promise<void> {
    const now = this.#now();
    const handleGroup = req.mode === 'BROADCASTING' ? `${req.group}#${req.clientId}` : req.group;
    const maxAttempts = req.maxDeliveryAttempts ?? 16;
    const generation = st.generation;
    // Deliveries whose invisibility ran out go first, oldest offset first; one that has used up
    // its attempts goes to the dead-letter topic instead.
    const expired =
      st.earliestVisibleAt > now ? [] : [...st.inflight].filter(([, f]) => f.visibleAt <= now).sort(([a], [b]) => a - b);
    for (const [offset, flight] of expired) {
      if (out.length >= req.max) return;
      const message = await this.#readAt(req.topic, queueId, offset);
      if (st.generation !== generation) return;
      if (message === undefined) {
        st.inflight.delete(offset); // retention removed it, or it was damaged: nothing to deliver
        this.#dirty = true;
        continue;
      }
      if (flight.attempt >= maxAttempts) {
        await this.#deadLetter(req.group, message, flight.attempt);
        st.inflight.delete(offset);
        this.#dirty = true;
        continue;
      }
      flight.attempt += 1;
      out.push(this.#deliver(req, handleGroup, queueId, message, flight, now, nonce, st));
    }
    if (expired.length > 0 || st.earliestVisibleAt <= now) {
      // Every expired delivery was handled: the bound is exact again.
      let earliest = Number.POSITIVE_INFINITY;
      for (const f of st.inflight.values()) if (f.visibleAt < earliest) earliest = f.visibleAt;
      st.earliestVisibleAt = earliest;
    }
    // Orderly: message groups with a delivery in flight are blocked; held-back messages of the
    // free groups go next, the earliest of each group first.
    const blocked = new Set<string>();
    if (req.orderly === true) {
      for (const f of st.inflight.values()) blocked.add(f.messageGroup ?? '');
      const pending = [...st.pending].sort(([a], [b]) => a - b);
      for (const [offset, messageGroup] of pending) {
        if (out.length >= req.max) return;
        if (blocked.has(messageGroup)) continue;
        blocked.add(messageGroup);
        const message = await this.#readAt(req.topic, queueId, offset);
        if (st.generation !== generation) return;
        st.pending.delete(offset);
        this.#dirty = true;
        if (message === undefined) {
          blocked.delete(messageGroup);
          continue;
        }
        const flight: InFlight = { visibleAt: 0, attempt: message.deliveryAttempt, nonce: '', messageGroup };
        st.inflight.set(offset, flight);
        out.push(this.#deliver(req, handleGroup, queueId, message, flight, now, nonce, st));
      }
      for (const messageGroup of st.pending.values()) blocked.add(messageGroup);
    }
    const room = Math.min(req.max - out.length, this.#maxInflight - st.inflight.size - st.pending.size);
    if (room <= 0) return;
    const read = await this.#store.read(req.topic, queueId, st.popOffset, { maxMessages: room, tags: req.tags });
    if (st.generation !== generation) return; // the position was moved while reading
    for (const message of read.messages) {
      if (req.filter !== undefined && !req.filter(message)) continue; // filtered out: done
      if (req.orderly === true) {
        const messageGroup = message.messageGroup ?? '';
        if (blocked.has(messageGroup)) {
          st.pending.set(message.queueOffset, messageGroup);
          continue;
        }
        blocked.add(messageGroup);
        const flight: InFlight = { visibleAt: 0, attempt: message.deliveryAttempt, nonce: '', messageGroup };
        st.inflight.set(message.queueOffset, flight);
        out.push(this.#deliver(req, handleGroup, queueId, message, flight, now, nonce, st));
        continue;
      }
      const flight: InFlight = { visibleAt: 0, attempt: message.deliveryAttempt, nonce: '' };
      st.inflight.set(message.queueOffset, flight);
      out.push(this.#deliver(req, handleGroup, queueId, message, flight, now, nonce, st));
    }
    if (read.nextOffset !== st.popOffset) {
      st.popOffset = read.nextOffset;
      this.#dirty = true;
    }
  }

  async #readAt(topic: string, queueId: number, offset: number): Promise<StoredMessage | undefined> {
    const read = await this.#store.read(topic, queueId, offset, { maxMessages: 1 });
    const message = read.messages[0];
    return message !== undefined && message.queueOffset === offset ? message : undefined;
  }

  /**
   * Moves a message to `%DLQ%<group>` on this broker, keeping its id, original topic, body,
   * tag, keys and properties, and the number of delivery attempts it used.
   */
  async #deadLetter(group: string, message: StoredMessage, attempts: number): Promise<void> {
    const baseGroup = group.split('#')[0] as string;
    await this.#store.append([
      {
        topic: deadLetterTopic(baseGroup),
        queueId: 0,
        body: message.body,
        tag: message.tag,
        keys: message.keys,
        messageGroup: message.messageGroup,
        properties: { ...message.properties, [dlqOriginTopicProperty]: message.topic, [systemProperty.originMessageId]: message.messageId },
        reconsumeTimes: attempts,
        bornTimestamp: message.bornTimestamp,
        bornHost: message.bornHost,
      },
    ]);
    this.deadLettered++;
  }

  /** Messages moved to dead-letter topics by this broker since it started. */
  deadLettered = 0;

  #deliver(
    req: ReceiveRequest,
    handleGroup: string,
    queueId: number,
    message: StoredMessage,
    flight: InFlight,
    now: number,
    nonce: () => string,
    st: QueueState,
  ): Delivery {
    flight.visibleAt = now + req.invisibleMs;
    if (flight.visibleAt < st.earliestVisibleAt) st.earliestVisibleAt = flight.visibleAt;
    flight.nonce = nonce();
    this.#dirty = true;
    const handle: ReceiptHandle = {
      group: handleGroup,
      topic: req.topic,
      queueId,
      queueOffset: message.queueOffset,
      nonce: flight.nonce,
      brokerGroup: this.#brokerGroup,
      visibleUntilMs: flight.visibleAt,
    };
    message.deliveryAttempt = flight.attempt; // the message was read for this delivery alone
    return new Delivery(message, new IssuedHandle(handle));
  }

  #flightFor(
    text: unknown,
    group: string,
    topic: string,
    handle: ReceiptHandle = parseReceiptHandle(text),
  ): { st: QueueState; handle: ReceiptHandle; flight: InFlight } {
    const hash = handle.group.indexOf('#');
    const baseGroup = hash < 0 ? handle.group : handle.group.slice(0, hash);
    if (baseGroup !== group || handle.topic !== topic) {
      throw new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle belongs to another group or topic', { field: 'receiptHandle' });
    }
    const st = this.#stateOfHandle(handle);
    const flight = st?.inflight.get(handle.queueOffset);
    if (st === undefined || flight === undefined || flight.nonce !== handle.nonce) {
      throw new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle was already used or its delivery expired', {
        field: 'receiptHandle',
      });
    }
    if (flight.visibleAt <= this.#now()) {
      throw new SkyrocketError('INVALID_RECEIPT_HANDLE', 'receipt handle expired: the message is visible again', {
        field: 'receiptHandle',
      });
    }
    return { st, handle, flight };
  }

  /**
   * The state a handle names. An ack names the same queue for many handles in a row (with the
   * same name strings, from the handle parser's cache), so the last lookup is kept: building and
   * hashing the state key per handle was a sixth of the broker's cost of an ack.
   */
  #stateOfHandle(handle: ReceiptHandle): QueueState | undefined {
    const last = this.#lastLookup;
    if (last !== undefined && last.group === handle.group && last.topic === handle.topic && last.queueId === handle.queueId) {
      return last.st;
    }
    const st = this.#states.get(`${handle.group}\u0000${handle.topic}\u0000${handle.queueId}`);
    this.#lastLookup = st === undefined ? undefined : { group: handle.group, topic: handle.topic, queueId: handle.queueId, st };
    return st;
  }

  /** Ends a delivery. Throws INVALID_RECEIPT_HANDLE for a forged, expired or used handle. */
  ack(receiptHandle: unknown, group: string, topic: string, parsed?: ReceiptHandle): void {
    const { st, handle } = this.#flightFor(receiptHandle, group, topic, parsed);
    st.inflight.delete(handle.queueOffset);
    this.#dirty = true;
  }

  /**
   * The consumer failed to process the message: it becomes visible again after the group's
   * backoff for the attempt it was (RocketMQ's 10 s, 30 s, 1 m, … 2 h), or after `delayMs`.
   * The handle is used up.
   */
  nack(receiptHandle: unknown, group: string, topic: string, delayMs?: number, parsed?: ReceiptHandle): number {
    const { st, flight } = this.#flightFor(receiptHandle, group, topic, parsed);
    flight.visibleAt = this.#now() + (delayMs ?? retryBackoffMs(flight.attempt));
    st.earliestVisibleAt = Math.min(st.earliestVisibleAt, flight.visibleAt);
    flight.nonce = newNonceSource()();
    this.#dirty = true;
    return flight.visibleAt;
  }

  /**
   * Undoes a delivery nobody received: the message is visible again at once and the attempt is
   * not counted. The handle is used up.
   */
  release(receiptHandle: unknown, group: string, topic: string, parsed?: ReceiptHandle): void {
    const { st, flight } = this.#flightFor(receiptHandle, group, topic, parsed);
    flight.visibleAt = this.#now();
    st.earliestVisibleAt = Math.min(st.earliestVisibleAt, flight.visibleAt);
    flight.attempt = Math.max(0, flight.attempt - 1);
    flight.nonce = newNonceSource()();
    this.#dirty = true;
  }

  /** Hides the message for `invisibleMs` from now; returns the handle that replaces the old one. */
  changeInvisibility(receiptHandle: unknown, group: string, topic: string, invisibleMs: number): string {
    const { st, handle, flight } = this.#flightFor(receiptHandle, group, topic);
    flight.visibleAt = this.#now() + invisibleMs;
    st.earliestVisibleAt = Math.min(st.earliestVisibleAt, flight.visibleAt);
    flight.nonce = newNonceSource()();
    this.#dirty = true;
    return encodeReceiptHandle({ ...handle, nonce: flight.nonce, visibleUntilMs: flight.visibleAt });
  }

  /** The group's committed offset in a queue: everything below it is done. */
  committedOffset(group: string, topic: string, queueId: number): number {
    const st = this.#states.get(`${group}\u0000${topic}\u0000${queueId}`);
    if (st === undefined) return this.#store.queueRange(topic, queueId).minOffset;
    let min = st.popOffset;
    for (const offset of st.inflight.keys()) if (offset < min) min = offset;
    for (const offset of st.pending.keys()) if (offset < min) min = offset;
    return min;
  }

  /** Messages of the queue not yet done by the group. */
  lag(group: string, topic: string, queueId: number): number {
    const { maxOffset } = this.#store.queueRange(topic, queueId);
    return Math.max(0, maxOffset - this.committedOffset(group, topic, queueId));
  }

  /** Whether the group has read this queue on this broker. */
  hasState(group: string, topic: string, queueId: number): boolean {
    return this.#states.has(`${group}\u0000${topic}\u0000${queueId}`);
  }

  inflightCount(group: string, topic: string, queueId: number): number {
    return this.#states.get(`${group}\u0000${topic}\u0000${queueId}`)?.inflight.size ?? 0;
  }

  /** Moves a group's position in a queue (reset or skip); in-flight deliveries are dropped. */
  setOffset(group: string, topic: string, queueId: number, offset: number): void {
    const { minOffset, maxOffset } = this.#store.queueRange(topic, queueId);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new SkyrocketError('ILLEGAL_OFFSET', `offset ${offset} is not a non-negative integer`, { field: 'offset' });
    }
    const st = this.#state(`${group}\u0000${topic}\u0000${queueId}`, topic, queueId);
    st.popOffset = Math.min(Math.max(offset, minOffset), maxOffset);
    st.inflight.clear();
    st.pending.clear();
    st.generation++;
    this.#dirty = true;
  }

  /** The earliest moment an in-flight delivery of these queues becomes visible again. */
  nextVisibleAt(
    group: string,
    topic: string,
    queueIds: readonly number[],
    mode: ConsumeMode = 'CLUSTERING',
    clientId?: string,
  ): number | undefined {
    let next: number | undefined;
    for (const q of queueIds) {
      const st = this.#states.get(this.#stateKey(group, mode, clientId, topic, q));
      if (st === undefined) continue;
      if (st.inflight.size > 0 && (next === undefined || st.earliestVisibleAt < next)) next = st.earliestVisibleAt;
    }
    return next;
  }

  /** Clustering groups with consumption state on this broker. */
  knownGroups(): string[] {
    const groups = new Set<string>();
    for (const key of this.#states.keys()) {
      const group = key.split('\u0000')[0] as string;
      if (!group.includes('#')) groups.add(group);
    }
    return [...groups];
  }

  /** Forgets a group everywhere on this broker. */
  deleteGroup(group: string): void {
    for (const key of [...this.#states.keys()]) {
      const g = key.split('\u0000')[0] as string;
      if (g === group || g.startsWith(`${group}#`)) this.#states.delete(key);
    }
    this.#lastLookup = undefined;
    this.#dirty = true;
  }

  /** Stops the timer and writes the final snapshot after any periodic one still being written. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#snapshotting) await new Promise((r) => setTimeout(r, 5));
    this.snapshot();
  }
}
