import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { buildApp } from '../http/app.js';
import type { Sql } from '../db/pool.js';
import type { Shutdown } from './shutdown.js';
import type { RiskEngine } from '../risk/index.js';
import { createPool } from '../db/pool.js';
import { createStatsCollector, metrics, type StatsCollector } from '../ops/metrics.js';
import { monitorUrl } from './context.js';
import { createQueueConnection } from '../queue/connection.js';
import { createProducers } from '../queue/producers.js';
import { jobRoutes } from '../http/routes/jobs/routes.js';
import { bulkUploadDir } from './upload-dir.js';
import { buildServices, rateLimitsOf } from './services.js';

/**
 * The /metrics database and Redis figures are read as monitoring_user (pg_monitor), like the
 * operations commands; when it cannot log in they are left out rather than read as app_user.
 */
async function monitoringCollector(config: Config, log: Logger, shutdown: Shutdown, adminUrl: string | undefined, redis: Redis, cacheRedis?: Redis): Promise<StatsCollector | undefined> {
  const url = monitorUrl(config, adminUrl);
  if (!url) return undefined;
  const sql = createPool(url, { max: 1, applicationName: 'accunode-metrics', prepare: config.DATABASE_PREPARE });
  try {
    await sql`select 1`;
  } catch (err) {
    log.warn({ err: (err as Error).message }, '/metrics: monitoring_user cannot connect; database figures left out');
    await sql.end({ timeout: 1 });
    return undefined;
  }
  shutdown.add('metrics pool', () => sql.end({ timeout: 5 }));
  return createStatsCollector(metrics, {
    sql,
    redis: [{ instance: 'redis', client: redis }, ...(cacheRedis ? [{ instance: 'cache', client: cacheRedis }] : [])],
    slowQueryMs: config.ALARM_SLOW_QUERY_MS,
    replicaLagLimitSeconds: config.REPLICA_LAG_LIMIT_SECONDS,
    backupMaxAgeHours: config.BACKUP_MAX_AGE_HOURS,
    log,
  });
}

export async function startApi(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; adminUrl?: string; redis: Redis; redisUrl: string; cacheRedis?: Redis; engine: RiskEngine; modelsReady?: () => boolean },
): Promise<{ app: FastifyInstance; url: string }> {
  const services = buildServices({ sql: deps.sql, redis: deps.redis, ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}), log, engine: deps.engine }, config);
  const revocations = await services.auth.listenForRevocations(deps.sql);
  shutdown.add('session revocation listener', () => revocations.unlisten());
  // Bulk uploads: the api only enqueues (it never runs workers); files wait in BULK_UPLOAD_DIR.
  const queueConnection = createQueueConnection(deps.redisUrl, 'accunode-api-queue');
  shutdown.add('queue producers', () => queueConnection.quit());
  const producers = createProducers(queueConnection, config.QUEUE_PREFIX);
  const jobDeps = { sql: deps.sql, producers, uploadDir: bulkUploadDir(config), maxUploadBytes: config.BULK_MAX_UPLOAD_BYTES };
  const statsCollector = await monitoringCollector(config, log, shutdown, deps.adminUrl, deps.redis, deps.cacheRedis);
  const app = await buildApp({
    statsCollector,
    apiPlugins: [async (api) => { await api.register(jobRoutes, { deps: jobDeps }); }],
    log,
    sql: deps.sql,
    redis: deps.redis,
    trustProxy: config.TRUST_PROXY,
    services,
    rateLimits: rateLimitsOf(config),
    ...(deps.modelsReady ? { modelsReady: deps.modelsReady } : {}),
  });
  // Registered after the pools' closers (closers run in reverse), so in-flight requests finish
  // before their connections go away.
  shutdown.add('http server', () => app.close());
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  return { app, url: address };
}
