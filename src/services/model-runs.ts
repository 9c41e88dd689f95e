/**
 * Shadow scoring and re-scoring (issue 15): a registered model run over a scope's stored
 * predictions, as a job (`model.run`) or from `accunode model shadow|rescore`.
 *
 * A shadow run scores each stored prediction's ratios with a candidate and compares: the PD
 * shift distribution, how many predictions change risk level or implied rating, and, where
 * defaults are recorded, AUC, Brier and a calibration table of the stored PDs and of the
 * candidate's on the same labelled predictions (labelled as `accunode model train
 * --from-database` labels them). Nothing users see changes.
 *
 * A re-score run rewrites, with the champion's outputs, every prediction of the scope that
 * another model made: batch by batch, each batch one transaction that also writes one audit row
 * per prediction with its old values (repositories/model-runs.ts applyRescore); the update
 * triggers keep the rollups exact and put changes of watched companies in the alerts outbox.
 * Cached copies and the scopes' analytics are invalidated after each batch. Running it again
 * resumes: what the champion already made is skipped.
 */
import type { Redis } from 'ioredis';
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import { invalidatePredictionWrites } from '../cache/invalidation.js';
import * as runs from '../repositories/model-runs.js';
import { organizationTenant, tenantById } from '../repositories/bootstrap.js';
import { FINAL, OUTPUT_FIELDS, RATIO_FIELDS } from '../repositories/predictions.js';
import { auc, brier, calibrationTable, compileModel, DEFAULT_THRESHOLDS, type CalibrationRow, type CompiledModel, type ModelKind, type RiskThresholds } from '../risk/index.js';
import { predictAnnualWith, predictQuarterlyWith } from '../risk/engine.js';
import { followUp } from '../risk/backtest.js';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../risk/implied-rating.js';
import { artifactOf, championOf, findVersion, RegistryError } from './model-registry.js';
import { r6 } from '../risk/round.js';

export type { ModelRunRow, RunScope } from '../repositories/model-runs.js';

const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
/** Rows per read (and per re-score transaction). */
const RUN_BATCH_ROWS = 1000;
/** Months after a prediction within which a default counts against it (as the backtest). */
const HORIZON_MONTHS = 12;

/** Asks for a run; the row is queued until a worker (or the CLI) executes it. */
export async function requestModelRun(
  adminSql: Sql,
  r: { action: runs.ModelRunAction; kind: ModelKind; version?: string; name?: string; scope: runs.RunScope; by: string },
): Promise<runs.ModelRunRow> {
  if (r.scope.tenantId && r.scope.organizationId) throw new RegistryError('a run covers one tenant or one organization, not both');
  if (r.scope.tenantId && !(await tenantById(adminSql, r.scope.tenantId))) throw new RegistryError(`no tenant ${r.scope.tenantId}`);
  if (r.scope.organizationId && !(await organizationTenant(adminSql, r.scope.organizationId))) throw new RegistryError(`no organization ${r.scope.organizationId}`);
  let versionId: number;
  if (r.action === 'rescore') {
    // Re-scoring is always under the champion: what serves new predictions rewrites the old.
    const champion = await championOf(adminSql, r.kind);
    if (!champion) throw new RegistryError(`the registry has no ${r.kind} champion to re-score with (accunode model promote)`);
    if (r.version !== undefined && (r.version !== champion.version || (r.name !== undefined && r.name !== champion.name))) {
      throw new RegistryError(`${r.kind} ${r.name ?? ''} ${r.version} is not the champion (${champion.name} ${champion.version}); promote it first`.replace(/\s+/g, ' '));
    }
    versionId = champion.id;
  } else {
    if (r.version === undefined) throw new RegistryError('say which registered version to shadow-score');
    const v = await findVersion(adminSql, r.kind, r.version, r.name);
    if (v.status === 'retired') throw new RegistryError(`${r.kind} ${v.name} ${v.version} is retired`);
    versionId = v.id;
  }
  return runs.insertRun(adminSql, { kind: r.kind, action: r.action, modelVersionId: versionId, scope: r.scope, by: r.by });
}

export interface Quantiles {
  p01: number;
  p05: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
}

export interface LabelledComparison {
  predictions: number;
  defaults: number;
  /** The stored PDs (the models that made them) and the run's model, on the same predictions. */
  stored: { auc: number | null; brier: number; calibration: CalibrationRow[] };
  candidate: { auc: number | null; brier: number; calibration: CalibrationRow[] };
}

export interface ShadowReport {
  action: 'shadow';
  kind: ModelKind;
  model: { name: string; version: string };
  scored: number;
  /** PD shift, candidate minus stored, in percentage points. */
  pd_shift_pp: { mean: number; mean_abs: number; max_abs: number; quantiles: Quantiles | null; histogram: Array<{ range: string; count: number }> };
  mean_pd: { stored: number; candidate: number };
  risk_level: { changed: number; transitions: Array<{ from: string; to: string; count: number }> };
  implied_rating: { changed: number; upgrades: number; downgrades: number };
  /** null: no prediction of the scope is labelled (no defaults recorded, or none observed 12 months). */
  labelled: LabelledComparison | null;
  labelled_note: string | null;
}

export interface RescoreReport {
  action: 'rescore';
  kind: ModelKind;
  model: { name: string; version: string };
  /** Predictions another model made, read for re-scoring. */
  considered: number;
  rescored: number;
  /** Changed by someone between this run's read and its write: left as they were. */
  skipped_changed_meanwhile: number;
  risk_level_changed: number;
  implied_rating_changed: number;
}

export type ModelRunReport = ShadowReport | RescoreReport;

interface ModelRunDeps {
  adminSql: Sql;
  log?: Logger;
  /** Cache Redis: a re-score drops cached copies and makes the scopes' analytics stale. */
  cacheRedis?: Redis;
  ratingScale?: readonly RatingGrade[];
  thresholds?: Readonly<RiskThresholds>;
  signal?: AbortSignal;
  onProgress?: (p: { done: number; total: number }) => void;
  batchRows?: number;
}

// Shift histogram edges, in percentage points.
const EDGES = [-5, -1, -0.1, 0.1, 1, 5];
const histogramLabels = (): string[] => [`< ${EDGES[0]}`, ...EDGES.slice(0, -1).map((e, i) => `${e} to ${EDGES[i + 1]}`), `>= ${EDGES[EDGES.length - 1]}`];

function quantiles(xs: Float64Array): Quantiles | null {
  if (xs.length === 0) return null;
  const s = Float64Array.from(xs).sort();
  const q = (f: number) => r6(s[Math.min(s.length - 1, Math.floor(f * s.length))]!);
  return { p01: q(0.01), p05: q(0.05), p25: q(0.25), p50: q(0.5), p75: q(0.75), p95: q(0.95), p99: q(0.99) };
}


/** 1 defaulted within the horizon, 0 observed a full horizon without, null not labelled (the backtest's rule). */
function labelOf(madeAt: Date, defaults: readonly Date[] | undefined, asOf: Date): 0 | 1 | null {
  const f = followUp(madeAt, defaults ?? [], asOf, HORIZON_MONTHS);
  return f.outcome === 'defaulted' ? 1 : f.outcome === 'survived' ? 0 : null;
}

/** Grows as values arrive (a run's size is known only roughly in advance). */
class Floats {
  private a = new Float64Array(1024);
  length = 0;
  push(x: number): void {
    if (this.length === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = x;
  }
  view(): Float64Array {
    return this.a.subarray(0, this.length);
  }
}

function scorer(kind: ModelKind, m: CompiledModel, thresholds: Readonly<RiskThresholds>) {
  return (values: Record<string, number | null>): Record<string, number | string> => {
    const ratios: Record<string, number | null> = {};
    for (const f of RATIO_FIELDS[kind]) ratios[f] = values[f] ?? null;
    const p = kind === 'annual' ? predictAnnualWith(m, ratios as never, thresholds) : predictQuarterlyWith(m, ratios as never, thresholds);
    const out: Record<string, number | string> = {};
    for (const f of OUTPUT_FIELDS[kind]) out[f] = (p as unknown as Record<string, number | string>)[f]!;
    return out;
  };
}

/**
 * Executes a queued (or interrupted) run and stores its report. A failure marks the run failed
 * with its message and rethrows; an abort (signal) leaves it running, to be resumed.
 */
export async function executeModelRun(deps: ModelRunDeps, runId: number): Promise<ModelRunReport> {
  const run = await runs.findRun(deps.adminSql, runId);
  if (!run) throw new RegistryError(`no model run ${runId}`);
  if (run.status === 'completed') return run.report as ModelRunReport;
  await runs.startRun(deps.adminSql, runId);
  try {
    const artifact = await artifactOf(deps.adminSql, run.kind, run.model_version_id);
    const m = compileModel(run.kind, artifact);
    const score = scorer(run.kind, m, deps.thresholds ?? DEFAULT_THRESHOLDS);
    const scope: runs.RunScope = { tenantId: run.tenant_id, organizationId: run.organization_id };
    const report = run.action === 'shadow'
      ? await shadow(deps, run, scope, score)
      : await rescore(deps, run, scope, score);
    const progress = run.action === 'shadow' ? { done: (report as ShadowReport).scored, total: (report as ShadowReport).scored } : { done: (report as RescoreReport).considered, total: (report as RescoreReport).considered };
    await runs.finishRun(deps.adminSql, runId, progress, report);
    return report;
  } catch (err) {
    if (!deps.signal?.aborted) await runs.failRun(deps.adminSql, runId, (err as Error).message).catch(() => {});
    throw err;
  }
}

type Score = (values: Record<string, number | null>) => Record<string, number | string>;

async function* batches(deps: ModelRunDeps, run: runs.ModelRunRow, scope: runs.RunScope, notMadeBy?: { name: string; version: string }) {
  const total = await runs.countInScope(deps.adminSql, run.kind, scope, notMadeBy);
  let after: string | null = null;
  let done = 0;
  for (;;) {
    if (deps.signal?.aborted) throw deps.signal.reason instanceof Error ? deps.signal.reason : new Error('model run aborted');
    const rows = await runs.readScopeBatch(deps.adminSql, run.kind, scope, after, deps.batchRows ?? RUN_BATCH_ROWS, notMadeBy);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.id;
    done += rows.length;
    deps.onProgress?.({ done, total });
    await runs.saveRunProgress(deps.adminSql, run.id, { done, total });
  }
}

async function shadow(deps: ModelRunDeps, run: runs.ModelRunRow, scope: runs.RunScope, score: Score): Promise<ShadowReport> {
  const scale = deps.ratingScale ?? REFERENCE_RATING_SCALE;
  const grades = scale.map((g) => g.grade);
  const final = FINAL[run.kind];
  const defaults = new Map<string, Date[]>();
  for (const d of await runs.defaultsInScope(deps.adminSql, run.kind, scope)) defaults.set(d.company_id, [...(defaults.get(d.company_id) ?? []), new Date(d.default_date)]);
  const asOf = new Date();
  const shifts = new Floats();
  const hist = new Array<number>(EDGES.length + 1).fill(0);
  const transitions = new Map<string, number>();
  let sumOld = 0;
  let sumNew = 0;
  let ratingChanged = 0;
  let upgrades = 0;
  let downgrades = 0;
  const lOld = new Floats();
  const lNew = new Floats();
  const lY = new Floats();
  for await (const rows of batches(deps, run, scope)) {
    for (const r of rows) {
      const old = r.values[final]!;
      const out = score(r.values);
      const now = out[final] as number;
      const d = (now - old) * 100;
      shifts.push(d);
      let b = 0;
      while (b < EDGES.length && d >= EDGES[b]!) b++;
      hist[b]!++;
      sumOld += old;
      sumNew += now;
      if (out.risk_level !== r.risk_level) {
        const k = `${r.risk_level}\u0000${String(out.risk_level)}`;
        transitions.set(k, (transitions.get(k) ?? 0) + 1);
      }
      const g0 = grades.indexOf(impliedRating(old, scale));
      const g1 = grades.indexOf(impliedRating(now, scale));
      if (g0 !== g1) {
        ratingChanged++;
        if (g1 < g0) upgrades++;
        else downgrades++;
      }
      const y = r.company_id ? labelOf(new Date(r.created_at), defaults.get(r.company_id), asOf) : null;
      if (y !== null) {
        lOld.push(old);
        lNew.push(now);
        lY.push(y);
      }
    }
  }
  const xs = shifts.view();
  let absSum = 0;
  let maxAbs = 0;
  for (const x of xs) {
    absSum += Math.abs(x);
    if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
  }
  const n = xs.length;
  const y = lY.view();
  const positives = y.reduce((a, b) => a + b, 0);
  let labelled: LabelledComparison | null = null;
  let note: string | null = null;
  if (y.length === 0) note = 'no prediction in scope is labelled: no recorded default within 12 months after it, and none observed a full 12 months';
  else {
    const metrics = (p: Float64Array) => ({
      auc: positives > 0 && positives < y.length ? r6(auc(p, y)) : null,
      brier: r6(brier(p, y)),
      calibration: calibrationTable(p, y, Math.min(10, y.length)),
    });
    labelled = { predictions: y.length, defaults: positives, stored: metrics(lOld.view()), candidate: metrics(lNew.view()) };
    if (positives === 0 || positives === y.length) note = `AUC needs defaulted and surviving predictions; the labelled ones are all ${positives === 0 ? 'survivors' : 'defaults'}`;
  }
  const order = (l: string) => RISK_LEVELS.indexOf(l as (typeof RISK_LEVELS)[number]);
  return {
    action: 'shadow',
    kind: run.kind,
    model: { name: run.model_name, version: run.model_version },
    scored: n,
    pd_shift_pp: {
      mean: n ? r6(xs.reduce((a, b) => a + b, 0) / n) : 0,
      mean_abs: n ? r6(absSum / n) : 0,
      max_abs: r6(maxAbs),
      quantiles: quantiles(xs),
      histogram: histogramLabels().map((range, i) => ({ range, count: hist[i]! })),
    },
    mean_pd: { stored: n ? r6(sumOld / n) : 0, candidate: n ? r6(sumNew / n) : 0 },
    risk_level: {
      changed: [...transitions.values()].reduce((a, b) => a + b, 0),
      transitions: [...transitions.entries()]
        .map(([k, count]) => {
          const [from, to] = k.split('\u0000') as [string, string];
          return { from, to, count };
        })
        .sort((a, b) => order(a.from) - order(b.from) || order(a.to) - order(b.to)),
    },
    implied_rating: { changed: ratingChanged, upgrades, downgrades },
    labelled,
    labelled_note: note,
  };
}

async function rescore(deps: ModelRunDeps, run: runs.ModelRunRow, scope: runs.RunScope, score: Score): Promise<RescoreReport> {
  const scale = deps.ratingScale ?? REFERENCE_RATING_SCALE;
  const final = FINAL[run.kind];
  const model = { name: run.model_name, version: run.model_version };
  const outs = OUTPUT_FIELDS[run.kind];
  const report: RescoreReport = { action: 'rescore', kind: run.kind, model, considered: 0, rescored: 0, skipped_changed_meanwhile: 0, risk_level_changed: 0, implied_rating_changed: 0 };
  // Rows written are no longer "made by another model", so the walk by id still moves forward.
  for await (const rows of batches(deps, run, scope, model)) {
    const writes: runs.RescoreWrite[] = rows.map((r) => {
      const out = score(r.values);
      const before: Record<string, unknown> = { model_name: r.model_name, model_version: r.model_version, risk_level: r.risk_level };
      const after: Record<string, unknown> = { model_name: model.name, model_version: model.version, model_run_id: run.id };
      for (const f of outs) {
        if (f !== 'risk_level') before[f] = r.values[f];
        after[f] = out[f];
      }
      return { id: r.id, updated_at: r.updated_at, outputs: out, model_name: model.name, model_version: model.version, tenant_id: r.tenant_id, before, after };
    });
    const written = await runs.applyRescore(deps.adminSql, run.kind, writes);
    const ok = new Set(written.map((w) => w.id));
    report.considered += rows.length;
    report.rescored += written.length;
    report.skipped_changed_meanwhile += rows.length - written.length;
    for (const w of writes) {
      if (!ok.has(w.id)) continue;
      if (w.before.risk_level !== w.outputs.risk_level) report.risk_level_changed++;
      if (impliedRating(Number(w.before[final]), scale) !== impliedRating(Number(w.outputs[final]), scale)) report.implied_rating_changed++;
    }
    // One analytics generation per scope however many rows share it: invalidatePredictionWrites dedupes.
    await invalidatePredictionWrites(deps.cacheRedis, deps.log, [...ok], written);
  }
  return report;
}
