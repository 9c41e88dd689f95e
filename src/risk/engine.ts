/**
 * The risk engine: compiled models for both kinds, predictions, risk levels, confidence and
 * explanations. Pure: takes already-parsed artifact JSON, does no I/O.
 *
 * Confidence (documented formula, see models/README.md):
 *   completeness = sum of field_weights of the ratios present / sum of all field_weights
 *   spread       = max - min of the component models' log-odds (logistic, step[, gbm])
 *   agreement    = exp(-spread / disagreement_scale)
 *   confidence   = completeness * agreement            (in [0, 1])
 */
import { ArtifactError, validateArtifact, type ModelArtifact } from './artifact.js';
import { fieldNamesOf, fieldsOf, type AnnualRatios, type FieldMeta, type ModelKind, type QuarterlyRatios } from './fields.js';
import { CompiledForest } from './gbm.js';
import { CompiledScorecard } from './scorecard.js';
import { r6 } from './round.js';

export type RiskLevel = 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** LOW < medium <= MEDIUM < high <= HIGH <= critical < CRITICAL. Fractions in [0, 1]. */
export interface RiskThresholds {
  medium: number;
  high: number;
  critical: number;
}

export const DEFAULT_THRESHOLDS: Readonly<RiskThresholds> = Object.freeze({ medium: 0.02, high: 0.05, critical: 0.15 });

export function validateThresholds(t: RiskThresholds): RiskThresholds {
  const ok = [t.medium, t.high, t.critical].every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1);
  if (!ok || !(t.medium <= t.high && t.high <= t.critical)) {
    throw new RangeError(`risk thresholds must be fractions with medium <= high <= critical, got ${JSON.stringify(t)}`);
  }
  return { medium: t.medium, high: t.high, critical: t.critical };
}

export function riskLevel(p: number, t: RiskThresholds = DEFAULT_THRESHOLDS): RiskLevel {
  if (p > t.critical) return 'CRITICAL';
  if (p >= t.high) return 'HIGH';
  if (p >= t.medium) return 'MEDIUM';
  return 'LOW';
}

interface ModelRef {
  name: string;
  version: string;
}

export interface Contribution {
  field: string;
  label: string;
  unit: '%' | 'x';
  value: number | null;
  /** Scorecard bin the value fell in, e.g. "(1.6, 2.2]", "missing". */
  bin: string;
  /** Contribution to the final log-odds relative to the portfolio baseline. */
  log_odds: number;
  direction: 'increases_risk' | 'decreases_risk' | 'neutral';
  components: { scorecard: number; gbm?: number };
}

export interface Explanation {
  /** Final log-odds for a portfolio-average company (every ratio contributing 0). */
  baseline_log_odds: number;
  /** baseline + sum of contributions + step_adjustment. */
  log_odds: number;
  /** Log-odds the step model adds by rounding the score to its band's rate (plus +-15 clamping, if any). */
  step_adjustment: number;
  score: number;
  score_band: string;
  completeness: number;
  agreement: number;
  contributions: Contribution[];
  top_drivers: Array<{ field: string; label: string; log_odds: number; direction: Contribution['direction'] }>;
}

export interface AnnualPrediction {
  probability: number;
  logistic_probability: number;
  step_probability: number;
  risk_level: RiskLevel;
  confidence: number;
  model: ModelRef;
  explanation?: Explanation;
}

export interface QuarterlyPrediction {
  ensemble_probability: number;
  logistic_probability: number;
  gbm_probability: number;
  step_probability: number;
  risk_level: RiskLevel;
  confidence: number;
  model: ModelRef;
  explanation?: Explanation;
}

export interface PredictOptions {
  explain?: boolean;
}

const CLAMP = 15;

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function clampLogit(z: number): number {
  return z > CLAMP ? CLAMP : z < -CLAMP ? -CLAMP : z;
}

/** Raw (unrounded) component outputs of one prediction; reused buffers avoid per-call allocation. */
interface RawScores {
  final: number;
  logistic: number;
  step: number;
  gbm: number;
  confidence: number;
  completeness: number;
  agreement: number;
  scorecardLogOdds: number;
  /** The GBM's log-odds before clamping (NaN without a GBM): explain() reads it, never re-scores. */
  gbmLogOdds: number;
  /** The forest's mask count after scoring these inputs (see CompiledForest.scored). */
  gbmScored: number;
  band: number;
}

/** One model family compiled for fast scoring. */
export class CompiledModel {
  readonly kind: ModelKind;
  readonly artifact: ModelArtifact;
  readonly ref: ModelRef;
  readonly fields: readonly FieldMeta[];
  readonly fieldNames: readonly string[];
  readonly scorecard: CompiledScorecard;
  readonly gbm: CompiledForest | null;
  readonly a: number;
  readonly wl: number;
  readonly ws: number;
  readonly wg: number;
  readonly fieldWeight: Float64Array;
  readonly dscale: number;
  /** Scratch input buffer in field order, NaN = missing. */
  readonly x: Float64Array;
  readonly raw: RawScores = { final: 0, logistic: 0, step: 0, gbm: 0, confidence: 0, completeness: 0, agreement: 0, scorecardLogOdds: 0, gbmLogOdds: NaN, gbmScored: -1, band: 0 };

  constructor(kind: ModelKind, json: unknown) {
    const art = validateArtifact(kind, json);
    this.kind = kind;
    this.artifact = art;
    this.ref = Object.freeze({ name: art.name, version: art.version });
    this.fields = fieldsOf(kind);
    this.fieldNames = fieldNamesOf(kind);
    this.scorecard = new CompiledScorecard(art.scorecard, this.fieldNames);
    this.gbm = art.gbm ? new CompiledForest(art.gbm, this.fieldNames) : null;
    this.a = art.blend.intercept;
    this.wl = art.blend.weights.logistic;
    this.ws = art.blend.weights.step;
    this.wg = art.blend.weights.gbm ?? 0;
    const w = this.fieldNames.map((f) => art.confidence.field_weights[f]!);
    const total = w.reduce((s, v) => s + v, 0);
    this.fieldWeight = Float64Array.from(w, (v) => v / total);
    this.dscale = art.confidence.disagreement_scale;
    this.x = new Float64Array(this.fieldNames.length);
  }

  /** Copies an input object into the scratch buffer. Expects validated ratios; guards cheaply anyway. */
  load(r: Readonly<Record<string, number | null | undefined>>): Float64Array {
    const x = this.x;
    const names = this.fieldNames;
    for (let j = 0; j < names.length; j++) {
      const v = r[names[j]!];
      if (v === null || v === undefined) x[j] = NaN;
      else if (typeof v === 'number' && v - v === 0) x[j] = v;
      else throw new TypeError(`ratio "${names[j]}" must be a finite number or null (run validateRatios first)`);
    }
    return x;
  }

  /** Scores inputs in field order (NaN = missing) into `this.raw`. */
  scoreVector(x: ArrayLike<number>): RawScores {
    const sc = this.scorecard;
    const lo = sc.logOdds(x);
    const band = sc.band(sc.score(lo));
    const ls = sc.bandLogit[band]!;
    const ll = clampLogit(lo);
    let z = this.a + this.wl * ll + this.ws * ls;
    let mx = ll > ls ? ll : ls;
    let mn = ll > ls ? ls : ll;
    let lg = 0;
    const raw = this.raw;
    if (this.gbm) {
      raw.gbmLogOdds = this.gbm.logOdds(x);
      raw.gbmScored = this.gbm.scored;
      lg = clampLogit(raw.gbmLogOdds);
      z += this.wg * lg;
      if (lg > mx) mx = lg;
      if (lg < mn) mn = lg;
      raw.gbm = sigmoid(lg);
    } else {
      raw.gbm = NaN;
      raw.gbmLogOdds = NaN;
    }
    let comp = 0;
    for (let j = 0; j < this.fieldWeight.length; j++) if (x[j] === x[j]) comp += this.fieldWeight[j]!;
    const agree = Math.exp(-(mx - mn) / this.dscale);
    raw.final = sigmoid(z);
    raw.logistic = sigmoid(lo);
    raw.step = sc.bandRates[band]!;
    raw.completeness = comp > 1 ? 1 : comp;
    raw.agreement = agree;
    raw.confidence = raw.completeness * agree;
    raw.scorecardLogOdds = lo;
    raw.band = band;
    return raw;
  }

  explain(x: ArrayLike<number>, raw: RawScores): Explanation {
    const sc = this.scorecard;
    const n = this.fieldNames.length;
    const wsc = this.wl + this.ws;
    const g = this.gbm ? this.gbm.contributions(x, n, raw.gbmScored) : null;
    const baseline = this.a + wsc * sc.intercept + (g ? this.wg * g.baseline : 0);
    const lo = raw.scorecardLogOdds;
    const ll = clampLogit(lo);
    let stepAdj = this.ws * (sc.bandLogit[raw.band]! - ll) + wsc * (ll - lo);
    let z = this.a + this.wl * ll + this.ws * sc.bandLogit[raw.band]!;
    if (this.gbm) {
      const lg = raw.gbmLogOdds;
      // The blend clamps component log-odds to +-15; fold that (rarely non-zero) difference in here
      // too so baseline + contributions + step_adjustment equals the final log-odds exactly.
      stepAdj += this.wg * (clampLogit(lg) - lg);
      z += this.wg * clampLogit(lg);
    }
    const contributions: Contribution[] = new Array(n);
    for (let j = 0; j < n; j++) {
      const xj = x[j]!;
      const cs = sc.contribution(j, xj);
      const meta = this.fields[j]!;
      const total = g ? wsc * cs + this.wg * g.byField[j]! : wsc * cs;
      // One literal per shape (with or without the GBM part): adding `gbm` afterwards would move
      // every explanation through an extra hidden-class transition.
      contributions[j] = {
        field: meta.name,
        label: meta.label,
        unit: meta.unit,
        value: xj !== xj ? null : xj,
        bin: sc.binLabel(j, xj),
        log_odds: r6(total),
        direction: total > 1e-9 ? 'increases_risk' : total < -1e-9 ? 'decreases_risk' : 'neutral',
        components: g ? { scorecard: r6(cs), gbm: r6(g.byField[j]!) } : { scorecard: r6(cs) },
      };
    }
    const top = topDrivers(contributions, 3);
    return {
      baseline_log_odds: r6(baseline),
      log_odds: r6(z),
      step_adjustment: r6(stepAdj),
      score: Math.round(sc.score(raw.scorecardLogOdds) * 10) / 10,
      score_band: sc.bandLabel(raw.band),
      completeness: r6(raw.completeness),
      agreement: r6(raw.agreement),
      contributions,
      top_drivers: top,
    };
  }
}

/**
 * The `k` non-neutral contributions largest in magnitude, largest first; ties keep field order
 * (as the stable sort this replaces did). A selection over a handful of fields, not a sort.
 */
function topDrivers(cs: readonly Contribution[], k: number): Explanation['top_drivers'] {
  const picked: Contribution[] = [];
  for (const c of cs) {
    if (c.direction === 'neutral') continue;
    const m = Math.abs(c.log_odds);
    let i = picked.length;
    while (i > 0 && Math.abs(picked[i - 1]!.log_odds) < m) i--;
    if (i >= k) continue;
    picked.splice(i, 0, c);
    if (picked.length > k) picked.pop();
  }
  return picked.map((c) => ({ field: c.field, label: c.label, log_odds: c.log_odds, direction: c.direction }));
}

export interface ModelSummary {
  kind: ModelKind;
  name: string;
  version: string;
  reference_model: boolean;
  trained_at: string | null;
  description: string;
}

export interface RiskEngine {
  readonly thresholds: Readonly<RiskThresholds>;
  readonly models: { annual: ModelSummary; quarterly: ModelSummary };
  predictAnnual(ratios: AnnualRatios, opts?: PredictOptions): AnnualPrediction;
  predictQuarterly(ratios: QuarterlyRatios, opts?: PredictOptions): QuarterlyPrediction;
  /** Same results as mapping the single-row call; reuses the engine's buffers (for bulk uploads). */
  predictAnnualBatch(rows: readonly AnnualRatios[], opts?: PredictOptions): AnnualPrediction[];
  predictQuarterlyBatch(rows: readonly QuarterlyRatios[], opts?: PredictOptions): QuarterlyPrediction[];
  artifact(kind: ModelKind): ModelArtifact;
  compiled(kind: ModelKind): CompiledModel;
}

interface RiskEngineOptions {
  annual: unknown;
  quarterly: unknown;
  thresholds?: Partial<RiskThresholds>;
}

function summary(m: CompiledModel): ModelSummary {
  const a = m.artifact;
  return { kind: a.kind, name: a.name, version: a.version, reference_model: a.reference_model, trained_at: a.trained_at, description: a.description };
}

export function compileModel(kind: ModelKind, json: unknown): CompiledModel {
  try {
    return new CompiledModel(kind, json);
  } catch (e) {
    if (e instanceof ArtifactError) throw e;
    throw new ArtifactError(`invalid ${kind} model artifact: ${(e as Error).message}`);
  }
}

export function predictAnnualWith(m: CompiledModel, ratios: AnnualRatios, thresholds: RiskThresholds, opts?: PredictOptions): AnnualPrediction {
  const x = m.load(ratios as unknown as Record<string, number | null>);
  const raw = m.scoreVector(x);
  const p = r6(raw.final);
  const out: AnnualPrediction = {
    probability: p,
    logistic_probability: r6(raw.logistic),
    step_probability: r6(raw.step),
    risk_level: riskLevel(p, thresholds),
    confidence: r6(raw.confidence),
    model: m.ref,
  };
  if (opts?.explain) out.explanation = m.explain(x, raw);
  return out;
}

export function predictQuarterlyWith(m: CompiledModel, ratios: QuarterlyRatios, thresholds: RiskThresholds, opts?: PredictOptions): QuarterlyPrediction {
  const x = m.load(ratios as unknown as Record<string, number | null>);
  const raw = m.scoreVector(x);
  const p = r6(raw.final);
  const out: QuarterlyPrediction = {
    ensemble_probability: p,
    logistic_probability: r6(raw.logistic),
    gbm_probability: r6(raw.gbm),
    step_probability: r6(raw.step),
    risk_level: riskLevel(p, thresholds),
    confidence: r6(raw.confidence),
    model: m.ref,
  };
  if (opts?.explain) out.explanation = m.explain(x, raw);
  return out;
}

/** Validates both artifacts (throws ArtifactError naming the bad path) and compiles them. */
export function createRiskEngine(opts: RiskEngineOptions): RiskEngine {
  const annual = compileModel('annual', opts.annual);
  const quarterly = compileModel('quarterly', opts.quarterly);
  const thresholds = Object.freeze(validateThresholds({ ...DEFAULT_THRESHOLDS, ...(opts.thresholds ?? {}) }));
  return {
    thresholds,
    models: { annual: summary(annual), quarterly: summary(quarterly) },
    predictAnnual: (r, o) => predictAnnualWith(annual, r, thresholds, o),
    predictQuarterly: (r, o) => predictQuarterlyWith(quarterly, r, thresholds, o),
    predictAnnualBatch: (rows, o) => rows.map((r) => predictAnnualWith(annual, r, thresholds, o)),
    predictQuarterlyBatch: (rows, o) => rows.map((r) => predictQuarterlyWith(quarterly, r, thresholds, o)),
    artifact: (k) => (k === 'annual' ? annual.artifact : quarterly.artifact),
    compiled: (k) => (k === 'annual' ? annual : quarterly),
  };
}

interface ColumnScores {
  final: Float64Array;
  logistic: Float64Array;
  step: Float64Array;
  gbm: Float64Array | null;
  confidence: Float64Array;
}

/** Scores a columnar data set (NaN = missing); used by training, evaluation and tests. */
export function scoreColumns(m: CompiledModel, columns: readonly Float64Array[]): ColumnScores {
  const n = columns[0]?.length ?? 0;
  const out: ColumnScores = {
    final: new Float64Array(n),
    logistic: new Float64Array(n),
    step: new Float64Array(n),
    gbm: m.gbm ? new Float64Array(n) : null,
    confidence: new Float64Array(n),
  };
  const x = new Float64Array(columns.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < columns.length; j++) x[j] = columns[j]![i]!;
    const raw = m.scoreVector(x);
    out.final[i] = raw.final;
    out.logistic[i] = raw.logistic;
    out.step[i] = raw.step;
    if (out.gbm) out.gbm[i] = raw.gbm;
    out.confidence[i] = raw.confidence;
  }
  return out;
}
