/** Discrimination and calibration metrics for binary default predictions. */
import { r6 } from './round.js';

export interface CalibrationRow {
  bucket: number;
  count: number;
  mean_predicted: number;
  observed_rate: number;
  defaults: number;
}

export interface Metrics {
  rows: number;
  defaults: number;
  default_rate: number;
  auc: number;
  ks: number;
  brier: number;
  log_loss: number;
  /** Count-weighted mean |mean_predicted - observed_rate| over the calibration buckets. */
  calibration_error: number;
  calibration: CalibrationRow[];
}

function sortedOrder(p: ArrayLike<number>): Int32Array {
  const idx = new Int32Array(p.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => p[a]! - p[b]!);
  return idx;
}

/** AUC by the rank-sum formula with average ranks for ties. */
export function auc(p: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = p.length;
  const idx = sortedOrder(p);
  let pos = 0;
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && p[idx[j + 1]!] === p[idx[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (y[idx[k]!] === 1) {
        pos++;
        rankSum += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Kolmogorov-Smirnov: max distance between the score CDFs of defaulters and survivors. */
export function ks(p: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = p.length;
  const idx = sortedOrder(p);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i] === 1 ? 1 : 0;
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  let cp = 0;
  let cn = 0;
  let best = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && p[idx[j + 1]!] === p[idx[i]!]) j++;
    for (let k = i; k <= j; k++) {
      if (y[idx[k]!] === 1) cp++;
      else cn++;
    }
    best = Math.max(best, Math.abs(cp / pos - cn / neg));
    i = j + 1;
  }
  return best;
}

export function brier(p: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const d = p[i]! - y[i]!;
    s += d * d;
  }
  return s / p.length;
}

function logLoss(p: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const q = Math.min(1 - 1e-15, Math.max(1e-15, p[i]!));
    s -= y[i] === 1 ? Math.log(q) : Math.log(1 - q);
  }
  return s / p.length;
}

/** Buckets of (nearly) equal size ordered by predicted probability. */
export function calibrationTable(p: ArrayLike<number>, y: ArrayLike<number>, buckets = 10): CalibrationRow[] {
  const n = p.length;
  const idx = sortedOrder(p);
  const rows: CalibrationRow[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * n) / buckets);
    const end = Math.floor(((b + 1) * n) / buckets);
    if (end <= start) continue;
    let sp = 0;
    let d = 0;
    for (let k = start; k < end; k++) {
      sp += p[idx[k]!]!;
      d += y[idx[k]!]!;
    }
    const c = end - start;
    rows.push({ bucket: b + 1, count: c, mean_predicted: sp / c, observed_rate: d / c, defaults: d });
  }
  return rows;
}

export function computeMetrics(p: ArrayLike<number>, y: ArrayLike<number>): Metrics {
  let d = 0;
  for (let i = 0; i < y.length; i++) d += y[i]!;
  const calibration = calibrationTable(p, y).map((r) => ({
    ...r,
    mean_predicted: r6(r.mean_predicted),
    observed_rate: r6(r.observed_rate),
  }));
  let ce = 0;
  for (const r of calibration) ce += r.count * Math.abs(r.mean_predicted - r.observed_rate);
  return {
    rows: p.length,
    defaults: d,
    default_rate: r6(d / p.length),
    auc: r6(auc(p, y)),
    ks: r6(ks(p, y)),
    brier: r6(brier(p, y)),
    log_loss: r6(logLoss(p, y)),
    calibration_error: r6(ce / p.length),
    calibration,
  };
}
