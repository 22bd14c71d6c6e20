import { channel, type Channel } from 'node:diagnostics_channel';

/**
 * The SDK does not log. It publishes what happens on these `diagnostics_channel` channels; an
 * application subscribes and logs or counts, tests subscribe and assert. Publishing to a channel
 * with no subscriber costs a property check.
 *
 * - `skyrocket:client:request`: every HTTP request, when it ends:
 *   `{ method, path, status?, durationMs, error? }` (`status` is absent when no answer came).
 * - `skyrocket:client:retry`: a retriable failure about to be retried:
 *   `{ operation, attempt, delayMs, error }`.
 * - `skyrocket:client:consumer-error`: something a push consumer could not hand to a caller:
 *   `{ group, topic, stage: 'receive' | 'handler' | 'ack' | 'change-invisibility', error, messageId? }`.
 */
export const clientChannels = {
  request: channel('skyrocket:client:request'),
  retry: channel('skyrocket:client:retry'),
  consumerError: channel('skyrocket:client:consumer-error'),
} as const satisfies Record<string, Channel>;

export interface RequestEvent {
  method: string;
  path: string;
  status?: number;
  durationMs: number;
  error?: unknown;
}

export interface RetryEvent {
  operation: string;
  attempt: number;
  delayMs: number;
  error: unknown;
}

export interface ConsumerErrorEvent {
  group: string;
  topic: string;
  stage: 'receive' | 'handler' | 'ack' | 'change-invisibility';
  error: unknown;
  messageId?: string;
}

export function publish(target: Channel, event: RequestEvent | RetryEvent | ConsumerErrorEvent): void {
  if (target.hasSubscribers) target.publish(event);
}
