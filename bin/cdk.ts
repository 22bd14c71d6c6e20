/**
 * The CDK app (cdk.json "app"): `npx cdk deploy -c certificateArn=... -c allowedCidrs=...`.
 * Context keys and defaults: lib/context.ts and lib/README-deploy.md.
 */
import * as cdk from 'aws-cdk-lib';
import { defineSkyrocket } from '../lib/app.ts';
import { ContextError } from '../lib/context.ts';

const app = new cdk.App();
try {
  defineSkyrocket(app, { cli: { account: process.env['CDK_DEFAULT_ACCOUNT'], region: process.env['CDK_DEFAULT_REGION'] } });
} catch (error) {
  if (!(error instanceof ContextError)) throw error;
  // A bad context value is the operator's typo, not a bug: one line, no stack trace.
  process.stderr.write(`skyrocket: ${error.message}\n`);
  process.exit(1);
}
app.synth();
