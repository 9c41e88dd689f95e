/**
 * Drift monitoring: the population stability index (PSI) of each ratio and of the final PD between
 * a model's training split and a set of recent predictions. Pure: the reference distributions come
 * from the artifact (the scorecard bins' training counts, plus Missing and Negative, and the
 * training PD deciles under `monitoring`), so no training data is needed at run time.
 *
 *   PSI = sum over bins of (a - e) * ln(a / e), a and e the recent and training shares of the bin.
 *
 * An empty bin's share is floored at PSI_FLOOR so one empty bin gives a large but finite term.
 * Usual reading: < 0.10 stable, 0.10-0.25 moderate shift, > 0.25 significant shift.
 */
import type { CompiledModel } from './engine.js';
import type { MonitoringJson } from './artifact.js';
import { r6 } from './round.js';

export const PSI_FLOOR = 1e-4;
const PSI_MODERATE = 0.1;
export const PSI_SIGNIFICANT = 0.25;

export type DriftStatus = 'stable' | 'moderate' | 'significant' | 'no_data';

export function psi(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length !== actual.length) throw new RangeError('expected and actual need the same bins');
  const te = expected.reduce((s, v) => s + v, 0);
  const ta = actual.reduce((s, v) => s + v, 0);
  if (!(te > 0) || !(ta > 0)) return NaN;
  let s = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]! / te, PSI_FLOOR);
    const a = Math.max(actual[i]! / ta, PSI_FLOOR);
    s += (a - e) * Math.log(a / e);
  }
  return s;
}

function driftStatus(v: number): DriftStatus {
  if (!(v === v)) return 'no_data';
  return v > PSI_SIGNIFICANT ? 'significant' : v >= PSI_MODERATE ? 'moderate' : 'stable';
}

export interface FieldDrift {
  field: string;
  psi: number;
  status: DriftStatus;
  missing_share_training: number;
  missing_share_recent: number;
  /** Per bin (interval labels, then "missing", then "negative" where the ratio has one). */
  bins: Array<{ bin: string; training: number; recent: number }>;
}

export interface DriftReport {
  kind: CompiledModel['kind'];
  model: { name: string; version: string };
  rows: number;
  /** Rows whose stored PD was made by this model version (the PD's PSI is over those only). */
  pd_rows: number;
  pd: { psi: number; status: DriftStatus; bins: Array<{ bin: string; training: number; recent: number }> } | null;
  fields: FieldDrift[];
  max_psi: number;
  status: DriftStatus;
}

const r4 = (x: number): number => (x === x ? Math.round(x * 1e4) / 1e4 : x);

/**
 * Drift of `columns` (ratios in the model's field order, NaN = missing) and `pds` (final PDs made
 * by this model version; may be shorter or empty) against the model's training reference.
 */
export function computeDrift(model: CompiledModel, columns: readonly ArrayLike<number>[], pds: ArrayLike<number>): DriftReport {
  const art = model.artifact;
  const sc = model.scorecard;
  const n = columns[0]?.length ?? 0;
  const fields: FieldDrift[] = model.fieldNames.map((name, j) => {
    const b = art.scorecard.binning.find((x) => x.field === name)!;
    const nb = b.bins.length;
    // Slots: interval bins 0..nb-1, missing nb, negative nb+1 (when the ratio has one).
    const slots = nb + 1 + (b.negative ? 1 : 0);
    const expected = new Array<number>(slots).fill(0);
    b.bins.forEach((bin, k) => (expected[k] = bin.count));
    expected[nb] = b.missing.count;
    if (b.negative) expected[nb + 1] = b.negative.count;
    const actual = new Array<number>(slots).fill(0);
    const col = columns[j]!;
    for (let i = 0; i < n; i++) {
      const idx = sc.binIndex(j, col[i]!);
      actual[idx === -1 ? nb : idx === -2 ? nb + 1 : idx]!++;
    }
    const te = expected.reduce((s, v) => s + v, 0);
    const v = n > 0 ? psi(expected, actual) : NaN;
    const labels = [...b.bins.map((bin) => `(${bin.low ?? '-inf'}, ${bin.high ?? '+inf'}]`), 'missing', ...(b.negative ? ['negative'] : [])];
    return {
      field: name,
      psi: r4(v),
      status: driftStatus(v),
      missing_share_training: r4(te > 0 ? b.missing.count / te : 0),
      missing_share_recent: r4(n > 0 ? actual[nb]! / n : NaN),
      bins: labels.map((bin, k) => ({ bin, training: r4(te > 0 ? expected[k]! / te : 0), recent: r4(n > 0 ? actual[k]! / n : NaN) })),
    };
  });
  let pd: DriftReport['pd'] = null;
  const m = art.monitoring;
  if (m && pds.length > 0) {
    const actual = new Array<number>(m.pd_counts.length).fill(0);
    for (let i = 0; i < pds.length; i++) actual[binOf(m.pd_edges, pds[i]!)]!++;
    const v = psi(m.pd_counts, actual);
    const edges = m.pd_edges;
    pd = {
      psi: r4(v),
      status: driftStatus(v),
      bins: m.pd_counts.map((c, k) => ({
        bin: `(${k === 0 ? '0' : edges[k - 1]}, ${k === edges.length ? '1' : edges[k]}]`,
        training: r4(c / m.rows),
        recent: r4(actual[k]! / pds.length),
      })),
    };
  }
  const all = [...fields.map((f) => f.psi), ...(pd ? [pd.psi] : [])].filter((v) => v === v);
  const max = all.length > 0 ? Math.max(...all) : NaN;
  return { kind: model.kind, model: { ...model.ref }, rows: n, pd_rows: pds.length, pd, fields, max_psi: max, status: driftStatus(max) };
}

/** Training PD deciles as PSI reference bins: 9 inner edges (rounded, de-duplicated) and counts. */
export function pdReference(pd: Float64Array, bins = 10): MonitoringJson {
  const sorted = Float64Array.from(pd, r6).sort();
  const n = sorted.length;
  const edges: number[] = [];
  for (let b = 1; b < bins; b++) {
    const e = sorted[Math.min(n - 1, Math.floor((b * n) / bins))]!;
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < n; i++) counts[binOf(edges, sorted[i]!)]!++;
  return { rows: n, pd_edges: edges, pd_counts: counts };
}

/** Index of the (low, high] interval over `edges` holding v: 0 .. edges.length. */
function binOf(edges: ArrayLike<number>, v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (v > edges[m]!) lo = m + 1;
    else hi = m;
  }
  return lo;
}
