export * from './errors.ts';
export * from './message.ts';
export * from './limits.ts';
export * from './validate.ts';
export * from './delay-levels.ts';
export * from './message-id.ts';
export * from './tag-hash.ts';
export * from './tag-filter.ts';
