export * from './tables.ts';
export * from './registry.ts';
export * from './route-cache.ts';
export * from './embedded.ts';
