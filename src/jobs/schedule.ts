/**
 * The scheduler's timetable (UTC), in the spec's windows: the `schedule` of each catalogue entry
 * (src/jobs/catalogue.ts), plus pure helpers, so `accunode scheduler list`, the BullMQ job
 * schedulers and the tests read one definition.
 *
 * BullMQ job schedulers (upsertJobScheduler) keep one definition per id in Redis and create
 * each tick's job with a deterministic id (repeat:<id>:<millis>), so any number of scheduler
 * processes produce exactly one job per tick.
 */
import { CronExpressionParser } from 'cron-parser';
import { JOBS, JOB_NAMES, type JobName, type JobSchedule } from './catalogue.js';

export const SCHEDULE_TZ = 'UTC';

export interface ScheduleEntry extends JobSchedule {
  job: JobName;
}

/** The catalogue's scheduled jobs (each entry's `schedule`), in catalogue order. */
export const SCHEDULE: readonly ScheduleEntry[] = Object.freeze(
  JOB_NAMES.flatMap((job) => {
    const s = JOBS[job].schedule;
    return s ? [{ ...s, job }] : [];
  }),
);

/** The next `count` ticks of a pattern strictly after `from`. */
function nextTicks(pattern: string, from: Date, count: number): Date[] {
  const it = CronExpressionParser.parse(pattern, { currentDate: from, tz: SCHEDULE_TZ });
  const out: Date[] = [];
  for (let i = 0; i < count; i++) out.push(it.next().toDate());
  return out;
}

/** Whether a tick of this job does nothing, and why (the catalogue entry's skip rule). */
export function skipReason(job: JobName, tick: Date): string | null {
  return JOBS[job].skip?.(tick) ?? null;
}

interface Firing {
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
