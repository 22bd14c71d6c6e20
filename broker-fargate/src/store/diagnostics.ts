import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The store does not log. It publishes what happens on `skyrocket:store:<event>` channels; the
 * broker process subscribes and logs, tests subscribe and assert. Publishing to a channel with
 * no subscriber costs a property check.
 */
export type StoreEvent =
  | 'recovery'
  | 'corruption'
  | 'truncated'
  | 'truncated-batch'
  | 'segment-allocated'
  | 'segment-rolled'
  | 'segment-deleted'
  | 'append-failed'
  | 'dispatch-stalled'
  | 'checkpoint-failed'
  | 'failed';

const channels = new Map<StoreEvent, diagnosticsChannel.Channel>();

export function storeChannel(event: StoreEvent): diagnosticsChannel.Channel {
  let channel = channels.get(event);
  if (channel === undefined) {
    channel = diagnosticsChannel.channel(`skyrocket:store:${event}`);
    channels.set(event, channel);
  }
  return channel;
}

export function publish(event: StoreEvent, payload: object): void {
  const channel = storeChannel(event);
  if (channel.hasSubscribers) channel.publish(payload);
}
