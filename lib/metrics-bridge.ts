/**
 * How broker metrics reach CloudWatch: a sidecar container in each broker task scrapes the
 * broker's Prometheus `/metrics` once a minute and prints CloudWatch Embedded Metric Format (EMF)
 * lines to stdout; the awslogs driver ships them, and CloudWatch Logs turns them into metrics.
 *
 * Why a sidecar of our own, and not the stock agents: `/metrics` needs admin credentials (the
 * sidecar sends the internal secret, over the task's loopback), and the append latency is a
 * Prometheus histogram. The CloudWatch agent drops Prometheus histograms, and the ADOT `awsemf`
 * exporter turns them into sum/count/min/max, from which CloudWatch cannot compute a p99. The
 * sidecar computes the p99 of each interval from the bucket deltas (as PromQL's
 * `histogram_quantile` does), so the alarm watches a real percentile. The script runs on the
 * broker image's own Node (no second image to build or pull), needs no packages, and is not
 * essential to the task: if it dies, the broker keeps serving.
 *
 * The broker's pino logs are not a source: they carry no latency or lag. When the broker emits
 * EMF itself, this sidecar can go.
 *
 * What it emits per interval, namespace `Skyrocket`:
 *
 *   metric            unit          dimensions                                   from
 *   AppendLatencyP99  Milliseconds  {Deployment}, {Deployment, BrokerGroup}      skyrocket_append_seconds (histogram)
 *   Appends           Count         {Deployment}, {Deployment, BrokerGroup}      skyrocket_append_seconds_count
 *   Requests          Count         {Deployment}, {Deployment, BrokerGroup}      skyrocket_request_seconds_count
 *   Http5xx           Count         {Deployment}, {Deployment, BrokerGroup}      ... with status 5xx
 *   ConsumerLagMax    Count         {Deployment}, {Deployment, BrokerGroup}      max over groups of skyrocket_consumer_lag_messages summed per group
 *   ConsumerLag       Count         {Deployment, ConsumerGroup}                  skyrocket_consumer_lag_messages summed per group (this broker's queues)
 *
 * Counters and the histogram are reported as deltas since the previous scrape, so the first
 * scrape after a start reports only the lag. At most `consumerGroupLinesMax` groups are reported
 * per broker and interval (the largest lags first), which bounds the custom-metric bill.
 */

/** The CloudWatch names the sidecar writes and the dashboard and alarms read. */
export const brokerMetrics = {
  namespace: 'Skyrocket',
  appendLatencyP99: 'AppendLatencyP99',
  appends: 'Appends',
  requests: 'Requests',
  http5xx: 'Http5xx',
  consumerLagMax: 'ConsumerLagMax',
  consumerLag: 'ConsumerLag',
  dimensions: { deployment: 'Deployment', brokerGroup: 'BrokerGroup', consumerGroup: 'ConsumerGroup' },
  consumerGroupLinesMax: 100,
} as const;

/** The environment variables the sidecar reads. */
export const metricsBridgeVariables = {
  url: 'SKYROCKET_METRICS_URL',
  intervalMs: 'SKYROCKET_METRICS_INTERVAL_MS',
  deployment: 'SKYROCKET_DEPLOYMENT',
  brokerGroup: 'SKYROCKET_BROKER_GROUP',
  brokerId: 'SKYROCKET_BROKER_ID',
  internalSecret: 'SKYROCKET_INTERNAL_SECRET',
} as const;

/**
 * The sidecar, as a script for `node -e`. Plain JavaScript with no imports (it runs as CommonJS
 * or ESM alike), and nothing interpolated but the constants above. Tested by running it against a
 * server that serves the broker's own prom-client registry (test/cdk/metrics-bridge.test.ts).
 */
export const metricsBridgeScript: string = String.raw`'use strict';
const m = ${JSON.stringify(brokerMetrics)};
const v = ${JSON.stringify(metricsBridgeVariables)};
const env = process.env;
const url = env[v.url] || 'http://127.0.0.1:8080/metrics';
const intervalMs = Number(env[v.intervalMs] || 60000);
const deployment = env[v.deployment] || 'unknown';
const brokerGroup = env[v.brokerGroup] || 'unknown';
const brokerId = env[v.brokerId] || 'unknown';
const secret = env[v.internalSecret] || '';
const D = m.dimensions;

function parse(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while (match[2] && (l = re.exec(match[2])) !== null) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

// Counter values of the previous scrape, by series. A series first seen after the first scrape
// counts whole; a value below the previous one means the broker restarted.
let scraped = false;
let previous = new Map();
let next = new Map();
function delta(key, value) {
  next.set(key, value);
  if (!scraped) return undefined;
  const before = previous.get(key);
  if (before === undefined) return value;
  return value >= before ? value - before : value;
}

// histogram_quantile over one interval: buckets are cumulative, sorted by upper bound.
function quantile(q, buckets) {
  const total = buckets.length > 0 ? buckets[buckets.length - 1].count : 0;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      const width = b.count - lowerCount;
      return lowerBound + (b.le - lowerBound) * (width > 0 ? (rank - lowerCount) / width : 1);
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

function emf(dimensions, metrics, values) {
  const line = { _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: m.namespace, Dimensions: dimensions, Metrics: metrics }] } };
  process.stdout.write(JSON.stringify(Object.assign(line, values)) + '\n');
}

function report(samples) {
  next = new Map();
  const buckets = [];
  let appends = 0;
  let requests = 0;
  let errors = 0;
  const lagByGroup = new Map();
  for (const s of samples) {
    if (s.name === 'skyrocket_append_seconds_bucket') {
      const d = delta('append_bucket ' + s.labels.le, s.value);
      if (d !== undefined) buckets.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: d });
    } else if (s.name === 'skyrocket_append_seconds_count') {
      appends += delta('append_count', s.value) || 0;
    } else if (s.name === 'skyrocket_request_seconds_count') {
      const d = delta('request_count ' + s.labels.route + ' ' + s.labels.status, s.value) || 0;
      requests += d;
      if (/^5/.test(s.labels.status || '')) errors += d;
    } else if (s.name === 'skyrocket_consumer_lag_messages' && s.labels.group !== undefined) {
      lagByGroup.set(s.labels.group, (lagByGroup.get(s.labels.group) || 0) + s.value);
    }
  }
  const firstScrape = !scraped;
  scraped = true;
  previous = next;
  buckets.sort((a, b) => a.le - b.le);

  const metrics = [{ Name: m.consumerLagMax, Unit: 'Count' }];
  const lags = [...lagByGroup.entries()].sort((a, b) => b[1] - a[1]);
  const values = {
    [D.deployment]: deployment,
    [D.brokerGroup]: brokerGroup,
    BrokerId: brokerId,
    [m.consumerLagMax]: lags.length > 0 ? lags[0][1] : 0,
  };
  if (!firstScrape) {
    const p99 = quantile(0.99, buckets);
    if (p99 !== undefined) {
      metrics.push({ Name: m.appendLatencyP99, Unit: 'Milliseconds' });
      values[m.appendLatencyP99] = Math.round(p99 * 1e6) / 1e3;
    }
    metrics.push({ Name: m.appends, Unit: 'Count' }, { Name: m.requests, Unit: 'Count' }, { Name: m.http5xx, Unit: 'Count' });
    values[m.appends] = appends;
    values[m.requests] = requests;
    values[m.http5xx] = errors;
  }
  emf([[D.deployment], [D.deployment, D.brokerGroup]], metrics, values);
  for (const [group, lag] of lags.slice(0, m.consumerGroupLinesMax)) {
    emf([[D.deployment, D.consumerGroup]], [{ Name: m.consumerLag, Unit: 'Count' }], {
      [D.deployment]: deployment,
      [D.consumerGroup]: group,
      [m.consumerLag]: lag,
    });
  }
}

let busy = false;
async function tick() {
  if (busy) return;
  busy = true;
  try {
    const response = await fetch(url, {
      headers: { 'x-skyrocket-internal': secret },
      signal: AbortSignal.timeout(Math.min(10000, intervalMs)),
    });
    if (!response.ok) throw new Error('HTTP ' + response.status + ' from ' + url);
    report(parse(await response.text()));
  } catch (error) {
    process.stderr.write(JSON.stringify({ level: 'warn', msg: 'metrics scrape failed', err: String((error && error.message) || error) }) + '\n');
  } finally {
    busy = false;
  }
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
setInterval(tick, intervalMs);
void tick();
`;
