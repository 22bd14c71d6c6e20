/**
 * The OpenAPI 3.1 description of the REST API v1, served at /v1/openapi.json and kept in
 * docs/openapi.json (`npx tsx bin/write-openapi.ts` rewrites it; a test fails when they differ).
 *
 * It describes what `broker.ts` does, not what it may do later. Limits, name patterns, message
 * types and error codes are read from `core/` rather than copied, so the document cannot drift
 * from the checks the broker runs. Error responses are grouped by the HTTP status that
 * `core/errors.ts` gives each code, so a code can never be listed under the wrong status.
 */
import { deliveriesMediaType } from '../../../core/delivery-frame.ts';
import { frameMediaType } from '../../../core/frame.ts';
import { STATUS_CODES } from 'node:http';
import { errorCodes, type ErrorCode } from '../../../core/errors.ts';
import {
  controlCharacterPattern,
  limits,
  reservedPropertyNamePrefix,
  reservedPropertyNames,
  resourceNamePattern,
} from '../../../core/limits.ts';
import { delayLevelsMs } from '../../../core/delay-levels.ts';
import { messageIdVersion } from '../../../core/message-id.ts';
import { messageTypes } from '../../../core/message.ts';
import { lambdaSubscriptionLimits } from '../../../namesrv/lambda-subscription.ts';
import { producerGroupDefaults, producerGroupLimits } from '../../../namesrv/transactions.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

// ---------------------------------------------------------------------------------------------
// Numbers the broker uses that are not in core/limits.ts (see broker.ts).

/** `maxRequestBytes` in broker.ts: base64 bodies of a full batch plus 4 MiB of JSON framing. */
export const sendRequestMaxBytes = Math.ceil((limits.sendBatchMaxBytes * 4) / 3) + 4 * 1024 * 1024;
/** Body limit of the admin, receive, change-invisibility and offset requests. */
const smallRequestMaxBytes = 64 * 1024;
/** Body limit of an ack request. */
const ackRequestMaxBytes = 4 * 1024 * 1024;
/** Most messages one broker group returns for a query by key. */
const queryByKeyMaxPerBrokerGroup = 64;
/** Receipt handles longer than this are refused without decoding. */
const receiptHandleMaxChars = 4096;
/** Defaults that broker.ts writes as literals. */
const receiveInvisibleDefaultMs = 30_000;
const waitDefaultMs = 0;
const pullMaxDefaultCount = 32;
/** A clustering consumer not heard from for this long loses its queues (consumer-groups.ts). */
const memberTimeoutMs = 30_000;
/** Body limit of the transaction and producer-group requests. */
const transactionRequestMaxBytes = 64 * 1024;
/** transaction/transaction-id.ts: "T1." brokerGroup "." messageId. */
const transactionIdPattern = `^T1\\.[a-zA-Z0-9_.-]{1,64}\\.${messageIdVersion}[0-9A-F]{24}$`;

/** The longest base64 text of a body of `limits.bodyMaxBytes` bytes. */
const base64BodyMaxChars = Math.ceil(limits.bodyMaxBytes / 3) * 4;

function size(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

// ---------------------------------------------------------------------------------------------
// Patterns (ECMAScript regular expressions, as JSON Schema 2020-12 uses).

/** `[\x00-\x1f\x7f-\x9f]` without the brackets: the control characters no text field may hold. */
const controlRange = controlCharacterPattern.source.slice(1, -1);
/** Not blank (`trim()` would leave something), no control character. */
const textPattern = `^(?=[\\s\\S]*\\S)[^${controlRange}]+$`;
/** As `textPattern`, and no `|` (it would split the tag in a filter expression). */
const tagPattern = `^(?=[\\s\\S]*\\S)[^${controlRange}|]+$`;
/** Property values may be empty or blank, but hold no control character. */
const propertyValuePattern = `^[^${controlRange}]*$`;
/** What broker.ts accepts as base64: whole quanta of the standard alphabet, with padding. */
export const base64BodyPattern = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
const messageIdPattern = `^${messageIdVersion}[0-9A-F]{24}$`;
const clientIdPattern = '^[\\x21-\\x7e]{1,128}$';

const textRules = 'not blank, no control characters (U+0000–U+001F, U+007F–U+009F) and no unpaired surrogates';

// ---------------------------------------------------------------------------------------------
// Building blocks.

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const paramRef = (name: string): JsonObject => ({ $ref: `#/components/parameters/${name}` });

function jsonContent(schema: JsonObject): JsonObject {
  return { 'application/json': { schema } };
}

function ok(description: string, schemaName: string): JsonObject {
  return { description, content: jsonContent(ref(schemaName)) };
}

function jsonBody(schemaName: string, maxBytes: number): JsonObject {
  return {
    required: true,
    description: `A JSON object of at most ${size(maxBytes)}; larger requests answer 413 \`PAYLOAD_TOO_LARGE\`.`,
    content: jsonContent(ref(schemaName)),
    'x-max-bytes': maxBytes,
  };
}

/** Why each error code can answer one operation. */
type ErrorReasons = Partial<Record<ErrorCode, string>>;

/**
 * The error responses of one operation, keyed by HTTP status. Each lists its codes in the
 * description and narrows `error.code` to them in the schema.
 */
function errors(reasons: ErrorReasons): JsonObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of Object.keys(reasons) as ErrorCode[]) {
    const status = errorCodes[code].http;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: JsonObject = {};
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const codes = byStatus.get(status) as ErrorCode[];
    const lines = codes.map((code) => `- \`${code}\`: ${reasons[code] as string}`);
    out[String(status)] = {
      description: `${STATUS_CODES[status] ?? 'Error'}.\n\n${lines.join('\n')}`,
      content: jsonContent({
        allOf: [ref('Error'), { properties: { error: { properties: { code: { enum: codes } } } } }],
      }),
    };
  }
  return out;
}

const unauthorized = 'no `Authorization: Bearer <key>` header, or an unknown API key.';
const unavailable =
  'the broker is shutting down (retry on another broker), or the cluster directory or a broker this ' +
  'request was forwarded to did not answer.';
const internal = 'an unexpected failure.';

/** Errors every authenticated operation can answer. */
function common(forbidden: string): ErrorReasons {
  return { UNAUTHORIZED: unauthorized, FORBIDDEN: forbidden, SERVICE_UNAVAILABLE: unavailable, INTERNAL_ERROR: internal };
}

const notAdmin = 'the API key is not an admin key.';
const badTopicPath = 'the topic name in the path is not 1 to ' + `${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`;
const badGroupPath = 'the group name in the path is not 1 to ' + `${limits.groupNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`;
const malformed = 'the body is not JSON, or not a JSON object.';
const malformedFrame = `the body was sent as \`${frameMediaType}\` and is not exactly one well-formed frame.`;

/** How a frame carries the same content as the JSON schema it stands for. */
function frameDescription(schemaName: string): string {
  return (
    `The frame form of \`${schemaName}\` (core/frame.ts): the 4 bytes \`SKF1\`, a big-endian u32 meta ` +
    'length, the meta (UTF-8 JSON: the JSON form with each message\'s `body` and `bodyEncoding` left ' +
    'out), then one body per message, each a big-endian u32 length and the bytes themselves.'
  );
}
const deliveriesDescription =
  'The binary form of `ReceiveResult` (core/delivery-frame.ts), all integers big-endian: the 4 bytes ' +
  '`SKD1`, a u32 count, the topic (u16 length + UTF-8), then per message: a u8 of flags, queueId u32, ' +
  'queueOffset, bornAt and storedAt as u64, deliveryAttempt u32, messageId and receiptHandle (u16 ' +
  'length + UTF-8 each); then, as the flags say, its topic when not the answer\'s (0x01), tag (0x02), ' +
  'keys (0x04: u16 count, each u16 length + UTF-8), properties (0x08: u16 count, each name u16 length ' +
  '+ UTF-8 and value u32 length + UTF-8), messageGroup (0x10), deliverAt u64 (0x20); last the body, ' +
  'a u32 length and the bytes. Nothing follows the last message. After the topic comes `rest` (u32 ' +
  'length + UTF-8): empty, or a JSON object with the answer\'s other keys (`ackFailed`).';
const tooLarge = (bytes: number): string => `the request body is over ${size(bytes)}.`;
const topicMissing = 'the topic does not exist.';
const groupMissing = 'the consumer group does not exist.';

// ---------------------------------------------------------------------------------------------
// Schemas.

const errorCodeList = Object.keys(errorCodes) as ErrorCode[];

function errorCodeTable(): string {
  const rows = errorCodeList.map((code) => {
    const e = errorCodes[code];
    return `| \`${code}\` | ${e.http} | ${e.rocketmq} | ${e.retriable ? 'yes' : 'no'} |`;
  });
  return ['| code | HTTP status | RocketMQ v2 code | retriable |', '|---|---|---|---|', ...rows].join('\n');
}

const topicName: JsonObject = {
  type: 'string',
  minLength: 1,
  maxLength: limits.topicNameMaxChars,
  pattern: resourceNamePattern.source,
  description: 'A topic name. In a path, `%` and `|` must be percent-encoded.',
  examples: ['orders'],
};

const groupName: JsonObject = {
  type: 'string',
  minLength: 1,
  maxLength: limits.groupNameMaxChars,
  pattern: resourceNamePattern.source,
  description:
    `A consumer group name: at most ${limits.groupNameMaxChars} characters, so that the group's ` +
    '`%RETRY%<group>` and `%DLQ%<group>` topics fit a topic name.',
  examples: ['billing'],
};

const messageTypeSchema: JsonObject = {
  type: 'string',
  enum: [...messageTypes],
  description:
    'RocketMQ 5 topic message type. `FIFO`: every message needs a `messageGroup`. `TRANSACTION`: ' +
    'the only type that takes transactional sends (`"transactional": true`); it takes plain sends too. ' +
    '`DELAY`: messages may name a delivery time (`deliverAt`, `delayMs`, `delayLevel`), which no ' +
    'other type takes (`MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`, as RocketMQ 5); they take messages ' +
    'without one too, delivered at once.',
};

const messageInput: JsonObject = {
  type: 'object',
  description:
    'One message to send. Fields that are absent or `null` are left out. Unknown fields (including ' +
    '`topic`, which comes from the path) are rejected with `INVALID_ARGUMENT`, so a misspelt field ' +
    'cannot change what is sent. Length limits are in UTF-8 bytes; `maxLength` gives the character ' +
    'bound that follows from them, and the broker checks bytes.',
  required: ['body'],
  additionalProperties: false,
  properties: {
    body: {
      type: 'string',
      minLength: 1,
      description:
        `The message body: at least 1 and at most ${size(limits.bodyMaxBytes)} bytes once decoded ` +
        '(`MESSAGE_BODY_EMPTY`, `MESSAGE_BODY_TOO_LARGE`). Text as is with `bodyEncoding: utf8`; ' +
        'any bytes as standard, padded base64 with `bodyEncoding: base64`.',
    },
    bodyEncoding: {
      type: 'string',
      enum: ['utf8', 'base64'],
      default: 'utf8',
      description: 'How `body` is encoded. `null` is not accepted here.',
    },
    tag: {
      type: ['string', 'null'],
      maxLength: limits.tagMaxBytes,
      pattern: tagPattern,
      description:
        `At most one tag, which consumers filter on: at most ${size(limits.tagMaxBytes)} of UTF-8, ` +
        `${textRules}, and no \`|\` (\`ILLEGAL_MESSAGE_TAG\`).`,
      examples: ['created'],
    },
    keys: {
      type: ['array', 'null'],
      maxItems: limits.keysMaxCount,
      items: { type: 'string', maxLength: limits.keyMaxBytes, pattern: textPattern },
      description:
        `Business keys for query by key: at most ${limits.keysMaxCount}, each at most ` +
        `${size(limits.keyMaxBytes)} of UTF-8, ${textRules} (\`ILLEGAL_MESSAGE_KEY\`).`,
      examples: [['order-1001']],
    },
    properties: {
      type: ['object', 'null'],
      maxProperties: limits.propertiesMaxCount,
      propertyNames: {
        maxLength: limits.propertyNameMaxBytes,
        pattern: textPattern,
        not: { anyOf: [{ enum: [...reservedPropertyNames] }, { pattern: `^${reservedPropertyNamePrefix}` }] },
      },
      additionalProperties: { type: 'string', pattern: propertyValuePattern },
      description:
        `User properties, string to string: at most ${limits.propertiesMaxCount} ` +
        `(\`MESSAGE_PROPERTIES_TOO_LARGE\`). A name is at most ${size(limits.propertyNameMaxBytes)} of ` +
        `UTF-8, ${textRules}, and not one the broker reserves (RocketMQ's system property names and ` +
        `every name starting with \`${reservedPropertyNamePrefix}\`) (\`ILLEGAL_MESSAGE_PROPERTY_KEY\`). ` +
        'A value may be empty but holds no control character. The tag, the keys and the property ' +
        `names and values share one budget of ${size(limits.propertiesMaxBytes)} of UTF-8 ` +
        '(`MESSAGE_PROPERTIES_TOO_LARGE`).',
      examples: [{ region: 'eu-west-1' }],
    },
    messageGroup: {
      type: ['string', 'null'],
      maxLength: limits.messageGroupMaxBytes,
      pattern: textPattern,
      description:
        `RocketMQ's sharding key, required on FIFO topics: at most ${limits.messageGroupMaxBytes} bytes ` +
        `of UTF-8, ${textRules} (\`ILLEGAL_MESSAGE_GROUP\`). Messages of one group hash to one queue, ` +
        'on any topic type.',
      examples: ['customer-42'],
    },
    deliverAt: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description:
        'Delayed delivery at this time (epoch milliseconds), at most ' +
        `${limits.delayMaxMs} ms (365 days) ahead (\`ILLEGAL_DELIVERY_TIME\`). A time that has passed ` +
        'means "now". The message is delivered no earlier than this, normally within a second after. ' +
        'Only `DELAY` topics take a delivery time (`MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`). Give at most ' +
        'one of `deliverAt`, `delayMs` and `delayLevel`.',
    },
    delayMs: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: limits.delayMaxMs,
      description: 'Delayed delivery this many milliseconds from now (see `deliverAt`).',
    },
    delayLevel: {
      type: ['integer', 'null'],
      minimum: 1,
      maximum: delayLevelsMs.length,
      description:
        "Delayed delivery by one of RocketMQ's delay levels (see `deliverAt`): " +
        delayLevelsMs.map((ms, i) => `${i + 1} = ${ms >= 3_600_000 ? `${ms / 3_600_000} h` : ms >= 60_000 ? `${ms / 60_000} m` : `${ms / 1000} s`}`).join(', ') +
        '.',
    },
  },
  allOf: [
    {
      if: { required: ['bodyEncoding'], properties: { bodyEncoding: { const: 'base64' } } },
      then: { properties: { body: { maxLength: base64BodyMaxChars, pattern: base64BodyPattern } } },
      else: { properties: { body: { maxLength: limits.bodyMaxBytes } } },
    },
    ...[
      ['deliverAt', 'delayMs'],
      ['deliverAt', 'delayLevel'],
      ['delayMs', 'delayLevel'],
    ].map(([a, b]) => ({
      not: { required: [a as string, b as string], properties: { [a as string]: { type: 'number' }, [b as string]: { type: 'number' } } },
    })),
  ],
};

const messageSchema: JsonObject = {
  type: 'object',
  description: 'A stored message.',
  required: [
    'messageId', 'topic', 'body', 'bodyEncoding', 'tag', 'keys', 'properties', 'queueId', 'queueOffset',
    'bornAt', 'storedAt', 'deliveryAttempt',
  ],
  properties: {
    messageId: ref('MessageId'),
    topic: ref('TopicName'),
    body: { type: 'string', description: 'The body, as text when its bytes are valid UTF-8, else as base64.' },
    bodyEncoding: {
      type: 'string',
      enum: ['utf8', 'base64'],
      description:
        '`utf8` whenever the bytes are valid UTF-8, whatever encoding the producer used to send them; ' +
        'otherwise `base64`.',
    },
    tag: { type: ['string', 'null'] },
    keys: { type: 'array', items: { type: 'string' } },
    properties: { type: 'object', additionalProperties: { type: 'string' } },
    messageGroup: { type: 'string', description: 'Present only when the message has one.' },
    queueId: { type: 'integer', minimum: 0 },
    queueOffset: {
      type: 'integer',
      minimum: -1,
      description: 'Position of the message in its queue; -1 for a delayed message that still waits (by id only).',
    },
    deliverAt: { type: 'integer', description: 'A delayed message only: when it is (or was) due (epoch ms).' },
    bornAt: { type: 'integer', description: 'When the broker accepted the send request (epoch ms).' },
    storedAt: { type: 'integer', description: 'When the message was written to the commit log (epoch ms).' },
    deliveryAttempt: {
      type: 'integer',
      minimum: 1,
      description: 'Counts deliveries to a consumer group from 1; for reads that are not deliveries, the stored value.',
    },
  },
};

const schemas: JsonObject = {
  ErrorCode: {
    type: 'string',
    enum: errorCodeList,
    description:
      'A stable error code. Each code has one HTTP status, one RocketMQ v2 status code, and says ' +
      `whether sending the same request again may succeed:\n\n${errorCodeTable()}`,
    'x-error-table': Object.fromEntries(
      errorCodeList.map((code) => [code, { ...errorCodes[code] }] as [string, JsonObject]),
    ),
  },
  Error: {
    type: 'object',
    description: 'The body of every error response.',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'retriable'],
        properties: {
          code: ref('ErrorCode'),
          message: { type: 'string', description: 'For people; never quotes the offending value.' },
          retriable: { type: 'boolean', description: 'Whether sending the same request again may succeed.' },
          field: {
            type: 'string',
            description: 'The part of the request that is wrong, as a path (`messages[3].tag`), when known.',
            examples: ['messages[3].tag'],
          },
        },
      },
    },
    examples: [
      {
        error: {
          code: 'ILLEGAL_MESSAGE_TAG',
          message: "tag must not contain '|'",
          retriable: false,
          field: 'messages[0].tag',
        },
      },
    ],
  },
  TopicName: topicName,
  GroupName: groupName,
  MessageType: messageTypeSchema,
  MessageId: {
    type: 'string',
    pattern: messageIdPattern,
    description: 'Names the broker that stored the message and its commit-log offset (26 characters).',
    examples: ['0100000001000000000000A1F0'],
  },
  ReceiptHandle: {
    type: 'string',
    maxLength: receiptHandleMaxChars,
    description:
      'Opaque, signed proof of one delivery of one message to one consumer group. Valid until the ' +
      'message becomes visible again, and only for the group and topic it was received for; a ' +
      'change of invisibility replaces it.',
  },
  Health: {
    type: 'object',
    required: ['status', 'brokerId', 'brokerGroup'],
    properties: {
      status: { const: 'ok' },
      brokerId: { type: 'integer' },
      brokerGroup: { type: 'string' },
    },
  },
  Readiness: {
    type: 'object',
    required: ['status'],
    properties: {
      status: {
        type: 'string',
        enum: ['ready', 'stopping'],
        description:
          'Only `ready` reaches a client: a stopping broker answers 503 `SERVICE_UNAVAILABLE` before this ' +
          'endpoint runs.',
      },
    },
  },
  CreateTopicRequest: {
    type: 'object',
    required: ['name'],
    description: 'Other fields are ignored.',
    properties: {
      name: ref('TopicName'),
      queues: {
        type: 'integer',
        minimum: 1,
        maximum: limits.topicQueuesMaxCount,
        default: limits.topicQueuesDefaultCount,
        description: 'Number of message queues; the cluster spreads them over its broker groups.',
      },
      type: { ...ref('MessageType'), default: 'NORMAL' },
    },
  },
  Topic: {
    type: 'object',
    required: ['name', 'type', 'queues', 'readable', 'writable'],
    properties: {
      name: ref('TopicName'),
      type: ref('MessageType'),
      queues: { type: 'integer', minimum: 1, description: 'Number of message queues.' },
      readable: { type: 'boolean', description: 'Whether consumers may receive from the topic.' },
      writable: { type: 'boolean', description: 'Whether producers may send to the topic.' },
    },
  },
  TopicList: {
    type: 'object',
    required: ['topics'],
    properties: { topics: { type: 'array', items: ref('Topic') } },
  },
  TopicRoute: {
    type: 'object',
    required: ['topic', 'type', 'queues'],
    properties: {
      topic: ref('TopicName'),
      type: ref('MessageType'),
      queues: {
        type: 'array',
        items: {
          type: 'object',
          required: ['queueId', 'brokerGroup', 'leader'],
          properties: {
            queueId: { type: 'integer', minimum: 0 },
            brokerGroup: { type: 'string', description: 'The broker group that owns the queue.' },
            leader: {
              type: ['string', 'null'],
              description: "URL of the broker group's leader, or `null` when no leader is alive.",
            },
          },
        },
      },
    },
  },
  MessageInput: messageInput,
  SendRequest: {
    type: 'object',
    required: ['messages'],
    description: 'Other fields are ignored.',
    properties: {
      transactional: {
        type: ['boolean', 'null'],
        default: false,
        description:
          'Send each message as a transaction of its own: it is stored as a half message, invisible to ' +
          'consumers, until `POST /v1/transactions/{transactionId}/commit` (or the check-back) commits ' +
          'it; a rollback discards it. Needs `producerGroup` and a TRANSACTION topic ' +
          '(`MESSAGE_PROPERTY_CONFLICT_WITH_TYPE`); a transactional message cannot be delayed.',
      },
      producerGroup: {
        ...ref('ProducerGroupName'),
        description:
          'Transactional sends only (`INVALID_ARGUMENT` otherwise): the producer group asked about ' +
          'transactions left unresolved (see `/v1/producer-groups`).',
      },
      messages: {
        type: 'array',
        minItems: 1,
        maxItems: limits.sendBatchMaxCount,
        items: ref('MessageInput'),
        description:
          `1 to ${limits.sendBatchMaxCount} messages whose bodies add up to at most ` +
          `${size(limits.sendBatchMaxBytes)} (\`PAYLOAD_TOO_LARGE\`).`,
      },
    },
  },
  MoveTimersRequest: {
    type: 'object',
    required: ['timers'],
    properties: {
      timers: {
        type: 'array',
        minItems: 1,
        maxItems: limits.sendBatchMaxCount,
        items: {
          type: 'object',
          required: ['messageId', 'deliverAt', 'topic', 'queueId', 'body', 'bornAt', 'bornHost'],
          properties: {
            messageId: { ...ref('MessageId'), description: 'The id the producer got; the delivered message keeps it.' },
            deliverAt: { type: 'integer', minimum: 0 },
            topic: ref('TopicName'),
            queueId: { type: 'integer', minimum: 0 },
            body: { type: 'string', description: 'Base64.' },
            bornAt: { type: 'integer', minimum: 0 },
            bornHost: { type: 'string' },
            tag: { type: ['string', 'null'] },
            keys: { type: ['array', 'null'], items: { type: 'string' } },
            properties: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
            messageGroup: { type: ['string', 'null'] },
          },
        },
      },
    },
  },
  MoveTimersResult: {
    type: 'object',
    required: ['results'],
    properties: {
      results: {
        type: 'array',
        description: 'One entry per timer, in the order given.',
        items: {
          type: 'object',
          required: ['messageId', 'status'],
          properties: {
            messageId: ref('MessageId'),
            status: {
              type: 'string',
              enum: ['ACCEPTED', 'DUPLICATE', 'CANCELLED', 'DROPPED', 'REJECTED'],
              description:
                '`ACCEPTED`: taken into the wheel. `DUPLICATE`: this broker had it already (waiting or ' +
                'delivered). `CANCELLED`: it was cancelled. `DROPPED`: its topic no longer exists. The sweep ' +
                'removes all of these from the index. `REJECTED`: not taken (this broker group does not own ' +
                'its queue: `code` says why); it stays in the index.',
            },
            code: ref('ErrorCode'),
            message: { type: 'string' },
          },
        },
      },
    },
  },
  SendResult: {
    type: 'object',
    required: ['results'],
    properties: {
      results: {
        type: 'array',
        description: 'One entry per message, in the order they were sent.',
        items: {
          type: 'object',
          required: ['messageId', 'queueId'],
          properties: {
            messageId: { ...ref('MessageId'), description: 'For a transactional send, the id the message has once committed.' },
            queueId: { type: 'integer', minimum: 0 },
            queueOffset: {
              type: 'integer',
              minimum: -1,
              description:
                'Absent for a transactional send: the offset comes with the commit. -1 for a delayed ' +
                'message: the offset comes with the delivery.',
            },
            deliverAt: { type: 'integer', description: 'Delayed messages only: when it is due (epoch ms). Cancel it by `messageId` until then.' },
            transactionId: { ...ref('TransactionId'), description: 'Transactional sends only: commit or roll back by this id.' },
          },
        },
      },
    },
  },
  Message: messageSchema,
  ReceivedMessage: {
    description: 'A message delivered to a consumer group, with the handle to ack it by.',
    allOf: [
      ref('Message'),
      { type: 'object', required: ['receiptHandle'], properties: { receiptHandle: ref('ReceiptHandle') } },
    ],
  },
  MessageList: {
    type: 'object',
    required: ['messages'],
    properties: { messages: { type: 'array', items: ref('Message') } },
  },
  PullResult: {
    type: 'object',
    required: ['status', 'messages', 'nextOffset', 'minOffset', 'maxOffset'],
    properties: {
      status: {
        type: 'string',
        enum: ['FOUND', 'NO_NEW_MESSAGE', 'NO_MATCHED_MESSAGE', 'OFFSET_OVERFLOW'],
        description:
          '`FOUND`: messages were read. `NO_NEW_MESSAGE`: the offset is the end of the queue (or the ' +
          'broker holds nothing of it yet). `NO_MATCHED_MESSAGE`: entries were passed over but none ' +
          'could be served (holes, or records that failed verification). `OFFSET_OVERFLOW`: the offset ' +
          'is beyond the end of the queue; `nextOffset` is the end.',
      },
      messages: { type: 'array', items: ref('Message') },
      nextOffset: { type: 'integer', minimum: 0, description: 'The offset to pull from next.' },
      minOffset: { type: 'integer', minimum: 0, description: 'The oldest offset still retained.' },
      maxOffset: { type: 'integer', minimum: 0, description: 'The offset the next message will get.' },
    },
  },
  CreateGroupRequest: {
    type: 'object',
    required: ['name'],
    description: 'Other fields are ignored.',
    properties: {
      name: ref('GroupName'),
      mode: {
        type: 'string',
        enum: ['CLUSTERING', 'BROADCASTING'],
        default: 'CLUSTERING',
        description:
          '`CLUSTERING`: the members share the messages. `BROADCASTING`: every member (told apart by ' +
          '`clientId`) gets every message.',
      },
      orderly: {
        type: 'boolean',
        default: false,
        description:
          "Each message group's messages (each queue's, for messages without one) are delivered one at a " +
          'time, in send order: the next only after the previous is acked or dead-lettered.',
      },
      maxDeliveryAttempts: {
        type: 'integer',
        minimum: 1,
        maximum: limits.deliveryAttemptsMaxCount,
        default: limits.deliveryAttemptsDefaultCount,
        description:
          "Deliveries of one message before it moves to the group's dead-letter topic `%DLQ%<group>`.",
      },
    },
  },
  Group: {
    type: 'object',
    required: ['name', 'mode', 'orderly', 'maxDeliveryAttempts'],
    properties: {
      name: ref('GroupName'),
      mode: { type: 'string', enum: ['CLUSTERING', 'BROADCASTING'] },
      orderly: { type: 'boolean' },
      maxDeliveryAttempts: { type: 'integer', minimum: 1, maximum: limits.deliveryAttemptsMaxCount },
      lambdaSubscriptions: {
        type: 'array',
        items: ref('LambdaSubscription'),
        description: 'The topics whose messages the brokers push to a Lambda function; absent when none.',
      },
    },
  },
  LambdaSubscription: {
    type: 'object',
    required: ['topic', 'functionName', 'filter', 'batchSize', 'maxConcurrency', 'retryDelayMs'],
    properties: {
      topic: ref('TopicName'),
      functionName: { type: 'string' },
      filter: ref('TagFilter'),
      batchSize: { type: 'integer', minimum: lambdaSubscriptionLimits.batchSizeMin, maximum: lambdaSubscriptionLimits.batchSizeMax },
      maxConcurrency: { type: 'integer', minimum: lambdaSubscriptionLimits.maxConcurrencyMin, maximum: lambdaSubscriptionLimits.maxConcurrencyMax },
      retryDelayMs: { type: ['integer', 'null'], minimum: 0, maximum: lambdaSubscriptionLimits.retryDelayMaxMs },
    },
  },
  PutLambdaSubscriptionRequest: {
    type: 'object',
    required: ['functionName'],
    additionalProperties: false,
    description: 'An unknown field is `INVALID_ARGUMENT`.',
    properties: {
      topic: { ...ref('TopicName'), description: 'May be given; must then equal the topic of the path.' },
      functionName: {
        type: 'string',
        maxLength: lambdaSubscriptionLimits.functionNameMaxChars,
        description: 'The function to invoke: a name, a partial ARN (`123456789012:function:name`) or an ARN, as Lambda Invoke takes it.',
        examples: ['order-logger', 'arn:aws:lambda:eu-west-1:123456789012:function:bill-orders'],
      },
      filter: { ...ref('TagFilter'), description: 'Which messages of the topic the function gets; absent or `null`: every message.' },
      batchSize: {
        type: 'integer',
        minimum: lambdaSubscriptionLimits.batchSizeMin,
        maximum: lambdaSubscriptionLimits.batchSizeMax,
        default: lambdaSubscriptionLimits.batchSizeDefault,
        description: 'Most messages per invocation; a batch is also split to stay under Lambda\'s 6 MB payload limit.',
      },
      maxConcurrency: {
        type: 'integer',
        minimum: lambdaSubscriptionLimits.maxConcurrencyMin,
        maximum: lambdaSubscriptionLimits.maxConcurrencyMax,
        default: lambdaSubscriptionLimits.maxConcurrencyDefault,
        description: 'Most invocations in flight at once for this subscription, on each broker that owns queues of the topic.',
      },
      retryDelayMs: {
        type: ['integer', 'null'],
        minimum: 0,
        maximum: lambdaSubscriptionLimits.retryDelayMaxMs,
        default: null,
        description: "How long a failed message waits before it is retried; `null`: the group's backoff (10 s, 30 s, 1 m, … 2 h by attempt).",
      },
    },
  },
  GroupList: {
    type: 'object',
    required: ['groups'],
    properties: { groups: { type: 'array', items: ref('Group') } },
  },
  QueueLag: {
    type: 'object',
    required: ['topic', 'queueId', 'committedOffset', 'maxOffset', 'lag', 'inflight'],
    properties: {
      topic: ref('TopicName'),
      queueId: { type: 'integer', minimum: 0 },
      committedOffset: {
        type: 'integer',
        minimum: 0,
        description: 'Everything below it is done: the lowest in-flight offset, or the read position.',
      },
      maxOffset: { type: 'integer', minimum: 0 },
      lag: { type: 'integer', minimum: 0, description: '`maxOffset - committedOffset`, at least 0.' },
      inflight: { type: 'integer', minimum: 0, description: 'Deliveries received and not yet acked.' },
    },
  },
  GroupWithLag: {
    description:
      'The group with its lag per (topic, queue), for every queue the brokers hold, sorted by topic ' +
      'and queue. Broker groups that do not answer are left out.',
    allOf: [
      ref('Group'),
      {
        type: 'object',
        required: ['totalLag', 'lag'],
        properties: {
          totalLag: { type: 'integer', minimum: 0, description: 'The sum of `lag`.' },
          lag: { type: 'array', items: ref('QueueLag') },
        },
      },
    ],
  },
  TagFilter: {
    type: ['object', 'null'],
    required: ['type'],
    description:
      'Absent or `null`: every message. `TAG`: a RocketMQ tag expression. `SQL92`: RocketMQ\'s SQL92 ' +
      'subset over the message properties (user properties, `TAGS` for the tag, `KEYS` for the keys ' +
      'joined by a space): `> >= < <= = <>`, `BETWEEN`, `IN`, `IS [NOT] NULL`, `AND OR NOT`, ' +
      '`CONTAINS`/`STARTSWITH`/`ENDSWITH`, with RocketMQ\'s three-valued logic (a comparison with a ' +
      'missing property never matches). A parse error is `INVALID_FILTER_EXPRESSION` with its position.',
    properties: {
      type: { enum: ['TAG', 'SQL92'] },
      expression: {
        type: ['string', 'null'],
        description:
          'TAG: `*`, empty or absent for every message, or tags joined by `||` (`created || paid`); ' +
          'an empty tag or one with a control character or `|` is `INVALID_FILTER_EXPRESSION`. ' +
          'SQL92: an expression such as `amount > 100 AND region IN (\'eu\', \'us\')`, at most 4 KiB.',
        examples: ['created || paid', "amount > 100 AND region IN ('eu', 'us')"],
      },
    },
  },
  ReceiveRequest: {
    type: 'object',
    required: ['topic'],
    description: 'Other fields are ignored.',
    properties: {
      topic: ref('TopicName'),
      max: {
        type: 'integer',
        minimum: 1,
        maximum: limits.receiveMessagesMaxCount,
        default: limits.receiveMessagesDefaultCount,
        description: 'At most this many messages (`INVALID_ARGUMENT`).',
      },
      invisibleMs: {
        type: 'integer',
        minimum: limits.invisibleMinMs,
        maximum: limits.invisibleMaxMs,
        default: receiveInvisibleDefaultMs,
        description: 'How long received messages stay hidden from other receives (`ILLEGAL_INVISIBLE_TIME`).',
      },
      waitMs: {
        type: 'integer',
        minimum: 0,
        maximum: limits.longPollWaitMaxMs,
        default: waitDefaultMs,
        description:
          'Long polling: when no message is visible, wait up to this long for one (`ILLEGAL_POLLING_TIME`). ' +
          '0 answers at once.',
      },
      filter: ref('TagFilter'),
      clientId: {
        type: 'string',
        pattern: clientIdPattern,
        description:
          'Names the consumer (1 to 128 printable ASCII characters). Required by BROADCASTING groups, ' +
          'which keep a position per clientId. In a CLUSTERING group, consumers that send one get the ' +
          `queues spread among the members seen in the last ${memberTimeoutMs / 1000} s (sticky, balanced ` +
          'by backlog); without one, a receive takes from every queue.',
      },
      ackReceiptHandles: {
        type: 'array',
        minItems: 1,
        maxItems: limits.receiveMessagesMaxCount,
        items: ref('ReceiptHandle'),
        description:
          'Handles to ack before receiving (the previous batch\'s, saving an ack request): acked as ' +
          '`/ack` would, wherever they were issued; the refused ones are listed in `ackFailed`, and the ' +
          'receive happens either way.',
      },
    },
  },
  ReceiveResult: {
    type: 'object',
    required: ['messages'],
    properties: {
      messages: {
        type: 'array',
        items: ref('ReceivedMessage'),
        description: 'Empty when nothing came within `waitMs`.',
      },
      ackFailed: {
        type: 'array',
        description: 'With `ackReceiptHandles`: the handles that could not be acked, with why (as `AckResult.failed`).',
        items: {
          type: 'object',
          required: ['receiptHandle', 'code', 'message'],
          properties: { receiptHandle: { description: 'The handle as it was sent.' }, code: ref('ErrorCode'), message: { type: 'string' } },
        },
      },
    },
  },
  AckRequest: {
    type: 'object',
    required: ['topic', 'receiptHandles'],
    properties: {
      topic: ref('TopicName'),
      receiptHandles: {
        type: 'array',
        minItems: 1,
        maxItems: limits.receiveMessagesMaxCount,
        items: ref('ReceiptHandle'),
      },
      listAcked: {
        type: 'boolean',
        default: true,
        description: 'false: the answer gives `ackedCount` instead of echoing every acked handle in `acked`.',
      },
    },
  },
  AckResult: {
    type: 'object',
    required: ['failed'],
    properties: {
      acked: { type: 'array', items: ref('ReceiptHandle'), description: 'Handles whose delivery ended (unless `listAcked` was false).' },
      ackedCount: { type: 'integer', minimum: 0, description: 'How many handles were acked, when `listAcked` was false.' },
      failed: {
        type: 'array',
        description: 'Handles that could not be acked, with why.',
        items: {
          type: 'object',
          required: ['receiptHandle', 'code', 'message'],
          properties: {
            receiptHandle: { description: 'The handle as it was sent.' },
            code: ref('ErrorCode'),
            message: { type: 'string' },
          },
        },
      },
    },
  },
  ChangeInvisibilityRequest: {
    type: 'object',
    required: ['topic', 'receiptHandle', 'invisibleMs'],
    properties: {
      topic: ref('TopicName'),
      receiptHandle: ref('ReceiptHandle'),
      invisibleMs: {
        type: 'integer',
        minimum: limits.invisibleMinMs,
        maximum: limits.invisibleMaxMs,
        description: 'Hide the message for this long from now (`ILLEGAL_INVISIBLE_TIME`).',
      },
    },
  },
  NackRequest: {
    type: 'object',
    required: ['topic', 'receiptHandles'],
    properties: {
      topic: ref('TopicName'),
      receiptHandles: { type: 'array', minItems: 1, maxItems: limits.receiveMessagesMaxCount, items: ref('ReceiptHandle') },
      delayMs: {
        type: 'integer',
        minimum: 0,
        maximum: limits.invisibleMaxMs,
        description: "When to deliver again; default: RocketMQ's retry backoff for the attempt (10 s, 30 s, 1 m, … 2 h).",
      },
    },
  },
  NackResult: {
    type: 'object',
    required: ['nacked', 'failed'],
    properties: {
      nacked: {
        type: 'array',
        items: {
          type: 'object',
          required: ['receiptHandle', 'visibleAt'],
          properties: { receiptHandle: ref('ReceiptHandle'), visibleAt: { type: 'integer', description: 'Epoch ms.' } },
        },
      },
      failed: {
        type: 'array',
        items: {
          type: 'object',
          required: ['receiptHandle', 'code', 'message'],
          properties: { receiptHandle: {}, code: ref('ErrorCode'), message: { type: 'string' } },
        },
      },
    },
  },
  DeadLetters: {
    type: 'object',
    required: ['group', 'messages'],
    properties: {
      group: ref('GroupName'),
      messages: {
        type: 'array',
        items: {
          allOf: [
            ref('Message'),
            {
              type: 'object',
              required: ['originTopic', 'brokerGroup'],
              properties: {
                originTopic: { ...ref('TopicName'), description: 'The topic the message was consumed from.' },
                brokerGroup: { type: 'string', description: 'The broker group holding the dead letter.' },
              },
            },
          ],
        },
      },
    },
  },
  RedriveRequest: {
    type: 'object',
    properties: {
      messageIds: { type: 'array', items: { type: 'string' }, description: 'Only these dead letters; default: all of them.' },
    },
  },
  RedriveResult: {
    type: 'object',
    required: ['redriven', 'failed'],
    properties: {
      redriven: { type: 'integer', minimum: 0 },
      failed: {
        type: 'array',
        items: {
          type: 'object',
          required: ['messageId', 'code', 'message'],
          properties: { messageId: { type: 'string' }, code: ref('ErrorCode'), message: { type: 'string' } },
        },
      },
    },
  },
  ChangeInvisibilityResult: {
    type: 'object',
    required: ['receiptHandle', 'visibleAt'],
    properties: {
      receiptHandle: { ...ref('ReceiptHandle'), description: 'Replaces the handle that was sent, which no longer works.' },
      visibleAt: { type: 'integer', description: 'When the message becomes visible again (epoch ms).' },
    },
  },
  Offsets: {
    type: 'object',
    required: ['group', 'topic', 'offsets'],
    properties: {
      group: ref('GroupName'),
      topic: ref('TopicName'),
      offsets: {
        type: 'array',
        description: 'One entry per queue of the topic, by queue id.',
        items: {
          type: 'object',
          required: ['queueId', 'committedOffset', 'minOffset', 'maxOffset'],
          properties: {
            queueId: { type: 'integer', minimum: 0 },
            committedOffset: {
              type: 'integer',
              minimum: 0,
              description:
                'Everything below it is done: the lowest in-flight offset, or the read position. A group ' +
                'that has not read a queue starts at its `minOffset`.',
            },
            minOffset: { type: 'integer', minimum: 0 },
            maxOffset: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
  },
  SetOffsetRequest: {
    type: 'object',
    required: ['topic', 'queueId', 'offset'],
    properties: {
      topic: ref('TopicName'),
      queueId: { type: 'integer', minimum: 0, description: 'A queue of the topic (`QUEUE_NOT_FOUND`).' },
      offset: {
        type: 'integer',
        minimum: 0,
        description: "Clamped to the queue's `[minOffset, maxOffset]` (`ILLEGAL_OFFSET` when negative).",
      },
    },
  },
  SetOffsetResult: {
    type: 'object',
    required: ['group', 'topic', 'queueId', 'committedOffset'],
    properties: {
      group: ref('GroupName'),
      topic: ref('TopicName'),
      queueId: { type: 'integer', minimum: 0 },
      committedOffset: { type: 'integer', minimum: 0 },
    },
  },
  ProducerGroupName: {
    type: 'string',
    minLength: 1,
    maxLength: limits.groupNameMaxChars,
    pattern: resourceNamePattern.source,
    description: 'A producer group name: 1 to ' + `${limits.groupNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\` (\`INVALID_ARGUMENT\`).`,
    examples: ['order-service'],
  },
  TransactionId: {
    type: 'string',
    pattern: transactionIdPattern,
    description:
      'Names the broker group holding the half message and the half message\'s id: ' +
      '`T1.<brokerGroup>.<messageId>`. Any broker accepts it and forwards to the owner.',
    examples: ['T1.bg-1.0100000001000000000000A1F0'],
  },
  CreateProducerGroupRequest: {
    type: 'object',
    required: ['name'],
    description:
      'How the group\'s unresolved transactions are checked back. Registering is optional: an ' +
      'unregistered group is checked through its SDK producers with the defaults. Give `checkUrl` or ' +
      '`checkLambdaArn` (not both) to have the sweep ask a checker directly. Other fields are ignored.',
    properties: {
      name: ref('ProducerGroupName'),
      checkUrl: {
        type: ['string', 'null'],
        maxLength: producerGroupLimits.checkUrlMaxChars,
        format: 'uri',
        description:
          'An `http:` or `https:` URL without credentials. The sweep POSTs a `TransactionCheck` to it and ' +
          'expects `{"status": "COMMIT" | "ROLLBACK" | "UNKNOWN"}`; anything else, or no answer within 5 s, ' +
          'counts as UNKNOWN.',
      },
      checkLambdaArn: {
        type: ['string', 'null'],
        description: 'A Lambda function the sweep invokes with a `TransactionCheck`; it returns the same answer as `checkUrl`.',
        examples: ['arn:aws:lambda:eu-west-1:123456789012:function:order-checker'],
      },
      checkDelayMs: {
        type: 'integer',
        minimum: producerGroupLimits.checkDelayMinMs,
        maximum: producerGroupLimits.checkDelayMaxMs,
        default: producerGroupDefaults.checkDelayMs,
        description: 'A half message younger than this is not checked (RocketMQ\'s `transactionTimeOut`).',
      },
      checkIntervalMs: {
        type: 'integer',
        minimum: producerGroupLimits.checkIntervalMinMs,
        maximum: producerGroupLimits.checkIntervalMaxMs,
        default: producerGroupDefaults.checkIntervalMs,
        description: 'Between two checks of one transaction. The sweep runs every minute in the cloud.',
      },
      maxChecks: {
        type: 'integer',
        minimum: 1,
        maximum: producerGroupLimits.maxChecksMax,
        default: producerGroupDefaults.maxChecks,
        description: 'After this many checks without an answer the broker rolls the message back (`resolvedBy: CHECK_LIMIT`).',
      },
    },
  },
  ProducerGroup: {
    type: 'object',
    required: ['name', 'registered', 'checkDelayMs', 'checkIntervalMs', 'maxChecks'],
    properties: {
      name: ref('ProducerGroupName'),
      registered: { type: 'boolean', description: 'False: nobody registered the group, and these are the defaults it gets.' },
      checkUrl: { type: 'string' },
      checkLambdaArn: { type: 'string' },
      checkDelayMs: { type: 'integer' },
      checkIntervalMs: { type: 'integer' },
      maxChecks: { type: 'integer' },
    },
  },
  ProducerGroupList: {
    type: 'object',
    required: ['producerGroups'],
    properties: { producerGroups: { type: 'array', items: ref('ProducerGroup') } },
  },
  PendingMessage: {
    description: 'The message of a transaction as consumers see it once committed; `queueOffset` only then.',
    allOf: [ref('Message')],
    'x-queue-offset': 'absent until committed',
  },
  TransactionStatus: {
    type: 'object',
    required: ['transactionId', 'messageId', 'topic', 'producerGroup', 'state', 'createdAt'],
    properties: {
      transactionId: ref('TransactionId'),
      messageId: { ...ref('MessageId'), description: 'The id consumers see once committed.' },
      topic: ref('TopicName'),
      producerGroup: ref('ProducerGroupName'),
      state: { type: 'string', enum: ['PREPARED', 'COMMITTED', 'ROLLED_BACK'] },
      createdAt: { type: 'integer', description: 'When the half message was stored (epoch ms).' },
      resolvedBy: {
        type: 'string',
        enum: ['PRODUCER', 'CHECK', 'CHECK_LIMIT'],
        description:
          '`PRODUCER`: a commit or rollback request. `CHECK`: the answer of a checker the sweep asked. ' +
          '`CHECK_LIMIT`: rolled back after `maxChecks` checks without an answer.',
      },
      resolvedAt: { type: 'integer', description: 'Epoch ms.' },
      checks: { type: 'integer', minimum: 0, description: 'Checks made before the sweep resolved it.' },
      queueId: { type: 'integer', minimum: 0, description: 'Committed only: where the message is.' },
      queueOffset: { type: 'integer', minimum: 0, description: 'Committed only.' },
      message: ref('PendingMessage'),
    },
  },
  ResolveTransactionRequest: {
    type: 'object',
    description:
      'Optional. `resolvedBy` and `checks` are for the check sweep and admin keys (`FORBIDDEN` for others).',
    properties: {
      resolvedBy: { type: 'string', enum: ['PRODUCER', 'CHECK', 'CHECK_LIMIT'], default: 'PRODUCER' },
      checks: { type: 'integer', minimum: 0 },
    },
  },
  RequestCheckRequest: {
    type: 'object',
    properties: { checks: { type: 'integer', minimum: 0, default: 1, description: 'Checks made so far, this one included.' } },
  },
  PollChecksRequest: {
    type: 'object',
    description: 'Other fields are ignored.',
    properties: {
      max: { type: 'integer', minimum: 1, maximum: limits.receiveMessagesMaxCount, default: 32 },
      waitMs: {
        type: 'integer',
        minimum: 0,
        maximum: limits.longPollWaitMaxMs,
        default: waitDefaultMs,
        description: 'Long polling: when no check request is queued, wait up to this long for one (`ILLEGAL_POLLING_TIME`).',
      },
    },
  },
  TransactionCheck: {
    type: 'object',
    required: ['transactionId', 'messageId', 'producerGroup', 'topic', 'checks', 'message'],
    description:
      'Asks the producer group what became of a transaction: answer by committing or rolling it back ' +
      '(or, to a `checkUrl` or checker Lambda, with `{"status": "COMMIT" | "ROLLBACK" | "UNKNOWN"}`).',
    properties: {
      transactionId: ref('TransactionId'),
      messageId: ref('MessageId'),
      producerGroup: ref('ProducerGroupName'),
      topic: ref('TopicName'),
      checks: { type: 'integer', minimum: 1, description: 'Checks made so far, this one included.' },
      message: ref('PendingMessage'),
    },
  },
  TransactionCheckList: {
    type: 'object',
    required: ['checks'],
    properties: { checks: { type: 'array', items: ref('TransactionCheck'), description: 'Empty when none came within `waitMs`.' } },
  },
};

// ---------------------------------------------------------------------------------------------
// Parameters.

const parameters: JsonObject = {
  topic: { name: 'topic', in: 'path', required: true, description: 'Topic name.', schema: ref('TopicName') },
  group: { name: 'group', in: 'path', required: true, description: 'Consumer group name.', schema: ref('GroupName') },
  queueId: {
    name: 'queueId',
    in: 'path',
    required: true,
    description: 'A queue of the topic, from 0.',
    schema: { type: 'integer', minimum: 0 },
  },
  messageId: { name: 'messageId', in: 'path', required: true, schema: ref('MessageId') },
  producerGroup: { name: 'producerGroup', in: 'path', required: true, description: 'Producer group name.', schema: ref('ProducerGroupName') },
  transactionId: { name: 'transactionId', in: 'path', required: true, description: 'Percent-encode it in a path.', schema: ref('TransactionId') },
};

// ---------------------------------------------------------------------------------------------
// Operations.

const noAuth: Json = [];

const paths: JsonObject = {
  '/healthz': {
    get: {
      operationId: 'getHealth',
      tags: ['operations'],
      summary: 'Liveness',
      description: 'Answers while the process runs, also while it shuts down. Needs no API key.',
      security: noAuth,
      'x-skyrocket-permission': 'none',
      responses: { '200': ok('The broker process is alive.', 'Health') },
    },
  },
  '/readyz': {
    get: {
      operationId: 'getReadiness',
      tags: ['operations'],
      summary: 'Readiness',
      description:
        'Whether the broker takes requests. While it shuts down every request, this one included, ' +
        'answers 503 `SERVICE_UNAVAILABLE`.',
      'x-skyrocket-permission': 'admin',
      responses: { '200': ok('Ready.', 'Readiness'), ...errors(common(notAdmin)) },
    },
  },
  '/metrics': {
    get: {
      operationId: 'getMetrics',
      tags: ['operations'],
      summary: 'Prometheus metrics',
      description: "This broker's metrics in the Prometheus text format, with consumer lag per group and queue.",
      'x-skyrocket-permission': 'admin',
      responses: {
        '200': {
          description: 'Prometheus text exposition format 0.0.4.',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
        ...errors(common(notAdmin)),
      },
    },
  },
  '/v1/openapi.json': {
    get: {
      operationId: 'getOpenApi',
      tags: ['operations'],
      summary: 'This document',
      description: 'Needs no API key.',
      security: noAuth,
      'x-skyrocket-permission': 'none',
      responses: {
        '200': { description: 'The OpenAPI 3.1 document.', content: jsonContent({ type: 'object' }) },
        ...errors({ SERVICE_UNAVAILABLE: 'the broker is shutting down.' }),
      },
    },
  },
  '/v1/topics': {
    post: {
      operationId: 'createTopic',
      tags: ['topics'],
      summary: 'Create a topic',
      'x-skyrocket-permission': 'admin',
      requestBody: jsonBody('CreateTopicRequest', smallRequestMaxBytes),
      responses: {
        '201': ok('Created.', 'Topic'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            `\`name\` is not a string, \`queues\` is not an integer from 1 to ${limits.topicQueuesMaxCount}, ` +
            `or \`type\` is not one of ${messageTypes.join(', ')}.`,
          ILLEGAL_TOPIC: `\`name\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ALREADY_EXISTS: 'a topic of that name exists.',
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
          ...common(notAdmin),
        }),
      },
    },
    get: {
      operationId: 'listTopics',
      tags: ['topics'],
      summary: 'List topics',
      'x-skyrocket-permission': 'admin',
      responses: { '200': ok('Every topic.', 'TopicList'), ...errors(common(notAdmin)) },
    },
  },
  '/v1/topics/{topic}': {
    parameters: [paramRef('topic')],
    get: {
      operationId: 'getTopic',
      tags: ['topics'],
      summary: 'Describe a topic',
      'x-skyrocket-permission': 'publish:{topic}',
      responses: {
        '200': ok('The topic.', 'Topic'),
        ...errors({
          ILLEGAL_TOPIC: badTopicPath,
          TOPIC_NOT_FOUND: topicMissing,
          ...common('the API key may not publish to the topic.'),
        }),
      },
    },
    delete: {
      operationId: 'deleteTopic',
      tags: ['topics'],
      summary: 'Delete a topic',
      'x-skyrocket-permission': 'admin',
      responses: {
        '204': { description: 'Deleted.' },
        ...errors({ ILLEGAL_TOPIC: badTopicPath, TOPIC_NOT_FOUND: topicMissing, ...common(notAdmin) }),
      },
    },
  },
  '/v1/topics/{topic}/route': {
    parameters: [paramRef('topic')],
    get: {
      operationId: 'getTopicRoute',
      tags: ['topics'],
      summary: 'Where the queues of a topic live',
      description:
        'Each queue with the broker group that owns it and that group\'s leader. Clients do not need ' +
        'it: any broker forwards a request to the owner.',
      'x-skyrocket-permission': 'publish:{topic} or subscribe:*',
      responses: {
        '200': ok('The route.', 'TopicRoute'),
        ...errors({
          ILLEGAL_TOPIC: badTopicPath,
          TOPIC_NOT_FOUND: topicMissing,
          ...common('the API key may neither publish to the topic nor subscribe as every group (`*`).'),
        }),
      },
    },
  },
  '/v1/topics/{topic}/messages': {
    parameters: [paramRef('topic')],
    post: {
      operationId: 'sendMessages',
      tags: ['messages'],
      summary: 'Send a batch of messages',
      description:
        'Validates the whole batch first: a batch is stored whole or not at all, and any error means ' +
        'nothing of it was stored. All messages of a batch go to queues of one broker group: messages ' +
        'with a `messageGroup` to the queue their group hashes to, others round-robin over the queues ' +
        "of this broker's group (or of one owner's, if this broker owns none). A batch whose message " +
        'groups hash to queues of different broker groups is refused. The answer comes once the batch ' +
        "is durable under the broker's flush mode (by default after `fdatasync`). A broker that does " +
        'not own the target queues forwards the request to their owner and relays its answer, so this ' +
        'works against any broker.',
      'x-skyrocket-permission': 'publish:{topic}',
      requestBody: {
        required: true,
        description:
          `A JSON object of at most ${sendRequestMaxBytes} bytes (base64 bodies of a full batch plus ` +
          'framing); larger requests answer 413 `PAYLOAD_TOO_LARGE`.',
        content: {
          ...jsonContent(ref('SendRequest')),
          [frameMediaType]: {
            schema: { type: 'string', format: 'binary' },
            description: frameDescription('SendRequest'),
          },
        },
        'x-max-bytes': sendRequestMaxBytes,
      },
      responses: {
        '200': ok('Stored.', 'SendResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          MALFORMED_FRAME: malformedFrame,
          INVALID_ARGUMENT:
            `\`messages\` is not a list of 1 to ${limits.sendBatchMaxCount} objects; a \`body\` is not a ` +
            'string or not valid base64; `bodyEncoding` is not `utf8` or `base64`; a message has an ' +
            'unknown field (`topic` included); a field has the wrong JSON type; the message groups ' +
            'of the batch hash to queues of different broker groups; `transactional` is not a boolean; ' +
            'or `producerGroup` is missing from a transactional send, malformed, or given without `transactional: true`.',
          ILLEGAL_TOPIC: badTopicPath,
          MESSAGE_BODY_EMPTY: 'a body is empty.',
          ILLEGAL_MESSAGE_TAG: `a tag is blank, over ${size(limits.tagMaxBytes)}, or holds a control character or \`|\`.`,
          ILLEGAL_MESSAGE_KEY: `more than ${limits.keysMaxCount} keys, or a key is blank, over ${size(limits.keyMaxBytes)}, or holds a control character.`,
          ILLEGAL_MESSAGE_PROPERTY_KEY:
            'a property name is blank, too long, reserved, or holds a control character, or a value holds a control character.',
          ILLEGAL_MESSAGE_GROUP:
            `a \`messageGroup\` is blank, over ${limits.messageGroupMaxBytes} bytes, or holds a control ` +
            'character; or a message on a FIFO topic has none.',
          ILLEGAL_DELIVERY_TIME:
            '`deliverAt` or `delayMs` is not an integer, is negative or reaches more than 365 days ahead; ' +
            `\`delayLevel\` is not an integer from 1 to ${delayLevelsMs.length}; or more than one of the three is given.`,
          UNAUTHORIZED: unauthorized,
          FORBIDDEN: 'the API key may not publish to the topic, or the topic is not writable.',
          TOPIC_NOT_FOUND: topicMissing,
          PAYLOAD_TOO_LARGE:
            `the request body is over ${sendRequestMaxBytes} bytes, the bodies add up to more than ` +
            `${size(limits.sendBatchMaxBytes)}, or the batch does not fit one commit-log segment.`,
          MESSAGE_BODY_TOO_LARGE: `a body is over ${size(limits.bodyMaxBytes)} once decoded.`,
          MESSAGE_PROPERTIES_TOO_LARGE:
            `more than ${limits.propertiesMaxCount} properties, or the tag, keys and properties take more ` +
            `than ${size(limits.propertiesMaxBytes)} of UTF-8 together.`,
          MESSAGE_PROPERTY_CONFLICT_WITH_TYPE:
            'a transactional send to a topic that is not of type TRANSACTION, or a transactional message with `deliverAt` or `delayMs`; ' +
            'or a message names a delivery time (`deliverAt`, `delayMs`, `delayLevel`) on a topic that is not of type DELAY ' +
            '(`field` names the message, `messages[3]`).',
          SERVICE_UNAVAILABLE: unavailable,
          STORE_CLOSED: 'the store of the owning broker is closing; retry.',
          NOT_LEADER: 'the queues moved to another broker group while the request was forwarded; retry.',
          DISK_FULL: "the owning broker's disk is full; nothing was stored; retry later.",
          STORE_CORRUPTED: 'the owning broker stopped writing after a failed write.',
          INTERNAL_ERROR: internal,
        }),
      },
    },
    get: {
      operationId: 'queryMessagesByKey',
      tags: ['messages'],
      summary: 'Query messages by key',
      description:
        'Messages of the topic that carry `key` and were stored between `from` and `to`, newest first: ' +
        `at most ${queryByKeyMaxPerBrokerGroup} from each broker group that owns queues of the topic.`,
      'x-skyrocket-permission': 'subscribe:*',
      parameters: [
        { name: 'key', in: 'query', required: true, schema: { type: 'string', minLength: 1 } },
        {
          name: 'from',
          in: 'query',
          description: 'Earliest store time (epoch ms).',
          schema: { type: 'integer', minimum: 0, default: 0 },
        },
        {
          name: 'to',
          in: 'query',
          description: 'Latest store time (epoch ms); not before `from`.',
          schema: { type: 'integer', minimum: 0, default: Number.MAX_SAFE_INTEGER },
        },
      ],
      responses: {
        '200': ok('The messages found, newest first.', 'MessageList'),
        ...errors({
          INVALID_ARGUMENT: '`key` is missing or empty, or `from`/`to` are not epoch milliseconds with `from` <= `to`.',
          ILLEGAL_TOPIC: badTopicPath,
          TOPIC_NOT_FOUND: topicMissing,
          ...common('the API key may not subscribe as every group (`*`).'),
        }),
      },
    },
  },
  '/v1/topics/{topic}/queues/{queueId}/messages': {
    parameters: [paramRef('topic'), paramRef('queueId')],
    get: {
      operationId: 'pullMessages',
      tags: ['messages'],
      summary: 'Pull messages by offset',
      description:
        'Reads one queue from an offset, for readers that keep their own position: no consumer group, ' +
        'no receipt handles, nothing hidden. An offset below the oldest retained one reads from there. ' +
        'Continue from `nextOffset`.',
      'x-skyrocket-permission': 'subscribe:*',
      parameters: [
        { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        {
          name: 'max',
          in: 'query',
          description: 'At most this many messages (fewer when they exceed 4 MiB together).',
          schema: { type: 'integer', minimum: 1, maximum: limits.receiveMessagesMaxCount, default: pullMaxDefaultCount },
        },
      ],
      responses: {
        '200': ok('What was read.', 'PullResult'),
        ...errors({
          INVALID_ARGUMENT: `\`max\` is not an integer from 1 to ${limits.receiveMessagesMaxCount}.`,
          ILLEGAL_OFFSET: '`offset` is not a non-negative integer.',
          ILLEGAL_TOPIC: badTopicPath,
          TOPIC_NOT_FOUND: topicMissing,
          QUEUE_NOT_FOUND: '`queueId` is not an integer naming a queue of the topic.',
          NOT_LEADER: 'the queue moved to another broker group while the request was forwarded; retry.',
          ...common('the API key may not subscribe as every group (`*`).'),
        }),
      },
    },
  },
  '/v1/groups': {
    post: {
      operationId: 'createGroup',
      tags: ['groups'],
      summary: 'Create a consumer group',
      'x-skyrocket-permission': 'admin',
      requestBody: jsonBody('CreateGroupRequest', smallRequestMaxBytes),
      responses: {
        '201': ok('Created.', 'Group'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            '`name` is not a string, `mode` is not CLUSTERING or BROADCASTING, `orderly` is not a boolean, ' +
            `or \`maxDeliveryAttempts\` is not an integer from 1 to ${limits.deliveryAttemptsMaxCount}.`,
          ILLEGAL_CONSUMER_GROUP: `\`name\` is not 1 to ${limits.groupNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ALREADY_EXISTS: 'a group of that name exists.',
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
          ...common(notAdmin),
        }),
      },
    },
    get: {
      operationId: 'listGroups',
      tags: ['groups'],
      summary: 'List consumer groups',
      'x-skyrocket-permission': 'admin',
      responses: { '200': ok('Every group (without lag).', 'GroupList'), ...errors(common(notAdmin)) },
    },
  },
  '/v1/groups/{group}': {
    parameters: [paramRef('group')],
    get: {
      operationId: 'getGroup',
      tags: ['groups'],
      summary: 'Describe a consumer group, with its lag',
      'x-skyrocket-permission': 'subscribe:{group}',
      responses: {
        '200': ok('The group and its lag, gathered from every broker group.', 'GroupWithLag'),
        ...errors({
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
    delete: {
      operationId: 'deleteGroup',
      tags: ['groups'],
      summary: 'Delete a consumer group',
      'x-skyrocket-permission': 'admin',
      responses: {
        '204': { description: 'Deleted.' },
        ...errors({ ILLEGAL_CONSUMER_GROUP: badGroupPath, CONSUMER_GROUP_NOT_FOUND: groupMissing, ...common(notAdmin) }),
      },
    },
  },
  '/v1/groups/{group}/receive': {
    parameters: [paramRef('group')],
    post: {
      operationId: 'receiveMessages',
      tags: ['consume'],
      summary: 'Receive messages (long polling)',
      description:
        'Takes up to `max` visible messages of the topic for the group and hides them for ' +
        '`invisibleMs`. Each comes with a receipt handle: ack it before the invisibility ends, or the ' +
        'message becomes visible again and is delivered again with `deliveryAttempt` counted up. ' +
        'When nothing is visible, the request waits up to `waitMs` for a message to arrive (or an ' +
        'unacked one to become visible again) and answers an empty list if none does; a broker that ' +
        'starts shutting down answers its waiting receives at once, empty.\n\n' +
        'Messages whose tag does not match `filter` are passed over: the group moves past them and ' +
        'will not receive them later.\n\n' +
        'Any broker serves any receive: it takes what is visible on every broker group that owns ' +
        'queues of the topic (its own first), and if nothing is, waits on all of them at once, asking ' +
        'each for an equal share of `max` (at least 1); the first to answer with messages ends the ' +
        'others\' waits.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('ReceiveRequest', ackRequestMaxBytes),
      responses: {
        '200': {
          description:
            'The messages received; empty when none came within `waitMs`. A client that sends ' +
            `\`Accept: ${deliveriesMediaType}\` gets the answer in that binary form, and one that sends ` +
            `\`Accept: ${frameMediaType}\` (and not the former) as a frame, instead of JSON.`,
          content: {
            ...jsonContent(ref('ReceiveResult')),
            [deliveriesMediaType]: { schema: { type: 'string', format: 'binary' }, description: deliveriesDescription },
            [frameMediaType]: { schema: { type: 'string', format: 'binary' }, description: frameDescription('ReceiveResult') },
          },
        },
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            `\`topic\` is missing or not a string; \`max\` is not an integer from 1 to ${limits.receiveMessagesMaxCount}; ` +
            '`invisibleMs` or `waitMs` is not a number; `clientId` is not 1 to 128 printable ASCII ' +
            `characters; \`ackReceiptHandles\` is not a list of 1 to ${limits.receiveMessagesMaxCount} handles; ` +
            'or a BROADCASTING group gets no `clientId`.',
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          ILLEGAL_INVISIBLE_TIME: `\`invisibleMs\` is not an integer from ${limits.invisibleMinMs} to ${limits.invisibleMaxMs}.`,
          ILLEGAL_POLLING_TIME: `\`waitMs\` is not an integer from 0 to ${limits.longPollWaitMaxMs}.`,
          INVALID_FILTER_EXPRESSION:
            '`filter` is not `{"type": "TAG" | "SQL92", "expression": ...}`, or the expression is not a string, has an empty or malformed tag, or is not valid SQL92 (the message gives the position).',
          UNAUTHORIZED: unauthorized,
          FORBIDDEN: 'the API key may not subscribe as this group, or the topic is not readable.',
          TOPIC_NOT_FOUND: topicMissing,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          PAYLOAD_TOO_LARGE: tooLarge(ackRequestMaxBytes),
          SERVICE_UNAVAILABLE: unavailable,
          INTERNAL_ERROR: internal,
        }),
      },
    },
  },
  '/v1/groups/{group}/ack': {
    parameters: [paramRef('group')],
    post: {
      operationId: 'ackMessages',
      tags: ['consume'],
      summary: 'Acknowledge received messages',
      description:
        'Ends the deliveries of the given receipt handles, wherever they were issued. Answers 200 ' +
        '`{acked, failed}` when at least one handle was acked, listing each handle that failed with ' +
        'its error code (a handle that expired, was used already, or belongs to another group or ' +
        'topic fails with `INVALID_RECEIPT_HANDLE`). Only when every handle failed does it answer an ' +
        'error: the error of the first handle, with `field: receiptHandles`.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('AckRequest', ackRequestMaxBytes),
      responses: {
        '200': ok('At least one handle was acked.', 'AckResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            `\`topic\` is missing or not a string, \`receiptHandles\` is not a list of 1 to ${limits.receiveMessagesMaxCount} handles, ` +
            'or `listAcked` is not a boolean.',
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          INVALID_RECEIPT_HANDLE:
            'every handle failed, the first because it is mangled, forged, expired (the message is visible ' +
            'again), already used, or of another group or topic.',
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          PAYLOAD_TOO_LARGE: tooLarge(ackRequestMaxBytes),
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/change-invisibility': {
    parameters: [paramRef('group')],
    post: {
      operationId: 'changeInvisibility',
      tags: ['consume'],
      summary: 'Extend or shorten the invisibility of a received message',
      description:
        'Hides the message for `invisibleMs` from now and answers a new receipt handle that replaces ' +
        'the one sent (which stops working). Forwarded to the broker group that issued the handle.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('ChangeInvisibilityRequest', smallRequestMaxBytes),
      responses: {
        '200': ok('The new handle.', 'ChangeInvisibilityResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`topic` is missing or not a string, or `invisibleMs` is missing or not a number.',
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          ILLEGAL_INVISIBLE_TIME: `\`invisibleMs\` is not an integer from ${limits.invisibleMinMs} to ${limits.invisibleMaxMs}.`,
          INVALID_RECEIPT_HANDLE:
            'the handle is mangled, forged, expired (the message is visible again), replaced already, or of another group or topic.',
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/nack': {
    parameters: [paramRef('group')],
    post: {
      operationId: 'nackMessages',
      tags: ['consume'],
      summary: 'Report received messages as failed',
      description:
        "The consumer could not process the messages: each becomes visible again after RocketMQ's " +
        'retry backoff for the attempt it was (10 s after the first, 30 s after the second, then 1 m, ' +
        '2 m, … 2 h), or after `delayMs`. Its receipt handle stops working. A message whose attempts ' +
        "reach the group's `maxDeliveryAttempts` goes to the dead-letter topic `%DLQ%<group>` instead " +
        'of a further delivery. Answers like ack: `{nacked, failed}`, an error only when every handle failed.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('NackRequest', ackRequestMaxBytes),
      responses: {
        '200': ok('At least one handle was nacked.', 'NackResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: `\`receiptHandles\` is not a list of 1 to ${limits.receiveMessagesMaxCount} handles.`,
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          ILLEGAL_INVISIBLE_TIME: `\`delayMs\` is not an integer from 0 to ${limits.invisibleMaxMs}.`,
          INVALID_RECEIPT_HANDLE: 'every handle failed, the first because it is mangled, forged, expired, used, or of another group or topic.',
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          PAYLOAD_TOO_LARGE: tooLarge(ackRequestMaxBytes),
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/dlq': {
    parameters: [paramRef('group')],
    get: {
      operationId: 'listDeadLetters',
      tags: ['consume'],
      summary: "The group's dead letters",
      description:
        'Messages that used up their delivery attempts, gathered from every broker group, oldest ' +
        'first, with their original id, topic (`originTopic`), body, tag, keys and properties; ' +
        '`deliveryAttempt` is the number of attempts made plus one.',
      'x-skyrocket-permission': 'subscribe:{group}',
      parameters: [{ name: 'max', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.receiveMessagesMaxCount, default: 32 } }],
      responses: {
        '200': ok('The dead letters not yet redriven.', 'DeadLetters'),
        ...errors({
          INVALID_ARGUMENT: '`max` is out of range.',
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/dlq/redrive': {
    parameters: [paramRef('group')],
    post: {
      operationId: 'redriveDeadLetters',
      tags: ['consume'],
      summary: 'Send dead letters back to their topics',
      description:
        'Sends every dead letter of the group (or those in `messageIds`) back to the topic it came ' +
        'from, as a new message (new id, delivery attempts starting again) with the same body, tag, ' +
        'keys and properties, and stops listing it.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('RedriveRequest', 1024 * 1024),
      responses: {
        '200': ok('How many were redriven, and which failed (for example because their topic was deleted).', 'RedriveResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`messageIds` is not a list of strings.',
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          PAYLOAD_TOO_LARGE: tooLarge(1024 * 1024),
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/offsets': {
    parameters: [paramRef('group')],
    get: {
      operationId: 'getOffsets',
      tags: ['consume'],
      summary: "The group's offsets in the queues of a topic",
      'x-skyrocket-permission': 'subscribe:{group}',
      parameters: [{ name: 'topic', in: 'query', required: true, schema: ref('TopicName') }],
      responses: {
        '200': ok('One entry per queue, gathered from every broker group.', 'Offsets'),
        ...errors({
          INVALID_ARGUMENT: '`topic` is missing.',
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          TOPIC_NOT_FOUND: topicMissing,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
    put: {
      operationId: 'setOffset',
      tags: ['consume'],
      summary: "Move the group's position in one queue",
      description:
        "Resets or skips: the group's next receive from the queue starts at `offset` (clamped to the " +
        "queue's retained range). Deliveries in flight in that queue are dropped; their receipt " +
        'handles stop working. Applies to the group\'s shared position, which BROADCASTING consumers ' +
        '(one position per `clientId`) do not use.',
      'x-skyrocket-permission': 'subscribe:{group}',
      requestBody: jsonBody('SetOffsetRequest', smallRequestMaxBytes),
      responses: {
        '200': ok('Moved.', 'SetOffsetResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`topic` is missing or not a string.',
          ILLEGAL_TOPIC: `\`topic\` is not 1 to ${limits.topicNameMaxChars} characters of \`[%|a-zA-Z0-9_-]\`.`,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          ILLEGAL_OFFSET: '`offset` is not a non-negative integer.',
          TOPIC_NOT_FOUND: topicMissing,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          QUEUE_NOT_FOUND: '`queueId` is not an integer naming a queue of the topic.',
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
          NOT_LEADER: 'the queue moved to another broker group while the request was forwarded; retry.',
          ...common('the API key may not subscribe as this group.'),
        }),
      },
    },
  },
  '/v1/groups/{group}/lambda-subscriptions/{topic}': {
    parameters: [paramRef('group'), paramRef('topic')],
    put: {
      operationId: 'putLambdaSubscription',
      tags: ['groups'],
      summary: "Push the group's messages of a topic to a Lambda function",
      description:
        'Adds or replaces the group\'s Lambda subscription to the topic. Every broker that owns queues ' +
        'of the topic takes batches of up to `batchSize` messages for the group and invokes the function ' +
        'with them (`RequestResponse`), at most `maxConcurrency` at once per broker. The function answers ' +
        '`{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}`: those records are retried after ' +
        '`retryDelayMs` (or the group\'s backoff) and dead-lettered after `maxDeliveryAttempts`, the others ' +
        'are acked; a function error or timeout retries the whole batch. Orderly groups get at most one ' +
        'message per message group per batch, one batch per message group at a time. Brokers start ' +
        'within a few seconds (`SKYROCKET_DISPATCH_REFRESH_MS`). Only CLUSTERING groups can have one.',
      'x-skyrocket-permission': 'admin',
      requestBody: jsonBody('PutLambdaSubscriptionRequest', smallRequestMaxBytes),
      responses: {
        '200': ok('The group with its subscriptions.', 'Group'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            '`functionName` is not a function name or ARN; `batchSize`, `maxConcurrency` or `retryDelayMs` ' +
            'is out of range; an unknown field; `topic` differs from the path; the group is not CLUSTERING; ' +
            `or the group has ${lambdaSubscriptionLimits.perGroupMaxCount} subscriptions already.`,
          INVALID_FILTER_EXPRESSION: '`filter` is not a valid TAG or SQL92 filter.',
          ILLEGAL_TOPIC: badTopicPath,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          TOPIC_NOT_FOUND: topicMissing,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          CONFLICT: 'the group kept changing under concurrent updates; retry.',
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
          ...common(notAdmin),
        }),
      },
    },
    delete: {
      operationId: 'deleteLambdaSubscription',
      tags: ['groups'],
      summary: "Stop pushing the group's messages of a topic to Lambda",
      description: 'Batches in flight finish; the group keeps its position, so a pop consumer can take over where the function stopped.',
      'x-skyrocket-permission': 'admin',
      responses: {
        '204': { description: 'Removed.' },
        ...errors({
          ILLEGAL_TOPIC: badTopicPath,
          ILLEGAL_CONSUMER_GROUP: badGroupPath,
          CONSUMER_GROUP_NOT_FOUND: groupMissing,
          NOT_FOUND: 'the group has no Lambda subscription to this topic.',
          CONFLICT: 'the group kept changing under concurrent updates; retry.',
          ...common(notAdmin),
        }),
      },
    },
  },
  '/v1/messages/{messageId}': {
    parameters: [paramRef('messageId')],
    get: {
      operationId: 'getMessage',
      tags: ['messages'],
      summary: 'Get a message by id',
      description:
        'The id names the broker that stored the message; any broker fetches it from there. The id of ' +
        'a transactional message is found once it is committed, not before. A delayed message is found ' +
        'while it waits (with `queueOffset` -1 and its `deliverAt`) and, once delivered, as the delivered ' +
        'message; a cancelled one is not found.',
      'x-skyrocket-permission': 'subscribe:*',
      responses: {
        '200': ok('The message.', 'Message'),
        ...errors({
          ILLEGAL_MESSAGE_ID: 'the id is not a Skyrocket message id.',
          MESSAGE_NOT_FOUND:
            'no message has this id (retention may have removed it), or the broker that stored it is not available.',
          STORE_CORRUPTED: 'the record failed verification.',
          ...common('the API key may not subscribe as every group (`*`).'),
        }),
      },
    },
    delete: {
      operationId: 'cancelMessage',
      tags: ['messages'],
      summary: 'Cancel a delayed message',
      description:
        'Cancels a delayed message before it is delivered: it is never delivered, and no longer found ' +
        'by id. Works for a message waiting in its broker and for one parked in the timer index. ' +
        'Any broker forwards the request to the broker that stored the message.',
      'x-skyrocket-permission': 'publish:{topic of the message}',
      responses: {
        '204': { description: 'Cancelled.' },
        ...errors({
          ILLEGAL_MESSAGE_ID: 'the id is not a Skyrocket message id.',
          MESSAGE_NOT_FOUND:
            'no delayed message with this id waits: the id is unknown, the message was delivered (or is ' +
            'being delivered) or cancelled already, it is not a delayed message, or the broker that stored it is not available.',
          UNAUTHORIZED: unauthorized,
          FORBIDDEN: "the API key may not publish to the message's topic.",
          SERVICE_UNAVAILABLE: `${unavailable} Also: the message is being parked in the timer index right now; retry.`,
          STORE_CLOSED: 'the store of the owning broker is closing; retry.',
          DISK_FULL: "the owning broker's disk is full; nothing was changed; retry later.",
          STORE_CORRUPTED: 'the owning broker stopped writing after a failed write.',
          INTERNAL_ERROR: internal,
        }),
      },
    },
  },
  '/v1/internal/timers': {
    post: {
      operationId: 'moveTimers',
      tags: ['internal'],
      summary: 'Move parked timers back into the broker (delay sweep)',
      description:
        'Called by the delay sweep (with the cluster\'s internal secret) on the leader of the broker group ' +
        'that owns the timers\' queues: takes delayed messages that come due within the horizon from the ' +
        'DynamoDB timer index back into this broker\'s timing wheel. Idempotent by message id: a timer ' +
        'this broker already has, delivered or cancelled is answered `DUPLICATE` or `CANCELLED` and not ' +
        'taken again. The answer comes once the accepted timers are durable.',
      'x-skyrocket-permission': 'admin',
      requestBody: jsonBody('MoveTimersRequest', sendRequestMaxBytes),
      responses: {
        '200': ok('What became of each timer.', 'MoveTimersResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: `\`timers\` is not a list of 1 to ${limits.sendBatchMaxCount} timers of the documented shape.`,
          ILLEGAL_TOPIC: 'a timer names an illegal topic.',
          ILLEGAL_MESSAGE_ID: 'a timer has no Skyrocket message id.',
          PAYLOAD_TOO_LARGE: tooLarge(sendRequestMaxBytes),
          STORE_CLOSED: 'the store is closing; retry.',
          DISK_FULL: 'the disk is full; nothing was taken; retry later.',
          STORE_CORRUPTED: 'the broker stopped writing after a failed write.',
          ...common(notAdmin),
        }),
      },
    },
  },
  '/v1/producer-groups': {
    post: {
      operationId: 'createProducerGroup',
      tags: ['transactions'],
      summary: 'Register a producer group',
      description: 'Says how the group\'s unresolved transactions are checked back, and how patiently.',
      'x-skyrocket-permission': 'admin',
      requestBody: jsonBody('CreateProducerGroupRequest', transactionRequestMaxBytes),
      responses: {
        '201': ok('Registered.', 'ProducerGroup'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            '`name` is not a producer group name; `checkUrl` is not an http(s) URL without credentials; `checkLambdaArn` ' +
            'is not a Lambda function ARN; both are given; or `checkDelayMs`, `checkIntervalMs` or `maxChecks` is out of range.',
          ALREADY_EXISTS: 'a producer group of that name is registered.',
          PAYLOAD_TOO_LARGE: tooLarge(transactionRequestMaxBytes),
          ...common(notAdmin),
        }),
      },
    },
    get: {
      operationId: 'listProducerGroups',
      tags: ['transactions'],
      summary: 'List registered producer groups',
      'x-skyrocket-permission': 'admin',
      responses: { '200': ok('Every registered group.', 'ProducerGroupList'), ...errors(common(notAdmin)) },
    },
  },
  '/v1/producer-groups/{producerGroup}': {
    parameters: [paramRef('producerGroup')],
    get: {
      operationId: 'getProducerGroup',
      tags: ['transactions'],
      summary: 'The check settings of a producer group',
      description: 'Its registration, or (`registered: false`) the defaults an unregistered group gets.',
      'x-skyrocket-permission': 'admin',
      responses: {
        '200': ok('The settings.', 'ProducerGroup'),
        ...errors({ INVALID_ARGUMENT: 'the name in the path is not a producer group name.', ...common(notAdmin) }),
      },
    },
    delete: {
      operationId: 'deleteProducerGroup',
      tags: ['transactions'],
      summary: 'Unregister a producer group',
      description: 'Its transactions are then checked through its SDK producers, with the defaults.',
      'x-skyrocket-permission': 'admin',
      responses: {
        '204': { description: 'Unregistered.' },
        ...errors({
          INVALID_ARGUMENT: 'the name in the path is not a producer group name.',
          NOT_FOUND: 'the group is not registered.',
          ...common(notAdmin),
        }),
      },
    },
  },
  '/v1/producer-groups/{producerGroup}/checks': {
    parameters: [paramRef('producerGroup')],
    post: {
      operationId: 'pollTransactionChecks',
      tags: ['transactions'],
      summary: 'Check requests for a producer group (long polling)',
      description:
        'How SDK producers answer check-backs. The check sweep asks a producer group about a transaction ' +
        'left unresolved (past its `checkDelayMs`) by queueing a check request on the owning broker; ' +
        'this takes queued requests from every broker group, waiting up to `waitMs` when none is queued. ' +
        'Each request is handed out once: answer it with commit or rollback, or leave it (UNKNOWN) to be ' +
        'asked again after `checkIntervalMs`. Only requests for topics the API key may publish to are returned.',
      'x-skyrocket-permission': 'publish on the topics of the checks returned',
      requestBody: { ...jsonBody('PollChecksRequest', transactionRequestMaxBytes), required: false },
      responses: {
        '200': ok('The check requests; empty when none came within `waitMs`.', 'TransactionCheckList'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: `the name in the path is not a producer group name, or \`max\` is not an integer from 1 to ${limits.receiveMessagesMaxCount}.`,
          ILLEGAL_POLLING_TIME: `\`waitMs\` is not an integer from 0 to ${limits.longPollWaitMaxMs}.`,
          PAYLOAD_TOO_LARGE: tooLarge(transactionRequestMaxBytes),
          ...common('the API key may not publish to any topic.'),
        }),
      },
    },
  },
  '/v1/transactions/{transactionId}': {
    parameters: [paramRef('transactionId')],
    get: {
      operationId: 'getTransaction',
      tags: ['transactions'],
      summary: 'The state of a transaction',
      description: 'Forwarded to the broker group that holds it.',
      'x-skyrocket-permission': 'publish:{topic of the transaction}',
      parameters: [
        { name: 'message', in: 'query', description: '`false` leaves the message out.', schema: { type: 'boolean', default: true } },
      ],
      responses: {
        '200': ok('The transaction.', 'TransactionStatus'),
        ...errors({
          INVALID_TRANSACTION_ID: 'the id is malformed, or names no transaction (never prepared, or past retention).',
          NOT_LEADER: 'a forwarded request reached a broker of another broker group; retry.',
          ...common('the API key may not publish to the topic of the transaction.'),
        }),
      },
    },
  },
  '/v1/transactions/{transactionId}/commit': {
    parameters: [paramRef('transactionId')],
    post: {
      operationId: 'commitTransaction',
      tags: ['transactions'],
      summary: 'Commit a transaction: its message becomes visible',
      description:
        'Stores the message in its topic, under the id the send returned, exactly once: committing a ' +
        'committed transaction again answers its status unchanged. Committing a rolled-back one fails ' +
        'with `TRANSACTION_ALREADY_RESOLVED`. Any broker takes it and forwards it to the owner.',
      'x-skyrocket-permission': 'publish:{topic of the transaction}',
      requestBody: { ...jsonBody('ResolveTransactionRequest', transactionRequestMaxBytes), required: false },
      responses: {
        '200': ok('Committed (now or before).', 'TransactionStatus'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`resolvedBy` or `checks` is out of range.',
          INVALID_TRANSACTION_ID: 'the id is malformed, or names no transaction (never prepared, or past retention).',
          TRANSACTION_ALREADY_RESOLVED: 'the transaction was rolled back.',
          PAYLOAD_TOO_LARGE: tooLarge(transactionRequestMaxBytes),
          NOT_LEADER: 'a forwarded request reached a broker of another broker group; retry.',
          STORE_CLOSED: 'the owning broker is stopping; retry.',
          DISK_FULL: "the owning broker's disk is full; nothing was stored; retry later.",
          ...common('the API key may not publish to the topic of the transaction, or sets `resolvedBy`/`checks` without being an admin.'),
        }),
      },
    },
  },
  '/v1/transactions/{transactionId}/rollback': {
    parameters: [paramRef('transactionId')],
    post: {
      operationId: 'rollbackTransaction',
      tags: ['transactions'],
      summary: 'Roll a transaction back: its message is never visible',
      description:
        'Rolling back a rolled-back transaction again answers its status unchanged; rolling back a ' +
        'committed one fails with `TRANSACTION_ALREADY_RESOLVED`. Any broker takes it and forwards it to the owner.',
      'x-skyrocket-permission': 'publish:{topic of the transaction}',
      requestBody: { ...jsonBody('ResolveTransactionRequest', transactionRequestMaxBytes), required: false },
      responses: {
        '200': ok('Rolled back (now or before).', 'TransactionStatus'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`resolvedBy` or `checks` is out of range.',
          INVALID_TRANSACTION_ID: 'the id is malformed, or names no transaction (never prepared, or past retention).',
          TRANSACTION_ALREADY_RESOLVED: 'the transaction was committed.',
          PAYLOAD_TOO_LARGE: tooLarge(transactionRequestMaxBytes),
          NOT_LEADER: 'a forwarded request reached a broker of another broker group; retry.',
          STORE_CLOSED: 'the owning broker is stopping; retry.',
          DISK_FULL: "the owning broker's disk is full; nothing was stored; retry later.",
          ...common('the API key may not publish to the topic of the transaction, or sets `resolvedBy`/`checks` without being an admin.'),
        }),
      },
    },
  },
  '/v1/transactions/{transactionId}/check': {
    parameters: [paramRef('transactionId')],
    post: {
      operationId: 'requestTransactionCheck',
      tags: ['transactions'],
      summary: 'Ask the producer group through its SDK producers',
      description:
        'What the check sweep calls for a group without `checkUrl` or `checkLambdaArn`: queues a check ' +
        'request (replacing an earlier one) that the group\'s producers take with ' +
        '`POST /v1/producer-groups/{producerGroup}/checks`. A resolved transaction queues nothing.',
      'x-skyrocket-permission': 'admin',
      requestBody: { ...jsonBody('RequestCheckRequest', transactionRequestMaxBytes), required: false },
      responses: {
        '200': ok('The transaction (`PREPARED` when a request was queued).', 'TransactionStatus'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT: '`checks` is not a non-negative integer.',
          INVALID_TRANSACTION_ID: 'the id is malformed, or names no transaction.',
          PAYLOAD_TOO_LARGE: tooLarge(transactionRequestMaxBytes),
          NOT_LEADER: 'a forwarded request reached a broker of another broker group; retry.',
          ...common(notAdmin),
        }),
      },
    },
  },
};

// ---------------------------------------------------------------------------------------------
// The document.

const description = `The broker's REST API.

**Any broker answers any request.** A request about queues that another broker group owns is forwarded to that group's leader and its answer relayed unchanged, so clients may spread requests over all brokers (for example through a load balancer) and never need the route.

**Authentication.** Every endpoint except \`GET /healthz\` and \`GET /v1/openapi.json\` needs \`Authorization: Bearer <api key>\`. A key belongs to a principal that is an admin (may do everything), or may publish to a list of topics and subscribe as a list of consumer groups (\`*\`: all of them). Each operation names the permission it needs in \`x-skyrocket-permission\`; \`subscribe:*\` means the key must be allowed to subscribe as every group. The headers \`x-skyrocket-internal\` and \`x-skyrocket-principal\` are for requests between the brokers of a cluster; a wrong \`x-skyrocket-internal\` answers 401.

**Errors.** Every error answers \`{"error": {"code", "message", "retriable", "field"?}}\` (schema \`Error\`). \`code\` is stable and has one HTTP status; \`retriable\` says whether sending the same request again may succeed; \`field\` names the part of the request that is wrong as a path (\`messages[3].tag\`). Each operation lists the codes it can answer. Besides those: an unknown path answers 404 \`NOT_FOUND\`, a known path with a method it does not have answers 400 \`BAD_REQUEST\`, and while a broker shuts down every request but \`GET /healthz\` answers 503 \`SERVICE_UNAVAILABLE\` (retry on another broker).

**Bodies.** Requests and responses are JSON. Message bodies travel as text (\`bodyEncoding: utf8\`) or base64 (\`bodyEncoding: base64\`). Limits follow RocketMQ 5: bodies up to ${size(limits.bodyMaxBytes)}, tags and keys up to ${size(limits.tagMaxBytes)}, at most ${limits.propertiesMaxCount} user properties; a request over a limit answers a 4xx error and nothing of it is stored. Each request body gives its size limit in \`x-max-bytes\`.`;

export const openApiDocument: JsonObject = {
  openapi: '3.1.0',
  info: { title: 'Skyrocket REST API', version: '1', description },
  tags: [
    { name: 'topics', description: 'Topics and their routes (administration).' },
    { name: 'messages', description: 'Send, pull by offset, query by id and key.' },
    { name: 'groups', description: 'Consumer groups (administration) and their lag.' },
    { name: 'consume', description: 'Receive, ack, change invisibility, offsets.' },
    { name: 'transactions', description: 'Commit, roll back and check back transactional messages; producer groups.' },
    { name: 'operations', description: 'Health, readiness, metrics, this document.' },
    { name: 'internal', description: 'Called by the sweeps with the internal secret (or an admin key); not for clients.' },
  ],
  servers: [
    {
      url: '{scheme}://{host}',
      description: 'Any broker of the cluster, or the load balancer in front of them.',
      variables: {
        scheme: { enum: ['https', 'http'], default: 'https', description: 'https when the broker or the load balancer has a certificate.' },
        host: { default: 'localhost:8080', description: 'Host and port (the broker listens on 8080 unless `SKYROCKET_PORT` says otherwise).' },
      },
    },
  ],
  security: [{ bearerAuth: [] }],
  paths,
  components: {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        description: 'An API key: `Authorization: Bearer <key>`.',
      },
    },
    parameters,
    schemas,
  },
};

/** The document as docs/openapi.json holds it: 2-space indentation and a final newline. */
export function renderOpenApiJson(): string {
  return `${JSON.stringify(openApiDocument, null, 2)}\n`;
}
