/**
 * The CLI's composition root: one CliContext per `accunode` invocation, handed to every
 * command (src/cli/context.ts). It builds connections the way the long-running processes do
 * (src/entrypoints/context.ts, root.ts): the same owner/local database resolution, the Redis
 * topology (Sentinel, Cluster, TLS) and the operations dependencies the jobs get.
 */
import type { CliContext, CliDatabase, CliOps, CliRedis } from '../cli/context.js';
import { loadConfig, type Config } from '../config/index.js';
import { createLogger, type Logger } from '../logging.js';
import { createPool, type Sql } from '../db/pool.js';
import { ServingModels } from '../services/model-serving.js';
import { opsDepsOf } from '../ops/deps.js';
import { localRedisUrl } from '../ops/local/services.js';
import { connectRedis, isDistributed, placeholderUrl, topologyOf, useRedisTopology } from '../redis/topology.js';
import { createAppPool, createRedis, prepareDatabase, prepareRedis, rolePasswords } from './context.js';
import { openMonitorPool } from './root.js';
import { bulkUploadDir } from './upload-dir.js';
import type { RiskEngine } from '../risk/index.js';

export function createCliContext(): CliContext {
  let config: Config | null = null;
  let log: Logger | null = null;
  const cfg = () => (config ??= loadConfig());
  // Operators' commands keep stdout for their result; logs go to stderr, quieter than a server's.
  const logger = () => (log ??= createLogger(cfg().LOG_LEVEL === 'info' ? 'warn' : cfg().LOG_LEVEL));

  const database = async (): Promise<CliDatabase> => {
    const db = await prepareDatabase(cfg(), logger(), null, { migrate: false, roles: false });
    return {
      adminSql: db.adminSql,
      adminUrl: db.resolved.adminUrl,
      appUrl: db.appUrl,
      async close() {
        await db.adminSql.end({ timeout: 5 });
        await db.resolved.stop?.();
      },
    };
  };

  const redis = async (name: string): Promise<CliRedis> => {
    const r = await prepareRedis(cfg(), logger(), null);
    const client = createRedis(r.url, name);
    return {
      url: r.url,
      client,
      async close() {
        await client.quit().catch(() => client.disconnect());
        await r.stop?.();
      },
    };
  };

  const redisIfUp = async (name: string): Promise<CliRedis | null> => {
    const c = cfg();
    const topology = topologyOf(c);
    const url = c.REDIS_URL ?? (isDistributed(topology) ? placeholderUrl(topology) : localRedisUrl(c.LOCAL_REDIS_PORT, c.dataDir));
    useRedisTopology(url, topology);
    const client = connectRedis(url, { connectionName: name, maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true }, { requestPath: true });
    try {
      await client.connect();
      await client.ping();
      return { url, client, close: async () => void (await client.quit().catch(() => client.disconnect())) };
    } catch {
      client.disconnect();
      return null;
    }
  };

  const ops = async (): Promise<CliOps> => {
    const c = cfg();
    const l = logger();
    const db = await database();
    const closers: Array<() => Promise<unknown>> = [() => db.close()];
    const mon = await openMonitorPool(c, db.adminUrl, l, 'accunode-ops');
    let sql: Sql = db.adminSql;
    let identity = mon.identity;
    if (mon.sql) {
      const m = mon.sql;
      sql = m;
      closers.unshift(() => m.end({ timeout: 5 }));
    } else {
      process.stderr.write(`warning: monitoring_user could not log in${mon.error ? ` (${mon.error})` : ''}; reading statistics as the owner. Run \`accunode db roles\` or set DATABASE_MONITOR_URL.\n`);
      identity = 'owner (monitoring_user unavailable)';
    }
    const replicas = c.DATABASE_READ_URLS.map((u, i) => ({ name: `replica ${i + 1} (${new URL(u).host})`, sql: createPool(u, { max: 1, applicationName: 'accunode-ops' }) }));
    for (const r of replicas) closers.unshift(() => r.sql.end({ timeout: 5 }));
    const main = await redis('accunode-ops');
    closers.unshift(() => main.close());
    let cacheRedis;
    if (c.CACHE_REDIS_URL && c.CACHE_REDIS_URL !== main.url) {
      const cr = createRedis(c.CACHE_REDIS_URL, 'accunode-ops-cache');
      cacheRedis = cr;
      closers.unshift(() => cr.quit());
    }
    return {
      deps: opsDepsOf({ sql, adminSql: db.adminSql, adminUrl: db.adminUrl, redis: main.client, cacheRedis, replicas, config: c, log: l }),
      adminSql: db.adminSql,
      identity,
      async close() {
        for (const x of closers) await x().catch(() => {});
      },
    };
  };

  let serving: Promise<ServingModels> | null = null;
  return {
    get config() {
      return cfg();
    },
    get log() {
      return logger();
    },
    database,
    redis,
    redisIfUp,
    appPool: (url, name) => createAppPool(cfg(), url, name),
    ops,
    rolePasswords: () => rolePasswords(cfg()),
    async engine(sql?: Sql): Promise<RiskEngine> {
      const [medium, high, critical] = cfg().RISK_THRESHOLDS;
      serving ??= ServingModels.fromFiles(cfg().MODELS_DIR, { medium, high, critical }, logger());
      const s = await serving;
      if (sql) await s.refresh(sql);
      return s.engine;
    },
    uploadDir: () => bulkUploadDir(cfg()),
    async runRole(role) {
      if (role === 'worker') await (await import('./worker.js')).runWorker();
      else await (await import('./scheduler.js')).runScheduler();
    },
  };
}
