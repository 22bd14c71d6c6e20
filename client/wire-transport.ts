import * as net from 'node:net';
import * as tls from 'node:tls';
import { SkyrocketError } from '../core/errors.ts';
import {
  WireKind,
  WireReader,
  decodeWireFrame,
  maxWireAnswerBytes,
  maxWireFrameBytes,
  encodeWireCancel,
  encodeWireRequest,
  wireMagic,
  wireTlsScheme,
} from '../core/wire.ts';
import { ExchangeFailure, type Answer, type Exchange, type Transport } from './transport.ts';

/**
 * The wire-protocol transport (core/wire.ts), for a `skyrocket://host:port` endpoint (TLS:
 * `skyrockets://`). One connection per endpoint carries every request of the clients that share
 * it, many in flight at once; it opens on the first request, holds the process open only while
 * requests are in flight, and a request made after it drops opens a new one. A request that times
 * out or is aborted is cancelled on the broker too (a long poll stops waiting).
 */
export function wireTransport(options: { ca?: string | Buffer | Array<string | Buffer> | undefined } = {}): Transport {
  const connections = new Map<string, WireClientConnection>();
  return (x) => {
    let c = connections.get(x.base);
    if (c === undefined || c.dead) {
      c = new WireClientConnection(new URL(x.base), options.ca);
      connections.set(x.base, c);
    }
    return c.exchange(x);
  };
}

interface Pending {
  resolve(answer: Answer): void;
  reject(error: Error): void;
}

class WireClientConnection {
  readonly #socket: net.Socket;
  readonly #reader = new WireReader(maxWireAnswerBytes);
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead = false;
  #referenced = false;

  constructor(url: URL, ca: string | Buffer | Array<string | Buffer> | undefined) {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 10911);
    this.#socket =
      url.protocol === wireTlsScheme
        ? tls.connect({ host, port, servername: net.isIP(host) === 0 ? host : undefined, ...(ca === undefined ? {} : { ca }) })
        : net.connect({ host, port });
    this.#socket.setNoDelay(true);
    this.#socket.unref();
    // Written before the connection opens: the socket sends it first once it does.
    this.#socket.write(wireMagic);
    this.#socket.on('data', (chunk: Buffer) => this.#data(chunk));
    this.#socket.on('error', (error: NodeJS.ErrnoException) => this.#fail(error.code ?? error.message, error));
    this.#socket.on('close', () => this.#fail('the connection closed'));
  }

  get dead(): boolean {
    return this.#dead;
  }

  exchange(x: Exchange): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (x.signal?.aborted === true) {
        reject(new ExchangeFailure('aborted', 'aborted', { cause: x.signal.reason }));
        return;
      }
      let frame: Buffer;
      try {
        frame = encodeWireRequest(0, x.method, x.path, x.headers, x.body);
      } catch (error) {
        reject(new SkyrocketError('INVALID_ARGUMENT', (error as Error).message));
        return;
      }
      if (frame.length > maxWireFrameBytes) {
        // Refused here, alone: sent, it would end the connection every other request shares.
        reject(new SkyrocketError('PAYLOAD_TOO_LARGE', `request of ${frame.length} bytes exceeds ${maxWireFrameBytes} bytes`));
        return;
      }
      const id = this.#allocateId();
      frame.writeUInt32BE(id, 5);
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        x.signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        this.#reference();
      };
      const giveUp = (failure: ExchangeFailure): void => {
        if (!this.#pending.has(id)) return;
        done();
        if (!this.#dead) this.#socket.write(encodeWireCancel(id));
        reject(failure);
      };
      const onAbort = (): void => giveUp(new ExchangeFailure('aborted', 'aborted', { cause: x.signal?.reason }));
      timer = setTimeout(() => giveUp(new ExchangeFailure('timeout', `no answer within ${x.timeoutMs} ms`)), x.timeoutMs);
      x.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (answer) => {
          done();
          resolve(answer);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      this.#reference();
      this.#socket.write(frame);
    });
  }

  /** Ids count up and wrap, skipping 0 and any still in flight. */
  #allocateId(): number {
    let id = this.#nextId;
    while (id === 0 || this.#pending.has(id)) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    return id;
  }

  /** The socket holds the process open while requests are in flight, and only then. */
  #reference(): void {
    const busy = this.#pending.size > 0;
    if (busy === this.#referenced) return;
    this.#referenced = busy;
    if (busy) this.#socket.ref();
    else this.#socket.unref();
  }

  #data(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.#reader.push(chunk);
    } catch (error) {
      this.#fail(`the broker sent a bad frame: ${(error as Error).message}`);
      this.#socket.destroy();
      return;
    }
    for (const buf of frames) {
      let frame;
      try {
        frame = decodeWireFrame(buf);
      } catch (error) {
        this.#fail(`the broker sent a bad frame: ${(error as Error).message}`);
        this.#socket.destroy();
        return;
      }
      if (frame.kind === WireKind.answer) {
        this.#pending.get(frame.id)?.resolve({ status: frame.status, contentType: frame.contentType, body: frame.body });
      } else if (frame.kind === WireKind.close) {
        this.#fail(`the broker closed the connection: ${frame.error}`);
      }
    }
  }

  #fail(reason: string, cause?: unknown): void {
    this.#dead = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#reference();
    for (const p of pending) p.reject(new ExchangeFailure('network', reason, cause === undefined ? undefined : { cause }));
  }
}
