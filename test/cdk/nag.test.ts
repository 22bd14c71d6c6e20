import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { synthesize, testAccount, testRegion, validationReport, type SynthesizedApp, type ValidationReport } from './support.ts';

/** What the deployment acknowledges, and on which construct: a new acknowledgement must be added here on purpose. */
const expectedAcknowledgements = [
  ['AwsSolutions::AwsSolutions-ECS2', 'Skyrocket-dev-Service/bg1-r1Task/Resource'],
  ['AwsSolutions::AwsSolutions-ECS2', 'Skyrocket-dev-Service/bg1-r2Task/Resource'],
  ['AwsSolutions::AwsSolutions-ECS2', 'Skyrocket-dev-Service/bg2-r1Task/Resource'],
  ['AwsSolutions::AwsSolutions-ECS2', 'Skyrocket-dev-Service/bg2-r2Task/Resource'],
  ['AwsSolutions::AwsSolutions-IAM5[Resource::*]', 'Skyrocket-dev-Service/BrokerExecutionRole/DefaultPolicy/Resource'],
  [
    `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::skyrocket-dev-segments-${testAccount}-${testRegion}/skyrocket-dev/*]`,
    'Skyrocket-dev-Service/BrokerObjectsPolicy/Resource',
  ],
  [
    `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::skyrocket-dev-segments-${testAccount}-${testRegion}/skyrocket-dev-timers/*]`,
    'Skyrocket-dev-Service/BrokerObjectsPolicy/Resource',
  ],
  [
    `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:ssm:${testRegion}:${testAccount}:parameter/skyrocket/dev/lambda-consumers/*]`,
    'Skyrocket-dev-Service/LambdaConsumerSubscriptionsPolicy/Resource',
  ],
  ['AwsSolutions::AwsSolutions-SMG4', 'Skyrocket-dev-Stateful/InternalSecret/Resource'],
  // The sweep functions: Lambda's network interfaces, timer bodies by prefix, checker functions by name prefix.
  ['AwsSolutions::AwsSolutions-IAM5[Resource::*]', 'Skyrocket-dev-Service/Sweeps/DelaySweep/NetworkInterfacesPolicy/Resource'],
  ['AwsSolutions::AwsSolutions-IAM5[Resource::*]', 'Skyrocket-dev-Service/Sweeps/TxnCheck/NetworkInterfacesPolicy/Resource'],
  [
    `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:s3:::skyrocket-dev-segments-${testAccount}-${testRegion}/skyrocket-dev-timers/*]`,
    'Skyrocket-dev-Service/Sweeps/DelaySweep/PrefixPolicy/Resource',
  ],
  [
    `AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:lambda:${testRegion}:${testAccount}:function:skyrocket-dev-checker-*]`,
    'Skyrocket-dev-Service/Sweeps/TxnCheck/PrefixPolicy/Resource',
  ],
] as const;

function plugin(report: ValidationReport, name: string): ValidationReport['pluginReports'][number] {
  const found = report.pluginReports.find((p) => p.pluginName === name);
  if (found === undefined) throw new Error(`no ${name} report in ${report.pluginReports.map((p) => p.pluginName).join(', ')}`);
  return found;
}

describe('cdk-nag AwsSolutions', () => {
  let s: SynthesizedApp;
  let report: ValidationReport;
  beforeAll(() => {
    s = synthesize();
    report = validationReport(s.assembly);
  });

  it('runs on every synth and leaves no finding unacknowledged', () => {
    const nag = plugin(report, 'AwsSolutions');
    expect(nag.violations).toEqual([]);
    expect(nag.conclusion).toBe('success');
    const cfn = plugin(report, 'CloudFormation Validate');
    expect(cfn.violations).toEqual([]);
  });

  it('acknowledges exactly the expected findings, each on its own resource and with its reason', () => {
    const nag = plugin(report, 'AwsSolutions');
    const acknowledged = (nag.suppressedViolations ?? []).flatMap((v) => {
      expect(v.reason.length).toBeGreaterThan(40);
      return v.violatingConstructs.map((c) => [v.acknowledgedId, c.constructPath] as const);
    });
    expect([...acknowledged].sort()).toEqual([...expectedAcknowledgements].sort());
  });

  it('leaves no error and no warning annotation in the default deployment', () => {
    for (const stack of [s.stateful, s.service]) {
      expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
      expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    }
  });

  it.each([
    ['an open endpoint', { allowedCidrs: '0.0.0.0/0' }],
    ['a plaintext, internal development deployment', { certificateArn: undefined, allowPlaintext: true, internal: true }],
    ['the largest deployment', { brokerGroups: 16, replicas: 3, cpu: 16384, memoryMiB: 122880, ephemeralStorageGiB: 200 }],
    ['a deployment without a known account', { account: undefined }],
  ])('passes for %s too', (_what, context) => {
    const nag = plugin(validationReport(synthesize(context).assembly), 'AwsSolutions');
    expect(nag.violations).toEqual([]);
  });

  it('acknowledges an open endpoint only when it is asked for', () => {
    const nag = plugin(validationReport(synthesize({ allowedCidrs: '0.0.0.0/0' }).assembly), 'AwsSolutions');
    expect(nag.suppressedViolations!.map((v) => v.acknowledgedId)).toContain('AwsSolutions::AwsSolutions-EC23');
    const closed = plugin(report, 'AwsSolutions');
    expect(closed.suppressedViolations!.map((v) => v.acknowledgedId)).not.toContain('AwsSolutions::AwsSolutions-EC23');
  });

  it('fails the synth on a finding nobody acknowledged', () => {
    expect(() =>
      synthesize({}, { extend: ({ stateful }) => void new s3.Bucket(stateful, 'CarelessBucket') }),
    ).toThrow(/AwsSolutions-S10/);
  });
});
