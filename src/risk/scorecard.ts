/**
 * Scorecard evaluator: bins precompiled into flat typed arrays so scoring a row is a few linear
 * scans over <= 8 edges and no allocation. Each bin holds coefficient x WoE, i.e. its log-odds
 * contribution, so the logistic score is intercept + sum of lookups.
 */
import type { ScorecardJson } from './artifact.js';

const LN2 = Math.LN2;

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
