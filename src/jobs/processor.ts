import type { Redis } from 'ioredis';
/**
 * The worker's job dispatch: job name → handler, with the catalogue's timeout, the bulk
 * pipeline's hand-back on shutdown, and the weekly-on-monthly-day skip.
 */
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import type { RiskEngine } from '../risk/index.js';
import { failBulkJob, handBackBulkJob, runBulkJob, type BulkRunOptions } from '../services/bulk/pipeline.js';
import { JOBS, isJobName, type JobName, type JobPayloads } from './catalogue.js';
import type { ScheduledHandlers } from './handlers.js';
import { skipReason, tickOf } from './schedule.js';

export interface ProcessorDeps {
  /** app_user pool (bulk uploads run under row-level security as the uploader). */
  sql: Sql;
  engine: RiskEngine;
  handlers: ScheduledHandlers;
  log: Logger;
  /** Cache Redis: bulk uploads drop cached copies of the predictions they replace. */
  cacheRedis?: Redis;
  bulk?: Pick<BulkRunOptions, 'chunkRows' | 'limits' | 'deleteFileWhenDone' | 'minRatios'>;
  /** Aborted when the worker shuts down: bulk jobs stop at the next chunk and are handed back. */
  shutdown: AbortSignal;
}

class JobTimeout extends Error {}

export function createProcessor(deps: ProcessorDeps) {
  return async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
    if (!isJobName(job.name)) throw new UnrecoverableError(`unknown job "${job.name}"`);
    const name: JobName = job.name;
    const spec = JOBS[name];
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new JobTimeout(`timed out after ${spec.timeoutMs} ms`)), spec.timeoutMs);
    const onShutdown = () => ctl.abort('shutdown');
    deps.shutdown.addEventListener('abort', onShutdown);
    if (deps.shutdown.aborted) ctl.abort('shutdown');
    signal?.addEventListener('abort', () => ctl.abort('cancelled'));
    try {
      return await dispatch(name, job, token, ctl.signal);
    } finally {
      clearTimeout(timer);
      deps.shutdown.removeEventListener('abort', onShutdown);
    }
  };

  async function dispatch(name: JobName, job: Job, token: string | undefined, signal: AbortSignal): Promise<unknown> {
    switch (name) {
      case 'bulk.predict':
        return bulk(job as Job<JobPayloads['bulk.predict']>, token, signal);
      case 'maintenance.daily':
      case 'maintenance.weekly':
      case 'maintenance.monthly': {
        const tick = tickOf(job);
        const skip = skipReason(name, tick);
        if (skip) {
          deps.log.info({ job: name, tick }, `skipped: ${skip}`);
          return { outcome: 'skipped', reason: skip, tick: tick.toISOString() };
        }
        const kind = name.slice('maintenance.'.length) as 'daily' | 'weekly' | 'monthly';
        return deps.handlers.maintenance(kind, { dryRun: !!(job.data as JobPayloads[typeof name]).dryRun });
      }
      case 'alarms.evaluate':
        return deps.handlers.evaluateAlarms();
      case 'backup.daily':
        return deps.handlers.backup();
      case 'analytics.refresh':
        return deps.handlers.analyticsRefresh(job.data as JobPayloads['analytics.refresh']);
    }
  }

  async function bulk(job: Job<JobPayloads['bulk.predict']>, token: string | undefined, signal: AbortSignal) {
    const { jobId, userId } = job.data;
    try {
      const out = await runBulkJob({ sql: deps.sql, engine: deps.engine, log: deps.log, ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}) }, userId, jobId, {
        ...(deps.bulk ?? {}),
        signal,
        onProgress: (p) => void job.updateProgress(p).catch(() => {}),
      });
      if (out.status === 'aborted') {
        if (signal.reason instanceof JobTimeout) {
          await failBulkJob(deps.sql, userId, jobId, `stopped: ${signal.reason.message}`);
          throw new UnrecoverableError(signal.reason.message);
        }
        // Shutdown: give the job back; the next worker starts it from the top (idempotent).
        deps.log.info({ jobId }, 'bulk job handed back at shutdown');
        await handBackBulkJob(deps.sql, userId, jobId);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      return { status: out.status, ...out.progress, ...(out.status === 'failed' ? { error: out.error } : {}) };
    } catch (err) {
      if (err instanceof WaitingError || err instanceof UnrecoverableError) throw err;
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (last) await failBulkJob(deps.sql, userId, jobId, `failed after ${job.attemptsMade + 1} attempts: ${(err as Error).message}`).catch(() => {});
      throw err;
    }
  }
}
