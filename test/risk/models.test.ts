import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ANNUAL_FIELDS,
  ArtifactError,
  createRiskEngine,
  evaluateModel,
  generateReferenceData,
  QUARTERLY_FIELDS,
  type AnnualRatios,
  type FieldMeta,
  type ModelKind,
  type QuarterlyRatios,
  type RiskEngine,
} from '../../src/risk/index.js';
import { defaultModelsDir, loadModels } from '../../src/services/model-store.js';

const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');
const annualJson = JSON.parse(readFileSync(path.join(modelsDir, 'annual.json'), 'utf8')) as Record<string, unknown>;
const quarterlyJson = JSON.parse(readFileSync(path.join(modelsDir, 'quarterly.json'), 'utf8')) as Record<string, unknown>;
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

let engine: RiskEngine;
beforeAll(async () => {
  engine = await loadModels();
});

// Golden vectors: fixed inputs -> outputs of the shipped models. Regenerating models/ changes these
// on purpose; update them together with the model files (see models/README.md).
const ANNUAL_GOLDEN: Array<{ input: AnnualRatios; expected: Record<string, unknown> }> = [
  { input: { long_term_debt_to_total_capital: 35, total_debt_to_ebitda: 1.8, net_income_margin: 9, ebit_to_interest_expense: 8, return_on_assets: 7 }, expected: { probability: 0.000282, logistic_probability: 0.000179, step_probability: 0.00039, risk_level: 'LOW', confidence: 0.595835 } },
  { input: { long_term_debt_to_total_capital: 48, total_debt_to_ebitda: 3.5, net_income_margin: 4, ebit_to_interest_expense: 2.5, return_on_assets: 4 }, expected: { probability: 0.003306, logistic_probability: 0.002658, step_probability: 0.003571, risk_level: 'LOW', confidence: 0.82077 } },
  { input: { long_term_debt_to_total_capital: 90, total_debt_to_ebitda: 7.9, net_income_margin: -5, ebit_to_interest_expense: 0.4, return_on_assets: -4 }, expected: { probability: 0.246468, logistic_probability: 0.253788, step_probability: 0.241429, risk_level: 'CRITICAL', confidence: 0.956729 } },
  { input: { long_term_debt_to_total_capital: null, total_debt_to_ebitda: -4, net_income_margin: 1, ebit_to_interest_expense: null, return_on_assets: 1 }, expected: { probability: 0.03644, logistic_probability: 0.035643, step_probability: 0.033214, risk_level: 'MEDIUM', confidence: 0.396787 } },
  { input: { long_term_debt_to_total_capital: null, total_debt_to_ebitda: null, net_income_margin: null, ebit_to_interest_expense: null, return_on_assets: null }, expected: { probability: 0.027025, logistic_probability: 0.026059, step_probability: 0.024643, risk_level: 'MEDIUM', confidence: 0 } },
  // The rating medians of AAA and AA (issue 15: both used to get exactly 0.0070 %): now distinct.
  { input: { long_term_debt_to_total_capital: 10, total_debt_to_ebitda: 0.4, net_income_margin: 15, ebit_to_interest_expense: 24, return_on_assets: 12 }, expected: { probability: 0.000122, logistic_probability: 0.000049, step_probability: 0.00039, risk_level: 'LOW', confidence: 0.250347 } },
  { input: { long_term_debt_to_total_capital: 24, total_debt_to_ebitda: 0.9, net_income_margin: 12, ebit_to_interest_expense: 19, return_on_assets: 10 }, expected: { probability: 0.000164, logistic_probability: 0.000078, step_probability: 0.00039, risk_level: 'LOW', confidence: 0.340936 } },
];
const QUARTERLY_GOLDEN: Array<{ input: QuarterlyRatios; expected: Record<string, unknown> }> = [
  { input: { current_ratio: 1.6, quick_ratio: 1.1, debt_to_equity: 0.7, inventory_turnover: 6.2, receivables_turnover: 8.3, working_capital_to_total_assets: 12 }, expected: { ensemble_probability: 0.000786, logistic_probability: 0.000999, gbm_probability: 0.001219, step_probability: 0.000655, risk_level: 'LOW', confidence: 0.660614 } },
  { input: { current_ratio: 1.4, quick_ratio: 0.9, debt_to_equity: 1.3, inventory_turnover: 5.8, receivables_turnover: 7.7, working_capital_to_total_assets: 7 }, expected: { ensemble_probability: 0.00559, logistic_probability: 0.006154, gbm_probability: 0.006848, step_probability: 0.005714, risk_level: 'LOW', confidence: 0.885675 } },
  { input: { current_ratio: 1.1, quick_ratio: 0.7, debt_to_equity: 4, inventory_turnover: 5, receivables_turnover: 7, working_capital_to_total_assets: 0 }, expected: { ensemble_probability: 0.108215, logistic_probability: 0.110154, gbm_probability: 0.10969, step_probability: 0.115, risk_level: 'HIGH', confidence: 0.965121 } },
  { input: { current_ratio: null, quick_ratio: 0.8, debt_to_equity: -2, inventory_turnover: null, receivables_turnover: 7.5, working_capital_to_total_assets: 3 }, expected: { ensemble_probability: 0.187388, logistic_probability: 0.196083, gbm_probability: 0.211376, step_probability: 0.173214, risk_level: 'CRITICAL', confidence: 0.718068 } },
  { input: { current_ratio: null, quick_ratio: null, debt_to_equity: null, inventory_turnover: null, receivables_turnover: null, working_capital_to_total_assets: null }, expected: { ensemble_probability: 0.054674, logistic_probability: 0.044808, gbm_probability: 0.084968, step_probability: 0.055357, risk_level: 'HIGH', confidence: 0 } },
];

describe('shipped models', () => {
  it('load from the default models directory with name and version', () => {
    expect(defaultModelsDir()).toBe(modelsDir);
    expect(engine.models.annual).toMatchObject({ name: 'accunode-reference-annual', reference_model: true });
    expect(engine.models.quarterly).toMatchObject({ name: 'accunode-reference-quarterly', reference_model: true });
    expect(engine.models.annual.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each(ANNUAL_GOLDEN.map((g, i) => [i, g] as const))('annual golden vector %i', (_i, g) => {
    const p = engine.predictAnnual(g.input);
    expect(p).toEqual({ ...g.expected, model: { name: engine.models.annual.name, version: engine.models.annual.version } });
  });

  it.each(QUARTERLY_GOLDEN.map((g, i) => [i, g] as const))('quarterly golden vector %i', (_i, g) => {
    const p = engine.predictQuarterly(g.input);
    expect(p).toEqual({ ...g.expected, model: { name: engine.models.quarterly.name, version: engine.models.quarterly.version } });
  });

  it('rounds every probability to 6 decimals and keeps them fractions', () => {
    for (const g of QUARTERLY_GOLDEN) {
      const p = engine.predictQuarterly(g.input);
      for (const v of [p.ensemble_probability, p.logistic_probability, p.gbm_probability, p.step_probability, p.confidence]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
        expect(Math.round(v * 1e6) / 1e6).toBe(v);
      }
    }
  });

  it('batch results equal single predictions', () => {
    const rows = QUARTERLY_GOLDEN.map((g) => g.input);
    expect(engine.predictQuarterlyBatch(rows, { explain: true })).toEqual(rows.map((r) => engine.predictQuarterly(r, { explain: true })));
    const arows = ANNUAL_GOLDEN.map((g) => g.input);
    expect(engine.predictAnnualBatch(arows)).toEqual(arows.map((r) => engine.predictAnnual(r)));
  });

  it('throws on non-finite input that skipped validation instead of scoring garbage', () => {
    expect(() => engine.predictAnnual({ ...ANNUAL_GOLDEN[0]!.input, return_on_assets: NaN })).toThrow(/return_on_assets/);
  });
});

describe('scorecard binning edges (shipped annual model)', () => {
  it('puts exact edges in the lower (low, high] bin, extremes in the end bins, null in Missing', () => {
    const m = engine.compiled('annual');
    const sc = m.scorecard;
    const art = engine.artifact('annual');
    art.scorecard.binning.forEach((b) => {
      const j = m.fieldNames.indexOf(b.field);
      const beta = art.scorecard.logistic.coefficients[b.field]!;
      b.bins.forEach((bin, k) => {
        if (bin.high !== null) {
          expect(sc.binIndex(j, bin.high)).toBe(k);
          expect(sc.binIndex(j, bin.high + 1e-6)).toBe(k + 1);
        }
      });
      const first = b.bins[0]!;
      const below = first.high === null ? -5000 : Math.min(first.high - 1000, -0.5);
      // Below the first edge: first bin, unless negatives are a distress bin of their own.
      expect(sc.binIndex(j, b.negative ? Math.max(0, (first.high ?? 1) - 1e-3) : below)).toBe(0);
      expect(sc.binIndex(j, 9999.999999)).toBe(b.bins.length - 1);
      expect(sc.binIndex(j, NaN)).toBe(-1);
      expect(sc.contribution(j, NaN)).toBeCloseTo(beta * b.missing.woe, 12);
      if (b.negative) {
        expect(sc.binIndex(j, -0.000001)).toBe(-2);
        expect(sc.contribution(j, -3)).toBeCloseTo(beta * b.negative.woe, 12);
      }
    });
  });

  it('interpolates the WoE curve linearly between knots and caps it beyond the end knots', () => {
    for (const kind of ['annual', 'quarterly'] as const) {
      const m = engine.compiled(kind);
      const sc = m.scorecard;
      const art = engine.artifact(kind);
      art.scorecard.binning.forEach((b) => {
        const j = m.fieldNames.indexOf(b.field);
        const beta = art.scorecard.logistic.coefficients[b.field]!;
        const { x, woe } = b.curve!;
        x.forEach((xk, k) => expect(sc.contribution(j, xk), `${b.field} knot ${k}`).toBeCloseTo(beta * woe[k]!, 10));
        for (let k = 0; k + 1 < x.length; k++) {
          // A quarter of the way along the segment gets a quarter of the WoE step.
          const xq = x[k]! + 0.25 * (x[k + 1]! - x[k]!);
          expect(sc.contribution(j, xq), `${b.field} segment ${k}`).toBeCloseTo(beta * (0.75 * woe[k]! + 0.25 * woe[k + 1]!), 10);
        }
        const lowEnd = b.negative ? Math.min(0, x[0]!) : x[0]! - 1000;
        if (lowEnd < x[0]!) expect(sc.contribution(j, lowEnd)).toBeCloseTo(beta * woe[0]!, 12);
        expect(sc.contribution(j, 9999.99)).toBeCloseTo(beta * woe[woe.length - 1]!, 12);
      });
    }
  });

  it('scores an artifact without curves (format 1 as first shipped) bin by bin', () => {
    const art = clone(engine.artifact('annual'));
    for (const b of art.scorecard.binning) delete b.curve;
    const m = createRiskEngine({ annual: art, quarterly: quarterlyJson }).compiled('annual');
    art.scorecard.binning.forEach((b) => {
      const j = m.fieldNames.indexOf(b.field);
      const beta = art.scorecard.logistic.coefficients[b.field]!;
      b.bins.forEach((bin) => {
        if (bin.high !== null) {
          expect(m.scorecard.contribution(j, bin.high)).toBeCloseTo(beta * bin.woe, 12);
          expect(m.scorecard.contribution(j, bin.high - 1e-6)).toBeCloseTo(beta * bin.woe, 12);
        }
      });
    });
  });

  it('labels the bin in explanations', () => {
    const e = engine.predictAnnual({ ...ANNUAL_GOLDEN[1]!.input, return_on_assets: null, total_debt_to_ebitda: -2 }, { explain: true }).explanation!;
    const byField = Object.fromEntries(e.contributions.map((c) => [c.field, c]));
    expect(byField.return_on_assets!.bin).toBe('missing');
    expect(byField.return_on_assets!.value).toBeNull();
    expect(byField.total_debt_to_ebitda!.bin).toMatch(/negative/);
    expect(byField.long_term_debt_to_total_capital!.bin).toMatch(/^\(.+, .+\]$/);
  });
});

function grid(meta: FieldMeta): number[] {
  const [lo, hi] = meta.typicalRange;
  const span = hi - lo;
  const out: number[] = [];
  const start = meta.negativeIsDistress ? 0 : lo - span;
  for (let v = start; v <= hi + 2 * span; v += span / 200) out.push(Math.round(v * 1e6) / 1e6);
  out.push(500, 5000, 9999.99);
  return out;
}

function checkMonotone(kind: ModelKind, fields: readonly FieldMeta[], bases: Array<Record<string, number | null>>): void {
  for (const base of bases) {
    for (const meta of fields) {
      const sign = meta.risk === 'increasing' ? 1 : -1;
      let prev: number[] | null = null;
      for (const v of grid(meta)) {
        const input = { ...base, [meta.name]: v };
        const p =
          kind === 'annual'
            ? (() => {
                const r = engine.predictAnnual(input as AnnualRatios);
                return [r.probability, r.logistic_probability, r.step_probability];
              })()
            : (() => {
                const r = engine.predictQuarterly(input as QuarterlyRatios);
                return [r.ensemble_probability, r.logistic_probability, r.step_probability, r.gbm_probability];
              })();
        if (prev) {
          p.forEach((x, c) => {
            expect(sign * (x - prev![c]!), `${meta.name}=${v} component ${c}`).toBeGreaterThanOrEqual(0);
          });
        }
        prev = p;
      }
    }
  }
}

describe('monotonicity', () => {
  it('annual: more leverage / weaker profitability never lowers any probability, rest equal', () => {
    checkMonotone('annual', ANNUAL_FIELDS, [...ANNUAL_GOLDEN.map((g) => g.input)]);
  });

  it('quarterly: more leverage / weaker liquidity never lowers any probability, rest equal', () => {
    checkMonotone('quarterly', QUARTERLY_FIELDS, [...QUARTERLY_GOLDEN.map((g) => g.input)]);
  });

  it('negative EBITDA / equity is rated at least as risky as the highest positive leverage', () => {
    const a = ANNUAL_GOLDEN[1]!.input;
    expect(engine.predictAnnual({ ...a, total_debt_to_ebitda: -3 }).probability).toBeGreaterThanOrEqual(
      engine.predictAnnual({ ...a, total_debt_to_ebitda: 9999 }).probability,
    );
    const q = QUARTERLY_GOLDEN[1]!.input;
    expect(engine.predictQuarterly({ ...q, debt_to_equity: -1 }).ensemble_probability).toBeGreaterThanOrEqual(
      engine.predictQuarterly({ ...q, debt_to_equity: 9999 }).ensemble_probability,
    );
  });
});

describe('held-out reference data', () => {
  for (const kind of ['annual', 'quarterly'] as const) {
    it(`${kind}: every component and the blend have AUC in (0.80, 0.97) and small calibration error per decile`, () => {
      const ds = generateReferenceData(kind, 40_000, kind === 'annual' ? 777 : 778);
      const res = evaluateModel(engine.compiled(kind), ds);
      const names = Object.keys(res);
      expect(names).toEqual(kind === 'annual' ? ['logistic', 'step', 'blend'] : ['logistic', 'step', 'gbm', 'blend']);
      for (const [name, m] of Object.entries(res)) {
        expect(m.auc, `${kind} ${name} AUC`).toBeGreaterThan(0.8);
        expect(m.auc, `${kind} ${name} AUC`).toBeLessThan(0.97);
        for (const row of m.calibration) {
          const p = Math.max(row.mean_predicted, 1e-4);
          const tol = 3.5 * Math.sqrt((p * (1 - p)) / row.count) + 0.003;
          expect(Math.abs(row.mean_predicted - row.observed_rate), `${kind} ${name} decile ${row.bucket}`).toBeLessThan(tol);
        }
        expect(Math.abs(m.calibration.reduce((s, r) => s + r.mean_predicted * r.count, 0) / m.rows - m.default_rate)).toBeLessThan(0.004);
      }
    });
  }
});

describe('confidence', () => {
  it('follows the documented formula: completeness x exp(-spread / scale)', () => {
    const m = engine.compiled('quarterly');
    const x = Float64Array.from([1.4, 0.9, 1.3, NaN, 7.7, 7]);
    const raw = m.scoreVector(x);
    const logit = (p: number): number => Math.log(p / (1 - p));
    const ls = [logit(raw.logistic), logit(raw.step), logit(raw.gbm)];
    const spread = Math.max(...ls) - Math.min(...ls);
    const w = engine.artifact('quarterly').confidence.field_weights;
    const total = Object.values(w).reduce((s, v) => s + v, 0);
    const completeness = (total - w.inventory_turnover!) / total;
    expect(raw.confidence).toBeCloseTo(completeness * Math.exp(-spread / engine.artifact('quarterly').confidence.disagreement_scale), 9);
  });

  it('falls when inputs are missing', () => {
    const ds = generateReferenceData('quarterly', 2000, 31);
    let lower = 0;
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      const r: Record<string, number | null> = {};
      ds.fields.forEach((f, j) => (r[f] = Number.isNaN(ds.columns[j]![i]!) ? null : ds.columns[j]![i]!));
      if (Object.values(r).some((v) => v === null)) continue;
      const full = engine.predictQuarterly(r as QuarterlyRatios).confidence;
      const fewer = engine.predictQuarterly({ ...(r as QuarterlyRatios), debt_to_equity: null, working_capital_to_total_assets: null }).confidence;
      total++;
      if (fewer < full) lower++;
    }
    expect(lower / total).toBeGreaterThan(0.95);
    for (const g of [ANNUAL_GOLDEN[0]!, ANNUAL_GOLDEN[1]!, ANNUAL_GOLDEN[2]!]) {
      const full = engine.predictAnnual(g.input).confidence;
      const missing = engine.predictAnnual({ ...g.input, long_term_debt_to_total_capital: null, ebit_to_interest_expense: null }).confidence;
      expect(missing).toBeLessThan(full);
    }
    expect(engine.predictAnnual(ANNUAL_GOLDEN[4]!.input).confidence).toBe(0);
  });

  it('falls when the component models disagree', () => {
    const shifted = clone(quarterlyJson) as { gbm: { init_score: number } };
    const agreeing = engine.predictQuarterly(QUARTERLY_GOLDEN[1]!.input);
    for (const delta of [0.5, 1.5, 3]) {
      shifted.gbm.init_score = (quarterlyJson.gbm as { init_score: number }).init_score + delta;
      const e2 = createRiskEngine({ annual: annualJson, quarterly: shifted });
      const p = e2.predictQuarterly(QUARTERLY_GOLDEN[1]!.input);
      expect(p.gbm_probability).toBeGreaterThan(agreeing.gbm_probability);
      expect(p.confidence).toBeLessThan(agreeing.confidence);
    }
  });
});

describe('explanations', () => {
  it('decompose the final log-odds exactly and rank the top drivers', () => {
    for (const g of QUARTERLY_GOLDEN) {
      const p = engine.predictQuarterly(g.input, { explain: true });
      const e = p.explanation!;
      const sum = e.baseline_log_odds + e.step_adjustment + e.contributions.reduce((s, c) => s + c.log_odds, 0);
      expect(sum).toBeCloseTo(e.log_odds, 4);
      expect(1 / (1 + Math.exp(-e.log_odds))).toBeCloseTo(p.ensemble_probability, 5);
      expect(e.contributions.map((c) => c.field)).toEqual(QUARTERLY_FIELDS.map((f) => f.name));
      const mags = e.top_drivers.map((d) => Math.abs(d.log_odds));
      expect([...mags].sort((a, b) => b - a)).toEqual(mags);
      expect(e.top_drivers.length).toBeLessThanOrEqual(3);
    }
    const a = engine.predictAnnual(ANNUAL_GOLDEN[2]!.input, { explain: true });
    expect(a.explanation!.top_drivers[0]!.direction).toBe('increases_risk');
    const sum = a.explanation!.baseline_log_odds + a.explanation!.step_adjustment + a.explanation!.contributions.reduce((s, c) => s + c.log_odds, 0);
    expect(1 / (1 + Math.exp(-sum))).toBeCloseTo(a.probability, 5);
  });

  it('is not computed unless asked', () => {
    expect(engine.predictAnnual(ANNUAL_GOLDEN[0]!.input).explanation).toBeUndefined();
  });
});

describe('artifact validation', () => {
  /** Sets a value at a dotted path inside parsed JSON (test-only mutation helper). */
  const setAt = (obj: unknown, dotted: string, value: unknown): void => {
    const keys = dotted.split('.');
    let cur = obj as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
    const last = keys[keys.length - 1]!;
    if (value === undefined) delete cur[last];
    else cur[last] = value;
  };
  const bad: Array<[string, string, unknown, RegExp]> = [
    ['wrong format version', 'format_version', 2, /format_version/],
    ['wrong kind', 'kind', 'quarterly', /\$\.kind/],
    ['missing name', 'name', undefined, /\$\.name/],
    ['non-contiguous bins', 'scorecard.binning.0.bins.1.low', -123, /bins\[1\]\.low/],
    ['non-numeric coefficient', 'scorecard.logistic.coefficients.net_income_margin', 'x', /coefficients\.net_income_margin/],
    ['negative blend weight', 'blend.weights.step', -1, /weights\.step/],
    ['a WoE curve going the wrong way', 'scorecard.binning.0.curve.woe.1', -50, /curve\.woe\[1\]/],
    ['curve knots out of order', 'scorecard.binning.1.curve.x.2', -1, /curve\.x\[2\]/],
    ['curve knots and WoE of different lengths', 'scorecard.binning.2.curve.woe', [0.1], /curve\.woe/],
    ['PD reference counts not matching its edges', 'monitoring.pd_counts', [1, 2], /monitoring\.pd_counts/],
    ['a gbm on an annual model', 'gbm', quarterlyJson.gbm, /\$\.gbm/],
  ];
  it.each(bad)('rejects %s with the path named', (_label, where, value, re) => {
    const a = clone(annualJson);
    setAt(a, where, value);
    expect(() => createRiskEngine({ annual: a, quarterly: quarterlyJson })).toThrow(ArtifactError);
    expect(() => createRiskEngine({ annual: a, quarterly: quarterlyJson })).toThrow(re);
  });

  it('rejects broken trees (child out of range, categorical split, cycles)', () => {
    type T = { left_child: number[]; decision_type: number[] };
    const mutate = (f: (t: T) => void): unknown => {
      const q = clone(quarterlyJson) as { gbm: { trees: T[] } };
      f(q.gbm.trees.find((t) => t.left_child.length > 1)!);
      return q;
    };
    expect(() => createRiskEngine({ annual: annualJson, quarterly: mutate((t) => (t.left_child[0] = 999)) })).toThrow(/left_child\[0\]/);
    expect(() => createRiskEngine({ annual: annualJson, quarterly: mutate((t) => (t.decision_type[0] = 9)) })).toThrow(/categorical/);
    expect(() => createRiskEngine({ annual: annualJson, quarterly: mutate((t) => (t.left_child[1] = 0)) })).toThrow(ArtifactError);
  });

  it('rejects non-objects and bad thresholds', () => {
    expect(() => createRiskEngine({ annual: null, quarterly: quarterlyJson })).toThrow(/annual model artifact/);
    expect(() => createRiskEngine({ annual: annualJson, quarterly: quarterlyJson, thresholds: { medium: 0.5, high: 0.1 } })).toThrow(/thresholds/);
    const e = createRiskEngine({ annual: annualJson, quarterly: quarterlyJson, thresholds: { critical: 0.2 } });
    expect(e.thresholds).toEqual({ medium: 0.02, high: 0.05, critical: 0.2 });
    expect(e.predictAnnual(ANNUAL_GOLDEN[2]!.input).risk_level).toBe('CRITICAL');
  });
});
