/**
 * `accunode worker`: BullMQ workers for the bulk, analytics, maintenance and backups queues.
 * Never loads the HTTP stack. On SIGTERM/SIGINT a bulk upload stops at its next chunk boundary
 * and is handed back to the queue (another worker restarts it; upserts make that idempotent);
 * other jobs are let finish. A worker killed outright (SIGKILL) loses its lock and its job is
 * picked up again by stalled-job recovery.
 */
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '../config/index.js';
import { createLogger, type Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import type { RiskEngine } from '../risk/index.js';
import { loadModels } from '../services/model-store.js';
import { KEEP_COMPLETED, KEEP_FAILED, QUEUE_NAMES, type QueueName } from '../jobs/catalogue.js';
import { opsHandlers, type ScheduledHandlers } from '../jobs/handlers.js';
import { createProcessor } from '../jobs/processor.js';
import { checkPrefix, createQueueConnection } from '../queue/connection.js';
import type { BulkRunOptions } from '../services/bulk/pipeline.js';
import { configuredLimits } from '../services/bulk/readers.js';
import { createAppPool, createRedis, prepareDatabase, prepareRedis } from './context.js';
import { Shutdown } from './shutdown.js';
import { bulkUploadDir } from './upload-dir.js';
import { RollupCompactor } from '../services/rollup-compactor.js';

export interface WorkerDeps {
  connection: Redis;
  prefix: string;
  /** app_user pool. */
  sql: Sql;
  engine: RiskEngine;
  handlers: ScheduledHandlers;
  log: Logger;
  cacheRedis?: Redis;
}

export interface WorkerOptions {
  queues?: readonly QueueName[];
  concurrency?: Partial<Record<QueueName, number>>;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  bulk?: Pick<BulkRunOptions, 'chunkRows' | 'limits' | 'deleteFileWhenDone' | 'minRatios'>;
}

export interface RunningWorkers {
  workers: Worker[];
  /** Hands back running bulk uploads, lets other jobs finish, closes the workers. */
  close(): Promise<void>;
}

export function startWorkers(deps: WorkerDeps, opts: WorkerOptions = {}): RunningWorkers {
  checkPrefix(deps.prefix);
  const stopping = new AbortController();
  const processor = createProcessor({
    sql: deps.sql,
    engine: deps.engine,
    handlers: deps.handlers,
    log: deps.log,
    ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}),
    shutdown: stopping.signal,
    ...(opts.bulk ? { bulk: opts.bulk } : {}),
  });
  const workers = (opts.queues ?? QUEUE_NAMES).map((q) => {
    const w = new Worker(q, processor, {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: opts.concurrency?.[q] ?? 1,
      lockDuration: opts.lockDurationMs ?? 30_000,
      stalledInterval: opts.stalledIntervalMs ?? 30_000,
      maxStalledCount: 2,
      removeOnComplete: KEEP_COMPLETED,
      removeOnFail: KEEP_FAILED,
    });
    w.on('failed', (job, err) => deps.log.warn({ queue: q, job: job?.name, id: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed'));
    w.on('completed', (job) => deps.log.info({ queue: q, job: job.name, id: job.id }, 'job completed'));
    w.on('stalled', (id) => deps.log.warn({ queue: q, id }, 'stalled job: a worker died with it; running it again'));
    w.on('error', (err) => deps.log.error({ queue: q, err: err.message }, 'worker error'));
    return w;
  });
  let closing: Promise<void> | null = null;
  return {
    workers,
    close() {
      closing ??= (async () => {
        stopping.abort('shutdown');
        await Promise.all(workers.map((w) => w.close()));
      })();
      return closing;
    },
  };
}

export { bulkUploadDir };

/**
 * Starts workers inside an already-wired process (`accunode worker`, or `accunode up`
 * all-in-one). Registers its own closer on `shutdown`.
 */
export async function startWorkerRole(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; adminSql: Sql; redisUrl: string; engine: RiskEngine; redis?: Redis; cacheRedis?: Redis },
): Promise<RunningWorkers> {
  const connection = createQueueConnection(deps.redisUrl, 'accunode-worker');
  shutdown.add('worker redis', () => connection.quit());
  const running = startWorkers(
    {
      connection,
      prefix: config.QUEUE_PREFIX,
      sql: deps.sql,
      engine: deps.engine,
      log,
      ...(deps.cacheRedis ?? deps.redis ? { cacheRedis: (deps.cacheRedis ?? deps.redis)! } : {}),
      handlers: opsHandlers({ adminSql: deps.adminSql, config, log, uploadDir: bulkUploadDir(config), ...(deps.redis ? { redis: deps.redis } : {}), ...(deps.cacheRedis ?? deps.redis ? { cacheRedis: (deps.cacheRedis ?? deps.redis)! } : {}) }),
    },
    {
      queues: config.WORKER_QUEUES,
      concurrency: { bulk: config.WORKER_BULK_CONCURRENCY },
      lockDurationMs: config.QUEUE_LOCK_DURATION_MS,
      stalledIntervalMs: config.QUEUE_STALLED_INTERVAL_MS,
      bulk: { chunkRows: config.BULK_CHUNK_ROWS, limits: configuredLimits(config), deleteFileWhenDone: true, minRatios: config.PREDICTION_MIN_RATIOS },
    },
  );
  shutdown.add('workers', () => running.close());
  // Bulk uploads append rollup deltas in big batches: fold them here too (one process at a time).
  const compactor = new RollupCompactor(() => deps.sql, log).start();
  shutdown.add('rollup compactor', () => compactor.stop());
  log.info({ queues: config.WORKER_QUEUES, prefix: config.QUEUE_PREFIX }, 'workers started');
  return running;
}

/** `accunode worker`. */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const shutdown = new Shutdown(log);
  shutdown.install();
  try {
    const db = await prepareDatabase(config, log, shutdown, { migrate: false, roles: false });
    const redisInfo = await prepareRedis(config, log, shutdown);
    const [medium, high, critical] = config.RISK_THRESHOLDS;
    const engine = await loadModels(config.MODELS_DIR, { medium, high, critical });
    const sql = createAppPool(config, db.appUrl, 'accunode-worker');
    shutdown.add('app pool', () => sql.end({ timeout: 5 }));
    const cacheRedis = createRedis(config.CACHE_REDIS_URL ?? redisInfo.url, 'accunode-worker-cache');
    shutdown.add('cache redis', () => cacheRedis.quit());
    await startWorkerRole(config, log, shutdown, { sql, adminSql: db.adminSql, redisUrl: redisInfo.url, engine, cacheRedis });
    process.stdout.write(`AccuNode worker running (queues: ${config.WORKER_QUEUES.join(', ')})\n`);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}

/** `accunode up` (all-in-one): workers and the scheduler inside the api process. */
export async function startInProcess(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; adminSql: Sql; redisUrl: string; engine: RiskEngine; redis?: Redis; cacheRedis?: Redis },
): Promise<void> {
  await startWorkerRole(config, log, shutdown, deps);
  const { startSchedulerRole } = await import('./scheduler.js');
  await startSchedulerRole(config, log, shutdown, { redisUrl: deps.redisUrl });
}
