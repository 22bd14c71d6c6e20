import { describe, expect, it } from 'vitest';
import { errorCodes, isErrorCode, isSkyrocketError, SkyrocketError, type ErrorCode } from './errors.ts';

const codes = Object.keys(errorCodes) as ErrorCode[];

// The classes of apache.rocketmq.v2.Code: its values are the class times 100 plus a detail.
const rocketmqClasses = new Set([400, 401, 402, 403, 404, 408, 413, 428, 429, 431, 500, 501, 504, 505]);

describe('errorCodes', () => {
  it.each(codes)('%s has an HTTP error status and a RocketMQ code of the same kind', (code) => {
    const { http, rocketmq } = errorCodes[code];
    expect(Number.isInteger(http) && http >= 400 && http <= 599).toBe(true);
    expect(String(rocketmq)).toMatch(/^[1-9]\d{4}$/);
    const rocketmqClass = Math.floor(rocketmq / 100);
    expect(rocketmqClasses.has(rocketmqClass)).toBe(true);
    // A client error in one protocol is a client error in the other.
    expect(Math.floor(rocketmqClass / 100)).toBe(Math.floor(http / 100));
  });

  it('marks every malformed-request error as not retriable', () => {
    const retriable400s = codes.filter((code) => errorCodes[code].http === 400 && errorCodes[code].retriable);
    expect(retriable400s).toEqual([]);
  });

  it('recognizes its own codes and nothing else', () => {
    for (const code of codes) expect(isErrorCode(code)).toBe(true);
    for (const other of ['toString', '__proto__', 'constructor', 'bad_request', '', 40000, null]) {
      expect(isErrorCode(other)).toBe(false);
    }
  });
});

describe('SkyrocketError', () => {
  it('carries the table entry of its code', () => {
    const cause = new Error('disk');
    const error = new SkyrocketError('DISK_FULL', 'no space left', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(isSkyrocketError(error)).toBe(true);
    expect(isSkyrocketError(new Error('x'))).toBe(false);
    expect(error).toMatchObject({
      name: 'SkyrocketError',
      code: 'DISK_FULL',
      message: 'no space left',
      retriable: true,
      httpStatus: 507,
      rocketmqCode: 50001,
      field: undefined,
      cause,
    });
  });

  it('serializes to the API error body, with the field only when there is one', () => {
    const withField = new SkyrocketError('ILLEGAL_MESSAGE_TAG', 'bad tag', { field: 'messages[3].tag' });
    expect(JSON.parse(JSON.stringify(withField))).toEqual({
      error: { code: 'ILLEGAL_MESSAGE_TAG', message: 'bad tag', retriable: false, field: 'messages[3].tag' },
    });
    const withoutField = new SkyrocketError('NOT_LEADER', 'moved');
    expect(withoutField.toJSON()).toStrictEqual({ error: { code: 'NOT_LEADER', message: 'moved', retriable: true } });
    expect('cause' in withoutField).toBe(false);
  });
});
