import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The dispatcher's Prometheus metrics, on the broker's registry. */
export class DispatchMetrics {
  readonly invocations: Counter<'group' | 'topic' | 'outcome'>;
  readonly messages: Counter<'group' | 'topic' | 'result'>;
  readonly handleFailures: Counter<'group' | 'topic' | 'operation'>;
  readonly invokeSeconds: Histogram<'group' | 'topic'>;
  readonly inflight: Gauge<'group' | 'topic'>;

  constructor(registry: Registry) {
    this.invocations = new Counter({
      name: 'skyrocket_lambda_invocations_total',
      help: 'Lambda consumer invocations by outcome: ok, function-error, timeout, throttled, unavailable, aborted.',
      labelNames: ['group', 'topic', 'outcome'] as const,
      registers: [registry],
    });
    this.messages = new Counter({
      name: 'skyrocket_lambda_messages_total',
      help: 'Messages a Lambda consumer handled (acked) or failed (retried).',
      labelNames: ['group', 'topic', 'result'] as const,
      registers: [registry],
    });
    this.handleFailures = new Counter({
      name: 'skyrocket_lambda_receipt_failures_total',
      help: 'Acks, nacks and invisibility extensions refused because the delivery had expired or ended.',
      labelNames: ['group', 'topic', 'operation'] as const,
      registers: [registry],
    });
    this.invokeSeconds = new Histogram({
      name: 'skyrocket_lambda_invoke_seconds',
      help: 'Duration of Lambda consumer invocations.',
      labelNames: ['group', 'topic'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    });
    this.inflight = new Gauge({
      name: 'skyrocket_lambda_inflight_invocations',
      help: 'Lambda consumer invocations running now.',
      labelNames: ['group', 'topic'] as const,
      registers: [registry],
    });
  }
}
