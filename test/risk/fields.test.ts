import { describe, expect, it } from 'vitest';
import { ANNUAL_FIELDS, QUARTERLY_FIELDS, riskLevel, validateRatios, validateThresholds } from '../../src/risk/index.js';

const goodAnnual = {
  long_term_debt_to_total_capital: 35,
  total_debt_to_ebitda: 1.8,
  net_income_margin: 9,
  ebit_to_interest_expense: 8,
  return_on_assets: 7,
};

function errorsOf(r: ReturnType<typeof validateRatios>): Array<{ field: string; message: string }> {
  return r.ok ? [] : r.errors;
}

describe('validateRatios', () => {
  it('accepts finite numbers and treats missing keys and null as null', () => {
    const r = validateRatios('annual', { long_term_debt_to_total_capital: 35.1234567, net_income_margin: null });
    expect(r).toEqual({
      ok: true,
      value: {
        long_term_debt_to_total_capital: 35.123457,
        total_debt_to_ebitda: null,
        net_income_margin: null,
        ebit_to_interest_expense: null,
        return_on_assets: null,
      },
    });
  });

  it.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['1e12', 1e12],
    ['10000', 10000],
    ['-9999.9999996 (rounds to 10000)', -9999.9999996],
    ['a numeric string', '1.5'],
    ['a boolean', true],
    ['an object', { v: 1 }],
  ])('rejects %s naming the field', (_label, bad) => {
    const errs = errorsOf(validateRatios('annual', { ...goodAnnual, total_debt_to_ebitda: bad }));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.field).toBe('total_debt_to_ebitda');
  });

  it('accepts the DECIMAL(10,6) extremes', () => {
    const r = validateRatios('quarterly', { debt_to_equity: 9999.999999, current_ratio: -9999.999999 });
    expect(r.ok).toBe(true);
  });

  it('rejects unknown fields, including the other kind’s fields', () => {
    const errs = errorsOf(validateRatios('quarterly', { current_ratio: 1.2, return_on_assets: 5, foo: 1 }));
    expect(errs.map((e) => e.field).sort()).toEqual(['foo', 'return_on_assets']);
  });

  it('rejects non-objects', () => {
    expect(validateRatios('annual', null).ok).toBe(false);
    expect(validateRatios('annual', [1, 2]).ok).toBe(false);
    expect(validateRatios('annual', 'x').ok).toBe(false);
  });

  it('reports every bad field at once', () => {
    const errs = errorsOf(validateRatios('annual', { ...goodAnnual, net_income_margin: NaN, return_on_assets: 'x' }));
    expect(errs.map((e) => e.field)).toEqual(['net_income_margin', 'return_on_assets']);
  });
});

describe('field metadata', () => {
  it('lists every field with a unit, label and range hint', () => {
    for (const f of [...ANNUAL_FIELDS, ...QUARTERLY_FIELDS]) {
      expect(['%', 'x']).toContain(f.unit);
      expect(f.label.length).toBeGreaterThan(3);
      expect(f.typicalRange[0]).toBeLessThan(f.typicalRange[1]);
    }
    expect(ANNUAL_FIELDS.map((f) => f.name)).toHaveLength(5);
    expect(QUARTERLY_FIELDS.map((f) => f.name)).toHaveLength(6);
  });
});

describe('riskLevel', () => {
  it('uses LOW < 2% <= MEDIUM < 5% <= HIGH <= 15% < CRITICAL by default', () => {
    expect(riskLevel(0)).toBe('LOW');
    expect(riskLevel(0.019999)).toBe('LOW');
    expect(riskLevel(0.02)).toBe('MEDIUM');
    expect(riskLevel(0.049999)).toBe('MEDIUM');
    expect(riskLevel(0.05)).toBe('HIGH');
    expect(riskLevel(0.15)).toBe('HIGH');
    expect(riskLevel(0.150001)).toBe('CRITICAL');
    expect(riskLevel(1)).toBe('CRITICAL');
  });

  it('honours custom thresholds and rejects inconsistent ones', () => {
    expect(riskLevel(0.03, { medium: 0.01, high: 0.03, critical: 0.1 })).toBe('HIGH');
    expect(() => validateThresholds({ medium: 0.05, high: 0.02, critical: 0.15 })).toThrow(/thresholds/);
    expect(() => validateThresholds({ medium: 2, high: 5, critical: 15 })).toThrow(/fractions/);
  });
});
