/**
 * Gradient-boosted trees, training: a compact histogram-based trainer for binary log-loss with
 * monotone constraints and learned missing-value directions. Its output (GbmJson) is what
 * gbm.ts's CompiledForest evaluates.
 */
import type { GbmJson, TreeJson } from './artifact.js';
import type { FieldMeta } from './fields.js';
import { NEGATIVE_SENTINEL, nanSplitType } from './gbm.js';

export interface GbmTrainOptions {
  rounds: number;
  learningRate: number;
  numLeaves: number;
  maxDepth: number;
  minDataInLeaf: number;
  minSumHessian: number;
  lambdaL2: number;
  maxBin: number;
}

export const DEFAULT_GBM: GbmTrainOptions = {
  rounds: 120,
  learningRate: 0.08,
  numLeaves: 8,
  maxDepth: 4,
  minDataInLeaf: 200,
  minSumHessian: 2,
  lambdaL2: 5,
  maxBin: 63,
};

interface Split {
  gain: number;
  feature: number;
  bin: number;
  missingLeft: boolean;
  wL: number;
  wR: number;
}

interface Leaf {
  idx: Int32Array;
  G: number;
  H: number;
  lo: number;
  hi: number;
  depth: number;
  parent: number;
  isLeft: boolean;
  split: Split | null;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** Objective reduction of a leaf with output w: -(2 G w + (H + lambda) w^2); equals G^2/(H+lambda) at the optimum. */
function leafGain(G: number, H: number, w: number, lambda: number): number {
  return -(2 * G * w + (H + lambda) * w * w);
}

/** Quantile bin upper edges per feature (x <= edge[b] falls in bin b; beyond all edges = last bin). */
function binEdges(col: Float64Array, maxBin: number): Float64Array {
  const vals: number[] = [];
  for (let i = 0; i < col.length; i++) if (!Number.isNaN(col[i]!)) vals.push(col[i]!);
  vals.sort((a, b) => a - b);
  const uniq: number[] = [];
  for (const v of vals) if (uniq.length === 0 || uniq[uniq.length - 1] !== v) uniq.push(v);
  if (uniq.length <= maxBin) return Float64Array.from(uniq.slice(0, -1));
  const edges: number[] = [];
  for (let k = 1; k < maxBin; k++) {
    const v = vals[Math.floor((k * vals.length) / maxBin)]!;
    if (edges.length === 0 || v > edges[edges.length - 1]!) edges.push(v);
  }
  if (edges[edges.length - 1] === uniq[uniq.length - 1]) edges.pop();
  return Float64Array.from(edges);
}

/**
 * Trains boosted trees on raw ratios (field order = `fields`). Leaf-wise growth like LightGBM,
 * LightGBM's "basic" monotone method (split outputs must be ordered; children inherit the midpoint
 * as a bound, which keeps every tree and hence the sum monotone), and per split the missing rows
 * are tried on both sides, keeping the better: that is the learned default direction.
 */
export function trainGbm(fields: readonly FieldMeta[], columns: readonly Float64Array[], y: Uint8Array, opts: GbmTrainOptions = DEFAULT_GBM): GbmJson {
  const n = y.length;
  const nf = fields.length;
  const lambda = opts.lambdaL2;
  const mono = fields.map((f) => (f.risk === 'increasing' ? 1 : -1));
  const cols = fields.map((f, j) => {
    const c = columns[j]!;
    if (!f.negativeIsDistress) return c;
    return c.map((v) => (v < 0 ? NEGATIVE_SENTINEL : v));
  });
  const edges = cols.map((c) => binEdges(c, opts.maxBin));
  const nBins = edges.map((e) => e.length + 2);
  const binned = cols.map((c, j) => {
    const e = edges[j]!;
    const out = new Uint8Array(n);
    const missingBin = e.length + 1;
    for (let i = 0; i < n; i++) {
      const v = c[i]!;
      if (Number.isNaN(v)) {
        out[i] = missingBin;
        continue;
      }
      let lo = 0;
      let hi = e.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (v <= e[mid]!) hi = mid;
        else lo = mid + 1;
      }
      out[i] = lo;
    }
    return out;
  });

  let ybar = 0;
  for (let i = 0; i < n; i++) ybar += y[i]!;
  ybar /= n;
  const init = Math.log(ybar / (1 - ybar));
  const F = new Float64Array(n).fill(init);
  const grad = new Float64Array(n);
  const hess = new Float64Array(n);
  const maxBins = Math.max(...nBins);
  const hG = new Float64Array(maxBins);
  const hH = new Float64Array(maxBins);
  const hC = new Int32Array(maxBins);

  const findSplit = (leaf: Leaf): Split | null => {
    if (leaf.depth >= opts.maxDepth || leaf.idx.length < 2 * opts.minDataInLeaf) return null;
    const wP = clamp(-leaf.G / (leaf.H + lambda), leaf.lo, leaf.hi);
    const parentGain = leafGain(leaf.G, leaf.H, wP, lambda);
    let best: Split | null = null;
    const idx = leaf.idx;
    const total = idx.length;
    for (let f = 0; f < nf; f++) {
      const nb = nBins[f]!;
      hG.fill(0, 0, nb);
      hH.fill(0, 0, nb);
      hC.fill(0, 0, nb);
      const bf = binned[f]!;
      for (let k = 0; k < total; k++) {
        const i = idx[k]!;
        const b = bf[i]!;
        hG[b] = hG[b]! + grad[i]!;
        hH[b] = hH[b]! + hess[i]!;
        hC[b] = hC[b]! + 1;
      }
      const mb = nb - 1;
      const Gm = hG[mb]!;
      const Hm = hH[mb]!;
      const Cm = hC[mb]!;
      let GL = 0;
      let HL = 0;
      let CL = 0;
      for (let b = 0; b < mb - 1; b++) {
        GL += hG[b]!;
        HL += hH[b]!;
        CL += hC[b]!;
        for (let side = 0; side < 2; side++) {
          const missLeft = side === 0;
          if (Cm === 0 && !missLeft) continue;
          const gl = missLeft ? GL + Gm : GL;
          const hl = missLeft ? HL + Hm : HL;
          const cl = missLeft ? CL + Cm : CL;
          const gr = leaf.G - gl;
          const hr = leaf.H - hl;
          const cr = total - cl;
          if (cl < opts.minDataInLeaf || cr < opts.minDataInLeaf) continue;
          if (hl < opts.minSumHessian || hr < opts.minSumHessian) continue;
          const wL = clamp(-gl / (hl + lambda), leaf.lo, leaf.hi);
          const wR = clamp(-gr / (hr + lambda), leaf.lo, leaf.hi);
          if (mono[f]! > 0 ? wL > wR : wL < wR) continue;
          const gain = leafGain(gl, hl, wL, lambda) + leafGain(gr, hr, wR, lambda) - parentGain;
          if (gain > 1e-12 && (!best || gain > best.gain)) {
            // With no missing rows in this node, send future missing values to the bigger side.
            const ml = Cm === 0 ? CL >= total - CL : missLeft;
            best = { gain, feature: f, bin: b, missingLeft: ml, wL, wR };
          }
        }
      }
    }
    return best;
  };

  const trees: TreeJson[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-F[i]!));
      grad[i] = p - y[i]!;
      hess[i] = Math.max(p * (1 - p), 1e-16);
    }
    const all = new Int32Array(n);
    let G = 0;
    let H = 0;
    for (let i = 0; i < n; i++) {
      all[i] = i;
      G += grad[i]!;
      H += hess[i]!;
    }
    const tree: TreeJson = { num_leaves: 1, split_feature: [], threshold: [], decision_type: [], left_child: [], right_child: [], leaf_value: [], leaf_count: [] };
    const leaves: Leaf[] = [{ idx: all, G, H, lo: -Infinity, hi: Infinity, depth: 0, parent: -1, isLeft: false, split: null }];
    leaves[0]!.split = findSplit(leaves[0]!);
    while (leaves.length < opts.numLeaves) {
      let bi = -1;
      for (let l = 0; l < leaves.length; l++) {
        const s = leaves[l]!.split;
        if (s && (bi < 0 || s.gain > leaves[bi]!.split!.gain)) bi = l;
      }
      if (bi < 0) break;
      const leaf = leaves[bi]!;
      const s = leaf.split!;
      const node = tree.split_feature.length;
      tree.split_feature.push(s.feature);
      tree.threshold.push(edges[s.feature]![s.bin]!);
      tree.decision_type.push(nanSplitType(s.missingLeft));
      tree.left_child.push(~bi);
      tree.right_child.push(~leaves.length);
      if (leaf.parent >= 0) {
        if (leaf.isLeft) tree.left_child[leaf.parent] = node;
        else tree.right_child[leaf.parent] = node;
      }
      const bf = binned[s.feature]!;
      const missingBin = nBins[s.feature]! - 1;
      const li: number[] = [];
      const ri: number[] = [];
      let gl = 0;
      let hl = 0;
      for (let k = 0; k < leaf.idx.length; k++) {
        const i = leaf.idx[k]!;
        const b = bf[i]!;
        const goLeft = b === missingBin ? s.missingLeft : b <= s.bin;
        if (goLeft) {
          li.push(i);
          gl += grad[i]!;
          hl += hess[i]!;
        } else ri.push(i);
      }
      const mid = (s.wL + s.wR) / 2;
      const m = mono[s.feature]!;
      const left: Leaf = { idx: Int32Array.from(li), G: gl, H: hl, lo: leaf.lo, hi: leaf.hi, depth: leaf.depth + 1, parent: node, isLeft: true, split: null };
      const right: Leaf = { idx: Int32Array.from(ri), G: leaf.G - gl, H: leaf.H - hl, lo: leaf.lo, hi: leaf.hi, depth: leaf.depth + 1, parent: node, isLeft: false, split: null };
      if (m > 0) {
        left.hi = Math.min(left.hi, mid);
        right.lo = Math.max(right.lo, mid);
      } else {
        left.lo = Math.max(left.lo, mid);
        right.hi = Math.min(right.hi, mid);
      }
      left.split = findSplit(left);
      right.split = findSplit(right);
      leaves[bi] = left;
      leaves.push(right);
    }
    tree.num_leaves = leaves.length;
    for (const leaf of leaves) {
      const w = clamp(-leaf.G / (leaf.H + lambda), leaf.lo, leaf.hi) * opts.learningRate;
      const v = Math.round(w * 1e9) / 1e9;
      tree.leaf_value.push(v);
      tree.leaf_count!.push(leaf.idx.length);
      for (let k = 0; k < leaf.idx.length; k++) {
        const i = leaf.idx[k]!;
        F[i] = F[i]! + v;
      }
    }
    trees.push(tree);
  }
  return {
    source: 'accunode',
    features: fields.map((f) => f.name),
    negative_as_max: fields.filter((f) => f.negativeIsDistress).map((f) => f.name),
    sigmoid: 1,
    init_score: init,
    average_output: false,
    trees,
    params: { ...opts, objective: 'binary', monotone_constraints: mono, missing_type: 'NaN' },
  };
}
