// Workers against the real Redis and PostgreSQL: bulk jobs through the queue, SIGKILL of a real
// worker process mid-file with stalled-job recovery, graceful hand-back, and a Redis restart
// (on a scratch redis-server with AOF) that loses no acknowledged job.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { loadModels } from '../../src/services/model-store.js';
import { createBulkJob } from '../../src/services/bulk/submit.js';
import { getBulkJob } from '../../src/repositories/bulk-jobs.js';
import { createProducers, enqueueBulk, type Producers } from '../../src/queue/producers.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { startWorkers } from '../../src/entrypoints/worker.js';
import { createLogger } from '../../src/logging.js';
import type { RiskEngine } from '../../src/risk/index.js';
import type { Principal } from '../../src/domain/principal.js';
import { makeRows, tmpDir, writeCsv } from '../bulk/helpers.js';
import { freePort } from '../../src/ops/dr/local.js';

let db: TestDatabase;
let world: World;
let engine: RiskEngine;
let connection: Redis;
let producers: Producers;
const prefix = `{accunode-t-${randomBytes(4).toString('hex')}}`;
const dir = tmpDir('accunode-worker-');
const log = createLogger('silent');
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
  world = await buildWorld(db.adminSql);
  engine = await loadModels();
  connection = createQueueConnection(TEST_REDIS_URL, 'test-worker');
  producers = createProducers(connection, prefix);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const q of ['bulk', 'analytics', 'maintenance', 'backups'] as const) await producers.queue(q).obliterate({ force: true }).catch(() => {});
  await producers.close();
  await connection.quit();
  await db?.drop();
});

function principal(key: keyof World['users']): Principal {
  const u = world.users[key];
  return { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
}

async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function storedCount(userId: string, like: string): Promise<number> {
  const [r] = await db.adminSql<[{ n: number }]>`
    select count(*)::int as n from annual_predictions p join companies c on c.id = p.company_id
    where c.created_by = ${userId} and c.symbol like ${like}`;
  return r.n;
}

function workerProcess(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli.ts', 'worker'], {
    cwd: process.cwd(),
    env: {
      ...process.env,
      DATABASE_URL: db.appUrl,
      DATABASE_ADMIN_URL: db.adminUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: prefix,
      WORKER_QUEUES: 'bulk',
      LOG_LEVEL: 'warn',
      ACCUNODE_DATA_DIR: dir,
      QUEUE_LOCK_DURATION_MS: '2000',
      QUEUE_STALLED_INTERVAL_MS: '1000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  (child as ChildProcess & { output: () => string }).output = () => out;
  children.push(child);
  return child;
}

describe('worker', () => {
  it('processes a bulk job from the queue (BullMQ job id = upload id; queueing twice is a no-op)', async () => {
    const p = principal('uA');
    const file = writeCsv(dir, 'w1.csv', 'annual', makeRows('annual', 1000, { seed: 1, symbolPrefix: 'W' }));
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    const id1 = await enqueueBulk(producers, { jobId: job.id, userId: p.userId });
    const id2 = await enqueueBulk(producers, { jobId: job.id, userId: p.userId });
    expect(id1).toBe(job.id);
    expect(id2).toBe(job.id);
    const running = startWorkers({ connection, prefix, sql: db.appSql, engine, log }, { queues: ['bulk'], bulk: { chunkRows: 300 } });
    try {
      const done = await waitFor(async () => {
        const j = await getBulkJob(db.appSql, p.userId, job.id);
        return j && j.status === 'completed' ? j : null;
      }, 20_000, 'the job to complete');
      expect(done).toMatchObject({ rows_succeeded: 1000, attempts: 1, chunks_committed: 4 });
      const bj = await producers.queue('bulk').getJob(job.id);
      expect(await bj!.getState()).toBe('completed');
      expect(bj!.returnvalue).toMatchObject({ status: 'completed', rows_succeeded: 1000 });
      // Retention from the catalogue: 24 h completed, 7 days failed.
      expect(bj!.opts.removeOnComplete).toEqual({ age: 86400 });
      expect(bj!.opts.removeOnFail).toEqual({ age: 604800 });
      expect(bj!.opts.attempts).toBe(3);
    } finally {
      await running.close();
    }
  });

  it('SIGKILL of the worker process mid-file, then a new worker: every good row stored exactly once', async () => {
    const p = principal('omA1');
    const rows = makeRows('annual', 30_000, { seed: 2, symbolPrefix: 'K' });
    rows[100]!.net_income_margin = 'oops';
    const file = writeCsv(dir, 'kill.csv', 'annual', rows);
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file, accessLevel: 'personal' });
    await enqueueBulk(producers, { jobId: job.id, userId: p.userId });
    const first = workerProcess({ BULK_CHUNK_ROWS: '250' });
    // Kill it once a few chunks are committed, well before the end.
    const mid = await waitFor(async () => {
      const j = await getBulkJob(db.appSql, p.userId, job.id);
      return j && j.chunks_committed >= 3 ? j : null;
    }, 60_000, `chunks to be committed (worker output: ${(first as ChildProcess & { output: () => string }).output?.()})`);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const killed = (await getBulkJob(db.appSql, p.userId, job.id))!;
    expect(killed.status).toBe('running');
    expect(killed.rows_processed).toBeLessThan(30_000);
    expect(mid.rows_processed).toBeGreaterThan(0);

    const second = workerProcess({ BULK_CHUNK_ROWS: '5000' });
    const done = await waitFor(async () => {
      const j = await getBulkJob(db.appSql, p.userId, job.id);
      return j && j.status !== 'running' && j.status !== 'queued' ? j : null;
    }, 60_000, 'the recovered job to finish');
    second.kill('SIGTERM');
    expect(done).toMatchObject({ status: 'completed', rows_processed: 30_000, rows_succeeded: 29_999, rows_failed: 1, attempts: 2 });
    expect(await storedCount(p.userId, 'K%')).toBe(29_999);
    const [errs] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from bulk_upload_errors where job_id = ${job.id}`;
    expect(errs.n).toBe(1);
    const [dups] = await db.adminSql<[{ n: number }]>`
      select count(*)::int as n from (select symbol from companies where created_by = ${p.userId} and symbol like 'K%' group by symbol having count(*) > 1) d`;
    expect(dups.n).toBe(0);
  }, 120_000);

  it('graceful shutdown hands a running bulk job back; the next worker finishes it', async () => {
    const p = principal('omA2');
    const file = writeCsv(dir, 'handback.csv', 'annual', makeRows('annual', 6000, { seed: 4, symbolPrefix: 'H' }));
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    await enqueueBulk(producers, { jobId: job.id, userId: p.userId });
    const w1 = startWorkers({ connection, prefix, sql: db.appSql, engine, log }, { queues: ['bulk'], bulk: { chunkRows: 200 } });
    await waitFor(async () => {
      const j = await getBulkJob(db.appSql, p.userId, job.id);
      return j && j.chunks_committed >= 2;
    }, 20_000, 'chunks');
    await w1.close();
    const bj = await producers.queue('bulk').getJob(job.id);
    expect(await bj!.getState()).toBe('waiting');
    const mid = (await getBulkJob(db.appSql, p.userId, job.id))!;
    expect(mid.status).toBe('queued');
    expect(mid.note).toMatch(/handed back/);
    const w2 = startWorkers({ connection, prefix, sql: db.appSql, engine, log }, { queues: ['bulk'] });
    try {
      const done = await waitFor(async () => {
        const j = await getBulkJob(db.appSql, p.userId, job.id);
        return j && j.status === 'completed' ? j : null;
      }, 20_000, 'completion');
      expect(done).toMatchObject({ rows_succeeded: 6000, attempts: 2 });
      expect(await storedCount(p.userId, 'H%')).toBe(6000);
    } finally {
      await w2.close();
    }
  });

  it('a Redis restart loses no acknowledged job (scratch redis-server, AOF appendfsync everysec)', async () => {
    const port = await freePort();
    const data = tmpDir('accunode-redis-');
    const start = () => {
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--dir', data, '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
      children.push(child);
      return child;
    };
    const waitUp = async () => {
      await waitFor(async () => {
        const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          r.disconnect();
        }
      }, 10_000, 'redis-server');
    };
    let server = start();
    await waitUp();
    const url = `redis://127.0.0.1:${port}`;
    const count = async () => {
      const c = createQueueConnection(url, 'count');
      const q = new Queue('bulk', { connection: c, prefix: '{accunode}' });
      const n = await q.getJobCounts('waiting', 'delayed', 'active');
      await q.close();
      await c.quit();
      return n.waiting! + n.delayed! + n.active!;
    };
    const c1 = createQueueConnection(url, 'producer');
    const prod = createProducers(c1);
    for (let i = 0; i < 50; i++) await prod.enqueue('bulk.predict', { jobId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, userId: world.users.uA.id });
    await prod.close();
    await c1.quit();
    // Clean restart (SIGTERM: Redis rewrites nothing, the AOF is already there).
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    server = start();
    await waitUp();
    expect(await count()).toBe(50);
    // Crash (SIGKILL) more than one fsync interval after the acknowledgement.
    const c2 = createQueueConnection(url, 'producer2');
    const prod2 = createProducers(c2);
    for (let i = 50; i < 60; i++) await prod2.enqueue('alarms.evaluate', {}, { jobId: `a-${i}` });
    await prod2.close();
    await c2.quit();
    await new Promise((r) => setTimeout(r, 1500));
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    server = start();
    await waitUp();
    expect(await count()).toBe(50);
    const c3 = createQueueConnection(url, 'count2');
    const aq = new Queue('maintenance', { connection: c3, prefix: '{accunode}' });
    expect((await aq.getJobCounts('waiting')).waiting).toBe(10);
    await aq.close();
    await c3.quit();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }, 60_000);
});
