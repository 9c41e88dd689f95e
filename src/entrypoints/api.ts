import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { buildApp } from '../http/app.js';
import type { Sql } from '../db/pool.js';
import type { Shutdown } from './shutdown.js';
import type { RiskEngine } from '../risk/index.js';
import { createPool } from '../db/pool.js';
import { createStatsCollector, metrics, type StatsCollector } from '../ops/monitoring/metrics.js';
import { queueMetrics, type QueueMetrics } from '../ops/monitoring/queue-metrics.js';
import { monitorUrl } from './context.js';
import { createQueueConnection } from '../queue/connection.js';
import { createProducers, QUEUE_NAMES } from '../queue/producers.js';
import type { QueueName } from '../jobs/catalogue.js';
import type { QueueReader } from '../ops/monitoring/timeseries.js';
import { BulkUploadService } from '../services/bulk/service.js';
import { bulkUploadDir } from './upload-dir.js';
import { configuredLimits } from '../services/bulk/readers.js';
import { buildServices, rateLimitsOf } from './services.js';
import { RollupCompactor } from '../services/rollup-compactor.js';
import { ReplicaRouter } from '../db/replicas.js';
import { assertRequestRole } from '../db/request-role.js';
import { createMailer } from '../services/mailer.js';
import type { OpsRoutesDeps } from '../http/routes/ops/routes.js';
import { backupDirSource } from '../ops/backup/source.js';
import { opsDepsOf } from '../ops/deps.js';
import type { Root } from './root.js';
import { generatedSecretFile, resolveGeneratedSecret } from '../config/generated-secret.js';

/**
 * The web app's Operations page reads the operators' figures as monitoring_user (pg_monitor),
 * like `accunode monitor`; when it cannot log in those figures say so instead of being read as
 * app_user. Read replicas get their own small pools for the lag figures.
 */
/** Job counts and connected workers per queue, for the operations page. */
function queueReader(producers: ReturnType<typeof createProducers>): QueueReader {
  return () => Promise.all(QUEUE_NAMES.map(async (q) => {
    const queue = producers.queue(q);
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
    const workers = await queue.getWorkers().then((w) => w.length, () => null);
    return { queue: q, counts, workers };
  }));
}

async function opsRoutesDeps(config: Config, log: Logger, shutdown: Shutdown, adminUrl: string | undefined, sql: Sql, redis: Redis, cacheRedis?: Redis): Promise<OpsRoutesDeps> {
  const url = monitorUrl(config, adminUrl);
  let monitor: OpsRoutesDeps['monitor'] = null;
  if (url) {
    const msql = createPool(url, { max: 2, applicationName: 'accunode-ops-web', prepare: config.DATABASE_PREPARE });
    try {
      await msql`select 1`;
      shutdown.add('ops pool', () => msql.end({ timeout: 5 }));
      const replicas = config.DATABASE_READ_URLS.map((u, i) => ({ name: `replica ${i + 1} (${new URL(u).host})`, sql: createPool(u, { max: 1, applicationName: 'accunode-ops-web' }) }));
      for (const r of replicas) shutdown.add(`ops replica pool ${r.name}`, () => r.sql.end({ timeout: 5 }));
      // The same OpsDeps as `accunode monitor|alarms` (DB CPU source and backups included).
      monitor = opsDepsOf({ sql: msql, redis, cacheRedis, replicas, config, log, adminUrl: adminUrl ?? config.DATABASE_ADMIN_URL ?? url });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'ops routes: monitoring_user cannot connect; operations figures unavailable');
      await msql.end({ timeout: 1 });
    }
  }
  return { sql, redis, ...(cacheRedis ? { cacheRedis } : {}), monitor, readReplicas: config.DATABASE_READ_URLS.length, backupSource: backupDirSource(config.backupDir) };
}

/**
 * The /metrics database and Redis figures are read as monitoring_user (pg_monitor), like the
 * operations commands; when it cannot log in they are left out rather than read as app_user.
 */
async function monitoringCollector(config: Config, log: Logger, shutdown: Shutdown, adminUrl: string | undefined, redis: Redis, cacheRedis: Redis | undefined, queues: QueueMetrics): Promise<StatsCollector | undefined> {
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
    queues,
    log,
  });
}

export async function startApi(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; adminUrl?: string; redis: Redis; redisUrl: string; cacheRedis?: Redis; engine: RiskEngine; modelsReady?: () => boolean; onPoolSwitch?: (fn: () => void) => void; metricsToken?: string },
): Promise<{ app: FastifyInstance; url: string }> {
  // Row-level security is written for app_user: a request pool logged in as the owner, a
  // superuser or a reporting role would serve every tenant's rows (src/db/request-role.ts).
  await assertRequestRole(deps.sql, 'DATABASE_URL');
  // Read replicas (issue 8): analytics go to a healthy replica under the lag limit, else the primary.
  const replicas = config.DATABASE_READ_URLS.length
    ? new ReplicaRouter({ urls: config.DATABASE_READ_URLS, lagLimitSeconds: config.REPLICA_LAG_LIMIT_SECONDS, intervalMs: config.REPLICA_CHECK_INTERVAL_SECONDS * 1000, poolSize: config.DATABASE_POOL_SIZE, prepare: config.DATABASE_PREPARE, applicationName: 'accunode-api-read', requireAppUser: true, onChange: (s) => log.warn({ replica: s.name, healthy: s.healthy, reason: s.reason }, 'read replica health changed') })
    : null;
  if (replicas) {
    shutdown.add('read replicas', () => replicas.close());
    await replicas.verifyRoles();
    replicas.start();
  }
  // Folds the rollup deltas this process's writes append (any number of processes may run one).
  const compactor = new RollupCompactor(() => deps.sql, log).start();
  shutdown.add('rollup compactor', () => compactor.stop());
  const services = buildServices({ sql: deps.sql, redis: deps.redis, ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}), replicas, log, engine: deps.engine, mailer: createMailer(config, log) }, config);
  // LISTEN needs a session of its own, which PgBouncer in transaction mode cannot give: when
  // DATABASE_URL goes through one, DATABASE_LISTEN_URL reaches PostgreSQL directly for it.
  const listenPool = config.DATABASE_LISTEN_URL ? createPool(config.DATABASE_LISTEN_URL, { max: 1, applicationName: 'accunode-listen' }) : null;
  if (listenPool) shutdown.add('listen pool', () => listenPool.end({ timeout: 5 }));
  const listenSql = listenPool ?? deps.sql;
  let revocations = await services.auth.listenForRevocations(listenSql);
  shutdown.add('session revocation listener', () => revocations.unlisten());
  // After a failover the LISTEN connection must move to the new primary with the pools.
  deps.onPoolSwitch?.(() => {
    void (async () => {
      await revocations.unlisten().catch(() => {});
      revocations = await services.auth.listenForRevocations(listenSql);
    })().catch((err) => log.warn({ err: (err as Error).message }, 'could not re-listen for session revocations'));
  });
  // Bulk uploads: the api only enqueues (it never runs workers); files wait in BULK_UPLOAD_DIR.
  const queueConnection = createQueueConnection(deps.redisUrl, 'accunode-api-queue');
  shutdown.add('queue producers', () => queueConnection.quit());
  const producers = createProducers(queueConnection, config.QUEUE_PREFIX);
  const uploadDir = bulkUploadDir(config);
  const uploads = new BulkUploadService({ sql: deps.sql, producers, uploadDir, cursors: services.cursors, readerLimits: configuredLimits(config), log });
  const statsCollector = await monitoringCollector(config, log, shutdown, deps.adminUrl, deps.redis, deps.cacheRedis, queueMetrics({ names: QUEUE_NAMES, queue: (q) => producers.queue(q as QueueName) }));
  const ops = { ...(await opsRoutesDeps(config, log, shutdown, deps.adminUrl, deps.sql, deps.redis, deps.cacheRedis)), queues: queueReader(producers) };
  const metricsToken = deps.metricsToken ?? config.METRICS_TOKEN ?? null;
  if (!metricsToken) log.warn('/metrics is refused: set METRICS_TOKEN (Prometheus sends it as a bearer token)');
  const app = await buildApp({
    statsCollector,
    metricsToken,
    ops,
    bulk: { uploads, uploadDir, maxUploadBytes: config.BULK_MAX_UPLOAD_BYTES },
    log,
    sql: deps.sql,
    redis: deps.redis,
    trustProxy: config.TRUST_PROXY,
    ...(config.PUBLIC_URL ? { publicUrl: config.PUBLIC_URL } : {}),
    services,
    rateLimits: rateLimitsOf(config),
    webhookAllowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
    ...(deps.modelsReady ? { modelsReady: deps.modelsReady } : {}),
  });
  // Registered after the pools' closers (closers run in reverse), so in-flight requests finish
  // before their connections go away.
  shutdown.add('http server', () => app.close());
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  return { app, url: address };
}

/** The api role on a process's root (`accunode api`, or `accunode up` all-in-one). */
export async function startApiRole(root: Root, opts: { allInOne: boolean }): Promise<{ app: FastifyInstance; url: string }> {
  const { config, log, shutdown } = root;
  // All-in-one: a metrics token is made once and kept, so a local Prometheus can read it.
  const metricsToken = config.METRICS_TOKEN ?? (opts.allInOne ? resolveGeneratedSecret(config.dataDir, 'metrics.token') : undefined);
  if (!config.METRICS_TOKEN && metricsToken) log.info({ file: generatedSecretFile(config.dataDir, 'metrics.token') }, '/metrics needs the bearer token in this file');
  return startApi(config, log, shutdown, {
    ...(metricsToken ? { metricsToken } : {}),
    sql: root.sql,
    onPoolSwitch: (fn) => root.appPools.onSwitch(fn),
    adminUrl: root.db.resolved.adminUrl,
    redis: root.redis,
    redisUrl: root.redisUrl,
    ...(root.cacheRedis !== root.redis ? { cacheRedis: root.cacheRedis } : {}),
    engine: root.engine,
    modelsReady: () => true,
  });
}
