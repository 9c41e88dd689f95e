import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, setWorldPasswords, tokensFor, type TestApp } from '../helpers/app.js';
import { buildWorld, VISIBLE_COMPANIES, type UserKey, type World } from '../helpers/fixtures.js';
import { periodWindow } from '../../src/services/analytics.js';

let db: TestDatabase;
let w: World;
let t: TestApp;
let tok: Record<UserKey, string>;
const USERS: UserKey[] = ['omA1', 'omB1', 'taA', 'super', 'uA'];
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  await setWorldPasswords(db, w);
  t = await createTestApp(db);
  tok = await tokensFor(t, USERS);
});
afterAll(async () => {
  await t.close();
  await db.drop();
});

const summary = async (who: UserKey, q = `period=day&date=${today}`) => {
  const res = await t.request({ method: 'GET', url: `/api/v1/analytics/summary?${q}`, token: tok[who] });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};

describe('analytics summary', () => {
  it('counts exactly what the caller may see', async () => {
    for (const u of USERS) {
      const s = await summary(u);
      expect(s.total, u).toBe(VISIBLE_COMPANIES[u].length);
      expect(s.by_risk_level, u).toEqual({ MEDIUM: VISIBLE_COMPANIES[u].length });
      expect(s.average_probability).toBeCloseTo(0.03, 6);
      // From the rollups' probability buckets: within the stated 6 % of the exact value.
      expect(Math.abs(s.p95_probability - 0.03) / 0.03).toBeLessThan(0.06);
      expect(s.histogram.reduce((a: number, h: { count: number }) => a + h.count, 0)).toBe(s.total);
      expect(s.histogram.find((h: { from: number }) => h.from === 0.02).count).toBe(s.total);
      expect(s.by_sector).toEqual({ Industrials: s.total });
      expect(s.top_risk.length).toBe(Math.min(10, s.total));
      expect(s.trend.reduce((a: number, x: { count: number }) => a + x.count, 0)).toBe(s.total);
    }
    const q = await summary('omA1', `period=month&date=${today}&type=quarterly`);
    expect(q.by_risk_level).toEqual({ CRITICAL: VISIBLE_COMPANIES.omA1.length });
  });

  it('is cached per caller scope and invalidated by writes in that scope only', async () => {
    const first = await summary('omA1');
    const again = await summary('omA1');
    expect(again.generated_at).toBe(first.generated_at);
    const otherOrg = await summary('omB1');
    // A write in organization A1 changes A1's figures...
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', token: tok.omA1,
      payload: { company: { symbol: 'TREND', name: 'Trend Inc', sector: 'Energy' }, reporting_year: '2024', net_income_margin: -20, return_on_assets: -10, total_debt_to_ebitda: 6 } });
    expect(res.statusCode, res.body).toBe(201);
    const after = await summary('omA1');
    expect(after.total).toBe(first.total + 1);
    expect(after.by_sector.Energy).toBe(1);
    expect(after.top_risk[0].symbol).toBe('TREND');
    // ...and not B1's (still served from its cache).
    expect((await summary('omB1')).generated_at).toBe(otherOrg.generated_at);
    // The tenant admin of A sees it too.
    expect((await summary('taA')).by_sector.Energy).toBe(1);
    const keys = await t.redis.keys('analytics:stats:day:' + today + ':*');
    expect(keys.length).toBeGreaterThan(0);
    // (Earlier runs' keys may still be there; this run's has the full 6 h TTL.)
    const ttls = await Promise.all(keys.map((k) => t.redis.ttl(k)));
    expect(Math.max(...ttls)).toBeGreaterThan(21_000);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(21_600);
  });

  it('validates its parameters', async () => {
    for (const q of ['period=decade', 'date=2024-13-45', 'date=yesterday', 'type=monthly', 'extra=1']) {
      const res = await t.request({ method: 'GET', url: `/api/v1/analytics/summary?${q}`, token: tok.omA1 });
      expect(res.statusCode, q).toBe(q.startsWith('date=2024-13') ? 422 : 400);
    }
    expect(periodWindow('week', '2024-05-15')).toMatchObject({ from: new Date('2024-05-13T00:00:00Z'), to: new Date('2024-05-20T00:00:00Z') });
    expect(periodWindow('month', '2024-02-10').to).toEqual(new Date('2024-03-01T00:00:00Z'));
    expect(periodWindow('year', '2024-02-10').from).toEqual(new Date('2024-01-01T00:00:00Z'));
  });

  it('is exact whether or not the deltas of the last writes have been folded into the rollups', async () => {
    const q = `period=year&date=${today}`;
    const before = await summary('omB1', q);
    // A write appends a delta; the next summary (its cache generation bumped) counts it at once.
    const res = await t.request({ method: 'POST', url: '/api/v1/predictions/annual', token: tok.omB1,
      payload: { company: { symbol: 'FOLD', name: 'Fold plc', sector: 'Utilities' }, reporting_year: '2023', net_income_margin: 5, return_on_assets: 3, total_debt_to_ebitda: 2 } });
    expect(res.statusCode, res.body).toBe(201);
    const [{ n: pending }] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from prediction_rollup_deltas`;
    expect(pending).toBeGreaterThan(0);
    const unfolded = await summary('omB1', q);
    expect(unfolded.total).toBe(before.total + 1);
    // Folding moves the counts from the log to the rollups and changes no answer.
    const [{ n: folded }] = await db.appSql<[{ n: number }]>`select rollup_compact(100000) as n`;
    expect(folded).toBe(pending);
    const [{ n: left }] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from prediction_rollup_deltas`;
    expect(left).toBe(0);
    for (const k of await t.redis.keys('analytics:stats:year:*')) await t.redis.del(k);
    const compacted = await summary('omB1', q);
    const { generated_at: _a, ...x } = unfolded;
    const { generated_at: _b, ...y } = compacted;
    expect(y).toEqual(x);
  });
});

describe('analytics on read replicas', () => {
  it('runs on the replica the router offers (as the caller, RLS applies) and falls back to the primary when it fails', async () => {
    const { AnalyticsService } = await import('../../src/services/analytics.js');
    const { CacheAside } = await import('../../src/cache/cache-aside.js');
    const { pino } = await import('pino');
    const log = pino({ level: 'silent' });
    // A "replica" that is the same database through its own pool; and one that is down.
    const { createPool } = await import('../../src/db/pool.js');
    const replica = createPool(db.appUrl, { max: 1, applicationName: 'accunode-test-replica' });
    const dead = createPool('postgres://app_user@127.0.0.1:1/nope', { max: 1, connectTimeoutSeconds: 1 });
    try {
      let offered: typeof replica | null = replica;
      const analytics = new AnalyticsService({ sql: db.appSql, readSql: () => offered, cache: new CacheAside(t.redis, log), redis: t.redis, log });
      const p = { userId: w.users.omB1.id, role: 'org_member' as const, tenantId: w.tenants.B, organizationId: w.orgs.B1 };
      const before = await db.adminSql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = 'accunode-test-replica'`;
      // (A period and type no earlier test cached for this caller.)
      const s = await analytics.summary(p, { period: 'year', date: today, type: 'quarterly' });
      const used = await db.adminSql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = 'accunode-test-replica'`;
      expect(used[0]!.n).toBeGreaterThan(before[0]!.n);
      expect(s.total).toBe(VISIBLE_COMPANIES.omB1.length);
      offered = dead;
      const again = await analytics.summary(p, { period: 'week', date: today, type: 'quarterly' });
      expect(again.total).toBe(VISIBLE_COMPANIES.omB1.length);
    } finally {
      await replica.end();
      await dead.end({ timeout: 1 });
    }
  });
});
