import { describe, expect, it } from 'vitest';
import { makeBody, paddingFor, readBody } from './body.ts';
import { ResourceMeter, processTree } from './proc.ts';
import { checkTargets, type Summary } from './report.ts';
import { Samples, spread, summarizeLatencies } from './stats.ts';

describe('summarizeLatencies', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
    expect(summarizeLatencies(values)).toEqual({ count: 100, p50Ms: 50, p99Ms: 99, maxMs: 100, meanMs: 50.5 });
  });

  it('gives NaN for no samples', () => {
    expect(summarizeLatencies(new Float64Array(0)).p99Ms).toBeNaN();
  });
});

describe('spread', () => {
  it('gives the median, min and max and keeps the run order', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, values: [3, 1, 2] });
    expect(spread([4, 1, 2, 3])?.median).toBe(2.5);
  });

  it('leaves out repetitions that measured nothing', () => {
    expect(spread([NaN, 5])?.median).toBe(5);
    expect(spread([NaN])).toBeNull();
  });
});

describe('Samples', () => {
  it('grows past its first capacity', () => {
    const s = new Samples();
    for (let i = 0; i < 5000; i++) s.push(i);
    expect(s.length).toBe(5000);
    expect(s.toArray()[4999]).toBe(4999);
  });
});

describe('message body', () => {
  it('is exactly the asked size and reads back its sequence number and send time', () => {
    const before = process.hrtime.bigint();
    const body = makeBody(42, paddingFor(1024));
    expect(Buffer.byteLength(body)).toBe(1024);
    const { sentNs, seq } = readBody(Buffer.from(body));
    expect(seq).toBe(42);
    expect(sentNs >= before && sentNs <= process.hrtime.bigint()).toBe(true);
  });

  it('refuses a size too small for its header', () => {
    expect(() => paddingFor(16)).toThrow(/at least 30 bytes/);
  });
});

describe('checkTargets', () => {
  const s = (median: number) => ({ median, min: median, max: median, values: [median] });
  const summary: Summary = {
    skyrocket: { windowedMsgsPerSec: s(90_000), serialP99Ms: s(2), e2eP99Ms: s(5), catchUpMsgsPerSec: s(50_000), peakRssMiB: s(200) },
    redis: { windowedMsgsPerSec: s(30_000), serialP99Ms: s(1), e2eP99Ms: s(8), catchUpMsgsPerSec: s(100_000), peakRssMiB: s(1200) },
    rabbitmq: { windowedMsgsPerSec: s(40_000), serialP99Ms: s(3), e2eP99Ms: s(6), catchUpMsgsPerSec: s(60_000), peakRssMiB: s(400) },
    // Faster than everyone, but it does not fsync: never the reference.
    nats: { windowedMsgsPerSec: s(500_000), serialP99Ms: s(0.1), e2eP99Ms: s(0.5), catchUpMsgsPerSec: s(900_000), peakRssMiB: s(50) },
  };

  it('compares with the best fsyncing peer and says by how much', () => {
    const [windowed, serial, e2e, catchUp, rss] = checkTargets(summary);
    expect(windowed).toMatchObject({ bestPeer: { system: 'rabbitmq', value: 40_000 }, ratio: 2.25, met: true });
    expect(serial).toMatchObject({ bestPeer: { system: 'redis', value: 1 }, ratio: 2, met: false });
    expect(e2e).toMatchObject({ bestPeer: { system: 'rabbitmq', value: 6 }, met: true });
    expect(catchUp).toMatchObject({ bestPeer: { system: 'redis' }, ratio: 0.5, met: false });
    expect(rss).toMatchObject({ bestPeer: { system: 'rabbitmq', value: 400 }, ratio: 0.5, met: true });
  });

  it('says "not measured" rather than guessing when a figure is missing', () => {
    const [windowed] = checkTargets({ redis: summary.redis });
    expect(windowed).toMatchObject({ skyrocket: null, met: null });
  });
});

describe('ResourceMeter', () => {
  it('reads CPU time and peak memory of a process tree from /proc', () => {
    expect(processTree([process.pid]).map((p) => p.pid)).toContain(process.pid);
    const meter = new ResourceMeter([process.pid]);
    const before = meter.cpuSeconds();
    const until = performance.now() + 150;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    expect(meter.cpuSeconds()).toBeGreaterThan(before);
    const peak = meter.peakMemory();
    expect(peak.pssMiB).toBeGreaterThan(10);
    expect(peak.largestProcessMiB).toBeGreaterThanOrEqual(peak.pssMiB * 0.5);
    expect(peak.processes.some((p) => p.pid === process.pid)).toBe(true);
  });
});
