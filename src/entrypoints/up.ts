import { loadConfig } from '../config/index.js';
import { createLogger } from '../logging.js';
import { seedDemo } from '../services/seed.js';
import { loadModels } from '../services/model-store.js';
import { createAppPool, createRedis, prepareDatabase, prepareRedis } from './context.js';
import { Shutdown } from './shutdown.js';
import { startApi } from './api.js';
import { AppPools, drKeyFromDatabase, endpoint, PRIMARY_CHANNEL } from '../db/app-pools.js';
import { generatedSecretFile, resolveGeneratedSecret } from '../config/generated-secret.js';

/**
 * `npm start` (prepare = migrate, roles, seed) or `accunode api` (serve only: the database is
 * expected to be migrated by a deploy step or by `up`).
 */
export async function runUp(opts: { prepare: boolean } = { prepare: true }): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const shutdown = new Shutdown(log);
  shutdown.install();
  try {
    const db = await prepareDatabase(config, log, shutdown, { migrate: opts.prepare, roles: opts.prepare });
    const [medium, high, critical] = config.RISK_THRESHOLDS;
    const engine = await loadModels(config.MODELS_DIR, { medium, high, critical });
    if (opts.prepare && config.SEED_DEMO) {
      // With the models: the demo tenant gets a sample portfolio scored by them.
      const seed = await seedDemo(db.adminSql, config.dataDir, { engine });
      if (seed.seeded) {
        // Printed once, on purpose, to the terminal (not the log stream).
        process.stdout.write(
          `\nDemo tenant created. Sign in as ${seed.email} (username "admin") with password:\n\n    ${seed.password}\n\n` +
            `(also written to ${seed.passwordFile}, mode 0600)\n\n`,
        );
      }
    }
    log.info({ models: engine.models }, 'risk models loaded');
    const redisInfo = await prepareRedis(config, log, shutdown);
    // The app pool follows failovers (issue 8): `sql` forwards to the current primary's pool, and
    // a primary change published by `accunode dr failover` re-points it without a restart.
    const pools = new AppPools(db.appUrl, (u) => createAppPool(config, u, 'accunode-api'), log);
    const sql = pools.sql;
    shutdown.add('app pool', () => pools.end({ timeout: 5 }));
    const redis = createRedis(redisInfo.url, 'accunode-api');
    shutdown.add('redis', () => redis.quit());
    const follower = createRedis(redisInfo.url, 'accunode-dr-follow', { forQueue: true });
    // Only a change signed with the database's key, to this process's primary or one of its
    // replicas (DATABASE_READ_URLS), is followed: Redis alone cannot point the app elsewhere.
    const trust = { key: drKeyFromDatabase(sql), allowed: [endpoint(db.appUrl), ...config.DATABASE_READ_URLS.map(endpoint)] };
    const unfollow = await pools.follow(follower, redis, PRIMARY_CHANNEL, trust);
    shutdown.add('primary follower', async () => {
      await unfollow();
      follower.disconnect();
    });
    const cacheRedis = config.CACHE_REDIS_URL ? createRedis(config.CACHE_REDIS_URL, 'accunode-cache') : undefined;
    if (cacheRedis) shutdown.add('cache redis', () => cacheRedis.quit());
    // All-in-one: a metrics token is made once and kept, so a local Prometheus can read it.
    const metricsToken = config.METRICS_TOKEN ?? (opts.prepare ? resolveGeneratedSecret(config.dataDir, 'metrics.token') : undefined);
    if (!config.METRICS_TOKEN && metricsToken) log.info({ file: generatedSecretFile(config.dataDir, 'metrics.token') }, '/metrics needs the bearer token in this file');
    const { url } = await startApi(config, log, shutdown, { ...(metricsToken ? { metricsToken } : {}), sql, onPoolSwitch: (fn) => pools.onSwitch(fn), adminUrl: db.resolved.adminUrl, redis, redisUrl: redisInfo.url, ...(cacheRedis ? { cacheRedis } : {}), engine, modelsReady: () => true });
    // All-in-one (`up`, not `api`): the worker and the scheduler run in this process too (issue 6).
    if (opts.prepare) await (await import('./worker.js')).startInProcess(config, log, shutdown, { sql, adminSql: db.adminSql, redisUrl: redisInfo.url, engine, redis, ...(cacheRedis ? { cacheRedis } : {}) });
    process.stdout.write(`AccuNode is running at ${url}  (health: ${url}/health/ready, API: ${url}/api/v1)\n`);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}
