import { describe, expect, it } from 'vitest';
import { auc, brier, compileModel, generateReferenceData, ks, QUARTERLY_FIELDS, ANNUAL_FIELDS, trainModel } from '../../src/risk/index.js';
import { fitFieldBinning, fitStepBands } from '../../src/risk/binning.js';
import { CompiledForest } from '../../src/risk/gbm.js';
import { trainGbm } from '../../src/risk/gbm-train.js';
import { fitLogistic } from '../../src/risk/logistic.js';
import { Rng } from '../../src/risk/rng.js';

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

describe('training', () => {
  it('is deterministic for a seed and changes with the seed', () => {
    const ds = generateReferenceData('quarterly', 6000, 123);
    const gbm = { rounds: 25 };
    const a = trainModel(ds, { seed: 1, gbm });
    const b = trainModel(ds, { seed: 1, gbm });
    const c = trainModel(ds, { seed: 2, gbm });
    expect(JSON.stringify(b.artifact)).toBe(JSON.stringify(a.artifact));
    expect(JSON.stringify(b.report)).toBe(JSON.stringify(a.report));
    expect(JSON.stringify(c.artifact)).not.toBe(JSON.stringify(a.artifact));
    // The artifact is valid and reports every component and the blend.
    compileModel('quarterly', a.artifact);
    expect(Object.keys(a.report.validation)).toEqual(['logistic', 'step', 'gbm', 'blend']);
    for (const m of Object.values(a.report.validation)) {
      expect(m.calibration).toHaveLength(10);
      expect(m.auc).toBeGreaterThan(0.7);
    }
    expect(a.artifact.blend.fitted_on).toBe('validation');
  });

  it('trains an annual model with non-negative scorecard and blend weights', () => {
    const { artifact } = trainModel(generateReferenceData('annual', 8000, 9), { seed: 3, name: 'x', version: '0.0.1' });
    expect(artifact.gbm).toBeNull();
    for (const v of Object.values(artifact.scorecard.logistic.coefficients)) expect(v).toBeGreaterThanOrEqual(0);
    for (const v of Object.values(artifact.blend.weights)) expect(v).toBeGreaterThanOrEqual(0);
    expect(artifact).toMatchObject({ name: 'x', version: '0.0.1', reference_model: true });
  });

  it('refuses data without defaults', () => {
    const ds = generateReferenceData('annual', 3000, 1);
    ds.y.fill(0);
    expect(() => trainModel(ds)).toThrow(/defaulted and non-defaulted/);
  });
});

describe('monotone binning', () => {
  // Risk rises with x on average but with a non-monotone wiggle the binning must smooth away.
  const rng = new Rng(5);
  const n = 20000;
  const x = new Float64Array(n);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = rng.normal() * 2 + 3;
    const miss = rng.uniform() < 0.04;
    const neg = !miss && rng.uniform() < 0.01;
    x[i] = miss ? NaN : neg ? -1 - rng.uniform() : Math.max(0, v);
    const z = miss ? 0 : neg ? -0.5 : -4 + 0.6 * v + 0.6 * Math.sin(3 * v);
    y[i] = rng.uniform() < sigmoid(z) ? 1 : 0;
  }
  const meta = QUARTERLY_FIELDS.find((f) => f.name === 'debt_to_equity')!;
  const b = fitFieldBinning(meta, x, y, { initialBins: 20, minBinShare: 0.05, maxBins: 8 });

  it('produces contiguous (low, high] bins with strictly monotone default rates and WoE', () => {
    expect(b.bins[0]!.low).toBeNull();
    expect(b.bins[b.bins.length - 1]!.high).toBeNull();
    for (let k = 1; k < b.bins.length; k++) {
      expect(b.bins[k]!.low).toBe(b.bins[k - 1]!.high);
      expect(b.bins[k]!.default_rate).toBeGreaterThan(b.bins[k - 1]!.default_rate);
      expect(b.bins[k]!.woe).toBeGreaterThanOrEqual(b.bins[k - 1]!.woe);
    }
    expect(b.bins.length).toBeGreaterThanOrEqual(3);
    expect(b.bins.length).toBeLessThanOrEqual(8);
  });

  it('respects the minimum bin share and keeps Missing and Negative as their own bins', () => {
    for (const bin of b.bins) expect(bin.count).toBeGreaterThanOrEqual(0.05 * n);
    const total = b.bins.reduce((s, k) => s + k.count, 0) + b.missing.count + b.negative!.count;
    expect(total).toBe(n);
    expect(b.missing.count).toBeGreaterThan(0.03 * n);
    // Missing here is genuinely risky (z = 0): it gets a positive WoE from its own evidence.
    expect(b.missing.woe).toBeGreaterThan(0.5);
    expect(b.negative!.woe).toBeGreaterThanOrEqual(b.bins[b.bins.length - 1]!.woe);
  });

  it('reverses for decreasing-risk ratios', () => {
    const dec = fitFieldBinning(ANNUAL_FIELDS.find((f) => f.name === 'return_on_assets')!, x.map((v) => -v), y);
    for (let k = 1; k < dec.bins.length; k++) expect(dec.bins[k]!.default_rate).toBeLessThan(dec.bins[k - 1]!.default_rate);
    expect(dec.negative).toBeNull();
  });

  it('step bands have decreasing default rates in the score and enough defaults each', () => {
    const scores = Float64Array.from(x, (v) => (Number.isNaN(v) ? 500 : 600 - 20 * v));
    const bands = fitStepBands(scores, y);
    for (let k = 1; k < bands.length; k++) expect(bands[k]!.default_rate).toBeLessThan(bands[k - 1]!.default_rate);
    for (const band of bands) expect(band.defaults).toBeGreaterThanOrEqual(5);
  });
});

describe('logistic IRLS', () => {
  it('recovers known coefficients and drops negative ones when constrained', () => {
    const rng = new Rng(11);
    const n = 40000;
    const a = new Float64Array(n);
    const b = new Float64Array(n);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = rng.normal();
      b[i] = rng.normal();
      y[i] = rng.uniform() < sigmoid(-1 + 0.8 * a[i]! - 0.5 * b[i]!) ? 1 : 0;
    }
    const fit = fitLogistic([a, b], y, { l2: 0.001 });
    expect(fit.converged).toBe(true);
    expect(fit.intercept).toBeCloseTo(-1, 1);
    expect(fit.coefficients[0]).toBeCloseTo(0.8, 1);
    expect(fit.coefficients[1]).toBeCloseTo(-0.5, 1);
    const nn = fitLogistic([a, b], y, { l2: 0.001, nonNegative: true });
    expect(nn.coefficients[1]).toBe(0);
    expect(nn.coefficients[0]).toBeGreaterThan(0.6);
  });
});

describe('GBM trainer', () => {
  // Feature 0: true effect rises then falls (non-monotone); constrained increasing it must come out
  // monotone. Feature 1: missing values are high risk; the learned default direction must send
  // them to the risky side.
  const rng = new Rng(21);
  const n = 30000;
  const f0 = new Float64Array(n);
  const f1 = new Float64Array(n);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    f0[i] = rng.uniform() * 10;
    const miss = rng.uniform() < 0.1;
    f1[i] = miss ? NaN : rng.uniform() * 10;
    const z = -3 + 0.5 * f0[i]! - 0.08 * f0[i]! * f0[i]! + (miss ? 1.5 : -0.2 * f1[i]!);
    y[i] = rng.uniform() < sigmoid(z) ? 1 : 0;
  }
  const fields = [QUARTERLY_FIELDS[2]!, QUARTERLY_FIELDS[0]!]; // debt_to_equity (increasing), current_ratio (decreasing)
  const gbm = trainGbm(fields, [f0, f1], y, { rounds: 40, learningRate: 0.1, numLeaves: 8, maxDepth: 4, minDataInLeaf: 100, minSumHessian: 1, lambdaL2: 1, maxBin: 63 });
  const forest = new CompiledForest(gbm, fields.map((f) => f.name));

  it('respects monotone constraints everywhere', () => {
    for (const other of [NaN, 0, 2, 5, 9.9]) {
      // debt_to_equity starts at 0: negatives are distress and score as the most leveraged.
      let prev = -Infinity;
      for (let v = 0; v <= 11; v += 0.01) {
        const s = forest.rawScore([v, other]);
        expect(s).toBeGreaterThanOrEqual(prev - 1e-12);
        prev = s;
      }
      prev = Infinity;
      for (let v = -1; v <= 11; v += 0.01) {
        const s = forest.rawScore([other, v]);
        expect(s).toBeLessThanOrEqual(prev + 1e-12);
        prev = s;
      }
    }
  });

  it('learns where missing values go and discriminates', () => {
    expect(forest.rawScore([5, NaN])).toBeGreaterThan(forest.rawScore([5, 5]));
    expect(forest.rawScore([-2, 5])).toBeGreaterThanOrEqual(forest.rawScore([10, 5]));
    const p = Float64Array.from({ length: n }, (_, i) => sigmoid(forest.logOdds([f0[i]!, f1[i]!])));
    expect(auc(p, y)).toBeGreaterThan(0.65);
  });
});

describe('metrics', () => {
  it('computes AUC, KS and Brier on known cases', () => {
    expect(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(ks([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(brier([0, 1], [0, 1])).toBe(0);
    expect(brier([0.5, 0.5], [0, 1])).toBe(0.25);
  });
});
