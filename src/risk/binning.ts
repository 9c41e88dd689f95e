/**
 * Monotone binning for the scorecard, and score banding for the step model.
 *
 * Bins are (low, high] intervals. Training starts from ~equal-frequency fine bins, then
 *  1. merges adjacent bins (pool-adjacent-violators) until default rates are strictly monotone in
 *     the ratio's known risk direction,
 *  2. merges bins below the minimum population share into their closer-rate neighbour,
 *  3. merges the closest-rate neighbours until at most maxBins remain.
 * Merging neighbours of a monotone sequence keeps it monotone, so steps 2-3 never undo step 1.
 */
import type { BinJson, CurveJson, FieldBinningJson, SpecialBinJson, StepBandJson } from './artifact.js';
import type { FieldMeta } from './fields.js';
import { r6 } from './round.js';

export interface BinningOptions {
  initialBins: number;
  minBinShare: number;
  maxBins: number;
  /** Equal-frequency blocks the continuous curve starts from (0 = no curve: bin-by-bin scoring). */
  curveBlocks: number;
  /** Most knots a curve keeps; the closest-WoE neighbours are merged beyond it. */
  curveMaxKnots: number;
}

export const DEFAULT_BINNING: BinningOptions = { initialBins: 20, minBinShare: 0.05, maxBins: 8, curveBlocks: 100, curveMaxKnots: 32 };

interface WorkBin {
  /** Inclusive upper edge (last value in the bin). */
  high: number;
  count: number;
  defaults: number;
}

const rate = (b: { count: number; defaults: number }): number => (b.count > 0 ? b.defaults / b.count : 0);

function merge(a: WorkBin, b: WorkBin): WorkBin {
  return { high: Math.max(a.high, b.high), count: a.count + b.count, defaults: a.defaults + b.defaults };
}

/** Equal-frequency starting bins over sorted (value, label) pairs; ties never straddle an edge. */
function fineBins(values: Float64Array, labels: Uint8Array, target: number): WorkBin[] {
  const out: WorkBin[] = [];
  const n = values.length;
  let i = 0;
  let cur: WorkBin | null = null;
  while (i < n) {
    const v = values[i]!;
    let j = i;
    let d = 0;
    while (j < n && values[j] === v) {
      d += labels[j]!;
      j++;
    }
    if (!cur) cur = { high: v, count: 0, defaults: 0 };
    cur.high = v;
    cur.count += j - i;
    cur.defaults += d;
    if (cur.count >= target) {
      out.push(cur);
      cur = null;
    }
    i = j;
  }
  if (cur) {
    if (out.length > 0) out[out.length - 1] = merge(out[out.length - 1]!, cur);
    else out.push(cur);
  }
  return out;
}

/** Strictly monotone rates: `sign` +1 for rates increasing left to right, -1 for decreasing. */
function poolAdjacentViolators<T extends { count: number; defaults: number }>(bins: T[], sign: 1 | -1, mergeFn: (a: T, b: T) => T): T[] {
  const stack: T[] = [];
  for (const b of bins) {
    stack.push(b);
    while (stack.length >= 2) {
      const top = stack[stack.length - 1]!;
      const prev = stack[stack.length - 2]!;
      if (sign * (rate(top) - rate(prev)) > 0) break;
      stack.splice(stack.length - 2, 2, mergeFn(prev, top));
    }
  }
  return stack;
}

function mergeSmall<T extends { count: number; defaults: number }>(bins: T[], minCount: number, mergeFn: (a: T, b: T) => T): T[] {
  const out = bins.slice();
  for (;;) {
    if (out.length <= 1) return out;
    let smallest = -1;
    for (let i = 0; i < out.length; i++) {
      if (out[i]!.count < minCount && (smallest < 0 || out[i]!.count < out[smallest]!.count)) smallest = i;
    }
    if (smallest < 0) return out;
    const r = rate(out[smallest]!);
    let j: number;
    if (smallest === 0) j = 1;
    else if (smallest === out.length - 1) j = smallest - 1;
    else j = Math.abs(rate(out[smallest - 1]!) - r) <= Math.abs(rate(out[smallest + 1]!) - r) ? smallest - 1 : smallest + 1;
    const lo = Math.min(j, smallest);
    out.splice(lo, 2, mergeFn(out[lo]!, out[lo + 1]!));
  }
}

function mergeToMax<T extends { count: number; defaults: number }>(bins: T[], maxBins: number, mergeFn: (a: T, b: T) => T): T[] {
  const out = bins.slice();
  while (out.length > maxBins) {
    let best = 0;
    let bestDiff = Infinity;
    for (let i = 0; i + 1 < out.length; i++) {
      const d = Math.abs(rate(out[i + 1]!) - rate(out[i]!));
      if (d < bestDiff) {
        bestDiff = d;
        best = i;
      }
    }
    out.splice(best, 2, mergeFn(out[best]!, out[best + 1]!));
  }
  return out;
}

function logit(p: number): number {
  return Math.log(p / (1 - p));
}

/**
 * WoE of a bin, smoothed toward `priorRate` with `strength` pseudo-rows so tiny bins (a rare Missing
 * or Negative bin) cannot produce extreme log-odds: WoE = logit((d + s*prior)/(n + s)) - logit(p0).
 */
function smoothedWoe(count: number, defaults: number, priorRate: number, strength: number, p0: number): number {
  const r = (defaults + strength * priorRate) / (count + strength);
  return logit(Math.min(1 - 1e-9, Math.max(1e-9, r))) - logit(p0);
}

function special(count: number, defaults: number, woe: number): SpecialBinJson {
  return { count, defaults, default_rate: r6(rate({ count, defaults })), woe: r6(woe) };
}

/** A run of sorted training values [start, end) with its label counts. */
interface Block {
  start: number;
  end: number;
  count: number;
  defaults: number;
  woe: number;
}

function mergeBlock(a: Block, b: Block): Block {
  return { start: Math.min(a.start, b.start), end: Math.max(a.end, b.end), count: a.count + b.count, defaults: a.defaults + b.defaults, woe: 0 };
}

/** Smallest WoE step kept between knots: rounding to 6 decimals must not create a flat segment. */
const MIN_WOE_STEP = 1e-4;

/**
 * Continuous WoE curve over sorted regular values: equal-frequency blocks, pool-adjacent-violators
 * until the default rate is strictly monotone (isotonic regression), smoothed WoE per block, blocks
 * re-pooled while neighbouring WoE differ by less than MIN_WOE_STEP, then at most maxKnots blocks.
 * Each surviving block contributes one knot at the median of its values; scoring interpolates
 * linearly between knots, so every change of the ratio between the outer knots moves the WoE.
 */
function fitCurve(sv: Float64Array, sl: Uint8Array, sign: 1 | -1, p0: number, strength: number, blocks: number, maxKnots: number): CurveJson | undefined {
  const n = sv.length;
  if (n === 0 || blocks <= 0) return undefined;
  const target = Math.max(1, Math.ceil(n / blocks));
  let bs: Block[] = [];
  let i = 0;
  let cur: Block | null = null;
  while (i < n) {
    let j = i;
    let d = 0;
    while (j < n && sv[j] === sv[i]) d += sl[j++]!;
    if (!cur) cur = { start: i, end: i, count: 0, defaults: 0, woe: 0 };
    cur.end = j;
    cur.count += j - i;
    cur.defaults += d;
    if (cur.count >= target) {
      bs.push(cur);
      cur = null;
    }
    i = j;
  }
  if (cur) {
    if (bs.length > 0) bs[bs.length - 1] = mergeBlock(bs[bs.length - 1]!, cur);
    else bs.push(cur);
  }
  bs = poolAdjacentViolators(bs, sign, mergeBlock);
  const woeOf = (b: Block): number => smoothedWoe(b.count, b.defaults, p0, strength, p0);
  // Smoothing shrinks small blocks toward the portfolio and can reorder near-equal neighbours:
  // pool again on the smoothed WoE, with a minimum step, so the curve is strictly monotone.
  const stack: Block[] = [];
  for (const b0 of bs) {
    let b = { ...b0, woe: woeOf(b0) };
    while (stack.length > 0 && sign * (b.woe - stack[stack.length - 1]!.woe) < MIN_WOE_STEP) {
      const m = mergeBlock(stack.pop()!, b);
      m.woe = woeOf(m);
      b = m;
    }
    stack.push(b);
  }
  bs = stack;
  while (bs.length > maxKnots) {
    let best = 0;
    for (let k = 1; k + 1 < bs.length; k++) if (Math.abs(bs[k + 1]!.woe - bs[k]!.woe) < Math.abs(bs[best + 1]!.woe - bs[best]!.woe)) best = k;
    const m = mergeBlock(bs[best]!, bs[best + 1]!);
    m.woe = woeOf(m);
    bs.splice(best, 2, m);
  }
  const median = (b: Block): number => {
    const mid = b.start + (b.end - b.start - 1) / 2;
    return (sv[Math.floor(mid)]! + sv[Math.ceil(mid)]!) / 2;
  };
  const x: number[] = [];
  const woe: number[] = [];
  for (const b of bs) {
    const xv = r6(median(b));
    const wv = r6(b.woe);
    // Medians of disjoint sorted runs increase; guard against rounding collapsing two of them.
    if (x.length > 0 && (xv <= x[x.length - 1]! || sign * (wv - woe[woe.length - 1]!) <= 0)) continue;
    x.push(xv);
    woe.push(wv);
  }
  const below = (v: number): number => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (sv[m]! <= v) lo = m + 1;
      else hi = m;
    }
    return lo / n;
  };
  return { method: 'isotonic_interpolated', x, woe, coverage: [r6(below(x[0]!)), r6(below(x[x.length - 1]!))] };
}

export function fitFieldBinning(meta: FieldMeta, x: Float64Array, y: Uint8Array, options: Partial<BinningOptions> = {}): FieldBinningJson {
  const opts: BinningOptions = { ...DEFAULT_BINNING, ...options };
  const n = x.length;
  let totalDefaults = 0;
  for (let i = 0; i < n; i++) totalDefaults += y[i]!;
  if (totalDefaults === 0 || totalDefaults === n) throw new Error('training data needs both defaulted and non-defaulted rows');
  const p0 = totalDefaults / n;
  // One pseudo-default's worth of prior: negligible for real bins, decisive for near-empty ones.
  const strength = 1 / p0;

  const regIdx: number[] = [];
  let missN = 0;
  let missD = 0;
  let negN = 0;
  let negD = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (Number.isNaN(v)) {
      missN++;
      missD += y[i]!;
    } else if (meta.negativeIsDistress && v < 0) {
      negN++;
      negD += y[i]!;
    } else regIdx.push(i);
  }
  regIdx.sort((a, b) => x[a]! - x[b]!);
  const sv = new Float64Array(regIdx.length);
  const sl = new Uint8Array(regIdx.length);
  regIdx.forEach((idx, k) => {
    sv[k] = x[idx]!;
    sl[k] = y[idx]!;
  });
  const sign: 1 | -1 = meta.risk === 'increasing' ? 1 : -1;
  let bins: WorkBin[] = sv.length > 0 ? fineBins(sv, sl, Math.max(1, Math.ceil(sv.length / opts.initialBins))) : [];
  bins = poolAdjacentViolators(bins, sign, merge);
  bins = mergeSmall(bins, Math.ceil(opts.minBinShare * n), merge);
  bins = mergeToMax(bins, opts.maxBins, merge);

  const out: BinJson[] = [];
  let prevWoe = sign > 0 ? -Infinity : Infinity;
  bins.forEach((b, i) => {
    let w = smoothedWoe(b.count, b.defaults, p0, strength, p0);
    // Smoothing can nudge two nearly equal neighbours out of order; keep WoE monotone regardless.
    w = sign > 0 ? Math.max(w, prevWoe) : Math.min(w, prevWoe);
    prevWoe = w;
    out.push({
      low: i === 0 ? null : r6(bins[i - 1]!.high),
      high: i === bins.length - 1 ? null : r6(b.high),
      count: b.count,
      defaults: b.defaults,
      default_rate: r6(rate(b)),
      woe: r6(w),
    });
  });
  if (out.length === 0) out.push({ low: null, high: null, count: 0, defaults: 0, default_rate: 0, woe: 0 });
  const curve = fitCurve(sv, sl, sign, p0, strength, opts.curveBlocks, opts.curveMaxKnots);

  // Missing: its own observed evidence, shrunk toward the portfolio (WoE 0) when rare.
  const missing = special(missN, missD, missN > 0 ? smoothedWoe(missN, missD, p0, strength, p0) : 0);
  let negative: SpecialBinJson | null = null;
  if (meta.negativeIsDistress) {
    // A negative denominator is distress by construction: shrink toward the riskiest interval bin
    // and never rate it safer than that bin.
    const riskiest = sign > 0 ? out[out.length - 1]! : out[0]!;
    const topRate = Math.max(riskiest.default_rate, p0);
    // The curve's riskiest knot can sit above the coarse bin's WoE; negatives stay at least as risky.
    const curveTop = curve ? (sign > 0 ? curve.woe[curve.woe.length - 1]! : curve.woe[0]!) : -Infinity;
    const floor = Math.max(riskiest.woe, curveTop);
    const w = negN > 0 ? smoothedWoe(negN, negD, topRate, strength, p0) : floor;
    negative = special(negN, negD, Math.max(w, floor));
  }
  const result: FieldBinningJson = { field: meta.name, direction: meta.risk, bins: out, missing, negative };
  if (curve) result.curve = curve;
  return result;
}

export interface StepBandOptions {
  initialBands: number;
  minBandShare: number;
  minBandDefaults: number;
  maxBands: number;
}

export const DEFAULT_STEP_BANDS: StepBandOptions = { initialBands: 25, minBandShare: 0.02, minBandDefaults: 5, maxBands: 12 };

/**
 * Score bands (low, high] over the scorecard score (higher = safer) with observed default rates,
 * strictly decreasing in score. Bands are merged until each holds a minimum share and a minimum
 * number of defaults, so no band claims a 0 % default rate from a handful of rows.
 */
export function fitStepBands(scores: Float64Array, y: Uint8Array, opts: StepBandOptions = DEFAULT_STEP_BANDS): StepBandJson[] {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const sv = new Float64Array(n);
  const sl = new Uint8Array(n);
  idx.forEach((k, i) => {
    sv[i] = scores[k]!;
    sl[i] = y[k]!;
  });
  let bands = fineBins(sv, sl, Math.max(1, Math.ceil(n / opts.initialBands)));
  bands = poolAdjacentViolators(bands, -1, merge);
  bands = mergeSmall(bands, Math.ceil(opts.minBandShare * n), merge);
  // Too few defaults: merge toward the safer neighbour (right), which is where they are rare.
  for (;;) {
    const i = bands.findIndex((b) => b.defaults < opts.minBandDefaults);
    if (i < 0 || bands.length <= 1) break;
    const lo = i === bands.length - 1 ? i - 1 : i;
    bands.splice(lo, 2, merge(bands[lo]!, bands[lo + 1]!));
  }
  bands = mergeToMax(bands, opts.maxBands, merge);
  return bands.map((b, i) => ({
    low: i === 0 ? null : r6(bands[i - 1]!.high),
    high: i === bands.length - 1 ? null : r6(b.high),
    count: b.count,
    defaults: b.defaults,
    default_rate: r6(rate(b)),
  }));
}
