/**
 * bulk_upload_jobs / bulk_upload_errors access, always as the calling user (withUserTx): the
 * uploader sees and cancels a job, and so do those who manage the uploader unless the job is
 * personal (migration 0042); nobody else does.
 */
import type { Sql, TxSql } from '../db/pool.js';
import { withUserTx } from '../db/tx.js';
import type { AccessLevel } from '../domain/access.js';
import type { ModelKind } from '../risk/index.js';
import type { BulkFormat } from '../services/bulk/readers.js';
import type { RowError } from '../services/bulk/values.js';
import { afterCursor, keyColumns, orderBy, TOTAL_CAP, type CursorValues, type SortKey } from './keyset.js';

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** What DELETE /jobs/{id} leaves behind; shown with every job. */
export const CANCELLATION_POLICY =
  'cancelling keeps the chunks already committed (rows_succeeded counts them) and stops before the next chunk; nothing else is written; the file uploaded for it is deleted';

export interface BulkJobRow {
  id: string;
  user_id: string;
  organization_id: string | null;
  tenant_id: string | null;
  prediction_type: ModelKind;
  access_level: AccessLevel;
  status: JobStatus;
  file_name: string | null;
  file_size: number | null;
  file_sha256: string | null;
  file_path: string | null;
  file_format: BulkFormat | null;
  queue_job_id: string | null;
  rows_total: number | null;
  rows_processed: number;
  rows_succeeded: number;
  rows_failed: number;
  rows_superseded: number;
  error_message: string | null;
  note: string | null;
  cancel_requested: boolean;
  attempts: number;
  chunks_committed: number;
  started_at: Date | null;
  finished_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewBulkJob {
  userId: string;
  tenantId: string | null;
  kind: ModelKind;
  accessLevel: AccessLevel;
  organizationId: string | null;
  fileName: string | null;
  filePath: string;
  fileSize: number;
  fileSha256: string | null;
  format: BulkFormat | null;
}

export async function insertBulkJob(sql: Sql, job: NewBulkJob): Promise<BulkJobRow> {
  return withUserTx(sql, job.userId, async (tx) => {
    const [row] = await tx<BulkJobRow[]>`
      insert into bulk_upload_jobs (user_id, organization_id, tenant_id, prediction_type, access_level, status,
        file_name, file_size, file_sha256, file_path, file_format)
      values (${job.userId}, ${job.organizationId}, ${job.tenantId}, ${job.kind}, ${job.accessLevel}, 'queued',
        ${job.fileName}, ${job.fileSize}, ${job.fileSha256}, ${job.filePath}, ${job.format})
      returning *`;
    return row!;
  });
}

export async function setQueueJobId(sql: Sql, userId: string, id: string, queueJobId: string): Promise<void> {
  await withUserTx(sql, userId, (tx) => tx`update bulk_upload_jobs set queue_job_id = ${queueJobId} where id = ${id}`);
}

export async function getBulkJob(sql: Sql, userId: string, id: string): Promise<BulkJobRow | null> {
  return withUserTx(sql, userId, async (tx) => {
    const [row] = await tx<BulkJobRow[]>`select * from bulk_upload_jobs where id = ${id}`;
    return row ?? null;
  });
}

/** Jobs list newest first, by (created_at, id). */
export const JOB_KEY: SortKey = { cols: ['created_at', 'id'], types: ['timestamp', 'uuid'], casts: ['timestamp', 'uuid'] };

/**
 * One keyset page (plus one row) of the caller's own bulk jobs, newest first, on the
 * (user_id, created_at, id) index; the capped total comes with it.
 */
export async function listBulkJobs(
  sql: Sql,
  userId: string,
  f: { status?: JobStatus; type?: ModelKind },
  page: { fetch: number; after?: CursorValues },
): Promise<{ rows: Array<BulkJobRow & { sort_key: CursorValues }>; counted: number }> {
  return withUserTx(sql, userId, async (tx) => {
    const where = tx`j.user_id = ${userId} ${f.status ? tx`and j.status = ${f.status}` : tx``} ${f.type ? tx`and j.prediction_type = ${f.type}` : tx``}`;
    const [rows, [c]] = await Promise.all([
      tx<Array<BulkJobRow & { k0: string; k1: string }>>`
        select j.* ${keyColumns(tx, 'j', JOB_KEY)} from bulk_upload_jobs j
        where ${where} ${afterCursor(tx, 'j', JOB_KEY, true, page.after)}
        order by ${orderBy(tx, 'j', JOB_KEY, true)} limit ${page.fetch}`,
      tx<{ n: number }[]>`select count(*)::int as n from (select 1 from bulk_upload_jobs j where ${where} limit ${TOTAL_CAP + 1}) z`,
    ]);
    return { rows: rows.map(({ k0, k1, ...r }) => ({ ...(r as BulkJobRow), sort_key: [k0, k1] })), counted: c!.n };
  });
}

export async function lockJob(tx: TxSql, id: string): Promise<Pick<BulkJobRow, 'status' | 'cancel_requested'> | null> {
  const [row] = await tx<Pick<BulkJobRow, 'status' | 'cancel_requested'>[]>`
    select status, cancel_requested from bulk_upload_jobs where id = ${id} for update`;
  return row ?? null;
}

/**
 * Cancels a job: a queued job never starts; a running one stops before its next chunk (the
 * worker checks under this row's lock, so a chunk is either committed before the cancellation
 * or not at all). Finished jobs are left as they are.
 */
export async function cancelBulkJob(sql: Sql, userId: string, id: string): Promise<(BulkJobRow & { previous_status: JobStatus }) | null> {
  return withUserTx(sql, userId, async (tx) => {
    // The status before this cancellation, read under the row lock the worker takes to start a
    // job: 'queued' here means no worker has opened (or will open) the file.
    const [prev] = await tx<{ status: JobStatus }[]>`select status from bulk_upload_jobs where id = ${id} for update`;
    if (!prev) return null;
    const [row] = await tx<BulkJobRow[]>`
      update bulk_upload_jobs set
        cancel_requested = true,
        status = case when status in ('queued', 'running') then 'cancelled' else status end,
        finished_at = case when status in ('queued', 'running') then CURRENT_TIMESTAMP else finished_at end,
        note = case when status in ('queued', 'running')
          then concat_ws(' ', note, 'cancelled after ' || rows_processed || ' rows (' || chunks_committed || ' chunks committed);', ${CANCELLATION_POLICY}::text)
          else note end
      where id = ${id}
      returning *`;
    return row ? { ...row, previous_status: prev.status } : null;
  });
}

export async function insertErrors(tx: TxSql, jobId: string, errors: ReadonlyArray<RowError & { kind?: 'error' | 'superseded' }>): Promise<void> {
  if (errors.length === 0) return;
  const lines = errors.map((e) => e.line);
  const cols = errors.map((e) => e.column);
  const vals = errors.map((e) => (e.value === null ? null : e.value.length > 500 ? e.value.slice(0, 500) + '…' : e.value));
  const reasons = errors.map((e) => e.reason);
  const kinds = errors.map((e) => e.kind ?? 'error');
  await tx`
    insert into bulk_upload_errors (job_id, line, column_name, value, reason, kind)
    select ${jobId}, * from unnest(${lines}::int[], ${cols}::text[], ${vals}::text[], ${reasons}::text[], ${kinds}::text[])`;
}

export interface ErrorRecord {
  line: number;
  column_name: string | null;
  value: string | null;
  reason: string;
  kind: 'error' | 'superseded';
}

/** The job's errors in line order, in pages (for streaming the CSV). Null when the job is not visible. */
export async function* iterateErrors(sql: Sql, userId: string, jobId: string, pageSize = 5000): AsyncGenerator<ErrorRecord[]> {
  let after = -1;
  for (;;) {
    const page = await withUserTx(sql, userId, (tx) => tx<ErrorRecord[]>`
      select line, column_name, value, reason, kind from bulk_upload_errors
      where job_id = ${jobId} and line > ${after}
      order by line, kind, column_name nulls first
      limit ${pageSize}`);
    if (page.length === 0) return;
    // Never split one line's errors over two pages: drop the last line and fetch it again.
    const lastLine = page[page.length - 1]!.line;
    const full = page.length < pageSize ? page : page.filter((e) => e.line !== lastLine);
    if (full.length === 0) {
      yield page;
      after = lastLine;
      continue;
    }
    yield full;
    after = full[full.length - 1]!.line;
    if (page.length < pageSize) return;
  }
}

// ---------------------------------------------------------------------------------------------
// The pipeline's writes (services/bulk/pipeline.ts), each inside the uploader's transaction.
// ---------------------------------------------------------------------------------------------

/** Locks the job; when it is still wanted, starts a fresh attempt (counters and errors reset). */
export async function startAttempt(tx: TxSql, jobId: string): Promise<BulkJobRow | null> {
  const [job] = await tx<BulkJobRow[]>`select * from bulk_upload_jobs where id = ${jobId} for update`;
  if (!job) return null;
  if (job.status !== 'queued' && job.status !== 'running') return job;
  if (job.cancel_requested) return job;
  // From the top: idempotent upserts make the rows a crashed attempt committed come out the same.
  await tx`delete from bulk_upload_errors where job_id = ${jobId}`;
  const [started] = await tx<BulkJobRow[]>`
    update bulk_upload_jobs set status = 'running', started_at = coalesce(started_at, CURRENT_TIMESTAMP),
      attempts = attempts + 1, rows_processed = 0, rows_succeeded = 0, rows_failed = 0, rows_superseded = 0,
      chunks_committed = 0, error_message = null, finished_at = null
    where id = ${jobId} returning *`;
  return started!;
}

/** Ends a running job; false when it was not running any more (cancelled meanwhile). */
export async function finishJob(tx: TxSql, jobId: string, status: 'completed' | 'failed', rowsTotal: number | null, error?: string, note?: string): Promise<boolean> {
  const res = await tx`
    update bulk_upload_jobs set status = ${status}, finished_at = CURRENT_TIMESTAMP, rows_total = ${rowsTotal},
      error_message = ${error ?? null}, note = coalesce(${note ?? null}, note)
    where id = ${jobId} and status = 'running'`;
  return res.count === 1;
}

export async function setFileInfo(tx: TxSql, jobId: string, info: { rowsTotal: number | null; format: BulkFormat; note: string | null }): Promise<void> {
  await tx`update bulk_upload_jobs set rows_total = ${info.rowsTotal}, file_format = ${info.format}, note = ${info.note} where id = ${jobId}`;
}

/** Names the upload for the watch triggers (migration 0070): its alerts form one batch. */
export async function nameUploadForTriggers(tx: TxSql, jobId: string): Promise<void> {
  await tx`select set_config('app.bulk_job_id', ${jobId}, true)`;
}

export async function addChunkCounts(tx: TxSql, jobId: string, c: { processed: number; succeeded: number; failed: number; superseded: number }): Promise<void> {
  await tx`
    update bulk_upload_jobs set rows_processed = rows_processed + ${c.processed},
      rows_succeeded = rows_succeeded + ${c.succeeded}, rows_failed = rows_failed + ${c.failed},
      rows_superseded = rows_superseded + ${c.superseded}, chunks_committed = chunks_committed + 1
    where id = ${jobId}`;
}

export async function markCancelled(tx: TxSql, jobId: string): Promise<void> {
  await tx`
    update bulk_upload_jobs set status = 'cancelled', finished_at = coalesce(finished_at, CURRENT_TIMESTAMP)
    where id = ${jobId} and status in ('queued', 'running')`;
}

export async function cancelState(tx: TxSql, jobId: string): Promise<{ status: string; cancel_requested: boolean } | null> {
  const [j] = await tx<{ status: string; cancel_requested: boolean }[]>`select status, cancel_requested from bulk_upload_jobs where id = ${jobId}`;
  return j ?? null;
}

export async function markFailed(tx: TxSql, jobId: string, message: string): Promise<void> {
  await tx`
    update bulk_upload_jobs set status = 'failed', finished_at = CURRENT_TIMESTAMP, error_message = ${message}
    where id = ${jobId} and status in ('queued', 'running')`;
}

export async function markHandedBack(tx: TxSql, jobId: string): Promise<void> {
  await tx`
    update bulk_upload_jobs set status = 'queued', note = concat_ws(' ', note, 'handed back by a worker shutting down; restarts from the top (idempotent).')
    where id = ${jobId} and status = 'running'`;
}
