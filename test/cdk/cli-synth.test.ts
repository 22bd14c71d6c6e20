/**
 * The real CDK CLI (`npx cdk synth`) on the real cdk.json and bin/cdk.ts, offline: no AWS
 * credentials, no instance metadata, no notices or telemetry, and the account and region from
 * context. What it checks that the in-process tests cannot: the app command in cdk.json, the CLI
 * version pinned in package.json reading this aws-cdk-lib's cloud assembly, and the exit codes.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, testAccount, testCertificateArn, testRegion } from './support.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function offlineEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(AWS_|CDK_)/.test(name)));
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

function cdk(args: readonly string[], timeoutMs = 150_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['cdk', ...args], { cwd: root, env: offlineEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`cdk ${args.join(' ')} took over ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const context = [
  '-c', `account=${testAccount}`,
  '-c', `region=${testRegion}`,
  '-c', `certificateArn=${testCertificateArn}`,
  '-c', 'allowedCidrs=10.0.0.0/8',
];

describe('npx cdk synth', () => {
  it('synthesizes both stacks offline and exits 0', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cli-synth-'));
    const run = await cdk(['synth', '--quiet', '--no-notices', '--no-version-reporting', '-o', out, ...context]);
    expect(run.code, run.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'Skyrocket-dev-Stateful.template.json'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'Skyrocket-dev-Service.template.json'))).toBe(true);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'validation-report.json'), 'utf8')) as { pluginReports: { pluginName: string; conclusion: string }[] };
    expect(report.pluginReports.map((p) => [p.pluginName, p.conclusion])).toEqual(
      expect.arrayContaining([['AwsSolutions', 'success']]),
    );
    // Bounded: about 5 s here (tsx start, two stacks, the image context copied into the assembly).
    expect(run.ms).toBeLessThan(120_000);
    console.log(`npx cdk synth --quiet: ${run.ms} ms`);
  }, 180_000);

  it('exits non-zero with one line naming the context key when the context is wrong', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'skyrocket-cli-synth-'));
    const run = await cdk(['synth', '--quiet', '--no-notices', '-o', out, ...context, '-c', 'brokerGroups=0']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('skyrocket: context "brokerGroups": must be an integer from 1 to 16, got "0"');
  }, 180_000);
});
