// Reading the prediction rollups (migration 0040): compacted rows plus the deltas not yet folded,
// (Time parameters are cast to timestamp: a JS Date travels as timestamptz, and comparing a
// timestamp column with one casts the column, which is then no index condition.)
// summed over the scopes the caller reads. Row-level security applies to both tables, and each
// scope is an index condition (scope_id = s.id over unnest(app_scopes())), so a summary costs the
// number of rollup rows in its window, not the number of predictions behind them.
import type { Sql, TxSql } from '../db/pool.js';
import type { ModelKind } from '../risk/index.js';
import { RISK_LEVELS, usePlans, walk, type SortKey } from './keyset.js';

/** The summary histogram's ranges (fractions); the rollups' 144 buckets nest inside them. */
export const HISTOGRAM_EDGES = [0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1];
const SUB = 16;

/**
 * The probability range of a rollup bucket (pd_bucket() in the migration): range c = bucket / 16
 * of HISTOGRAM_EDGES cut in 16 sub-ranges of equal ratio; in the first range, below 0.001 % and
 * then 15 of equal ratio up to 0.5 %.
 */
function bucketRange(bucket: number): { from: number; to: number } {
  const c = Math.floor(bucket / SUB);
  const j = bucket % SUB;
  if (c === 0) {
    if (j === 0) return { from: 0, to: 1e-5 };
    return { from: 1e-5 * 500 ** ((j - 1) / 15), to: 1e-5 * 500 ** (j / 15) };
  }
  const lo = HISTOGRAM_EDGES[c]!;
  const hi = HISTOGRAM_EDGES[c + 1]!;
  return { from: lo * (hi / lo) ** (j / SUB), to: lo * (hi / lo) ** ((j + 1) / SUB) };
}

/** A bucket's representative value: the geometric middle of its range (the arithmetic one for [0, 0.001 %)). */
function bucketMiddle(bucket: number): number {
  const r = bucketRange(bucket);
  return r.from === 0 ? r.to / 2 : Math.sqrt(r.from * r.to);
}

/**
 * The q-quantile (percentile_cont semantics: linear between the two order statistics around
 * q·(N−1)) estimated from bucket counts, each order statistic taken as its bucket's middle.
 * Error bound: above 0.5 % a value and its bucket's middle differ by at most the half-width
 * ratio of a bucket (2.9 % in [2 %, 5 %), 2.2 % in the other ranges), so the estimate is within
 * 6 % (relative) of the exact percentile — two bucket widths when the order statistics straddle
 * a boundary; below 0.5 %, within 0.25 percentage points.
 */
export function quantileFromBuckets(buckets: ReadonlyArray<{ bucket: number; n: number }>, q: number): number | null {
  const sorted = [...buckets].filter((b) => b.n > 0).sort((a, b) => a.bucket - b.bucket);
  const total = sorted.reduce((a, b) => a + b.n, 0);
  if (total === 0) return null;
  const h = q * (total - 1);
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const at = (rank: number) => {
    let seen = 0;
    for (const b of sorted) {
      seen += b.n;
      if (rank < seen) return bucketMiddle(b.bucket);
    }
    return bucketMiddle(sorted[sorted.length - 1]!.bucket);
  };
  const a = at(lo);
  return a + (h - lo) * (at(hi) - a);
}

/**
 * The rollup grains a summary window reads: breakdowns and probability buckets by `grain` (the
 * coarsest grain whose periods tile the window: a year's summary reads one row per scope and
 * combination, not twelve), the trend by `trendGrain` from prediction_trends.
 */
type Grain = 'day' | 'month' | 'year';
type TrendGrain = 'hour' | 'day' | 'month';

interface RollupSummary {
  total: number;
  /** Predictions of this kind in the scopes, all time (to choose the top-risk plan). */
  scopeTotal: number;
  sumMicros: number;
  byRisk: Record<string, number>;
  bySector: Record<string, number>;
  byAccess: Record<string, number>;
  trend: Array<{ period: string; n: number; sumMicros: number }>;
  buckets: Array<{ bucket: number; n: number }>;
}

/**
 * Everything a summary needs from the rollups for predictions created in [from, to): counts,
 * sums, the breakdowns, the trend by `grain` and the probability buckets (by `pdGrain` rows), in
 * one statement. Windows are aligned to the grains (whole hours, days or months).
 */
export async function rollupSummary(
  tx: TxSql,
  kind: ModelKind,
  w: { from: Date; to: Date; grain: Grain; trendGrain: TrendGrain },
  scopes: string[] | null,
): Promise<RollupSummary> {
  // Joined to the scopes (a leakproof uuid equality), so each is an index condition under RLS.
  const scoped = (table: string, alias: string) =>
    scopes === null ? tx`${tx(table)} ${tx(alias)}` : tx`unnest(${scopes}::uuid[]) s(id) join ${tx(table)} ${tx(alias)} on ${tx(alias + '.scope_id')} = s.id`;
  const deltas = tx`
    select d.access_level, d.risk_level, d.sector, d.hour, d.pd_bucket, d.n, d.sum_micros from ${scoped('prediction_rollup_deltas', 'd')}
    where d.kind = ${kind} and d.hour >= ${w.from}::timestamp and d.hour < ${w.to}::timestamp`;
  const [r] = await tx<Array<{
    total: string; scope_total: string; sum_micros: string | null; by_risk: Record<string, number>; by_sector: Record<string, number>;
    by_access: Record<string, number>; trend: Array<[string, number, number]>; buckets: Array<[number, number]>;
  }>>`
    with d as materialized (${deltas}),
    t as materialized (
      select r.access_level, r.risk_level, r.sector, r.n, r.sum_micros from ${scoped('prediction_rollups', 'r')}
      where r.kind = ${kind} and r.grain = ${w.grain} and r.period >= ${w.from}::timestamp and r.period < ${w.to}::timestamp
      union all
      select d.access_level, d.risk_level, d.sector, d.n, d.sum_micros from d
    ), tr as (
      select r.period, r.n, r.sum_micros from ${scoped('prediction_trends', 'r')}
      where r.kind = ${kind} and r.grain = ${w.trendGrain} and r.period >= ${w.from}::timestamp and r.period < ${w.to}::timestamp
      union all
      select date_trunc(${w.trendGrain}, d.hour), d.n, d.sum_micros from d
    ), b as (
      select r.pd_bucket, r.n from ${scoped('prediction_pd_rollups', 'r')}
      where r.kind = ${kind} and r.grain = ${w.grain} and r.period >= ${w.from}::timestamp and r.period < ${w.to}::timestamp
      union all
      select d.pd_bucket, d.n from d
    )
    select
      (select coalesce(sum(n), 0)::bigint from t) as total,
      (select coalesce(sum(y.n), 0)::bigint from ${scoped('prediction_year_rollups', 'y')} where y.kind = ${kind})
        + (select coalesce(sum(d.n), 0)::bigint from ${scoped('prediction_rollup_deltas', 'd')} where d.kind = ${kind}) as scope_total,
      (select sum(sum_micros)::bigint from t) as sum_micros,
      (select coalesce(jsonb_object_agg(risk_level, n), '{}') from (select risk_level, sum(n)::bigint n from t group by 1 having sum(n) <> 0) x) as by_risk,
      (select coalesce(jsonb_object_agg(sector, n), '{}') from (select sector, sum(n)::bigint n from t group by 1 having sum(n) <> 0) x) as by_sector,
      (select coalesce(jsonb_object_agg(access_level, n), '{}') from (select access_level, sum(n)::bigint n from t group by 1 having sum(n) <> 0) x) as by_access,
      (select coalesce(jsonb_agg(jsonb_build_array(to_char(period, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), n, s) order by period), '[]')
         from (select period, sum(n)::bigint n, sum(sum_micros)::bigint s from tr group by 1 having sum(n) <> 0) x) as trend,
      (select coalesce(jsonb_agg(jsonb_build_array(pd_bucket, n) order by pd_bucket), '[]')
         from (select pd_bucket, sum(n)::bigint n from b group by 1 having sum(n) <> 0) x) as buckets`;
  // '' is how the rollups store "no sector" (a key column cannot be NULL).
  const bySector: Record<string, number> = {};
  for (const [k, v] of Object.entries(r!.by_sector)) bySector[k === '' ? 'Unknown' : k] = (bySector[k === '' ? 'Unknown' : k] ?? 0) + Number(v);
  const num = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
  return {
    total: Number(r!.total),
    scopeTotal: Number(r!.scope_total),
    sumMicros: Number(r!.sum_micros ?? 0),
    byRisk: num(r!.by_risk),
    bySector,
    byAccess: num(r!.by_access),
    trend: r!.trend.map(([period, n, s]) => ({ period, n: Number(n), sumMicros: Number(s) })),
    buckets: r!.buckets.map(([bucket, n]) => ({ bucket: Number(bucket), n: Number(n) })),
  };
}

interface TopRisk {
  company_id: string;
  symbol: string;
  name: string;
  sector: string | null;
  probability: number;
  risk_level: string;
  reporting_year: string;
}

/**
 * The `n` companies with the highest probability among predictions created in [from, to), each
 * at its highest, ranked by that probability (equal ones: in index order, by prediction id) and
 * listed by probability then symbol. A small indexed query rather than a rollup, in one of two
 * plans chosen from the rollup counts:
 *  - 'walk': the (scope, risk level) walks of keyset.walk down (scope_id, risk_level, pd_micros,
 *    id) with the window as a filter: reads about k × scopeTotal / windowCount rows;
 *  - 'window': the window's rows through (scope_id, risk_level, created_at, id), then a sort:
 *    reads windowCount rows;
 * whichever reads fewer (at most √(k × scopeTotal) either way). Exact: rows arrive in ranking
 * order, so the first n distinct companies read are the top n; it reads more only when the
 * first k rows hold fewer than n companies.
 */
export async function topRisk(
  tx: TxSql,
  kind: ModelKind,
  w: { from: Date; to: Date },
  scopes: string[] | null,
  counts: { window: number; scope: number },
  n = 10,
): Promise<TopRisk[]> {
  if (counts.window === 0) return [];
  const table = kind === 'annual' ? 'annual_predictions' : 'quarterly_predictions';
  const key: SortKey = { cols: ['pd_micros', 'id'], types: ['int', 'uuid'], casts: ['int', 'uuid'] };
  for (let k = 20 * n; ; k *= 8) {
    const plan = counts.window * counts.window <= k * counts.scope ? 'window' : 'walk';
    await usePlans(tx, plan === 'walk' ? 'walk' : 'custom');
    const source = walk(tx, { scopes, risks: RISK_LEVELS, scopeColumn: 'p.scope_id', riskColumn: 'p.risk_level', fetch: k, key, desc: true }, (unit) => tx`
      select p.id, p.company_id, p.pd_micros, p.reporting_year, p.risk_level from ${tx(table)} p
      where ${unit} and p.created_at >= ${w.from} and p.created_at < ${w.to}
      order by p.pd_micros desc, p.id desc limit ${k}`);
    const rows = await tx<Array<{ company_id: string; pd_micros: number; reporting_year: string; risk_level: string; symbol: string; name: string; sector: string | null }>>`
      select y.company_id, y.pd_micros, y.reporting_year, y.risk_level, c.symbol, c.name, c.sector
      from (${source}) y join companies c on c.id = y.company_id
      order by y.pd_micros desc, y.id desc`;
    // A company's first row in this order is its highest.
    const top = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      if (!top.has(r.company_id)) top.set(r.company_id, r);
      if (top.size === n) break;
    }
    if (top.size === n || rows.length < k) {
      return [...top.values()]
        .sort((a, b) => b.pd_micros - a.pd_micros || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))
        .map((r) => ({
          company_id: r.company_id, symbol: r.symbol, name: r.name, sector: r.sector,
          probability: r.pd_micros / 1e6, risk_level: r.risk_level, reporting_year: r.reporting_year,
        }));
    }
  }
}

/**
 * Folds up to `maxRows` deltas into the rollups (rollup_compact()); -1 when another session is
 * folding. Runs as app_user: the function is SECURITY DEFINER and takes no input but the count.
 */
export async function compactRollups(sql: Sql, maxRows = 20_000): Promise<number> {
  const [r] = await sql<{ n: number }[]>`select rollup_compact(${maxRows}) as n`;
  return r!.n;
}

interface YearSectorRow {
  reporting_year: string;
  sector: string;
  n: number;
  sum_micros: number;
}

/**
 * Predictions by reporting year and sector in the caller's scopes (prediction_year_rollups plus
 * the deltas not yet folded): what the dashboard's "by reporting year" reads. Its cost is the
 * number of rollup rows (years × sectors × risk levels per scope), never the predictions behind.
 */
export async function yearSectorRollup(tx: TxSql, kind: ModelKind, scopes: string[] | null): Promise<YearSectorRow[]> {
  const scoped = (table: string, alias: string) =>
    scopes === null ? tx`${tx(table)} ${tx(alias)}` : tx`unnest(${scopes}::uuid[]) s(id) join ${tx(table)} ${tx(alias)} on ${tx(alias + '.scope_id')} = s.id`;
  const rows = await tx<Array<{ reporting_year: string; sector: string; n: string; sum_micros: string }>>`
    select reporting_year, sector, sum(n)::bigint as n, sum(sum_micros)::bigint as sum_micros from (
      select y.reporting_year, y.sector, y.n, y.sum_micros from ${scoped('prediction_year_rollups', 'y')} where y.kind = ${kind}
      union all
      select d.reporting_year, d.sector, d.n, d.sum_micros from ${scoped('prediction_rollup_deltas', 'd')} where d.kind = ${kind}
    ) x group by 1, 2 having sum(n) > 0 order by 1, 2`;
  return rows.map((r) => ({ reporting_year: r.reporting_year, sector: r.sector === '' ? 'Unknown' : r.sector, n: Number(r.n), sum_micros: Number(r.sum_micros) }));
}
