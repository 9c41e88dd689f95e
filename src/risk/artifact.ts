/**
 * The model artifact: one versioned JSON document per model family (annual, quarterly), and its
 * schema validation. Validation is hand-written rather than a generic JSON-schema pass because the
 * structural rules that matter (contiguous bins, tree shape, children in range) are not expressible
 * in JSON Schema, and the error must name the exact path that is wrong.
 */
import { fieldNamesOf, type ModelKind } from './fields.js';

export const ARTIFACT_FORMAT = 'accunode-risk-model';
export const ARTIFACT_FORMAT_VERSION = 1;

/** Stats of a bin that is not an interval (Missing, Negative). */
export interface SpecialBinJson {
  count: number;
  defaults: number;
  default_rate: number;
  /** Weight of evidence: log-odds of the bin's smoothed default rate minus the portfolio log-odds. */
  woe: number;
}

/** Interval bin (low, high]; null means -infinity / +infinity (JSON has no Infinity). */
export interface BinJson extends SpecialBinJson {
  low: number | null;
  high: number | null;
}

export interface FieldBinningJson {
  field: string;
  /** How default risk moves as the ratio grows; WoE is monotone in this direction. */
  direction: 'increasing' | 'decreasing';
  bins: BinJson[];
  missing: SpecialBinJson;
  /** Present for ratios whose negative values mean distress (negative EBITDA / equity). */
  negative: SpecialBinJson | null;
  /**
   * Continuous WoE curve: knots at the medians of isotonic blocks of the training values, WoE
   * strictly monotone in the risk direction, linearly interpolated between knots and constant
   * beyond the first and last knot. Absent in older artifacts, which then score bin by bin.
   */
  curve?: CurveJson;
}

export interface CurveJson {
  method: 'isotonic_interpolated';
  /** Knot positions, strictly increasing. */
  x: number[];
  /** WoE at each knot, strictly monotone in the field's risk direction. */
  woe: number[];
  /** Share of training values at or below the first knot and at or below the last knot. */
  coverage: [number, number];
}

export interface StepBandJson {
  /** Score interval (low, high]; higher score = lower risk. */
  low: number | null;
  high: number | null;
  count: number;
  defaults: number;
  default_rate: number;
}

export interface ScorecardJson {
  binning: FieldBinningJson[];
  logistic: { intercept: number; coefficients: Record<string, number>; l2: number };
  /** score = base_score - pdo / ln 2 * (log-odds - ln(1 / base_odds)) */
  score_scale: { base_score: number; base_odds: number; pdo: number };
  step_bands: StepBandJson[];
}

/** One tree in LightGBM's array layout: child >= 0 is an internal node, child < 0 is leaf ~child. */
export interface TreeJson {
  num_leaves: number;
  split_feature: number[];
  threshold: number[];
  /** LightGBM bits: 1 categorical (unsupported), 2 default_left, (>>2)&3 missing type 0 None 1 Zero 2 NaN. */
  decision_type: number[];
  left_child: number[];
  right_child: number[];
  leaf_value: number[];
  /** Training rows per leaf, used to weight node means for explanations; optional. */
  leaf_count?: number[];
}

export interface GbmJson {
  source: 'accunode' | 'lightgbm';
  /** Model feature index -> ratio field name. */
  features: string[];
  /** Fields whose negative values are mapped above any storable value before evaluation. */
  negative_as_max: string[];
  /** P = 1 / (1 + exp(-sigmoid * raw)). */
  sigmoid: number;
  init_score: number;
  /** Random-forest style models average tree outputs instead of summing them. */
  average_output: boolean;
  trees: TreeJson[];
  params?: Record<string, unknown>;
}

export interface BlendJson {
  method: 'logistic_stacker';
  intercept: number;
  /** Weights on each component's log-odds. */
  weights: { logistic: number; step: number; gbm?: number };
  fitted_on: string;
  rows: number;
}

export interface ConfidenceJson {
  /** Relative importance of each field, used for input completeness. */
  field_weights: Record<string, number>;
  /** Log-odds spread at which agreement drops to 1/e. */
  disagreement_scale: number;
  formula: string;
}

export interface ModelArtifact {
  format: typeof ARTIFACT_FORMAT;
  format_version: typeof ARTIFACT_FORMAT_VERSION;
  kind: ModelKind;
  name: string;
  version: string;
  reference_model: boolean;
  description: string;
  trained_at: string | null;
  fields: string[];
  scorecard: ScorecardJson;
  gbm: GbmJson | null;
  blend: BlendJson;
  confidence: ConfidenceJson;
  training?: Record<string, unknown>;
  validation_metrics?: Record<string, { auc: number; ks: number; brier: number; calibration_error: number }>;
  /** Training-split distributions that drift monitoring compares recent predictions against. */
  monitoring?: MonitoringJson;
}

/**
 * Reference distributions for the population stability index: the final PD's bins (the training
 * split's deciles, as (low, high] intervals over pd_edges) with row counts. Ratio distributions are
 * the scorecard bins' own counts (plus Missing and Negative), so they need no copy here.
 */
export interface MonitoringJson {
  rows: number;
  pd_edges: number[];
  pd_counts: number[];
}

export class ArtifactError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactError';
  }
}

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly label: string) {}

  fail(path: string, msg: string): never {
    throw new ArtifactError(`invalid ${this.label} model artifact at ${path}: ${msg}`);
  }

  obj(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'expected an object');
    return v as Obj;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'expected an array');
    return v;
  }

  num(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'expected a finite number');
    return v;
  }

  numOrNull(v: unknown, path: string): number | null {
    return v === null ? null : this.num(v, path);
  }

  int(v: unknown, path: string, min = -Infinity): number {
    const n = this.num(v, path);
    if (!Number.isInteger(n) || n < min) this.fail(path, `expected an integer >= ${min}`);
    return n;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== 'string' || v === '') this.fail(path, 'expected a non-empty string');
    return v;
  }

  nums(v: unknown, path: string, len?: number): number[] {
    const a = this.arr(v, path);
    if (len !== undefined && a.length !== len) this.fail(path, `expected ${len} entries, got ${a.length}`);
    return a.map((x, i) => this.num(x, `${path}[${i}]`));
  }
}

function checkSpecial(c: Checker, v: unknown, path: string): SpecialBinJson {
  const o = c.obj(v, path);
  const rate = c.num(o.default_rate, `${path}.default_rate`);
  if (rate < 0 || rate > 1) c.fail(`${path}.default_rate`, 'must be in [0, 1]');
  return {
    count: c.int(o.count, `${path}.count`, 0),
    defaults: c.int(o.defaults, `${path}.defaults`, 0),
    default_rate: rate,
    woe: c.num(o.woe, `${path}.woe`),
  };
}

/** Checks that (low, high] intervals start at -inf, end at +inf and chain without gaps. */
function checkIntervals(c: Checker, items: Array<{ low: number | null; high: number | null }>, path: string): void {
  if (items.length === 0) c.fail(path, 'needs at least one interval');
  if (items[0]!.low !== null) c.fail(`${path}[0].low`, 'first interval must start at -infinity (null)');
  if (items[items.length - 1]!.high !== null) c.fail(`${path}[${items.length - 1}].high`, 'last interval must end at +infinity (null)');
  for (let i = 0; i + 1 < items.length; i++) {
    const h = items[i]!.high;
    if (h === null) c.fail(`${path}[${i}].high`, 'only the last interval may be unbounded');
    if (items[i + 1]!.low !== h) c.fail(`${path}[${i + 1}].low`, `must equal the previous high (${h})`);
    const lo = items[i]!.low;
    if (lo !== null && !(h > lo)) c.fail(`${path}[${i}]`, 'interval must have low < high');
  }
}

function checkCurve(c: Checker, v: unknown, path: string, direction: 'increasing' | 'decreasing'): CurveJson {
  const o = c.obj(v, path);
  if (o.method !== 'isotonic_interpolated') c.fail(`${path}.method`, 'must be "isotonic_interpolated"');
  const x = c.nums(o.x, `${path}.x`);
  if (x.length === 0) c.fail(`${path}.x`, 'needs at least one knot');
  const woe = c.nums(o.woe, `${path}.woe`, x.length);
  const sign = direction === 'increasing' ? 1 : -1;
  for (let i = 1; i < x.length; i++) {
    if (!(x[i]! > x[i - 1]!)) c.fail(`${path}.x[${i}]`, 'knots must be strictly increasing');
    // Monotone is what makes the PD move the right way; a flat or reversed segment is a broken model.
    if (!(sign * (woe[i]! - woe[i - 1]!) > 0)) c.fail(`${path}.woe[${i}]`, `WoE must be strictly ${direction} across knots`);
  }
  const cov = c.nums(o.coverage, `${path}.coverage`, 2);
  return { method: 'isotonic_interpolated', x, woe, coverage: [cov[0]!, cov[1]!] };
}

function validateTree(c: Checker, v: unknown, path: string, nFeatures: number): TreeJson {
  const o = c.obj(v, path);
  const nl = c.int(o.num_leaves, `${path}.num_leaves`, 1);
  const ni = nl - 1;
  const t: TreeJson = {
    num_leaves: nl,
    split_feature: c.nums(o.split_feature, `${path}.split_feature`, ni),
    threshold: c.nums(o.threshold, `${path}.threshold`, ni),
    decision_type: c.nums(o.decision_type, `${path}.decision_type`, ni),
    left_child: c.nums(o.left_child, `${path}.left_child`, ni),
    right_child: c.nums(o.right_child, `${path}.right_child`, ni),
    leaf_value: c.nums(o.leaf_value, `${path}.leaf_value`, nl),
  };
  if (o.leaf_count !== undefined) t.leaf_count = c.nums(o.leaf_count, `${path}.leaf_count`, nl);
  for (let i = 0; i < ni; i++) {
    const f = t.split_feature[i]!;
    if (!Number.isInteger(f) || f < 0 || f >= nFeatures) c.fail(`${path}.split_feature[${i}]`, `feature index ${f} out of range`);
    const d = t.decision_type[i]!;
    if (!Number.isInteger(d) || d < 0 || d > 15) c.fail(`${path}.decision_type[${i}]`, `bad decision_type ${d}`);
    if (d & 1) c.fail(`${path}.decision_type[${i}]`, 'categorical splits are not supported');
    if (((d >> 2) & 3) === 3) c.fail(`${path}.decision_type[${i}]`, 'unknown missing type 3');
  }
  // Every internal node and leaf must be reached exactly once from the root: rejects cycles,
  // dangling indices and shared subtrees, which would otherwise loop forever or mis-score.
  if (ni > 0) {
    const seenNode = new Uint8Array(ni);
    const seenLeaf = new Uint8Array(nl);
    const stack = [0];
    seenNode[0] = 1;
    while (stack.length > 0) {
      const node = stack.pop()!;
      for (const [side, child] of [
        ['left_child', t.left_child[node]!],
        ['right_child', t.right_child[node]!],
      ] as const) {
        if (!Number.isInteger(child)) c.fail(`${path}.${side}[${node}]`, 'not an integer');
        if (child >= 0) {
          if (child >= ni || seenNode[child]) c.fail(`${path}.${side}[${node}]`, `bad internal node reference ${child}`);
          seenNode[child] = 1;
          stack.push(child);
        } else {
          const leaf = ~child;
          if (leaf >= nl || seenLeaf[leaf]) c.fail(`${path}.${side}[${node}]`, `bad leaf reference ${child}`);
          seenLeaf[leaf] = 1;
        }
      }
    }
    if (seenNode.some((s) => s === 0) || seenLeaf.some((s) => s === 0)) c.fail(path, 'tree has unreachable nodes or leaves');
  }
  return t;
}

export function validateGbm(kind: ModelKind, v: unknown, path = 'gbm'): GbmJson {
  const c: Checker = new Checker(kind);
  const o = c.obj(v, path);
  const allowed = new Set<string>(fieldNamesOf(kind));
  const features = c.arr(o.features, `${path}.features`).map((f, i) => {
    const s = c.str(f, `${path}.features[${i}]`);
    if (!allowed.has(s)) c.fail(`${path}.features[${i}]`, `"${s}" is not a ${kind} ratio field`);
    return s;
  });
  if (features.length === 0) c.fail(`${path}.features`, 'needs at least one feature');
  const negative_as_max = c.arr(o.negative_as_max, `${path}.negative_as_max`).map((f, i) => {
    const s = c.str(f, `${path}.negative_as_max[${i}]`);
    if (!features.includes(s)) c.fail(`${path}.negative_as_max[${i}]`, `"${s}" is not one of the model features`);
    return s;
  });
  if (o.source !== 'accunode' && o.source !== 'lightgbm') c.fail(`${path}.source`, 'must be "accunode" or "lightgbm"');
  const sigmoid = c.num(o.sigmoid, `${path}.sigmoid`);
  if (!(sigmoid > 0)) c.fail(`${path}.sigmoid`, 'must be positive');
  if (typeof o.average_output !== 'boolean') c.fail(`${path}.average_output`, 'expected a boolean');
  const trees = c.arr(o.trees, `${path}.trees`).map((t, i) => validateTree(c, t, `${path}.trees[${i}]`, features.length));
  if (trees.length === 0) c.fail(`${path}.trees`, 'needs at least one tree');
  const out: GbmJson = {
    source: o.source,
    features,
    negative_as_max,
    sigmoid,
    init_score: c.num(o.init_score, `${path}.init_score`),
    average_output: o.average_output,
    trees,
  };
  if (o.params !== undefined) out.params = c.obj(o.params, `${path}.params`);
  return out;
}

/** Parses and validates an artifact; throws ArtifactError naming the offending path. */
export function validateArtifact(expectedKind: ModelKind, v: unknown): ModelArtifact {
  const c: Checker = new Checker(expectedKind);
  const o = c.obj(v, '$');
  if (o.format !== ARTIFACT_FORMAT) c.fail('$.format', `expected "${ARTIFACT_FORMAT}"`);
  if (o.format_version !== ARTIFACT_FORMAT_VERSION) c.fail('$.format_version', `unsupported version ${String(o.format_version)}, expected ${ARTIFACT_FORMAT_VERSION}`);
  if (o.kind !== expectedKind) c.fail('$.kind', `expected "${expectedKind}", got ${JSON.stringify(o.kind)}`);
  const kind = expectedKind;
  const names = fieldNamesOf(kind);
  const fields = c.arr(o.fields, '$.fields').map((f, i) => c.str(f, `$.fields[${i}]`));
  if (fields.length !== names.length || !names.every((n) => fields.includes(n))) {
    c.fail('$.fields', `must list exactly the ${kind} fields: ${names.join(', ')}`);
  }
  if (typeof o.reference_model !== 'boolean') c.fail('$.reference_model', 'expected a boolean');
  if (o.trained_at !== null && typeof o.trained_at !== 'string') c.fail('$.trained_at', 'expected a string or null');

  const sc = c.obj(o.scorecard, '$.scorecard');
  const binningRaw = c.arr(sc.binning, '$.scorecard.binning');
  const binning: FieldBinningJson[] = names.map((name) => {
    const i = binningRaw.findIndex((b) => typeof b === 'object' && b !== null && (b as Obj).field === name);
    if (i < 0) c.fail('$.scorecard.binning', `no binning for field "${name}"`);
    const p = `$.scorecard.binning[${i}]`;
    const b = c.obj(binningRaw[i], p);
    if (b.direction !== 'increasing' && b.direction !== 'decreasing') c.fail(`${p}.direction`, 'must be "increasing" or "decreasing"');
    const bins = c.arr(b.bins, `${p}.bins`).map((x, j) => {
      const bp = `${p}.bins[${j}]`;
      const bo = c.obj(x, bp);
      return { ...checkSpecial(c, bo, bp), low: c.numOrNull(bo.low, `${bp}.low`), high: c.numOrNull(bo.high, `${bp}.high`) };
    });
    checkIntervals(c, bins, `${p}.bins`);
    const out: FieldBinningJson = {
      field: name,
      direction: b.direction,
      bins,
      missing: checkSpecial(c, b.missing, `${p}.missing`),
      negative: b.negative === null || b.negative === undefined ? null : checkSpecial(c, b.negative, `${p}.negative`),
    };
    if (b.curve !== undefined) out.curve = checkCurve(c, b.curve, `${p}.curve`, b.direction);
    return out;
  });
  const lg = c.obj(sc.logistic, '$.scorecard.logistic');
  const coefO = c.obj(lg.coefficients, '$.scorecard.logistic.coefficients');
  const coefficients: Record<string, number> = {};
  for (const n of names) coefficients[n] = c.num(coefO[n], `$.scorecard.logistic.coefficients.${n}`);
  const ss = c.obj(sc.score_scale, '$.scorecard.score_scale');
  const score_scale = {
    base_score: c.num(ss.base_score, '$.scorecard.score_scale.base_score'),
    base_odds: c.num(ss.base_odds, '$.scorecard.score_scale.base_odds'),
    pdo: c.num(ss.pdo, '$.scorecard.score_scale.pdo'),
  };
  if (!(score_scale.pdo > 0) || !(score_scale.base_odds > 0)) c.fail('$.scorecard.score_scale', 'pdo and base_odds must be positive');
  const step_bands = c.arr(sc.step_bands, '$.scorecard.step_bands').map((x, j) => {
    const bp = `$.scorecard.step_bands[${j}]`;
    const bo = c.obj(x, bp);
    const s = checkSpecial(c, { ...bo, woe: 0 }, bp);
    return { low: c.numOrNull(bo.low, `${bp}.low`), high: c.numOrNull(bo.high, `${bp}.high`), count: s.count, defaults: s.defaults, default_rate: s.default_rate };
  });
  checkIntervals(c, step_bands, '$.scorecard.step_bands');

  let gbm: GbmJson | null = null;
  if (kind === 'quarterly') gbm = validateGbm(kind, o.gbm, '$.gbm');
  else if (o.gbm !== null && o.gbm !== undefined) c.fail('$.gbm', 'annual models have no GBM component (must be null)');

  const bl = c.obj(o.blend, '$.blend');
  if (bl.method !== 'logistic_stacker') c.fail('$.blend.method', 'must be "logistic_stacker"');
  const bw = c.obj(bl.weights, '$.blend.weights');
  const weights: BlendJson['weights'] = {
    logistic: c.num(bw.logistic, '$.blend.weights.logistic'),
    step: c.num(bw.step, '$.blend.weights.step'),
  };
  if (gbm) weights.gbm = c.num(bw.gbm, '$.blend.weights.gbm');
  else if (bw.gbm !== undefined) c.fail('$.blend.weights.gbm', 'present but the model has no GBM');
  for (const [k, w] of Object.entries(weights)) if ((w as number) < 0) c.fail(`$.blend.weights.${k}`, 'weights must be non-negative');
  const blend: BlendJson = {
    method: 'logistic_stacker',
    intercept: c.num(bl.intercept, '$.blend.intercept'),
    weights,
    fitted_on: typeof bl.fitted_on === 'string' ? bl.fitted_on : 'unknown',
    rows: typeof bl.rows === 'number' ? bl.rows : 0,
  };

  const cf = c.obj(o.confidence, '$.confidence');
  const fwO = c.obj(cf.field_weights, '$.confidence.field_weights');
  const field_weights: Record<string, number> = {};
  let wsum = 0;
  for (const n of names) {
    const w = c.num(fwO[n], `$.confidence.field_weights.${n}`);
    if (w < 0) c.fail(`$.confidence.field_weights.${n}`, 'must be non-negative');
    field_weights[n] = w;
    wsum += w;
  }
  if (!(wsum > 0)) c.fail('$.confidence.field_weights', 'must not all be zero');
  const disagreement_scale = c.num(cf.disagreement_scale, '$.confidence.disagreement_scale');
  if (!(disagreement_scale > 0)) c.fail('$.confidence.disagreement_scale', 'must be positive');

  const art: ModelArtifact = {
    format: ARTIFACT_FORMAT,
    format_version: ARTIFACT_FORMAT_VERSION,
    kind,
    name: c.str(o.name, '$.name'),
    version: c.str(o.version, '$.version'),
    reference_model: o.reference_model,
    description: typeof o.description === 'string' ? o.description : '',
    trained_at: o.trained_at,
    fields,
    scorecard: { binning, logistic: { intercept: c.num(lg.intercept, '$.scorecard.logistic.intercept'), coefficients, l2: typeof lg.l2 === 'number' ? lg.l2 : 0 }, score_scale, step_bands },
    gbm,
    blend,
    confidence: { field_weights, disagreement_scale, formula: typeof cf.formula === 'string' ? cf.formula : '' },
  };
  if (o.training !== undefined) art.training = c.obj(o.training, '$.training');
  if (o.monitoring !== undefined) {
    const m = c.obj(o.monitoring, '$.monitoring');
    const pd_edges = c.nums(m.pd_edges, '$.monitoring.pd_edges');
    for (let i = 1; i < pd_edges.length; i++) if (!(pd_edges[i]! > pd_edges[i - 1]!)) c.fail(`$.monitoring.pd_edges[${i}]`, 'edges must be strictly increasing');
    const pd_counts = c.nums(m.pd_counts, '$.monitoring.pd_counts', pd_edges.length + 1);
    pd_counts.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0) c.fail(`$.monitoring.pd_counts[${i}]`, 'expected a non-negative integer');
    });
    art.monitoring = { rows: c.int(m.rows, '$.monitoring.rows', 0), pd_edges, pd_counts };
  }
  if (o.validation_metrics !== undefined) {
    art.validation_metrics = c.obj(o.validation_metrics, '$.validation_metrics') as ModelArtifact['validation_metrics'];
  }
  return art;
}

