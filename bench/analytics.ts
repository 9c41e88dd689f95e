// bench/analytics: GET /api/v1/analytics/summary?period=year over 1,000,000 annual predictions
// (BENCH_ANALYTICS_ROWS), every one visible to the callers (members of the organization that owns
// them, plus a few shared system rows), through the real API on loopback.
//
// - Cold: the first request of each caller (each has its own cache scope, so the Redis cache holds
//   nothing for it): ms per summary, median over BENCH_ANALYTICS_COLD callers. PostgreSQL's buffer
//   cache is warm (one untimed pass first): this measures the query and the stack, not the disk.
//   Baseline, same run, interleaved with the cold requests: the very same SQL statement
//   (AnalyticsService's own query, same principal and window) run directly on the owner connection
//   — a superuser, so no row-level security — with no HTTP, session, rate limit or cache. Both
//   answers are checked to count the same rows. A bare `select count(*)` over the rows is reported
//   in the details for scale.
// - Cached: req/s of the same request once cached (wrk in its own process, BENCH_SECONDS), against a bare
//   Fastify route returning the same summary JSON from one Redis GET.
//
//   npx tsx bench/analytics.ts     (BENCH_ANALYTICS_ROWS=20000 BENCH_SECONDS=2 for a smoke run)
import Fastify from 'fastify';
import { pino } from 'pino';
import { pathToFileURL } from 'node:url';
import type { TestDatabase } from '../test/helpers/db.js';
import type { CacheAside } from '../src/cache/cache-aside.js';
import { AnalyticsService, type Summary } from '../src/services/analytics.js';
import type { Principal } from '../src/domain/principal.js';
import {
  benchDatabase, closeAll, createUsers, envNumber, load, percentile, printResults, round, signIn, startApp,
  type BenchResult, type RunningApp,
} from './lib.js';

export const knobs = ['BENCH_ANALYTICS_ROWS', 'BENCH_ANALYTICS_COLD', 'BENCH_SECONDS', 'BENCH_REDIS_URL'];
export const about =
  'analytics: GET /api/v1/analytics/summary?period=year over N annual predictions all visible to the caller. ' +
  'Cold = first request of a caller (empty Redis cache for its scope; PostgreSQL buffers warm); baseline = the same SQL statement ' +
  '(AnalyticsService query, same principal and window) run directly as the owner/superuser, i.e. without row-level security, HTTP or cache. ' +
  'Cached = req/s once cached, baseline = bare Fastify route returning the same JSON from one Redis GET.';

const ROWS = Math.round(envNumber('BENCH_ANALYTICS_ROWS', 1_000_000));
const COLD = Math.round(envNumber('BENCH_ANALYTICS_COLD', 5));
const SECONDS = envNumber('BENCH_SECONDS', 5);
const YEARS = 50; // predictions per company (reporting years 1975..2024)
const DATE = '2025-06-15'; // every row's created_at falls in 2025: period=year covers them all
const SECTORS = ['Industrials', 'Utilities', 'Energy', 'Financials', 'Health Care', 'Technology', 'Materials', 'Consumer Staples', 'Consumer Discretionary', 'Real Estate', 'Communication Services'];

async function loadRows(db: TestDatabase, org: string, creator: string): Promise<number> {
  const a = db.adminSql;
  const companies = Math.max(1, Math.round(ROWS / YEARS));
  // 2 % system companies (shared with everyone), the rest the organization's.
  await a`insert into companies (symbol, name, sector, access_level, organization_id, created_by)
          select 'A' || g, 'Analytics company ' || g, (${SECTORS}::text[])[1 + g % ${SECTORS.length}],
                 case when g % 50 = 0 then 'system' else 'organization' end,
                 case when g % 50 = 0 then null else ${org}::uuid end, ${creator}::uuid
          from generate_series(1, ${companies}) g`;
  // Bulk load as the owner with triggers off (the scope trigger would copy exactly these values).
  await a.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence, access_level, organization_id, sector, created_at)
             select id, created_by, (1975 + y)::text, pr,
                    case when pr < 0.02 then 'LOW' when pr < 0.05 then 'MEDIUM' when pr <= 0.15 then 'HIGH' else 'CRITICAL' end,
                    0.8, access_level, organization_id, sector, timestamp '2025-01-01' + random() * interval '364 days'
             from (select c.id, c.created_by, c.access_level, c.organization_id, c.sector, y, round((power(random(), 3) * 0.6)::numeric, 6) as pr
                   from companies c cross join generate_series(0, ${YEARS - 1}) y) s`;
  });
  // With the triggers off, the rollups and company_latest are recomputed from the rows, as an
  // operator would after a restore (the same values the triggers would have written).
  await a`analyze`;
  await a`select rollup_rebuild()`;
  await a`analyze`;
  const [{ n }] = await a<[{ n: number }]>`select count(*)::int as n from annual_predictions`;
  return n;
}

export async function run(): Promise<BenchResult[]> {
  let db: TestDatabase | null = null;
  let api: RunningApp | null = null;
  const bare = Fastify();
  try {
    db = await benchDatabase({ poolSize: 10 });
    api = await startApp(db);
    const a = db.adminSql;
    const [t] = await a<{ id: string }[]>`insert into tenants (name) values ('bench tenant') returning id`;
    const [o] = await a<{ id: string }[]>`insert into organizations (tenant_id, name, max_members) values (${t!.id}, 'bench org', 1000) returning id`;
    const rows = await createUsers(db, Array.from({ length: COLD + 1 }, (_, k) => ({ username: `an${k}`, role: 'org_member', tenantId: t!.id, organizationId: o!.id })));
    const t0 = performance.now();
    const n = await loadRows(db, o!.id, rows[0]!.id);
    const loadSec = (performance.now() - t0) / 1000;
    process.stderr.write(`analytics: loaded ${n} predictions in ${loadSec.toFixed(1)} s (generate_series, triggers off, ANALYZE)\n`);
    const users = await Promise.all(rows.map((u) => signIn(api!.url, u)));
    const summaryUrl = `${api.url}/api/v1/analytics/summary?period=year&date=${DATE}&type=annual`;

    // The baseline: the service's own statement on the owner connection, never cached.
    const direct = new AnalyticsService({
      sql: a,
      cache: { get: (_f: string, _k: string, _ttl: number, loadFn: () => Promise<unknown>) => loadFn() } as unknown as CacheAside,
      redis: api.redis,
      log: pino({ level: 'silent' }),
    });
    const principal = (id: string): Principal => ({ userId: id, role: 'org_member', tenantId: t!.id, organizationId: o!.id });
    const timeDirect = async (id: string) => {
      const s = performance.now();
      const r = await direct.summary(principal(id), { period: 'year', date: DATE, type: 'annual' });
      return { ms: performance.now() - s, total: r.total };
    };
    const timeApi = async (token: string) => {
      const s = performance.now();
      const res = await fetch(summaryUrl, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.text();
      const ms = performance.now() - s;
      if (res.status !== 200) throw new Error(`bench/analytics: HTTP ${res.status} ${body.slice(0, 300)}`);
      return { ms, total: (JSON.parse(body) as Summary).total, body };
    };

    // Untimed: fill PostgreSQL's buffers and the API's pools/JIT (user 0 is not measured cold).
    await timeDirect(users[0]!.id);
    await timeApi(users[0]!.token);

    const coldMs: number[] = [];
    const directMs: number[] = [];
    let cachedBody = '';
    for (const u of users.slice(1)) {
      const d = await timeDirect(u.id);
      const c = await timeApi(u.token);
      if (c.total !== n || d.total !== n) throw new Error(`bench/analytics: summaries counted ${c.total} (API) and ${d.total} (direct), expected ${n}`);
      directMs.push(d.ms);
      coldMs.push(c.ms);
      cachedBody = c.body;
    }
    const cs = performance.now();
    await a`select count(*) from annual_predictions`;
    const countMs = performance.now() - cs;

    // Cached: the last caller's summary is now in Redis.
    const last = users[users.length - 1]!;
    const hit = await timeApi(last.token);
    if (hit.total !== n) throw new Error('bench/analytics: cached summary differs');
    const key = `bench:analytics:${db.name}`;
    await api.redis.set(key, cachedBody, 'EX', 3600);
    bare.get('/summary', async () => JSON.parse((await api!.redis.get(key))!) as unknown);
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
    const headers = { authorization: `Bearer ${last.token}` };
    await load(summaryUrl, { seconds: 1, headers }); // warm-up
    await load(`${bareUrl}/summary`, { seconds: 1 });
    const baseCached = await load(`${bareUrl}/summary`, { seconds: SECONDS });
    const cached = await load(summaryUrl, { seconds: SECONDS, headers });
    for (const [name, r] of [['cached', cached], ['baseline', baseCached]] as const) {
      if (r.errors > 0 || r.non2xx > 0) throw new Error(`bench/analytics ${name}: ${r.errors} errors, ${r.non2xx} non-2xx`);
    }

    const cold = percentile(coldMs, 50);
    const base = percentile(directMs, 50);
    process.stderr.write(
      `analytics: ${n} rows; cold summary median ${cold.toFixed(0)} ms (${coldMs.map((x) => x.toFixed(0)).join(', ')}) vs same SQL as owner without RLS ${base.toFixed(0)} ms; ` +
        `count(*) ${countMs.toFixed(0)} ms; cached ${Math.round(cached.rps)} req/s vs bare Redis GET ${Math.round(baseCached.rps)} req/s\n`,
    );
    const label = `${n >= 1e6 ? n / 1e6 + 'M' : n / 1e3 + 'k'} predictions`;
    return [
      {
        scenario: `analytics.summary cold (first request per scope), ${label}`,
        figure: round(cold, 1),
        unit: 'ms',
        baseline: round(base, 1),
        baseline_label: 'same SQL as owner, no RLS/HTTP/cache',
        ratio: round(cold / base, 4),
        detail: { rows: n, samples: coldMs.length, cold_min_ms: round(Math.min(...coldMs), 1), cold_max_ms: round(Math.max(...coldMs), 1), direct_min_ms: round(Math.min(...directMs), 1), count_star_ms: round(countMs, 1), load_s: round(loadSec, 1) },
      },
      {
        scenario: `analytics.summary cached, ${label}`,
        figure: round(cached.rps, 1),
        unit: 'req/s',
        baseline: round(baseCached.rps, 1),
        baseline_label: 'bare Fastify, same JSON from one Redis GET',
        ratio: round(cached.rps / baseCached.rps, 4),
        detail: { p50_ms: cached.p50, p99_ms: cached.p99, baseline_p99_ms: baseCached.p99 },
      },
    ];
  } finally {
    await closeAll(db ? () => db!.drop() : null, api ? () => api!.close() : null, () => bare.close());
  }
}

// Exit explicitly: under heavy load postgres.js can keep a closed pool's socket referenced after end().
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printResults(await run());
  process.exit(0);
}
