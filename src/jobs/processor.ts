/**
 * The worker's job dispatch: the catalogue entry's handler (src/jobs/catalogue.ts), with its
 * timeout, the worker's shutdown and cancellation as one abort signal, and its skip rule applied
 * to the tick the job belongs to.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { JOBS, isJobName, type JobName } from './catalogue.js';
import { JobTimeout, type JobDeps, type JobHandler } from './context.js';
import { tickOf } from './schedule.js';

export interface ProcessorDeps extends JobDeps {
  /** Aborted when the worker shuts down: bulk jobs stop at the next chunk and are handed back. */
  shutdown: AbortSignal;
  /** Handlers used instead of the catalogue's (tests of the timetable, which must not run them). */
  handlers?: { [N in JobName]?: JobHandler<N> };
}

export function createProcessor(deps: ProcessorDeps) {
  return async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
    if (!isJobName(job.name)) throw new UnrecoverableError(`unknown job "${job.name}"`);
    const name: JobName = job.name;
    const spec = JOBS[name];
    const tick = tickOf(job);
    const skip = spec.skip?.(tick) ?? null;
    if (skip) {
      deps.log.info({ job: name, tick }, `skipped: ${skip}`);
      return { outcome: 'skipped', reason: skip, tick: tick.toISOString() };
    }
    const handler = (deps.handlers?.[name] ?? (await spec.handler())) as JobHandler<JobName>;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new JobTimeout(`timed out after ${spec.timeoutMs} ms`)), spec.timeoutMs);
    const onShutdown = () => ctl.abort('shutdown');
    deps.shutdown.addEventListener('abort', onShutdown);
    if (deps.shutdown.aborted) ctl.abort('shutdown');
    signal?.addEventListener('abort', () => ctl.abort('cancelled'));
    try {
      return await handler(deps, { job, token, signal: ctl.signal, tick });
    } finally {
      clearTimeout(timer);
      deps.shutdown.removeEventListener('abort', onShutdown);
    }
  };
}
