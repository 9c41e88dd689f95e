import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createRiskEngine, importLightGbm, LightGbmImportError, validateArtifact, withReplacedGbm } from '../../src/risk/index.js';
import { CompiledForest } from '../../src/risk/gbm.js';

const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');
const annualJson = JSON.parse(readFileSync(path.join(modelsDir, 'annual.json'), 'utf8')) as unknown;
const quarterlyJson = JSON.parse(readFileSync(path.join(modelsDir, 'quarterly.json'), 'utf8')) as unknown;

// Hand-written LightGBM v4 text model. Feature order deliberately differs from ours:
// 0 working_capital_to_total_assets, 1 current_ratio, 2 quick_ratio, 3 debt_to_equity, 4 inventory_turnover.
// decision_type bits: 2 = default_left, (>>2)&3 = missing type (0 None, 1 Zero, 2 NaN).
const MODEL = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=5
objective=binary sigmoid:1
feature_names=working_capital_to_total_assets current_ratio quick_ratio debt_to_equity inventory_turnover receivables_turnover
feature_infos=[-50:60] [0.1:9] [0:7] [-8:40] [0.5:30] [1:30]
tree_sizes=400 300 300 200 300

Tree=0
num_leaves=3
num_cat=0
split_feature=1 3
split_gain=10 5
threshold=1.5 1.0000000000000002
decision_type=2 8
left_child=1 -2
right_child=-1 -3
leaf_value=0.5 -0.25 0.75
leaf_weight=10 20 30
leaf_count=100 200 300
internal_value=0 0.1
internal_weight=0 50
internal_count=600 500
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=0
split_feature=2
split_gain=1
threshold=-0.5
decision_type=6
left_child=-1
right_child=-2
leaf_value=0.10000000000000001 0.2
leaf_count=50 50
is_linear=0
shrinkage=0.1


Tree=2
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=0
decision_type=10
left_child=-1
right_child=-2
leaf_value=-0.3 0.3
is_linear=0
shrinkage=0.1


Tree=3
num_leaves=1
num_cat=0
leaf_value=0.05
is_linear=0
shrinkage=1


Tree=4
num_leaves=2
num_cat=0
split_feature=4
split_gain=1
threshold=-1
decision_type=2
left_child=-1
right_child=-2
leaf_value=1 -1
is_linear=0
shrinkage=0.1


end of trees

feature_importances:
current_ratio=1

parameters:
[boosting: gbdt]
[objective: binary]
end of parameters

pandas_categorical:null
`;

// Inputs in our quarterly field order: current, quick, debt/equity, inventory, receivables, WC/TA.
const CASES: Array<[string, number[], number]> = [
  // T0 2>1.5 right 0.5 | T1 1>-0.5 right 0.2 | T2 5>0 right 0.3 | T3 0.05 | T4 5>-1 right -1
  ['all present', [2, 1, 0.5, 5, 8, 5], 0.05],
  // T0 NaN with type None -> 0 <= 1.5 left; D/E NaN type NaN default right 0.75 | T1 quick 0 is
  // "missing" for type Zero -> default left 0.1 | T2 NaN default left -0.3 | 0.05 | T4 NaN, type
  // None -> 0 > -1 right -1 (the default_left bit is ignored for type None)
  ['missing values', [NaN, 0, NaN, NaN, 8, NaN], -0.4],
  // exact thresholds go left: 1.5 -> node1, D/E 1 <= 1.0000000000000002 left -0.25 | quick NaN
  // becomes 0 -> Zero -> left 0.1 | WC 0 is an ordinary value for type NaN: 0 <= 0 left -0.3 |
  // 0.05 | inventory -2 <= -1 left 1
  ['edges and zero', [1.5, NaN, 1, -2, 8, 0], 0.6],
  // T0 left, D/E 3 right 0.75 | quick -0.2 > -0.5 right 0.2 | WC -2 left -0.3 | 0.05 | inv -1 left 1
  ['negative values', [1, -0.2, 3, -1, 8, -2], 1.7],
  // 1e-40 counts as zero for missing type Zero (LightGBM kZeroThreshold = 1e-35)
  ['tiny value is zero', [2, 1e-40, 0.5, 5, 8, 5], -0.05],
];

describe('LightGBM text model import', () => {
  const imported = importLightGbm(MODEL);
  const fieldOrder = ['current_ratio', 'quick_ratio', 'debt_to_equity', 'inventory_turnover', 'receivables_turnover', 'working_capital_to_total_assets'];
  const forest = new CompiledForest(imported.gbm, fieldOrder);

  it('reads the header and trees', () => {
    expect(imported.summary).toMatchObject({ version: 'v4', objective: 'binary sigmoid:1', trees: 5, leaves: 10, average_output: false });
    expect(imported.gbm.features[0]).toBe('working_capital_to_total_assets');
    expect(imported.gbm.trees[1]!.leaf_value).toEqual([0.1, 0.2]);
  });

  it.each(CASES)('evaluates %s to the right leaf values', (_label, x, expected) => {
    expect(forest.rawScore(x)).toBeCloseTo(expected, 12);
    expect(forest.logOdds(x)).toBeCloseTo(expected, 12);
    const c = forest.contributions(x, 6);
    expect(c.baseline + c.byField.reduce((s, v) => s + v, 0)).toBeCloseTo(expected, 12);
  });

  it('applies the sigmoid parameter and average_output', () => {
    const scaled = importLightGbm(MODEL.replace('binary sigmoid:1', 'binary sigmoid:2').replace('tree_sizes=', 'average_output\ntree_sizes='));
    expect(scaled.summary.average_output).toBe(true);
    const f = new CompiledForest(scaled.gbm, fieldOrder);
    expect(f.rawScore(CASES[3]![1])).toBeCloseTo(1.7 / 5, 12);
    expect(f.logOdds(CASES[3]![1])).toBeCloseTo((2 * 1.7) / 5, 12);
  });

  it('serves an imported model through the engine', () => {
    const { artifact } = withReplacedGbm(validateArtifact('quarterly', quarterlyJson), imported.gbm);
    expect(artifact.version).toMatch(/\+lightgbm$/);
    const e = createRiskEngine({ annual: annualJson, quarterly: artifact });
    const p = e.predictQuarterly({ current_ratio: 1, quick_ratio: -0.2, debt_to_equity: 3, inventory_turnover: -1, receivables_turnover: 8, working_capital_to_total_assets: -2 });
    expect(p.gbm_probability).toBeCloseTo(1 / (1 + Math.exp(-1.7)), 6);
  });

  it.each([
    ['another objective', MODEL.replace('objective=binary sigmoid:1', 'objective=regression'), /objective "regression"/],
    ['multiclass', MODEL.replace('num_class=1', 'num_class=3'), /multiclass/],
    ['categorical splits', MODEL.replace('decision_type=2 8', 'decision_type=3 8'), /categorical/],
    ['num_cat', MODEL.replace('num_leaves=3\nnum_cat=0', 'num_leaves=3\nnum_cat=1'), /categorical/],
    ['linear trees', MODEL.replace('leaf_value=0.05\nis_linear=0', 'leaf_value=0.05\nis_linear=1'), /linear/],
    ['unknown feature names', MODEL.replace('feature_names=working_capital_to_total_assets', 'feature_names=Column_0'), /unknown: Column_0/],
    ['bad child index', MODEL.replace('left_child=1 -2', 'left_child=7 -2'), /left_child/],
    ['non-numeric threshold', MODEL.replace('threshold=-0.5', 'threshold=abc'), /threshold/],
    ['not a model', 'hello world', /not a LightGBM/],
  ])('rejects %s with a clear error', (_label, text, re) => {
    expect(() => importLightGbm(text)).toThrow(LightGbmImportError);
    expect(() => importLightGbm(text)).toThrow(re);
  });
});
