/**
 * The one table of operating errors shared by the broker, the APIs, the SDK and the CLI.
 *
 * Every code has exactly one HTTP status and one RocketMQ v2 status code (the `Code` enum of
 * apache.rocketmq.v2), and says whether retrying the same request may succeed. Retry code reads
 * `retriable`; it never needs a list of error types.
 */
export const errorCodes = {
  // 400: the request itself is wrong; retrying it unchanged cannot succeed.
  BAD_REQUEST: { http: 400, rocketmq: 40000, retriable: false },
  MALFORMED_JSON: { http: 400, rocketmq: 40000, retriable: false },
  MALFORMED_FRAME: { http: 400, rocketmq: 40000, retriable: false },
  INVALID_ARGUMENT: { http: 400, rocketmq: 40000, retriable: false },
  ILLEGAL_TOPIC: { http: 400, rocketmq: 40002, retriable: false },
  ILLEGAL_CONSUMER_GROUP: { http: 400, rocketmq: 40003, retriable: false },
  ILLEGAL_MESSAGE_TAG: { http: 400, rocketmq: 40004, retriable: false },
  ILLEGAL_MESSAGE_KEY: { http: 400, rocketmq: 40005, retriable: false },
  ILLEGAL_MESSAGE_GROUP: { http: 400, rocketmq: 40006, retriable: false },
  ILLEGAL_MESSAGE_PROPERTY_KEY: { http: 400, rocketmq: 40007, retriable: false },
  INVALID_TRANSACTION_ID: { http: 400, rocketmq: 40008, retriable: false },
  ILLEGAL_MESSAGE_ID: { http: 400, rocketmq: 40009, retriable: false },
  INVALID_FILTER_EXPRESSION: { http: 400, rocketmq: 40010, retriable: false },
  ILLEGAL_INVISIBLE_TIME: { http: 400, rocketmq: 40011, retriable: false },
  ILLEGAL_DELIVERY_TIME: { http: 400, rocketmq: 40012, retriable: false },
  INVALID_RECEIPT_HANDLE: { http: 400, rocketmq: 40013, retriable: false },
  MESSAGE_PROPERTY_CONFLICT_WITH_TYPE: { http: 400, rocketmq: 40014, retriable: false },
  MESSAGE_CORRUPTED: { http: 400, rocketmq: 40016, retriable: false },
  ILLEGAL_POLLING_TIME: { http: 400, rocketmq: 40018, retriable: false },
  ILLEGAL_OFFSET: { http: 400, rocketmq: 40019, retriable: false },
  // 401 / 403: who is asking, and may they.
  UNAUTHORIZED: { http: 401, rocketmq: 40100, retriable: false },
  FORBIDDEN: { http: 403, rocketmq: 40300, retriable: false },
  // 404: the thing named does not exist.
  NOT_FOUND: { http: 404, rocketmq: 40400, retriable: false },
  MESSAGE_NOT_FOUND: { http: 404, rocketmq: 40401, retriable: false },
  TOPIC_NOT_FOUND: { http: 404, rocketmq: 40402, retriable: false },
  CONSUMER_GROUP_NOT_FOUND: { http: 404, rocketmq: 40403, retriable: false },
  QUEUE_NOT_FOUND: { http: 404, rocketmq: 40400, retriable: false },
  METHOD_NOT_ALLOWED: { http: 405, rocketmq: 40000, retriable: false },
  // 409: the thing exists, or changed under us.
  ALREADY_EXISTS: { http: 409, rocketmq: 42800, retriable: false },
  CONFLICT: { http: 409, rocketmq: 42800, retriable: true },
  /** A commit of a rolled-back transaction, or the reverse; RocketMQ answers INVALID_TRANSACTION_ID. */
  TRANSACTION_ALREADY_RESOLVED: { http: 409, rocketmq: 40008, retriable: false },
  // 408 / 413 / 429 / 431.
  REQUEST_TIMEOUT: { http: 408, rocketmq: 40800, retriable: true },
  PAYLOAD_TOO_LARGE: { http: 413, rocketmq: 41300, retriable: false },
  MESSAGE_BODY_TOO_LARGE: { http: 413, rocketmq: 41301, retriable: false },
  MESSAGE_BODY_EMPTY: { http: 400, rocketmq: 41302, retriable: false },
  TOO_MANY_REQUESTS: { http: 429, rocketmq: 42900, retriable: true },
  MESSAGE_PROPERTIES_TOO_LARGE: { http: 413, rocketmq: 43101, retriable: false },
  // 5xx: the service could not do it now; most are worth retrying.
  INTERNAL_ERROR: { http: 500, rocketmq: 50001, retriable: true },
  STORE_CORRUPTED: { http: 500, rocketmq: 50001, retriable: false },
  DISK_FULL: { http: 507, rocketmq: 50001, retriable: true },
  STORE_CLOSED: { http: 503, rocketmq: 50001, retriable: true },
  NOT_LEADER: { http: 503, rocketmq: 50002, retriable: true },
  SERVICE_UNAVAILABLE: { http: 503, rocketmq: 50001, retriable: true },
  NOT_IMPLEMENTED: { http: 501, rocketmq: 50100, retriable: false },
  UPSTREAM_TIMEOUT: { http: 504, rocketmq: 50400, retriable: true },
  FLUSH_TIMEOUT: { http: 504, rocketmq: 50401, retriable: true },
} as const satisfies Record<string, { http: number; rocketmq: number; retriable: boolean }>;

export type ErrorCode = keyof typeof errorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}

export interface SkyrocketErrorOptions {
  /** The field of the request that is wrong, as a dotted path (`messages[3].tag`). */
  field?: string;
  cause?: unknown;
}

/**
 * An operating error: bad input, a full disk, a timeout. Never a broken invariant — those are
 * assertions that stop the process.
 */
export class SkyrocketError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly httpStatus: number;
  readonly rocketmqCode: number;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: SkyrocketErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = errorCodes[code];
    this.name = 'SkyrocketError';
    this.code = code;
    this.retriable = entry.retriable;
    this.httpStatus = entry.http;
    this.rocketmqCode = entry.rocketmq;
    this.field = options.field;
  }

  /** The JSON body every API returns for an error. */
  toJSON(): { error: { code: ErrorCode; message: string; retriable: boolean; field?: string } } {
    const body: { code: ErrorCode; message: string; retriable: boolean; field?: string } = {
      code: this.code,
      message: this.message,
      retriable: this.retriable,
    };
    if (this.field !== undefined) body.field = this.field;
    return { error: body };
  }
}

export function isSkyrocketError(value: unknown): value is SkyrocketError {
  return value instanceof SkyrocketError;
}
