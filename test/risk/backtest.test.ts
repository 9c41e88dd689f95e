import { describe, expect, it } from 'vitest';
import { backtest, type BacktestPrediction } from '../../src/risk/index.js';

const d = (s: string) => new Date(`${s}T00:00:00Z`);
const p = (company_id: string, made: string, pd: number, risk_level: string, model_version = '2.0.0'): BacktestPrediction => ({
  company_id,
  made_at: d(made),
  pd,
  risk_level,
  model_name: 'm',
  model_version,
});

describe('backtest on a small labelled fixture', () => {
  const predictions = [
    p('A', '2024-09-01', 0.2, 'HIGH'), // A defaults 2025-06-01, 9 months later: defaulted
    p('A', '2023-03-01', 0.05, 'HIGH'), // year observed without default, but before the defaults' window
    p('B', '2024-12-01', 0.1, 'HIGH'), // B defaults 2025-09-01: defaulted
    p('C', '2024-10-01', 0.02, 'MEDIUM'), // survived, inside the window 2024-06-01..2025-09-01
    p('D', '2024-11-01', 0.15, 'HIGH'), // survived
    p('E', '2024-09-15', 0.01, 'LOW'), // survived
    p('E', '2025-11-01', 0.01, 'LOW'), // its year ends after as-of: follow-up still open
    p('F', '2024-10-01', 0.3, 'CRITICAL'), // F had already defaulted on 2024-01-01
    p('C', '2024-10-01', 0.03, 'MEDIUM', '1.0.0'), // another version without any default: no window
  ];
  const defaults = [
    { company_id: 'A', default_date: d('2025-06-01') },
    { company_id: 'B', default_date: d('2025-09-01') },
    { company_id: 'F', default_date: d('2024-01-01') },
  ];
  const r = backtest(predictions, defaults, { asOf: d('2026-06-30'), buckets: 2 });

  it('labels predictions 0-12 months before a default, and the survivors of the same window', () => {
    expect(r.excluded).toEqual({ open_follow_up: 1, outside_window: 2, after_default: 1 });
    const v = r.versions.find((x) => x.model_version === '2.0.0')!;
    expect(v.predictions).toBe(5);
    expect(v.defaults).toBe(2);
    // From a year before the first default (A, 2025-06-01) to the last default (B, 2025-09-01).
    expect(v.window).toEqual({ from: d('2024-06-01').toISOString(), to: d('2025-09-01').toISOString() });
  });

  it('computes AUC, Brier and calibration by hand', () => {
    const v = r.versions.find((x) => x.model_version === '2.0.0')!;
    // Pairs (defaulted, survived): 0.20 beats 0.02, 0.15, 0.01; 0.10 beats 0.02 and 0.01 but not
    // 0.15: 5 of 6.
    expect(v.auc).toBeCloseTo(5 / 6, 6);
    // ((0.2-1)^2 + (0.1-1)^2 + 0.02^2 + 0.15^2 + 0.01^2) / 5 = 1.473 / 5
    expect(v.brier).toBeCloseTo(0.2946, 6);
    expect(v.calibration).toEqual([
      { bucket: 1, count: 2, defaults: 0, mean_predicted: 0.015, observed_rate: 0 },
      { bucket: 2, count: 3, defaults: 2, mean_predicted: 0.15, observed_rate: 0.666667 },
    ]);
  });

  it('gives the observed default rate per risk level', () => {
    const v = r.versions.find((x) => x.model_version === '2.0.0')!;
    expect(v.by_risk_level).toEqual([
      { group: 'LOW', predictions: 1, defaults: 0, observed_rate: 0, mean_pd: 0.01 },
      { group: 'MEDIUM', predictions: 1, defaults: 0, observed_rate: 0, mean_pd: 0.02 },
      { group: 'HIGH', predictions: 3, defaults: 2, observed_rate: 0.666667, mean_pd: 0.15 },
    ]);
    expect(v.by_implied_rating.reduce((s, g) => s + g.predictions, 0)).toBe(5);
  });

  it('reports a version without labelled data as such, not as AUC 0', () => {
    const v = r.versions.find((x) => x.model_version === '1.0.0')!;
    expect(v).toMatchObject({ predictions: 0, defaults: 0, auc: null, brier: null, window: null, calibration: [] });
  });
});
