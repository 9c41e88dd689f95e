/**
 * Seeded reference portfolio generator, calibrated to public rating-agency statistics
 * (see models/README.md for the assumptions). No public labelled default data is reachable, so the
 * shipped models are trained on this and labelled as reference models.
 *
 * Generative story per company:
 *   rating k ~ RATING_MIX; notch offset o ~ U(-0.5, 0.5); firm factor e ~ N(0, 1)
 *   latent credit position v = k + o + FIRM_FACTOR_SCALE * e   (0 = AAA ... 6 = CCC, higher = worse)
 *   P(default) = sigmoid(a_k + DEFAULT_SLOPE * (v - k)), a_k solved so the mean over o and e equals
 *   the rating's target one-year default rate (AAA: exactly 0).
 *   each ratio = median-by-rating curve interpolated at v, plus idiosyncratic noise, so all ratios
 *   are correlated through v, and ratios carry information beyond the rating itself.
 */
import type { Dataset } from './dataset.js';
import { fieldNamesOf, type ModelKind, type RatioField } from './fields.js';
import { Rng } from './rng.js';

export const RATINGS = ['AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC'] as const;
export const RATING_MIX: readonly number[] = [0.01, 0.04, 0.15, 0.3, 0.22, 0.23, 0.05];
export const TARGET_DEFAULT_RATES: readonly number[] = [0, 0.0002, 0.0005, 0.0015, 0.006, 0.03, 0.26];

const FIRM_FACTOR_SCALE = 0.5;
const DEFAULT_SLOPE = 1.6;

/** How a ratio's noise is applied: multiplicative (log-normal, positive ratios) or additive. */
interface RatioSpec {
  medians: readonly number[];
  scale: 'log' | 'linear';
  noise: number;
  /** Probability by rating that the denominator is negative (negative EBITDA / equity). */
  negativeProb?: readonly number[];
  negativeMedian?: number;
  floor?: number;
  /** Extra additive noise after the multiplicative part (lets interest cover go negative). */
  additiveNoise?: number;
}

const SPECS: Record<RatioField, RatioSpec> = {
  long_term_debt_to_total_capital: { medians: [10, 24, 33, 38, 48, 68, 90], scale: 'linear', noise: 9, floor: 0 },
  total_debt_to_ebitda: {
    medians: [0.4, 0.9, 1.6, 2.2, 3.5, 5.3, 7.9],
    scale: 'log',
    noise: 0.42,
    negativeProb: [0, 0, 0, 0.002, 0.01, 0.04, 0.15],
    negativeMedian: 6,
  },
  net_income_margin: { medians: [15, 12, 9, 6, 4, 1, -5], scale: 'linear', noise: 4 },
  ebit_to_interest_expense: {
    medians: [24, 19, 8, 4.7, 2.5, 1.2, 0.4],
    scale: 'log',
    noise: 0.42,
    additiveNoise: 0.3,
  },
  return_on_assets: { medians: [12, 10, 8, 6, 4, 1, -4], scale: 'linear', noise: 3 },
  current_ratio: { medians: [1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.1], scale: 'log', noise: 0.3 },
  // quick ratio is derived from the current ratio below; medians kept for documentation.
  quick_ratio: { medians: [1.26, 1.19, 1.12, 1.05, 0.98, 0.91, 0.77], scale: 'log', noise: 0.2 },
  debt_to_equity: {
    medians: [0.3, 0.5, 0.7, 0.9, 1.3, 2.2, 4],
    scale: 'log',
    noise: 0.38,
    negativeProb: [0, 0, 0, 0, 0.005, 0.04, 0.15],
    negativeMedian: 3,
  },
  inventory_turnover: { medians: [6.6, 6.4, 6.2, 6, 5.8, 5.5, 5], scale: 'log', noise: 0.45 },
  receivables_turnover: { medians: [8.8, 8.6, 8.3, 8, 7.7, 7.4, 7], scale: 'log', noise: 0.4 },
  working_capital_to_total_assets: { medians: [15, 14, 12, 10, 7, 3, 0], scale: 'linear', noise: 6 },
};

const MISSING_BASE = 0.02;
const MISSING_PER_NOTCH = 0.004;
const EXTREME_PROB = 0.002;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

let interceptCache: number[] | null = null;

/** Per-rating intercepts a_k so each rating's mean default probability hits its target. */
function ratingIntercepts(): number[] {
  if (interceptCache) return interceptCache;
  // Quadrature over the within-rating spread q = o + s*e: 40 uniform points for o, 61 for e.
  const qs: number[] = [];
  const ws: number[] = [];
  for (let i = 0; i < 40; i++) {
    const o = -0.5 + (i + 0.5) / 40;
    let wsum = 0;
    const local: Array<[number, number]> = [];
    for (let j = 0; j < 61; j++) {
      const e = -6 + (12 * j) / 60;
      const w = Math.exp(-0.5 * e * e);
      wsum += w;
      local.push([o + FIRM_FACTOR_SCALE * e, w]);
    }
    for (const [q, w] of local) {
      qs.push(q);
      ws.push(w / wsum / 40);
    }
  }
  interceptCache = TARGET_DEFAULT_RATES.map((target) => {
    if (target <= 0) return -Infinity;
    let lo = -30;
    let hi = 10;
    for (let it = 0; it < 100; it++) {
      const mid = (lo + hi) / 2;
      let m = 0;
      for (let i = 0; i < qs.length; i++) m += ws[i]! * sigmoid(mid + DEFAULT_SLOPE * qs[i]!);
      if (m < target) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  });
  return interceptCache;
}

function medianAt(spec: RatioSpec, v: number): number {
  const m = spec.medians;
  const x = Math.min(6, Math.max(0, v));
  const i = Math.min(5, Math.floor(x));
  const t = x - i;
  const a = m[i]!;
  const b = m[i + 1]!;
  if (spec.scale === 'log') return Math.exp((1 - t) * Math.log(a) + t * Math.log(b));
  return (1 - t) * a + t * b;
}

function clampStorable(x: number): number {
  const c = Math.max(-9999, Math.min(9999, x));
  return Math.round(c * 1e4) / 1e4;
}

function drawRating(rng: Rng): number {
  const u = rng.uniform();
  let acc = 0;
  for (let k = 0; k < RATING_MIX.length; k++) {
    acc += RATING_MIX[k]!;
    if (u < acc) return k;
  }
  return RATING_MIX.length - 1;
}

function drawRatio(field: RatioField, spec: RatioSpec, k: number, v: number, rng: Rng, current: number): number {
  const neg = spec.negativeProb?.[k] ?? 0;
  if (neg > 0 && rng.uniform() < neg) {
    return -(spec.negativeMedian ?? 1) * Math.exp(0.7 * rng.normal());
  }
  let x: number;
  if (field === 'quick_ratio' && Number.isFinite(current)) {
    x = 0.7 * current * Math.exp(spec.noise * rng.normal());
  } else if (spec.scale === 'log') {
    x = medianAt(spec, v) * Math.exp(spec.noise * rng.normal());
  } else {
    x = medianAt(spec, v) + spec.noise * rng.normal();
  }
  if (spec.additiveNoise) x += spec.additiveNoise * rng.normal();
  if (spec.floor !== undefined && x < spec.floor) x = spec.floor;
  if (rng.uniform() < EXTREME_PROB) {
    // Tiny denominators and data-entry slips produce occasional wild values; models must cope.
    x *= 10 + 90 * rng.uniform();
  }
  return x;
}

/** Generates `rows` companies; deterministic for (kind, rows, seed). */
export function generateReferenceData(kind: ModelKind, rows: number, seed: number): Dataset {
  if (!Number.isInteger(rows) || rows < 1) throw new Error('rows must be a positive integer');
  const fields = fieldNamesOf(kind);
  // Different kinds use different streams, so annual and quarterly sets are not mirror images.
  const rng = new Rng((seed >>> 0) ^ (kind === 'annual' ? 0x5a17 : 0x9e71));
  const a = ratingIntercepts();
  const columns = fields.map(() => new Float64Array(rows));
  const y = new Uint8Array(rows);
  const rating: string[] = new Array<string>(rows);
  for (let r = 0; r < rows; r++) {
    const k = drawRating(rng);
    const o = rng.uniform() - 0.5;
    const e = rng.normal();
    const q = o + FIRM_FACTOR_SCALE * e;
    const v = k + q;
    const ak = a[k]!;
    const pd = Number.isFinite(ak) ? sigmoid(ak + DEFAULT_SLOPE * q) : 0;
    y[r] = rng.uniform() < pd ? 1 : 0;
    rating[r] = RATINGS[k]!;
    let current = NaN;
    const missP = MISSING_BASE + MISSING_PER_NOTCH * k;
    for (let j = 0; j < fields.length; j++) {
      const f = fields[j]!;
      const x = clampStorable(drawRatio(f, SPECS[f], k, v, rng, current));
      if (f === 'current_ratio') current = x;
      columns[j]![r] = rng.uniform() < missP ? NaN : x;
    }
  }
  return { kind, fields, columns, y, rating };
}
