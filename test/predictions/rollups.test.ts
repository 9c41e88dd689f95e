// The rollups answer exactly what the raw predictions would, for every caller, after any mix of
// writes: random creates, upserts, patches, deletes, archives (as the maintenance role), company
// sector and scope changes, with the delta log folded at random moments (or not at all). And they
// are tenant data: row-level security keeps each caller to its own scopes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import type { TxSql } from '../../src/db/pool.js';
import { withUserTx } from '../../src/db/tx.js';
import { scopesOf } from '../../src/repositories/keyset.js';
import { countPredictions, type PredictionFilter } from '../../src/repositories/predictions.js';
import { rollupSummary, topRisk } from '../../src/repositories/rollups.js';
import { periodWindow, type Period } from '../../src/services/analytics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type UserKey, type World } from '../helpers/fixtures.js';

let db: TestDatabase;
let w: World;
let maintenance: postgres.Sql;
const companies: string[] = [];
/** Who creates a company's predictions: its creator (who can see it, as the application requires). */
const creatorOf = new Map<string, string>();

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

const risk = (p: number) => (p < 0.02 ? 'LOW' : p < 0.05 ? 'MEDIUM' : p < 0.15 ? 'HIGH' : 'CRITICAL');
// Few distinct probabilities: ties at every rank.
const PROBS = Array.from({ length: 40 }, (_, i) => Math.round((0.0005 + i * i * 0.0006) * 1e6) / 1e6);
const SECTORS = ['Energy', 'Utilities', null];

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  maintenance = postgres(db.urlAs('maintenance_user'), { max: 1, onnotice: () => {} });
  const places: Array<[string, string | null, UserKey]> = [
    ['organization', w.orgs.A1, 'omA1'], ['organization', w.orgs.A1, 'oaA1'], ['organization', w.orgs.A2, 'omA2'],
    ['organization', w.orgs.B1, 'omB1'], ['personal', null, 'omA1'], ['personal', null, 'omB1'], ['personal', null, 'uA'],
    ['system', null, 'super'], ['organization', w.orgs.A1, 'omA1b'], ['organization', w.orgs.B1, 'oaB1'],
  ];
  for (const [i, [level, org, creator]] of places.entries()) {
    const [c] = await db.adminSql<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by)
      values (${'RP' + i}, ${'Rollup ' + i}, ${SECTORS[i % 3] ?? null}, ${level}, ${org}, ${w.users[creator].id}) returning id`;
    companies.push(c!.id);
  }
  companies.push(...Object.values(w.companies));
  for (const c of await db.adminSql<{ id: string; created_by: string }[]>`select id, created_by from companies`) creatorOf.set(c.id, c.created_by);
});

afterAll(async () => {
  await maintenance.end();
  await db.drop();
});

/** One random write, through the database as the application and the maintenance job write. */
async function randomWrite(r: ReturnType<typeof rng>): Promise<string> {
  const a = db.adminSql;
  const company = r.pick(companies);
  const by = creatorOf.get(company)!;
  const p = r.pick(PROBS);
  const at = new Date(Date.UTC(2025, 0, 1) + r.int(730) * 86_400_000 + r.int(86_400) * 1000);
  const year = String(2018 + r.int(8));
  const kind = r.next() < 0.7 ? 'annual' : 'quarterly';
  const table = kind === 'annual' ? 'annual_predictions' : 'quarterly_predictions';
  const prob = kind === 'annual' ? 'probability' : 'ensemble_probability';
  switch (r.int(9)) {
    case 0:
    case 1:
      if (kind === 'annual') {
        await a`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence, created_at)
                values (${company}, ${by}, ${year}, ${p}, ${risk(p)}, 0.8, ${at}) on conflict do nothing`;
      } else {
        await a`insert into quarterly_predictions (company_id, created_by, reporting_year, reporting_quarter, ensemble_probability, risk_level, created_at)
                values (${company}, ${by}, ${year}, ${r.pick(['Q1', 'Q2', 'Q3', 'Q4'])}, ${p}, ${risk(p)}, ${at}) on conflict do nothing`;
      }
      return `insert ${kind}`;
    case 2: {
      // A bulk-style upsert of several rows in one statement: inserts and updates together.
      const rows = Array.from({ length: 1 + r.int(4) }, () => ({ c: r.pick(companies), y: String(2018 + r.int(8)), p: r.pick(PROBS) }));
      const seen = new Set<string>();
      const uniq = rows.filter((x) => (seen.has(x.c + x.y) ? false : (seen.add(x.c + x.y), true)));
      await a`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence, created_at)
              select c::uuid, (select created_by from companies where id = c::uuid), y, p::numeric, case when p::numeric < 0.02 then 'LOW' when p::numeric < 0.05 then 'MEDIUM' when p::numeric < 0.15 then 'HIGH' else 'CRITICAL' end, 0.8, ${at}
              from unnest(${uniq.map((x) => x.c)}::text[], ${uniq.map((x) => x.y)}::text[], ${uniq.map((x) => String(x.p))}::text[]) u(c, y, p)
              on conflict (company_id, reporting_year) do update set probability = excluded.probability, risk_level = excluded.risk_level`;
      return 'upsert';
    }
    case 3:
      await a.unsafe(`update ${table} set ${prob} = $1, risk_level = $2 where id = (select id from ${table} order by random() limit 1)`, [p, risk(p)]);
      return `patch ${kind}`;
    case 4:
      await a.unsafe(`delete from ${table} where id = (select id from ${table} order by random() limit 1)`);
      return `delete ${kind}`;
    case 5:
      // The monthly archive's statement shape, as the maintenance role.
      await maintenance.unsafe(`delete from ${table} where id in (select id from ${table} where created_at < $1 order by created_at limit 3)`, [new Date(Date.UTC(2025, r.int(12), 1))]);
      return `archive ${kind}`;
    case 6:
      await a`update companies set sector = ${r.pick(SECTORS)} where id = ${company}`;
      return 'sector';
    case 7: {
      // A company moves scope: to another organization of its tenant, or from personal to shared.
      const [c] = await a<{ access_level: string; organization_id: string | null }[]>`select access_level, organization_id from companies where id = ${company}`;
      if (c!.access_level === 'organization') {
        const to = c!.organization_id === w.orgs.A1 ? w.orgs.A2 : c!.organization_id === w.orgs.A2 ? w.orgs.A1 : c!.organization_id;
        await a`update companies set organization_id = ${to} where id = ${company}`.catch(() => {});
      } else if (c!.access_level === 'personal') {
        await a`update companies set access_level = 'organization', organization_id = ${w.orgs.B1} where id = ${company}`.catch(() => {});
      }
      return 'scope';
    }
    default:
      await db.appSql`select rollup_compact(${1 + r.int(50)})`;
      return 'compact';
  }
}

const WINDOWS: Array<[Period, string]> = [['year', '2025-06-01'], ['year', '2026-06-01'], ['month', '2026-03-10'], ['week', '2025-11-12'], ['day', '2026-03-11']];
const PRINCIPALS: UserKey[] = ['omA1', 'oaA1', 'taA', 'uA', 'omB1', 'taB', 'super'];

async function raw(tx: TxSql, table: string, sql: string, params: unknown[]) {
  return tx.unsafe(sql.replaceAll('$table', table), params as never[]);
}

/** Every rollup answer for one caller beside the same question asked of the raw rows. */
async function compare(who: UserKey): Promise<void> {
  const user = w.users[who];
  await withUserTx(db.appSql, user.id, async (tx) => {
    const scopes = user.role === 'super_admin' ? null : await scopesOf(tx);
    for (const kind of ['annual', 'quarterly'] as const) {
      const table = `${kind}_predictions`;
      for (const [period, date] of WINDOWS) {
        const win = periodWindow(period, date);
        const grain = period === 'year' ? 'year' : period === 'month' ? 'month' : 'day';
        const got = await rollupSummary(tx, kind, { from: win.from, to: win.to, grain, trendGrain: win.bucket }, scopes);
        const where = `from $table where created_at >= $1::timestamp and created_at < $2::timestamp`;
        const args = [win.from, win.to];
        const [tot] = await raw(tx, table, `select count(*)::int as n, coalesce(sum(pd_micros), 0)::bigint as s ${where}`, args);
        const label = `${who} ${kind} ${period} ${date}`;
        expect(got.total, label).toBe(tot!.n);
        expect(got.sumMicros, label).toBe(Number(tot!.s));
        const group = async (expr: string) =>
          Object.fromEntries((await raw(tx, table, `select ${expr} as k, count(*)::int as n ${where} group by 1`, args)).map((x) => [x.k, x.n]));
        expect(got.byRisk, label).toEqual(await group('risk_level'));
        expect(got.byAccess, label).toEqual(await group('access_level'));
        expect(got.bySector, label).toEqual(await group(`coalesce(sector, 'Unknown')`));
        const trend = await raw(tx, table, `select to_char(date_trunc('${win.bucket}', created_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as period, count(*)::int as n, sum(pd_micros)::bigint as s ${where} group by 1 order by 1`, args);
        expect(got.trend, label).toEqual(trend.map((t) => ({ period: t.period, n: t.n, sumMicros: Number(t.s) })));
        const buckets = await raw(tx, table, `select pd_bucket(pd_micros)::int as bucket, count(*)::int as n ${where} group by 1 order by 1`, args);
        expect(got.buckets, label).toEqual(buckets.map((b) => ({ bucket: b.bucket, n: b.n })));
        // Top risk: each company at its highest, ranked by (probability, id) as the walk reads them.
        const top = await topRisk(tx, kind, win, scopes, { window: got.total, scope: got.scopeTotal });
        const rawTop = await raw(tx, table, `
          select company_id, pd_micros from (
            select distinct on (company_id) company_id, pd_micros, id ${where} order by company_id, pd_micros desc, id desc) d
          order by pd_micros desc, id desc limit 10`, args);
        expect(top.map((t) => [t.company_id, Math.round(t.probability * 1e6)]).sort(), label).toEqual(rawTop.map((t) => [t.company_id, t.pd_micros]).sort());
      }
      const filters: PredictionFilter[] = [{}, { year: '2022' }, { riskLevel: 'HIGH' }, { sector: 'Energy' }, { sector: 'Utilities', riskLevel: 'CRITICAL', year: '2020' }];
      for (const f of filters) {
        const got = await countPredictions(tx, kind, f, scopes);
        const conds = [f.year ? `reporting_year = '${f.year}'` : 'true', f.riskLevel ? `risk_level = '${f.riskLevel}'` : 'true', f.sector ? `sector = '${f.sector}'` : 'true'];
        const [c] = await raw(tx, table, `select count(*)::int as n from $table where ${conds.join(' and ')}`, []);
        expect(got.total, `${who} ${kind} count ${JSON.stringify(f)}`).toBe(c!.n);
      }
    }
  });
}

/** Each company's latest row against its predictions (as the owner: every company). */
async function compareLatest(): Promise<void> {
  const diff = await db.adminSql`
    select c.id from companies c left join company_latest l on l.company_id = c.id
    left join lateral (select id, pd_micros, risk_level, reporting_year from annual_predictions a where a.company_id = c.id order by reporting_year desc limit 1) a on true
    left join lateral (select id, pd_micros, reporting_year, reporting_quarter from quarterly_predictions q where q.company_id = c.id order by reporting_year desc, reporting_quarter desc limit 1) q on true
    where l.company_id is null or l.scope_id is distinct from c.scope_id or l.access_level is distinct from c.access_level
       or l.annual_id is distinct from a.id or l.annual_micros is distinct from a.pd_micros or l.annual_risk_level is distinct from a.risk_level
       or l.quarterly_id is distinct from q.id or l.quarterly_micros is distinct from q.pd_micros or l.quarterly_quarter is distinct from q.reporting_quarter`;
  expect(diff, 'company_latest rows that differ from the predictions').toEqual([]);
}

describe('rollups against the raw predictions', () => {
  it.each([1, 2, 3])('seed %i: 150 random writes, compared after every 50 for every role', async (seed) => {
    const r = rng(seed);
    const log: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 50; i++) log.push(await randomWrite(r));
      for (const who of PRINCIPALS) await compare(who);
      await compareLatest();
    }
    // Every kind of write happened.
    for (const op of ['insert annual', 'insert quarterly', 'upsert', 'patch', 'delete', 'archive', 'sector', 'scope', 'compact']) {
      expect(log.some((l) => l.startsWith(op)), op).toBe(true);
    }
    // Folding everything changes no answer; a rebuild from scratch gives the same ones again.
    await db.appSql`select rollup_compact(1000000)`;
    for (const who of PRINCIPALS) await compare(who);
    await db.adminSql`select rollup_rebuild()`;
    for (const who of PRINCIPALS) await compare(who);
    await compareLatest();
  }, 240_000);
});

describe('row-level security on the rollups', () => {
  const TABLES = ['prediction_rollups', 'prediction_trends', 'prediction_pd_rollups', 'prediction_year_rollups', 'prediction_rollup_deltas', 'company_latest'];

  it('a caller reads rollup rows of its own scopes only, whatever the role', async () => {
    // Some deltas not yet folded, so the delta log has rows in several scopes too.
    await db.adminSql`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level)
                      select id, created_by, '1999', 0.2, 'CRITICAL' from companies`;
    for (const who of PRINCIPALS.filter((p) => p !== 'super')) {
      await withUserTx(db.appSql, w.users[who].id, async (tx) => {
        const allowed = new Set(await scopesOf(tx));
        for (const t of TABLES) {
          const rows = await tx.unsafe<{ scope_id: string }[]>(`select distinct scope_id from ${t}`);
          expect(rows.length, `${who} ${t}`).toBeGreaterThan(0);
          for (const row of rows) expect(allowed.has(row.scope_id), `${who} reads ${t} of scope ${row.scope_id}`).toBe(true);
        }
      });
    }
    // Tenant B sees none of tenant A's organization scopes, and the reverse.
    const scopeOf = async (who: UserKey) => withUserTx(db.appSql, w.users[who].id, async (tx) =>
      new Set((await tx<{ scope_id: string }[]>`select distinct scope_id from prediction_year_rollups`).map((r) => r.scope_id)));
    const [a, b] = [await scopeOf('taA'), await scopeOf('taB')];
    for (const org of [w.orgs.A1, w.orgs.A2]) expect(b.has(org)).toBe(false);
    expect(a.has(w.orgs.B1)).toBe(false);
    // Without a user, nothing.
    const anon = await db.appSql.begin((tx) => tx`select count(*)::int as n from prediction_rollups`);
    expect((anon[0] as { n: number }).n).toBe(0);
  });

  it('the application can read rollups but never write them, except through the folding function', async () => {
    for (const t of TABLES) {
      await expect(withUserTx(db.appSql, w.users.super.id, (tx) => tx.unsafe(`delete from ${t}`)), t).rejects.toThrow(/permission denied/);
    }
    await expect(db.appSql`select rollup_rebuild()`).rejects.toThrow(/permission denied/);
    const [{ n }] = await db.appSql<[{ n: number }]>`select rollup_compact(10) as n`;
    expect(n).toBeGreaterThanOrEqual(0);
  });
});
