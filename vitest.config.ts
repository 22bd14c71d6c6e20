import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Global setup runs in Vitest's own `__vitest__` environment, which, unlike the test workers'
  // environment, resolves packages by their `module` field: the AWS SDK's untyped-ESM build is
  // then transformed file by file, about 2 s per run. Resolve packages as Node does (`main`).
  environments: { __vitest__: { resolve: { mainFields: [] } } },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.skyrocket/**', 'cdk.out/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // DynamoDB and S3 stand-ins (LocalStack or dynalite + s3rver), started once for the whole run.
    globalSetup: ['test/support/global-setup.ts'],
    // Crash and disk tests start child processes and fsync real files; two workers match the two cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
