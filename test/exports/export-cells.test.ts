// Pure logic: an export's implied-rating cells are read on the deployment's scale
// (IMPLIED_RATING_SCALE), the grades the API and the web app show beside the same PD.
import { describe, expect, it } from 'vitest';
import { PORTFOLIO_EXPORT_COLUMNS, portfolioExportCells, predictionExportCells, predictionExportColumns } from '../../src/services/exports.js';
import { impliedRating } from '../../src/risk/implied-rating.js';

const scale = [{ grade: 'LOWER', maxPd: 0.02 }, { grade: 'HIGHER', maxPd: Infinity }];

describe('export implied ratings', () => {
  it('a prediction export uses the scale given, the reference calibration by default', () => {
    const row = { company_symbol: 'X', company_name: 'X Co', reporting_year: '2024', probability: 0.03, risk_level: 'MEDIUM' };
    const at = predictionExportColumns('annual', false).indexOf('implied_rating');
    expect(predictionExportCells('annual', row, undefined, scale)[at]).toBe('HIGHER');
    expect(predictionExportCells('annual', { ...row, probability: 0.01 }, undefined, scale)[at]).toBe('LOWER');
    expect(predictionExportCells('annual', row)[at]).toBe(impliedRating(0.03));
  });

  it('so does the portfolio export, for both kinds', () => {
    const cells = portfolioExportCells({ symbol: 'X', annual_probability: 0.01, quarterly_probability: 0.5 }, scale);
    expect(cells[PORTFOLIO_EXPORT_COLUMNS.indexOf('annual_implied_rating')]).toBe('LOWER');
    expect(cells[PORTFOLIO_EXPORT_COLUMNS.indexOf('quarterly_implied_rating')]).toBe('HIGHER');
  });
});
