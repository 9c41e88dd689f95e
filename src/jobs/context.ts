/**
 * What every job handler is given: one JobDeps per worker process, built by the composition
 * root (src/entrypoints/worker.ts, startWorkerRole) the same way in `accunode worker` and in
 * `accunode up`, and a JobRun per job.
 */
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import type { OpsDeps } from '../ops/types.js';
import type { RiskEngine } from '../risk/index.js';
import type { BulkRunOptions } from '../services/bulk/pipeline.js';
import type { AlertJobs } from './alerts.js';
import type { JobName, JobPayloads } from './catalogue.js';

/** The operations jobs' dependencies: the same OpsDeps `accunode alarms` builds (src/ops/deps.ts). */
export interface OpsJobDeps {
  ops: OpsDeps & { adminSql: Sql };
  config: Config;
  /** BULK_UPLOAD_DIR, for the daily sweep of orphaned upload files. */
  uploadDir: string;
}

export interface JobDeps {
  /** app_user pool (bulk uploads run under row-level security as the uploader). */
  sql: Sql;
  engine: RiskEngine;
  log: Logger;
  /** Cache Redis: bulk uploads drop cached copies of the predictions they replace. */
  cacheRedis?: Redis;
  bulk?: Pick<BulkRunOptions, 'chunkRows' | 'limits' | 'deleteFileWhenDone' | 'minRatios'>;
  /**
   * Maintenance, alarms and backups. A worker process always has them (startWorkerRole); a
   * test that runs only the bulk queue may leave them out, and an operations job then fails
   * loudly instead of reporting a partial result.
   */
  ops?: OpsJobDeps;
  /** Alert dispatch and webhook deliveries (absent: those jobs fail as unavailable). */
  alerts?: AlertJobs;
}

export interface JobRun<P> {
  job: Job<P>;
  token: string | undefined;
  /** Aborted on timeout (reason: JobTimeout), worker shutdown ('shutdown') or cancel. */
  signal: AbortSignal;
  /** The schedule tick the job belongs to (its creation time for an unscheduled job). */
  tick: Date;
}

export type JobHandler<N extends JobName> = (deps: JobDeps, run: JobRun<JobPayloads[N]>) => Promise<unknown>;

export class JobTimeout extends Error {}

export class MissingJobDeps extends Error {
  constructor(job: string) {
    super(`${job}: this worker was started without the operations dependencies (owner pool, monitoring pool, Redis)`);
  }
}
