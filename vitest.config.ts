import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.skyrocket/**', 'cdk.out/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash and disk tests start child processes and fsync real files; two workers match the two cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
