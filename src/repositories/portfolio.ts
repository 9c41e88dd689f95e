// "Companies with their latest predictions": one row per visible company with its latest annual
// and quarterly prediction (by reporting period) and a short trend of each. Row-level security
// filters companies and predictions alike: the caller sees only predictions it may read.
import type { TxSql } from '../db/pool.js';

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
  sort?: PortfolioSort;
  /** Only companies that have at least one prediction. */
  withPredictions?: boolean;
  limit: number;
  offset: number;
}

export interface PortfolioRow {
  id: string;
  symbol: string;
  name: string;
  sector: string | null;
  country: string | null;
  access_level: string;
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
export const TREND_POINTS = 8;

export async function listPortfolio(tx: TxSql, f: PortfolioFilter): Promise<{ rows: PortfolioRow[]; total: number }> {
  const latest = tx`
    left join lateral (
      select a.id, a.probability::float8 as probability, a.risk_level, a.reporting_year, a.created_at
      from annual_predictions a where a.company_id = c.id
      order by a.reporting_year desc, a.created_at desc limit 1
    ) la on true
    left join lateral (
      select q.id, q.ensemble_probability::float8 as probability, q.risk_level, q.reporting_year, q.reporting_quarter, q.created_at
      from quarterly_predictions q where q.company_id = c.id
      order by q.reporting_year desc, q.reporting_quarter desc, q.created_at desc limit 1
    ) lq on true`;
  const where = tx`
    where c.is_active
    ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
    ${f.q ? tx`and (to_tsvector('english', c.name) @@ websearch_to_tsquery('english', ${f.q}) or c.symbol = upper(${f.q}))` : tx``}
    ${f.riskLevel ? tx`and coalesce(la.risk_level, lq.risk_level) = ${f.riskLevel}` : tx``}
    ${f.withPredictions ? tx`and (la.id is not null or lq.id is not null)` : tx``}`;
  const sort = f.sort ?? (f.q ? undefined : 'name');
  const order = (() => {
    switch (sort) {
      case undefined:
        return tx`order by ts_rank(to_tsvector('english', c.name), websearch_to_tsquery('english', ${f.q ?? ''})) desc, c.name, c.id`;
      case 'name': return tx`order by c.name, c.id`;
      case '-name': return tx`order by c.name desc, c.id`;
      case 'symbol': return tx`order by c.symbol, c.id`;
      case '-symbol': return tx`order by c.symbol desc, c.id`;
      case 'annual_probability': return tx`order by la.probability asc nulls last, c.name, c.id`;
      case '-annual_probability': return tx`order by la.probability desc nulls last, c.name, c.id`;
      case 'quarterly_probability': return tx`order by lq.probability asc nulls last, c.name, c.id`;
      case '-quarterly_probability': return tx`order by lq.probability desc nulls last, c.name, c.id`;
      case 'updated': return tx`order by greatest(la.created_at, lq.created_at) asc nulls last, c.id`;
      case '-updated': return tx`order by greatest(la.created_at, lq.created_at) desc nulls last, c.id`;
    }
  })();
  const rows = await tx<PortfolioRow[]>`
    select c.id, c.symbol, c.name, c.sector, c.country, c.access_level,
           la.id as annual_id, la.probability as annual_probability, la.risk_level as annual_risk_level,
           la.reporting_year as annual_year, la.created_at as annual_at,
           lq.id as quarterly_id, lq.probability as quarterly_probability, lq.risk_level as quarterly_risk_level,
           lq.reporting_year as quarterly_year, lq.reporting_quarter as quarterly_quarter, lq.created_at as quarterly_at,
           (select json_agg(json_build_object('period', t.reporting_year, 'probability', t.p) order by t.reporting_year)
              from (select a.reporting_year, a.probability::float8 as p from annual_predictions a
                    where a.company_id = c.id order by a.reporting_year desc limit ${TREND_POINTS}) t) as annual_trend,
           (select json_agg(json_build_object('period', t.reporting_year || '-' || t.reporting_quarter, 'probability', t.p) order by t.reporting_year, t.reporting_quarter)
              from (select q.reporting_year, q.reporting_quarter, q.ensemble_probability::float8 as p from quarterly_predictions q
                    where q.company_id = c.id order by q.reporting_year desc, q.reporting_quarter desc limit ${TREND_POINTS}) t) as quarterly_trend
    from companies c ${latest} ${where} ${order}
    limit ${f.limit} offset ${f.offset}`;
  const [count] = await tx<{ n: number }[]>`select count(*)::int as n from companies c ${latest} ${where}`;
  return { rows, total: count!.n };
}

/** Sectors of the companies the caller can see (for the filter). */
export async function portfolioSectors(tx: TxSql): Promise<string[]> {
  const rows = await tx<{ sector: string }[]>`select distinct sector from companies where is_active and sector is not null order by sector`;
  return rows.map((r) => r.sector);
}
