import * as net from 'node:net';
import * as tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { SkyrocketError, isSkyrocketError } from '../../../core/errors.ts';
import {
  WireKind,
  WireReader,
  decodeWireFrame,
  encodeWireAnswerHead,
  encodeWireClose,
  wireMagic,
} from '../../../core/wire.ts';

/**
 * The broker's side of the wire protocol (core/wire.ts): a TCP or TLS listener whose requests
 * run through the same handler as HTTP requests. A request and its response are small objects
 * with the few members the handlers use (see `ApiRequest` and `ApiResponse` in http-kit.ts),
 * not node:http's streams: the body has arrived whole with the frame, and an answer is written
 * as one frame with its body uncopied.
 */
export class WireServerRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined };
  /** The whole request body. */
  readonly wireBody: Buffer;

  constructor(method: string, url: string, headers: IncomingHttpHeaders, socket: net.Socket, body: Buffer) {
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.socket = socket;
    this.wireBody = body;
  }
}

type Listener = () => void;

/** Answers up to this size go out as one copied buffer; larger ones as head and body, uncopied. */
const copyBelowBytes = 16 * 1024;

export class WireServerResponse {
  statusCode = 200;
  #contentType = '';
  #answered = false;
  #finished = false;
  #closed = false;
  #closeListeners: Listener[] | undefined;
  #finishListeners: Listener[] | undefined;
  readonly #connection: WireConnection;
  readonly #id: number;

  constructor(connection: WireConnection, id: number) {
    this.#connection = connection;
    this.#id = id;
  }

  /** True once the answer is written (an answer is one frame: there is no half-sent state). */
  get headersSent(): boolean {
    return this.#answered;
  }

  get writableFinished(): boolean {
    return this.#finished;
  }

  setHeader(name: string, value: string | number): this {
    const n = name.toLowerCase();
    if (n === 'content-type') this.#contentType = String(value);
    else if (n === 'connection' && String(value).toLowerCase() === 'close') this.#connection.closeAfterAnswers();
    return this;
  }

  writeHead(status: number, headers?: Record<string, string | number>): this {
    this.statusCode = status;
    if (headers !== undefined) for (const name of Object.keys(headers)) this.setHeader(name, headers[name] as string | number);
    return this;
  }

  /** Writes the answer; `onFinished` runs once its bytes have left (as `ServerResponse.end`'s callback). */
  end(body?: string | Buffer, onFinished?: () => void): this {
    if (this.#answered) return this;
    this.#answered = true;
    if (onFinished !== undefined) (this.#finishListeners ??= []).push(onFinished);
    this.#connection.answer(this.#id, this, this.statusCode, this.#contentType, body);
    return this;
  }

  on(event: 'close' | 'finish', listener: Listener): this {
    if (event === 'close') (this.#closeListeners ??= []).push(listener);
    else (this.#finishListeners ??= []).push(listener);
    return this;
  }

  /** An answer that cannot be completed: the connection ends (as an HTTP response's socket would). */
  destroy(): void {
    if (!this.#answered) this.#connection.destroy();
  }

  /** The answer's bytes have left for the socket (or were dropped: the request was cancelled). */
  finished(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#finishListeners !== undefined) for (const f of this.#finishListeners) f();
    this.closed();
  }

  /** The request is over: answered, cancelled, or its connection ended. */
  closed(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#closeListeners !== undefined) for (const f of this.#closeListeners) f();
  }
}

export type WireHandler = (req: WireServerRequest, res: WireServerResponse) => void;

/** One client connection: its frames in, its answers out, and the requests in flight on it. */
class WireConnection {
  readonly #socket: net.Socket;
  readonly #handler: WireHandler;
  readonly #reader = new WireReader();
  readonly #inflight = new Map<number, WireServerResponse>();
  #hello: Buffer | undefined = Buffer.alloc(0);
  #closeAfterAnswers = false;
  #ended = false;

  constructor(socket: net.Socket, handler: WireHandler) {
    this.#socket = socket;
    this.#handler = handler;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.#gone());
  }

  #data(chunk: Buffer): void {
    if (this.#ended) return;
    try {
      if (this.#hello !== undefined) {
        const seen = Buffer.concat([this.#hello, chunk]);
        if (seen.length < wireMagic.length) {
          if (!wireMagic.subarray(0, seen.length).equals(seen)) throw notWire();
          this.#hello = seen;
          return;
        }
        if (!seen.subarray(0, wireMagic.length).equals(wireMagic)) throw notWire();
        this.#hello = undefined;
        chunk = seen.subarray(wireMagic.length);
        if (chunk.length === 0) return;
      }
      for (const buf of this.#reader.push(chunk)) this.#frame(buf);
    } catch (error) {
      this.#refuse(isSkyrocketError(error) ? error : new SkyrocketError('MALFORMED_FRAME', String(error)));
    }
  }

  #frame(buf: Buffer): void {
    const frame = decodeWireFrame(buf);
    if (frame.kind === WireKind.request) {
      if (this.#inflight.has(frame.id)) throw new SkyrocketError('MALFORMED_FRAME', `request id ${frame.id} is already in flight`);
      const res = new WireServerResponse(this, frame.id);
      this.#inflight.set(frame.id, res);
      // The body is a view into the chunk the frame came in; it lives as long as the request does.
      this.#handler(new WireServerRequest(frame.method, frame.path, frame.headers, this.#socket, frame.body), res);
    } else if (frame.kind === WireKind.cancel) {
      const res = this.#inflight.get(frame.id);
      if (res === undefined) return; // answered already
      this.#inflight.delete(frame.id);
      res.closed();
      this.#settled();
    } else {
      throw new SkyrocketError('MALFORMED_FRAME', `a client does not send frames of kind ${frame.kind}`);
    }
  }

  answer(id: number, res: WireServerResponse, status: number, contentType: string, body: string | Buffer | undefined): void {
    if (this.#inflight.get(id) !== res || this.#ended) {
      // Cancelled or disconnected: nothing to write to.
      res.finished();
      return;
    }
    this.#inflight.delete(id);
    const bytes = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
    const head = encodeWireAnswerHead(id, status, contentType, bytes);
    const socket = this.#socket;
    if (bytes <= copyBelowBytes) {
      // One buffer, one write: copying a small body costs less than a gathered write.
      const frame = Buffer.allocUnsafe(head.length + bytes);
      head.copy(frame, 0);
      if (typeof body === 'string') frame.write(body, head.length, 'utf8');
      else if (body !== undefined) body.copy(frame, head.length);
      socket.write(frame);
      res.finished();
    } else {
      socket.cork();
      socket.write(head);
      socket.write(body as string | Buffer, () => res.finished());
      socket.uncork();
    }
    this.#settled();
  }

  closeAfterAnswers(): void {
    this.#closeAfterAnswers = true;
  }

  /** Ends the connection once nothing is in flight, after the last answer is written. */
  close(): void {
    this.#closeAfterAnswers = true;
    this.#settled();
  }

  destroy(): void {
    this.#ended = true;
    this.#socket.destroy();
  }

  #settled(): void {
    if (this.#inflight.size > 0) return;
    if (this.#closeAfterAnswers && !this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  #refuse(error: SkyrocketError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#socket.end(encodeWireClose(error));
    this.#gone();
  }

  #gone(): void {
    this.#ended = true;
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const res of inflight) res.closed();
  }
}

function notWire(): SkyrocketError {
  return new SkyrocketError('MALFORMED_FRAME', 'not a Skyrocket wire connection: it must start with "SKW1"');
}

/** The listener: plain TCP, or TLS with the broker's certificate. */
export class WireServer {
  readonly #server: net.Server;
  readonly #connections = new Set<WireConnection>();
  #closing = false;

  constructor(handler: WireHandler, tlsOptions?: { cert: string | Buffer; key: string | Buffer }) {
    const accept = (socket: net.Socket): void => {
      const c = new WireConnection(socket, handler);
      this.#connections.add(c);
      socket.on('close', () => this.#connections.delete(c));
      if (this.#closing) c.close();
    };
    this.#server = tlsOptions === undefined ? net.createServer(accept) : tls.createServer(tlsOptions, accept);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve((this.#server.address() as net.AddressInfo).port));
    });
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Stops accepting; idle connections end now, busy ones once their last answer is written. */
  close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of this.#connections) c.close();
    return closed;
  }

  /** Ends every connection at once (the grace period is over). */
  destroyAll(): void {
    for (const c of this.#connections) c.destroy();
  }
}
