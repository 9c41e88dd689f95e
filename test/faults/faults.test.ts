// Faults under load (npm run test:faults): a deployment of our own (PostgreSQL cluster,
// redis-servers with AOF, real `accunode api` and `accunode worker` processes) is broken on
// purpose while a bounded load runs. Each scenario prints what was acknowledged and what was
// lost (must be nothing), and the API must recover without a restart.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createBackup as CreateBackup } from '../../src/ops/backup/backup.js';
import { makeRows, toCsv } from '../bulk/helpers.js';
import {
  AofRedis, deploymentEnv, login, lostPredictions, pgCtl, readyStatus, sleep, startDatabase, startLoad, startRole, uploadBulk, waitFor, waitJobs,
  type Cluster, type RoleProcess,
} from '../scale/harness.js';

let db: Cluster;
let redis: AofRedis;
let cache: AofRedis;
let api: RoleProcess;
let worker: RoleProcess;
let env: Record<string, string>;
let token: string;
const results: Record<string, unknown> = {};

beforeAll(async () => {
  db = await startDatabase();
  redis = await AofRedis.start();
  cache = await AofRedis.start(['--appendonly', 'no', '--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
  env = deploymentEnv(db, redis.url, { CACHE_REDIS_URL: cache.url, WORKER_QUEUES: 'bulk', BULK_CHUNK_ROWS: '500' });
  [api, worker] = await Promise.all([startRole('api', env), startRole('worker', env)]);
  token = await login(api.base, 'omA1');
}, 180_000);

afterAll(async () => {
  console.log('faults:', JSON.stringify(results, null, 2));
  await api?.stop();
  await worker?.stop();
  await redis?.destroy();
  await cache?.destroy();
  await db?.close();
});

function csv(n: number, seed: number, prefix: string): string {
  return toCsv('annual', makeRows('annual', n, { seed, symbolPrefix: prefix }));
}

async function storedRows(userId: string, prefix: string): Promise<{ rows: number; dupSymbols: number }> {
  const [r] = await db.adminSql<[{ rows: number; dups: number }]>`
    select count(*)::int as rows,
      (select count(*)::int from (select c.symbol, p.reporting_year from annual_predictions p join companies c on c.id = p.company_id
         where c.created_by = ${userId} and c.symbol like ${prefix + '%'} group by 1, 2 having count(*) > 1) d) as dups
    from annual_predictions p join companies c on c.id = p.company_id where c.created_by = ${userId} and c.symbol like ${prefix + '%'}`;
  return { rows: r.rows, dupSymbols: r.dups };
}

describe('faults under load', () => {
  it('Redis (sessions, rate limits, queues) restarted under load: nothing acknowledged lost; /health/ready 503 while down, 200 after, no restart', async () => {
    const load = startLoad({ bases: [api.base], token, concurrency: 6, symbolPrefix: 'RR', maxSeconds: 60 });
    await sleep(1500);
    const before = await Promise.all([1, 2, 3].map((i) => uploadBulk(api.base, token, csv(400, 100 + i, `RB${i}`))));
    await redis.stop('SIGTERM');
    const downAt = Date.now();
    const readyDown = await waitFor(async () => (await readyStatus(api.base)) === 503, 10_000, '/health/ready 503 while Redis is down');
    const duringOutage = await uploadBulk(api.base, token, csv(50, 199, 'RBX'));
    await sleep(2000);
    await redis.start();
    const downMs = Date.now() - downAt;
    await waitFor(async () => (await readyStatus(api.base)) === 200, 30_000, '/health/ready 200 after Redis is back');
    const after = await Promise.all([4, 5].map((i) => uploadBulk(api.base, token, csv(400, 100 + i, `RB${i}`))));
    await sleep(2000);
    const rep = await load.stop();
    const acked = [...before, ...after, duringOutage].filter((x): x is string => !!x);
    const jobs = await waitJobs(db.adminSql, acked, 90_000);
    const stored: Record<string, number> = {};
    for (let i = 1; i <= 5; i++) stored[`RB${i}`] = (await storedRows(db.world.users.omA1.id, `RB${i}`)).rows;
    // Sessions survive through the database: drop every cached session, the token still works.
    const r = new Redis(redis.url);
    const sessionKeys = await r.keys('session:*');
    if (sessionKeys.length) await r.del(...sessionKeys);
    const me = await fetch(`${api.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    // Rate limits recover: counting resumes in the restarted Redis.
    const rl = await r.keys('rate_limit:*');
    await r.quit();
    const lost = await lostPredictions(db.adminSql, rep.acknowledged);
    results.redis_restart = {
      load: { requests: rep.requests, ok: rep.ok, errors: rep.errors, acknowledged_predictions: rep.acknowledged.length, seconds: rep.seconds, session_401s: rep.sessionLost },
      redis_down_ms: downMs,
      ready_while_down: readyDown ? 503 : 'not seen',
      bulk_jobs_acknowledged: acked.length,
      bulk_jobs: jobs.map((j) => j.status),
      lost_predictions: lost,
      lost_bulk_jobs: jobs.filter((j) => j.status !== 'completed').length,
      session_after_cache_flush: me.status,
      rate_limit_keys_after_restart: rl.length,
    };
    expect(lost).toBe(0);
    expect(rep.sessionLost).toBe(0);
    expect(acked.length).toBeGreaterThanOrEqual(5);
    expect(jobs.every((j) => j.status === 'completed')).toBe(true);
    for (let i = 1; i <= 5; i++) if ((i <= 3 && before[i - 1]) || (i > 3 && after[i - 4])) expect(stored[`RB${i}`]).toBe(400);
    expect(me.status).toBe(200);
    expect(rl.length).toBeGreaterThan(0);
  }, 180_000);

  it('cache Redis down for 30 s under load: every read and write keeps working', async () => {
    const warm = startLoad({ bases: [api.base], token, concurrency: 4, symbolPrefix: 'CW', maxSeconds: 5 });
    await sleep(2000);
    await warm.stop();
    await cache.stop('SIGKILL');
    const load = startLoad({ bases: [api.base], token, concurrency: 6, symbolPrefix: 'CD', maxSeconds: 30 });
    const t0 = Date.now();
    const ready = await readyStatus(api.base);
    await sleep(30_000 - (Date.now() - t0));
    const rep = await load.stop();
    await cache.start();
    const lost = await lostPredictions(db.adminSql, rep.acknowledged);
    results.cache_down_30s = { requests: rep.requests, ok: rep.ok, errors: rep.errors, acknowledged_predictions: rep.acknowledged.length, lost_predictions: lost, seconds: rep.seconds, ready_while_cache_down: ready };
    expect(rep.errors).toEqual({});
    expect(lost).toBe(0);
    expect(rep.requests).toBeGreaterThan(100);
  }, 120_000);

  it('worker SIGKILLed during a bulk upload under load: a new worker finishes it; every row stored exactly once', async () => {
    const load = startLoad({ bases: [api.base], token, concurrency: 4, symbolPrefix: 'WK', maxSeconds: 90 });
    const jobId = await uploadBulk(api.base, token, csv(20_000, 300, 'KW'));
    expect(jobId).toBeTruthy();
    await waitFor(async () => {
      const [j] = await db.adminSql<[{ chunks_committed: number }?]>`select chunks_committed from bulk_upload_jobs where id = ${jobId!}`;
      return j && j.chunks_committed >= 3;
    }, 60_000, 'chunks committed before the kill', 50);
    await worker.stop('SIGKILL');
    const [mid] = await db.adminSql<[{ rows_processed: number; status: string }]>`select rows_processed, status from bulk_upload_jobs where id = ${jobId!}`;
    worker = await startRole('worker', env);
    const [job] = await waitJobs(db.adminSql, [jobId!], 90_000);
    const rep = await load.stop();
    const stored = await storedRows(db.world.users.omA1.id, 'KW');
    const lost = await lostPredictions(db.adminSql, rep.acknowledged);
    results.worker_sigkill = { rows_processed_at_kill: mid.rows_processed, status_at_kill: mid.status, job, stored_rows: stored.rows, duplicate_rows: stored.dupSymbols, load: { requests: rep.requests, errors: rep.errors, lost_predictions: lost } };
    expect(mid.rows_processed).toBeLessThan(20_000);
    expect(job).toMatchObject({ status: 'completed', rows_succeeded: 20_000 });
    expect(job!.attempts).toBeGreaterThanOrEqual(2);
    expect(stored).toEqual({ rows: 20_000, dupSymbols: 0 });
    expect(lost).toBe(0);
    expect(rep.errors).toEqual({});
  }, 180_000);

  it('PostgreSQL restarted under load: /health/ready 503 while down, 200 again by itself; nothing acknowledged lost', async () => {
    const load = startLoad({ bases: [api.base], token, concurrency: 6, symbolPrefix: 'PG', maxSeconds: 60, timeoutMs: 15_000 });
    await sleep(2000);
    await pgCtl(db.pg, 'stop-fast');
    const downAt = Date.now();
    const seen: number[] = [];
    let readyDown: boolean;
    try {
      readyDown = await waitFor(async () => {
        const s = await readyStatus(api.base);
        seen.push(s);
        return s === 503;
      }, 15_000, '/health/ready 503 while PostgreSQL is down').catch((err: Error) => {
        throw new Error(`${err.message}; statuses seen ${[...new Set(seen)].join(',')}; api exit ${api.child.exitCode}; api output: ${api.output().split("\n").filter((l) => !l.includes("deferred until Redis")).join("\n").slice(-4000)}`);
      });
      await sleep(3000);
    } finally {
      await pgCtl(db.pg, 'start');
    }
    const downMs = Date.now() - downAt;
    const t = Date.now();
    await waitFor(async () => (await readyStatus(api.base)) === 200, 60_000, '/health/ready 200 after PostgreSQL is back');
    const recoverMs = Date.now() - t;
    await sleep(3000);
    const rep = await load.stop();
    // After recovery every request works again, on the same processes.
    const after = startLoad({ bases: [api.base], token, concurrency: 4, symbolPrefix: 'PA', maxSeconds: 3 });
    await sleep(3000);
    const afterRep = await after.stop();
    const lost = await lostPredictions(db.adminSql, [...rep.acknowledged, ...afterRep.acknowledged]);
    results.postgres_restart = {
      load: { requests: rep.requests, ok: rep.ok, errors: rep.errors, acknowledged_predictions: rep.acknowledged.length },
      postgres_down_ms: downMs,
      ready_while_down: readyDown ? 503 : 'not seen',
      ready_again_after_ms: recoverMs,
      after_recovery: { requests: afterRep.requests, errors: afterRep.errors },
      lost_predictions: lost,
      api_restarted: api.child.exitCode !== null,
    };
    expect(lost).toBe(0);
    expect(afterRep.errors).toEqual({});
    expect(afterRep.ok).toBeGreaterThan(10);
    expect(api.child.exitCode).toBeNull();
  }, 180_000);

  it('backup directory full or read-only: accunode backup fails with a clear error and leaves no partial file', async () => {
    let createBackup: typeof CreateBackup;
    try {
      ({ createBackup } = await import('../../src/ops/backup/backup.js'));
    } catch (err) {
      results.backup_disk_full = `skipped: src/ops/backup/backup.ts not importable (${(err as Error).message})`;
      return;
    }
    const mnt = mkdtempSync(path.join(os.tmpdir(), 'accunode-fullfs-'));
    const mount = (opts: string) => execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', mnt]);
    try {
      mount('size=16k');
    } catch (err) {
      results.backup_disk_full = `skipped: cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`;
      return;
    }
    const outcomes: Record<string, string> = {};
    try {
      const settings = { adminUrl: db.adminUrl, dir: mnt, retentionDays: 7, jobs: 1 };
      const full = await createBackup(settings).then(() => null, (e: Error) => e);
      outcomes.full = full ? full.message : 'no error';
      expect(full, 'a backup into a 16 kB filesystem must fail').toBeInstanceOf(Error);
      expect(full!.message).toMatch(/ENOSPC|no space|full/i);
      const logical = path.join(mnt, 'logical');
      const left = existsSync(logical) ? readdirSync(logical).filter((f) => f.endsWith('.partial') || f.endsWith('.dump')) : [];
      outcomes.left_behind = left.join(',') || 'nothing';
      expect(left).toEqual([]);
      execFileSync('umount', [mnt]);
      mount('size=1m');
      mkdirSync(path.join(mnt, 'logical'));
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const ro = await createBackup(settings).then(() => null, (e: Error) => e);
      outcomes.read_only = ro ? ro.message : 'no error';
      expect(ro).toBeInstanceOf(Error);
      expect(ro!.message).toMatch(/EROFS|read-only/i);
    } finally {
      try { execFileSync('umount', [mnt]); } catch { /* not mounted */ }
      rmSync(mnt, { recursive: true, force: true });
      results.backup_disk_full = outcomes;
    }
  }, 120_000);
});
