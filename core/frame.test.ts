import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from './errors.ts';
import { decodeFrame, encodeFrame, frameMediaType, namesFrame } from './frame.ts';

const metaArb = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
const bodyArb = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
);

function malformed(fn: () => unknown): SkyrocketError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SkyrocketError);
    expect((error as SkyrocketError).code).toBe('MALFORMED_FRAME');
    return error as SkyrocketError;
  }
  throw new Error('expected MALFORMED_FRAME');
}

describe('frames', () => {
  it('round-trip meta and bodies, strings as their UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(metaArb, bodyArb), { maxLength: 20 }), metaArb, (items, rest) => {
        fc.pre(!('messages' in rest));
        const frame = encodeFrame(
          items.map(([m]) => m),
          items.map(([, b]) => b),
          rest,
        );
        const decoded = decodeFrame(frame);
        expect(JSON.parse(JSON.stringify(decoded.meta))).toEqual(JSON.parse(JSON.stringify({ ...rest, messages: items.map(([m]) => m) })));
        expect(decoded.bodies.map((b) => b.toString('hex'))).toEqual(items.map(([, b]) => Buffer.from(b).toString('hex')));
      }),
    );
  });

  it('bodies are views into the frame, not copies', () => {
    const frame = encodeFrame([{}], [Buffer.from('abc')]);
    const { bodies } = decodeFrame(frame);
    expect(bodies[0]!.buffer).toBe(frame.buffer);
  });

  it('refuses every truncation and any trailing byte', () => {
    const frame = encodeFrame([{ tag: 'a' }, { keys: ['k'] }], ['first body', Buffer.from([0, 1, 2, 255])], { transactional: false });
    for (let n = 0; n < frame.length; n++) malformed(() => decodeFrame(frame.subarray(0, n)));
    expect(malformed(() => decodeFrame(Buffer.concat([frame, Buffer.from([0])]))).message).toMatch(/follow the last body/);
  });

  it('refuses a wrong magic, meta that is not an object with a messages list, and message entries that are not objects', () => {
    const withMeta = (meta: string, tail: Buffer = Buffer.alloc(0)): Buffer => {
      const m = Buffer.from(meta);
      const head = Buffer.alloc(8);
      head.write('SKF1', 0, 'latin1');
      head.writeUInt32BE(m.length, 4);
      return Buffer.concat([head, m, tail]);
    };
    expect(malformed(() => decodeFrame(Buffer.from('{"messages":[]}'))).message).toMatch(/SKF1/);
    expect(malformed(() => decodeFrame(withMeta('{"messages":'))).message).toMatch(/not JSON/);
    expect(malformed(() => decodeFrame(withMeta('[1]'))).message).toMatch(/not a JSON object/);
    expect(malformed(() => decodeFrame(withMeta('{"messages":{}}'))).message).toMatch(/no "messages" list/);
    expect(malformed(() => decodeFrame(withMeta('{"messages":[1]}', Buffer.from([0, 0, 0, 0])))).message).toMatch(/messages\[0\] is not an object/);
    expect(malformed(() => decodeFrame(withMeta('{"messages":[{}]}', Buffer.from([0, 0, 0, 9, 1])))).message).toMatch(/runs past the end/);
    expect(decodeFrame(withMeta('{"messages":[]}')).bodies).toEqual([]);
  });

  it('never throws anything but MALFORMED_FRAME on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const buf = Buffer.concat([Buffer.from('SKF1'), Buffer.from(bytes)]);
        try {
          decodeFrame(buf);
        } catch (error) {
          expect((error as SkyrocketError).code).toBe('MALFORMED_FRAME');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('names the media type in Content-Type and Accept headers', () => {
    expect(namesFrame(frameMediaType)).toBe(true);
    expect(namesFrame(`${frameMediaType}, application/json`)).toBe(true);
    expect(namesFrame('application/json')).toBe(false);
    expect(namesFrame(undefined)).toBe(false);
  });
});
