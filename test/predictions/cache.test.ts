import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, setWorldPasswords, tokensFor, type TestApp } from '../helpers/app.js';
import { buildWorld, type UserKey, type World } from '../helpers/fixtures.js';
import { ScratchRedis } from '../helpers/redis-server.js';
import { metrics } from '../../src/ops/monitoring/metrics.js';

// A prediction needs most of its ratios (PREDICTION_MIN_RATIOS): writes carry these besides the one under test.
const REST = { long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, ebit_to_interest_expense: 5 };

let db: TestDatabase;
let w: World;
let cacheServer: ScratchRedis;
let t: TestApp;
let tok: Record<UserKey, string>;
const USERS: UserKey[] = ['omA1', 'omA1b', 'oaA1', 'omB1', 'taA', 'uA'];

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
  cacheServer = await ScratchRedis.start(['--maxmemory-policy', 'allkeys-lru']);
  t = await createTestApp(db, { cacheRedisUrl: cacheServer.url });
  tok = await tokensFor(t, USERS);
});
afterAll(async () => {
  await t.close();
  await cacheServer.stop();
  await db.drop();
});

const api = (method: string, url: string, who: UserKey, payload?: unknown) =>
  t.request({ method: method as 'GET', url: `/api/v1${url}`, token: tok[who], ...(payload === undefined ? {} : { payload: payload as object }) });
const cache = () => t.cacheRedis!;

describe('cache-aside', () => {
  it('uses the spec keys and TTLs', async () => {
    await api('GET', `/predictions/annual/${w.annual.orgA1}`, 'omA1');
    await api('GET', `/companies/${w.companies.orgA1}`, 'omA1');
    await api('GET', '/auth/me', 'omA1');
    const ttlP = await cache().ttl(`cache:prediction:${w.annual.orgA1}`);
    const ttlC = await cache().ttl(`cache:company:${w.companies.orgA1}`);
    const ttlU = await cache().ttl(`cache:user:${w.users.omA1.id}`);
    expect(ttlP).toBeGreaterThan(1790);
    expect(ttlP).toBeLessThanOrEqual(1800);
    expect(ttlC).toBeGreaterThan(3590);
    expect(ttlU).toBeGreaterThan(890);
    expect(ttlU).toBeLessThanOrEqual(900);
  });

  it('never widens access: a cached row is refused to a caller who could not read it', async () => {
    for (const [owner, other, key] of [['omA1', 'omB1', 'orgA1'], ['omA1', 'omA1b', 'persA1'], ['omA1', 'uA', 'orgA1']] as const) {
      expect((await api('GET', `/predictions/annual/${w.annual[key]}`, owner)).statusCode).toBe(200);
      expect(await cache().exists(`cache:prediction:${w.annual[key]}`)).toBe(1);
      expect((await api('GET', `/predictions/annual/${w.annual[key]}`, other)).statusCode, `${other} reading ${key}`).toBe(404);
      expect((await api('GET', `/companies/${w.companies[key]}`, owner)).statusCode).toBe(200);
      expect((await api('GET', `/companies/${w.companies[key]}`, other)).statusCode).toBe(404);
    }
    // ...and the tenant admin of A may read it from the cache, B's may not.
    expect((await api('GET', `/predictions/annual/${w.annual.orgA1}`, 'taA')).statusCode).toBe(200);
  });

  it('N concurrent misses on one key cause exactly one database read', async () => {
    const key = `cache:prediction:${w.annual.orgA1b}`;
    await cache().del(key);
    const before = t.services.cache.stats.loads;
    const who: UserKey[] = ['omA1', 'omA1b', 'oaA1', 'taA'];
    const res = await Promise.all(Array.from({ length: 24 }, (_, i) => api('GET', `/predictions/annual/${w.annual.orgA1b}`, who[i % who.length]!)));
    expect(res.every((r) => r.statusCode === 200)).toBe(true);
    expect(t.services.cache.stats.loads - before).toBe(1);
  });

  it('every write path invalidates', async () => {
    const id = w.annual.orgA1;
    const key = `cache:prediction:${id}`;
    await api('GET', `/predictions/annual/${id}`, 'omA1');
    expect(await cache().exists(key)).toBe(1);
    const patched = await api('PATCH', `/predictions/annual/${id}`, 'omA1', { ...REST, net_income_margin: 3.3 });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(await cache().exists(key)).toBe(0);
    expect((await api('GET', `/predictions/annual/${id}`, 'omA1b')).json().net_income_margin).toBe(3.3);
    // upsert through create
    const upsert = await api('POST', '/predictions/annual?upsert=true', 'omA1', { company_id: w.companies.orgA1, reporting_year: '2024', ...REST, net_income_margin: 4.4 });
    expect(upsert.statusCode, upsert.body).toBe(200);
    expect(await cache().exists(key)).toBe(0);
    expect((await api('GET', `/predictions/annual/${id}`, 'omA1b')).json().net_income_margin).toBe(4.4);
    // company patch
    await api('GET', `/companies/${w.companies.orgA1}`, 'omA1');
    await api('PATCH', `/companies/${w.companies.orgA1}`, 'omA1', { name: 'Renamed' });
    expect(await cache().exists(`cache:company:${w.companies.orgA1}`)).toBe(0);
    expect((await api('GET', `/companies/${w.companies.orgA1}`, 'omA1b')).json().name).toBe('Renamed');
    // delete
    await api('GET', `/predictions/quarterly/${w.quarterly.orgA1}`, 'omA1');
    expect((await api('DELETE', `/predictions/quarterly/${w.quarterly.orgA1}`, 'omA1')).statusCode).toBe(204);
    expect(await cache().exists(`cache:prediction:${w.quarterly.orgA1}`)).toBe(0);
    expect((await api('GET', `/predictions/quarterly/${w.quarterly.orgA1}`, 'omA1')).statusCode).toBe(404);
  });

  it('keeps answering from PostgreSQL while the cache Redis is unresponsive or down, and nothing stale survives its return', async () => {
    const id = w.annual.orgA1b;
    await api('GET', `/predictions/annual/${id}`, 'omA1b');
    expect(await cache().exists(`cache:prediction:${id}`)).toBe(1);
    const errorsBefore = await metricValue('accunode_cache_errors_total');

    cacheServer.freeze(); // up but not answering: the worst kind of outage
    try {
      const started = Date.now();
      const read = await api('GET', `/predictions/annual/${id}`, 'omA1');
      expect(read.statusCode).toBe(200);
      const write = await api('PATCH', `/predictions/annual/${id}`, 'omA1b', { ...REST, return_on_assets: -2.5 });
      expect(write.statusCode, write.body).toBe(200);
      const created = await api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'OUTAGE', name: 'Outage Co' }, reporting_year: '2024', ...REST, net_income_margin: 1 });
      expect(created.statusCode).toBe(201);
      expect((await api('GET', `/predictions/annual/${id}`, 'omA1')).json().return_on_assets).toBe(-2.5);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      cacheServer.thaw();
    }
    // The stale entry is still in the thawed Redis; the owed invalidation is replayed before the
    // cache is read again.
    await new Promise((r) => setTimeout(r, 1500));
    const after = await api('GET', `/predictions/annual/${id}`, 'omA1');
    expect(after.json().return_on_assets).toBe(-2.5);
    expect(JSON.parse((await cache().get(`cache:prediction:${id}`)) ?? '{"values":{}}').values.return_on_assets ?? -2.5).toBe(-2.5);
    expect(await metricValue('accunode_cache_errors_total')).toBeGreaterThan(errorsBefore);

    // Fully down (process gone), then back empty.
    await cacheServer.stop();
    expect((await api('GET', `/companies/${w.companies.orgA1b}`, 'omA1')).statusCode).toBe(200);
    expect((await api('PATCH', `/companies/${w.companies.orgA1b}`, 'omA1b', { sector: 'Energy' })).statusCode).toBe(200);
    await cacheServer.restart();
    for (let i = 0; i < 50 && t.cacheRedis!.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1100));
    expect((await api('GET', `/companies/${w.companies.orgA1b}`, 'omA1')).json().sector).toBe('Energy');
  }, 60_000);
});

describe('a noeviction Redis that is full', () => {
  it('skips and counts the cache write, never failing the request', async () => {
    const full = await ScratchRedis.start(['--maxmemory-policy', 'noeviction']);
    const app = await createTestApp(db, { cacheRedisUrl: full.url });
    try {
      const filler = new Redis(full.url);
      await filler.set('session:kept', 'a session that must not be evicted');
      // Whatever it holds is "full": a 1-byte limit refuses every write deterministically.
      await filler.config('SET', 'maxmemory', '1');
      await expect(filler.set('probe', 'x')).rejects.toThrow(/OOM/);
      for (let i = 0; i < 50 && app.cacheRedis!.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
      const before = await metricValue('accunode_cache_errors_total', 'write_refused');
      const token = await app.login('omA1');
      const res = await app.request({ method: 'GET', url: `/api/v1/companies/${w.companies.system}`, token });
      expect(res.statusCode).toBe(200);
      expect(await metricValue('accunode_cache_errors_total', 'write_refused')).toBeGreaterThan(before);
      // Sessions and jobs are never evicted to make room (noeviction).
      expect(await filler.exists('session:kept')).toBe(1);
      filler.disconnect();
    } finally {
      await app.close();
      await full.stop();
    }
  });
});

async function metricValue(name: string, op?: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => !op || v.labels.op === op).reduce((a, v) => a + v.value, 0);
}

describe('write paths outside the API invalidate too', () => {
  it('a bulk upload that replaces a cached prediction drops it; so does the maintenance archive', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { createBulkJob } = await import('../../src/services/bulk/submit.js');
    const { runBulkJob } = await import('../../src/services/bulk/pipeline.js');
    const { runMaintenance } = await import('../../src/ops/maintenance.js');
    const { loadConfig } = await import('../../src/config/index.js');
    const { engineOnce } = await import('../helpers/app.js');
    // uA's own prediction, read through the API so it is cached.
    const created = await api('POST', '/predictions/annual', 'uA', { company: { symbol: 'BULKC', name: 'Bulk Cached' }, reporting_year: '2020', ...REST, net_income_margin: 1 });
    const id = created.json().id as string;
    await api('GET', `/predictions/annual/${id}`, 'uA');
    expect(await cache().exists(`cache:prediction:${id}`)).toBe(1);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-bulkcache-'));
    const file = path.join(dir, 'x.csv');
    writeFileSync(file, 'company_symbol,company_name,reporting_year,long_term_debt_to_total_capital,total_debt_to_ebitda,net_income_margin,ebit_to_interest_expense,return_on_assets\nBULKC,Bulk Cached,2020,30,2,-25,5,\n');
    const p = { userId: w.users.uA.id, role: 'user' as const, tenantId: null, organizationId: null };
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file, accessLevel: 'personal' });
    const out = await runBulkJob({ sql: db.appSql, engine: await engineOnce(), cacheRedis: cache() }, p.userId, job.id, {});
    expect(out, JSON.stringify(out)).toMatchObject({ status: 'completed' });
    expect(await cache().exists(`cache:prediction:${id}`)).toBe(0);
    expect((await api('GET', `/predictions/annual/${id}`, 'uA')).json().net_income_margin).toBe(-25);

    // Archive: make it three years old, run the monthly archive step.
    expect(await cache().exists(`cache:prediction:${id}`)).toBe(1);
    await db.adminSql`update annual_predictions set created_at = now() - interval '3 years' where id = ${id}`;
    const config = loadConfig({ MAINTENANCE_BATCH_SIZE: '100' });
    await runMaintenance({ adminSql: db.adminSql, config, cacheRedis: cache() }, 'monthly', { dryRun: false });
    expect(await cache().exists(`cache:prediction:${id}`)).toBe(0);
    expect((await api('GET', `/predictions/annual/${id}`, 'uA')).statusCode).toBe(404);
  }, 60_000);
});
