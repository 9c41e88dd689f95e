/**
 * `accunode scheduler`: the spec's "beat". Puts the timetable (src/jobs/schedule.ts) into Redis
 * as BullMQ job schedulers. A job scheduler is one record per id; each tick's job gets the
 * deterministic id repeat:<id>:<millis>, so two (or ten) schedulers running at once create one
 * job per tick, and the jobs run on whichever worker takes them. Re-asserted every few minutes
 * (self-healing after a Redis loss); schedulers no longer in the timetable are removed.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig } from '../config/index.js';
import { createLogger, type Logger } from '../logging.js';
import { JOBS, jobOptions, type QueueName } from '../jobs/catalogue.js';
import { SCHEDULE, SCHEDULE_TZ, type ScheduleEntry } from '../jobs/schedule.js';
import { checkPrefix, createQueueConnection } from '../queue/connection.js';
import { openBaseRoot, type BaseRoot } from './root.js';
import { Shutdown } from './shutdown.js';

export interface SchedulerHandle {
  /** Upserts every job scheduler now (also done at start and every `refreshMs`). */
  sync(): Promise<{ upserted: number; removed: string[] }>;
  close(): Promise<void>;
}

export async function startScheduler(
  deps: { connection: Redis; prefix: string; log?: Logger },
  opts: { schedule?: readonly ScheduleEntry[]; refreshMs?: number; removeStale?: boolean } = {},
): Promise<SchedulerHandle> {
  checkPrefix(deps.prefix);
  const schedule = opts.schedule ?? SCHEDULE;
  const queues = new Map<QueueName, Queue>();
  const queueOf = (name: QueueName) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: deps.connection, prefix: deps.prefix });
      queues.set(name, q);
    }
    return q;
  };
  const sync = async () => {
    let upserted = 0;
    for (const e of schedule) {
      const spec = JOBS[e.job];
      await queueOf(spec.queue).upsertJobScheduler(
        e.id,
        { pattern: e.pattern, tz: SCHEDULE_TZ },
        { name: e.job, data: {}, opts: jobOptions(e.job) },
      );
      upserted++;
    }
    const removed: string[] = [];
    if (opts.removeStale !== false) {
      const wanted = new Set(schedule.map((e) => e.id));
      for (const q of new Set(schedule.map((e) => JOBS[e.job].queue))) {
        for (const s of await queueOf(q).getJobSchedulers(0, -1)) {
          if (s.key && !wanted.has(s.key)) {
            await queueOf(q).removeJobScheduler(s.key);
            removed.push(s.key);
          }
        }
      }
    }
    return { upserted, removed };
  };
  const first = await sync();
  deps.log?.info({ schedulers: first.upserted, removed: first.removed }, 'job schedulers in place');
  const timer = setInterval(() => {
    sync().catch((err: Error) => deps.log?.warn({ err: err.message }, 'could not refresh the job schedulers'));
  }, opts.refreshMs ?? 5 * 60_000);
  timer.unref();
  return {
    sync,
    async close() {
      clearInterval(timer);
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

/** The scheduler role on a process's root (`accunode scheduler`, or `accunode up` all-in-one). */
export async function startSchedulerRole(root: BaseRoot): Promise<SchedulerHandle> {
  const connection = createQueueConnection(root.redisUrl, 'accunode-scheduler');
  root.shutdown.add('scheduler redis', () => connection.quit());
  const handle = await startScheduler({ connection, prefix: root.config.QUEUE_PREFIX, log: root.log });
  root.shutdown.add('scheduler', () => handle.close());
  return handle;
}

/** `accunode scheduler`: needs Redis only. */
export async function runScheduler(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const shutdown = new Shutdown(log);
  shutdown.install();
  try {
    const root = await openBaseRoot(config, log, shutdown, 'accunode-scheduler');
    await startSchedulerRole(root);
    process.stdout.write(`AccuNode scheduler running (${SCHEDULE.length} job schedulers, UTC)\n`);
  } catch (err) {
    await shutdown.run();
    throw err;
  }
}
