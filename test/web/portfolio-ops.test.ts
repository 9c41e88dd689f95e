// GET /portfolio (latest predictions per visible company; row-level security decides what is
// visible), the /ops/* routes with their role checks, and the web app served at / with the SPA
// fallback that never swallows the API, the docs, health or metrics.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, VISIBLE_COMPANIES, type UserKey, type World } from '../helpers/fixtures.js';
import { createTestApp, setWorldPasswords, tokensFor, engineOnce, type TestApp } from '../helpers/app.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { buildApp } from '../../src/http/app.js';
import { buildServices } from '../../src/entrypoints/services.js';
import { opsRoutes, type OpsRoutesDeps } from '../../src/http/routes/ops/routes.js';
import { DEFAULT_OPS_CONFIG } from '../../src/ops/types.js';

let db: TestDatabase;
let world: World;
let t: TestApp;
let noMonitor: TestApp;
let monitorSql: Sql;
let opsRedis: Redis;
let tokens: Record<UserKey, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  world = await buildWorld(db.adminSql);
  await setWorldPasswords(db, world);
  monitorSql = createPool(db.urlAs('monitoring_user'), { max: 2 });
  // An older annual prediction and a maintenance run, so trends and history have something.
  await db.adminSql`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence)
                    values (${world.companies.orgA1}, ${world.users.omA1.id}, '2023', 0.01, 'LOW', 0.8)`;
  await db.adminSql`update annual_predictions set probability = 0.09, risk_level = 'HIGH' where id = ${world.annual.orgA1b}`;
  await db.adminSql`insert into maintenance_runs (kind, dry_run, started_at, finished_at, outcome, rows_affected, steps)
                    values ('daily', false, now() - interval '1 hour', now() - interval '59 minutes', 'succeeded', 12, '[]'::jsonb)`;
  opsRedis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
  const opsDeps = (monitored: boolean): OpsRoutesDeps => ({
    sql: db.appSql,
    redis: opsRedis,
    monitor: monitored ? { sql: monitorSql, redis: opsRedis, config: DEFAULT_OPS_CONFIG } : null,
    readReplicas: 0,
  });
  t = await createTestApp(db, { apiPlugins: [async (api) => { await api.register(opsRoutes, { deps: opsDeps(true) }); }] });
  noMonitor = await createTestApp(db, { apiPlugins: [async (api) => { await api.register(opsRoutes, { deps: opsDeps(false) }); }] });
  tokens = await tokensFor(t, ['super', 'taA', 'oaA1', 'omA1', 'omB1', 'uA', 'taB']);
});
afterAll(async () => {
  await t?.close();
  await noMonitor?.close();
  await monitorSql?.end({ timeout: 2 });
  opsRedis?.disconnect();
  await db?.drop();
});

const get = (url: string, who: UserKey, app = t) => app.request({ method: 'GET', url, token: tokens[who] });

describe('GET /portfolio', () => {
  it('needs a session', async () => {
    expect((await t.request({ method: 'GET', url: '/api/v1/portfolio' })).statusCode).toBe(401);
  });

  it.each(['omA1', 'omB1', 'uA', 'taA', 'super'] as const)('%s sees exactly the companies row-level security allows', async (who) => {
    const res = await get('/api/v1/portfolio?limit=100', who);
    expect(res.statusCode, res.body).toBe(200);
    const ids = res.json().items.map((i: { company: { id: string } }) => i.company.id).sort();
    expect(ids).toEqual(VISIBLE_COMPANIES[who].map((k) => world.companies[k]).sort());
    expect(res.json().total).toBe(VISIBLE_COMPANIES[who].length);
  });

  it('gives the latest annual and quarterly prediction and the trend by period', async () => {
    const res = await get('/api/v1/portfolio?limit=100', 'omA1');
    const item = res.json().items.find((i: { company: { id: string } }) => i.company.id === world.companies.orgA1);
    expect(item.annual).toMatchObject({ id: world.annual.orgA1, probability: 0.03, risk_level: 'MEDIUM', reporting_year: '2024' });
    expect(item.quarterly).toMatchObject({ id: world.quarterly.orgA1, probability: 0.2, risk_level: 'CRITICAL', reporting_year: '2024', reporting_quarter: 'Q1' });
    expect(item.trend.annual).toEqual([{ period: '2023', probability: 0.01 }, { period: '2024', probability: 0.03 }]);
    expect(item.trend.quarterly).toEqual([{ period: '2024-Q1', probability: 0.2 }]);
  });

  it('searches names (full text), filters by sector, sorts and pages', async () => {
    const byName = await get('/api/v1/portfolio?q=orgA1b', 'omA1');
    expect(byName.json().items.map((i: { company: { id: string } }) => i.company.id)).toEqual([world.companies.orgA1b]);
    expect((await get('/api/v1/portfolio?sector=Energy', 'omA1')).json().total).toBe(0);
    expect((await get('/api/v1/portfolio?sector=Industrials', 'omA1')).json().total).toBe(4);
    const sorted = (await get('/api/v1/portfolio?sort=-annual_probability', 'omA1')).json().items;
    expect(sorted[0].company.id).toBe(world.companies.orgA1b);
    const p1 = (await get('/api/v1/portfolio?sort=name&limit=2', 'omA1')).json();
    expect(p1).toMatchObject({ total: 4, total_relation: 'eq', limit: 2 });
    const p2 = (await get(`/api/v1/portfolio?sort=name&limit=2&cursor=${encodeURIComponent(p1.next_cursor)}`, 'omA1')).json();
    expect(p2.next_cursor).toBeNull();
    expect(p1.items.length + p2.items.length).toBe(4);
    // Shallow offsets still work; the cursor of another sort is refused.
    expect((await get('/api/v1/portfolio?sort=name&limit=2&offset=2', 'omA1')).json().items).toEqual(p2.items);
    expect((await get(`/api/v1/portfolio?sort=symbol&limit=2&cursor=${encodeURIComponent(p1.next_cursor)}`, 'omA1')).statusCode).toBe(400);
    expect(new Set([...p1.items, ...p2.items].map((i: { company: { id: string } }) => i.company.id)).size).toBe(4);
    expect((await get('/api/v1/portfolio?sort=bogus', 'omA1')).statusCode).toBe(400);
  });

  it('another organization\'s user sees none of the first one\'s companies', async () => {
    const ids: string[] = (await get('/api/v1/portfolio?limit=100', 'omB1')).json().items.map((i: { company: { id: string } }) => i.company.id);
    for (const k of ['persA1', 'orgA1', 'orgA1b', 'orgA2'] as const) expect(ids).not.toContain(world.companies[k]);
  });

  it('lists the sectors of visible companies', async () => {
    expect((await get('/api/v1/portfolio/sectors', 'omA1')).json()).toEqual(['Industrials']);
  });
});

describe('/ops routes', () => {
  it('refuses anonymous callers (401) and members and org admins (403)', async () => {
    expect((await t.request({ method: 'GET', url: '/api/v1/ops/overview' })).statusCode).toBe(401);
    for (const who of ['omA1', 'oaA1', 'uA'] as const) expect((await get('/api/v1/ops/overview', who)).statusCode).toBe(403);
  });

  it('gives tenant admins health only: platform-wide alarms, maintenance, backups and replicas are for super admins', async () => {
    const ta = (await get('/api/v1/ops/overview', 'taA')).json();
    expect(ta.database.status).toBe('up');
    expect(ta.redis[0]).toMatchObject({ name: 'redis', status: 'up' });
    expect(ta).toMatchObject({ alarms: null, maintenance: null, backups: null, replicas: null });
    expect(ta.notes.join(' ')).toMatch(/platform-wide figures, shown to super admins/);
    const res = await get('/api/v1/ops/overview', 'super');
    expect(res.statusCode, res.body).toBe(200);
    const o = res.json();
    expect(o.database.status).toBe('up');
    expect(o.alarms.map((a: { name: string }) => a.name)).toContain('AccuNode-DB-HighConnections');
    expect(o.maintenance[0]).toMatchObject({ kind: 'daily', outcome: 'succeeded', rows_affected: 12 });
    expect(o.backups).toMatchObject({ configured: false, note: 'not configured' });
    expect(o.replicas).toEqual({ configured: 0 });
  });

  it('keeps cluster-wide figures for super admins', async () => {
    for (const path of ['/api/v1/ops/monitor', '/api/v1/ops/alarms', '/api/v1/ops/maintenance', '/api/v1/ops/backups']) {
      expect((await get(path, 'taA')).statusCode, path).toBe(403);
      expect((await get(path, 'taB')).statusCode, path).toBe(403);
    }
    const mon = await get('/api/v1/ops/monitor', 'super');
    expect(mon.statusCode, mon.body).toBe(200);
    expect(mon.json().figures.some((f: { name: string }) => f.name === 'connections')).toBe(true);
    expect((await get('/api/v1/ops/alarms', 'super')).json()).toHaveProperty('history');
    expect((await get('/api/v1/ops/maintenance', 'super')).json()[0]).toMatchObject({ kind: 'daily' });
    const b = (await get('/api/v1/ops/backups', 'super')).json();
    expect(b.backups.configured).toBe(false);
    expect(b.replicas).toEqual([]);
  });

  it('says so (503) when the monitoring connection is not available; the overview still answers', async () => {
    tokens.super = await noMonitor.login('super');
    const res = await get('/api/v1/ops/monitor', 'super', noMonitor);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.message).toMatch(/monitoring/);
    const ov = await get('/api/v1/ops/overview', 'super', noMonitor);
    expect(ov.statusCode).toBe(200);
    expect(ov.json().alarms).toBeNull();
    expect(ov.json().notes[0]).toMatch(/monitoring/);
  });
});

describe('web app at /', () => {
  it('serves files, falls back to index.html for page routes, and leaves /api, /docs, /health alone', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'accunode-web-'));
    mkdirSync(path.join(root, 'assets'));
    writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>AccuNode</title><div id="root"></div>');
    writeFileSync(path.join(root, 'assets', 'app-123.js'), 'console.log(1)');
    const log = pino({ level: 'silent' });
    const redis = new Redis(TEST_REDIS_URL);
    const services = buildServices({ sql: db.appSql, redis, log, engine: await engineOnce() }, { SESSION_TTL_SECONDS: 3600, SESSION_ABSOLUTE_TTL_SECONDS: 7200, RATE_LIMIT_LOGIN: 1000 });
    const app = await buildApp({ log, sql: db.appSql, redis, services, modelsReady: () => true, webRoot: root });
    try {
      const index = await app.inject({ url: '/', headers: { accept: 'text/html' } });
      expect(index.statusCode).toBe(200);
      expect(index.body).toContain('id="root"');
      expect(index.headers['content-security-policy']).toMatch(/default-src 'self'/);
      expect(index.headers['x-frame-options']).toBe('DENY');
      const page = await app.inject({ url: '/companies/123?x=1', headers: { accept: 'text/html' } });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('id="root"');
      const asset = await app.inject({ url: '/assets/app-123.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['cache-control']).toMatch(/immutable/);
      expect((await app.inject({ url: '/assets/missing.js' })).statusCode).toBe(404);
      const api = await app.inject({ url: '/api/v1/nowhere', headers: { accept: 'text/html' } });
      expect(api.statusCode).toBe(404);
      expect(api.json().error.code).toBe('not_found');
      expect((await app.inject({ url: '/health' })).json()).toHaveProperty('status');
      expect((await app.inject({ url: '/docs/json' })).json()).toHaveProperty('openapi');
      expect((await app.inject({ method: 'POST', url: '/portfolio' })).statusCode).toBe(404);
    } finally {
      await app.close();
      redis.disconnect();
    }
  });
});
