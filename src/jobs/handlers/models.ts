// `model.run`: one shadow or re-score run of a registered model (services/model-runs.ts), as the
// owner. A run interrupted by shutdown or a failed attempt resumes on the next attempt (a
// re-score skips what the champion already made; a shadow run starts over, writing nothing).
import { UnrecoverableError } from 'bullmq';
import { executeModelRun } from '../../services/model-runs.js';
import { JobTimeout, MissingJobDeps, type JobHandler } from '../context.js';

export const modelRun: JobHandler<'model.run'> = async (deps, { job, signal }) => {
  if (!deps.ops) throw new UnrecoverableError(new MissingJobDeps(job.name).message);
  const o = deps.ops;
  try {
    const report = await executeModelRun(
      {
        adminSql: o.ops.adminSql,
        log: deps.log,
        ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}),
        ratingScale: o.config.IMPLIED_RATING_SCALE,
        thresholds: deps.engine.thresholds,
        signal,
        onProgress: (p) => void job.updateProgress(p).catch(() => {}),
      },
      job.data.runId,
    );
    // Re-scored predictions of watched companies: their alerts go out now, as a bulk upload's do.
    if (report.action === 'rescore' && deps.alerts) await deps.alerts.dispatch().catch((err: Error) => deps.log.warn({ runId: job.data.runId, err: err.message }, 'alert dispatch after a re-score failed; the next interval retries'));
    return report;
  } catch (err) {
    if (signal.reason instanceof JobTimeout) throw new UnrecoverableError((err as Error).message);
    throw err;
  }
};
