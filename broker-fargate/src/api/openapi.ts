/**
 * The OpenAPI 3.1 description of the REST API v1, served at /v1/openapi.json and kept in
 * docs/openapi.json (`npx tsx bin/write-openapi.ts` rewrites it; a test fails when they differ).
 *
 * It describes what `broker.ts` does, not what it may do later. Limits, name patterns, message
 * types and error codes are read from `core/` rather than copied, so the document cannot drift
 * from the checks the broker runs. Error responses are grouped by the HTTP status that
 * `core/errors.ts` gives each code, so a code can never be listed under the wrong status.
 */
import { STATUS_CODES } from 'node:http';
import { errorCodes, type ErrorCode } from '../../../core/errors.ts';
import {
  controlCharacterPattern,
  limits,
  reservedPropertyNamePrefix,
  reservedPropertyNames,
  resourceNamePattern,
} from '../../../core/limits.ts';
import { messageIdVersion } from '../../../core/message-id.ts';
import { messageTypes } from '../../../core/message.ts';

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
    'RocketMQ 5 topic message type. Today only `FIFO` changes what the broker does (every message ' +
    'needs a `messageGroup`); `DELAY` and `TRANSACTION` topics take messages like `NORMAL` ones.',
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
        'means "now". **A time in the future answers 501 `NOT_IMPLEMENTED` today**: delayed delivery ' +
        'comes later, and nothing of the batch is stored.',
    },
    delayMs: {
      type: ['integer', 'null'],
      minimum: 0,
      maximum: limits.delayMaxMs,
      description:
        'Delayed delivery this many milliseconds from now; give `deliverAt` or `delayMs`, not both ' +
        '(`ILLEGAL_DELIVERY_TIME`). **Any value above 0 answers 501 `NOT_IMPLEMENTED` today.**',
    },
  },
  allOf: [
    {
      if: { required: ['bodyEncoding'], properties: { bodyEncoding: { const: 'base64' } } },
      then: { properties: { body: { maxLength: base64BodyMaxChars, pattern: base64BodyPattern } } },
      else: { properties: { body: { maxLength: limits.bodyMaxBytes } } },
    },
    {
      not: {
        required: ['deliverAt', 'delayMs'],
        properties: { deliverAt: { type: 'number' }, delayMs: { type: 'number' } },
      },
    },
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
    queueOffset: { type: 'integer', minimum: 0, description: 'Position of the message in its queue.' },
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
  SendResult: {
    type: 'object',
    required: ['results'],
    properties: {
      results: {
        type: 'array',
        description: 'One entry per message, in the order they were sent.',
        items: {
          type: 'object',
          required: ['messageId', 'queueId', 'queueOffset'],
          properties: {
            messageId: ref('MessageId'),
            queueId: { type: 'integer', minimum: 0 },
            queueOffset: { type: 'integer', minimum: 0 },
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
        description: 'Stored with the group; receive does not yet deliver in order.',
      },
      maxDeliveryAttempts: {
        type: 'integer',
        minimum: 1,
        maximum: limits.deliveryAttemptsMaxCount,
        default: limits.deliveryAttemptsDefaultCount,
        description:
          'Stored with the group; not enforced yet (retries and dead-lettering come later), so an ' +
          'unacked message is delivered again without limit.',
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
    },
  },
  AckResult: {
    type: 'object',
    required: ['acked', 'failed'],
    properties: {
      acked: { type: 'array', items: ref('ReceiptHandle'), description: 'Handles whose delivery ended.' },
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
        content: jsonContent(ref('SendRequest')),
        'x-max-bytes': sendRequestMaxBytes,
      },
      responses: {
        '200': ok('Stored.', 'SendResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            `\`messages\` is not a list of 1 to ${limits.sendBatchMaxCount} objects; a \`body\` is not a ` +
            'string or not valid base64; `bodyEncoding` is not `utf8` or `base64`; a message has an ' +
            'unknown field (`topic` included); a field has the wrong JSON type; or the message groups ' +
            'of the batch hash to queues of different broker groups.',
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
            '`deliverAt` or `delayMs` is not an integer, is negative, reaches more than 365 days ahead, or both are given.',
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
          NOT_IMPLEMENTED:
            'a message asks for delivery in the future (`deliverAt` after now, or `delayMs` above 0): ' +
            'delayed delivery is not available yet. `field` names the message (`messages[3]`).',
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
      requestBody: jsonBody('ReceiveRequest', smallRequestMaxBytes),
      responses: {
        '200': ok('The messages received; empty when none came within `waitMs`.', 'ReceiveResult'),
        ...errors({
          MALFORMED_JSON: malformed,
          INVALID_ARGUMENT:
            `\`topic\` is missing or not a string; \`max\` is not an integer from 1 to ${limits.receiveMessagesMaxCount}; ` +
            '`invisibleMs` or `waitMs` is not a number; `clientId` is not 1 to 128 printable ASCII ' +
            'characters; or a BROADCASTING group gets no `clientId`.',
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
          PAYLOAD_TOO_LARGE: tooLarge(smallRequestMaxBytes),
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
            `\`topic\` is missing or not a string, or \`receiptHandles\` is not a list of 1 to ${limits.receiveMessagesMaxCount} handles.`,
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
  '/v1/messages/{messageId}': {
    parameters: [paramRef('messageId')],
    get: {
      operationId: 'getMessage',
      tags: ['messages'],
      summary: 'Get a message by id',
      description: 'The id names the broker that stored the message; any broker fetches it from there.',
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
    { name: 'operations', description: 'Health, readiness, metrics, this document.' },
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
