/**
 * The job catalogue: every job the system queues, with its payload type, queue, retry policy
 * and timeout. Producers, workers and the scheduler all go through it, so a job name, its
 * payload and its queue can never disagree.
 */
import type { JobsOptions } from 'bullmq';

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
  /** Recompute cached analytics aggregates. */
  'analytics.refresh': { period?: 'day' | 'week' | 'month' };
  'maintenance.daily': ScheduledPayload;
  'maintenance.weekly': ScheduledPayload;
  'maintenance.monthly': ScheduledPayload;
  'alarms.evaluate': ScheduledPayload;
  'backup.daily': ScheduledPayload;
  /** Alerts from the outbox of changed predictions of watched companies (jobs/alerts.ts). */
  'alerts.dispatch': ScheduledPayload;
  /** One signed webhook delivery of alerts. */
  'webhooks.deliver': { deliveryId: string };
  'model.drift': ScheduledPayload;
}
export type JobName = keyof JobPayloads;

export interface JobSpec {
  queue: QueueName;
  attempts: number;
  backoff: { type: 'exponential' | 'fixed'; delay: number };
  /** The handler is aborted after this long (BullMQ has no job timeout of its own). */
  timeoutMs: number;
  description: string;
}

const MIN = 60_000;
const HOUR = 60 * MIN;

export const JOBS: Readonly<Record<JobName, JobSpec>> = Object.freeze({
  'bulk.predict': {
    queue: 'bulk',
    attempts: 3,
    backoff: { type: 'exponential', delay: 10_000 },
    timeoutMs: 2 * HOUR,
    description: 'bulk prediction upload: parse, validate, predict, upsert (idempotent)',
  },
  'analytics.refresh': {
    queue: 'analytics',
    attempts: 3,
    backoff: { type: 'exponential', delay: 30_000 },
    timeoutMs: 10 * MIN,
    description: 'recompute cached analytics aggregates',
  },
  'maintenance.daily': {
    queue: 'maintenance',
    attempts: 2,
    backoff: { type: 'fixed', delay: 5 * MIN },
    timeoutMs: 2 * HOUR,
    description: 'daily maintenance: statistics, sessions idle 30 days, audit logs older than 1 year, orphaned bulk upload files',
  },
  'maintenance.weekly': {
    queue: 'maintenance',
    attempts: 2,
    backoff: { type: 'fixed', delay: 5 * MIN },
    timeoutMs: 2 * HOUR,
    description: 'weekly ANALYZE and bloat/unused-index reports (skipped on the monthly day)',
  },
  'maintenance.monthly': {
    queue: 'maintenance',
    attempts: 2,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 6 * HOUR,
    description: 'monthly VACUUM ANALYZE, reindex of bloated indexes, archive of predictions older than 2 years',
  },
  'alarms.evaluate': {
    queue: 'maintenance',
    attempts: 1,
    backoff: { type: 'fixed', delay: 30_000 },
    timeoutMs: 4 * MIN,
    description: 'evaluate the alarms (every 5 minutes)',
  },
  'backup.daily': {
    queue: 'backups',
    attempts: 2,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 55 * MIN,
    description: 'daily backup in the 03:00-04:00 UTC window',
  },
  'alerts.dispatch': {
    queue: 'analytics',
    attempts: 3,
    backoff: { type: 'exponential', delay: 5_000 },
    timeoutMs: 5 * MIN,
    description: 'alerts for watched companies whose prediction changed; queues their webhook deliveries',
  },
  'webhooks.deliver': {
    queue: 'analytics',
    // Waits of 10 s, 20 s, 40 s … between 8 attempts: about 21 minutes in all.
    attempts: 8,
    backoff: { type: 'exponential', delay: 10_000 },
    timeoutMs: MIN,
    description: 'deliver one HMAC-signed webhook of alerts (retried with back-off)',
  },
  'model.drift': {
    queue: 'maintenance',
    attempts: 2,
    backoff: { type: 'fixed', delay: 10 * MIN },
    timeoutMs: 30 * MIN,
    description: 'weekly model drift: PSI of each ratio and of the PD, recent predictions vs training data (src/jobs/model-drift.ts)',
  },
});

export const JOB_NAMES = Object.keys(JOBS) as JobName[];

export function jobsOfQueue(queue: QueueName): JobName[] {
  return JOB_NAMES.filter((n) => JOBS[n].queue === queue);
}

export function isJobName(name: string): name is JobName {
  return Object.prototype.hasOwnProperty.call(JOBS, name);
}

/** BullMQ options of a job from its catalogue entry. */
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
