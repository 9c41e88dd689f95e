import type { TxSql } from '../db/pool.js';
import type { AccessLevel } from '../domain/access.js';
import type { Patch } from './tenancy.js';

export interface CompanyRow {
  id: string;
  organization_id: string | null;
  /** The owning organization's tenant (for the cache's access check); null for personal/system. */
  tenant_id: string | null;
  symbol: string;
  name: string;
  market_cap: number | null;
  sector: string | null;
  country: string | null;
  exchange: string | null;
  is_active: boolean;
  access_level: AccessLevel;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const SELECT = (tx: TxSql) => tx`
  select c.id, c.organization_id, o.tenant_id, c.symbol, c.name, c.market_cap, c.sector, c.country, c.exchange,
         c.is_active, c.access_level, c.created_by, c.created_at, c.updated_at
  from companies c left join organizations o on o.id = c.organization_id`;

export async function findCompany(tx: TxSql, id: string): Promise<CompanyRow | null> {
  const [row] = await tx<CompanyRow[]>`${SELECT(tx)} where c.id = ${id}`;
  return row ?? null;
}

/** The company with this symbol in exactly this scope (symbols are unique per scope). */
export async function findCompanyInScope(
  tx: TxSql,
  symbol: string,
  scope: { access_level: AccessLevel; organization_id: string | null; created_by: string },
): Promise<CompanyRow | null> {
  const [row] = await tx<CompanyRow[]>`
    ${SELECT(tx)} where c.symbol = ${symbol} and c.access_level = ${scope.access_level}
    ${scope.access_level === 'organization' ? tx`and c.organization_id = ${scope.organization_id}` : tx``}
    ${scope.access_level === 'personal' ? tx`and c.created_by = ${scope.created_by}` : tx``}`;
  return row ?? null;
}

export interface NewCompany {
  symbol: string;
  name: string;
  market_cap: number | null;
  sector: string | null;
  country: string | null;
  exchange: string | null;
  access_level: AccessLevel;
  organization_id: string | null;
  created_by: string;
}

export async function insertCompany(tx: TxSql, c: NewCompany): Promise<CompanyRow> {
  const [row] = await tx<{ id: string }[]>`
    insert into companies (symbol, name, market_cap, sector, country, exchange, access_level, organization_id, created_by)
    values (${c.symbol}, ${c.name}, ${c.market_cap}, ${c.sector}, ${c.country}, ${c.exchange}, ${c.access_level}, ${c.organization_id}, ${c.created_by})
    returning id`;
  return (await findCompany(tx, row!.id))!;
}

export async function updateCompany(tx: TxSql, id: string, patch: Patch): Promise<CompanyRow | null> {
  const fields = Object.keys(patch);
  if (fields.length > 0) {
    const res = await tx`update companies set ${tx(patch, fields)} where id = ${id}`;
    if (res.count === 0) return null;
  }
  return findCompany(tx, id);
}

export interface CompanyFilter {
  sector?: string;
  q?: string;
  accessLevel?: AccessLevel;
  includeInactive?: boolean;
  limit: number;
  offset: number;
}

/**
 * Visible companies (row-level security filters), newest first with the id as tie-breaker so
 * pages are stable. `q` is full-text over names with the GIN index
 * (to_tsvector('english', name) @@ websearch_to_tsquery), ranked.
 */
export async function listCompanies(tx: TxSql, f: CompanyFilter): Promise<{ rows: CompanyRow[]; total: number }> {
  const where = tx`
    where true
    ${f.includeInactive ? tx`` : tx`and c.is_active`}
    ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
    ${f.accessLevel ? tx`and c.access_level = ${f.accessLevel}` : tx``}
    ${f.q ? tx`and to_tsvector('english', c.name) @@ websearch_to_tsquery('english', ${f.q})` : tx``}`;
  const order = f.q
    ? tx`order by ts_rank(to_tsvector('english', c.name), websearch_to_tsquery('english', ${f.q})) desc, c.id`
    : tx`order by c.created_at desc, c.id`;
  const [rows, [count]] = await Promise.all([
    tx<CompanyRow[]>`${SELECT(tx)} ${where} ${order} limit ${f.limit} offset ${f.offset}`,
    tx<{ n: number }[]>`select count(*)::int as n from companies c ${where}`,
  ]);
  return { rows, total: count!.n };
}

export async function companyHasPredictions(tx: TxSql, id: string): Promise<boolean> {
  const [r] = await tx<{ x: boolean }[]>`
    select exists(select 1 from annual_predictions where company_id = ${id})
        or exists(select 1 from quarterly_predictions where company_id = ${id}) as x`;
  return r!.x;
}
