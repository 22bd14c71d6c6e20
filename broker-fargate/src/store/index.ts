export { MessageStore, storeDefaults } from './message-store.ts';
export type { AppendResult, CorruptedEntry, MessageStoreOptions, ReadOptions, ReadResult, ReadStatus } from './message-store.ts';
export type { FlushMode, RecoveryReport, Corruption } from './commit-log.ts';
export { InMemorySegmentStore, LocalSegmentStore } from './segment-store.ts';
export type { SealedSegment, SegmentStore } from './segment-store.ts';
export type { RecordInput } from './record.ts';
export { recordFlags } from './record.ts';
export { storeChannel } from './diagnostics.ts';
export type { StoreEvent } from './diagnostics.ts';
