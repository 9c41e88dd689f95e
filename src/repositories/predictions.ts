import { Coalescer } from '../db/coalescer.js';
import { onceMoreIfServerEnded } from '../db/tx.js';
import type { Sql, TxSql } from '../db/pool.js';
import type { AccessLevel, RiskLevel } from '../domain/access.js';
import { ANNUAL_FIELD_NAMES, QUARTERLY_FIELD_NAMES, type ModelKind } from '../risk/index.js';
import { afterCursor, cappedTotal, keyColumns, keyValues, orderBy, RISK_LEVELS, TOTAL_CAP, walk, type CursorValues, type PlanProfile, type SortKey, type Total } from './keyset.js';

export const TABLE: Record<ModelKind, string> = { annual: 'annual_predictions', quarterly: 'quarterly_predictions' };
export const RATIO_FIELDS: Record<ModelKind, readonly string[]> = { annual: ANNUAL_FIELD_NAMES, quarterly: QUARTERLY_FIELD_NAMES };
export const OUTPUT_FIELDS: Record<ModelKind, readonly string[]> = {
  annual: ['probability', 'logistic_probability', 'step_probability', 'risk_level', 'confidence'],
  quarterly: ['ensemble_probability', 'logistic_probability', 'gbm_probability', 'step_probability', 'risk_level', 'confidence'],
};
/** The column that holds the final probability. */
export const FINAL: Record<ModelKind, 'probability' | 'ensemble_probability'> = { annual: 'probability', quarterly: 'ensemble_probability' };

export interface PredictionRow {
  id: string;
  kind: ModelKind;
  company_id: string;
  company_symbol: string;
  company_name: string;
  company_sector: string | null;
  company_country: string | null;
  company_exchange: string | null;
  company_market_cap: number | null;
  created_by: string | null;
  reporting_year: string;
  reporting_quarter?: string;
  /** ratio fields and outputs, by column name */
  values: Record<string, number | string | null>;
  risk_level: RiskLevel;
  model_name: string | null;
  model_version: string | null;
  access_level: AccessLevel;
  organization_id: string | null;
  /** the organization's tenant (for the cache's access check) */
  tenant_id: string | null;
  created_at: Date;
  updated_at: Date;
}

type Raw = Record<string, unknown>;

function toRow(kind: ModelKind, r: Raw): PredictionRow {
  const values: Record<string, number | string | null> = {};
  for (const f of [...RATIO_FIELDS[kind], ...OUTPUT_FIELDS[kind]]) values[f] = r[f] as number | string | null;
  return {
    id: r.id as string,
    kind,
    company_id: r.company_id as string,
    company_symbol: r.company_symbol as string,
    company_name: r.company_name as string,
    company_sector: r.company_sector as string | null,
    company_country: r.company_country as string | null,
    company_exchange: r.company_exchange as string | null,
    company_market_cap: r.company_market_cap as number | null,
    created_by: r.created_by as string | null,
    reporting_year: r.reporting_year as string,
    ...(kind === 'quarterly' ? { reporting_quarter: r.reporting_quarter as string } : {}),
    values,
    risk_level: r.risk_level as RiskLevel,
    model_name: r.model_name as string | null,
    model_version: r.model_version as string | null,
    access_level: r.access_level as AccessLevel,
    organization_id: r.organization_id as string | null,
    tenant_id: r.tenant_id as string | null,
    created_at: r.created_at as Date,
    updated_at: r.updated_at as Date,
  };
}

const select = (tx: TxSql, kind: ModelKind) => tx`
  select p.*, c.symbol as company_symbol, c.name as company_name, c.sector as company_sector, c.country as company_country,
         c.exchange as company_exchange, c.market_cap as company_market_cap, o.tenant_id
  from ${tx(TABLE[kind])} p
  join companies c on c.id = p.company_id
  left join organizations o on o.id = p.organization_id`;

export async function findPrediction(tx: TxSql, kind: ModelKind, id: string): Promise<PredictionRow | null> {
  const [r] = await tx<Raw[]>`${select(tx, kind)} where p.id = ${id}`;
  return r ? toRow(kind, r) : null;
}

/** The existing prediction's id for this company and period (same scope as the company, so readable). */
export async function conflictingId(tx: TxSql, kind: ModelKind, companyId: string, year: string, quarter?: string): Promise<string | null> {
  const [r] = await tx<{ id: string }[]>`
    select id from ${tx(TABLE[kind])} where company_id = ${companyId} and reporting_year = ${year}
    ${kind === 'quarterly' ? tx`and reporting_quarter = ${quarter!}` : tx``}`;
  return r?.id ?? null;
}

export interface PredictionWrite {
  company_id: string;
  created_by: string;
  reporting_year: string;
  reporting_quarter?: string;
  values: Record<string, number | string | null>;
  model_name: string;
  model_version: string;
}

function columnsOf(kind: ModelKind, w: PredictionWrite): Record<string, string | number | null> {
  const cols: Record<string, string | number | null> = {
    company_id: w.company_id,
    created_by: w.created_by,
    reporting_year: w.reporting_year,
    model_name: w.model_name,
    model_version: w.model_version,
  };
  if (kind === 'quarterly') cols.reporting_quarter = w.reporting_quarter!;
  for (const f of [...RATIO_FIELDS[kind], ...OUTPUT_FIELDS[kind]]) cols[f] = w.values[f] ?? null;
  return cols;
}

/**
 * Inserts unless the company already has a prediction for the period, and writes the audit row
 * in the same statement: the create path's one round trip. Returns null on a conflict.
 */
export async function insertPredictionAudited(
  tx: TxSql,
  kind: ModelKind,
  w: PredictionWrite,
  company: { symbol: string; name: string; sector: string | null; country: string | null; exchange: string | null; market_cap: number | null; tenant_id: string | null },
  audit: { userId: string; tenantId: string | null; organizationId: string | null; ip: string | null },
): Promise<PredictionRow | null> {
  const cols = columnsOf(kind, w);
  const [r] = await tx<Raw[]>`
    with p as (
      insert into ${tx(TABLE[kind])} ${tx(cols)}
      on conflict (company_id, reporting_year${kind === 'quarterly' ? tx`, reporting_quarter` : tx``}) do nothing
      returning *
    ), a as (
      insert into audit_logs (user_id, tenant_id, organization_id, action, table_name, row_id, after, ip)
      select ${audit.userId}, ${audit.tenantId}, ${audit.organizationId}, 'create', ${TABLE[kind]}, p.id::text, to_jsonb(p), ${audit.ip}
      from p
    )
    select * from p`;
  if (!r) return null;
  return toRow(kind, {
    ...r,
    company_symbol: company.symbol,
    company_name: company.name,
    company_sector: company.sector,
    company_country: company.country,
    company_exchange: company.exchange,
    company_market_cap: company.market_cap,
    tenant_id: company.tenant_id,
  });
}

export type FastCreate =
  | { outcome: 'created'; row: PredictionRow }
  | { outcome: 'company_not_found' | 'company_inactive' }
  | { outcome: 'level_mismatch' | 'forbidden'; level: AccessLevel }
  | { outcome: 'conflict'; existing_id: string; company: { symbol: string } };

// to_jsonb() writes timestamps without a zone (they are UTC, as the sessions run in UTC).
const utc = (s: string) => new Date(s.endsWith('Z') ? s : s + 'Z');

interface CreateItem {
  uid: string;
  company: string;
  level: AccessLevel | null;
  v: Record<string, unknown>;
  ip: string | null;
}
type CreateOutcome = { outcome: string; row?: Raw; company?: Raw; level?: AccessLevel; existing_id?: string };

/**
 * Concurrent creates share a statement: at most CREATE_BATCHES_IN_FLIGHT calls per pool and
 * kind run at once, and the creates that arrive meanwhile go together in the next one
 * (db/coalescer.ts). Alone, a create is the one-item call it always was. Four in flight: on two
 * cores, sixteen clients formed batches of three to five and the creates per second rose by
 * half (docs/benchmarks.md); one in flight would make every create wait for the one before.
 */
const CREATE_BATCHES_IN_FLIGHT = 4;
const CREATE_BATCH_MAX = 64;
const coalescers = new WeakMap<Sql, Record<ModelKind, Coalescer<CreateItem, CreateOutcome>>>();

function createCoalescer(sql: Sql, kind: ModelKind): Coalescer<CreateItem, CreateOutcome> {
  let byKind = coalescers.get(sql);
  if (!byKind) {
    const make = (k: ModelKind) => {
      const one = k === 'annual' ? sql`app_create_annual_prediction` : sql`app_create_quarterly_prediction`;
      const many = k === 'annual' ? sql`app_create_annual_predictions` : sql`app_create_quarterly_predictions`;
      // One statement in autocommit: a session the server ended under it committed nothing.
      return new Coalescer<CreateItem, CreateOutcome>((items) => onceMoreIfServerEnded(async () => {
        if (items.length === 1) {
          const it = items[0]!;
          const [r] = await sql<{ r: CreateOutcome }[]>`select ${one}(${it.uid}, ${it.company}, ${it.level}, ${sql.json(it.v as never)}, ${it.ip}::inet) as r`;
          return [r!.r];
        }
        const [r] = await sql<{ r: CreateOutcome[] }[]>`select ${many}(${sql.json(items as never)}) as r`;
        return r!.r;
      }), { maxInFlight: CREATE_BATCHES_IN_FLIGHT, maxBatch: CREATE_BATCH_MAX });
    };
    byKind = { annual: make('annual'), quarterly: make('quarterly') };
    coalescers.set(sql, byKind);
  }
  return byKind[kind];
}

/** How the creates of this pool were batched (tests, benchmarks). */
export function createBatchStats(sql: Sql, kind: ModelKind): Coalescer<unknown, unknown>['stats'] | null {
  return coalescers.get(sql)?.[kind].stats ?? null;
}

/**
 * The common create in one statement and one round trip (app_create_*_prediction, migration
 * 0040): context, the service's checks, the insert and its audit row, inside the database.
 * Concurrent ones are coalesced into one call (app_create_*_predictions, migration 0045).
 */
export async function createForCompany(
  sql: Sql,
  kind: ModelKind,
  w: PredictionWrite,
  level: AccessLevel | null,
  ip: string | null,
): Promise<FastCreate> {
  const v = { ...w.values, reporting_year: w.reporting_year, ...(kind === 'quarterly' ? { reporting_quarter: w.reporting_quarter } : {}), model_name: w.model_name, model_version: w.model_version };
  const out = await createCoalescer(sql, kind).submit({ uid: w.created_by, company: w.company_id, level, v, ip });
  if (out.outcome !== 'created') return out as FastCreate;
  const c = out.company!;
  const row = out.row!;
  return {
    outcome: 'created',
    row: toRow(kind, {
      ...row,
      created_at: utc(row.created_at as string),
      updated_at: utc(row.updated_at as string),
      company_symbol: c.symbol,
      company_name: c.name,
      company_sector: c.sector,
      company_country: c.country,
      company_exchange: c.exchange,
      company_market_cap: c.market_cap,
      tenant_id: c.tenant_id,
    }),
  };
}

/** Replaces ratios and outputs (a re-run of the models); keeps the creator and company. */
export async function replacePrediction(tx: TxSql, kind: ModelKind, id: string, w: PredictionWrite): Promise<boolean> {
  const cols = columnsOf(kind, w);
  delete cols.company_id;
  delete cols.created_by;
  const res = await tx`update ${tx(TABLE[kind])} set ${tx(cols)} where id = ${id}`;
  return res.count === 1;
}

export async function deletePrediction(tx: TxSql, kind: ModelKind, id: string): Promise<boolean> {
  const res = await tx`delete from ${tx(TABLE[kind])} where id = ${id}`;
  return res.count === 1;
}

export type PredictionSort = 'created_at' | '-created_at' | 'probability' | '-probability' | 'reporting_year' | '-reporting_year';

export interface PredictionFilter {
  companyId?: string;
  symbol?: string;
  year?: string;
  quarter?: string;
  riskLevel?: RiskLevel;
  sector?: string;
  accessLevel?: AccessLevel;
  createdFrom?: Date;
  createdTo?: Date;
}

/** Each sort walks its own index: (scope_id, key…, id) per scope, (key…, id) for super admins. */
export function predictionSortSpec(kind: ModelKind, sort: PredictionSort): SortKey {
  const col = sort.replace('-', '');
  if (col === 'created_at') return { cols: ['created_at', 'id'], types: ['timestamp', 'uuid'], casts: ['timestamp', 'uuid'] };
  if (col === 'probability') return { cols: ['pd_micros', 'id'], types: ['int', 'uuid'], casts: ['int', 'uuid'] };
  return kind === 'annual'
    ? { cols: ['reporting_year', 'id'], types: ['text', 'uuid'], casts: ['text', 'uuid'] }
    : { cols: ['reporting_year', 'reporting_quarter', 'id'], types: ['text', 'text', 'uuid'], casts: ['text', 'text', 'uuid'] };
}

/**
 * The filters as conditions on alias `p` (a prediction table); the risk level is a walk unit, not
 * a filter. `rare`: the sector is rare in these scopes, so it also reaches the predictions through
 * that sector's companies (their company_id index) rather than only as a column to check.
 */
function filterSql(tx: TxSql, kind: ModelKind, f: PredictionFilter, everyScope: boolean, rare = false) {
  return tx`
    ${f.sector && rare ? tx`and p.company_id in (select c3.id from companies c3 where c3.sector = ${f.sector})` : tx``}
    ${f.companyId ? tx`and p.company_id = ${f.companyId}` : tx``}
    ${f.symbol ? tx`and p.company_id in (select c2.id from companies c2 where c2.symbol = ${f.symbol})` : tx``}
    ${f.year ? tx`and p.reporting_year = ${f.year}` : tx``}
    ${f.quarter && kind === 'quarterly' ? tx`and p.reporting_quarter = ${f.quarter}` : tx``}
    ${f.sector ? tx`and p.sector = ${f.sector}` : tx``}
    ${f.accessLevel && everyScope ? tx`and p.access_level = ${f.accessLevel}` : tx``}
    ${f.createdFrom ? tx`and p.created_at >= ${f.createdFrom}::timestamp` : tx``}
    ${f.createdTo ? tx`and p.created_at < ${f.createdTo}::timestamp` : tx``}`;
}

/**
 * The plans a list with these filters wants (keyset.usePlans): walks, unless a filter selects a
 * few rows through an index of its own (one company or symbol; a creation-time window when the
 * sort is another column), which the planner reads and sorts, planned for the actual values.
 */
export function predictionPlans(f: PredictionFilter, sort: PredictionSort): PlanProfile {
  if (f.companyId || f.symbol) return 'custom';
  if ((f.createdFrom || f.createdTo) && !sort.endsWith('created_at')) return 'custom';
  return 'walk';
}

/**
 * A walk filtered by a year or a sector reads about page × scopeTotal / matches rows to fill a
 * page; reading the matches and sorting them reads `matches`. With the exact counts from the
 * rollups the cheaper one is known before the list runs: rare matches are read directly.
 */
export function isRare(matches: number, scopeTotal: number, fetch: number): boolean {
  return matches * matches < fetch * scopeTotal;
}

/**
 * One page (plus one row, to know whether there is more) of the caller's predictions: one walk
 * per (scope the caller reads, risk level) on its (scope_id, risk_level, key…, id) index, merged
 * (keyset.walk); a company's or symbol's predictions directly. `scopes` is scopesOf(tx,
 * f.accessLevel), or null for a super admin. `tenantId` is the caller's tenant: the tenant of
 * every organization row it can read, unless it is a super admin (undefined: looked up).
 */
export async function listPredictions(
  tx: TxSql,
  kind: ModelKind,
  f: PredictionFilter,
  page: { sort: PredictionSort; fetch: number; after?: CursorValues; scopes: string[] | null; tenantId?: string | null; rare?: boolean },
): Promise<Array<PredictionRow & { sort_key: CursorValues }>> {
  const key = predictionSortSpec(kind, page.sort);
  const desc = page.sort.startsWith('-');
  const table = tx(TABLE[kind]);
  // One company, a symbol or a rare sector: their rows, through the company_id index, with no walk
  // per scope and risk level (each would read the same rows again).
  const direct = Boolean(f.companyId || f.symbol || (page.rare && f.sector));
  const risks = f.riskLevel ? [f.riskLevel] : RISK_LEVELS;
  const walkOpts = direct
    ? { scopes: null, scopeColumn: 'p.scope_id', fetch: page.fetch, key, desc }
    : { scopes: page.scopes, risks, scopeColumn: 'p.scope_id', riskColumn: 'p.risk_level', fetch: page.fetch, key, desc };
  const source = walk(tx, walkOpts, (unit) => tx`
    select p.* ${keyColumns(tx, 'p', key)} from ${table} p
    where ${unit} ${direct && f.riskLevel ? tx`and p.risk_level = ${f.riskLevel}` : tx``}
      ${filterSql(tx, kind, f, direct || page.scopes === null, page.rare)} ${afterCursor(tx, 'p', key, desc, page.after)}
    order by ${orderBy(tx, 'p', key, desc)} limit ${page.fetch}`);
  const tenant = page.tenantId === undefined
    ? tx`(select o.tenant_id from organizations o where o.id = x.organization_id)`
    : tx`case when x.organization_id is not null then ${page.tenantId}::uuid end`;
  const rows = await tx<Raw[]>`
    select x.*, c.symbol as company_symbol, c.name as company_name, c.sector as company_sector, c.country as company_country,
           c.exchange as company_exchange, c.market_cap as company_market_cap, ${tenant} as tenant_id
    from (${source}) x
    join companies c on c.id = x.company_id
    order by ${orderBy(tx, 'x', key, desc)}`;
  return rows.map((r) => ({ ...toRow(kind, r), sort_key: keyValues(r, key) }));
}

/**
 * How many predictions the filters match. Exact from the reporting-period rollups when every
 * filter is one of their dimensions (period, risk level, sector, access level), with the scopes'
 * total beside it (scopeTotal: how rare the match is); otherwise a count that stops at
 * TOTAL_CAP + 1 rows.
 */
export async function countPredictions(tx: TxSql, kind: ModelKind, f: PredictionFilter, scopes: string[] | null): Promise<Total & { scopeTotal?: number }> {
  const fromRollups = !f.companyId && !f.symbol && !f.createdFrom && !f.createdTo;
  if (fromRollups) {
    const dims = (a: string) => tx`
      ${f.year ? tx`and ${tx(a + '.reporting_year')} = ${f.year}` : tx``}
      ${f.quarter && kind === 'quarterly' ? tx`and ${tx(a + '.reporting_quarter')} = ${f.quarter}` : tx``}
      ${f.riskLevel ? tx`and ${tx(a + '.risk_level')} = ${f.riskLevel}` : tx``}
      ${f.sector ? tx`and ${tx(a + '.sector')} = ${f.sector}` : tx``}
      ${f.accessLevel && scopes === null ? tx`and ${tx(a + '.access_level')} = ${f.accessLevel}` : tx``}`;
    const from = (table: string, a: string) =>
      scopes === null ? tx`${tx(table)} ${tx(a)}` : tx`unnest(${scopes}::uuid[]) s(id) join ${tx(table)} ${tx(a)} on ${tx(a + '.scope_id')} = s.id`;
    const [r] = await tx<{ n: string; all: string }[]>`
      select coalesce(sum(n) filter (where matches), 0)::bigint as n, coalesce(sum(n), 0)::bigint as all from (
        select r.n, true ${dims('r')} as matches from ${from('prediction_year_rollups', 'r')} where r.kind = ${kind}
        union all
        select d.n, true ${dims('d')} as matches from ${from('prediction_rollup_deltas', 'd')} where d.kind = ${kind}
      ) z`;
    return { total: Number(r!.n), total_relation: 'eq', scopeTotal: Number(r!.all) };
  }
  const table = tx(TABLE[kind]);
  const direct = Boolean(f.companyId || f.symbol);
  const risks = f.riskLevel ? [f.riskLevel] : RISK_LEVELS;
  const key = predictionSortSpec(kind, '-created_at');
  const opts = direct
    ? { scopes: null, scopeColumn: 'p.scope_id', fetch: TOTAL_CAP + 1, key, desc: true, ordered: false }
    : { scopes, risks, scopeColumn: 'p.scope_id', riskColumn: 'p.risk_level', fetch: TOTAL_CAP + 1, key, desc: true, ordered: false };
  const rows = walk(tx, opts, (unit) => tx`
    select 1 from ${table} p where ${unit} ${direct && f.riskLevel ? tx`and p.risk_level = ${f.riskLevel}` : tx``}
      ${filterSql(tx, kind, f, direct || scopes === null)}
    order by ${orderBy(tx, 'p', key, true)} limit ${TOTAL_CAP + 1}`);
  const [r] = await tx<{ n: number }[]>`select count(*)::int as n from (${rows}) z`;
  return cappedTotal(r!.n);
}

/** The predictions of a few companies (a symbol's page), newest period first, through the unique keys. */
export async function predictionsOfCompanies(tx: TxSql, kind: ModelKind, companyIds: string[], limit = 500): Promise<PredictionRow[]> {
  if (companyIds.length === 0) return [];
  const rows = await tx<Raw[]>`
    ${select(tx, kind)} where p.company_id = any(${companyIds}::uuid[])
    order by p.reporting_year desc ${kind === 'quarterly' ? tx`, p.reporting_quarter desc` : tx``}, p.id limit ${limit}`;
  return rows.map((r) => toRow(kind, r));
}
