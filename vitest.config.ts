import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addon + real child processes: separate processes, not worker threads.
    pool: 'forks',
    // Two cores: integration suites spawn many processes each.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 15 * 60_000,
    reporters: ['default'],
  },
});
