import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from './errors.ts';
import {
  WireKind,
  WireReader,
  decodeWireFrame,
  encodeWireAnswerHead,
  encodeWireCancel,
  encodeWireClose,
  encodeWireRequest,
  maxWireFrameBytes,
  wireHeaderBytes,
  wireMagic,
  type WireFrame,
} from './wire.ts';

/** Runs `fn`, which must throw a SkyrocketError with `code`; returns it. */
function refused(code: 'MALFORMED_FRAME' | 'PAYLOAD_TOO_LARGE', fn: () => unknown): SkyrocketError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe(code);
    return error as SkyrocketError;
  }
  throw new Error(`expected ${code}`);
}

/** A frame of `kind` and `id` with `payload`, its length field right. */
function rawFrame(kind: number, id: number, payload: Buffer | number[] = []): Buffer {
  const body = Buffer.from(payload);
  const out = Buffer.alloc(wireHeaderBytes + body.length);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = kind;
  out.writeUInt32BE(id, 5);
  body.copy(out, wireHeaderBytes);
  return out;
}

function answerFrame(id: number, status: number, contentType: string, body: Buffer): Buffer {
  return Buffer.concat([encodeWireAnswerHead(id, status, contentType, body.length), body]);
}

function asRequest(frame: WireFrame): Extract<WireFrame, { kind: 1 }> {
  expect(frame.kind).toBe(WireKind.request);
  return frame as Extract<WireFrame, { kind: 1 }>;
}

function plain(headers: Record<string, string>): Record<string, string> {
  return { ...headers };
}

describe('wire constants', () => {
  it('the hello is "SKW1" and a frame header is length, kind and id', () => {
    expect(wireMagic.toString('latin1')).toBe('SKW1');
    expect(wireHeaderBytes).toBe(9);
    expect(WireKind).toEqual({ request: 1, cancel: 2, answer: 3, close: 4 });
    // Above the largest request body an endpoint takes (a 32 MiB batch as JSON, under 48 MiB).
    expect(maxWireFrameBytes).toBe(64 * 1024 * 1024);
  });
});

describe('request frames', () => {
  it.each(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'])('round-trip method %s', (method) => {
    const frame = encodeWireRequest(7, method, '/v1/topics', {});
    const decoded = asRequest(decodeWireFrame(frame));
    expect(decoded.method).toBe(method);
    expect(decoded.id).toBe(7);
    expect(decoded.path).toBe('/v1/topics');
  });

  it('lays the frame out as documented: length, kind, id, method code, path, headers, body', () => {
    const frame = encodeWireRequest(0x01020304, 'POST', '/a', { 'X-K': 'v' }, 'b');
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(frame[4]).toBe(WireKind.request);
    expect(frame.readUInt32BE(5)).toBe(0x01020304);
    expect(frame[9]).toBe(2); // POST
    expect(frame.readUInt16BE(10)).toBe(2);
    expect(frame.toString('latin1', 12, 14)).toBe('/a');
    expect(frame[14]).toBe(1);
    expect(frame[15]).toBe(3);
    expect(frame.toString('latin1', 16, 19)).toBe('x-k'); // names go lower-case
    expect(frame.readUInt16BE(19)).toBe(1);
    expect(frame.toString('latin1', 21, 22)).toBe('v');
    expect(frame.toString('latin1', 22)).toBe('b');
    expect(frame.length).toBe(23);
  });

  it('round-trips a UTF-8 path and UTF-8 header values, header names lower-cased', () => {
    const path = '/v1/topics/caf%C3%A9/ünïcödé/€/😀?key=日本';
    const headers = { Authorization: 'Bearer sk_test_0123456789abcdef', 'X-Note': 'héllo wörld ✓ 😀', accept: '' };
    const decoded = asRequest(decodeWireFrame(encodeWireRequest(42, 'POST', path, headers, '{}')));
    expect(decoded.path).toBe(path);
    expect(plain(decoded.headers)).toEqual({
      authorization: 'Bearer sk_test_0123456789abcdef',
      'x-note': 'héllo wörld ✓ 😀',
      accept: '',
    });
    expect(decoded.body.toString('utf8')).toBe('{}');
  });

  it('an absent body and an empty body both decode as zero bytes', () => {
    for (const body of [undefined, '', Buffer.alloc(0)]) {
      const frame = encodeWireRequest(1, 'GET', '/healthz', { accept: 'application/json' }, body);
      const decoded = asRequest(decodeWireFrame(frame));
      expect(decoded.body.length).toBe(0);
      expect(plain(decoded.headers)).toEqual({ accept: 'application/json' });
    }
  });

  it('a string body travels as its UTF-8 bytes, a Buffer body byte for byte', () => {
    const text = 'héllo 😀 wörld';
    const asText = asRequest(decodeWireFrame(encodeWireRequest(1, 'POST', '/x', {}, text)));
    expect(asText.body.equals(Buffer.from(text, 'utf8'))).toBe(true);
    const binary = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0, 0]);
    const asBinary = asRequest(decodeWireFrame(encodeWireRequest(2, 'PUT', '/x', { 'content-type': 'application/octet-stream' }, binary)));
    expect(asBinary.body.equals(binary)).toBe(true);
  });

  it('the decoded body is a view into the frame, not a copy', () => {
    const frame = encodeWireRequest(3, 'POST', '/x', {}, Buffer.alloc(100, 7));
    const decoded = asRequest(decodeWireFrame(frame));
    expect(decoded.body.buffer).toBe(frame.buffer);
    expect(decoded.body.byteOffset + decoded.body.length).toBe(frame.byteOffset + frame.length);
  });

  it('round-trips any request (property)', () => {
    const headerName = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD'),
        fc.string({ unit: 'grapheme', maxLength: 80 }),
        fc.dictionary(headerName, fc.string({ unit: 'grapheme', maxLength: 40 }), { maxKeys: 8 }),
        fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), fc.string({ unit: 'grapheme', maxLength: 60 })),
        (id, method, path, headers, body) => {
          const decoded = asRequest(decodeWireFrame(encodeWireRequest(id, method, path, headers, body)));
          expect(decoded).toMatchObject({ kind: 1, id, method, path });
          expect(plain(decoded.headers)).toEqual(headers);
          expect(decoded.body.toString('hex')).toBe(Buffer.from(body).toString('hex'));
        },
      ),
    );
  });

  // A name that is not an HTTP token ('İ' lower-cases to two characters) is refused, so a name's
  // bytes are always the ones the frame was sized for.
  it('a header name that grows when lower-cased is refused or round-trips, never cuts the body', () => {
    let frame: Buffer;
    try {
      frame = encodeWireRequest(1, 'POST', '/p', { 'X-İ': 'value' }, 'BODY');
    } catch {
      return; // refusing it is right too
    }
    const decoded = asRequest(decodeWireFrame(frame));
    expect(decoded.body.toString('utf8')).toBe('BODY');
    expect(Object.values(decoded.headers)).toEqual(['value']);
  });

  it('the encoder refuses what the format cannot carry', () => {
    expect(() => encodeWireRequest(1, 'TRACE', '/', {})).toThrow(/method/);
    expect(() => encodeWireRequest(1, 'get', '/', {})).toThrow(/method/);
    expect(() => encodeWireRequest(1, 'GET', `/${'a'.repeat(0xffff)}`, {})).toThrow(/path/);
    const many = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`h${i}`, 'v']));
    expect(() => encodeWireRequest(1, 'GET', '/', many)).toThrow(/255 headers/);
    expect(() => encodeWireRequest(1, 'GET', '/', { ['n'.repeat(256)]: 'v' })).toThrow(/not a header name/);
    expect(() => encodeWireRequest(1, 'GET', '/', { 'x-€': 'v' })).toThrow(/not a header name/);
    expect(() => encodeWireRequest(1, 'GET', '/', { '': 'v' })).toThrow(/not a header name/);
    expect(() => encodeWireRequest(1, 'GET', '/', { n: 'v'.repeat(0x10000) })).toThrow(/too long/);
    // The largest allowed still round-trips.
    const edge = encodeWireRequest(1, 'GET', `/${'a'.repeat(0xfffe)}`, { ['n'.repeat(255)]: 'v'.repeat(0xffff) });
    const decoded = asRequest(decodeWireFrame(edge));
    expect(decoded.path.length).toBe(0xffff);
    expect(decoded.headers['n'.repeat(255)]?.length).toBe(0xffff);
  });
});

describe('answer, cancel and close frames', () => {
  it('an answer head with its body round-trips status, content type and body', () => {
    const body = Buffer.from('{"results":[]}');
    const head = encodeWireAnswerHead(99, 201, 'application/json; charset=utf-8', body.length);
    expect(head.readUInt32BE(0)).toBe(head.length - 4 + body.length);
    const decoded = decodeWireFrame(Buffer.concat([head, body]));
    expect(decoded).toMatchObject({ kind: WireKind.answer, id: 99, status: 201, contentType: 'application/json; charset=utf-8' });
    expect((decoded as { body: Buffer }).body.equals(body)).toBe(true);
  });

  it('an answer without a body or content type (a 204)', () => {
    const decoded = decodeWireFrame(encodeWireAnswerHead(0xffffffff, 204, '', 0));
    expect(decoded).toMatchObject({ kind: WireKind.answer, id: 0xffffffff, status: 204, contentType: '' });
    expect((decoded as { body: Buffer }).body.length).toBe(0);
  });

  it('round-trips any answer (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.integer({ min: 100, max: 599 }),
        fc.stringMatching(/^[\x20-\x7e]{0,255}$/),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        (id, status, contentType, body) => {
          const decoded = decodeWireFrame(answerFrame(id, status, contentType, body));
          expect(decoded).toMatchObject({ kind: 3, id, status, contentType });
          expect((decoded as { body: Buffer }).body.equals(body)).toBe(true);
        },
      ),
    );
  });

  it('a content type over 255 bytes is refused by the encoder', () => {
    expect(() => encodeWireAnswerHead(1, 200, 'x'.repeat(256), 0)).toThrow(/content type/);
  });

  it('a cancel is a bare header', () => {
    const frame = encodeWireCancel(12345);
    expect(frame.length).toBe(wireHeaderBytes);
    expect(frame.readUInt32BE(0)).toBe(wireHeaderBytes - 4);
    expect(decodeWireFrame(frame)).toEqual({ kind: WireKind.cancel, id: 12345 });
  });

  it('a close frame carries id 0, the HTTP status and the JSON error', () => {
    const error = new SkyrocketError('PAYLOAD_TOO_LARGE', 'wire frame of 9 MiB ✗', { field: 'frame' });
    const frame = encodeWireClose(error);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    const decoded = decodeWireFrame(frame);
    expect(decoded).toMatchObject({ kind: WireKind.close, id: 0, status: 413 });
    const json = JSON.parse((decoded as { error: string }).error);
    expect(json).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'wire frame of 9 MiB ✗', retriable: false, field: 'frame' } });
    const malformed = decodeWireFrame(encodeWireClose(new SkyrocketError('MALFORMED_FRAME', 'bad')));
    expect(malformed).toMatchObject({ kind: 4, id: 0, status: 400 });
    expect(JSON.parse((malformed as { error: string }).error).error.code).toBe('MALFORMED_FRAME');
  });
});

describe('malformed frames', () => {
  it('a frame shorter than its header', () => {
    for (let n = 0; n < wireHeaderBytes; n++) {
      refused('MALFORMED_FRAME', () => decodeWireFrame(encodeWireCancel(1).subarray(0, n)));
    }
  });

  it.each([0, 5, 6, 42, 255])('an unknown kind %i', (kind) => {
    const error = refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(kind, 1, [1, 0, 1, 0x2f, 0])));
    expect(error.message).toMatch(/kind/);
  });

  it.each([0, 7, 200, 255])('an unknown method code %i', (code) => {
    const frame = encodeWireRequest(1, 'GET', '/x', {});
    frame[wireHeaderBytes] = code;
    const error = refused('MALFORMED_FRAME', () => decodeWireFrame(frame));
    expect(error.message).toMatch(/method/);
  });

  it('a request without room for its method and path length', () => {
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1)));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1])));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0])));
  });

  it('a path length running past the end', () => {
    // GET, path of 10 bytes, but only 3 there (and no header count).
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 10, 0x2f, 0x61, 0x62])));
    // The path fits exactly but the header count byte is missing.
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 2, 0x2f, 0x61])));
    // Cut anywhere inside the path of a whole request.
    const whole = encodeWireRequest(1, 'GET', '/v1/topics/orders', {});
    for (let cut = wireHeaderBytes + 3; cut < whole.length; cut++) {
      const truncated = Buffer.from(whole.subarray(0, cut));
      truncated.writeUInt32BE(cut - 4, 0);
      refused('MALFORMED_FRAME', () => decodeWireFrame(truncated));
    }
  });

  it('header counts, name lengths and value lengths running past the end', () => {
    // Two headers announced, none there.
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 1, 0x2f, 2])));
    // A name of 5 bytes, 2 there.
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 1, 0x2f, 1, 5, 0x61, 0x62])));
    // A name, but no room for the value length.
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 1, 0x2f, 1, 1, 0x61, 0])));
    // A value of 0x0100 bytes, 1 there.
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(1, 1, [1, 0, 1, 0x2f, 1, 1, 0x61, 1, 0, 0x62])));
    // Every cut of a request with headers and no body falls inside the header block.
    const whole = encodeWireRequest(5, 'POST', '/p', { authorization: 'Bearer k', 'content-type': 'application/json' });
    const headersStart = wireHeaderBytes + 3 + 2 + 1;
    for (let cut = headersStart; cut < whole.length; cut++) {
      const truncated = Buffer.from(whole.subarray(0, cut));
      truncated.writeUInt32BE(cut - 4, 0);
      refused('MALFORMED_FRAME', () => decodeWireFrame(truncated));
    }
  });

  it('an answer whose content type length runs past the end', () => {
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(3, 1)));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(3, 1, [0, 200])));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(3, 1, [0, 200, 4, 0x61, 0x62, 0x63])));
    expect(decodeWireFrame(rawFrame(3, 1, [0, 200, 3, 0x61, 0x62, 0x63]))).toMatchObject({ kind: 3, status: 200, contentType: 'abc' });
  });

  it('a cancel with a payload', () => {
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(2, 1, [0])));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(2, 1, Buffer.alloc(100))));
  });

  it('a close without its status', () => {
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(4, 0)));
    refused('MALFORMED_FRAME', () => decodeWireFrame(rawFrame(4, 0, [1])));
  });

  it('never throws anything but MALFORMED_FRAME on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 4 }), (bytes, kind) => {
        const frame = rawFrame(kind, 1, Buffer.from(bytes));
        try {
          const decoded = decodeWireFrame(frame);
          expect(decoded.kind).toBe(kind);
        } catch (error) {
          expect(error).toBeInstanceOf(SkyrocketError);
          expect((error as SkyrocketError).code).toBe('MALFORMED_FRAME');
        }
      }),
    );
  });
});

const frameArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .record({
      id: fc.nat({ max: 0xffffffff }),
      method: fc.constantFrom('GET', 'POST', 'DELETE'),
      path: fc.string({ unit: 'grapheme', maxLength: 30 }),
      headers: fc.dictionary(fc.stringMatching(/^[a-z-]{1,12}$/), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
      body: fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
    })
    .map((r) => encodeWireRequest(r.id, r.method, r.path, r.headers, r.body)),
  fc
    .record({ id: fc.nat({ max: 0xffffffff }), status: fc.integer({ min: 100, max: 599 }), body: fc.uint8Array({ maxLength: 120 }) })
    .map((a) => answerFrame(a.id, a.status, 'application/json', Buffer.from(a.body))),
  fc.nat({ max: 0xffffffff }).map((id) => encodeWireCancel(id)),
  fc.constantFrom('MALFORMED_FRAME', 'PAYLOAD_TOO_LARGE' as const).map((code) => encodeWireClose(new SkyrocketError(code, 'x'))),
);

/** Pushes `chunks` through one reader; the frames it gives, copied (views may share chunks). */
function readAll(reader: WireReader, chunks: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const chunk of chunks) for (const frame of reader.push(chunk)) out.push(Buffer.from(frame));
  return out;
}

function cutAt(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    // Fresh buffers, as a socket gives: a chunk must not be a view of the others.
    chunks.push(Buffer.from(stream.subarray(from, p)));
    from = p;
  }
  chunks.push(Buffer.from(stream.subarray(from)));
  return chunks;
}

describe('WireReader', () => {
  it('cuts one chunk of several frames into those frames, as views of the chunk', () => {
    const frames = [
      encodeWireRequest(1, 'POST', '/a', { k: 'v' }, 'one'),
      encodeWireCancel(1),
      answerFrame(2, 200, 'application/json', Buffer.from('{}')),
      encodeWireClose(new SkyrocketError('MALFORMED_FRAME', 'x')),
    ];
    const chunk = Buffer.concat(frames);
    const got = new WireReader().push(chunk);
    expect(got).toHaveLength(4);
    got.forEach((g, i) => {
      expect(g.equals(frames[i] as Buffer)).toBe(true);
      expect(g.buffer).toBe(chunk.buffer);
    });
  });

  it('a frame split at every possible byte boundary comes out whole and the same', () => {
    const frame = encodeWireRequest(77, 'POST', '/v1/topics/t/messages', { authorization: 'Bearer x', 'content-type': 'a/b' }, Buffer.from([0, 1, 2, 3, 255]));
    for (let cut = 0; cut <= frame.length; cut++) {
      const reader = new WireReader();
      const first = reader.push(Buffer.from(frame.subarray(0, cut)));
      const second = reader.push(Buffer.from(frame.subarray(cut)));
      const got = [...first, ...second];
      expect(got, `cut at ${cut}`).toHaveLength(1);
      expect((got[0] as Buffer).equals(frame), `cut at ${cut}`).toBe(true);
      expect(decodeWireFrame(got[0] as Buffer)).toMatchObject({ kind: 1, id: 77 });
    }
  });

  it('two frames split at every pair of boundaries come out whole and in order', () => {
    const a = encodeWireRequest(1, 'GET', '/x', { h: 'é' });
    const b = answerFrame(2, 200, 'text/plain', Buffer.from('hello'));
    const stream = Buffer.concat([a, b]);
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const got = readAll(new WireReader(), cutAt(stream, [i, j]));
        expect(got.map((g) => g.toString('hex')), `cuts ${i}, ${j}`).toEqual([a.toString('hex'), b.toString('hex')]);
      }
    }
  });

  it('one byte at a time', () => {
    const frames = [encodeWireCancel(3), encodeWireRequest(4, 'DELETE', '/t', {}), encodeWireCancel(5)];
    const stream = Buffer.concat(frames);
    const reader = new WireReader();
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...reader.push(Buffer.from([stream[i] as number])));
    expect(got.map((g) => g.toString('hex'))).toEqual(frames.map((f) => f.toString('hex')));
  });

  it('an empty chunk completes nothing and loses nothing', () => {
    const frame = encodeWireCancel(9);
    const reader = new WireReader();
    expect(reader.push(Buffer.alloc(0))).toEqual([]);
    expect(reader.push(frame.subarray(0, 3))).toEqual([]);
    expect(reader.push(Buffer.alloc(0))).toEqual([]);
    const got = reader.push(frame.subarray(3));
    expect(got).toHaveLength(1);
    expect((got[0] as Buffer).equals(frame)).toBe(true);
  });

  it('gives the same frames however the stream is cut (property)', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
        const stream = Buffer.concat(frames);
        const got = readAll(new WireReader(), cutAt(stream, cuts));
        expect(got.map((g) => g.toString('hex'))).toEqual(frames.map((f) => f.toString('hex')));
        // And each decodes as its unsplit original does.
        got.forEach((g, i) => expect(decodeWireFrame(g)).toEqual(decodeWireFrame(frames[i] as Buffer)));
      }),
    );
  });

  it('a frame kept across chunks is not spoiled when the caller reuses those chunks', () => {
    const frame = encodeWireRequest(1, 'POST', '/x', {}, Buffer.alloc(50, 0xaa));
    const reader = new WireReader();
    const chunk = Buffer.from(frame.subarray(0, 20));
    expect(reader.push(chunk)).toEqual([]);
    chunk.fill(0); // the reader must have kept its own copy of the start
    const got = reader.push(Buffer.from(frame.subarray(20)));
    expect(got).toHaveLength(1);
    expect((got[0] as Buffer).equals(frame)).toBe(true);
  });

  it('a length above the maximum throws PAYLOAD_TOO_LARGE from the length field alone', () => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(maxWireFrameBytes - 4 + 1, 0);
    refused('PAYLOAD_TOO_LARGE', () => new WireReader().push(length));
    // The length arriving in pieces: refused once its fourth byte is there, without the payload.
    const reader = new WireReader();
    expect(reader.push(length.subarray(0, 2))).toEqual([]);
    expect(reader.push(length.subarray(2, 3))).toEqual([]);
    refused('PAYLOAD_TOO_LARGE', () => reader.push(length.subarray(3, 4)));
    // After a whole frame in the same chunk.
    refused('PAYLOAD_TOO_LARGE', () => new WireReader().push(Buffer.concat([encodeWireCancel(1), length])));
    // The largest length field.
    refused('PAYLOAD_TOO_LARGE', () => new WireReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff])));
  });

  it('a frame of exactly the maximum is waited for, not refused', () => {
    const length = Buffer.alloc(wireHeaderBytes);
    length.writeUInt32BE(maxWireFrameBytes - 4, 0);
    length[4] = WireKind.request;
    expect(new WireReader().push(length)).toEqual([]);
  });

  it('a smaller maximum of its own', () => {
    const reader = new WireReader(64);
    expect(reader.push(answerFrame(1, 200, '', Buffer.alloc(64 - 12)))).toHaveLength(1);
    refused('PAYLOAD_TOO_LARGE', () => new WireReader(64).push(answerFrame(1, 200, '', Buffer.alloc(64 - 11))));
  });

  it.each([0, 1, 4])('a length of %i, shorter than a frame header, throws MALFORMED_FRAME', (n) => {
    const length = Buffer.alloc(8);
    length.writeUInt32BE(n, 0);
    refused('MALFORMED_FRAME', () => new WireReader().push(length));
    const reader = new WireReader();
    expect(reader.push(length.subarray(0, 1))).toEqual([]);
    refused('MALFORMED_FRAME', () => reader.push(length.subarray(1)));
  });
});
