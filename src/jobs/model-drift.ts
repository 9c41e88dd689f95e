/**
 * The weekly drift job (issue 15): PSI of every ratio and of the PD, recent predictions against
 * each model's training data, overall and per tenant, stored as the latest run for /metrics and
 * the AccuNode-Model-Drift alarm. Self-contained so the job catalogue only needs to name it.
 */
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import type { RiskEngine } from '../risk/index.js';
import { PSI_SIGNIFICANT } from '../risk/index.js';
import { computeModelDrift, storeModelDrift } from '../services/model-drift.js';
import { loadModels } from '../services/model-store.js';

interface ModelDriftJobDeps {
  adminSql: Sql;
  /** The models to compare against (default: the installed ones). */
  engine?: RiskEngine;
  log?: Logger;
  now?: Date;
}

const MODEL_DRIFT_WINDOW_DAYS = 90;

export async function runModelDriftJob(deps: ModelDriftJobDeps) {
  const engine = deps.engine ?? (await loadModels());
  const run = await computeModelDrift(deps.adminSql, engine, { days: MODEL_DRIFT_WINDOW_DAYS, byTenant: true, ...(deps.now ? { now: deps.now } : {}) });
  await storeModelDrift(deps.adminSql, run);
  const significant = run.reports
    .filter((r) => r.max_psi > PSI_SIGNIFICANT)
    .map((r) => ({ kind: r.kind, scope: r.scope, tenant_id: r.tenant_id, max_psi: r.max_psi }));
  if (significant.length > 0) deps.log?.warn({ significant }, 'model drift: PSI above 0.25');
  return { outcome: significant.length > 0 ? 'drift' : 'ok', max_psi: Number.isFinite(run.max_psi) ? run.max_psi : null, reports: run.reports.length, significant };
}
