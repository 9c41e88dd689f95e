/**
 * Scorecard evaluator: bins and WoE curves precompiled into flat typed arrays, so scoring a row is
 * per field one binary search over <= 32 knots plus a linear interpolation (or, for artifacts
 * without curves, a linear scan over <= 8 bin edges), with no allocation. Values are stored as
 * coefficient x WoE, i.e. log-odds contributions, so the logistic score is intercept + sum.
 */
import type { ScorecardJson } from './artifact.js';

const LN2 = Math.LN2;
const GRID = 256;

function fmt(x: number): string {
  return String(Math.round(x * 1e6) / 1e6);
}

export class CompiledScorecard {
  readonly nFields: number;
  readonly edgeStart: Int32Array;
  readonly edges: Float64Array;
  /** Per bin: coefficient * WoE. Bin b of field j is at edgeStart[j] + j + b. */
  readonly binVal: Float64Array;
  readonly missVal: Float64Array;
  readonly negVal: Float64Array;
  readonly negSpecial: Uint8Array;
  /** Curve knots of field j are at knotStart[j] .. knotStart[j+1]-1; empty = bin-by-bin field. */
  readonly knotStart: Int32Array;
  readonly knotX: Float64Array;
  /** coefficient x WoE at each knot. */
  readonly knotVal: Float64Array;
  /** Per segment k (knot k to k+1): slope of the contribution, so interpolation is one multiply-add. */
  readonly knotSlope: Float64Array;
  /**
   * Uniform grid over each curve's knot range, GRID cells per field: the segment holding each cell's
   * left edge. A lookup is one multiply, one table read and rarely a step or two forward, instead
   * of a binary search.
   */
  readonly gridSeg: Int32Array;
  readonly gridScale: Float64Array;
  readonly intercept: number;
  readonly bandEdges: Float64Array;
  readonly bandRates: Float64Array;
  /** Log-odds of each band's rate, clamped so a blend never sees +-infinity. */
  readonly bandLogit: Float64Array;
  readonly scoreBase: number;
  readonly scoreFactor: number;
  /** Interval labels per field and bin, and per step band: built once, read by every explanation. */
  private readonly binLabels: readonly (readonly string[])[];
  private readonly bandLabels: readonly string[];

  constructor(sc: ScorecardJson, fieldOrder: readonly string[]) {
    const bins = fieldOrder.map((f) => {
      const b = sc.binning.find((x) => x.field === f);
      if (!b) throw new Error(`no binning for field ${f}`);
      return b;
    });
    this.nFields = bins.length;
    this.edgeStart = new Int32Array(this.nFields + 1);
    let ne = 0;
    bins.forEach((b, j) => {
      this.edgeStart[j] = ne;
      ne += b.bins.length - 1;
    });
    this.edgeStart[this.nFields] = ne;
    this.edges = new Float64Array(ne);
    this.binVal = new Float64Array(ne + this.nFields);
    this.missVal = new Float64Array(this.nFields);
    this.negVal = new Float64Array(this.nFields);
    this.negSpecial = new Uint8Array(this.nFields);
    bins.forEach((b, j) => {
      const beta = sc.logistic.coefficients[b.field] ?? 0;
      const e0 = this.edgeStart[j]!;
      b.bins.forEach((bin, k) => {
        if (k < b.bins.length - 1) this.edges[e0 + k] = bin.high!;
        this.binVal[e0 + j + k] = beta * bin.woe;
      });
      this.missVal[j] = beta * b.missing.woe;
      if (b.negative) {
        this.negSpecial[j] = 1;
        this.negVal[j] = beta * b.negative.woe;
      }
    });
    this.knotStart = new Int32Array(this.nFields + 1);
    let nk = 0;
    bins.forEach((b, j) => {
      this.knotStart[j] = nk;
      nk += b.curve ? b.curve.x.length : 0;
    });
    this.knotStart[this.nFields] = nk;
    this.knotX = new Float64Array(nk);
    this.knotVal = new Float64Array(nk);
    this.knotSlope = new Float64Array(nk);
    bins.forEach((b, j) => {
      if (!b.curve) return;
      const beta = sc.logistic.coefficients[b.field] ?? 0;
      const k0 = this.knotStart[j]!;
      b.curve.x.forEach((x, k) => {
        this.knotX[k0 + k] = x;
        this.knotVal[k0 + k] = beta * b.curve!.woe[k]!;
      });
      for (let k = k0; k + 1 < this.knotStart[j + 1]!; k++) {
        this.knotSlope[k] = (this.knotVal[k + 1]! - this.knotVal[k]!) / (this.knotX[k + 1]! - this.knotX[k]!);
      }
    });
    this.gridSeg = new Int32Array(this.nFields * GRID);
    this.gridScale = new Float64Array(this.nFields);
    for (let j = 0; j < this.nFields; j++) {
      const k0 = this.knotStart[j]!;
      const k1 = this.knotStart[j + 1]!;
      if (k1 - k0 < 2) continue;
      const x0 = this.knotX[k0]!;
      const span = this.knotX[k1 - 1]! - x0;
      this.gridScale[j] = GRID / span;
      let k = k0;
      for (let c = 0; c < GRID; c++) {
        const left = x0 + (c * span) / GRID;
        while (k + 2 < k1 && this.knotX[k + 1]! <= left) k++;
        this.gridSeg[j * GRID + c] = k;
      }
    }
    const label = (b: { low: number | null; high: number | null }) => `(${b.low === null ? '-inf' : fmt(b.low)}, ${b.high === null ? '+inf' : fmt(b.high)}]`;
    this.binLabels = bins.map((b) => b.bins.map(label));
    this.bandLabels = sc.step_bands.map(label);
    this.intercept = sc.logistic.intercept;
    const bands = sc.step_bands;
    this.bandEdges = Float64Array.from(bands.slice(0, -1), (b) => b.high!);
    this.bandRates = Float64Array.from(bands, (b) => b.default_rate);
    this.bandLogit = Float64Array.from(bands, (b) => {
      const r = Math.min(1 - 1e-6, Math.max(1e-6, b.default_rate));
      return Math.log(r / (1 - r));
    });
    const s = sc.score_scale;
    this.scoreFactor = s.pdo / LN2;
    // score = base - factor * (logit - ln(1/odds)) = scoreBase - factor * logit
    this.scoreBase = s.base_score + this.scoreFactor * Math.log(1 / s.base_odds);
  }

  /** Bin position of x for field j: -1 missing, -2 negative (distress), else interval index. */
  binIndex(j: number, x: number): number {
    if (x !== x) return -1;
    if (this.negSpecial[j] === 1 && x < 0) return -2;
    const e0 = this.edgeStart[j]!;
    const e1 = this.edgeStart[j + 1]!;
    let k = e0;
    while (k < e1 && x > this.edges[k]!) k++;
    return k - e0;
  }

  contribution(j: number, x: number): number {
    if (x !== x) return this.missVal[j]!;
    if (this.negSpecial[j] === 1 && x < 0) return this.negVal[j]!;
    const lo = this.knotStart[j]!;
    const k1 = this.knotStart[j + 1]!;
    if (lo < k1) {
      const kx = this.knotX;
      // Capped at the outer knots: beyond them the training data says too little to keep moving.
      if (x <= kx[lo]!) return this.knotVal[lo]!;
      const last = k1 - 1;
      if (x >= kx[last]!) return this.knotVal[last]!;
      // kx[lo] < x < kx[last]: start from the grid cell's segment and step to the one holding x.
      let c = ((x - kx[lo]!) * this.gridScale[j]!) | 0;
      if (c >= GRID) c = GRID - 1;
      let k = this.gridSeg[j * GRID + c]!;
      while (x > kx[k + 1]!) k++;
      return this.knotVal[k]! + this.knotSlope[k]! * (x - kx[k]!);
    }
    const e0 = this.edgeStart[j]!;
    const e1 = this.edgeStart[j + 1]!;
    let k = e0;
    while (k < e1 && x > this.edges[k]!) k++;
    return this.binVal[k + j]!;
  }

  /** Scorecard log-odds for inputs in field order (NaN = missing). */
  logOdds(x: ArrayLike<number>): number {
    let s = this.intercept;
    for (let j = 0; j < this.nFields; j++) s += this.contribution(j, x[j]!);
    return s;
  }

  score(logOdds: number): number {
    return this.scoreBase - this.scoreFactor * logOdds;
  }

  band(score: number): number {
    const e = this.bandEdges;
    let b = 0;
    while (b < e.length && score > e[b]!) b++;
    return b;
  }

  binLabel(j: number, x: number): string {
    const idx = this.binIndex(j, x);
    if (idx === -1) return 'missing';
    if (idx === -2) return 'negative (< 0)';
    return this.binLabels[j]![idx]!;
  }

  bandLabel(b: number): string {
    return this.bandLabels[b]!;
  }
}
