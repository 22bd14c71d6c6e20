import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** What a local function receives besides the event: the part of Lambda's context object handlers use. */
export interface LocalContext {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
}

/** `event` is `any` so that handlers typed for their event (`SkyrocketHandler`) fit. */
export type LocalHandler = (event: any, context: LocalContext) => unknown;

/** A function the local endpoint can invoke. */
export interface LocalFunction {
  handler: LocalHandler;
  /**
   * How long an invocation may run before it answers as timed out (the handler itself cannot be
   * stopped: it runs in this process, see local-lambda.ts).
   * @default localLambdaDefaults.timeoutMs (30 s)
   */
  timeoutMs?: number;
  /**
   * Invocations of this function at once; one more is refused with 429 TooManyRequestsException,
   * as Lambda does past a function's reserved concurrency.
   * @default unlimited
   */
  reservedConcurrency?: number;
}

/** Finds functions by name. */
export interface FunctionSource {
  get(name: string): Promise<LocalFunction | undefined>;
}

/** Functions given in code, for tests and embedding. */
export class InlineFunctions implements FunctionSource {
  readonly #functions = new Map<string, LocalFunction>();

  constructor(functions: Record<string, LocalFunction | LocalHandler> = {}) {
    for (const [name, fn] of Object.entries(functions)) this.set(name, fn);
  }

  set(name: string, fn: LocalFunction | LocalHandler): this {
    this.#functions.set(name, typeof fn === 'function' ? { handler: fn } : fn);
    return this;
  }

  async get(name: string): Promise<LocalFunction | undefined> {
    return this.#functions.get(name);
  }
}

/** A function name that is safe as a file name: Lambda's alphabet, not starting with a dot. */
const fileSafeName = /^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,139}$/;
const extensions = ['.ts', '.mts', '.js', '.mjs'] as const;

/**
 * Functions kept as modules in a folder: function `orders` is `<dir>/orders.ts` (or `.mts`,
 * `.js`, `.mjs`), or `<dir>/orders/index.ts` (same extensions), exporting `handler`. A module may
 * also export `config = { timeoutMs, reservedConcurrency }`. Modules are loaded on first use and
 * kept; restart the process to pick up changes.
 */
export class FolderFunctions implements FunctionSource {
  readonly dir: string;
  readonly #loaded = new Map<string, Promise<LocalFunction | undefined>>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** The module file of a function, or undefined when there is none. */
  file(name: string): string | undefined {
    if (!fileSafeName.test(name)) return undefined;
    const candidates = [
      ...extensions.map((ext) => path.join(this.dir, `${name}${ext}`)),
      ...extensions.map((ext) => path.join(this.dir, name, `index${ext}`)),
    ];
    return candidates.find((file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true);
  }

  /** Names of the functions in the folder. */
  list(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.dir, { withFileTypes: true });
    } catch {
      return [];
    }
    const names = new Set<string>();
    for (const e of entries) {
      const ext = extensions.find((x) => e.name.endsWith(x));
      const name = e.isDirectory() ? e.name : ext === undefined ? undefined : e.name.slice(0, -ext.length);
      if (name !== undefined && !name.endsWith('.test') && !name.endsWith('.d') && this.file(name) !== undefined) names.add(name);
    }
    return [...names].sort();
  }

  get(name: string): Promise<LocalFunction | undefined> {
    let loading = this.#loaded.get(name);
    if (loading === undefined) {
      loading = this.#load(name);
      this.#loaded.set(name, loading);
      // A module that failed to load is tried again on the next invocation (after a fix).
      loading.catch(() => this.#loaded.delete(name));
    }
    return loading;
  }

  async #load(name: string): Promise<LocalFunction | undefined> {
    const file = this.file(name);
    if (file === undefined) return undefined;
    const mod = (await import(pathToFileURL(file).href)) as { handler?: unknown; config?: Partial<Omit<LocalFunction, 'handler'>> };
    if (typeof mod.handler !== 'function') throw new TypeError(`${file} does not export a handler function`);
    return { ...(mod.config ?? {}), handler: mod.handler as LocalHandler };
  }
}
