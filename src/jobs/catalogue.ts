/**
 * The job catalogue: every job the system queues is one entry here, with its payload type
 * (JobPayloads), queue, retry policy, timeout, schedule (when the beat fires it), skip rule and
 * handler. Producers, the worker's processor and the scheduler all read it, so a job name, its
 * payload, its queue and its options can never disagree, and a job cannot be added without a
 * handler.
 *
 * Handlers are loaded when a worker first runs the job (`handler: () => import(...)`): the api
 * and the scheduler read this file to enqueue and schedule without loading what the jobs run.
 *
 * A new job: add its payload to JobPayloads, its entry to JOBS (a `schedule` when the beat fires
 * it), and its handler in src/jobs/handlers/ taking (deps: JobDeps, run: JobRun<payload>).
 */
import type { JobsOptions } from 'bullmq';
import type { JobHandler } from './context.js';

export const QUEUE_NAMES = ['bulk', 'analytics', 'maintenance', 'backups'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** Completed job metadata is kept 24 h (the spec's task TTL); failed jobs 7 days, to inspect them. */
export const KEEP_COMPLETED = Object.freeze({ age: 24 * 3600 });
export const KEEP_FAILED = Object.freeze({ age: 7 * 24 * 3600 });

/** What a scheduled job carries: the tick it belongs to is the BullMQ scheduler's, not the payload's. */
export interface ScheduledPayload {
  /** Plan only (maintenance dry run). */
  dryRun?: boolean;
}

export interface JobPayloads {
  /** A bulk_upload_jobs row to process, as its uploader. */
  'bulk.predict': { jobId: string; userId: string };
  'maintenance.daily': ScheduledPayload;
  'backup.daily': ScheduledPayload;
  'maintenance.weekly': ScheduledPayload;
  'maintenance.monthly': ScheduledPayload;
  'alarms.evaluate': ScheduledPayload;
  'model.drift': ScheduledPayload;
  /** Alerts from the outbox of changed predictions of watched companies (jobs/alerts.ts). */
  'alerts.dispatch': ScheduledPayload;
  /** One signed webhook delivery of alerts. */
  'webhooks.deliver': { deliveryId: string };
  /** A model_runs row to execute: shadow scoring or re-scoring (services/model-runs.ts). */
  'model.run': { runId: number };
}
export type JobName = keyof JobPayloads;

/** When the beat fires a job: a BullMQ job scheduler (cron pattern, UTC). */
export interface JobSchedule {
  /** BullMQ job scheduler id. */
  id: string;
  /** Cron pattern, evaluated in UTC. */
  pattern: string;
  when: string;
  what: string;
}

interface JobSpec<N extends JobName = JobName> {
  queue: QueueName;
  attempts: number;
  backoff: { type: 'exponential' | 'fixed'; delay: number };
  /** The handler is aborted after this long (BullMQ has no job timeout of its own). */
  timeoutMs: number;
  description: string;
  schedule?: JobSchedule;
  /** Whether the tick `tick` of this job does nothing, and why. */
  skip?: (tick: Date) => string | null;
  handler: () => Promise<JobHandler<N>>;
}

const MIN = 60_000;
const HOUR = 60 * MIN;

const maintenance = { queue: 'maintenance', attempts: 2, backoff: { type: 'fixed', delay: 5 * MIN } } as const;

export const JOBS: { readonly [N in JobName]: Readonly<JobSpec<N>> } = Object.freeze({
  'bulk.predict': {
    queue: 'bulk',
    attempts: 3,
    backoff: { type: 'exponential', delay: 10_000 },
    timeoutMs: 2 * HOUR,
    description: 'bulk prediction upload: parse, validate, predict, upsert (idempotent)',
    handler: async () => (await import('./handlers/bulk.js')).bulkPredict,
  },
  'maintenance.daily': {
    ...maintenance,
    timeoutMs: 2 * HOUR,
    description: 'daily maintenance: statistics, sessions idle 30 days, audit logs older than 1 year, orphaned bulk upload files',
    schedule: {
      id: 'maintenance-daily',
      pattern: '0 2 * * *',
      when: 'daily 02:00 UTC',
      what: 'ANALYZE, delete sessions idle 30 days, delete audit logs older than 1 year, delete bulk upload files no queued or running job will read',
    },
    handler: async () => (await import('./handlers/ops.js')).maintenanceOf('daily'),
  },
  'backup.daily': {
    queue: 'backups',
    attempts: 2,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 55 * MIN,
    description: 'daily backup in the 03:00-04:00 UTC window',
    schedule: { id: 'backup-daily', pattern: '0 3 * * *', when: 'daily 03:00 UTC (backup window 03:00-04:00)', what: 'daily backup' },
    handler: async () => (await import('./handlers/ops.js')).dailyBackup,
  },
  'maintenance.weekly': {
    ...maintenance,
    timeoutMs: 2 * HOUR,
    description: 'weekly ANALYZE and bloat/unused-index reports (skipped on the monthly day)',
    schedule: {
      id: 'maintenance-weekly',
      pattern: '0 4 * * 0',
      when: 'Sundays 04:00 UTC, except the first Sunday of the month',
      what: 'weekly ANALYZE, bloat and unused-index reports (skipped when the monthly VACUUM ANALYZE runs)',
    },
    skip: (tick) =>
      tick.getUTCDay() === 0 && tick.getUTCDate() <= 7 ? 'first Sunday of the month: the monthly VACUUM ANALYZE covers the weekly ANALYZE' : null,
    handler: async () => (await import('./handlers/ops.js')).maintenanceOf('weekly'),
  },
  'maintenance.monthly': {
    ...maintenance,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 6 * HOUR,
    description: 'monthly VACUUM ANALYZE, reindex of bloated indexes, archive of predictions older than 2 years',
    schedule: {
      id: 'maintenance-monthly',
      pattern: '0 4 * * 0#1',
      when: 'first Sunday of the month 04:00 UTC',
      what: 'VACUUM ANALYZE, reindex bloated indexes, move predictions older than 2 years to the archive tables',
    },
    handler: async () => (await import('./handlers/ops.js')).maintenanceOf('monthly'),
  },
  'alarms.evaluate': {
    queue: 'maintenance',
    attempts: 1,
    backoff: { type: 'fixed', delay: 30_000 },
    timeoutMs: 4 * MIN,
    description: 'evaluate the alarms (every 5 minutes)',
    schedule: { id: 'alarms-evaluate', pattern: '*/5 * * * *', when: 'every 5 minutes', what: 'evaluate the alarms' },
    handler: async () => (await import('./handlers/ops.js')).evaluateAlarmsJob,
  },
  'model.drift': {
    queue: 'maintenance',
    attempts: 2,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 30 * MIN,
    description: 'weekly model drift: PSI of each ratio and of the PD, recent predictions vs training data (src/jobs/model-drift.ts)',
    schedule: {
      id: 'model-drift-weekly',
      pattern: '0 5 * * 1',
      when: 'Mondays 05:00 UTC',
      what: 'model drift: PSI of each ratio and of the PD over the last 90 days of predictions vs the training data, per kind and tenant',
    },
    handler: async () => (await import('./handlers/ops.js')).modelDriftJob,
  },
  // Not scheduled: each worker reads the outbox every 10 s (AlertDispatcher) and after each bulk
  // upload; the job exists so an operator or a test can run one dispatch through the queue.
  'alerts.dispatch': {
    queue: 'analytics',
    attempts: 3,
    backoff: { type: 'exponential', delay: 5_000 },
    timeoutMs: 5 * MIN,
    description: 'alerts for watched companies whose prediction changed; queues their webhook deliveries',
    handler: async () => (await import('./handlers/alerts.js')).dispatchAlerts,
  },
  'model.run': {
    queue: 'maintenance',
    attempts: 3,
    backoff: { type: 'fixed', delay: MIN },
    timeoutMs: 6 * HOUR,
    description: 'shadow-score a candidate model or re-score stored predictions under the champion (accunode model shadow|rescore --queue)',
    handler: async () => (await import('./handlers/models.js')).modelRun,
  },
  'webhooks.deliver': {
    queue: 'analytics',
    // Waits of 10 s, 20 s, 40 s … between 8 attempts: about 21 minutes in all.
    attempts: 8,
    backoff: { type: 'exponential', delay: 10_000 },
    timeoutMs: MIN,
    description: 'deliver one HMAC-signed webhook of alerts (retried with back-off)',
    handler: async () => (await import('./handlers/alerts.js')).deliverWebhook,
  },
});

export const JOB_NAMES = Object.keys(JOBS) as JobName[];

export function isJobName(name: string): name is JobName {
  return Object.prototype.hasOwnProperty.call(JOBS, name);
}

/** BullMQ options of a job from its catalogue entry (producers and the scheduler alike). */
export function jobOptions(name: JobName, extra: JobsOptions = {}): JobsOptions {
  const spec = JOBS[name];
  return {
    attempts: spec.attempts,
    backoff: spec.backoff,
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
    ...extra,
  };
}
