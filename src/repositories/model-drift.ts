// What drift monitoring reads and keeps (services/model-drift.ts), as the owner: the most recent
// stored predictions' ratios and PDs with their tenants (the latest run is kept with
// repositories/monitoring.ts's snapshots).
import type { Sql } from '../db/pool.js';
import type { ModelKind } from '../risk/index.js';

const PD_COLUMN: Record<ModelKind, string> = { annual: 'probability', quarterly: 'ensemble_probability' };
const TABLE: Record<ModelKind, string> = { annual: 'annual_predictions', quarterly: 'quarterly_predictions' };

export interface DriftInputRow {
  tenant_id: string | null;
  tenant_name: string | null;
  pd: string;
  model_name: string | null;
  model_version: string | null;
  [ratio: string]: string | null;
}

/** The most recent `maxRows` predictions of a kind made in [since, until], newest first. */
export function recentPredictions(adminSql: Sql, kind: ModelKind, fields: readonly string[], w: { since: Date; until: Date; maxRows: number }) {
  // Table and column names come from constants and the model's field list, never from input.
  return adminSql.unsafe<DriftInputRow[]>(
    `select o.tenant_id, t.name as tenant_name, p.${PD_COLUMN[kind]}::text as pd, p.model_name, p.model_version,
            ${fields.map((f) => `p.${f}::text as ${f}`).join(', ')}
       from ${TABLE[kind]} p
       left join organizations o on o.id = p.organization_id
       left join tenants t on t.id = o.tenant_id
      where p.created_at >= $1 and p.created_at <= $2
      order by p.created_at desc
      limit $3`,
    [w.since, w.until, w.maxRows],
  );
}
