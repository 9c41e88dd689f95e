// The scheduler: the timetable under an overridden clock (each job fires once at its time; the
// weekly run is skipped on the monthly day), one real maintenance run recorded with its archive
// counts, and two real BullMQ schedulers creating one job per tick.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { firings, SCHEDULE, describeSchedule, type ScheduleEntry } from '../../src/jobs/schedule.js';
import { createProcessor } from '../../src/jobs/processor.js';
import type { JobHandler, OpsJobDeps } from '../../src/jobs/context.js';
import type { JobName } from '../../src/jobs/catalogue.js';
import { opsDepsOf } from '../../src/ops/deps.js';
import type { Config } from '../../src/config/index.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createProducers } from '../../src/queue/producers.js';
import { startScheduler } from '../../src/entrypoints/scheduler.js';
import { loadModels } from '../../src/services/model-store.js';
import { createLogger } from '../../src/logging.js';
import { loadConfig } from '../../src/config/index.js';
import { maintenanceHistory } from '../../src/ops/maintenance.js';

const log = createLogger('silent');
const prefix = `{accunode-t-${randomBytes(4).toString('hex')}}`;
let db: TestDatabase;
let world: World;
const conns: Redis[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  world = await buildWorld(db.adminSql);
});
afterAll(async () => {
  const c = createQueueConnection(TEST_REDIS_URL);
  const p = createProducers(c, prefix);
  for (const q of ['bulk', 'analytics', 'maintenance', 'backups'] as const) await p.queue(q).obliterate({ force: true }).catch(() => {});
  await p.close();
  await c.quit();
  for (const x of conns) await x.quit().catch(() => {});
  await db?.drop();
});

/** The operations jobs' dependencies as the worker builds them (src/ops/deps.ts), on this test's database. */
function jobOps(config: Config, uploadDir: string): OpsJobDeps {
  const redis = createQueueConnection(TEST_REDIS_URL, 'test-ops');
  conns.push(redis);
  const ops = opsDepsOf({ sql: db.adminSql, adminSql: db.adminSql, adminUrl: db.adminUrl, redis, config, log });
  return { ops: { ...ops, adminSql: db.adminSql }, config, uploadDir };
}

function fakeJob(f: { id: string; job: string; at: Date }): Job {
  return { id: `repeat:${f.id}:${f.at.getTime()}`, name: f.job, data: {}, timestamp: f.at.getTime() - 1000, opts: { prevMillis: f.at.getTime() }, attemptsMade: 0 } as unknown as Job;
}

describe('schedule (UTC, overridden clock)', () => {
  it('each job fires once at its time over three months; weekly ANALYZE is skipped on the monthly day, not queued behind it', async () => {
    const from = new Date('2025-01-01T00:00:00Z');
    const to = new Date('2025-04-01T00:00:00Z');
    const all = firings(from, to);
    const calls: Array<{ what: string; at: Date }> = [];
    let clock = from;
    const record: JobHandler<JobName> = async (_deps, { job }) => void calls.push({ what: job.name, at: clock });
    const handlers = { 'maintenance.daily': record, 'maintenance.weekly': record, 'maintenance.monthly': record, 'alarms.evaluate': record, 'backup.daily': record, 'model.drift': record };
    const processor = createProcessor({ sql: db.appSql, engine: await loadModels(), handlers, log, shutdown: new AbortController().signal });
    const results = new Map<string, unknown>();
    for (const f of all) {
      clock = f.at;
      results.set(`${f.id}@${f.at.toISOString()}`, await processor(fakeJob(f)));
    }
    const at = (what: string) => calls.filter((c) => c.what === what).map((c) => c.at.toISOString());
    // Daily jobs: once a day (90 days), at 02:00 and 03:00.
    expect(at('maintenance.daily')).toHaveLength(90);
    expect(at('maintenance.daily').every((t) => t.endsWith('T02:00:00.000Z'))).toBe(true);
    expect(new Set(at('maintenance.daily').map((t) => t.slice(0, 10))).size).toBe(90);
    expect(at('backup.daily')).toHaveLength(90);
    expect(at('backup.daily').every((t) => t.endsWith('T03:00:00.000Z'))).toBe(true);
    // Monthly: the first Sunday of each month, 04:00.
    expect(at('maintenance.monthly')).toEqual(['2025-01-05T04:00:00.000Z', '2025-02-02T04:00:00.000Z', '2025-03-02T04:00:00.000Z']);
    // Weekly: every other Sunday 04:00; the first Sundays were ticks that did nothing.
    const weekly = at('maintenance.weekly');
    expect(weekly).toHaveLength(13 - 3);
    expect(weekly.some((t) => at('maintenance.monthly').includes(t))).toBe(false);
    expect(results.get('maintenance-weekly@2025-02-02T04:00:00.000Z')).toMatchObject({ outcome: 'skipped', reason: expect.stringMatching(/monthly VACUUM ANALYZE/) });
    // Alarms: every 5 minutes.
    expect(at('alarms.evaluate')).toHaveLength(90 * 24 * 12);
    expect(new Set(at('alarms.evaluate')).size).toBe(90 * 24 * 12);
    // Model drift: Mondays 05:00 (13 Mondays from January to March 2025).
    expect(at('model.drift')).toHaveLength(13);
    expect(at('model.drift').every((t) => new Date(t).getUTCDay() === 1 && t.endsWith('T05:00:00.000Z'))).toBe(true);
    // The listing shows the next tick that runs.
    const listed = describeSchedule(new Date('2025-01-31T12:00:00Z'));
    expect(listed.find((r) => r.id === 'maintenance-weekly')!.next_run).toBe('2025-02-09T04:00:00.000Z');
    expect(listed.find((r) => r.id === 'maintenance-monthly')!.next_run).toBe('2025-02-02T04:00:00.000Z');
  });

  it('a monthly run through the real maintenance service is recorded, and archiving moves rows with matching counts', async () => {
    const u = world.users.omA1;
    const company = world.companies.persA1;
    // 120 old predictions (3 years ago) and 5 recent ones.
    await db.adminSql`
      insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, created_at)
      select ${company}, ${u.id}, (1800 + g)::text, 0.01, 'LOW', now() - interval '3 years' from generate_series(1, 120) g`;
    await db.adminSql`
      insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level)
      select ${company}, ${u.id}, (1950 + g)::text, 0.01, 'LOW' from generate_series(1, 5) g`;
    const [before] = await db.adminSql<[{ live: number; archived: number }]>`
      select (select count(*)::int from annual_predictions) as live, (select count(*)::int from annual_predictions_archive) as archived`;
    const config = loadConfig({ MAINTENANCE_BATCH_SIZE: '50' });
    const processor = createProcessor({ sql: db.appSql, engine: await loadModels(), ops: jobOps(config, os.tmpdir()), log, shutdown: new AbortController().signal });
    const res = (await processor(fakeJob({ id: 'maintenance-monthly', job: 'maintenance.monthly', at: new Date('2025-02-02T04:00:00Z') }))) as {
      outcome: string;
      steps: Array<{ step: string; rows: number }>;
    };
    expect(res.outcome).toBe('succeeded');
    const archiveStep = res.steps.find((s) => s.step === 'archive_predictions')!;
    const [after] = await db.adminSql<[{ live: number; archived: number }]>`
      select (select count(*)::int from annual_predictions) as live, (select count(*)::int from annual_predictions_archive) as archived`;
    const moved = before.live - after.live;
    expect(moved).toBeGreaterThanOrEqual(120);
    expect(after.archived - before.archived).toBe(moved);
    expect(archiveStep.rows).toBe(moved);
    const runs = await db.adminSql<{ kind: string; outcome: string; finished_at: Date | null }[]>`select kind, outcome, finished_at from maintenance_runs order by id`;
    expect(runs).toEqual([expect.objectContaining({ kind: 'monthly', outcome: 'succeeded', finished_at: expect.any(Date) })]);
  }, 60_000);

  it('the daily run deletes upload files that no queued or running job will read, and says so in maintenance history', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-sweep-'));
    const u = world.users.omA1;
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    const files: Record<string, string | null> = { 'queued.csv': 'queued', 'running.csv': 'running', 'done.csv': 'completed', 'failed.xlsx': 'failed', 'cancelled.csv': 'cancelled', 'orphan.csv': null, 'fresh.csv': null };
    for (const [name, status] of Object.entries(files)) {
      const file = path.join(dir, name);
      writeFileSync(file, 'company_symbol\n');
      // Old enough for the sweep, except the upload that may still be on its way to a job row.
      if (name !== 'fresh.csv') utimesSync(file, twoHoursAgo, twoHoursAgo);
      if (status)
        await db.adminSql`insert into bulk_upload_jobs (user_id, organization_id, tenant_id, prediction_type, access_level, status, file_name, file_path)
                          values (${u.id}, ${u.org}, ${u.tenant}, 'annual', 'organization', ${status}, ${name}, ${file})`;
    }
    const config = loadConfig({});
    const processor = createProcessor({ sql: db.appSql, engine: await loadModels(), ops: jobOps(config, dir), log, shutdown: new AbortController().signal });
    type Run = { outcome: string; steps: Array<{ step: string; outcome: string; rows: number; detail: Record<string, unknown> }> };
    const daily = (dryRun: boolean) => processor({ ...fakeJob({ id: 'maintenance-daily', job: 'maintenance.daily', at: new Date('2025-02-03T02:00:00Z') }), data: { dryRun } } as Job) as Promise<Run>;

    const dry = await daily(true);
    expect(dry.steps.find((s) => s.step === 'sweep_uploads')).toMatchObject({ outcome: 'would', rows: 4 });
    expect(readdirSync(dir)).toHaveLength(7);

    const run = await daily(false);
    expect(run.outcome).toBe('succeeded');
    const sweep = run.steps.find((s) => s.step === 'sweep_uploads')!;
    expect(sweep).toMatchObject({ outcome: 'done', rows: 4, detail: expect.objectContaining({ removed: 4, kept_for_live_jobs: 2, kept_younger_than_1h: 1 }) });
    expect(readdirSync(dir).sort()).toEqual(['fresh.csv', 'queued.csv', 'running.csv']);
    const [latest] = await maintenanceHistory(db.adminSql, { limit: 1 });
    expect(latest).toMatchObject({ kind: 'daily', dry_run: false, outcome: 'succeeded' });
    expect(latest!.steps.find((s) => s.step === 'sweep_uploads')).toMatchObject({ outcome: 'done', rows: 4 });
  }, 60_000);
});

describe('BullMQ job schedulers', () => {
  it('two schedulers running at once create one job per tick', async () => {
    const c1 = createQueueConnection(TEST_REDIS_URL, 's1');
    const c2 = createQueueConnection(TEST_REDIS_URL, 's2');
    const cw = createQueueConnection(TEST_REDIS_URL, 'sw');
    conns.push(c1, c2, cw);
    // The real timetable from two instances: one scheduler record per id.
    const s1 = await startScheduler({ connection: c1, prefix });
    const s2 = await startScheduler({ connection: c2, prefix });
    const p = createProducers(cw, prefix);
    const ids = (await p.queue('maintenance').getJobSchedulers(0, -1)).map((s) => s.key).sort();
    expect(ids).toEqual(SCHEDULE.filter((e) => e.job !== 'backup.daily').map((e) => e.id).sort());
    expect((await p.queue('backups').getJobSchedulers(0, -1)).map((s) => s.key)).toEqual(['backup-daily']);
    await s1.close();
    await s2.close();
    await p.close();

    // A every-second test schedule on its own prefix, from two schedulers, with a worker.
    const tickPrefix = `${prefix}-tick`;
    const every: ScheduleEntry[] = [{ id: 'tick', job: 'alarms.evaluate', pattern: '* * * * * *', when: 'every second', what: 'test' }];
    const a = await startScheduler({ connection: c1, prefix: tickPrefix }, { schedule: every });
    const b = await startScheduler({ connection: c2, prefix: tickPrefix }, { schedule: every });
    const seen: string[] = [];
    const w = new Worker('maintenance', async (job) => void seen.push(job.id!), { connection: cw, prefix: tickPrefix });
    await new Promise((r) => setTimeout(r, 3500));
    await a.sync();
    await b.sync();
    await new Promise((r) => setTimeout(r, 1200));
    await a.close();
    await b.close();
    await w.close();
    const ticks = seen.map((id) => Number(/:(\d+)$/.exec(id)![1]));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ticks).size).toBe(ticks.length);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBeGreaterThanOrEqual(1000);
    const cp = createProducers(cw, tickPrefix);
    await cp.queue('maintenance').obliterate({ force: true });
    await cp.close();
  }, 30_000);
});
