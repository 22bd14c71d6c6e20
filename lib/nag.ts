/**
 * cdk-nag acknowledgements. cdk-nag 3 is a CDK policy-validation plugin: every finding that is not
 * acknowledged fails the synth, and every acknowledgement is written, with its reason, into the
 * cloud assembly's validation-report.json. An acknowledgement sits on the narrowest construct it
 * can: the one resource (or one policy) the finding is about.
 */
import * as cdk from 'aws-cdk-lib';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** The rule pack's name: CDK matches acknowledgements as `<plugin>::<rule>`. */
export const nagPack = 'AwsSolutions';

/** Acknowledges cdk-nag rule `rule` (like `AwsSolutions-ECS2`, or `AwsSolutions-IAM5[Resource::*]`) on `scope`. */
export function acknowledgeNag(scope: IConstruct, rule: string, reason: string): void {
  if (!rule.startsWith(`${nagPack}-`)) throw new Error(`acknowledgeNag: ${rule} is not an ${nagPack} rule id`);
  if (reason.trim().length < 20) throw new Error(`acknowledgeNag: ${rule} needs a reason that says why, got ${JSON.stringify(reason)}`);
  cdk.Validations.of(scope).acknowledge({ id: `${nagPack}::${rule}`, reason });
}

/**
 * cdk-nag's id for the IAM5 finding on one wildcard resource of a policy in `scope`'s stack,
 * computed the way cdk-nag computes it, so that an acknowledgement covers that resource and
 * nothing else.
 */
export function wildcardFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnReference(cdk.Stack.of(scope).resolve(resource))}]`;
}
