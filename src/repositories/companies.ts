import type { TxSql } from '../db/pool.js';
import type { AccessLevel } from '../domain/access.js';
import type { Patch } from './tenancy.js';
import { afterCursor, cappedTotal, keyColumns, orderBy, TOTAL_CAP, walk, type CursorValues, type PlanProfile, type SortKey, type Total } from './keyset.js';

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

export type CompanySort = 'created_at' | '-created_at' | 'name' | '-name' | 'symbol' | '-symbol';

export interface CompanyFilter {
  sector?: string;
  q?: string;
  accessLevel?: AccessLevel;
  includeInactive?: boolean;
}

export function companySortKey(sort: CompanySort): SortKey {
  const col = sort.replace('-', '');
  if (col === 'created_at') return { cols: ['created_at', 'id'], types: ['timestamp', 'uuid'], casts: ['timestamp', 'uuid'] };
  return { cols: [col, 'id'], types: ['text', 'uuid'], casts: ['text', 'uuid'] };
}

function companyFilterSql(tx: TxSql, f: CompanyFilter, everyScope: boolean) {
  return tx`
    ${f.includeInactive ? tx`` : tx`and c.is_active`}
    ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
    ${f.accessLevel && everyScope ? tx`and c.access_level = ${f.accessLevel}` : tx``}
    ${f.q ? tx`and c.id in (select app_company_matches(${f.q}))` : tx``}`;
}

/** Searches read their matches (app_company_matches) and sort them; other lists walk (keyset.usePlans). */
export const companyPlans = (f: CompanyFilter): PlanProfile => (f.q ? 'custom' : 'walk');

/**
 * One keyset page (plus one row) of the visible companies (row-level security filters), walked per
 * scope on (scope_id, sort key, id). `q` is full-text over names or an exact symbol, through the
 * GIN index (app_company_matches: a search costs its matches).
 */
export async function listCompanies(
  tx: TxSql,
  f: CompanyFilter,
  page: { sort: CompanySort; fetch: number; after?: CursorValues; scopes: string[] | null; tenantId?: string | null },
): Promise<Array<CompanyRow & { sort_key: CursorValues }>> {
  const key = companySortKey(page.sort);
  const desc = page.sort.startsWith('-');
  // A search's matches are few: read them directly rather than walking every scope.
  const scopes = f.q ? null : page.scopes;
  const source = walk(tx, { scopes, scopeColumn: 'c.scope_id', fetch: page.fetch, key, desc }, (unit) => tx`
    select c.* ${keyColumns(tx, 'c', key)} from companies c
    where ${unit} ${companyFilterSql(tx, f, scopes === null)} ${afterCursor(tx, 'c', key, desc, page.after)}
    order by ${orderBy(tx, 'c', key, desc)} limit ${page.fetch}`);
  // An organization row the caller reads is in the caller's tenant (row-level security), unless
  // the caller is a super admin (tenantId undefined): then it is looked up.
  const tenant = page.tenantId === undefined
    ? tx`(select o.tenant_id from organizations o where o.id = x.organization_id)`
    : tx`case when x.organization_id is not null then ${page.tenantId}::uuid end`;
  const rows = await tx<Array<CompanyRow & Record<string, unknown>>>`
    select x.id, x.organization_id, ${tenant} as tenant_id, x.symbol, x.name, x.market_cap, x.sector, x.country, x.exchange,
           x.is_active, x.access_level, x.created_by, x.created_at, x.updated_at, x.k0, x.k1
    from (${source}) x
    order by ${orderBy(tx, 'x', key, desc)}`;
  return rows.map(({ k0, k1, ...r }) => ({ ...(r as CompanyRow), sort_key: [k0, k1] as CursorValues }));
}

/** How many companies match, counted up to TOTAL_CAP + 1. */
export async function countCompanies(tx: TxSql, f: CompanyFilter, scopes: string[] | null): Promise<Total> {
  const walked = f.q ? null : scopes;
  const rows = walk(tx, { scopes: walked, scopeColumn: 'c.scope_id', fetch: TOTAL_CAP + 1, key: companySortKey('name'), desc: false, ordered: false }, (unit) => tx`
    select 1 from companies c where ${unit} ${companyFilterSql(tx, f, walked === null)}
    order by ${orderBy(tx, 'c', companySortKey('name'), false)} limit ${TOTAL_CAP + 1}`);
  const [r] = await tx<{ n: number }[]>`select count(*)::int as n from (${rows}) z`;
  return cappedTotal(r!.n);
}

/**
 * The visible companies with this symbol (row-level security filters), read per scope on
 * (scope_id, symbol): a handful of index probes, however many companies a tenant holds.
 */
export async function findVisibleBySymbol(tx: TxSql, symbol: string, scopes: string[] | null, limit = 50): Promise<CompanyRow[]> {
  return tx<CompanyRow[]>`
    ${SELECT(tx)} where c.symbol = ${symbol} ${scopes ? tx`and c.scope_id = any(${scopes}::uuid[])` : tx``}
    order by case c.access_level when 'personal' then 0 when 'organization' then 1 else 2 end, c.created_at, c.id
    limit ${limit}`;
}

/** Moves every prediction of `from` to `into`; returns how many moved per kind (RLS-limited). */
export async function movePredictions(tx: TxSql, from: string, into: string): Promise<{ annual: number; quarterly: number }> {
  const a = await tx`update annual_predictions set company_id = ${into} where company_id = ${from}`;
  const q = await tx`update quarterly_predictions set company_id = ${into} where company_id = ${from}`;
  return { annual: a.count, quarterly: q.count };
}

/** The periods both companies have a prediction for (a merge would break the unique keys). */
export async function overlappingPeriods(tx: TxSql, a: string, b: string): Promise<string[]> {
  const rows = await tx<{ period: string }[]>`
    select 'annual ' || x.reporting_year as period from annual_predictions x join annual_predictions y
      on y.company_id = ${b} and y.reporting_year = x.reporting_year where x.company_id = ${a}
    union all
    select 'quarterly ' || x.reporting_quarter || ' ' || x.reporting_year from quarterly_predictions x join quarterly_predictions y
      on y.company_id = ${b} and y.reporting_year = x.reporting_year and y.reporting_quarter = x.reporting_quarter where x.company_id = ${a}
    order by 1`;
  return rows.map((r) => r.period);
}

export async function predictionCounts(tx: TxSql, id: string): Promise<{ annual: number; quarterly: number }> {
  const [r] = await tx<{ annual: number; quarterly: number }[]>`
    select (select count(*)::int from annual_predictions where company_id = ${id}) as annual,
           (select count(*)::int from quarterly_predictions where company_id = ${id}) as quarterly`;
  return r!;
}

/** Deletes the company's predictions (RLS-limited: returns how many went), not the company. */
export async function deletePredictionsOf(tx: TxSql, id: string): Promise<{ annual: number; quarterly: number }> {
  const a = await tx`delete from annual_predictions where company_id = ${id}`;
  const q = await tx`delete from quarterly_predictions where company_id = ${id}`;
  return { annual: a.count, quarterly: q.count };
}

export async function deleteCompany(tx: TxSql, id: string): Promise<boolean> {
  return (await tx`delete from companies where id = ${id}`).count === 1;
}

export interface SectorContext {
  /** The company's latest PD of this kind, in micros (null: it has none). */
  micros: number | null;
  /** Companies of the sector the caller can see with a latest PD of this kind. */
  peers: number;
  /** Of those, how many have a lower PD, and how many the same. */
  below: number;
  same: number;
  /** The peers' median PD in micros (percentile_cont), null without peers. */
  medianMicros: number | null;
}

/**
 * The company's latest PD of a kind against the latest PDs of the other companies of its sector
 * that the caller can see (row-level security on companies and company_latest). One statement;
 * its cost is the number of the sector's companies in the caller's scopes, not of predictions.
 */
export async function sectorContext(tx: TxSql, companyId: string, sector: string, kind: 'annual' | 'quarterly'): Promise<SectorContext> {
  const col = kind === 'annual' ? tx`cl.annual_micros` : tx`cl.quarterly_micros`;
  const [r] = await tx<Array<{ micros: number | null; peers: number; below: number; same: number; median: number | null }>>`
    with mine as (select ${col} as m from company_latest cl where cl.company_id = ${companyId}),
    peers as (
      select ${col} as m from company_latest cl join companies c on c.id = cl.company_id
      where c.sector = ${sector} and c.is_active and ${col} is not null
    )
    select (select m from mine) as micros,
           count(*)::int as peers,
           count(*) filter (where p.m < (select m from mine))::int as below,
           count(*) filter (where p.m = (select m from mine))::int as same,
           percentile_cont(0.5) within group (order by p.m) as median
    from peers p`;
  return { micros: r!.micros, peers: r!.peers, below: r!.below, same: r!.same, medianMicros: r!.median === null ? null : Number(r!.median) };
}
