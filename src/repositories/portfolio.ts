// "Companies with their latest predictions": one row per visible company with its latest annual
// and quarterly prediction (by reporting period) and a short trend of each. `q` searches names
// (full text) or an exact symbol through the GIN index (app_company_matches). The latest values
// come from company_latest, which triggers keep current on every write, so sorting or filtering
// by current risk walks an index instead of ranking every company's history. Row-level security
// filters companies, company_latest and predictions alike.
import type { Fragment, TxSql } from '../db/pool.js';
import {
  afterCursor, cappedTotal, keyColumns, orderBy, TOTAL_CAP, walk,
  type CursorValues, type KeyType, type PlanProfile, type SortKey, type Total,
} from './keyset.js';

export type PortfolioSort =
  | 'name' | '-name'
  | 'symbol' | '-symbol'
  | 'annual_probability' | '-annual_probability'
  | 'quarterly_probability' | '-quarterly_probability'
  | 'updated' | '-updated';

export interface PortfolioFilter {
  q?: string;
  sector?: string;
  riskLevel?: string;
  /** Only companies that have at least one prediction. */
  withPredictions?: boolean;
}

export interface PortfolioRow {
  id: string;
  symbol: string;
  name: string;
  sector: string | null;
  country: string | null;
  access_level: string;
  organization_id: string | null;
  created_by: string | null;
  market_cap: number | null;
  annual_id: string | null;
  annual_probability: number | null;
  annual_risk_level: string | null;
  annual_year: string | null;
  annual_at: Date | null;
  quarterly_id: string | null;
  quarterly_probability: number | null;
  quarterly_risk_level: string | null;
  quarterly_year: string | null;
  quarterly_quarter: string | null;
  quarterly_at: Date | null;
  annual_trend: Array<{ period: string; probability: number }> | null;
  quarterly_trend: Array<{ period: string; probability: number }> | null;
}

/** How many periods a trend sparkline shows. */
const TREND_POINTS = 8;

const LATEST_COLUMN: Record<string, string> = { annual_probability: 'annual_micros', quarterly_probability: 'quarterly_micros', updated: 'latest_at' };

/**
 * The cursor of a portfolio page: [phase, value, id]. Sorts on a company's name or symbol have one
 * phase. Sorts on its latest prediction walk the companies that have one (phase 0, by value), then
 * those that have none (phase 1, by id), so "no prediction yet" comes last in both directions.
 */
export const PORTFOLIO_CURSOR_TYPES = (sort: PortfolioSort): KeyType[] => {
  const col = sort.replace('-', '');
  return ['phase', LATEST_COLUMN[col] === 'latest_at' ? 'timestamp' : LATEST_COLUMN[col] ? 'int' : 'text', 'uuid'];
};
export const PORTFOLIO_NULLABLE = new Set([1]);

function filterSql(tx: TxSql, f: PortfolioFilter) {
  return tx`
    and c.is_active
    ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
    ${f.q ? tx`and c.id in (select app_company_matches(${f.q}))` : tx``}`;
}

/** Searches read their matches (app_company_matches) and sort them; other pages walk (keyset.usePlans). */
export const portfolioPlans = (f: PortfolioFilter): PlanProfile => (f.q ? 'custom' : 'walk');

function latestFilterSql(tx: TxSql, f: PortfolioFilter, alias: string) {
  return tx`
    ${f.riskLevel ? tx`and ${tx(alias + '.risk_level')} = ${f.riskLevel}` : tx``}
    ${f.withPredictions ? tx`and ${tx(alias + '.latest_at')} is not null` : tx``}`;
}

/** The page's rows with their details, in walk order (`walk` yields id, k0, k1 ordered by key). */
function details(tx: TxSql, walk: Fragment, key: SortKey, desc: boolean, phase: 0 | 1) {
  return tx<Array<PortfolioRow & { k0: string | number | null; k1: string; phase: number }>>`
    select c.id, c.symbol, c.name, c.sector, c.country, c.access_level, c.organization_id, c.created_by, c.market_cap,
           cl.annual_id, cl.annual_micros / 1000000.0 as annual_probability, cl.annual_risk_level, cl.annual_year, cl.annual_at,
           cl.quarterly_id, cl.quarterly_micros / 1000000.0 as quarterly_probability, cl.quarterly_risk_level,
           cl.quarterly_year, cl.quarterly_quarter, cl.quarterly_at,
           (select json_agg(json_build_object('period', t.reporting_year, 'probability', t.p) order by t.reporting_year)
              from (select a.reporting_year, a.probability::float8 as p from annual_predictions a
                    where a.company_id = c.id order by a.reporting_year desc limit ${TREND_POINTS}) t) as annual_trend,
           (select json_agg(json_build_object('period', t.reporting_year || '-' || t.reporting_quarter, 'probability', t.p) order by t.reporting_year, t.reporting_quarter)
              from (select q.reporting_year, q.reporting_quarter, q.ensemble_probability::float8 as p from quarterly_predictions q
                    where q.company_id = c.id order by q.reporting_year desc, q.reporting_quarter desc limit ${TREND_POINTS}) t) as quarterly_trend,
           x.k0, x.k1, ${phase}::int as phase
    from (${walk}) x join companies c on c.id = x.id left join company_latest cl on cl.company_id = c.id
    order by ${orderBy(tx, 'x', key, desc)}`;
}

/**
 * One keyset page (plus one row) of the portfolio. `after` is a decoded cursor ([phase, value, id]).
 */
export async function listPortfolio(
  tx: TxSql,
  f: PortfolioFilter,
  page: { sort: PortfolioSort; fetch: number; after?: CursorValues; scopes: string[] | null },
): Promise<Array<PortfolioRow & { sort_key: CursorValues }>> {
  const desc = page.sort.startsWith('-');
  const col = page.sort.replace('-', '');
  const latest = LATEST_COLUMN[col];
  // A search's matches are few: read them directly rather than walking every scope.
  const scopeOpts = { scopes: f.q ? null : page.scopes, fetch: page.fetch, desc };
  const withKey = (rows: Array<PortfolioRow & { k0: string | number | null; k1: string; phase: number }>) =>
    rows.map(({ k0, k1, phase, ...r }) => ({ ...r, annual_probability: r.annual_probability === null ? null : Number(r.annual_probability),
      quarterly_probability: r.quarterly_probability === null ? null : Number(r.quarterly_probability), sort_key: [phase, k0, k1] as CursorValues }));

  if (!latest) {
    // By name or symbol: walk the companies' own (scope_id, column, id) index.
    const key: SortKey = { cols: [col, 'id'], types: ['text', 'uuid'], casts: ['text', 'uuid'] };
    const after = page.after ? page.after.slice(1) : undefined;
    const rows = walk(tx, { ...scopeOpts, key: { ...key, cols: ['k0', 'k1'] }, scopeColumn: 'c.scope_id' }, (unit) => tx`
      select c.id ${keyColumns(tx, 'c', key)} from companies c
      where ${unit} ${filterSql(tx, f)} ${afterCursor(tx, 'c', key, desc, after)}
        ${f.riskLevel || f.withPredictions ? tx`and exists (select 1 from company_latest l where l.company_id = c.id ${latestFilterSql(tx, f, 'l')})` : tx``}
      order by ${orderBy(tx, 'c', key, desc)} limit ${page.fetch}`);
    return withKey(await details(tx, rows, { ...key, cols: ['k0', 'k1'] }, desc, 0));
  }

  // By the latest prediction: companies with one (phase 0), then those without (phase 1).
  const out: Array<PortfolioRow & { sort_key: CursorValues }> = [];
  const startPhase = (page.after?.[0] as number | undefined) ?? 0;
  if (startPhase === 0) {
    const key: SortKey = { cols: [latest, 'company_id'], types: [latest === 'latest_at' ? 'timestamp' : 'int', 'uuid'], casts: [latest === 'latest_at' ? 'timestamp' : 'int', 'uuid'] };
    const after = page.after ? page.after.slice(1) : undefined;
    const rows = walk(tx, { ...scopeOpts, key: { ...key, cols: ['k0', 'k1'] }, scopeColumn: 'cl.scope_id' }, (unit) => tx`
      select cl.company_id as id ${keyColumns(tx, 'cl', key)} from company_latest cl join companies c on c.id = cl.company_id
      where ${unit} and ${tx('cl.' + latest)} is not null ${filterSql(tx, f)} ${latestFilterSql(tx, f, 'cl')} ${afterCursor(tx, 'cl', key, desc, after)}
      order by ${orderBy(tx, 'cl', key, desc)} limit ${page.fetch}`);
    out.push(...withKey(await details(tx, rows, { ...key, cols: ['k0', 'k1'] }, desc, 0)));
  }
  if (out.length < page.fetch && !f.withPredictions && !f.riskLevel) {
    const key: SortKey = { cols: ['company_id'], types: ['uuid'], casts: ['uuid'] };
    const after = startPhase === 1 && page.after ? [page.after[2]!] : undefined;
    const fetch = page.fetch - out.length;
    const rows = walk(tx, { ...scopeOpts, fetch, desc: false, key: { ...key, cols: ['k1'] }, scopeColumn: 'cl.scope_id' }, (unit) => tx`
      select cl.company_id as id, null::text as k0, cl.company_id as k1 from company_latest cl join companies c on c.id = cl.company_id
      where ${unit} and ${tx('cl.' + latest)} is null ${filterSql(tx, f)} ${afterCursor(tx, 'cl', key, false, after)}
      order by cl.company_id limit ${fetch}`);
    out.push(...withKey(await details(tx, rows, { ...key, cols: ['k1'] }, false, 1)));
  }
  return out;
}

/** How many companies the portfolio holds for these filters, counted up to TOTAL_CAP + 1. */
export async function countPortfolio(tx: TxSql, f: PortfolioFilter, scopes: string[] | null): Promise<Total> {
  const key: SortKey = { cols: ['name', 'id'], types: ['text', 'uuid'], casts: ['text', 'uuid'] };
  const rows = walk(tx, { scopes: f.q ? null : scopes, scopeColumn: 'c.scope_id', fetch: TOTAL_CAP + 1, key, desc: false, ordered: false }, (unit) => tx`
    select 1 from companies c where ${unit} ${filterSql(tx, f)}
      ${f.riskLevel || f.withPredictions ? tx`and exists (select 1 from company_latest l where l.company_id = c.id ${latestFilterSql(tx, f, 'l')})` : tx``}
    order by ${orderBy(tx, 'c', key, false)} limit ${TOTAL_CAP + 1}`);
  const [r] = await tx<{ n: number }[]>`select count(*)::int as n from (${rows}) z`;
  return cappedTotal(r!.n);
}

/** Sectors of the companies the caller can see (for the filter). */
export async function portfolioSectors(tx: TxSql): Promise<string[]> {
  const rows = await tx<{ sector: string }[]>`select distinct sector from companies where is_active and sector is not null order by sector`;
  return rows.map((r) => r.sector);
}
