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

export function createProducers(connection: Redis, prefix: string = DEFAULT_QUEUE_PREFIX): Producers {
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
    async enqueue(name, payload, opts = {}) {
      const job = await queue(JOBS[name].queue).add(name, payload, jobOptions(name, opts));
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
