import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fault injection and scale-out run on their own (npm run test:faults / test:scale / test:pgbouncer).
    exclude: [...configDefaults.exclude, 'test/faults/**', 'test/scale/**'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Each file gets its own database cloned from a migrated template, so files can run in
    // parallel; two workers match the two cores these machines have.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
