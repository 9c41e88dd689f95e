/**
 * The composition root: what a process is built from, made once and handed to the roles it
 * runs (api, worker, scheduler; `accunode up` runs all three on one Root). Every role takes its
 * connections from here, so what one process gets another cannot silently lack.
 *
 *   BaseRoot  config, logger, shutdown, the queue/session Redis (its configured topology:
 *             standalone, Sentinel or Cluster; TLS) and the cache Redis. The scheduler needs
 *             no more.
 *   Root      + the owner pool and the app_user pool (both follow a signed primary change after
 *             a failover, src/db/app-pools.ts), the risk engine, and the operations services'
 *             dependencies (monitoring_user pool, DB CPU source, backups: src/ops/deps.ts).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import { createPool } from '../db/pool.js';
import { AppPools, drKeyFromDatabase, endpoint, PRIMARY_CHANNEL } from '../db/app-pools.js';
import type { RiskEngine } from '../risk/index.js';
import { ServingModels } from '../services/model-serving.js';
import { opsDepsOf } from '../ops/deps.js';
import type { OpsDeps } from '../ops/types.js';
import { errMessage } from '../ops/types.js';
import { createAppPool, createRedis, monitorUrl, prepareDatabase, prepareRedis, type Databases } from './context.js';
import type { Shutdown } from './shutdown.js';

export interface BaseRoot {
  config: Config;
  log: Logger;
  shutdown: Shutdown;
  /** REDIS_URL as resolved (a local redis-server started when none was configured). */
  redisUrl: string;
  /** Request-path client of REDIS_URL (sessions, rate limits, alarms, DR announcements). */
  redis: Redis;
  /** The cache (CACHE_REDIS_URL), or `redis` when the cache shares it. */
  cacheRedis: Redis;
}

export interface Root extends BaseRoot {
  db: Databases;
  /** The owner pool; follows a failover. */
  adminSql: Sql;
  /** The app_user pool; follows a failover. */
  sql: Sql;
  appPools: AppPools;
  engine: RiskEngine;
  /** The operations services' dependencies, as `accunode alarms` builds them (opened on first use). */
  ops(): Promise<OpsDeps & { adminSql: Sql }>;
}

export async function openBaseRoot(config: Config, log: Logger, shutdown: Shutdown, name: string): Promise<BaseRoot> {
  const info = await prepareRedis(config, log, shutdown);
  const redis = createRedis(info.url, name);
  shutdown.add('redis', () => redis.quit());
  let cacheRedis = redis;
  if (config.CACHE_REDIS_URL && config.CACHE_REDIS_URL !== info.url) {
    const c = createRedis(config.CACHE_REDIS_URL, `${name}-cache`);
    shutdown.add('cache redis', () => c.quit());
    cacheRedis = c;
  }
  return { config, log, shutdown, redisUrl: info.url, redis, cacheRedis };
}

/**
 * The full root of a long-running process (api, worker, all-in-one). `prepare`: migrate and
 * set the role passwords first (`accunode up`); the api and the worker expect that done.
 */
export async function openRoot(config: Config, log: Logger, shutdown: Shutdown, opts: { name: string; prepare: boolean; beforeRedis?: (db: Databases, engine: RiskEngine) => Promise<void> }): Promise<Root> {
  const db = await prepareDatabase(config, log, shutdown, { migrate: opts.prepare, roles: opts.prepare });
  const [medium, high, critical] = config.RISK_THRESHOLDS;
  // The shipped artifacts first; the registry's champions replace them once the app pool is up.
  const serving = await ServingModels.fromFiles(config.MODELS_DIR, { medium, high, critical }, log);
  const engine = serving.engine;
  log.info({ models: engine.models }, 'risk models loaded');
  // The demo seed runs here: after the models (its sample portfolio is scored by them).
  await opts.beforeRedis?.(db, engine);
  const base = await openBaseRoot(config, log, shutdown, opts.name);
  // The app pool follows failovers (issue 8): `sql` forwards to the current primary's pool, and
  // a primary change published by `accunode dr failover` re-points it without a restart. The
  // owner pool follows the same announcements, so maintenance and backups move with it.
  const appPools = new AppPools(db.appUrl, (u) => createAppPool(config, u, opts.name), log);
  shutdown.add('app pool', () => appPools.end({ timeout: 5 }));
  const follower = createRedis(base.redisUrl, `${opts.name}-dr-follow`, { forQueue: true });
  // Only a change signed with the database's key, to this process's primary or one of its
  // replicas (DATABASE_READ_URLS), is followed: Redis alone cannot point the app elsewhere.
  const allowed = [endpoint(db.appUrl), endpoint(db.resolved.adminUrl), ...config.DATABASE_READ_URLS.map(endpoint)];
  const trust = { key: drKeyFromDatabase(appPools.sql), allowed };
  const unfollowApp = await appPools.follow(follower, base.redis, PRIMARY_CHANNEL, trust);
  const unfollowAdmin = await db.adminPools.follow(follower, base.redis, PRIMARY_CHANNEL, { key: drKeyFromDatabase(db.adminSql), allowed });
  shutdown.add('primary follower', async () => {
    await unfollowApp();
    await unfollowAdmin();
    follower.disconnect();
  });
  // The registry's champion of each kind, if any, now and whenever one is promoted.
  await serving.refresh(appPools.sql).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not read the model registry; serving the shipped models'));
  serving.start(() => appPools.sql);
  shutdown.add('model registry check', async () => serving.stop());
  let ops: Promise<OpsDeps & { adminSql: Sql }> | null = null;
  return {
    ...base,
    db,
    adminSql: db.adminSql,
    sql: appPools.sql,
    appPools,
    engine,
    ops() {
      ops ??= openOps(base, db, shutdown);
      return ops;
    },
  };
}

/**
 * monitoring_user (DATABASE_MONITOR_URL, or the owner's URL with monitoring_user and its
 * password) reads the statistics; when it cannot log in, the owner does, and says so.
 */
export async function openMonitorPool(config: Config, adminUrl: string, log: Logger, name: string): Promise<{ sql: Sql | null; identity: string; error?: string }> {
  const url = monitorUrl(config, adminUrl);
  if (!url) return { sql: null, identity: 'owner (no monitoring_user URL)' };
  const sql = createPool(url, { max: 2, applicationName: name, prepare: config.DATABASE_PREPARE });
  try {
    await sql`select 1`;
    return { sql, identity: 'monitoring_user' };
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    log.warn({ err: errMessage(err) }, 'monitoring_user cannot log in: reading statistics as the owner');
    return { sql: null, identity: 'owner (monitoring_user unavailable)', error: errMessage(err) };
  }
}

async function openOps(base: BaseRoot, db: Databases, shutdown: Shutdown): Promise<OpsDeps & { adminSql: Sql }> {
  const { config, log } = base;
  const mon = await openMonitorPool(config, db.resolved.adminUrl, log, 'accunode-ops');
  if (mon.sql) {
    const m = mon.sql;
    shutdown.add('monitoring pool', () => m.end({ timeout: 5 }));
  }
  const replicas = config.DATABASE_READ_URLS.map((u, i) => ({ name: `replica ${i + 1} (${new URL(u).host})`, sql: createPool(u, { max: 1, applicationName: 'accunode-ops' }) }));
  for (const r of replicas) shutdown.add(`ops replica pool ${r.name}`, () => r.sql.end({ timeout: 5 }));
  const deps = opsDepsOf({ sql: mon.sql ?? db.adminSql, adminSql: db.adminSql, adminUrl: db.resolved.adminUrl, redis: base.redis, cacheRedis: base.cacheRedis, replicas, config, log });
  return { ...deps, adminSql: db.adminSql };
}
