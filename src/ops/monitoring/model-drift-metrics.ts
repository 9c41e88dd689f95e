/**
 * Model drift figures for /metrics and the AccuNode-Model-Drift alarm (issue 15), read from the
 * latest run the weekly model.drift job (or `accunode model monitor --store`) stored, so a
 * scrape never recomputes drift.
 */
import type { Sql } from '../../db/pool.js';
import { PSI_SIGNIFICANT } from '../../risk/index.js';
import { latestModelDrift } from '../../services/model-drift.js';
import type { AppMetrics } from './metrics.js';

export async function collectModelDrift(m: Pick<AppMetrics, 'modelPsi' | 'modelMissingShare' | 'modelDriftComputedAt'>, sql: Sql): Promise<void> {
  const latest = await latestModelDrift(sql);
  m.modelPsi.reset();
  m.modelMissingShare.reset();
  if (!latest) return;
  m.modelDriftComputedAt.set(new Date(latest.run.computed_at).getTime() / 1000);
  for (const r of latest.run.reports) {
    const tenant = r.scope === 'all' ? 'all' : (r.tenant_id ?? 'none');
    for (const f of r.fields) {
      if (typeof f.psi === 'number') m.modelPsi.set({ kind: r.kind, input: f.field, tenant }, f.psi);
      if (typeof f.missing_share_recent === 'number') m.modelMissingShare.set({ kind: r.kind, input: f.field, tenant }, f.missing_share_recent);
    }
    if (r.pd && typeof r.pd.psi === 'number') m.modelPsi.set({ kind: r.kind, input: 'pd', tenant }, r.pd.psi);
  }
}

interface DriftReading {
  value: number | null;
  breach: boolean | null;
  reason: string;
}

/** The alarm's reading: the largest PSI over every tenant together, with the inputs and tenants over the line. */
export async function modelDriftReading(sql: Sql): Promise<DriftReading> {
  const latest = await latestModelDrift(sql);
  if (!latest) return { value: null, breach: null, reason: 'unavailable: no model drift run yet (weekly job model.drift, or accunode model monitor --store)' };
  const run = latest.run;
  if (typeof run.max_psi !== 'number') return { value: null, breach: null, reason: `no predictions in the ${run.window_days} days before ${run.computed_at}` };
  const over: string[] = [];
  for (const r of run.reports) {
    const who = r.scope === 'all' ? 'all tenants' : `tenant ${r.tenant_name ?? r.tenant_id ?? 'none'}`;
    for (const f of r.fields) if (typeof f.psi === 'number' && f.psi > PSI_SIGNIFICANT) over.push(`${r.kind} ${f.field} ${f.psi} (${who})`);
    if (r.pd && typeof r.pd.psi === 'number' && r.pd.psi > PSI_SIGNIFICANT) over.push(`${r.kind} PD ${r.pd.psi} (${who})`);
  }
  return {
    value: run.max_psi,
    breach: run.max_psi > PSI_SIGNIFICANT,
    reason: `drift run of ${run.computed_at}${over.length > 0 ? `; over ${PSI_SIGNIFICANT}: ${over.slice(0, 6).join(', ')}${over.length > 6 ? ` and ${over.length - 6} more` : ''}` : ''}`,
  };
}
