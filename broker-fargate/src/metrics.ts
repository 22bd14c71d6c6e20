import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The broker's Prometheus metrics, on its own registry (served at `/metrics`). */
export class BrokerMetrics {
  readonly registry = new Registry();
  readonly messagesIn = new Counter({
    name: 'skyrocket_messages_in_total',
    help: 'Messages stored, by topic.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'skyrocket_bytes_in_total',
    help: 'Body bytes stored, by topic.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: 'skyrocket_messages_out_total',
    help: 'Messages delivered to consumers, by topic.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'skyrocket_bytes_out_total',
    help: 'Body bytes delivered to consumers, by topic.',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly appendSeconds = new Histogram({
    name: 'skyrocket_append_seconds',
    help: 'Time from a batch reaching the store to it being durable.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: 'skyrocket_request_seconds',
    help: 'HTTP request latency by route and status.',
    labelNames: ['route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly consumerLag = new Gauge({
    name: 'skyrocket_consumer_lag_messages',
    help: 'Messages not yet done by a consumer group, per topic and queue owned by this broker.',
    labelNames: ['group', 'topic', 'queue'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'skyrocket_process_' });
  }
}
