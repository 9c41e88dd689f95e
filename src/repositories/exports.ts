// The queries behind exports: every row a list's filters match (no paging), for a cursor. They
// run in the caller's withUserTx, so row-level security decides what is exported exactly as it
// decides what the list shows.
import type { TxSql } from '../db/pool.js';
import type { ModelKind } from '../risk/index.js';
import { FINAL, TABLE, type PredictionFilter, type PredictionSort } from './predictions.js';
import type { PortfolioFilter } from './portfolio.js';

export type ExportRow = Record<string, unknown>;

/** The prediction list's own filters, plus its sort (an export is the list without paging). */
export type PredictionExportFilter = PredictionFilter & { sort?: PredictionSort };

function orderSql(tx: TxSql, kind: ModelKind, sort: PredictionSort) {
  const desc = sort.startsWith('-');
  const dir = desc ? tx`desc` : tx`asc`;
  const col = sort.replace('-', '');
  if (col === 'probability') return tx`p.${tx(FINAL[kind])} ${dir}, p.id ${dir}`;
  if (col === 'reporting_year') return kind === 'annual' ? tx`p.reporting_year ${dir}, p.id ${dir}` : tx`p.reporting_year ${dir}, p.reporting_quarter ${dir}, p.id ${dir}`;
  return tx`p.created_at ${dir}, p.id ${dir}`;
}

export function predictionExportQuery(tx: TxSql, kind: ModelKind, f: PredictionExportFilter) {
  return tx<ExportRow[]>`
    select p.*, c.symbol as company_symbol, c.name as company_name, c.sector as company_sector, c.country as company_country,
           c.exchange as company_exchange, c.market_cap as company_market_cap
    from ${tx(TABLE[kind])} p join companies c on c.id = p.company_id
    where true
      ${f.companyId ? tx`and p.company_id = ${f.companyId}` : tx``}
      ${f.symbol ? tx`and c.symbol = ${f.symbol}` : tx``}
      ${f.year ? tx`and p.reporting_year = ${f.year}` : tx``}
      ${f.quarter && kind === 'quarterly' ? tx`and p.reporting_quarter = ${f.quarter}` : tx``}
      ${f.riskLevel ? tx`and p.risk_level = ${f.riskLevel}` : tx``}
      ${f.sector ? tx`and p.sector = ${f.sector}` : tx``}
      ${f.accessLevel ? tx`and p.access_level = ${f.accessLevel}` : tx``}
      ${f.createdFrom ? tx`and p.created_at >= ${f.createdFrom}::timestamp` : tx``}
      ${f.createdTo ? tx`and p.created_at < ${f.createdTo}::timestamp` : tx``}
    order by ${orderSql(tx, kind, f.sort ?? '-created_at')}`;
}

export function portfolioExportQuery(tx: TxSql, f: PortfolioFilter) {
  return tx<ExportRow[]>`
    select c.id, c.symbol, c.name, c.sector, c.country, c.exchange, c.market_cap, c.access_level,
           cl.annual_micros / 1000000.0 as annual_probability, cl.annual_risk_level, cl.annual_year,
           cl.quarterly_micros / 1000000.0 as quarterly_probability, cl.quarterly_risk_level, cl.quarterly_year, cl.quarterly_quarter
    from companies c left join company_latest cl on cl.company_id = c.id
    where c.is_active
      ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
      ${f.q ? tx`and c.id in (select app_company_matches(${f.q}))` : tx``}
      ${f.riskLevel ? tx`and cl.risk_level = ${f.riskLevel}` : tx``}
      ${f.withPredictions ? tx`and cl.latest_at is not null` : tx``}
    order by c.name, c.id`;
}
