/**
 * Synthesizing the Skyrocket app in tests, as `cdk synth` does: the feature flags of cdk.json,
 * the context under test, cdk-nag and CloudFormation validation on every synth (a finding that is
 * not acknowledged makes `synth` throw), into a temporary cloud assembly. Only one thing differs:
 * the sweep functions are not bundled unless a test asks (`bundle: true`), since esbuild adds
 * about two seconds to every synth and the template is the same either way but for the asset hash.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cxapi from 'aws-cdk-lib/cx-api';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import type { IConstruct } from 'constructs';
import { defineSkyrocket, type SkyrocketAppOptions, type SkyrocketStacks } from '../../lib/app.ts';

export const root = path.resolve(import.meta.dirname, '../..');

/** The context block of cdk.json: the feature flags the CLI passes to the app. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(root, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

export const testAccount = '123456789012';
export const testRegion = 'us-east-1';
export const testCertificateArn = `arn:aws:acm:${testRegion}:${testAccount}:certificate/11111111-2222-3333-4444-555555555555`;

/** The smallest valid context: what an operator must pass. */
export const baseContext: Readonly<Record<string, unknown>> = {
  account: testAccount,
  region: testRegion,
  certificateArn: testCertificateArn,
  allowedCidrs: '10.0.0.0/8,203.0.113.0/24',
};

export interface SynthesizedApp extends SkyrocketStacks {
  readonly app: cdk.App;
  readonly assembly: CloudAssembly;
  readonly stateful: SkyrocketStacks['stateful'];
  readonly service: SkyrocketStacks['service'];
  readonly statefulTemplate: Template;
  readonly serviceTemplate: Template;
}

/** A new app with `context` on top of `baseContext`; `extend` may add constructs before the synth. */
export function synthesize(
  context: Record<string, unknown> = {},
  options: {
    /** Builds the app options; may add stacks of its own to the app first. */
    before?: (app: cdk.App) => SkyrocketAppOptions;
    /** Adds constructs once the stacks exist. */
    extend?: (stacks: SkyrocketStacks, app: cdk.App) => void;
    /** Bundles the Lambda functions with esbuild, as `cdk synth` does. @default false */
    bundle?: boolean;
  } = {},
): SynthesizedApp {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cdk-'));
  const bundling = options.bundle === true ? {} : { [cxapi.BUNDLING_STACKS]: [] };
  const app = new cdk.App({ outdir, context: { ...cdkJsonContext(), ...baseContext, ...bundling, ...context } });
  const stacks = defineSkyrocket(app, options.before?.(app) ?? {});
  options.extend?.(stacks, app);
  const assembly = app.synth();
  return {
    ...stacks,
    app,
    assembly,
    statefulTemplate: Template.fromStack(stacks.stateful),
    serviceTemplate: Template.fromStack(stacks.service),
  };
}

/** An app that only defines (does not synthesize); for context errors. */
export function define(context: Record<string, unknown>): SkyrocketStacks {
  const app = new cdk.App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cdk-')), context: { ...cdkJsonContext(), ...context } });
  return defineSkyrocket(app);
}

/** `{ "Fn::GetAtt": [<logical id of construct>, attribute] }`, without writing the hashed id down. */
export function getAtt(construct: IConstruct, attribute: string): { 'Fn::GetAtt': [string, string] } {
  return { 'Fn::GetAtt': [logicalId(construct), attribute] };
}

export function ref(construct: IConstruct): { Ref: string } {
  return { Ref: logicalId(construct) };
}

export function logicalId(construct: IConstruct): string {
  const resource = (construct.node.defaultChild ?? construct) as cdk.CfnElement;
  return cdk.Stack.of(construct).getLogicalId(resource);
}

export interface ValidationReport {
  pluginReports: {
    pluginName: string;
    conclusion: 'success' | 'failure';
    violations: { ruleName: string; description: string; severity?: string }[];
    suppressedViolations?: {
      ruleName: string;
      acknowledgedId: string;
      reason: string;
      violatingConstructs: { constructPath: string }[];
    }[];
  }[];
}

/** The policy-validation report CDK writes into the cloud assembly (cdk-nag is one plugin of it). */
export function validationReport(assembly: CloudAssembly): ValidationReport {
  return JSON.parse(fs.readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')) as ValidationReport;
}
