// bench/scale: how the online API's costs change as one organization grows from 1,000 to
// 10,000,000 annual predictions (BENCH_SCALE_SIZES), measured through the real API (sessions,
// rate limits, row-level security, cache) with the load generator in its own process (wrk, or
// bench/client.ts for "write, then read"), at each size:
//  - a list page of 50, for several sorts and filters; baseline: the same repository SQL run as
//    the owner (no row-level security, no HTTP);
//  - the summary right after a write (period=year: a create, then the summary, which the write
//    has made stale); baseline: the same rollup SQL as the owner;
//  - a portfolio page of 50 sorted by annual probability; baseline: the same SQL as the owner;
//  - creates per second (16 connections, new periods of existing companies); baseline: pgbench
//    inserting the same rows straight into annual_predictions, same database, same run.
// Rows are generated in SQL (test/helpers/scale-data.ts): secondary indexes dropped and rebuilt
// around each load, then rollup_rebuild(), as an operator would after a restore.
//
//   npx tsx bench/scale.ts          (BENCH_SCALE_SIZES=1000,100000 BENCH_SECONDS=3 for a smoke run)
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TestDatabase } from '../test/helpers/db.js';
import type { TxSql } from '../src/db/pool.js';
import { countPredictions, isRare, listPredictions, predictionPlans, type PredictionFilter, type PredictionSort } from '../src/repositories/predictions.js';
import { usePlans, type PlanProfile } from '../src/repositories/keyset.js';
import { listPortfolio } from '../src/repositories/portfolio.js';
import { rollupSummary, topRisk } from '../src/repositories/rollups.js';
import { periodWindow } from '../src/services/analytics.js';
import { loadOrganizationBook } from '../test/helpers/scale-data.js';
import { runClient } from './client.js';
import { RATIOS, benchDatabase, closeAll, createUsers, envNumber, printResults, round, signIn, startApp, type BenchResult, type RunningApp } from './lib.js';
import { luaList, runWrk } from './wrk.js';

export const knobs = ['BENCH_SCALE_SIZES', 'BENCH_SECONDS', 'BENCH_DATABASE_ADMIN_URL'];
export const about =
  'scale: one organization at 1k / 100k / 1M / 10M annual predictions, through the real API with wrk (or bench/client.ts) in its own process: ' +
  'list page of 50 (several sorts and filters), the summary right after a write, a portfolio page, creates per second. ' +
  'Baselines in the same run: the same repository SQL as the owner (no RLS, no HTTP); pgbench inserting the same rows for creates.';

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '1000,100000,1000000,10000000').split(',').map((s) => Math.round(Number(s)));
const SECONDS = envNumber('BENCH_SECONDS', 5);
const TODAY = new Date().toISOString().slice(0, 10);

/** The list pages measured at every size: every sort, and the filters an analyst uses most. */
const LISTS: Array<{ name: string; sort: PredictionSort; filter: PredictionFilter; query: string }> = [
  { name: 'newest', sort: '-created_at', filter: {}, query: 'sort=-created_at' },
  { name: 'highest PD', sort: '-probability', filter: {}, query: 'sort=-probability' },
  { name: 'by reporting year', sort: 'reporting_year', filter: {}, query: 'sort=reporting_year' },
  { name: 'HIGH risk, newest', sort: '-created_at', filter: { riskLevel: 'HIGH' }, query: 'sort=-created_at&risk_level=HIGH' },
  { name: 'Energy, highest PD', sort: '-probability', filter: { sector: 'Energy' }, query: 'sort=-probability&sector=Energy' },
  { name: 'year 2020, highest PD', sort: '-probability', filter: { year: '2020' }, query: 'sort=-probability&reporting_year=2020' },
];

/** p50 (and p95) of `n` sequential runs of fn. */
async function timed(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { p50: round(t[Math.floor(t.length / 2)]!), p95: round(t[Math.min(t.length - 1, Math.floor(t.length * 0.95))]!) };
}

/**
 * The same repository calls as the owner (a superuser: no row-level security), with the member's
 * scopes and the plan settings the service would use: the same statements, the same plans.
 */
async function asOwner<T>(db: TestDatabase, profile: PlanProfile, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  return (await db.adminSql.begin(async (tx) => {
    await usePlans(tx as unknown as TxSql, profile);
    return fn(tx as unknown as TxSql);
  })) as T;
}

export async function run(): Promise<BenchResult[]> {
  let db: TestDatabase | null = null;
  let api: RunningApp | null = null;
  const out: BenchResult[] = [];
  try {
    db = await benchDatabase({ poolSize: 10 });
    api = await startApp(db);
    const a = db.adminSql;
    const [t] = await a<{ id: string }[]>`insert into tenants (name) values ('scale tenant') returning id`;
    const [o] = await a<{ id: string }[]>`insert into organizations (tenant_id, name, max_members) values (${t!.id}, 'scale org', 1000) returning id`;
    const [m] = await createUsers(db, [{ username: 'scale', role: 'org_member', tenantId: t!.id, organizationId: o!.id }]);
    const member = await signIn(api.url, m!);
    const auth = { Authorization: `Bearer ${member.token}` };
    const scopes = ['00000000-0000-0000-0000-000000000000', m!.id, o!.id];
    // Companies for the creates (their own, so the loaded book is never touched by them).
    const createCompanies = (await a<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by)
      select 'W' || g, 'Writer ' || g, 'Utilities', 'organization', ${o!.id}, ${m!.id} from generate_series(1, 2000) g returning id`).map((r) => r.id);
    await a`create table bench_companies as select row_number() over () as n, id, created_by from companies where symbol like 'W%'`;
    await a`create unique index on bench_companies (n)`;
    await a`create sequence bench_seq`;
    let createdYear = 1900; // each size's creates take new periods (1900 upwards; the book is 2015-2024)

    const firstPage: Record<string, number> = {};
    let loaded = 0;
    for (const [step, size] of SIZES.entries()) {
      const t0 = performance.now();
      const add = size - loaded;
      // Symbols of each step's companies: S + a letter per step + a number (10 characters at most).
      if (add > 0) await loadOrganizationBook(a, { organizationId: o!.id, creatorId: m!.id, predictions: add, prefix: `S${String.fromCharCode(65 + step)}` });
      loaded = size;
      const [{ n }] = await a<[{ n: number }]>`select count(*)::int as n from annual_predictions where organization_id = ${o!.id}`;
      const loadSeconds = round((performance.now() - t0) / 1000, 1);
      const label = n.toLocaleString('en-US');
      process.stderr.write(`bench scale: ${label} predictions loaded in ${loadSeconds} s\n`);

      // List pages: wrk, one connection (sequential requests: the latency a user waits).
      for (const l of LISTS) {
        const r = await runWrk(api.url, { connections: 1, threads: 1, seconds: SECONDS, script: { request: `return wrk.format("GET", "/api/v1/predictions/annual?limit=50&${l.query}", { ["Authorization"] = "Bearer ${member.token}" })` } });
        if (r.non2xx || r.errors) throw new Error(`scale list ${l.name}: ${r.non2xx} non-2xx, ${r.errors} errors: ${r.firstFailure}`);
        const base = await timed(30, () => asOwner(db!, predictionPlans(l.filter, l.sort), async (tx) => {
          // As the service does: a year or sector filter is counted first, and read directly when rare.
          if (l.filter.year || l.filter.sector) {
            const c = await countPredictions(tx, 'annual', l.filter, scopes);
            const rare = isRare(c.total, c.scopeTotal!, 51);
            if (rare) await usePlans(tx, 'custom');
            return listPredictions(tx, 'annual', l.filter, { sort: l.sort, fetch: 51, scopes, tenantId: t!.id, rare });
          }
          return listPredictions(tx, 'annual', l.filter, { sort: l.sort, fetch: 51, scopes, tenantId: t!.id });
        }));
        firstPage[l.name] ??= r.p50;
        out.push({
          scenario: `scale.list_50 ${l.name} @ ${label}`, figure: r.p50, unit: 'ms', baseline: base.p50, baseline_label: 'same SQL as owner, no HTTP',
          ratio: r.p50 / base.p50, detail: { p95_ms: r.p95, p99_ms: r.p99, vs_smallest: round(r.p50 / firstPage[l.name]!, 2), rps: round(r.rps, 0), predictions: n },
        });
      }

      // The summary right after a write: create, then the year's summary, 20 times.
      const bodies = Array.from({ length: 20 }, (_, i) => JSON.stringify({ company_id: createCompanies[i % createCompanies.length], reporting_year: String(createdYear), ...RATIOS }));
      createdYear++;
      const seq = await runClient({ mode: 'sequence', base: api.url, iterations: 20, steps: [
        { method: 'POST', path: '/api/v1/predictions/annual', headers: auth, bodies, status: 201 },
        { method: 'GET', path: `/api/v1/analytics/summary?period=year&date=${TODAY}`, headers: auth },
      ] });
      const [create, summary] = seq.steps as [typeof seq.steps[0], typeof seq.steps[0]];
      if (create.failures || summary.failures) throw new Error(`scale summary: ${create.firstFailure ?? summary.firstFailure}`);
      const w = periodWindow('year', TODAY);
      const sumBase = await timed(20, () => asOwner(db!, 'walk', async (tx) => {
        const r = await rollupSummary(tx, 'annual', { from: w.from, to: w.to, grain: 'year', trendGrain: 'month' }, scopes);
        return topRisk(tx, 'annual', w, scopes, { window: r.total, scope: r.scopeTotal });
      }));
      out.push({
        scenario: `scale.summary_after_write @ ${label}`, figure: summary.p50, unit: 'ms', baseline: sumBase.p50, baseline_label: 'same rollup SQL as owner',
        ratio: summary.p50 / sumBase.p50, detail: { p95_ms: summary.p95, max_ms: summary.max, create_p50_ms: create.p50, predictions: n },
      });

      // A portfolio page by annual probability.
      const pr = await runWrk(api.url, { connections: 1, threads: 1, seconds: SECONDS, script: { request: `return wrk.format("GET", "/api/v1/portfolio?limit=50&sort=-annual_probability", { ["Authorization"] = "Bearer ${member.token}" })` } });
      if (pr.non2xx || pr.errors) throw new Error(`scale portfolio: ${pr.firstFailure}`);
      const pBase = await timed(30, () => asOwner(db!, 'walk', (tx) => listPortfolio(tx, {}, { sort: '-annual_probability', fetch: 51, scopes })));
      firstPage.portfolio ??= pr.p50;
      out.push({
        scenario: `scale.portfolio_50 highest annual PD @ ${label}`, figure: pr.p50, unit: 'ms', baseline: pBase.p50, baseline_label: 'same SQL as owner, no HTTP',
        ratio: pr.p50 / pBase.p50, detail: { p95_ms: pr.p95, vs_smallest: round(pr.p50 / firstPage.portfolio, 2), predictions: n },
      });

      // Creates per second, then pgbench inserting the same rows into the same table.
      // API creates take 5 new years of the 2,000 companies; pgbench the 20 after (never a conflict).
      const base = createdYear;
      createdYear += 5;
      const cr = await runWrk(api.url, { connections: 16, threads: 2, seconds: SECONDS, script: {
        init: `companies = ${luaList(createCompanies)}; n = 0`,
        request: `n = n + 1
          local k = n * 2 + thread_id
          return wrk.format("POST", "/api/v1/predictions/annual", { ["Authorization"] = "Bearer ${member.token}", ["Content-Type"] = "application/json" },
            '{"company_id":"' .. companies[(k % #companies) + 1] .. '","reporting_year":"' .. (${base} + math.floor(k / #companies)) .. '",' .. '${JSON.stringify(RATIOS).slice(1, -1)}' .. '}')`,
      } });
      if (cr.non2xx || cr.errors) throw new Error(`scale creates: ${cr.firstFailure}`);
      const pgb = pgbenchInserts(db.adminUrl, createdYear, SECONDS);
      createdYear += 20;
      out.push({
        scenario: `scale.create @ ${label}`, figure: cr.rps, unit: 'req/s', baseline: pgb.tps, baseline_label: 'pgbench INSERT of the same rows',
        ratio: cr.rps / pgb.tps, detail: { p50_ms: cr.p50, p99_ms: cr.p99, predictions: n },
      });
    }
    return out;
  } finally {
    await closeAll(db ? () => db!.drop() : null, api ? () => api!.close() : null);
  }
}

/** pgbench, 16 clients: one new (company, year) per transaction into annual_predictions, as the owner. */
export function pgbenchInserts(url: string, firstYear: number, seconds: number): { tps: number; latencyMs: number } {
  const file = path.join(os.tmpdir(), `accunode-pgbench-${process.pid}.sql`);
  writeFileSync(file, `select nextval('bench_seq') as s \\gset
insert into annual_predictions (company_id, created_by, reporting_year, long_term_debt_to_total_capital, total_debt_to_ebitda, net_income_margin, ebit_to_interest_expense, return_on_assets, probability, logistic_probability, step_probability, risk_level, confidence, model_name, model_version)
select id, created_by, (${firstYear} + :s / 2000 % 20)::text, 35.2, 2.1, 7.5, 6.3, 4.9, 0.0123, 0.012, 0.013, 'LOW', 0.8, 'annual-scorecard', '1' from bench_companies where n = 1 + :s % 2000
on conflict do nothing;
`);
  const r = spawnSync('pgbench', ['-n', '-M', 'prepared', '-c', '16', '-j', '2', '-T', String(seconds), '-f', file, url], { encoding: 'utf8' });
  const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`pgbench failed: ${r.stderr || r.stdout}`);
  return { tps, latencyMs: Number(/latency average = ([\d.]+)/.exec(r.stdout)?.[1]) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printResults(await run());
  process.exit(0);
}
