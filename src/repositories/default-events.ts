// Recorded defaults (migration 0050), under the caller's row-level security (the company's
// rules), and the stored history backtests and `model train --from-database` read.
import type { Sql, TxSql } from '../db/pool.js';
import type { ModelKind } from '../risk/index.js';

export interface DefaultEventRow {
  id: string;
  company_id: string;
  default_date: string;
  source: string;
  recorded_by: string | null;
  created_at: Date;
}

const PD: Record<ModelKind, string> = { annual: 'probability', quarterly: 'ensemble_probability' };
const TABLE: Record<ModelKind, string> = { annual: 'annual_predictions', quarterly: 'quarterly_predictions' };

/** The event just recorded, or null when the company already has one on that date. */
export async function insertDefaultEvent(tx: TxSql, e: { companyId: string; date: string; source: string; recordedBy: string }): Promise<DefaultEventRow | null> {
  const [r] = await tx<DefaultEventRow[]>`
    insert into company_default_events (company_id, default_date, source, recorded_by)
    values (${e.companyId}, ${e.date}, ${e.source}, ${e.recordedBy})
    on conflict (company_id, default_date) do nothing
    returning id, company_id, default_date::text, source, recorded_by, created_at`;
  return r ?? null;
}

export async function defaultEventOn(tx: TxSql, companyId: string, date: string): Promise<DefaultEventRow | null> {
  const [r] = await tx<DefaultEventRow[]>`
    select id, company_id, default_date::text, source, recorded_by, created_at from company_default_events
     where company_id = ${companyId} and default_date = ${date}`;
  return r ?? null;
}

export function defaultEventsOf(tx: TxSql, companyId: string): Promise<DefaultEventRow[]> {
  return tx<DefaultEventRow[]>`
    select id, company_id, default_date::text, source, recorded_by, created_at from company_default_events
     where company_id = ${companyId} order by default_date`;
}

/** Predictions with the model that made them, visible on `tx` (or all, as the owner). */
export function predictionsForBacktest(tx: TxSql | Sql, kind: ModelKind) {
  return tx.unsafe<Array<{ company_id: string; made_at: Date; pd: number; risk_level: string; model_name: string; model_version: string }>>(
    `select company_id, created_at as made_at, ${PD[kind]}::float8 as pd, risk_level, model_name, model_version
       from ${TABLE[kind]} where model_name is not null and model_version is not null and company_id is not null`,
  );
}

export function defaultDates(tx: TxSql | Sql) {
  return tx<Array<{ company_id: string; default_date: Date }>>`select company_id, default_date::timestamp as default_date from company_default_events`;
}

/**
 * Every prediction's ratios with its label: 1 when its company defaulted within `horizon` months
 * after it, 0 when that long passed without one, null when not labelled (still open, or made
 * after the company's default). With `tenantId`, only that tenant's organizations' rows.
 */
export function labelledRatios(sql: Sql, kind: ModelKind, fields: readonly string[], o: { horizon: number; asOf: Date; tenantId: string | null }) {
  return sql.unsafe<Array<Record<string, string | null> & { label: number | null }>>(
    `select ${fields.map((f) => `p.${f}::text as ${f}`).join(', ')},
            case when exists (select 1 from company_default_events d where d.company_id = p.company_id
                               and d.default_date > p.created_at and d.default_date <= p.created_at + make_interval(months => $1)) then 1
                 when exists (select 1 from company_default_events d where d.company_id = p.company_id and d.default_date <= p.created_at) then null
                 when p.created_at + make_interval(months => $1) <= $2 then 0
                 else null end as label
       from ${TABLE[kind]} p
       left join organizations o on o.id = p.organization_id
      where ($3::uuid is null or o.tenant_id = $3::uuid)`,
    [o.horizon, o.asOf, o.tenantId],
  );
}
