import { describe, expect, it } from 'vitest';
import { ContextError, ipv4CidrProblem, parseDeploymentContext, type ContextKey } from '../../lib/context.ts';
import { brokerSlots, deploymentNames, segmentExpirationDays, segmentsBucketName } from '../../lib/deployment.ts';
import { tableDefinitions } from '../../namesrv/tables.ts';
import { baseContext, define, testCertificateArn } from './support.ts';

function parse(context: Record<string, unknown>, cli = {}) {
  return parseDeploymentContext((key: ContextKey) => context[key], cli);
}

/** The ContextError a context produces; fails the test when there is none. */
function contextError(context: Record<string, unknown>, cli = {}): ContextError {
  try {
    parse(context, cli);
  } catch (error) {
    expect(error).toBeInstanceOf(ContextError);
    return error as ContextError;
  }
  throw new Error(`no ContextError for ${JSON.stringify(context)}`);
}

describe('deployment context', () => {
  it('fills every default from the smallest valid context', () => {
    const config = parse(baseContext);
    expect(config).toEqual({
      env: 'dev',
      account: '123456789012',
      region: 'us-east-1',
      availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'],
      brokerGroups: 2,
      replicas: 2,
      cpu: 1024,
      memoryMiB: 2048,
      ephemeralStorageGiB: 100,
      retentionHours: 72,
      logRetentionDays: 30,
      listener: { protocol: 'TLS', port: 443, certificateArn: testCertificateArn },
      allowedCidrs: ['10.0.0.0/8', '203.0.113.0/24'],
      internal: false,
      alarmEmail: undefined,
    });
  });

  it('reads command-line strings and cdk.json values alike', () => {
    const fromCli = parse({ ...baseContext, brokerGroups: '6', replicas: '3', cpu: '4096', memoryMiB: '8192', internal: 'true', allowedCidrs: '0.0.0.0/0' });
    const fromJson = parse({ ...baseContext, brokerGroups: 6, replicas: 3, cpu: 4096, memoryMiB: 8192, internal: true, allowedCidrs: ['0.0.0.0/0'] });
    expect(fromCli).toEqual(fromJson);
    expect(fromCli.allowedCidrs).toEqual(['0.0.0.0/0']);
  });

  it('takes account and region from the CLI environment when context has none', () => {
    const { account: _a, region: _r, ...rest } = baseContext;
    const config = parse(rest, { account: '123456789012', region: 'us-east-1' });
    expect(config.account).toBe('123456789012');
    expect(config.region).toBe('us-east-1');
    expect(parse({ ...rest, region: 'us-east-1' }).account).toBeUndefined();
    expect(parse({ ...rest, account: '123456789012' }, { account: '999999999999', region: 'us-east-1' }).account).toBe('123456789012');
  });

  it('defaults the memory to the smallest Fargate allows for a larger cpu', () => {
    expect(parse({ ...baseContext, cpu: 4096 }).memoryMiB).toBe(8192);
  });

  it('allows a plaintext listener only when asked for, and prefers the certificate', () => {
    const { certificateArn: _c, ...noCertificate } = baseContext;
    expect(parse({ ...noCertificate, allowPlaintext: 'true' }).listener).toEqual({ protocol: 'TCP', port: 80 });
    expect(parse({ ...baseContext, allowPlaintext: true }).listener.protocol).toBe('TLS');
  });

  it.each<[string, Record<string, unknown>, ContextKey, RegExp]>([
    ['zero broker groups', { brokerGroups: 0 }, 'brokerGroups', /integer from 1 to 16, got 0/],
    ['too many broker groups', { brokerGroups: '17' }, 'brokerGroups', /from 1 to 16/],
    ['a fractional group count', { brokerGroups: '2.5' }, 'brokerGroups', /integer/],
    ['more replicas than zones', { replicas: 4 }, 'replicas', /from 1 to 3/],
    ['zero replicas', { replicas: 0 }, 'replicas', /from 1 to 3/],
    ['storage below Fargate\'s extra minimum', { ephemeralStorageGiB: 20 }, 'ephemeralStorageGiB', /from 21 to 200, got 20/],
    ['storage above Fargate\'s maximum', { ephemeralStorageGiB: '201' }, 'ephemeralStorageGiB', /from 21 to 200/],
    ['a cpu size Fargate lacks', { cpu: 1000 }, 'cpu', /Fargate's sizes/],
    ['memory that does not fit the cpu', { cpu: 1024, memoryMiB: 1024 }, 'memoryMiB', /2048 to 8192 in steps of 1024/],
    ['retention of zero hours', { retentionHours: 0 }, 'retentionHours', /from 1 to 87600/],
    ['a log retention CloudWatch lacks', { logRetentionDays: 31 }, 'logRetentionDays', /CloudWatch's periods/],
    ['an environment name with capitals', { env: 'Prod' }, 'env', /lowercase/],
    ['a boolean that is not one', { internal: 'yes' }, 'internal', /true or false/],
    ['a malformed certificate ARN', { certificateArn: 'arn:aws:acm:us-east-1:123:cert' }, 'certificateArn', /not an ACM certificate ARN/],
    [
      'a certificate of another region',
      { certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' },
      'certificateArn',
      /in eu-west-1.*own region us-east-1/,
    ],
    [
      'a certificate of another account',
      { certificateArn: 'arn:aws:acm:us-east-1:999999999999:certificate/abc' },
      'certificateArn',
      /account 999999999999/,
    ],
    ['no certificate and no plaintext opt-in', { certificateArn: undefined }, 'certificateArn', /is required.*allowPlaintext=true/],
    ['no allowed CIDRs', { allowedCidrs: undefined }, 'allowedCidrs', /is required.*0\.0\.0\.0\/0/],
    ['an empty CIDR list', { allowedCidrs: ' , ' }, 'allowedCidrs', /is required/],
    ['a CIDR that is not one', { allowedCidrs: '10.0.0.0' }, 'allowedCidrs', /"10\.0\.0\.0" is not an IPv4 CIDR/],
    ['a CIDR with host bits', { allowedCidrs: '10.0.0.0/8,192.168.1.7/24' }, 'allowedCidrs', /did you mean 192\.168\.1\.0\/24/],
    ['an octet above 255', { allowedCidrs: '10.0.0.256/32' }, 'allowedCidrs', /octet above 255/],
    ['a CIDR listed twice', { allowedCidrs: '10.0.0.0/8,10.0.0.0/8' }, 'allowedCidrs', /twice/],
    ['a zone of another region', { availabilityZones: 'us-east-1a,us-west-2b' }, 'availabilityZones', /not an availability zone of us-east-1/],
    ['a single zone', { availabilityZones: 'us-east-1a' }, 'availabilityZones', /2 to 6 distinct zones/],
    ['no region at all', { region: undefined }, 'region', /no region/],
    ['a malformed account', { account: '1234' }, 'account', /12-digit/],
    ['a malformed alarm email', { alarmEmail: 'ops' }, 'alarmEmail', /email/],
  ])('refuses %s, naming the context key', (_what, override, key, message) => {
    const error = contextError({ ...baseContext, ...override });
    expect(error.key).toBe(key);
    expect(error.message).toMatch(new RegExp(`^context "${key}": `));
    expect(error.message).toMatch(message);
  });

  it('stops the app definition (and so `cdk synth`) with the same error', () => {
    expect(() => define({ ...baseContext, brokerGroups: 0 })).toThrow(/^context "brokerGroups": must be an integer from 1 to 16, got 0/);
    expect(() => define({ ...baseContext, allowedCidrs: '300.1.1.1/8' })).toThrow(/^context "allowedCidrs"/);
    expect(() => define({ ...baseContext, ephemeralStorageGiB: 500 })).toThrow(/^context "ephemeralStorageGiB"/);
    expect(() => define({ ...baseContext, certificateArn: '' })).toThrow(/^context "certificateArn": is required/);
  });
});

describe('CIDR checks', () => {
  it.each(['0.0.0.0/0', '10.0.0.0/8', '203.0.113.7/32', '172.16.0.0/12', '192.168.128.0/17'])('accepts %s', (cidr) => {
    expect(ipv4CidrProblem(cidr)).toBeUndefined();
  });
  it.each(['10.0.0.0/33', '1.2.3/24', '::/0', '10.0.0.1/31', ' 10.0.0.0/8'])('refuses %s', (cidr) => {
    expect(ipv4CidrProblem(cidr)).toBeTypeOf('string');
  });
});

describe('deployment names and slots', () => {
  it('derives every table name from namesrv tableDefinitions', () => {
    const names = deploymentNames('prod');
    expect(Object.keys(names.tables).sort()).toEqual(Object.keys(tableDefinitions).sort());
    for (const [kind, definition] of Object.entries(tableDefinitions)) {
      expect(names.tables[kind as keyof typeof tableDefinitions]).toBe(`skyrocket-prod-${definition.suffix}`);
    }
    expect(names.tablePrefix).toBe('skyrocket-prod-');
  });

  it('keeps the longest bucket name within S3\'s 63 characters', () => {
    const longest = segmentsBucketName(deploymentNames('a'.repeat(16)).cluster, '123456789012', 'ap-southeast-2');
    expect(longest.length).toBeLessThanOrEqual(63);
  });

  it('gives every slot a stable id and puts the replicas of a group in distinct zones', () => {
    const zones = ['z-a', 'z-b', 'z-c'];
    const slots = brokerSlots(6, 3, zones);
    expect(slots).toHaveLength(18);
    expect(new Set(slots.map((s) => s.brokerId)).size).toBe(18);
    expect(new Set(slots.map((s) => s.name)).size).toBe(18);
    for (let group = 1; group <= 6; group++) {
      const mine = slots.filter((s) => s.group === group);
      expect(new Set(mine.map((s) => s.availabilityZone)).size).toBe(3);
      expect(mine.map((s) => s.brokerId)).toEqual([group * 1000 + 1, group * 1000 + 2, group * 1000 + 3]);
    }
    // Growing the cluster renumbers nothing that exists.
    const grown = brokerSlots(7, 3, zones);
    expect(grown.slice(0, 18)).toEqual(slots);
    expect(() => brokerSlots(1, 4, zones)).toThrow(RangeError);
  });

  it('runs the S3 backstop a whole day behind the retention', () => {
    expect(segmentExpirationDays(72)).toBe(4);
    expect(segmentExpirationDays(1)).toBe(2);
    expect(segmentExpirationDays(25)).toBe(3);
  });
});
