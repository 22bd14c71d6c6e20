import { describe, expect, it } from 'vitest';
import { classifyInvokeError } from './lambda-invoker.ts';

describe('classifyInvokeError', () => {
  const sdkError = (name: string, status?: number, message = 'x') => Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

  it('sorts SDK errors into what the dispatcher does with the batch', () => {
    expect(classifyInvokeError(sdkError('TooManyRequestsException', 429)).kind).toBe('throttled');
    expect(classifyInvokeError(sdkError('SomethingNew', 429)).kind).toBe('throttled');
    expect(classifyInvokeError(sdkError('ResourceConflictException', 409)).kind).toBe('throttled');
    expect(classifyInvokeError(sdkError('RequestTooLargeException', 413)).kind).toBe('function-error');
    expect(classifyInvokeError(sdkError('ResourceNotFoundException', 404))).toMatchObject({ kind: 'unavailable', misconfigured: true });
    expect(classifyInvokeError(sdkError('ServiceException', 500))).toMatchObject({ kind: 'unavailable', misconfigured: false });
    expect(classifyInvokeError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toMatchObject({ kind: 'unavailable' });
    expect(classifyInvokeError(sdkError('TimeoutError', undefined, 'Connection timed out after 1000 ms')).kind).toBe('timeout');
    expect(classifyInvokeError(sdkError('TimeoutError', undefined, 'Socket timed out without establishing a connection within 5000 ms')).kind).toBe('unavailable');
    expect(classifyInvokeError(sdkError('AbortError')).kind).toBe('aborted');
  });
});
