import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateArtifact } from '../../src/risk/index.js';
import { CompiledForest } from '../../src/risk/gbm.js';
import { trainGbm } from '../../src/risk/gbm-train.js';
import { fieldsOf } from '../../src/risk/fields.js';
import { generateReferenceData } from '../../src/risk/index.js';
import { fieldNamesOf } from '../../src/risk/fields.js';

// The bitvector evaluator must agree with walking the trees on every input, including inputs
// exactly at a threshold (`v <= thr` goes left), NaN, negatives (mapped to the sentinel) and
// values beyond every threshold: the walk is the reference, LightGBM's own decision rule.
const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');
const art = validateArtifact('quarterly', JSON.parse(readFileSync(path.join(modelsDir, 'quarterly.json'), 'utf8')));
const fields = fieldNamesOf('quarterly');
const forest = new CompiledForest(art.gbm!, fields);

// Small deterministic generator (xorshift32): the test must not depend on Math.random.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

describe('GBM bitvector evaluation', () => {
  const thresholds = art.gbm!.trees.flatMap((t) => t.threshold);
  const inputs: Float64Array[] = [];
  const r = rng(7);
  for (let i = 0; i < 20_000; i++) {
    const x = new Float64Array(fields.length);
    for (let j = 0; j < x.length; j++) {
      const u = r();
      // A quarter exact thresholds, some NaN, some negative, the rest spread well past the range.
      x[j] = u < 0.25 ? thresholds[Math.floor(r() * thresholds.length)]! : u < 0.35 ? NaN : u < 0.45 ? -r() * 50 : (r() - 0.1) * 200;
    }
    inputs.push(x);
  }

  it('is the table evaluator (the trees are small enough), not the fallback', () => {
    expect((forest as unknown as { qs: unknown }).qs).not.toBeNull();
  });

  it('gives exactly the walk score on 20,000 inputs with thresholds, NaN and negatives', () => {
    let differ = 0;
    for (const x of inputs) if (forest.rawScore(x) !== forest.walkScore(x)) differ++;
    expect(differ).toBe(0);
  });

  it('gives the walk attribution per field (to rounding) and the same baseline', () => {
    let worst = 0;
    for (const x of inputs.slice(0, 5000)) {
      const a = forest.contributions(x, fields.length);
      const b = forest.walkContributions(x, fields.length);
      expect(a.baseline).toBeCloseTo(b.baseline, 12);
      for (let j = 0; j < fields.length; j++) worst = Math.max(worst, Math.abs(a.byField[j]! - b.byField[j]!));
    }
    expect(worst).toBeLessThan(1e-12);
  });

  it('reuses the masks of the rawScore call just made, and only that call', () => {
    let differ = 0;
    for (let i = 1; i < 2000; i++) {
      const x = inputs[i]!;
      forest.rawScore(x);
      const reused = forest.contributions(x, fields.length, forest.scored).byField;
      const fresh = forest.contributions(x, fields.length).byField;
      for (let j = 0; j < fields.length; j++) if (reused[j] !== fresh[j]) differ++;
      // A count from before another input was scored must not reuse that input's masks.
      const stale = forest.scored;
      forest.rawScore(inputs[i - 1]!);
      const again = forest.contributions(x, fields.length, stale).byField;
      for (let j = 0; j < fields.length; j++) if (again[j] !== fresh[j]) differ++;
      // Nor when another input's contributions were computed in between: x's count is stale then.
      forest.rawScore(x);
      const count = forest.scored;
      forest.contributions(inputs[i - 1]!, fields.length);
      const afterOther = forest.contributions(x, fields.length, count).byField;
      for (let j = 0; j < fields.length; j++) if (afterOther[j] !== fresh[j]) differ++;
    }
    expect(differ).toBe(0);
  });

  it('packs the 8-leaf trees four to a word', () => {
    const qs = (forest as unknown as { qs: { bits: number; words: number } }).qs;
    expect(qs.bits).toBe(8);
    expect(qs.words).toBe(Math.ceil(art.gbm!.trees.length / 4));
  });

  // The reference models only have 8-leaf trees; forests of up to 16 and 32 leaves take the other
  // packings, and must agree with the walk just the same.
  it.each([
    [12, 16],
    [24, 32],
  ])('forests of %i-leaf trees are packed %i bits to a tree and score as walked', (numLeaves, bits) => {
    const ds = generateReferenceData('quarterly', 4000, 5);
    const g = trainGbm(fieldsOf('quarterly'), ds.columns, ds.y, {
      rounds: 9,
      learningRate: 0.1,
      numLeaves,
      maxDepth: 12,
      minDataInLeaf: 5,
      minSumHessian: 1e-3,
      lambdaL2: 1,
      maxBin: 64,
    });
    const f = new CompiledForest(g, fields);
    const qs = (f as unknown as { qs: { bits: number } | null }).qs;
    expect(qs?.bits).toBe(bits);
    let differ = 0;
    let worst = 0;
    for (const x of inputs.slice(0, 5000)) {
      if (f.rawScore(x) !== f.walkScore(x)) differ++;
      const a = f.contributions(x, fields.length);
      const b = f.walkContributions(x, fields.length);
      for (let j = 0; j < fields.length; j++) worst = Math.max(worst, Math.abs(a.byField[j]! - b.byField[j]!));
    }
    expect(differ).toBe(0);
    expect(worst).toBeLessThan(1e-12);
  });
});
