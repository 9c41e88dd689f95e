/**
 * Enqueueing, through the job catalogue: the queue, attempts, backoff and retention come from
 * the job's entry, so callers only name the job and give its payload.
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOBS, QUEUE_NAMES, jobOptions, type JobName, type JobPayloads, type QueueName } from '../jobs/catalogue.js';
import { checkPrefix, DEFAULT_QUEUE_PREFIX } from './connection.js';

export interface Producers {
  readonly prefix: string;
  queue(name: QueueName): Queue;
  enqueue<N extends JobName>(name: N, payload: JobPayloads[N], opts?: Pick<JobsOptions, 'jobId' | 'delay' | 'priority'>): Promise<string>;
  /** Removes a job that has not started (waiting/delayed); false when it is active or gone. */
  removeIfWaiting(queue: QueueName, jobId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The queue Redis cannot take a job now; the caller answers 503 with Retry-After. */
class QueueUnavailableError extends Error {
  constructor(readonly retryAfterSeconds: number, cause?: string) {
    super(`the job queue (Redis) is unavailable${cause ? `: ${cause}` : ''}`);
  }
}

interface ProducerOptions {
  /** How long an enqueue waits for a reconnecting queue Redis before giving up (default 2 s). */
  readyWaitMs?: number;
  /** How long one enqueue may take once sent (default 5 s): a queue client never fails a command by itself. */
  addTimeoutMs?: number;
}

/**
 * The queue client waits out an outage (maxRetriesPerRequest: null, as BullMQ needs), so a
 * request that enqueues would hang until Redis came back: fail fast instead.
 */
async function whenReady(connection: Redis, ms: number): Promise<void> {
  if (connection.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      connection.off('ready', onReady);
      reject(new QueueUnavailableError(2, `connection ${connection.status}`));
    }, ms);
    connection.once('ready', onReady);
  });
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(2, `no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export function createProducers(connection: Redis, prefix: string = DEFAULT_QUEUE_PREFIX, opts: ProducerOptions = {}): Producers {
  checkPrefix(prefix);
  const queues = new Map<QueueName, Queue>();
  const queue = (name: QueueName): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection, prefix });
      queues.set(name, q);
    }
    return q;
  };
  return {
    prefix,
    queue,
    async enqueue(name, payload, jobOpts = {}) {
      await whenReady(connection, opts.readyWaitMs ?? 2000);
      const add = queue(JOBS[name].queue).add(name, payload, jobOptions(name, jobOpts));
      // A late answer after we gave up is harmless: the job id is the upload's row id, and the
      // caller has marked that row failed.
      add.catch(() => {});
      const job = await within(add, opts.addTimeoutMs ?? 5000);
      return job.id!;
    },
    async removeIfWaiting(q, jobId) {
      const job = await queue(q).getJob(jobId);
      if (!job) return false;
      const state = await job.getState();
      if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
      await job.remove();
      return true;
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

export { QUEUE_NAMES };

/** Queues a bulk_upload_jobs row; the BullMQ job id is the row id, so queueing twice is a no-op. */
export async function enqueueBulk(producers: Producers, job: { jobId: string; userId: string }): Promise<string> {
  return producers.enqueue('bulk.predict', job, { jobId: job.jobId });
}
