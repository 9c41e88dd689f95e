import { beforeAll, describe, expect, it } from 'vitest';
import { computeDrift, psi, PSI_FLOOR, type RiskEngine } from '../../src/risk/index.js';
import { loadModels } from '../../src/services/model-store.js';

let engine: RiskEngine;
beforeAll(async () => {
  engine = await loadModels();
});

describe('population stability index', () => {
  it('matches a hand-computed value on a small data set', () => {
    // Training 50/30/20 rows, recent 30/30/40 rows:
    // (0.3-0.5) ln(0.3/0.5) + 0 + (0.4-0.2) ln(0.4/0.2) = 0.102165 + 0.138629 = 0.240795
    expect(psi([50, 30, 20], [30, 30, 40])).toBeCloseTo(0.2407946, 6);
    // Shares, not counts: ten times the rows is the same distribution.
    expect(psi([5, 3, 2], [300, 300, 400])).toBeCloseTo(0.2407946, 6);
    expect(psi([1, 2, 3], [2, 4, 6])).toBe(0);
  });

  it('floors empty bins so the index stays finite', () => {
    // e = (0.5, 0.5), a = (1, 0 -> floor): (1-0.5) ln(1/0.5) + (1e-4-0.5) ln(1e-4/0.5)
    const expected = 0.5 * Math.log(2) + (PSI_FLOOR - 0.5) * Math.log(PSI_FLOOR / 0.5);
    expect(psi([10, 10], [7, 0])).toBeCloseTo(expected, 9);
    expect(psi([0, 0], [1, 1])).toBeNaN();
  });
});

describe('drift of a model against its training reference', () => {
  /** Rows reproducing the training bin shares of every ratio (a value inside each bin). */
  function trainingLike(kind: 'annual' | 'quarterly', scale: number): Float64Array[] {
    const art = engine.artifact(kind);
    const m = engine.compiled(kind);
    return m.fieldNames.map((f) => {
      const b = art.scorecard.binning.find((x) => x.field === f)!;
      const out: number[] = [];
      b.bins.forEach((bin) => {
        const v = bin.high === null ? bin.low! + 1 : bin.low === null ? bin.high - (b.negative ? Math.min(0.001, bin.high / 2) : 1) : (bin.low + bin.high) / 2;
        for (let k = 0; k < Math.round(bin.count / scale); k++) out.push(v);
      });
      for (let k = 0; k < Math.round(b.missing.count / scale); k++) out.push(NaN);
      if (b.negative) for (let k = 0; k < Math.round(b.negative.count / scale); k++) out.push(-1);
      return Float64Array.from(out);
    });
  }

  it('is near zero for the training distribution and significant for a shifted one', () => {
    const m = engine.compiled('annual');
    const cols = trainingLike('annual', 10);
    // Columns differ in length by rounding; drift needs one row set, so cut each (shuffled by a
    // fixed stride, so the cut drops rows from every bin alike) to the shortest.
    const n = Math.min(...cols.map((c) => c.length));
    const stride = (c: Float64Array) => Float64Array.from({ length: n }, (_, i) => c[(i * 7919) % c.length]!);
    const same = computeDrift(m, cols.map(stride), []);
    for (const f of same.fields) expect(f.psi, f.field).toBeLessThan(0.01);
    expect(same.pd).toBeNull();

    const riskiest = cols.map(() => new Float64Array(n).fill(9000));
    const shifted = computeDrift(m, riskiest, Float64Array.from({ length: 50 }, () => 0.5));
    for (const f of shifted.fields) expect(f.status, f.field).toBe('significant');
    expect(shifted.pd!.status).toBe('significant');
    expect(shifted.status).toBe('significant');
    expect(shifted.max_psi).toBeGreaterThan(0.25);
  });

  it('reports the share of missing values, recent against training', () => {
    const m = engine.compiled('quarterly');
    const cols = m.fieldNames.map((_, j) => Float64Array.from({ length: 100 }, (_, i) => (j === 0 && i < 40 ? NaN : 1.5)));
    const d = computeDrift(m, cols, []);
    const f0 = d.fields[0]!;
    expect(f0.missing_share_recent).toBe(0.4);
    const b = engine.artifact('quarterly').scorecard.binning.find((x) => x.field === f0.field)!;
    const total = b.bins.reduce((s, x) => s + x.count, 0) + b.missing.count + (b.negative?.count ?? 0);
    expect(f0.missing_share_training).toBeCloseTo(b.missing.count / total, 4);
    expect(d.fields[1]!.missing_share_recent).toBe(0);
  });

  it('compares recent PDs with the training PD deciles stored in the artifact', () => {
    const m = engine.compiled('annual');
    const mon = engine.artifact('annual').monitoring!;
    expect(mon.pd_counts.reduce((s, v) => s + v, 0)).toBe(mon.rows);
    // One PD inside each training bin, in proportion to the bin's count: PSI ~ 0.
    const pds: number[] = [];
    mon.pd_counts.forEach((c, k) => {
      const lo = k === 0 ? 0 : mon.pd_edges[k - 1]!;
      const hi = k === mon.pd_edges.length ? 1 : mon.pd_edges[k]!;
      for (let i = 0; i < Math.round(c / 10); i++) pds.push((lo + hi) / 2);
    });
    const cols = m.fieldNames.map(() => new Float64Array(pds.length).fill(NaN));
    expect(computeDrift(m, cols, pds).pd!.psi).toBeLessThan(0.001);
  });
});
