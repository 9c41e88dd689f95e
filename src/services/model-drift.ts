/**
 * Drift monitoring over stored predictions (issue 15): per model kind, the PSI of each ratio and
 * of the final PD between the training split (from the artifact) and the most recent predictions,
 * overall and per tenant. Runs as the owner: it is an operator's cross-tenant view (the weekly job,
 * `accunode model monitor`), never served to tenant users. The latest run is kept in ops_snapshots
 * (source 'model-drift') for /metrics and the drift alarm.
 */
import type { Sql } from '../db/pool.js';
import { computeDrift, fieldNamesOf, type DriftReport, type RiskEngine } from '../risk/index.js';
import * as drift from '../repositories/model-drift.js';
import type { DriftInputRow } from '../repositories/model-drift.js';
import { getSnapshot, putSnapshot } from '../repositories/monitoring.js';

const DRIFT_SNAPSHOT_SOURCE = 'model-drift';

interface DriftOptions {
  /** Predictions made in the last `days` days (default 90). */
  days?: number;
  /** At most this many of the most recent predictions per kind (default 200,000: plenty for PSI). */
  maxRows?: number;
  /** Also one report per tenant (predictions of companies outside any organization: tenant null). */
  byTenant?: boolean;
  now?: Date;
}

export interface DriftScopeReport extends DriftReport {
  scope: 'all' | 'tenant';
  tenant_id: string | null;
  tenant_name: string | null;
}

export interface DriftRun {
  computed_at: string;
  window_days: number;
  since: string;
  reports: DriftScopeReport[];
  max_psi: number;
}



export async function computeModelDrift(adminSql: Sql, engine: RiskEngine, opts: DriftOptions = {}): Promise<DriftRun> {
  const days = opts.days ?? 90;
  if (!(Number.isInteger(days) && days >= 1 && days <= 3660)) throw new RangeError('days must be a whole number from 1 to 3660');
  const maxRows = opts.maxRows ?? 200_000;
  const now = opts.now ?? new Date();
  const since = new Date(now.getTime() - days * 86_400_000);
  const reports: DriftScopeReport[] = [];
  for (const kind of ['annual', 'quarterly'] as const) {
    const model = engine.compiled(kind);
    const names = fieldNamesOf(kind);
    const rows = await drift.recentPredictions(adminSql, kind, names, { since, until: now, maxRows });
    const groups = new Map<string, { tenant_id: string | null; tenant_name: string | null; rows: DriftInputRow[] }>();
    groups.set('*', { tenant_id: null, tenant_name: null, rows });
    if (opts.byTenant) {
      for (const r of rows) {
        const key = r.tenant_id ?? '-';
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { tenant_id: r.tenant_id, tenant_name: r.tenant_name, rows: [] }));
        g.rows.push(r);
      }
    }
    for (const [key, g] of groups) {
      const columns = names.map((f) => Float64Array.from(g.rows, (r) => (r[f] === null ? NaN : Number(r[f]))));
      // The PD's reference is this model version's training distribution: other versions' PDs
      // would measure the model change, not the population's.
      const pds = Float64Array.from(
        g.rows.filter((r) => r.model_name === model.ref.name && r.model_version === model.ref.version),
        (r) => Number(r.pd),
      );
      reports.push({ scope: key === '*' ? 'all' : 'tenant', tenant_id: g.tenant_id, tenant_name: g.tenant_name, ...computeDrift(model, columns, pds) });
    }
  }
  const maxes = reports.filter((r) => r.scope === 'all').map((r) => r.max_psi).filter((v) => v === v);
  return { computed_at: now.toISOString(), window_days: days, since: since.toISOString(), reports, max_psi: maxes.length > 0 ? Math.max(...maxes) : NaN };
}

export async function storeModelDrift(adminSql: Sql, run: DriftRun): Promise<void> {
  // Stored as JSON, which has no NaN: "no data" figures come back as null.
  await putSnapshot(adminSql, DRIFT_SNAPSHOT_SOURCE, new Date(run.computed_at), run);
}

/** The latest stored run (null figures for "no data"), or null before the first run. */
export async function latestModelDrift(sql: Sql): Promise<{ taken_at: Date; run: DriftRun } | null> {
  const r = await getSnapshot<DriftRun>(sql, DRIFT_SNAPSHOT_SOURCE);
  return r ? { taken_at: r.taken_at, run: r.data } : null;
}
