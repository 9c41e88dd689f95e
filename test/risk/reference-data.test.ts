import { describe, expect, it } from 'vitest';
import { datasetToCsv, generateReferenceData, parseLabelledCsv, RATING_MIX, RATINGS, TARGET_DEFAULT_RATES } from '../../src/risk/index.js';

describe('reference portfolio generator', () => {
  const ds = generateReferenceData('annual', 120_000, 99);

  it('matches the rating mix and the per-rating default rates within sampling error', () => {
    const n = ds.y.length;
    RATINGS.forEach((r, k) => {
      let count = 0;
      let d = 0;
      for (let i = 0; i < n; i++) {
        if (ds.rating![i] === r) {
          count++;
          d += ds.y[i]!;
        }
      }
      const share = count / n;
      expect(Math.abs(share - RATING_MIX[k]!)).toBeLessThan(4 * Math.sqrt((RATING_MIX[k]! * (1 - RATING_MIX[k]!)) / n) + 1e-4);
      const target = TARGET_DEFAULT_RATES[k]!;
      const rate = d / count;
      // 4 standard errors, plus a floor of one default's worth for the near-zero ratings.
      const tol = 4 * Math.sqrt((target * (1 - target)) / count) + 1 / count;
      expect(Math.abs(rate - target), `${r}: ${rate} vs ${target}`).toBeLessThanOrEqual(tol);
    });
  });

  it('has about 3% missing per ratio and some extreme values', () => {
    for (const col of ds.columns) {
      let miss = 0;
      for (const v of col) if (Number.isNaN(v)) miss++;
      expect(miss / col.length).toBeGreaterThan(0.02);
      expect(miss / col.length).toBeLessThan(0.05);
    }
    const debtEbitda = ds.columns[1]!;
    expect(debtEbitda.some((v) => v > 100)).toBe(true);
    expect(debtEbitda.some((v) => v < 0)).toBe(true);
  });

  it('keeps every value storable as DECIMAL(10,6)', () => {
    let max = 0;
    for (const col of ds.columns) for (const v of col) if (!Number.isNaN(v)) max = Math.max(max, Math.abs(v));
    expect(max).toBeLessThan(10000);
  });

  it('is reproducible for a seed and round-trips through CSV', () => {
    const a = generateReferenceData('quarterly', 2000, 5);
    const b = generateReferenceData('quarterly', 2000, 5);
    const c = generateReferenceData('quarterly', 2000, 6);
    const csv = datasetToCsv(a);
    expect(datasetToCsv(b)).toBe(csv);
    expect(datasetToCsv(c)).not.toBe(csv);
    const back = parseLabelledCsv('quarterly', csv);
    expect(datasetToCsv(back)).toBe(csv);
  });

  it('links quarterly leverage to rating: CCC debt/equity median far above AAA-A', () => {
    const q = generateReferenceData('quarterly', 30_000, 3);
    const de = q.columns[2]!;
    const med = (pred: (r: string) => boolean): number => {
      const v: number[] = [];
      q.rating!.forEach((r, i) => {
        if (pred(r) && !Number.isNaN(de[i]!)) v.push(de[i]!);
      });
      v.sort((x, y) => x - y);
      return v[Math.floor(v.length / 2)]!;
    };
    expect(med((r) => r === 'CCC')).toBeGreaterThan(3 * med((r) => r === 'A' || r === 'AA' || r === 'AAA'));
  });

  it('rejects malformed CSV with the line and field named', () => {
    expect(() => parseLabelledCsv('annual', 'a,b\n1,2\n')).toThrow(/long_term_debt_to_total_capital/);
    const header = 'long_term_debt_to_total_capital,total_debt_to_ebitda,net_income_margin,ebit_to_interest_expense,return_on_assets,defaulted';
    expect(() => parseLabelledCsv('annual', `${header}\n1,2,x,4,5,0\n`)).toThrow(/line 2.*net_income_margin/);
    expect(() => parseLabelledCsv('annual', `${header}\n1,2,3,4,5,2\n`)).toThrow(/defaulted/);
    const ok = parseLabelledCsv('annual', `${header}\n1,,3,NA,5,1\n`);
    expect(Number.isNaN(ok.columns[1]![0]!)).toBe(true);
    expect(Number.isNaN(ok.columns[3]![0]!)).toBe(true);
    expect(ok.y[0]).toBe(1);
  });
});
