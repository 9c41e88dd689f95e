import type { TxSql } from '../db/pool.js';
import type { AccessLevel, RiskLevel } from '../domain/access.js';
import { ANNUAL_FIELD_NAMES, QUARTERLY_FIELD_NAMES, type ModelKind } from '../risk/index.js';

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

export async function findByPeriod(tx: TxSql, kind: ModelKind, companyId: string, year: string, quarter?: string): Promise<PredictionRow | null> {
  const [r] = await tx<Raw[]>`
    ${select(tx, kind)} where p.company_id = ${companyId} and p.reporting_year = ${year}
    ${kind === 'quarterly' ? tx`and p.reporting_quarter = ${quarter!}` : tx``}`;
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

export async function insertPrediction(tx: TxSql, kind: ModelKind, w: PredictionWrite): Promise<string> {
  const cols = columnsOf(kind, w);
  const [r] = await tx<{ id: string }[]>`insert into ${tx(TABLE[kind])} ${tx(cols)} returning id`;
  return r!.id;
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
  sort: 'created_at' | '-created_at' | 'probability' | '-probability' | 'reporting_year' | '-reporting_year';
  limit: number;
  offset: number;
}

export async function listPredictions(tx: TxSql, kind: ModelKind, f: PredictionFilter): Promise<{ rows: PredictionRow[]; total: number }> {
  const where = tx`
    where true
    ${f.companyId ? tx`and p.company_id = ${f.companyId}` : tx``}
    ${f.symbol ? tx`and c.symbol = ${f.symbol}` : tx``}
    ${f.year ? tx`and p.reporting_year = ${f.year}` : tx``}
    ${f.quarter && kind === 'quarterly' ? tx`and p.reporting_quarter = ${f.quarter}` : tx``}
    ${f.riskLevel ? tx`and p.risk_level = ${f.riskLevel}` : tx``}
    ${f.sector ? tx`and c.sector = ${f.sector}` : tx``}
    ${f.accessLevel ? tx`and p.access_level = ${f.accessLevel}` : tx``}
    ${f.createdFrom ? tx`and p.created_at >= ${f.createdFrom}` : tx``}
    ${f.createdTo ? tx`and p.created_at < ${f.createdTo}` : tx``}`;
  const desc = f.sort.startsWith('-');
  const col = f.sort.replace('-', '');
  const sortCol = col === 'probability' ? FINAL[kind] : col;
  const order = desc ? tx`order by ${tx('p.' + sortCol)} desc, p.id desc` : tx`order by ${tx('p.' + sortCol)} asc, p.id asc`;
  // Both statements go out together on the transaction's connection (pipelined: one round trip).
  const [rows, [count]] = await Promise.all([
    tx<Raw[]>`${select(tx, kind)} ${where} ${order} limit ${f.limit} offset ${f.offset}`,
    tx<{ n: number }[]>`select count(*)::int as n from ${tx(TABLE[kind])} p join companies c on c.id = p.company_id ${where}`,
  ]);
  return { rows: rows.map((r) => toRow(kind, r)), total: count!.n };
}
