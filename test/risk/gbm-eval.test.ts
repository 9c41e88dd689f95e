import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateArtifact } from '../../src/risk/index.js';
import { CompiledForest } from '../../src/risk/gbm.js';
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
});
