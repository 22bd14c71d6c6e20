// Types for the two embedded servers of local mode, which ship none: only what we use.

declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    /** LevelDB directory; in memory when absent. */
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
  }

  export default function dynalite(options?: DynaliteOptions): Server;
}

declare module 's3rver' {
  import type { RequestListener } from 'node:http';

  interface S3rverOptions {
    silent?: boolean;
    /** Must exist; one subdirectory per bucket. */
    directory: string;
  }

  /** A Koa application; `run()` would listen without handling `listen` errors, so we don't use it. */
  export default class S3rver {
    constructor(options: S3rverOptions);
    callback(): RequestListener;
  }
}
