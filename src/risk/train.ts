/**
 * Training pipeline: split -> monotone binning -> WoE logistic (IRLS, L2, non-negative) -> score
 * bands (step model) -> GBM (quarterly) -> stacker on validation -> metrics. Pure and deterministic
 * for a given data set and seed.
 */
import { ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, type FieldBinningJson, type GbmJson, type ModelArtifact, type ScorecardJson } from './artifact.js';
import { DEFAULT_BINNING, DEFAULT_STEP_BANDS, fitFieldBinning, fitStepBands, type BinningOptions, type StepBandOptions } from './binning.js';
import { subset, type Dataset } from './dataset.js';
import { compileModel, scoreColumns, type CompiledModel } from './engine.js';
import { fieldsOf, type ModelKind } from './fields.js';
import { DEFAULT_GBM, trainGbm, type GbmTrainOptions } from './gbm-train.js';
import { fitLogistic } from './logistic.js';
import { computeMetrics, type Metrics } from './metrics.js';
import { Rng } from './rng.js';
import { CompiledScorecard } from './scorecard.js';
import { pdReference } from './drift.js';
import { r6 } from './round.js';

interface TrainOptions {
  seed?: number;
  validationShare?: number;
  name?: string;
  version?: string;
  description?: string;
  /** ISO timestamp to record; null keeps the artifact byte-identical across runs. */
  trainedAt?: string | null;
  referenceModel?: boolean;
  dataLabel?: string;
  l2?: number;
  /** Smallest scorecard slope on a WoE feature (default 0.03). */
  minSlope?: number;
  binning?: Partial<BinningOptions>;
  stepBands?: Partial<StepBandOptions>;
  gbm?: Partial<GbmTrainOptions>;
  disagreementScale?: number;
  /** Another artifact of the kind (e.g. the shipped model) to evaluate on the same validation split. */
  compareWith?: ModelArtifact;
}

export type ComponentName = 'logistic' | 'step' | 'gbm' | 'blend';

export interface TrainReport {
  kind: ModelKind;
  name: string;
  version: string;
  reference_model: boolean;
  trained_at: string | null;
  data: { label: string; rows: number; defaults: number; train_rows: number; validation_rows: number; seed: number };
  logistic: { intercept: number; coefficients: Record<string, number> };
  blend: ModelArtifact['blend'];
  binning: Array<{ field: string; bins: number; missing_rate: number; missing_woe: number; iv: number }>;
  /** Metrics on the validation split, per component and for the blend. */
  validation: Partial<Record<ComponentName, Metrics>>;
  /** The same validation split scored by `compareWith` ("before"), when given. */
  comparison?: { name: string; version: string; validation: Partial<Record<ComponentName, Metrics>> };
  /** Per ratio, the continuous curve's knots and which share of training values lies inside them. */
  curves: Array<{ field: string; knots: number; first_knot: number; last_knot: number; coverage_low: number; coverage_high: number }>;
}

const SCORE_SCALE = { base_score: 600, base_odds: 50, pdo: 20 };
const CONFIDENCE_FORMULA =
  'confidence = completeness * agreement; completeness = sum(field_weights of present ratios) / sum(field_weights); agreement = exp(-(max - min of component log-odds) / disagreement_scale)';

function clampLogit(p: number): number {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return Math.log(q / (1 - q));
}

/** Information value of a field's binning, for the report (how much the field separates defaults). */
function informationValue(b: FieldBinningJson): number {
  const all = [...b.bins, b.missing, ...(b.negative ? [b.negative] : [])];
  const D = all.reduce((s, x) => s + x.defaults, 0);
  const G = all.reduce((s, x) => s + x.count - x.defaults, 0);
  let iv = 0;
  for (const x of all) {
    if (x.count === 0) continue;
    const d = (x.defaults + 0.5) / (D + 0.5);
    const g = (x.count - x.defaults + 0.5) / (G + 0.5);
    iv += (d - g) * Math.log(d / g);
  }
  return r6(iv);
}

function baseArtifact(kind: ModelKind, opts: TrainOptions, scorecard: ScorecardJson, gbm: GbmJson | null): ModelArtifact {
  return {
    format: ARTIFACT_FORMAT,
    format_version: ARTIFACT_FORMAT_VERSION,
    kind,
    name: opts.name ?? `accunode-reference-${kind}`,
    version: opts.version ?? '1.0.0',
    reference_model: opts.referenceModel ?? true,
    description:
      opts.description ??
      `Reference ${kind} model trained on the synthetic reference portfolio (accunode model reference-data); not fitted to real defaults.`,
    trained_at: opts.trainedAt ?? null,
    fields: [...fieldsOf(kind).map((f) => f.name)],
    scorecard,
    gbm,
    blend: { method: 'logistic_stacker', intercept: 0, weights: kind === 'quarterly' ? { logistic: 1, step: 0, gbm: 0 } : { logistic: 1, step: 0 }, fitted_on: 'validation', rows: 0 },
    confidence: { field_weights: {}, disagreement_scale: opts.disagreementScale ?? 1.5, formula: CONFIDENCE_FORMULA },
  };
}

export function trainModel(ds: Dataset, opts: TrainOptions = {}): { artifact: ModelArtifact; report: TrainReport } {
  const kind = ds.kind;
  const fields = fieldsOf(kind);
  const seed = opts.seed ?? 42;
  const n = ds.y.length;
  const share = opts.validationShare ?? 0.3;
  const perm = new Rng(seed).permutation(n);
  const nVal = Math.round(n * share);
  if (nVal < 100 || n - nVal < 500) throw new Error(`not enough rows to train (${n}); need at least ~1000`);
  const val = subset(ds, perm.subarray(0, nVal));
  const train = subset(ds, perm.subarray(nVal));
  const nTrain = train.y.length;

  const binning = fields.map((f, j) => fitFieldBinning(f, train.columns[j]!, train.y, { ...DEFAULT_BINNING, ...opts.binning }));
  const unitCoefs = Object.fromEntries(fields.map((f) => [f.name, 1]));
  const dummyBands = [{ low: null, high: null, count: 0, defaults: 0, default_rate: 0 }];
  const woeCard = new CompiledScorecard(
    { binning, logistic: { intercept: 0, coefficients: unitCoefs, l2: 0 }, score_scale: SCORE_SCALE, step_bands: dummyBands },
    fields.map((f) => f.name),
  );
  const woeCols = fields.map((_, j) => {
    const col = train.columns[j]!;
    const out = new Float64Array(nTrain);
    for (let i = 0; i < nTrain; i++) out[i] = woeCard.contribution(j, col[i]!);
    return out;
  });
  const l2 = opts.l2 ?? 1;
  // WoE is oriented so that larger = riskier; a negative slope would flip a ratio's known risk
  // direction (collinearity), so slopes are constrained non-negative, and kept at least minSlope so
  // that every ratio moves the PD (quick ratio, nearly collinear with current ratio, would drop to 0).
  const minSlope = opts.minSlope ?? 0.03;
  const fit = fitLogistic(woeCols, train.y, { l2, nonNegative: true, minSlope });
  const coefficients = Object.fromEntries(fields.map((f, j) => [f.name, r6(fit.coefficients[j]!)]));
  const intercept = r6(fit.intercept);

  const factor = SCORE_SCALE.pdo / Math.LN2;
  const scoreBase = SCORE_SCALE.base_score + factor * Math.log(1 / SCORE_SCALE.base_odds);
  const trainScores = new Float64Array(nTrain);
  for (let i = 0; i < nTrain; i++) {
    let z = intercept;
    for (let j = 0; j < fields.length; j++) z += coefficients[fields[j]!.name]! * woeCols[j]![i]!;
    trainScores[i] = scoreBase - factor * z;
  }
  const step_bands = fitStepBands(trainScores, train.y, { ...DEFAULT_STEP_BANDS, ...opts.stepBands });
  const scorecard: ScorecardJson = { binning, logistic: { intercept, coefficients, l2 }, score_scale: SCORE_SCALE, step_bands };

  const gbm = kind === 'quarterly' ? trainGbm(fields, train.columns, train.y, { ...DEFAULT_GBM, ...opts.gbm }) : null;

  // Confidence weights: each field's share of scorecard signal (|beta| x std of its WoE), floored
  // so that losing any ratio still lowers completeness.
  const imp = woeCols.map((col, j) => {
    let m = 0;
    let s = 0;
    for (let i = 0; i < nTrain; i++) m += col[i]!;
    m /= nTrain;
    for (let i = 0; i < nTrain; i++) s += (col[i]! - m) ** 2;
    return Math.abs(fit.coefficients[j]!) * Math.sqrt(s / nTrain);
  });
  const maxImp = Math.max(...imp, 1e-9);
  const floored = imp.map((v) => Math.max(v, 0.1 * maxImp));
  const tot = floored.reduce((s, v) => s + v, 0);
  const artifact = baseArtifact(kind, opts, scorecard, gbm);
  artifact.confidence.field_weights = Object.fromEntries(fields.map((f, j) => [f.name, r6(floored[j]! / tot)]));

  // Stacker on the validation split: logistic regression on the components' log-odds.
  artifact.blend = fitBlend(artifact, val);
  const model = compileModel(kind, artifact);
  artifact.monitoring = pdReference(scoreColumns(model, train.columns).final);
  const validation = evaluateModel(model, val);
  artifact.validation_metrics = Object.fromEntries(
    Object.entries(validation).map(([k, m]) => [k, { auc: m.auc, ks: m.ks, brier: m.brier, calibration_error: m.calibration_error }]),
  );
  let defaults = 0;
  for (let i = 0; i < n; i++) defaults += ds.y[i]!;
  artifact.training = {
    rows: n,
    defaults,
    train_rows: nTrain,
    validation_rows: nVal,
    seed,
    data: opts.dataLabel ?? 'in-memory',
    min_slope: minSlope,
    binning: { ...DEFAULT_BINNING, ...opts.binning },
    step_bands: { ...DEFAULT_STEP_BANDS, ...opts.stepBands },
  };
  const report: TrainReport = {
    kind,
    name: artifact.name,
    version: artifact.version,
    reference_model: artifact.reference_model,
    trained_at: artifact.trained_at,
    data: { label: opts.dataLabel ?? 'in-memory', rows: n, defaults, train_rows: nTrain, validation_rows: nVal, seed },
    logistic: { intercept, coefficients },
    blend: artifact.blend,
    binning: binning.map((b) => ({
      field: b.field,
      bins: b.bins.length,
      missing_rate: r6(b.missing.count / nTrain),
      missing_woe: b.missing.woe,
      iv: informationValue(b),
    })),
    validation,
    curves: binning.flatMap((b) =>
      b.curve
        ? [{ field: b.field, knots: b.curve.x.length, first_knot: b.curve.x[0]!, last_knot: b.curve.x[b.curve.x.length - 1]!, coverage_low: b.curve.coverage[0], coverage_high: b.curve.coverage[1] }]
        : [],
    ),
  };
  if (opts.compareWith) {
    const before = compileModel(kind, opts.compareWith);
    report.comparison = { name: before.ref.name, version: before.ref.version, validation: evaluateModel(before, val) };
  }
  return { artifact, report };
}

/**
 * Fits the blend (stacker) weights for an artifact's components on labelled data: a logistic
 * regression on the components' log-odds with non-negative weights, so the blend stays monotone
 * wherever every component is.
 */
function fitBlend(artifact: ModelArtifact, ds: Dataset): ModelArtifact['blend'] {
  const kind = artifact.kind;
  const provisional: ModelArtifact = {
    ...artifact,
    blend: { method: 'logistic_stacker', intercept: 0, weights: kind === 'quarterly' ? { logistic: 1, step: 0, gbm: 0 } : { logistic: 1, step: 0 }, fitted_on: 'validation', rows: 0 },
  };
  const comp = scoreColumns(compileModel(kind, provisional), ds.columns);
  const stackCols = [comp.logistic, comp.step, ...(comp.gbm ? [comp.gbm] : [])].map((c) => Float64Array.from(c, clampLogit));
  const stack = fitLogistic(stackCols, ds.y, { l2: 1, nonNegative: true });
  return {
    method: 'logistic_stacker',
    intercept: r6(stack.intercept),
    weights:
      kind === 'quarterly'
        ? { logistic: r6(stack.coefficients[0]!), step: r6(stack.coefficients[1]!), gbm: r6(stack.coefficients[2]!) }
        : { logistic: r6(stack.coefficients[0]!), step: r6(stack.coefficients[1]!) },
    fitted_on: 'validation',
    rows: ds.y.length,
  };
}

/**
 * A quarterly artifact with its GBM component replaced (e.g. by an imported LightGBM model).
 * With data, the blend is refitted on it; without, the base blend weights are kept, which is only
 * sensible when the new GBM is similar in scale to the old one; the description says which.
 */
export function withReplacedGbm(
  base: ModelArtifact,
  gbm: GbmJson,
  opts: { name?: string; version?: string; data?: Dataset; trainedAt?: string | null } = {},
): { artifact: ModelArtifact; validation: Partial<Record<ComponentName, Metrics>> | null } {
  if (base.kind !== 'quarterly') throw new Error('only quarterly models have a GBM component');
  const artifact: ModelArtifact = {
    ...base,
    name: opts.name ?? base.name,
    version: opts.version ?? `${base.version}+lightgbm`,
    gbm,
    trained_at: opts.trainedAt ?? base.trained_at,
    description: `${base.description} GBM component imported from a LightGBM model; blend ${opts.data ? 'refitted on supplied data' : 'weights kept from the base model'}.`,
  };
  delete artifact.validation_metrics;
  let validation: Partial<Record<ComponentName, Metrics>> | null = null;
  if (opts.data) {
    artifact.blend = fitBlend(artifact, opts.data);
    artifact.blend.fitted_on = 'import data';
    validation = evaluateModel(compileModel('quarterly', artifact), opts.data);
    artifact.validation_metrics = Object.fromEntries(
      Object.entries(validation).map(([k, m]) => [k, { auc: m.auc, ks: m.ks, brier: m.brier, calibration_error: m.calibration_error }]),
    );
  }
  compileModel('quarterly', artifact);
  return { artifact, validation };
}

/** Metrics for every component and the blend on a labelled data set. */
export function evaluateModel(model: CompiledModel, ds: Dataset): Partial<Record<ComponentName, Metrics>> {
  const s = scoreColumns(model, ds.columns);
  const out: Partial<Record<ComponentName, Metrics>> = {
    logistic: computeMetrics(s.logistic, ds.y),
    step: computeMetrics(s.step, ds.y),
  };
  if (s.gbm) out.gbm = computeMetrics(s.gbm, ds.y);
  out.blend = computeMetrics(s.final, ds.y);
  return out;
}
