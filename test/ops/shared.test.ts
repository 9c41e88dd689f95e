// Monitor, diagnose and maintenance on the shared test cluster (a database of our own cloned
// from the migrated template), read as monitoring_user. pg_stat_statements is NOT preloaded on
// this cluster: the missing-extension path is tested here (the present path in cluster.test.ts).
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createPool, type Sql } from '../../src/db/pool.js';
import { evaluateAlarms } from '../../src/ops/monitoring/alarms/evaluate.js';
import { diagnose, diagnoseRedis, signalBackend } from '../../src/ops/monitoring/diagnose.js';
import { MAINTENANCE_LOCK_KEY, maintenanceHistory, runMaintenance } from '../../src/ops/maintenance.js';
import { collectMonitor } from '../../src/ops/monitoring/monitor.js';
import { longRunning, pgStatStatementsStatus } from '../../src/ops/monitoring/pg.js';
import { DEFAULT_OPS_CONFIG, type OpsDeps } from '../../src/ops/types.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { startScratchRedis, type ScratchRedis } from './servers.js';

let db: TestDatabase;
let monitorSql: Sql;
let redis: Redis;
let scratch: ScratchRedis;
let world: World;
let deps: OpsDeps;

beforeAll(async () => {
  db = await createTestDatabase();
  // monitoring_user has CONNECTION LIMIT 5 on the whole cluster: one connection here.
  monitorSql = createPool(db.urlAs('monitoring_user'), { max: 1 });
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
  scratch = await startScratchRedis();
  world = await buildWorld(db.adminSql);
  deps = { sql: monitorSql, adminSql: db.adminSql, redis, config: DEFAULT_OPS_CONFIG };
});

afterAll(async () => {
  await monitorSql?.end({ timeout: 2 });
  redis?.disconnect();
  await scratch?.stop();
  await db?.drop();
});

async function pollUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 4000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('operations history permissions', () => {
  it('app_user gets nothing; monitoring_user reads history and writes alarm states', async () => {
    for (const t of ['maintenance_runs', 'alarm_states', 'alarm_transitions', 'metric_samples', 'ops_snapshots']) {
      await expect(db.appSql.unsafe(`select 1 from ${t} limit 1`)).rejects.toThrow(/permission denied/);
    }
    await monitorSql`select 1 from maintenance_runs limit 1`;
    await expect(monitorSql`delete from alarm_transitions`).rejects.toThrow(/permission denied/);
    await expect(monitorSql`insert into maintenance_runs (kind) values ('daily')`).rejects.toThrow(/permission denied/);
  });
});

describe('monitor', () => {
  it('reports every figure with its threshold, and a long-running query', async () => {
    const side = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
    const sleeping = side`select pg_sleep(4) as ops_long_running_probe`.catch(() => {});
    try {
      await pollUntil(() => longRunning(monitorSql, 1), (r) => r.some((q) => q.query.includes('ops_long_running_probe')));
      const r = await collectMonitor(deps, { sampleMs: 200, longQuerySeconds: 1 });
      const fig = (name: string) => r.figures.find((f) => f.name === name);
      expect(fig('connections')).toMatchObject({ status: expect.stringMatching(/OK|WARN|ALARM/), unit: expect.stringMatching(/^of \d+$/) });
      expect(fig('queries running > 1 s')!.value).toBeGreaterThanOrEqual(1);
      expect(r.long_running.find((q) => q.query.includes('ops_long_running_probe'))).toMatchObject({ database: db.name });
      expect(fig('database size')!.value).toMatch(/MB|kB/);
      expect(r.largest_tables).toHaveLength(5);
      expect(fig('cache hit ratio')!.value).toBeGreaterThan(0);
      expect(fig('transactions/s')!.value).not.toBeNull();
      // No replica here: said so, not zero.
      expect(fig('replication lag')).toMatchObject({ status: 'UNAVAILABLE', note: expect.stringMatching(/no replica/) });
      for (const n of ['ping latency', 'memory used', 'fragmentation ratio', 'keys', 'expired keys', 'evicted keys', 'ops/s', 'connected clients'])
        expect(r.figures.find((f) => f.name === `redis: ${n}`), n).toBeDefined();
      // The shared Redis has maxmemory 0: the percentage is of system memory, and says so.
      expect(r.figures.find((f) => f.name === 'redis: memory used')!.note).toMatch(/maxmemory is 0.*system memory/);
    } finally {
      await side.end({ timeout: 0 });
      await sleeping;
    }
  });
});

describe('diagnose', () => {
  it('says pg_stat_statements is missing and how to enable it', async () => {
    const st = await pgStatStatementsStatus(monitorSql);
    expect(st).toMatchObject({ available: false, reason: expect.stringMatching(/shared_preload_libraries/), howToEnable: expect.stringMatching(/restart/) });
    const d = await diagnose({ ...deps, redis: scratch.client });
    expect(d.expensive_statements).toBeNull();
    expect(d.pg_stat_statements.available).toBe(false);
    const e = await evaluateAlarms({ ...deps, redis: scratch.client });
    expect(e.alarms.find((a) => a.name === 'AccuNode-DB-SlowQueries')).toMatchObject({ state: 'INSUFFICIENT_DATA', reason: expect.stringMatching(/shared_preload_libraries.*to enable/) });
  });

  it('shows a blocked lock pair with both statements, and cancels the blocker', async () => {
    const a = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
    const b = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
    const company = world.companies.system;
    let holder: Promise<unknown> | null = null;
    try {
      const [me] = await a<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const apid = me!.pid;
      // a holds the row lock in an open transaction, idle in transaction after its UPDATE.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      holder = a.begin(async (tx) => {
        await tx`update companies set market_cap = 1 where id = ${company} /* ops_blocker */`;
        await released;
      });
      await new Promise((r) => setTimeout(r, 200));
      const blocked = b`update companies set market_cap = 2 where id = ${company} /* ops_blocked */`.catch((e: Error) => e);
      const d = await pollUntil(() => diagnose(deps, { samplePerFamily: 5 }), (x) => x.blocked.some((p) => p.blocking_pid === apid));
      const pair = d.blocked.find((p) => p.blocking_pid === apid)!;
      expect(pair.blocked_statement).toMatch(/ops_blocked/);
      expect(pair.blocking_statement).toMatch(/ops_blocker/);
      expect(pair.blocking_state).toBe('idle in transaction');
      // Cancel the blocked statement (as the owner), then let the blocker go.
      await signalBackend(db.adminSql, pair.blocked_pid, 'cancel');
      expect(String(await blocked)).toMatch(/canceling statement due to user request/);
      release();
      await holder;
    } finally {
      await a.end({ timeout: 1 });
      await b.end({ timeout: 1 });
    }
  });

  it('finds a sequentially scanned table, an unused index, and bloat after mass deletes', async () => {
    // On a connection of its own, closed at the end: a backend flushes its statistics when it
    // exits (an idle one may wait up to 10 s).
    const w = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
    await w`create table ops_scan_probe (id int primary key, v int, pad text)`;
    await w`insert into ops_scan_probe select g, g % 100, repeat('x', 100) from generate_series(1, 20000) g`;
    await w`create index idx_ops_scan_probe_v on ops_scan_probe (v)`;
    await w`analyze ops_scan_probe`;
    for (let i = 0; i < 30; i++) await w`select count(*) from ops_scan_probe where pad like 'y%'`;
    await w`delete from ops_scan_probe where id % 10 <> 0`;
    await w.end();
    const d = await pollUntil(
      () => diagnose(deps, { samplePerFamily: 5 }),
      (x) => (x.seq_scan_tables.find((t) => t.table === 'public.ops_scan_probe')?.seq_scan ?? 0) >= 30 && (x.table_bloat.find((t) => t.table === 'public.ops_scan_probe')?.dead_rows ?? 0) > 0,
    );
    const scan = d.seq_scan_tables.find((t) => t.table === 'public.ops_scan_probe');
    expect(scan!.seq_scan).toBeGreaterThanOrEqual(30);
    expect(scan!.seq_tup_read).toBeGreaterThanOrEqual(30 * 20000);
    expect(d.unused_indexes.map((u) => u.index)).toContain('public.idx_ops_scan_probe_v');
    // The primary key is never listed: it enforces uniqueness even when unread.
    expect(d.unused_indexes.map((u) => u.index)).not.toContain('public.ops_scan_probe_pkey');
    expect(d.pgstattuple).toBe(true);
    const bloat = d.table_bloat.find((t) => t.table === 'public.ops_scan_probe')!;
    expect(bloat.source).toMatch(/pgstattuple_approx/);
    expect(bloat.bloat_percent!).toBeGreaterThan(70);
  });

  it('Redis memory by key family (SCAN + MEMORY USAGE), slowlog, clients and evictions', async () => {
    const c = scratch.client;
    const p = c.pipeline();
    for (let i = 0; i < 40; i++) p.set(`session:${'a'.repeat(60)}${i}`, JSON.stringify({ user: i, pad: 'x'.repeat(300) }), 'EX', 86400);
    for (let i = 0; i < 30; i++) p.set(`rate_limit:u${i}:predictions`, '7', 'EX', 3600);
    for (let i = 0; i < 20; i++) p.set(`cache:prediction:${i}`, 'p'.repeat(500), 'EX', 1800);
    for (let i = 0; i < 10; i++) p.set(`cache:company:${i}`, 'c'.repeat(200), 'EX', 3600);
    for (let i = 0; i < 5; i++) p.set(`cache:user:${i}`, 'u'.repeat(100), 'EX', 900);
    for (let i = 0; i < 3; i++) p.set(`analytics:stats:day:2025-01-0${i + 1}`, 's'.repeat(1000), 'EX', 21600);
    for (let i = 0; i < 4; i++) p.hset(`{accunode}:bulk:${i}`, 'data', 'q'.repeat(100));
    p.set('stray', 'no ttl');
    await p.exec();
    const r = await diagnoseRedis('scratch', c, 100_000);
    const fam = (f: string) => r.key_families.families.find((x) => x.family === f)!;
    expect(fam('session:')).toMatchObject({ keys: 40, sampled: 40, with_ttl_percent: 100 });
    expect(fam('rate_limit:').keys).toBe(30);
    expect(fam('cache:prediction:').keys).toBe(20);
    expect(fam('cache:company:').keys).toBe(10);
    expect(fam('cache:user:').keys).toBe(5);
    expect(fam('analytics:').keys).toBe(3);
    expect(fam('queue').keys).toBe(4);
    expect(fam('other').keys).toBe(1);
    for (const f of ['session:', 'rate_limit:', 'cache:prediction:', 'cache:company:', 'cache:user:', 'analytics:', 'queue']) expect(fam(f).estimated_bytes, f).toBeGreaterThan(0);
    expect(fam('session:').avg_bytes!).toBeGreaterThan(fam('rate_limit:').avg_bytes!);
    expect(r.key_families).toMatchObject({ complete: true, scanned: 113 });
    expect(r.clients.maxclients).toBeGreaterThan(0);
    expect(r.evictions.evicted_keys).toBe(0);
    expect(Array.isArray(r.slowlog)).toBe(true);

    // Evictions under a small maxmemory (CONFIG SET on the scratch server only).
    await c.config('SET', 'maxmemory', '2mb');
    await c.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const fill = c.pipeline();
    for (let i = 0; i < 2000; i++) fill.set(`cache:company:big${i}`, 'z'.repeat(2000));
    await fill.exec();
    const after = await diagnoseRedis('scratch', c, 100_000);
    expect(after.evictions.evicted_keys).toBeGreaterThan(0);
    expect(after.evictions.warning).toMatch(/evicted due to memory pressure/);
    await c.flushall();
    await c.config('SET', 'maxmemory', '0');
  });
});

describe('maintenance', () => {
  it('dry run shows what would change and changes nothing; the run cleans in batches and archives', async () => {
    const u = world.users.omA1.id;
    const long = new Date(Date.now() - 40 * 86_400_000);
    for (let i = 0; i < 12; i++)
      await db.adminSql`insert into user_sessions (user_id, token_hash, last_activity, expires_at) values (${u}, ${(i.toString(16) + 'a'.repeat(64)).slice(0, 64)}, ${i < 9 ? long : new Date()}, ${new Date(Date.now() + 86_400_000)})`;
    for (let i = 0; i < 5; i++) await db.adminSql`insert into audit_logs (action, table_name, created_at) values ('x', 't', ${i < 3 ? new Date(Date.now() - 400 * 86_400_000) : new Date()})`;
    const old = new Date(Date.now() - 3 * 365 * 86_400_000);
    await db.adminSql`update annual_predictions set created_at = ${old} where id in (${world.annual.orgA1}, ${world.annual.persA1}, ${world.annual.system})`;
    await db.adminSql`update quarterly_predictions set created_at = ${old} where id = ${world.quarterly.orgB1}`;
    const mdeps = { adminSql: db.adminSql, redis: scratch.client, config: { ...DEFAULT_OPS_CONFIG, MAINTENANCE_BATCH_SIZE: 4 } };

    const dryDaily = await runMaintenance(mdeps, 'daily', { dryRun: true });
    expect(dryDaily).toMatchObject({ outcome: 'succeeded', dry_run: true, rows_affected: 0 });
    expect(dryDaily.steps.find((s) => s.step === 'cleanup_sessions')).toMatchObject({ outcome: 'would', rows: 9 });
    expect(dryDaily.steps.find((s) => s.step === 'cleanup_audit_logs')).toMatchObject({ outcome: 'would', rows: 3 });
    const dryMonthly = await runMaintenance(mdeps, 'monthly', { dryRun: true });
    expect(dryMonthly.steps.find((s) => s.step === 'archive_predictions')).toMatchObject({ outcome: 'would', rows: 4 });
    const [left] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from user_sessions`;
    expect(left!.n).toBe(12);

    const daily = await runMaintenance(mdeps, 'daily');
    expect(daily).toMatchObject({ outcome: 'succeeded', rows_affected: 12 });
    expect(daily.steps.find((s) => s.step === 'cleanup_sessions')).toMatchObject({ outcome: 'done', rows: 9, detail: expect.objectContaining({ batches: 3 }) });
    expect(await db.adminSql`select 1 from user_sessions`).toHaveLength(3);
    expect(await db.adminSql`select 1 from audit_logs`).toHaveLength(2);

    const monthly = await runMaintenance(mdeps, 'monthly');
    expect(monthly.outcome).toBe('succeeded');
    expect(monthly.steps.map((s) => s.step)).toEqual(['vacuum_analyze', 'bloat_report', 'reindex_bloated', 'archive_predictions', 'redis_report']);
    expect(monthly.steps.find((s) => s.step === 'archive_predictions')).toMatchObject({ rows: 4, detail: expect.objectContaining({ annual_predictions: expect.objectContaining({ moved: 3 }) }) });
    const archived = await db.adminSql<{ id: string; probability: number }[]>`select id, probability from annual_predictions_archive order by id`;
    expect(archived.map((a) => a.id).sort()).toEqual([world.annual.orgA1, world.annual.persA1, world.annual.system].sort());
    expect(await db.adminSql`select 1 from annual_predictions where id = ${world.annual.orgA1}`).toHaveLength(0);
    expect(await db.adminSql`select 1 from quarterly_predictions_archive where id = ${world.quarterly.orgB1}`).toHaveLength(1);

    const hist = await maintenanceHistory(monitorSql);
    expect(hist.slice(0, 4).map((h) => [h.kind, h.dry_run, h.outcome])).toEqual([
      ['monthly', false, 'succeeded'],
      ['daily', false, 'succeeded'],
      ['monthly', true, 'succeeded'],
      ['daily', true, 'succeeded'],
    ]);
    expect(hist[1]).toMatchObject({ rows_affected: 12 });
    expect(hist[1]!.finished_at!.getTime()).toBeGreaterThanOrEqual(hist[1]!.started_at.getTime());
  });

  it('rebuilds a bloated index concurrently, and a second run cannot overlap (advisory lock)', async () => {
    await db.adminSql`create table ops_bloat_probe (id int primary key, v int)`;
    await db.adminSql`insert into ops_bloat_probe select g, g from generate_series(1, 30000) g`;
    await db.adminSql`create index idx_ops_bloat_probe_v on ops_bloat_probe (v)`;
    await db.adminSql`delete from ops_bloat_probe where id % 10 <> 0`;
    await db.adminSql.unsafe('vacuum ops_bloat_probe');
    const mdeps = { adminSql: db.adminSql, config: DEFAULT_OPS_CONFIG };
    const dry = await runMaintenance(mdeps, 'monthly', { dryRun: true });
    const would = dry.steps.find((s) => s.step === 'reindex_bloated')!.detail as Array<{ index: string; bloat_percent: number }>;
    expect(would.find((w) => w.index === 'public.idx_ops_bloat_probe_v')!.bloat_percent).toBeGreaterThan(30);
    const run = await runMaintenance(mdeps, 'monthly');
    const done = run.steps.find((s) => s.step === 'reindex_bloated')!.detail as Array<{ index: string; size_before: number; size_after: number }>;
    const v = done.find((d) => d.index === 'public.idx_ops_bloat_probe_v')!;
    expect(v.size_after).toBeLessThan(v.size_before / 2);

    const holder = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
    try {
      await holder`select pg_advisory_lock(${MAINTENANCE_LOCK_KEY})`;
      const skipped = await runMaintenance(mdeps, 'weekly');
      expect(skipped).toMatchObject({ outcome: 'skipped', steps: [], error: expect.stringMatching(/advisory lock/) });
    } finally {
      await holder.end();
    }
    expect((await runMaintenance(mdeps, 'weekly', { dryRun: true })).outcome).toBe('succeeded');
  });
});
