// Queue depth and job run times for /metrics, read from the queues themselves (BullMQ's Redis),
// because the jobs run in worker processes that /metrics does not serve: the api's
// StatsCollector asks every queue for its counts, and for the jobs finished since it last asked,
// whose run time BullMQ keeps (processedOn to finishedOn).
import type { Job, Queue } from 'bullmq';
import type { AppMetrics } from '../../metrics.js';

interface QueueSource {
  names: readonly string[];
  queue(name: string): Pick<Queue, 'getJobCounts' | 'getJobs'>;
}

/** Jobs read per queue and outcome per collection; more finishing between two is a lost sample. */
const FINISHED_PER_READ = 200;

export interface QueueMetrics {
  collect(m: AppMetrics): Promise<void>;
}

/**
 * The first collection only notes where the queues stand: the jobs finished before this process
 * started were counted by whichever process served /metrics then.
 */
export function queueMetrics(source: QueueSource): QueueMetrics {
  const seen = new Map<string, number>();
  return {
    async collect(m) {
      await Promise.all(
        source.names.map(async (name) => {
          const q = source.queue(name);
          const c = await q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
          m.queueDepth.set({ queue: name, state: 'waiting' }, (c.waiting ?? 0) + (c.prioritized ?? 0));
          for (const state of ['active', 'delayed', 'failed'] as const) m.queueDepth.set({ queue: name, state }, c[state] ?? 0);
          for (const outcome of ['completed', 'failed'] as const) {
            const key = `${name}:${outcome}`;
            const since = seen.get(key);
            // Newest first (the finished sets are ordered by finishing time).
            const jobs = (await q.getJobs([outcome], 0, FINISHED_PER_READ - 1, false)) as Job[];
            let newest = since ?? 0;
            for (const j of jobs) {
              if (!j?.finishedOn) continue;
              newest = Math.max(newest, j.finishedOn);
              if (since === undefined || j.finishedOn <= since || !j.processedOn) continue;
              m.jobDuration.observe({ queue: name, job: j.name, outcome }, Math.max(0, j.finishedOn - j.processedOn) / 1000);
            }
            seen.set(key, newest);
          }
        }),
      );
    },
  };
}
