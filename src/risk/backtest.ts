/**
 * Backtesting on recorded defaults (issue 15). Pure: predictions and default events in, metrics out.
 *
 * Labelling, per stored prediction (made at t, by one model version):
 *  - defaulted: its company has a default event in (t, t + horizon]  (the prediction was made
 *    0-12 months before the default);
 *  - survived:  no default of the company in (t, t + horizon], and t + horizon <= asOf (the whole
 *    year has been observed), and t lies in the window a defaulted prediction could have been made
 *    in, from (earliest default - horizon) to the latest default, among this version's defaults
 *    (the non-defaulted population of the same period);
 *  - otherwise not counted: follow-up still open, made outside the defaults' window, or made after
 *    the company had already defaulted.
 * Per model version: AUC, Brier, a calibration table (equal-count buckets of predicted PD), and
 * the observed default rate per risk level and per implied rating.
 */
import { impliedRating } from './implied-rating.js';
import { auc, brier, calibrationTable, type CalibrationRow } from './metrics.js';
import { r6 } from './round.js';

export interface BacktestPrediction {
  company_id: string;
  made_at: Date;
  pd: number;
  risk_level: string;
  model_name: string;
  model_version: string;
}

export interface DefaultEvent {
  company_id: string;
  default_date: Date;
}

interface GroupRow {
  group: string;
  predictions: number;
  defaults: number;
  observed_rate: number;
  mean_pd: number;
}

export interface BacktestVersion {
  model_name: string;
  model_version: string;
  predictions: number;
  defaults: number;
  auc: number | null;
  brier: number | null;
  calibration: CalibrationRow[];
  by_risk_level: GroupRow[];
  by_implied_rating: GroupRow[];
  window: { from: string; to: string } | null;
}

export interface BacktestReport {
  as_of: string;
  horizon_months: number;
  /** Predictions not counted, and why. */
  excluded: { open_follow_up: number; outside_window: number; after_default: number };
  versions: BacktestVersion[];
}

const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

function addMonths(d: Date, months: number): Date {
  const r = new Date(d.getTime());
  r.setUTCMonth(r.getUTCMonth() + months);
  return r;
}


type FollowUp = { outcome: 'defaulted'; defaultDate: Date } | { outcome: 'survived' | 'after_default' | 'open' };

/**
 * What became of a prediction made at `madeAt`, given its company's default dates (the rule in
 * this file's header): it defaulted within the horizon (the first such date), survived a fully
 * observed horizon, came after the company had already defaulted, or its horizon is still open.
 */
export function followUp(madeAt: Date, defaults: readonly Date[], asOf: Date, horizonMonths = 12): FollowUp {
  const end = addMonths(madeAt, horizonMonths);
  const hit = defaults.filter((d) => d > madeAt && d <= end).sort((a, b) => a.getTime() - b.getTime())[0];
  if (hit) return { outcome: 'defaulted', defaultDate: hit };
  if (defaults.some((d) => d <= madeAt)) return { outcome: 'after_default' };
  return end > asOf ? { outcome: 'open' } : { outcome: 'survived' };
}

function groups(rows: Array<{ key: string; pd: number; y: number }>, order: readonly string[]): GroupRow[] {
  const m = new Map<string, { n: number; d: number; s: number }>();
  for (const r of rows) {
    const g = m.get(r.key) ?? { n: 0, d: 0, s: 0 };
    g.n++;
    g.d += r.y;
    g.s += r.pd;
    m.set(r.key, g);
  }
  return [...m.entries()]
    .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([group, g]) => ({ group, predictions: g.n, defaults: g.d, observed_rate: r6(g.d / g.n), mean_pd: r6(g.s / g.n) }));
}

export function backtest(predictions: readonly BacktestPrediction[], defaults: readonly DefaultEvent[], opts: { asOf: Date; horizonMonths?: number; buckets?: number }): BacktestReport {
  const horizon = opts.horizonMonths ?? 12;
  const byCompany = new Map<string, Date[]>();
  for (const d of defaults) {
    const l = byCompany.get(d.company_id) ?? [];
    l.push(d.default_date);
    byCompany.set(d.company_id, l);
  }
  const excluded = { open_follow_up: 0, outside_window: 0, after_default: 0 };
  type Labelled = BacktestPrediction & { y: 0 | 1; defaultDate?: Date };
  const versions = new Map<string, { name: string; version: string; pos: Labelled[]; neg: BacktestPrediction[] }>();
  for (const p of predictions) {
    const key = `${p.model_name}\u0000${p.model_version}`;
    let v = versions.get(key);
    if (!v) versions.set(key, (v = { name: p.model_name, version: p.model_version, pos: [], neg: [] }));
    const f = followUp(p.made_at, byCompany.get(p.company_id) ?? [], opts.asOf, horizon);
    if (f.outcome === 'defaulted') v.pos.push({ ...p, y: 1, defaultDate: f.defaultDate });
    else if (f.outcome === 'after_default') excluded.after_default++;
    else if (f.outcome === 'open') excluded.open_follow_up++;
    else v.neg.push(p);
  }
  const out: BacktestVersion[] = [];
  for (const v of versions.values()) {
    let window: { from: Date; to: Date } | null = null;
    for (const p of v.pos) {
      const from = addMonths(p.defaultDate!, -horizon);
      const to = p.defaultDate!;
      if (!window) window = { from, to };
      else {
        if (from < window.from) window.from = from;
        if (to > window.to) window.to = to;
      }
    }
    const neg: Labelled[] = [];
    for (const p of v.neg) {
      if (window && p.made_at >= window.from && p.made_at <= window.to) neg.push({ ...p, y: 0 });
      else excluded.outside_window++;
    }
    const all = [...v.pos, ...neg].map(({ defaultDate: _d, ...r }) => r);
    const pd = all.map((r) => r.pd);
    const y = all.map((r) => r.y);
    const a = all.length > 0 ? auc(pd, y) : NaN;
    out.push({
      model_name: v.name,
      model_version: v.version,
      predictions: all.length,
      defaults: v.pos.length,
      auc: Number.isFinite(a) ? r6(a) : null,
      brier: all.length > 0 ? r6(brier(pd, y)) : null,
      calibration: all.length > 0 ? calibrationTable(pd, y, Math.min(opts.buckets ?? 10, all.length)).map((r) => ({ ...r, mean_predicted: r6(r.mean_predicted), observed_rate: r6(r.observed_rate) })) : [],
      by_risk_level: groups(all.map((r) => ({ key: r.risk_level, pd: r.pd, y: r.y })), RISK_LEVELS),
      by_implied_rating: groups(all.map((r) => ({ key: impliedRating(r.pd), pd: r.pd, y: r.y })), ['AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC']),
      window: window ? { from: window.from.toISOString(), to: window.to.toISOString() } : null,
    });
  }
  out.sort((p, q) => p.model_name.localeCompare(q.model_name) || p.model_version.localeCompare(q.model_version));
  return { as_of: opts.asOf.toISOString(), horizon_months: horizon, excluded, versions: out };
}
