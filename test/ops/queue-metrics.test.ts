// accunode_queue_depth and accunode_job_duration_seconds (ops/monitoring/queue-metrics.ts): read from real
// BullMQ queues on the test Redis, with a worker of its own finishing and failing jobs.
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { queueMetrics } from '../../src/ops/monitoring/queue-metrics.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { TEST_REDIS_URL } from '../helpers/env.js';

const prefix = `{accunode-t-${randomBytes(4).toString('hex')}}`;
const connection = createQueueConnection(TEST_REDIS_URL, 'test-queue-metrics');
const queues = new Map<string, Queue>();
const queue = (name: string) => {
  let q = queues.get(name);
  if (!q) {
    q = new Queue(name, { connection, prefix });
    queues.set(name, q);
  }
  return q;
};

beforeAll(async () => {
  await connection.ping();
});
afterAll(async () => {
  for (const q of queues.values()) await q.obliterate({ force: true }).catch(() => {});
  for (const q of queues.values()) await q.close();
  await connection.quit();
});

type Sample = { value: number; labels: Record<string, string | number>; metricName?: string };
async function series(m: ReturnType<typeof createMetrics>, name: string): Promise<Sample[]> {
  return (await m.registry.getSingleMetric(name)!.get()).values as Sample[];
}

describe('queue metrics', () => {
  it('count the jobs by state and time the jobs finished since the last reading', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const source = queueMetrics({ names: ['analytics', 'maintenance'], queue });
    // Before this process: one job already done is not counted as a new run.
    await queue('analytics').add('before', {});
    const early = new Worker('analytics', async () => 'ok', { connection, prefix, autorun: true });
    await new Promise<void>((r) => early.once('completed', () => r()));
    await early.close();
    await source.collect(m);
    expect((await series(m, 'accunode_job_duration_seconds')).filter((v) => v.metricName?.endsWith('_count'))).toEqual([]);

    await queue('maintenance').add('waits', {});
    await queue('maintenance').add('waits', {});
    await queue('maintenance').add('later', {}, { delay: 3_600_000 });
    await queue('analytics').add('slow', { ms: 120 });
    await queue('analytics').add('broken', {}, { attempts: 1 });
    const w = new Worker('analytics', async (job) => {
      if (job.name === 'broken') throw new Error('nope');
      await new Promise((r) => setTimeout(r, (job.data as { ms: number }).ms));
      return 'ok';
    }, { connection, prefix });
    let finished = 0;
    const done = new Promise<void>((resolve) => {
      const count = () => {
        if (++finished === 2) resolve();
      };
      w.on('completed', count);
      w.on('failed', count);
    });
    await done;
    await w.close();
    await source.collect(m);

    const depth = await series(m, 'accunode_queue_depth');
    const d = (queueName: string, state: string) => depth.find((v) => v.labels.queue === queueName && v.labels.state === state)?.value;
    expect(d('maintenance', 'waiting')).toBe(2);
    expect(d('maintenance', 'delayed')).toBe(1);
    expect(d('maintenance', 'active')).toBe(0);
    expect(d('analytics', 'failed')).toBe(1);

    const durations = await series(m, 'accunode_job_duration_seconds');
    const countOf = (job: string, outcome: string) =>
      durations.find((v) => v.metricName === 'accunode_job_duration_seconds_count' && v.labels.job === job && v.labels.outcome === outcome)?.value;
    const sumOf = (job: string) => durations.find((v) => v.metricName === 'accunode_job_duration_seconds_sum' && v.labels.job === job)?.value ?? 0;
    expect(countOf('slow', 'completed')).toBe(1);
    expect(countOf('broken', 'failed')).toBe(1);
    expect(countOf('before', 'completed')).toBeUndefined();
    expect(sumOf('slow')).toBeGreaterThanOrEqual(0.1);

    // A second reading with nothing new finished adds nothing.
    await source.collect(m);
    const again = await series(m, 'accunode_job_duration_seconds');
    expect(again.find((v) => v.metricName === 'accunode_job_duration_seconds_count' && v.labels.job === 'slow')?.value).toBe(1);
  });
});
