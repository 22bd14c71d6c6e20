import { SkyrocketError } from './errors.ts';

/**
 * The wire protocol: the REST API's requests and answers as frames on one long-lived TCP (or TLS)
 * connection, many in flight at once. A request names the same method, path and headers as its
 * HTTP form and carries the same body; the broker runs it through the same router and handlers, so
 * every endpoint, error code and media type is the same. What it saves is HTTP's per-request
 * work on both ends (parsing and writing header blocks, a request and a response object each,
 * one request per connection at a time): a one-message send costs about half the CPU and its
 * p99 drops to what the disk takes (see the README's performance section).
 *
 *   connection := hello (client) | frame*   (both directions)
 *   hello      := magic "SKW1"
 *   frame      := length:u32 | kind:u8 | id:u32 | payload      (length counts kind, id and payload)
 *   kind 1 request  payload := method:u8 | pathLength:u16 | path | headerCount:u8
 *                              | (nameLength:u8 | name | valueLength:u16 | value)* | body
 *   kind 2 cancel   payload := empty            (the client gave up on request `id`)
 *   kind 3 answer   payload := status:u16 | contentTypeLength:u8 | contentType | body
 *   kind 4 close    payload := status:u16 | UTF-8 JSON error   (id 0: the server ends the connection)
 *
 * Integers are big-endian; names and values are UTF-8 (header names lower-case). Request ids are
 * chosen by the client and must not be reused while the request is in flight. A broker that reads
 * a frame it cannot parse answers with a close frame (code MALFORMED_FRAME) and ends the
 * connection; one whose length exceeds `maxWireFrameBytes` gets PAYLOAD_TOO_LARGE the same way.
 */
export const wireMagic = Buffer.from('SKW1', 'latin1');
export const wireScheme = 'skyrocket:';
export const wireTlsScheme = 'skyrockets:';

/**
 * The largest request frame a broker takes: above the largest request body any endpoint takes (a
 * 32 MiB batch sent as JSON, base64 bodies included, is under 48 MiB), so a body too large for
 * its endpoint gets that endpoint's PAYLOAD_TOO_LARGE answer like over HTTP, and only a frame
 * larger than this ends the connection. The SDK checks it before sending.
 */
export const maxWireFrameBytes = 64 * 1024 * 1024;

/**
 * The largest answer frame the SDK takes. A receive's answer has no fixed bound (up to the
 * receive's `max` messages of up to 4 MiB each), so this only stops a runaway length.
 */
export const maxWireAnswerBytes = 2 ** 31 - 1;

export const WireKind = { request: 1, cancel: 2, answer: 3, close: 4 } as const;

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'] as const;
const methodCodes: Record<string, number> = { GET: 1, POST: 2, PUT: 3, DELETE: 4, PATCH: 5, HEAD: 6 };

/** Bytes before a frame's payload: length, kind and id. */
export const wireHeaderBytes = 9;

export interface WireRequest {
  id: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface WireAnswer {
  id: number;
  status: number;
  contentType: string;
  body: Buffer;
}

export type WireFrame =
  | ({ kind: 1 } & WireRequest)
  | { kind: 2; id: number }
  | ({ kind: 3 } & WireAnswer)
  | { kind: 4; id: number; status: number; error: string };

function malformed(reason: string): SkyrocketError {
  return new SkyrocketError('MALFORMED_FRAME', `not a valid Skyrocket wire frame: ${reason}`);
}

/** Encodes a request frame. */
export function encodeWireRequest(id: number, method: string, path: string, headers: Readonly<Record<string, string>>, body?: Buffer | string): Buffer {
  const code = methodCodes[method];
  if (code === undefined) throw new Error(`wire: no method code for ${method}`);
  const names = Object.keys(headers);
  if (names.length > 255) throw new Error('wire: more than 255 headers');
  for (const name of names) {
    // An HTTP token; lower-case, as node:http hands header names to the broker's handlers.
    if (!/^[!#$%&'*+.^_`|~0-9a-zA-Z-]{1,255}$/.test(name)) throw new Error(`wire: ${JSON.stringify(name)} is not a header name`);
  }
  const pathBytes = Buffer.byteLength(path, 'utf8');
  if (pathBytes > 0xffff) throw new Error('wire: path longer than 65535 bytes');
  let size = wireHeaderBytes + 1 + 2 + pathBytes + 1;
  for (const name of names) {
    const valueBytes = Buffer.byteLength(headers[name] as string, 'utf8');
    if (valueBytes > 0xffff) throw new Error(`wire: header ${name} is too long`);
    size += 1 + name.length + 2 + valueBytes;
  }
  const bodyBytes = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
  size += bodyBytes;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(size - 4, 0);
  out[4] = WireKind.request;
  out.writeUInt32BE(id, 5);
  let at = wireHeaderBytes;
  out[at++] = code;
  out.writeUInt16BE(pathBytes, at);
  at += 2;
  at += out.write(path, at, 'utf8');
  out[at++] = names.length;
  for (const name of names) {
    const value = headers[name] as string;
    const nameAt = at++;
    const nameBytes = out.write(name.toLowerCase(), at, 'latin1');
    out[nameAt] = nameBytes;
    at += nameBytes;
    const valueAt = at;
    at += 2;
    const valueBytes = out.write(value, at, 'utf8');
    out.writeUInt16BE(valueBytes, valueAt);
    at += valueBytes;
  }
  if (typeof body === 'string') out.write(body, at, 'utf8');
  else if (body !== undefined) body.copy(out, at);
  return out;
}

/** The part of an answer frame before its body (the body is written after it, uncopied). */
export function encodeWireAnswerHead(id: number, status: number, contentType: string, bodyBytes: number): Buffer {
  const typeBytes = Buffer.byteLength(contentType, 'latin1');
  if (typeBytes > 255) throw new Error('wire: content type longer than 255 bytes');
  const headBytes = wireHeaderBytes + 2 + 1 + typeBytes;
  const out = Buffer.allocUnsafe(headBytes);
  out.writeUInt32BE(headBytes - 4 + bodyBytes, 0);
  out[4] = WireKind.answer;
  out.writeUInt32BE(id, 5);
  out.writeUInt16BE(status, wireHeaderBytes);
  out[wireHeaderBytes + 2] = typeBytes;
  out.write(contentType, wireHeaderBytes + 3, 'latin1');
  return out;
}

export function encodeWireCancel(id: number): Buffer {
  const out = Buffer.allocUnsafe(wireHeaderBytes);
  out.writeUInt32BE(wireHeaderBytes - 4, 0);
  out[4] = WireKind.cancel;
  out.writeUInt32BE(id, 5);
  return out;
}

export function encodeWireClose(error: SkyrocketError): Buffer {
  const json = Buffer.from(JSON.stringify(error.toJSON()), 'utf8');
  const out = Buffer.allocUnsafe(wireHeaderBytes + 2 + json.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = WireKind.close;
  out.writeUInt32BE(0, 5);
  out.writeUInt16BE(error.httpStatus, wireHeaderBytes);
  json.copy(out, wireHeaderBytes + 2);
  return out;
}

/** Decodes one whole frame (`buf` is exactly the frame, length field included). */
export function decodeWireFrame(buf: Buffer): WireFrame {
  const end = buf.length;
  if (end < wireHeaderBytes) throw malformed('shorter than its header');
  const kind = buf[4] as number;
  const id = buf.readUInt32BE(5);
  let at = wireHeaderBytes;
  switch (kind) {
    case WireKind.request: {
      if (at + 3 > end) throw pastEnd('the method and path length');
      const method = methods[(buf[at] as number) - 1];
      if (method === undefined) throw malformed(`unknown method code ${buf[at]}`);
      const pathBytes = buf.readUInt16BE(at + 1);
      at += 3;
      if (at + pathBytes + 1 > end) throw pastEnd('the path');
      const path = buf.toString('utf8', at, at + pathBytes);
      at += pathBytes;
      const count = buf[at++] as number;
      const headers: Record<string, string> = Object.create(null);
      for (let i = 0; i < count; i++) {
        if (at + 1 > end) throw pastEnd('a header');
        const nameBytes = buf[at++] as number;
        if (at + nameBytes + 2 > end) throw pastEnd('a header');
        const name = buf.toString('latin1', at, at + nameBytes);
        at += nameBytes;
        const valueBytes = buf.readUInt16BE(at);
        at += 2;
        if (at + valueBytes > end) throw pastEnd('a header value');
        headers[name] = buf.toString('utf8', at, at + valueBytes);
        at += valueBytes;
      }
      return { kind, id, method, path, headers, body: buf.subarray(at) };
    }
    case WireKind.cancel:
      if (end !== wireHeaderBytes) throw malformed('a cancel frame has no payload');
      return { kind, id };
    case WireKind.answer: {
      if (at + 3 > end) throw pastEnd('the status and content type length');
      const status = buf.readUInt16BE(at);
      const typeBytes = buf[at + 2] as number;
      at += 3;
      if (at + typeBytes > end) throw pastEnd('the content type');
      const contentType = buf.toString('latin1', at, at + typeBytes);
      return { kind, id, status, contentType, body: buf.subarray(at + typeBytes) };
    }
    case WireKind.close:
      if (at + 2 > end) throw pastEnd('the status');
      return { kind, id, status: buf.readUInt16BE(at), error: buf.toString('utf8', at + 2, end) };
    default:
      throw malformed(`unknown frame kind ${kind}`);
  }
}

function pastEnd(what: string): SkyrocketError {
  return malformed(`${what} runs past the end of the frame`);
}

/**
 * Cuts a byte stream into frames. `push` takes each chunk as it arrives and returns the whole
 * frames it completes (views into the chunks when a frame lies within one chunk, which is the
 * common case, so a frame is not copied). A length over `maxBytes` or under the header throws.
 */
export class WireReader {
  readonly #maxBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxBytes = maxWireFrameBytes) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Buffer): Buffer[] {
    let buf = chunk;
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#pendingBytes < 4) return [];
      const first = this.#pending[0] as Buffer;
      const frameBytes = 4 + (first.length >= 4 ? first.readUInt32BE(0) : Buffer.concat(this.#pending, 4).readUInt32BE(0));
      this.#check(frameBytes);
      if (this.#pendingBytes < frameBytes) return [];
      buf = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    const frames: Buffer[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const frameBytes = 4 + buf.readUInt32BE(at);
      this.#check(frameBytes);
      if (buf.length - at < frameBytes) break;
      frames.push(buf.subarray(at, at + frameBytes));
      at += frameBytes;
    }
    if (at < buf.length) {
      // The start of the next frame: kept (copied, so the chunk it came in can be freed).
      const rest = Buffer.from(buf.subarray(at));
      this.#pending.push(rest);
      this.#pendingBytes = rest.length;
    }
    return frames;
  }

  #check(frameBytes: number): void {
    if (frameBytes < wireHeaderBytes) throw malformed(`frame length ${frameBytes - 4} is shorter than a frame header`);
    if (frameBytes > this.#maxBytes) {
      throw new SkyrocketError('PAYLOAD_TOO_LARGE', `wire frame of ${frameBytes} bytes exceeds ${this.#maxBytes} bytes`);
    }
  }
}
