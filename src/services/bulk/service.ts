/**
 * Bulk uploads as one service for the routes (POST /predictions/bulk, /jobs…) and `accunode
 * predict bulk`: submit (check, record, queue), list, get, errors and cancel, always as the
 * caller (row-level security on bulk_upload_jobs: someone else's job is a 404). The HTTP route
 * only streams the upload to BULK_UPLOAD_DIR; the command runs the recorded job in-process
 * (services/bulk/pipeline.ts) instead of queueing it.
 *
 * The job's view (jobView) is the service's output, as PredictionView is the predictions
 * service's: the API and the CLI print the same fields.
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Sql } from '../../db/pool.js';
import { DomainError, notFound } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import type { Logger } from '../../logging.js';
import { enqueueBulk, type Producers } from '../../queue/producers.js';
import { cancelBulkJob, CANCELLATION_POLICY, getBulkJob, iterateErrors, JOB_KEY, listBulkJobs, setQueueJobId, type BulkJobRow, type JobStatus } from '../../repositories/bulk-jobs.js';
import { cappedTotal, checkOffset, checkValues, pageOf, type Cursors, type ListRequest, type Page } from '../../repositories/keyset.js';
import type { ModelKind } from '../../risk/index.js';
import { ERRORS_CSV_HEADER, errorsCsvLines } from './errors-csv.js';
import { failBulkJob } from './pipeline.js';
import { checkXlsxFile, DEFAULT_LIMITS, sniffFormat, type ReaderLimits } from './readers.js';
import { createBulkJob, type CreateBulkJobInput } from './submit.js';
import { BulkFileError } from './values.js';

/** A job as the API and the CLI show it: counts, throughput and ETA, and what cancelling means. */
function jobView(j: BulkJobRow, now: Date = new Date()) {
  const end = j.finished_at ?? now;
  const seconds = j.started_at ? Math.max(0.001, (end.getTime() - j.started_at.getTime()) / 1000) : null;
  const throughput = seconds && j.rows_processed > 0 ? Math.round((j.rows_processed / seconds) * 10) / 10 : null;
  const remaining = j.rows_total !== null ? Math.max(0, j.rows_total - j.rows_processed) : null;
  const eta =
    j.status === 'running' && throughput && remaining !== null ? Math.round((remaining / throughput) * 10) / 10 : j.status === 'completed' ? 0 : null;
  return {
    id: j.id,
    type: j.prediction_type,
    status: j.status,
    access_level: j.access_level,
    file_name: j.file_name,
    file_size: j.file_size,
    rows_total: j.rows_total,
    rows_processed: j.rows_processed,
    rows_succeeded: j.rows_succeeded,
    rows_failed: j.rows_failed,
    rows_superseded: j.rows_superseded,
    throughput_rows_per_second: throughput,
    eta_seconds: eta,
    error_message: j.error_message,
    note: j.note,
    cancel_requested: j.cancel_requested,
    cancellation: CANCELLATION_POLICY,
    attempts: j.attempts,
    chunks_committed: j.chunks_committed,
    created_at: j.created_at.toISOString(),
    started_at: j.started_at ? j.started_at.toISOString() : null,
    finished_at: j.finished_at ? j.finished_at.toISOString() : null,
  };
}

type JobView = ReturnType<typeof jobView>;

interface BulkUploadDeps {
  /** app_user pool. */
  sql: Sql;
  /** Queue producers; absent where jobs run in the process that records them (the CLI). */
  producers?: Pick<Producers, 'enqueue' | 'removeIfWaiting'>;
  /** BULK_UPLOAD_DIR: files here belong to their jobs (deleted with a cancelled queued job). */
  uploadDir: string;
  /** Signs the jobs list's cursors. */
  cursors?: Cursors;
  /** XLSX inflation limits (BULK_XLSX_*), the same the workers apply. */
  readerLimits?: Partial<ReaderLimits>;
  log?: Logger;
}

interface JobFilter {
  status?: JobStatus;
  type?: ModelKind;
}

export class BulkUploadService {
  constructor(private readonly d: BulkUploadDeps) {}

  /**
   * A file already written to the upload directory: checked (an XLSX is inflated and counted
   * here, its declared sizes being possibly lies), recorded as the caller's job and queued. The
   * file is deleted when any of that fails; a queue that is down is a 503 with Retry-After.
   */
  async submit(p: Principal, input: CreateBulkJobInput): Promise<JobView> {
    // Before anything is recorded: without a queue the job would wait for nobody.
    if (!this.d.producers) throw new Error('BulkUploadService.submit needs queue producers (the CLI runs jobs with record())');
    const producers = this.d.producers;
    const drop = () => unlink(input.filePath).catch(() => {});
    try {
      if ((await sniffFormat(input.filePath).catch(() => null)) === 'xlsx') await checkXlsxFile(input.filePath, { ...DEFAULT_LIMITS, ...this.d.readerLimits });
    } catch (err) {
      await drop();
      if (err instanceof BulkFileError) throw new DomainError('validation_failed', `file: ${err.message}`, [{ field: 'file', message: err.message, code: err.code }]);
      throw err;
    }
    let job: BulkJobRow;
    try {
      job = await createBulkJob(this.d.sql, p, input);
    } catch (err) {
      await drop();
      throw err;
    }
    try {
      const queueJobId = await enqueueBulk(producers as Producers, { jobId: job.id, userId: p.userId });
      await setQueueJobId(this.d.sql, p.userId, job.id, queueJobId);
    } catch (err) {
      this.d.log?.error({ err: (err as Error).message, job: job.id }, 'could not queue a bulk upload');
      await failBulkJob(this.d.sql, p.userId, job.id, 'the job queue was unavailable; upload the file again').catch(() => {});
      await drop();
      throw new DomainError('unavailable', 'the job queue is unavailable; try again shortly');
    }
    return jobView(job);
  }

  /** Records a job for a file the caller keeps, to be run in this process (`accunode predict bulk`). */
  record(p: Principal, input: CreateBulkJobInput): Promise<BulkJobRow> {
    return createBulkJob(this.d.sql, p, input);
  }

  async list(p: Principal, filters: JobFilter, q: ListRequest<'-created_at'>): Promise<Page<JobView>> {
    if (!this.d.cursors) throw new Error('BulkUploadService.list needs the cursor signer');
    const offset = checkOffset(q.offset, q.cursor);
    const scope = { list: 'jobs', sort: '-created_at', filters: filters as Record<string, unknown> };
    const after = q.cursor ? checkValues(await this.d.cursors.decode(scope, q.cursor), JOB_KEY.types) : undefined;
    const { rows, counted } = await listBulkJobs(this.d.sql, p.userId, filters, { fetch: q.limit + offset + 1, ...(after ? { after } : {}) });
    return pageOf(this.d.cursors, scope, rows, { limit: q.limit, offset }, (r) => r.sort_key, (r) => jobView(r), cappedTotal(counted));
  }

  async get(p: Principal, id: string): Promise<JobView> {
    const job = await getBulkJob(this.d.sql, p.userId, id);
    if (!job) throw notFound('job');
    return jobView(job);
  }

  /** The job's row errors as CSV text, page by page (404 whenever get() is). */
  async errorsCsv(p: Principal, id: string): Promise<{ job: JobView; lines: AsyncIterable<string> }> {
    const job = await this.get(p, id);
    const pages = iterateErrors(this.d.sql, p.userId, job.id);
    return {
      job,
      lines: (async function* () {
        yield ERRORS_CSV_HEADER;
        for await (const page of pages) yield errorsCsvLines(page);
      })(),
    };
  }

  /** Cancels a queued or running job: committed chunks stay; a queued job leaves the queue and its file goes. */
  async cancel(p: Principal, id: string): Promise<JobView> {
    const before = await getBulkJob(this.d.sql, p.userId, id);
    if (!before) throw notFound('job');
    if (before.status !== 'queued' && before.status !== 'running') throw new DomainError('conflict', `job already ${before.status}; nothing to cancel`);
    const job = await cancelBulkJob(this.d.sql, p.userId, id);
    if (!job) throw notFound('job');
    // A job that never started leaves the queue now; a running one stops at its next chunk.
    await this.d.producers?.removeIfWaiting('bulk', job.queue_job_id ?? job.id).catch(() => false);
    // No worker will read a file whose job was still queued: it goes now (a running job's worker
    // deletes its own when it stops). Only files in the upload directory: a job made by
    // `accunode predict bulk` points at the user's own file.
    if (job.previous_status === 'queued' && job.file_path && path.dirname(path.resolve(job.file_path)) === path.resolve(this.d.uploadDir)) {
      await unlink(job.file_path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.d.log?.warn({ err: err.message, job: job.id }, 'could not delete a cancelled upload; the daily sweep will');
      });
    }
    return jobView(job);
  }
}
