/**
 * Vitest global setup: starts the AWS stand-ins once for the whole run and hands their endpoints
 * to the test workers (`inject('backends')`, or the helpers in `aws.ts`).
 */
import type { TestProject } from 'vitest/node';
import { startBackends } from './backends.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The AWS SDK warns once per process that it will drop Node 20 in 2027. Workers are forked
  // after global setup and inherit this environment, so one assignment quiets them all.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const { stop, ...endpoints } = await startBackends();
  project.provide('backends', endpoints);
  return stop;
}
