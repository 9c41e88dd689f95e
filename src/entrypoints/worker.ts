/**
 * `accunode worker`: BullMQ workers for the bulk, analytics, maintenance and backups queues.
 * Never loads the HTTP stack. On SIGTERM/SIGINT a bulk upload stops at its next chunk boundary
 * and is handed back to the queue (another worker restarts it; upserts make that idempotent);
 * other jobs are let finish. A worker killed outright (SIGKILL) loses its lock and its job is
 * picked up again by stalled-job recovery.
 */
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../logging.js';
import { JOBS, JOB_NAMES, KEEP_COMPLETED, KEEP_FAILED, QUEUE_NAMES, type QueueName } from '../jobs/catalogue.js';
import type { JobDeps } from '../jobs/context.js';
import { createProcessor, type ProcessorDeps } from '../jobs/processor.js';
import { checkPrefix, createQueueConnection } from '../queue/connection.js';
import { configuredLimits } from '../services/bulk/readers.js';
import { Shutdown } from './shutdown.js';
import { bulkUploadDir } from './upload-dir.js';
import { RollupCompactor } from '../services/rollup-compactor.js';
import { AlertDispatcher, alertJobs } from '../jobs/alerts.js';
import { createProducers } from '../queue/producers.js';
import { openRoot, type Root } from './root.js';

export interface WorkerDeps extends JobDeps {
  connection: Redis;
  prefix: string;
  /** Tests of the timetable only: handlers instead of the catalogue's. */
  handlers?: ProcessorDeps['handlers'];
}

export interface WorkerOptions {
  queues?: readonly QueueName[];
  concurrency?: Partial<Record<QueueName, number>>;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Overrides deps.bulk (tests: small chunks). */
  bulk?: JobDeps['bulk'];
}

export interface RunningWorkers {
  workers: Worker[];
  /** Hands back running bulk uploads, lets other jobs finish, closes the workers. */
  close(): Promise<void>;
}

export function startWorkers(deps: WorkerDeps, opts: WorkerOptions = {}): RunningWorkers {
  checkPrefix(deps.prefix);
  const stopping = new AbortController();
  const { connection, prefix, ...jobDeps } = deps;
  const processor = createProcessor({ ...jobDeps, ...(opts.bulk ? { bulk: opts.bulk } : {}), shutdown: stopping.signal });
  const workers = (opts.queues ?? QUEUE_NAMES).map((q) => {
    const w = new Worker(q, processor, {
      connection,
      prefix,
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
 * Every job's dependencies, from the process's root: the same in `accunode worker` and
 * `accunode up`. The operations part (a monitoring pool among others) is opened when the worker
 * runs a queue that has operations jobs.
 */
export async function jobDepsOf(root: Root, queues: readonly QueueName[] = QUEUE_NAMES): Promise<JobDeps> {
  const { config } = root;
  const needsOps = JOB_NAMES.some((n) => JOBS[n].queue !== 'bulk' && queues.includes(JOBS[n].queue));
  return {
    sql: root.sql,
    engine: root.engine,
    log: root.log,
    cacheRedis: root.cacheRedis,
    bulk: { chunkRows: config.BULK_CHUNK_ROWS, limits: configuredLimits(config), deleteFileWhenDone: true, minRatios: config.PREDICTION_MIN_RATIOS },
    ...(needsOps ? { ops: { ops: await root.ops(), config, uploadDir: bulkUploadDir(config) } } : {}),
  };
}

/** The worker role on a process's root (`accunode worker`, or `accunode up` all-in-one). */
export async function startWorkerRole(root: Root): Promise<RunningWorkers> {
  const { config, log, shutdown } = root;
  const connection = createQueueConnection(root.redisUrl, 'accunode-worker');
  shutdown.add('worker redis', () => connection.quit());
  const producers = createProducers(connection, config.QUEUE_PREFIX);
  shutdown.add('alert producers', () => producers.close());
  const alerts = alertJobs({ adminSql: root.adminSql, allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, ratingScale: config.IMPLIED_RATING_SCALE, enqueueDelivery: (deliveryId) => producers.enqueue('webhooks.deliver', { deliveryId }) });
  const running = startWorkers(
    { connection, prefix: config.QUEUE_PREFIX, ...(await jobDepsOf(root, config.WORKER_QUEUES)), alerts },
    {
      queues: config.WORKER_QUEUES,
      concurrency: { bulk: config.WORKER_BULK_CONCURRENCY },
      lockDurationMs: config.QUEUE_LOCK_DURATION_MS,
      stalledIntervalMs: config.QUEUE_STALLED_INTERVAL_MS,
    },
  );
  shutdown.add('workers', () => running.close());
  // Bulk uploads append rollup deltas in big batches: fold them here too (one process at a time).
  const compactor = new RollupCompactor(() => root.sql, log).start();
  shutdown.add('rollup compactor', () => compactor.stop());
  // Alerts of watched companies: the outbox is read every 10 s (and at the end of each bulk upload).
  const dispatcher = new AlertDispatcher(alerts, (err) => log.warn({ err: err.message }, 'alert dispatch failed; retried at the next interval')).start();
  shutdown.add('alert dispatcher', () => dispatcher.stop());
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
    const root = await openRoot(config, log, shutdown, { name: 'accunode-worker', prepare: false });
    await startWorkerRole(root);
    process.stdout.write(`AccuNode worker running (queues: ${config.WORKER_QUEUES.join(', ')})\n`);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}
