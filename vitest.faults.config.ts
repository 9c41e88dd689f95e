import { defineConfig } from 'vitest/config';

// `npm run test:faults`: deployments of our own broken on purpose under load (loopback only).
// One file at a time: each scenario owns the machine's two cores while it runs.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts', 'test/scale/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
