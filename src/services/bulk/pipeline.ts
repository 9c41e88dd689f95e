/**
 * The bulk prediction pipeline, shared by the worker (queue "bulk") and `accunode predict bulk`:
 * stream the file → validate and compute every row (shared computePrediction) → per chunk, in
 * one transaction as the uploader (row-level security): check the job is still wanted, COPY +
 * set-based upsert, row errors, progress counters. The next chunk is parsed while the database
 * commits the previous one.
 *
 * Every attempt starts from the top of the file (counters and errors reset); upserts make a
 * re-run or a re-delivery after a crash end as if the file ran once.
 */
import { unlink } from 'node:fs/promises';
import type { Logger } from '../../logging.js';
import type { Sql } from '../../db/pool.js';
import { withUserTx } from '../../db/tx.js';
import type { RiskEngine } from '../../risk/index.js';
import type { MinRatios, Scope } from '../prediction-compute.js';
import * as jobs from '../../repositories/bulk-jobs.js';
import type { BulkJobRow } from '../../repositories/bulk-jobs.js';
import { DEFAULT_LIMITS, openBulkFile, type OpenedFile, type ReaderLimits } from './readers.js';
import type { Redis } from 'ioredis';
import { KeyLines } from './key-lines.js';
import { storeChunk, type StagedRow } from '../../repositories/bulk-staging.js';
import { invalidatePredictionWrites } from '../../cache/invalidation.js';
import { BulkFileError, convertRow, mapHeader, type RowError } from './values.js';

interface BulkDeps {
  /** app_user pool: everything runs under row-level security as the uploader. */
  sql: Sql;
  engine: RiskEngine;
  log?: Logger;
  /** The cache Redis: replaced predictions' cached copies are dropped after each chunk. */
  cacheRedis?: Redis;
}

export interface BulkProgress {
  rows_total: number | null;
  rows_processed: number;
  rows_succeeded: number;
  rows_failed: number;
  rows_superseded: number;
  chunks_committed: number;
}

export interface BulkRunOptions {
  chunkRows?: number;
  limits?: Partial<ReaderLimits>;
  /** Aborted: stop before the next chunk (shutdown hand-back, timeout). */
  signal?: AbortSignal;
  onProgress?: (p: BulkProgress) => void;
  /** Remove the uploaded file once the job reaches a final state. */
  deleteFileWhenDone?: boolean;
  /** PREDICTION_MIN_RATIOS (default "majority"): rows with fewer ratios are row errors. */
  minRatios?: MinRatios;
  /** Test hook: runs after each committed chunk. */
  afterChunk?: (p: BulkProgress) => Promise<void> | void;
}

type BulkOutcome =
  | { status: 'completed' | 'failed' | 'cancelled'; progress: BulkProgress; error?: string }
  | { status: 'aborted'; progress: BulkProgress; reason: string };

class Cancelled extends Error {}

class BulkAborted extends Error {
  constructor(readonly reason: string) {
    super(`bulk job stopped: ${reason}`);
  }
}

function keyOf(r: StagedRow): string {
  const p = r.computed;
  return p.kind === 'annual' ? `${r.company.symbol}\u0000${p.reporting_year}` : `${r.company.symbol}\u0000${p.reporting_year}\u0000${p.reporting_quarter}`;
}

function loadAndStart(sql: Sql, userId: string, jobId: string): Promise<BulkJobRow | null> {
  return withUserTx(sql, userId, (tx) => jobs.startAttempt(tx, jobId));
}

function finish(sql: Sql, userId: string, jobId: string, status: 'completed' | 'failed', p: BulkProgress, error?: string, note?: string): Promise<boolean> {
  return withUserTx(sql, userId, (tx) => jobs.finishJob(tx, jobId, status, status === 'completed' ? p.rows_processed : p.rows_total, error, note));
}

/**
 * Runs (or re-runs) one bulk_upload_jobs row to a final state. Throws only for infrastructure
 * failures (database down: the queue retries) and BulkAborted (shutdown/timeout: hand back).
 * File problems end the job as 'failed' with a clear message.
 */
export async function runBulkJob(deps: BulkDeps, userId: string, jobId: string, opts: BulkRunOptions = {}): Promise<BulkOutcome> {
  const chunkRows = opts.chunkRows ?? 5000;
  const limits: ReaderLimits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  const progress: BulkProgress = { rows_total: null, rows_processed: 0, rows_succeeded: 0, rows_failed: 0, rows_superseded: 0, chunks_committed: 0 };
  const job = await loadAndStart(deps.sql, userId, jobId);
  if (!job) throw new Error(`bulk job ${jobId} not found (or not visible to its uploader)`);
  if (job.status !== 'running') {
    return { status: job.status === 'queued' ? 'cancelled' : (job.status as 'completed' | 'failed' | 'cancelled'), progress };
  }
  const kind = job.prediction_type;
  const scope: Scope = { access_level: job.access_level, organization_id: job.access_level === 'organization' ? job.organization_id : null, created_by: job.user_id };
  const done = async () => {
    if (opts.deleteFileWhenDone && job.file_path) await unlink(job.file_path).catch(() => {});
  };

  let file: OpenedFile | null = null;
  let pending: Promise<void> | null = null;
  try {
    if (!job.file_path) throw new BulkFileError('wrong_content', 'the job has no file');
    file = await openBulkFile(job.file_path, limits);
    const header = mapHeader(kind, file.header);
    progress.rows_total = file.estimatedRows;
    const note = header.ignored.length > 0 ? `ignored columns: ${header.ignored.join(', ')}` : null;
    await withUserTx(deps.sql, userId, (tx) => jobs.setFileInfo(tx, jobId, { rowsTotal: progress.rows_total, format: file!.format, note }));

    // Lines by key across the whole file (chunkIndex covers only the chunk being staged).
    const winners = new KeyLines();
    let staged: StagedRow[] = [];
    let chunkIndex = new Map<string, number>();
    let errors: Array<RowError & { kind?: 'error' | 'superseded' }> = [];
    let rowsInChunk = 0;
    let failedRows = 0;
    let supersededInChunk = 0;
    let supersededEarlier = 0;

    const commit = async (rows: StagedRow[], errs: typeof errors, counts: { processed: number; failed: number; superseded: number; supersededEarlier: number }) => {
      const replaced = await withUserTx(deps.sql, userId, async (tx) => {
          const j = await jobs.lockJob(tx, jobId);
          if (!j || j.status !== 'running' || j.cancel_requested) throw new Cancelled();
          await jobs.nameUploadForTriggers(tx, jobId);
          const res = await storeChunk(tx, kind, scope, rows);
          const allErrs = errs.slice();
          for (const d of res.denied) allErrs.push({ line: d.line, column: null, value: null, reason: d.reason });
          await jobs.insertErrors(tx, jobId, allErrs);
          const succeeded = res.stored - counts.supersededEarlier;
          const failed = counts.failed + res.denied.length;
          await jobs.addChunkCounts(tx, jobId, { processed: counts.processed, succeeded, failed, superseded: counts.superseded });
          progress.rows_processed += counts.processed;
          progress.rows_succeeded += succeeded;
          progress.rows_failed += failed;
          progress.rows_superseded += counts.superseded;
          progress.chunks_committed++;
          return res.replaced;
      });
      await invalidatePredictionWrites(deps.cacheRedis, deps.log, replaced, [{ access_level: scope.access_level, organization_id: scope.organization_id, created_by: scope.created_by }]);
      opts.onProgress?.({ ...progress });
      await opts.afterChunk?.({ ...progress });
    };

    const flush = async () => {
      const rows = staged;
      const errs = errors;
      const counts = { processed: rowsInChunk, failed: failedRows, superseded: supersededInChunk, supersededEarlier };
      staged = [];
      chunkIndex = new Map();
      errors = [];
      rowsInChunk = failedRows = supersededInChunk = supersededEarlier = 0;
      // Parse/compute the next chunk while the database commits this one; commits stay in order.
      if (opts.signal?.aborted) throw new BulkAborted(String(opts.signal.reason ?? 'aborted'));
      const prev = pending;
      pending = (async () => {
        if (prev) await prev;
        if (opts.signal?.aborted) throw new BulkAborted(String(opts.signal.reason ?? 'aborted'));
        await commit(rows, errs, counts);
      })();
      // Handled where it is awaited; this only keeps Node from calling it unhandled meanwhile.
      pending.catch(() => {});
      // Surface a failure of an earlier commit promptly; keep at most one commit in flight.
      if (prev) await prev;
    };

    const computeOpts = opts.minRatios !== undefined ? { minRatios: opts.minRatios } : {};
    for await (const batch of file.rows) for (const row of batch) {
      rowsInChunk++;
      const conv = convertRow(deps.engine, kind, header, row.cells, row.line, computeOpts);
      if (!conv.ok) {
        failedRows++;
        for (const e of conv.errors) errors.push(e);
      } else {
        const s: StagedRow = { line: row.line, company: conv.company, computed: conv.computed };
        const key = keyOf(s);
        const inChunk = chunkIndex.get(key);
        const earlier = winners.set(key, row.line);
        if (inChunk !== undefined) {
          // The same company and period earlier in this chunk: the later row wins.
          const loser = staged[inChunk]!;
          errors.push({ line: loser.line, column: null, value: null, reason: `superseded by line ${row.line} (same company and period)`, kind: 'superseded' });
          supersededInChunk++;
          staged[inChunk] = s;
        } else {
          if (earlier !== undefined) {
            // Stored by an earlier chunk: this row replaces it (upsert) and it becomes superseded.
            errors.push({ line: earlier, column: null, value: null, reason: `superseded by line ${row.line} (same company and period)`, kind: 'superseded' });
            supersededInChunk++;
            supersededEarlier++;
          }
          chunkIndex.set(key, staged.length);
          staged.push(s);
        }
      }
      if (rowsInChunk >= chunkRows) await flush();
    }
    if (rowsInChunk > 0 || progress.chunks_committed === 0) await flush();
    if (pending) await pending;
    pending = null;
    if (!(await finish(deps.sql, userId, jobId, 'completed', progress))) throw new Cancelled();
    progress.rows_total = progress.rows_processed;
    await done();
    return { status: 'completed', progress };
  } catch (err) {
    // Let an in-flight commit settle before deciding (it may be the one that failed).
    if (pending) await (pending as Promise<void>).catch(() => {});
    file?.close();
    if (err instanceof Cancelled || (await isCancelled(deps.sql, userId, jobId))) {
      await withUserTx(deps.sql, userId, (tx) => jobs.markCancelled(tx, jobId));
      await done();
      return { status: 'cancelled', progress };
    }
    if (err instanceof BulkFileError) {
      await finish(deps.sql, userId, jobId, 'failed', progress, err.message);
      deps.log?.info({ jobId, code: err.code }, `bulk upload rejected: ${err.message}`);
      await done();
      return { status: 'failed', progress, error: err.message };
    }
    if (err instanceof BulkAborted) return { status: 'aborted', progress, reason: err.reason };
    throw err;
  }
}

async function isCancelled(sql: Sql, userId: string, jobId: string): Promise<boolean> {
  try {
    const j = await withUserTx(sql, userId, (tx) => jobs.cancelState(tx, jobId));
    return !!j && (j.status === 'cancelled' || j.cancel_requested);
  } catch {
    return false;
  }
}

/** Marks a job failed for good (e.g. the queue gave up after its last attempt). */
export async function failBulkJob(sql: Sql, userId: string, jobId: string, message: string): Promise<void> {
  await withUserTx(sql, userId, (tx) => jobs.markFailed(tx, jobId, message));
}

/** A worker shutting down gives the job back: queued again, to restart from the top. */
export async function handBackBulkJob(sql: Sql, userId: string, jobId: string): Promise<void> {
  await withUserTx(sql, userId, (tx) => jobs.markHandedBack(tx, jobId));
}
