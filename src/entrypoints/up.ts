import { loadConfig } from '../config/index.js';
import { createLogger } from '../logging.js';
import { seedDemo } from '../services/seed.js';
import { Shutdown } from './shutdown.js';
import { startApiRole } from './api.js';
import { openRoot } from './root.js';

/**
 * `npm start` = `accunode up` (prepare: migrate, roles, seed; then the api, the worker and the
 * scheduler on one root, the same three roles `accunode api|worker|scheduler` run apart), or
 * `accunode api` (the api role only; the database is expected to be migrated by a deploy step or
 * by `up`).
 */
export async function runUp(opts: { prepare: boolean } = { prepare: true }): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const shutdown = new Shutdown(log);
  shutdown.install();
  try {
    const root = await openRoot(config, log, shutdown, {
      name: 'accunode-api',
      prepare: opts.prepare,
      beforeRedis: async (db, engine) => {
        if (!opts.prepare || !config.SEED_DEMO) return;
        const seed = await seedDemo(db.adminSql, config.dataDir, { engine });
        if (seed.seeded) {
          // Printed once, on purpose, to the terminal (not the log stream).
          process.stdout.write(
            `\nDemo tenant created. Sign in as ${seed.email} (username "admin") with password:\n\n    ${seed.password}\n\n` +
              `(also written to ${seed.passwordFile}, mode 0600)\n\n`,
          );
        }
      },
    });
    const { url } = await startApiRole(root, { allInOne: opts.prepare });
    // All-in-one (`up`, not `api`): the worker and the scheduler roles run in this process too.
    if (opts.prepare) {
      await (await import('./worker.js')).startWorkerRole(root);
      await (await import('./scheduler.js')).startSchedulerRole(root);
    }
    process.stdout.write(`AccuNode is running at ${url}  (health: ${url}/health/ready, API: ${url}/api/v1)\n`);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}
