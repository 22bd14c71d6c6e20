import { SkyrocketError } from './errors.ts';

/**
 * The binary form of a batch of messages, for the two hot requests of the REST API: sending a
 * batch and receiving one. The JSON form carries each body as a JSON string (text, or base64 for
 * other bytes), which both ends must escape, copy and, for base64, inflate by a third; a frame
 * carries the bodies as they are, and everything else as JSON:
 *
 *   frame   := magic "SKF1" | metaLength:u32 | meta | body*
 *   meta    := metaLength bytes of UTF-8 JSON: an object whose "messages" is a list with one
 *              object per message, in order, holding the message's fields except its body
 *              (other keys: whatever the JSON form of the request or answer has beside "messages")
 *   body    := length:u32 | length bytes                 (one per message, in the same order)
 *
 * In an answer's meta, a message may leave out a field the whole frame shares or that has its
 * default: `topic` when the meta's own `topic` names it, `tag` when it has none (null in JSON),
 * `keys` when empty, `properties` when empty.
 *
 * Integers are big-endian. Nothing may follow the last body. The media type is
 * `application/vnd.skyrocket.frame`: a client sends it as the content type of a send, and asks
 * for it with `Accept` on a receive; without it, both requests are JSON as before.
 */
export const frameMediaType = 'application/vnd.skyrocket.frame';

const magic = 0x534b4631; // "SKF1"
const headerBytes = 8;

export interface Frame {
  /** The meta object; `meta.messages` has one entry per body. */
  meta: Record<string, unknown> & { messages: Array<Record<string, unknown>> };
  bodies: Buffer[];
}

function malformed(reason: string): SkyrocketError {
  return new SkyrocketError('MALFORMED_FRAME', `request body is not a valid ${frameMediaType}: ${reason}`);
}

/**
 * Encodes a frame. `messages` are the per-message meta objects (no body), `bodies` their bodies
 * in the same order; `rest` holds the meta's other keys.
 */
export function encodeFrame(
  messages: ReadonlyArray<Record<string, unknown>>,
  bodies: ReadonlyArray<Uint8Array | string>,
  rest: Record<string, unknown> = {},
): Buffer {
  if (messages.length !== bodies.length) throw new Error('encodeFrame: one body per message');
  const meta = Buffer.from(JSON.stringify({ ...rest, messages }), 'utf8');
  let size = headerBytes + meta.length + 4 * bodies.length;
  const lengths = new Array<number>(bodies.length);
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i] as Uint8Array | string;
    const n = typeof b === 'string' ? Buffer.byteLength(b, 'utf8') : b.byteLength;
    lengths[i] = n;
    size += n;
  }
  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(magic, 0);
  out.writeUInt32BE(meta.length, 4);
  meta.copy(out, headerBytes);
  let at = headerBytes + meta.length;
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i] as Uint8Array | string;
    const n = lengths[i] as number;
    out.writeUInt32BE(n, at);
    at += 4;
    if (typeof b === 'string') out.write(b, at, n, 'utf8');
    else out.set(b, at);
    at += n;
  }
  return out;
}

/**
 * Decodes a frame; throws MALFORMED_FRAME for anything that is not exactly one well-formed frame.
 * The bodies are views into `buf`, not copies.
 */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < headerBytes || buf.readUInt32BE(0) !== magic) throw malformed('it does not start with "SKF1"');
  const metaLength = buf.readUInt32BE(4);
  if (metaLength > buf.length - headerBytes) throw malformed(`meta of ${metaLength} bytes runs past the end`);
  let meta: unknown;
  try {
    meta = JSON.parse(buf.toString('utf8', headerBytes, headerBytes + metaLength));
  } catch (error) {
    throw malformed(`meta is not JSON: ${(error as Error).message}`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw malformed('meta is not a JSON object');
  const messages = (meta as Record<string, unknown>)['messages'];
  if (!Array.isArray(messages)) throw malformed('meta has no "messages" list');
  const bodies = new Array<Buffer>(messages.length);
  let at = headerBytes + metaLength;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as unknown;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw malformed(`messages[${i}] is not an object`);
    if (at + 4 > buf.length) throw malformed(`the body of messages[${i}] is missing`);
    const n = buf.readUInt32BE(at);
    at += 4;
    if (n > buf.length - at) throw malformed(`the body of messages[${i}] (${n} bytes) runs past the end`);
    bodies[i] = buf.subarray(at, at + n);
    at += n;
  }
  if (at !== buf.length) throw malformed(`${buf.length - at} bytes follow the last body`);
  return { meta: meta as Frame['meta'], bodies };
}

/** Whether a Content-Type or Accept header names the frame media type. */
export function namesFrame(header: string | undefined): boolean {
  return header !== undefined && header.includes(frameMediaType);
}
