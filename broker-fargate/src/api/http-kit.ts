import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WireServerRequest, WireServerResponse } from './wire-server.ts';
import { SkyrocketError, isSkyrocketError } from '../../../core/errors.ts';

/**
 * The small pieces of HTTP the REST API needs: a router over `node:http`, JSON bodies with a size
 * limit, and the one error shape. node:http is used directly: the API has a dozen routes, and the
 * produce path is the broker's hot path, where a framework's per-request hooks cost throughput.
 */
export type Params = Record<string, string>;
/** A request over HTTP or over the wire protocol (api/wire-server.ts): handlers serve both alike. */
export type ApiRequest = IncomingMessage | WireServerRequest;
/** A response over HTTP or over the wire protocol. */
export type ApiResponse = ServerResponse | WireServerResponse;

export type Handler = (req: ApiRequest, res: ApiResponse, params: Params, url: RequestTarget) => Promise<void>;

/** The parts of a request's URL the handlers read (a URL has them too). */
export interface RequestTarget {
  readonly pathname: string;
  /** "" or "?" and the query. */
  readonly search: string;
  readonly searchParams: URLSearchParams;
}

class PlainTarget implements RequestTarget {
  #params: URLSearchParams | undefined;
  constructor(
    readonly pathname: string,
    readonly search: string,
  ) {}

  get searchParams(): URLSearchParams {
    return (this.#params ??= new URLSearchParams(this.search));
  }
}

/**
 * A request target as `new URL(target, base)` would read it. The WHATWG parser cost a tenth of a
 * small request's CPU; a plain origin-form path (no dot segments, backslashes or characters URL
 * would re-encode) is the same without it, and anything else still goes through it.
 */
export function requestTarget(raw: string | undefined): RequestTarget {
  const target = raw ?? '/';
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  if (pathname.charCodeAt(0) === 0x2f && plainTarget.test(target) && !pathname.includes('/.')) {
    return new PlainTarget(pathname, q < 0 || q === target.length - 1 ? '' : target.slice(q));
  }
  return new URL(target, 'http://broker');
}

/** Characters URL leaves as they are in a path and a query. */
const plainTarget = /^[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*$/;

interface Route {
  method: string;
  parts: string[];
  /** Per part: whether it is a `:name` parameter. */
  isParam: boolean[];
  handler: Handler;
}

export class Router {
  /** Routes by their number of path segments, in the order they were added. */
  readonly #bySegments = new Map<number, Route[]>();

  on(method: string, pattern: string, handler: Handler): this {
    const parts = pattern.split('/').filter(Boolean);
    const list = this.#bySegments.get(parts.length) ?? [];
    list.push({ method, parts, isParam: parts.map((p) => p.startsWith(':')), handler });
    this.#bySegments.set(parts.length, list);
    return this;
  }

  /** The handler and path parameters for a request, or why there is none. */
  match(method: string, pathname: string): { handler: Handler; params: Params } | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' {
    const parts = pathname.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.#bySegments.get(parts.length) ?? []) {
      // Literal segments first: most routes are told apart by them without decoding anything.
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) ok = route.isParam[i] === true || route.parts[i] === parts[i];
      if (!ok) continue;
      const params: Params = {};
      for (let i = 0; i < parts.length && ok; i++) {
        if (route.isParam[i] !== true) continue;
        try {
          params[(route.parts[i] as string).slice(1)] = decodeURIComponent(parts[i] as string);
        } catch {
          ok = false;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (route.method === method) return { handler: route.handler, params };
    }
    return pathMatched ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND';
  }
}

/** Reads the whole body, refusing more than `limitBytes` (413, nothing stored). */
export function readBody(req: ApiRequest, limitBytes: number): Promise<Buffer> {
  if ('wireBody' in req) {
    // Arrived whole with its frame.
    if (req.wireBody.length > limitBytes) {
      return Promise.reject(new SkyrocketError('PAYLOAD_TOO_LARGE', `request body of ${req.wireBody.length} bytes exceeds ${limitBytes} bytes`));
    }
    return Promise.resolve(req.wireBody);
  }
  return new Promise((resolve, reject) => {
    const tooLarge = (declaredBytes?: number): void => {
      // Stop keeping the bytes but drain the request, so the client reads a 413 rather than a
      // reset connection (which clients tend to retry); the connection closes after the answer.
      req.off('data', onData);
      req.resume();
      const what = declaredBytes === undefined ? 'request body' : `request body of ${declaredBytes} bytes`;
      reject(new SkyrocketError('PAYLOAD_TOO_LARGE', `${what} exceeds ${limitBytes} bytes`));
    };
    const declared = Number(req.headers['content-length'] ?? -1);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) {
        tooLarge();
        return;
      }
      chunks.push(chunk);
    };
    if (declared > limitBytes) {
      tooLarge(declared);
      return;
    }
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export async function readJson(req: ApiRequest, limitBytes: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, limitBytes);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new SkyrocketError('MALFORMED_JSON', `request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SkyrocketError('MALFORMED_JSON', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ApiResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function toSkyrocketError(error: unknown): SkyrocketError {
  if (isSkyrocketError(error)) return error;
  return new SkyrocketError('INTERNAL_ERROR', 'internal error', { cause: error });
}

export function sendError(res: ApiResponse, error: unknown): void {
  const e = toSkyrocketError(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // The rest of an oversized body is not worth reading on this connection.
  if (e.code === 'PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
  sendJson(res, e.httpStatus, e.toJSON());
}
