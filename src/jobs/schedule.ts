/**
 * The scheduler's timetable (UTC), in the spec's windows, as plain data plus pure helpers, so
 * `accunode scheduler list`, the BullMQ job schedulers and the tests read one definition.
 *
 * BullMQ job schedulers (upsertJobScheduler) keep one definition per id in Redis and create
 * each tick's job with a deterministic id (repeat:<id>:<millis>), so any number of scheduler
 * processes produce exactly one job per tick.
 */
import { CronExpressionParser } from 'cron-parser';
import { JOBS, type JobName } from './catalogue.js';

export const SCHEDULE_TZ = 'UTC';

export interface ScheduleEntry {
  /** BullMQ job scheduler id. */
  id: string;
  job: JobName;
  /** Cron pattern, evaluated in UTC. */
  pattern: string;
  when: string;
  what: string;
}

export const SCHEDULE: readonly ScheduleEntry[] = Object.freeze([
  {
    id: 'maintenance-daily',
    job: 'maintenance.daily',
    pattern: '0 2 * * *',
    when: 'daily 02:00 UTC',
    what: 'ANALYZE, delete sessions idle 30 days, delete audit logs older than 1 year, delete bulk upload files no queued or running job will read',
  },
  {
    id: 'backup-daily',
    job: 'backup.daily',
    pattern: '0 3 * * *',
    when: 'daily 03:00 UTC (backup window 03:00-04:00)',
    what: 'daily backup',
  },
  {
    id: 'maintenance-weekly',
    job: 'maintenance.weekly',
    pattern: '0 4 * * 0',
    when: 'Sundays 04:00 UTC, except the first Sunday of the month',
    what: 'weekly ANALYZE, bloat and unused-index reports (skipped when the monthly VACUUM ANALYZE runs)',
  },
  {
    id: 'maintenance-monthly',
    job: 'maintenance.monthly',
    pattern: '0 4 * * 0#1',
    when: 'first Sunday of the month 04:00 UTC',
    what: 'VACUUM ANALYZE, reindex bloated indexes, move predictions older than 2 years to the archive tables',
  },
  {
    id: 'alarms-evaluate',
    job: 'alarms.evaluate',
    pattern: '*/5 * * * *',
    when: 'every 5 minutes',
    what: 'evaluate the alarms',
  },
  {
    id: 'model-drift-weekly',
    job: 'model.drift',
    pattern: '0 5 * * 1',
    when: 'Mondays 05:00 UTC',
    what: 'model drift: PSI of each ratio and of the PD over the last 90 days of predictions vs the training data, per kind and tenant',
  },
]);

/** The next `count` ticks of a pattern strictly after `from`. */
export function nextTicks(pattern: string, from: Date, count: number): Date[] {
  const it = CronExpressionParser.parse(pattern, { currentDate: from, tz: SCHEDULE_TZ });
  const out: Date[] = [];
  for (let i = 0; i < count; i++) out.push(it.next().toDate());
  return out;
}

/** Whether a tick of this job does nothing, and why (the weekly run on the monthly day). */
export function skipReason(job: JobName, tick: Date): string | null {
  if (job === 'maintenance.weekly' && tick.getUTCDay() === 0 && tick.getUTCDate() <= 7)
    return 'first Sunday of the month: the monthly VACUUM ANALYZE covers the weekly ANALYZE';
  return null;
}

export interface Firing {
  id: string;
  job: JobName;
  at: Date;
  skipped: string | null;
}

/** Every tick in (from, to], in time order, with the skip rule applied: what a clock would see. */
export function firings(from: Date, to: Date, schedule: readonly ScheduleEntry[] = SCHEDULE): Firing[] {
  const out: Firing[] = [];
  for (const e of schedule) {
    const it = CronExpressionParser.parse(e.pattern, { currentDate: from, endDate: to, tz: SCHEDULE_TZ });
    while (it.hasNext()) {
      const at = it.next().toDate();
      out.push({ id: e.id, job: e.job, at, skipped: skipReason(e.job, at) });
    }
  }
  return out.sort((a, b) => a.at.getTime() - b.at.getTime() || a.id.localeCompare(b.id));
}

/** For `accunode scheduler list`. */
export function describeSchedule(now: Date = new Date(), schedule: readonly ScheduleEntry[] = SCHEDULE) {
  return schedule.map((e) => {
    let next = nextTicks(e.pattern, now, 1)[0]!;
    // Show the next tick that actually runs.
    for (let i = 0; i < 3 && skipReason(e.job, next); i++) next = nextTicks(e.pattern, next, 1)[0]!;
    return { id: e.id, job: e.job, queue: JOBS[e.job].queue, pattern: e.pattern, timezone: SCHEDULE_TZ, when: e.when, what: e.what, next_run: next.toISOString() };
  });
}

/** The tick a scheduler-made job belongs to: its id is repeat:<scheduler>:<millis>. */
export function tickOf(job: { id?: string | undefined; timestamp: number; opts: { delay?: number; prevMillis?: number } }): Date {
  if (typeof job.opts.prevMillis === 'number') return new Date(job.opts.prevMillis);
  const m = /:(\d{10,})$/.exec(job.id ?? '');
  if (m) return new Date(Number(m[1]));
  return new Date(job.timestamp + (job.opts.delay ?? 0));
}
