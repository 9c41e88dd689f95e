/**
 * Import of LightGBM text models (model.txt, as written by Booster.save_model) into our GBM JSON.
 *
 * Supported: objective "binary" with any sigmoid parameter, one tree per iteration, numerical splits
 * with missing types None / Zero / NaN and the default_left bit, gbdt or rf (average_output).
 * Rejected with a clear error: categorical splits, linear trees, multiclass, any other objective.
 * LightGBM's stored leaf_value already includes the shrinkage (learning rate), so it is not applied
 * again; the tree's `shrinkage=` line is informational.
 */
import { validateGbm, type GbmJson, type TreeJson } from './artifact.js';
import { QUARTERLY_FIELD_NAMES } from './fields.js';

export class LightGbmImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LightGbmImportError';
  }
}

function parseNum(tok: string, where: string): number {
  const t = tok.trim().toLowerCase();
  if (t === 'inf' || t === '+inf' || t === 'infinity') return Number.MAX_VALUE;
  if (t === '-inf' || t === '-infinity') return -Number.MAX_VALUE;
  const v = Number(t);
  if (t === '' || !Number.isFinite(v)) throw new LightGbmImportError(`${where}: not a number: "${tok}"`);
  return v;
}

function parseList(v: string | undefined, where: string): number[] {
  if (v === undefined) throw new LightGbmImportError(`${where}: missing`);
  const s = v.trim();
  if (s === '') return [];
  return s.split(/\s+/).map((t, i) => parseNum(t, `${where}[${i}]`));
}

interface LightGbmImport {
  gbm: GbmJson;
  summary: { version: string; objective: string; trees: number; leaves: number; features: string[]; average_output: boolean };
}

/** Parses model.txt text; feature names must be quarterly ratio field names. */
export function importLightGbm(text: string): LightGbmImport {
  const lines = text.split(/\r?\n/);
  const header = new Map<string, string>();
  const flags = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (l.startsWith('Tree=')) break;
    if (l === 'end of trees') break;
    if (l === '') continue;
    const eq = l.indexOf('=');
    if (eq < 0) flags.add(l);
    else header.set(l.slice(0, eq), l.slice(eq + 1));
  }
  if (!header.has('objective') && !header.has('feature_names')) {
    throw new LightGbmImportError('not a LightGBM text model (no objective/feature_names header)');
  }
  const objective = (header.get('objective') ?? '').trim();
  const objTokens = objective.split(/\s+/);
  if (objTokens[0] !== 'binary') {
    throw new LightGbmImportError(`unsupported objective "${objective}": only "binary" (sigmoid) models predict a default probability`);
  }
  let sigmoid = 1;
  for (const t of objTokens.slice(1)) {
    if (t.startsWith('sigmoid:')) sigmoid = parseNum(t.slice(8), 'objective sigmoid');
  }
  if (!(sigmoid > 0)) throw new LightGbmImportError(`objective sigmoid must be positive, got ${sigmoid}`);
  const numClass = Number(header.get('num_class') ?? '1');
  const perIt = Number(header.get('num_tree_per_iteration') ?? '1');
  if (numClass !== 1 || perIt !== 1) throw new LightGbmImportError(`multiclass models are not supported (num_class=${numClass})`);
  const names = (header.get('feature_names') ?? '').trim().split(/\s+/).filter((s) => s !== '');
  if (names.length === 0) throw new LightGbmImportError('feature_names missing');
  const allowed = new Set<string>(QUARTERLY_FIELD_NAMES);
  const unknown = names.filter((n) => !allowed.has(n));
  if (unknown.length > 0) {
    throw new LightGbmImportError(
      `feature names must be quarterly ratio fields (${QUARTERLY_FIELD_NAMES.join(', ')}); unknown: ${unknown.join(', ')}. Train with a DataFrame whose columns carry these names.`,
    );
  }
  const averageOutput = flags.has('average_output');

  const trees: TreeJson[] = [];
  while (i < lines.length) {
    const l = lines[i]!.trim();
    if (l === 'end of trees') break;
    if (!l.startsWith('Tree=')) {
      i++;
      continue;
    }
    const where = l;
    const kv = new Map<string, string>();
    i++;
    for (; i < lines.length; i++) {
      const t = lines[i]!.trim();
      if (t === '' || t.startsWith('Tree=') || t === 'end of trees') break;
      const eq = t.indexOf('=');
      if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    }
    const numLeaves = parseNum(kv.get('num_leaves') ?? '', `${where} num_leaves`);
    if (!Number.isInteger(numLeaves) || numLeaves < 1) throw new LightGbmImportError(`${where}: bad num_leaves`);
    if (Number(kv.get('num_cat') ?? '0') !== 0) throw new LightGbmImportError(`${where}: categorical splits are not supported`);
    if (Number(kv.get('is_linear') ?? '0') !== 0) throw new LightGbmImportError(`${where}: linear trees are not supported`);
    const leafValue = parseList(kv.get('leaf_value'), `${where} leaf_value`);
    const tree: TreeJson =
      numLeaves === 1
        ? { num_leaves: 1, split_feature: [], threshold: [], decision_type: [], left_child: [], right_child: [], leaf_value: leafValue }
        : {
            num_leaves: numLeaves,
            split_feature: parseList(kv.get('split_feature'), `${where} split_feature`),
            threshold: parseList(kv.get('threshold'), `${where} threshold`),
            decision_type: parseList(kv.get('decision_type'), `${where} decision_type`),
            left_child: parseList(kv.get('left_child'), `${where} left_child`),
            right_child: parseList(kv.get('right_child'), `${where} right_child`),
            leaf_value: leafValue,
          };
    if (tree.decision_type.some((d) => (d & 1) !== 0)) throw new LightGbmImportError(`${where}: categorical splits are not supported`);
    if (kv.has('leaf_count')) {
      const lc = parseList(kv.get('leaf_count'), `${where} leaf_count`);
      if (lc.length === numLeaves) tree.leaf_count = lc;
    }
    trees.push(tree);
  }
  if (trees.length === 0) throw new LightGbmImportError('model has no trees');
  const gbm: GbmJson = {
    source: 'lightgbm',
    features: names,
    negative_as_max: [],
    sigmoid,
    init_score: 0,
    average_output: averageOutput,
    trees,
    params: { lightgbm_version: header.get('version') ?? 'unknown', objective },
  };
  // Structural checks (child indices, tree shape, feature range) with paths in the message.
  let validated: GbmJson;
  try {
    validated = validateGbm('quarterly', gbm, 'lightgbm');
  } catch (e) {
    throw new LightGbmImportError((e as Error).message);
  }
  return {
    gbm: validated,
    summary: {
      version: header.get('version') ?? 'unknown',
      objective,
      trees: trees.length,
      leaves: trees.reduce((s, t) => s + t.num_leaves, 0),
      features: names,
      average_output: averageOutput,
    },
  };
}
