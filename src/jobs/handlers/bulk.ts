// `bulk.predict`: one bulk upload through the pipeline, as its uploader. On shutdown it stops at
// the next chunk and is handed back to the queue (the next worker restarts it; upserts make that
// idempotent); on timeout or its last failed attempt the upload is marked failed.
import { UnrecoverableError, WaitingError } from 'bullmq';
import { failBulkJob, handBackBulkJob, runBulkJob } from '../../services/bulk/pipeline.js';
import { JobTimeout, type JobHandler } from '../context.js';

export const bulkPredict: JobHandler<'bulk.predict'> = async (deps, { job, token, signal }) => {
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
    // A bulk upload's alerts go out as one batch when it ends, not at the next interval's dispatch.
    if (out.status === 'completed' && deps.alerts) await deps.alerts.dispatch().catch((err: Error) => deps.log.warn({ jobId, err: err.message }, 'alert dispatch after bulk upload failed; the next interval retries'));
    return { status: out.status, ...out.progress, ...(out.status === 'failed' ? { error: out.error } : {}) };
  } catch (err) {
    if (err instanceof WaitingError || err instanceof UnrecoverableError) throw err;
    const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (last) await failBulkJob(deps.sql, userId, jobId, `failed after ${job.attemptsMade + 1} attempts: ${(err as Error).message}`).catch(() => {});
    throw err;
  }
};
