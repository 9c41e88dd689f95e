/**
 * Gradient-boosted trees at inference: a flat typed-array evaluator that follows LightGBM's
 * numerical decision rules exactly (so imported LightGBM models score identically). Training
 * (`accunode model train`) is gbm-train.ts.
 */
import type { GbmJson } from './artifact.js';

/** Negative ratios of `negativeIsDistress` fields are mapped here: above anything storable, i.e. "the most leveraged". */
export const NEGATIVE_SENTINEL = 1e5;
/** LightGBM's kZeroThreshold: |x| <= this counts as zero for missing type Zero. */
const ZERO_THRESHOLD = 1e-35;
/** Bitvector table size cap (Int32 entries): 16 MB. */
const TABLE_LIMIT = 4 * 1024 * 1024;

// Missing types (decision_type >> 2) & 3: 0 None (NaN read as 0), 1 Zero, 2 NaN.
const MISSING_ZERO = 1;
const MISSING_NAN = 2;

function missingTypeOf(decisionType: number): number {
  return (decisionType >> 2) & 3;
}

function defaultLeftOf(decisionType: number): boolean {
  return (decisionType & 2) !== 0;
}

/** The decision_type of a numerical split with missing type NaN (what the trainer writes). */
export function nanSplitType(defaultLeft: boolean): number {
  return (MISSING_NAN << 2) | (defaultLeft ? 2 : 0);
}

/**
 * All trees flattened into shared typed arrays. Children >= 0 are global node indices; < 0 are
 * ~globalLeafIndex. Per-node `nanGo`: where a NaN input goes (1 left, 0 right); `zeroGo`: 0 = zero
 * is an ordinary value, 1 = zero goes left, 2 = zero goes right (missing type Zero).
 */
export class CompiledForest {
  readonly nFeatures: number;
  readonly featureField: Int32Array;
  readonly negAsMax: Uint8Array;
  readonly roots: Int32Array;
  readonly feat: Int32Array;
  readonly thr: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly nanGo: Uint8Array;
  readonly zeroGo: Uint8Array;
  readonly leaf: Float64Array;
  /** Mean output of each internal node's subtree (weighted by leaf counts), for path attribution. */
  readonly nodeMean: Float64Array;
  readonly rootMean: Float64Array;
  readonly init: number;
  readonly scale: number;
  readonly sigmoid: number;
  /** True when some node uses missing type Zero; otherwise the hot loop skips that check. */
  readonly anyZero: boolean;
  private readonly xs: Float64Array;
  /**
   * Counts the computations of the exit masks (qs.acc): contributions(x, n, scored) with the
   * count rawScore(x) left reuses its masks instead of ANDing the rows again (the explain path
   * scores, then explains); any mask computation in between, for another input, moves it on.
   */
  scored = 0;
  /**
   * Exit leaves by bitvectors (after QuickScorer, Lucchese et al., SIGIR 2015): every tree's leaves
   * numbered left to right, one bit each; a node whose test fails (the input goes right) clears
   * the bits of its left subtree's leaves, and the tree's exit leaf is its lowest bit left. Which
   * nodes of a feature fail depends only on the input's rank among that feature's thresholds, so
   * the AND of their masks is tabulated per (feature, rank) for every tree: a prediction looks up
   * one row per feature and ANDs them, with no data-dependent branch (several times faster than
   * walking the trees, whose paths a branch predictor cannot learn). Trees of at most 8 (16)
   * leaves share a 32-bit word four (two) to a word, so one AND serves four trees: the reference
   * models' 8-leaf trees need a quarter of the loads. Null, and the trees are walked, when a tree
   * has more than 32 leaves, a node uses missing type Zero, or the table would pass TABLE_LIMIT.
   */
  private readonly qs: {
    /** Per feature: [start, end) of its distinct thresholds in `cut`, ascending. */
    cutStart: Int32Array;
    cut: Float64Array;
    /** Per feature: its first row; row + rank for a number, row + count + 1 for NaN. */
    rowStart: Int32Array;
    /** Bits per tree in a word (8, 16 or 32); 32 / bits trees share a word. */
    bits: number;
    /** Words per row: ceil(trees / (32 / bits)). */
    words: number;
    /** rows × words masks; tree t's bits are word t / (32/bits), shifted by (t mod 32/bits) * bits. */
    table: Int32Array;
    /** Scratch: each feature's row offset for the current input. */
    offs: Int32Array;
    /** Scratch: the AND of the rows, per word. */
    acc: Int32Array;
    /**
     * Leaf value / global leaf index by bit: word * 32 + bit. Trees that only pad the last word
     * have value 0 and leaf -1 (their bits are never cleared, so they exit at their first bit).
     */
    value: Float64Array;
    leafAt: Int32Array;
  } | null;
  /** Per global leaf, per input field: the path attribution of reaching that leaf (see contributions). */
  private leafContrib: Float64Array | null = null;
  private leafContribFields = 0;
  /** Row stride of leafContrib: 8 for up to eight fields (summed in eight registers), else the field count. */
  private leafContribStride = 0;
  /** Scratch: each tree's exit leaf as its row offset in leafContrib. */
  private exits: Int32Array | null = null;

  /** `fieldOrder`: the kind's field names; inputs to rawScore are in this order. */
  constructor(g: GbmJson, fieldOrder: readonly string[]) {
    this.nFeatures = g.features.length;
    this.featureField = Int32Array.from(g.features, (f) => {
      const i = fieldOrder.indexOf(f);
      if (i < 0) throw new Error(`GBM feature "${f}" is not an input field`);
      return i;
    });
    this.negAsMax = Uint8Array.from(g.features, (f) => (g.negative_as_max.includes(f) ? 1 : 0));
    let nNodes = 0;
    let nLeaves = 0;
    for (const t of g.trees) {
      nNodes += t.num_leaves - 1;
      nLeaves += t.num_leaves;
    }
    this.roots = new Int32Array(g.trees.length);
    this.feat = new Int32Array(nNodes);
    this.thr = new Float64Array(nNodes);
    this.left = new Int32Array(nNodes);
    this.right = new Int32Array(nNodes);
    this.nanGo = new Uint8Array(nNodes);
    this.zeroGo = new Uint8Array(nNodes);
    this.nodeMean = new Float64Array(nNodes);
    this.leaf = new Float64Array(nLeaves);
    this.rootMean = new Float64Array(g.trees.length);
    let nodeOff = 0;
    let leafOff = 0;
    g.trees.forEach((t, ti) => {
      const ni = t.num_leaves - 1;
      const mapChild = (c: number): number => (c >= 0 ? c + nodeOff : ~(~c + leafOff));
      this.roots[ti] = ni > 0 ? nodeOff : ~leafOff;
      for (let i = 0; i < ni; i++) {
        const dt = t.decision_type[i]!;
        const mt = missingTypeOf(dt);
        const dl = defaultLeftOf(dt);
        const g2 = nodeOff + i;
        this.feat[g2] = t.split_feature[i]!;
        this.thr[g2] = t.threshold[i]!;
        this.left[g2] = mapChild(t.left_child[i]!);
        this.right[g2] = mapChild(t.right_child[i]!);
        // LightGBM: NaN becomes 0 unless the missing type is NaN; with type Zero that 0 then takes
        // the default direction, with type None it is compared against the threshold.
        if (mt === MISSING_NAN || mt === MISSING_ZERO) this.nanGo[g2] = dl ? 1 : 0;
        else this.nanGo[g2] = 0 <= t.threshold[i]! ? 1 : 0;
        this.zeroGo[g2] = mt === MISSING_ZERO ? (dl ? 1 : 2) : 0;
      }
      for (let l = 0; l < t.num_leaves; l++) this.leaf[leafOff + l] = t.leaf_value[l]!;
      const weights = t.leaf_count && t.leaf_count.some((c) => c > 0) ? t.leaf_count : null;
      // Subtree means bottom-up; weights fall back to equal when counts are absent.
      const sumW = new Float64Array(Math.max(ni, 1));
      const sumV = new Float64Array(Math.max(ni, 1));
      const visit = (node: number): [number, number] => {
        if (node < 0) {
          const l = ~node;
          const w = weights ? weights[l]! : 1;
          return [w, w * t.leaf_value[l]!];
        }
        const [wl, vl] = visit(t.left_child[node]!);
        const [wr, vr] = visit(t.right_child[node]!);
        sumW[node] = wl + wr;
        sumV[node] = vl + vr;
        return [wl + wr, vl + vr];
      };
      if (ni > 0) {
        visit(0);
        for (let i = 0; i < ni; i++) this.nodeMean[nodeOff + i] = sumW[i]! > 0 ? sumV[i]! / sumW[i]! : 0;
        this.rootMean[ti] = this.nodeMean[nodeOff]!;
      } else {
        this.rootMean[ti] = t.leaf_value[0]!;
      }
      nodeOff += ni;
      leafOff += t.num_leaves;
    });
    this.init = g.init_score;
    this.scale = g.average_output ? 1 / g.trees.length : 1;
    this.sigmoid = g.sigmoid;
    this.anyZero = this.zeroGo.some((z) => z !== 0);
    this.xs = new Float64Array(this.nFeatures);
    this.qs = this.anyZero || g.trees.some((t) => t.num_leaves > 32) ? null : this.compileBitvectors();
  }

  private compileBitvectors(): NonNullable<CompiledForest['qs']> | null {
    const nTrees = this.roots.length;
    let maxLeaves = 1;
    for (let t = 0; t < nTrees; t++) maxLeaves = Math.max(maxLeaves, this.leavesOf(this.roots[t]!));
    const bits = maxLeaves <= 8 ? 8 : maxLeaves <= 16 ? 16 : 32;
    const perWord = 32 / bits;
    const words = Math.ceil(nTrees / perWord);
    const value = new Float64Array(words * 32);
    const leafAt = new Int32Array(words * 32).fill(-1);
    type Node = { thr: number; word: number; mask: number; nanFails: boolean };
    const byFeature: Node[][] = Array.from({ length: this.nFeatures }, () => []);
    for (let t = 0; t < nTrees; t++) {
      let pos = 0;
      const word = Math.floor(t / perWord);
      // Tree t's field starts at this bit of its word; its leaf at position p is bit shift + p.
      const shift = (t % perWord) * bits;
      // Left-first walk: numbers the leaves left to right; returns the bits of a subtree's leaves.
      const walk = (node: number): number => {
        if (node < 0) {
          const bit = shift + pos++;
          value[word * 32 + bit] = this.leaf[~node]!;
          leafAt[word * 32 + bit] = ~node;
          return (1 << bit) >>> 0;
        }
        const l = walk(this.left[node]!);
        const r = walk(this.right[node]!);
        byFeature[this.feat[node]!]!.push({ thr: this.thr[node]!, word, mask: ~l, nanFails: this.nanGo[node] === 0 });
        return (l | r) >>> 0;
      };
      walk(this.roots[t]!);
    }
    const cuts = byFeature.map((ns) => [...new Set(ns.map((n) => n.thr))].sort((x, y) => x - y));
    const rows = cuts.reduce((n, c) => n + c.length + 2, 0);
    if (rows * words > TABLE_LIMIT) return null;
    const cutStart = new Int32Array(this.nFeatures + 1);
    const cut = new Float64Array(cuts.reduce((n, c) => n + c.length, 0));
    const rowStart = new Int32Array(this.nFeatures);
    const table = new Int32Array(rows * words).fill(-1);
    let c0 = 0;
    let r0 = 0;
    cuts.forEach((cs, f) => {
      cutStart[f] = c0;
      cut.set(cs, c0);
      c0 += cs.length;
      rowStart[f] = r0;
      // Rank r: the input exceeds the r smallest thresholds, so exactly the nodes at those fail.
      for (let r = 0; r <= cs.length; r++) {
        const row = (r0 + r) * words;
        for (const n of byFeature[f]!) if (r > 0 && n.thr <= cs[r - 1]!) table[row + n.word]! &= n.mask;
      }
      const nanRow = (r0 + cs.length + 1) * words;
      for (const n of byFeature[f]!) if (n.nanFails) table[nanRow + n.word]! &= n.mask;
      r0 += cs.length + 2;
    });
    cutStart[this.nFeatures] = c0;
    return { cutStart, cut, rowStart, bits, words, table, offs: new Int32Array(this.nFeatures), acc: new Int32Array(words), value, leafAt };
  }

  private leavesOf(node: number): number {
    return node < 0 ? 1 : this.leavesOf(this.left[node]!) + this.leavesOf(this.right[node]!);
  }

  /** Each feature's table row offset for inputs already mapped by load(). */
  private rows(xs: Float64Array, qs: NonNullable<CompiledForest['qs']>): Int32Array {
    const { cutStart, cut, rowStart, offs, words } = qs;
    for (let f = 0; f < this.nFeatures; f++) {
      const v = xs[f]!;
      const lo0 = cutStart[f]!;
      const hi0 = cutStart[f + 1]!;
      let r: number;
      if (v !== v) r = hi0 - lo0 + 1;
      else {
        // The number of thresholds below v (`v <= thr` goes left, so thr < v fails).
        let lo = lo0;
        let hi = hi0;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cut[mid]! < v) lo = mid + 1;
          else hi = mid;
        }
        r = lo - lo0;
      }
      offs[f] = (rowStart[f]! + r) * words;
    }
    return offs;
  }

  /** The AND of the input's rows, per word, in qs.acc (and `scored` moves on: acc now holds x's). */
  private exitMasks(x: ArrayLike<number>, qs: NonNullable<CompiledForest['qs']>): Int32Array {
    this.scored++;
    const offs = this.rows(this.load(x), qs);
    const { table, acc, words } = qs;
    const o0 = offs[0]!;
    for (let w = 0; w < words; w++) acc[w] = table[o0 + w]!;
    for (let f = 1; f < this.nFeatures; f++) {
      const o = offs[f]!;
      for (let w = 0; w < words; w++) acc[w] = acc[w]! & table[o + w]!;
    }
    return acc;
  }

  private load(x: ArrayLike<number>): Float64Array {
    const xs = this.xs;
    for (let f = 0; f < this.nFeatures; f++) {
      const v = x[this.featureField[f]!]!;
      xs[f] = this.negAsMax[f] === 1 && v < 0 ? NEGATIVE_SENTINEL : v;
    }
    return xs;
  }

  /** Raw score (log-odds before the sigmoid parameter) for inputs in field order, NaN = missing. */
  rawScore(x: ArrayLike<number>): number {
    const qs = this.qs;
    if (qs === null) return this.walkScore(x);
    const acc = this.exitMasks(x, qs);
    const { value, words, bits } = qs;
    // Trees in order, so the sum is bit-for-bit the walk's. Each tree's exit is the lowest set bit
    // of its field: isolate it with y & -y, its index is 31 - clz32.
    let sum = 0;
    if (bits === 8) {
      for (let w = 0; w < words; w++) {
        const b = acc[w]!;
        const base = w * 32 + 31;
        let y = b & 0xff;
        sum += value[base - Math.clz32(y & -y)]!;
        y = b & 0xff00;
        sum += value[base - Math.clz32(y & -y)]!;
        y = b & 0xff0000;
        sum += value[base - Math.clz32(y & -y)]!;
        y = b & -0x1000000;
        sum += value[base - Math.clz32(y & -y)]!;
      }
    } else if (bits === 16) {
      for (let w = 0; w < words; w++) {
        const b = acc[w]!;
        const base = w * 32 + 31;
        let y = b & 0xffff;
        sum += value[base - Math.clz32(y & -y)]!;
        y = b & -0x10000;
        sum += value[base - Math.clz32(y & -y)]!;
      }
    } else {
      for (let w = 0; w < words; w++) {
        const b = acc[w]!;
        sum += value[w * 32 + 31 - Math.clz32(b & -b)]!;
      }
    }
    return this.init + sum * this.scale;
  }

  /** rawScore by walking each tree from its root (the reference the bitvector scan must match). */
  walkScore(x: ArrayLike<number>): number {
    const xs = this.load(x);
    const roots = this.roots;
    const feat = this.feat;
    const thr = this.thr;
    const left = this.left;
    const right = this.right;
    const nanGo = this.nanGo;
    const zeroGo = this.zeroGo;
    const leaf = this.leaf;
    let sum = 0;
    if (!this.anyZero) {
      for (let t = 0; t < roots.length; t++) {
        let node = roots[t]!;
        while (node >= 0) {
          const v = xs[feat[node]!]!;
          // NaN fails `v <= thr`, so test it only on the right-hand path.
          if (v <= thr[node]!) node = left[node]!;
          else node = v !== v && nanGo[node] === 1 ? left[node]! : right[node]!;
        }
        sum += leaf[~node]!;
      }
      return this.init + sum * this.scale;
    }
    for (let t = 0; t < roots.length; t++) {
      let node = roots[t]!;
      while (node >= 0) {
        const v = xs[feat[node]!]!;
        if (v !== v) {
          node = nanGo[node] === 1 ? left[node]! : right[node]!;
        } else {
          const z = zeroGo[node]!;
          if (z !== 0 && v >= -ZERO_THRESHOLD && v <= ZERO_THRESHOLD) node = z === 1 ? left[node]! : right[node]!;
          else node = v <= thr[node]! ? left[node]! : right[node]!;
        }
      }
      sum += this.leaf[~node]!;
    }
    return this.init + sum * this.scale;
  }

  /** Log-odds of default: sigmoid parameter applied, so P = 1 / (1 + exp(-logOdds)). */
  logOdds(x: ArrayLike<number>): number {
    return this.sigmoid * this.rawScore(x);
  }

  /**
   * Path attribution (Saabas): each split's change in subtree mean is credited to its feature.
   * Returns log-odds contributions per input field plus the baseline, summing to logOdds(x).
   */
  contributions(x: ArrayLike<number>, nFields: number, scored = -1): { baseline: number; byField: Float64Array } {
    const qs = this.qs;
    if (qs === null) return this.walkContributions(x, nFields);
    // A leaf's attribution depends only on the path to it, so it is computed once per leaf.
    if (this.leafContrib === null || this.leafContribFields !== nFields) this.compileLeafContributions(nFields);
    const lc = this.leafContrib!;
    const stride = this.leafContribStride;
    const exits = this.exits!;
    // `scored` is the count the caller's rawScore(x) left: if no masks were computed since, they are x's.
    const acc = scored === this.scored ? qs.acc : this.exitMasks(x, qs);
    const { leafAt, words, bits } = qs;
    const perWord = 32 / bits;
    const fieldMask = bits === 32 ? -1 : (1 << bits) - 1;
    let ne = 0;
    if (bits === 8) {
      // Unrolled like rawScore; a padding tree's leaf is -1, so its offset is negative and skipped below.
      for (let w = 0; w < words; w++) {
        const b = acc[w]!;
        const base = w * 32 + 31;
        let y = b & 0xff;
        exits[ne++] = leafAt[base - Math.clz32(y & -y)]! * stride;
        y = b & 0xff00;
        exits[ne++] = leafAt[base - Math.clz32(y & -y)]! * stride;
        y = b & 0xff0000;
        exits[ne++] = leafAt[base - Math.clz32(y & -y)]! * stride;
        y = b & -0x1000000;
        exits[ne++] = leafAt[base - Math.clz32(y & -y)]! * stride;
      }
      while (ne > 0 && exits[ne - 1]! < 0) ne--;
    } else {
      for (let w = 0; w < words; w++) {
        const b = acc[w]!;
        for (let k = 0; k < perWord; k++) {
          const y = b & (fieldMask << (k * bits));
          const leaf = leafAt[w * 32 + 31 - Math.clz32(y & -y)]!;
          if (leaf >= 0) exits[ne++] = leaf * stride;
        }
      }
    }
    const byField = new Float64Array(nFields);
    if (stride === 8) {
      // Eight independent sums in registers: adding into byField[i] in the loop instead chains
      // every add through a store and a load, and measured three times slower.
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
      for (let e = 0; e < ne; e++) {
        const o = exits[e]!;
        a0 += lc[o]!;
        a1 += lc[o + 1]!;
        a2 += lc[o + 2]!;
        a3 += lc[o + 3]!;
        a4 += lc[o + 4]!;
        a5 += lc[o + 5]!;
        a6 += lc[o + 6]!;
        a7 += lc[o + 7]!;
      }
      const sums = [a0, a1, a2, a3, a4, a5, a6, a7];
      for (let i = 0; i < nFields; i++) byField[i] = sums[i]!;
    } else {
      for (let i = 0; i < nFields; i++) {
        let s = 0;
        for (let e = 0; e < ne; e++) s += lc[exits[e]! + i]!;
        byField[i] = s;
      }
    }
    return { baseline: this.baselineLogOdds(), byField };
  }

  private baselineCache: number | null = null;

  private baselineLogOdds(): number {
    if (this.baselineCache === null) {
      let b = this.init;
      for (let t = 0; t < this.roots.length; t++) b += this.rootMean[t]! * this.scale;
      this.baselineCache = b * this.sigmoid;
    }
    return this.baselineCache;
  }

  private compileLeafContributions(nFields: number): void {
    const stride = nFields <= 8 ? 8 : nFields;
    const lc = new Float64Array(this.leaf.length * stride);
    const visit = (node: number, path: Float64Array): void => {
      if (node < 0) {
        const o = ~node * stride;
        for (let i = 0; i < nFields; i++) lc[o + i] = path[i]! * this.sigmoid;
        return;
      }
      const fi = this.featureField[this.feat[node]!]!;
      for (const next of [this.left[node]!, this.right[node]!]) {
        // The same additions in the same order as the walk, so the sums are bit-for-bit equal.
        const p = path.slice();
        p[fi] = p[fi]! + ((next >= 0 ? this.nodeMean[next]! : this.leaf[~next]!) - this.nodeMean[node]!) * this.scale;
        visit(next, p);
      }
    };
    for (let t = 0; t < this.roots.length; t++) visit(this.roots[t]!, new Float64Array(nFields));
    this.leafContrib = lc;
    this.leafContribFields = nFields;
    this.leafContribStride = stride;
    // One per tree, padding trees of the last word included (the unrolled loop writes them too).
    this.exits = new Int32Array(this.qs ? this.qs.words * (32 / this.qs.bits) : 0);
  }

  /** contributions() by walking each tree (the reference for the per-leaf table). */
  walkContributions(x: ArrayLike<number>, nFields: number): { baseline: number; byField: Float64Array } {
    const xs = this.load(x);
    const byField = new Float64Array(nFields);
    let baseline = this.init;
    for (let t = 0; t < this.roots.length; t++) {
      let node = this.roots[t]!;
      baseline += this.rootMean[t]! * this.scale;
      while (node >= 0) {
        const v = xs[this.feat[node]!]!;
        let next: number;
        if (v !== v) next = this.nanGo[node] === 1 ? this.left[node]! : this.right[node]!;
        else {
          const z = this.zeroGo[node]!;
          if (z !== 0 && v >= -ZERO_THRESHOLD && v <= ZERO_THRESHOLD) next = z === 1 ? this.left[node]! : this.right[node]!;
          else next = v <= this.thr[node]! ? this.left[node]! : this.right[node]!;
        }
        const childMean = next >= 0 ? this.nodeMean[next]! : this.leaf[~next]!;
        const fi = this.featureField[this.feat[node]!]!;
        byField[fi] = byField[fi]! + (childMean - this.nodeMean[node]!) * this.scale;
        node = next;
      }
    }
    for (let i = 0; i < nFields; i++) byField[i] = byField[i]! * this.sigmoid;
    return { baseline: baseline * this.sigmoid, byField };
  }
}
