// Issue 17, the context a PD is read by: the implied-rating scale (configurable) and the
// dashboard by reporting year with the average PD per sector, from the rollups, under RLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createWorldApp, type WorldApp } from '../helpers/app.js';
import { loadConfig } from '../../src/config/index.js';
import { impliedRating, REFERENCE_RATING_SCALE } from '../../src/risk/implied-rating.js';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(['omA1', 'omB1', 'super']);
});
afterAll(async () => {
  await world?.close();
});

const ANNUAL = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };

describe('implied rating scale', () => {
  it('the API serves the configured scale (the reference calibration by default)', async () => {
    const r = await world.api('GET', '/analytics/rating-scale', 'omA1');
    expect(r.statusCode).toBe(200);
    const grades = r.json().grades as Array<{ grade: string; max_pd: number | null }>;
    expect(grades.map((g) => g.grade)).toEqual(['AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC']);
    expect(grades.at(-1)!.max_pd).toBeNull();
    expect(grades.slice(0, -1).map((g) => g.max_pd)).toEqual(REFERENCE_RATING_SCALE.slice(0, -1).map((g) => g.maxPd));
  });

  it('IMPLIED_RATING_SCALE replaces it, and a malformed one stops start-up naming the variable', () => {
    const c = loadConfig({ IMPLIED_RATING_SCALE: 'A1:0.001, B1:0.01, C1' });
    expect(c.IMPLIED_RATING_SCALE.map((g) => g.grade)).toEqual(['A1', 'B1', 'C1']);
    expect(impliedRating(0.005, c.IMPLIED_RATING_SCALE)).toBe('B1');
    expect(impliedRating(0.5, c.IMPLIED_RATING_SCALE)).toBe('C1');
    expect(loadConfig({}).IMPLIED_RATING_SCALE).toBe(REFERENCE_RATING_SCALE);
    expect(() => loadConfig({ IMPLIED_RATING_SCALE: 'A1:0.01,B1:0.001,C1' })).toThrow(/IMPLIED_RATING_SCALE grade B1's bound must be above A1's/);
    expect(() => loadConfig({ IMPLIED_RATING_SCALE: 'A1,B1' })).toThrow(/IMPLIED_RATING_SCALE grade "A1" needs its highest PD/);
    expect(() => loadConfig({ IMPLIED_RATING_SCALE: 'A1:0.01,B1:0.5' })).toThrow(/last grade \(B1\) takes no bound/);
  });
});

describe('implied rating beside every PD the API returns', () => {
  it('on the configured scale: created, read, listed and on the symbol page', async () => {
    const created = await world.api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'IRT', name: 'Implied Rating Test', sector: 'Energy' }, reporting_year: '2019', ...ANNUAL });
    expect(created.statusCode, created.body).toBe(201);
    const p = created.json();
    expect(p.implied_rating).toBe(impliedRating(p.probability));
    const got = await world.api('GET', `/predictions/annual/${p.id}`, 'omA1');
    expect(got.json().implied_rating).toBe(p.implied_rating);
    const listed = await world.api('GET', '/predictions/annual?symbol=IRT', 'omA1');
    expect(listed.json().items.map((i: { implied_rating: string }) => i.implied_rating)).toEqual([p.implied_rating]);
    const bySymbol = await world.api('GET', '/companies/symbol/IRT', 'omA1');
    expect(bySymbol.json().annual[0].implied_rating).toBe(p.implied_rating);
    // A deployment's own scale (IMPLIED_RATING_SCALE) is the one the API reads PDs on.
    const scale = [{ grade: 'SAFE', maxPd: p.probability / 2 }, { grade: 'WATCH', maxPd: Infinity }];
    const other = await createTestApp(world.db, { ratingScale: scale });
    try {
      const r = await other.request({ method: 'GET', url: `/api/v1/predictions/annual/${p.id}`, token: world.tok.omA1 });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().implied_rating).toBe('WATCH');
      const s = await other.request({ method: 'GET', url: '/api/v1/companies/symbol/IRT', token: world.tok.omA1 });
      expect(s.json().annual[0].implied_rating).toBe('WATCH');
      // Exports read PDs on the same scale (the ExportService gets the configured one).
      const ex = await other.request({ method: 'GET', url: '/api/v1/exports/predictions/annual?symbol=IRT&format=csv', token: world.tok.omA1 });
      expect(ex.statusCode, ex.body).toBe(200);
      const [header, row] = ex.body.replace(/^\uFEFF/, '').trim().split(/\r?\n/).map((l) => l.split(','));
      expect(row![header!.indexOf('implied_rating')]).toBe('WATCH');
    } finally {
      await other.close();
    }
  });
});

describe('sector context of a PD', () => {
  it('percentile rank and median among the sector\u2019s companies the caller can see, latest PD each', async () => {
    const post = (who: 'omA1' | 'omB1', symbol: string, year: string, margin: number) =>
      world.api('POST', '/predictions/annual', who, { company: { symbol, name: symbol, sector: 'Chemicals' }, reporting_year: year, ...ANNUAL, net_income_margin: margin, return_on_assets: margin / 2 });
    const pds: Record<string, number> = {};
    const ids: Record<string, string> = {};
    for (const [sym, margin] of [['CHA', 12], ['CHB', 4], ['CHC', -3], ['CHD', -12]] as const) {
      const r = await post('omA1', sym, '2023', margin);
      expect(r.statusCode, r.body).toBe(201);
      pds[sym] = r.json().probability;
      ids[sym] = r.json().company.id;
    }
    // An older period does not count: each company is compared by its latest PD.
    expect((await post('omA1', 'CHD', '2018', 30)).statusCode).toBe(201);
    // Another tenant's company of the same sector is not a peer of omA1's.
    expect((await post('omB1', 'CHX', '2023', -40)).statusCode).toBe(201);

    const r = await world.api('GET', `/companies/${ids.CHB}/sector-context?type=annual`, 'omA1');
    expect(r.statusCode, r.body).toBe(200);
    const c = r.json();
    const others = Object.values(pds);
    const sorted = [...others].sort((a, b) => a - b);
    const below = others.filter((x) => x < pds.CHB!).length;
    const same = others.filter((x) => x === pds.CHB!).length;
    expect(c).toMatchObject({ sector: 'Chemicals', kind: 'annual', peers: 4, probability: pds.CHB });
    expect(c.percentile).toBeCloseTo(((below + same / 2) / 4) * 100, 1);
    expect(c.sector_median_probability).toBeCloseTo((sorted[1]! + sorted[2]!) / 2, 6);

    // The other tenant sees only its own company: one peer.
    const theirs = await world.api('GET', `/companies/${(await world.api('GET', '/companies?q=CHX', 'omB1')).json().items[0].id}/sector-context`, 'omB1');
    expect(theirs.json()).toMatchObject({ peers: 1, percentile: 50 });
    // And cannot ask about omA1's company at all.
    expect((await world.api('GET', `/companies/${ids.CHB}/sector-context`, 'omB1')).statusCode).toBe(404);
    // No quarterly PD yet: no figures, no error.
    const q = await world.api('GET', `/companies/${ids.CHB}/sector-context?type=quarterly`, 'omA1');
    expect(q.json()).toMatchObject({ probability: null, percentile: null, peers: 0 });
  });
});

describe('dashboard by reporting year', () => {
  it('averages PD per sector and year of the ratios (not of when predictions were made), in the caller\u2019s scope only', async () => {
    const post = (who: 'omA1' | 'omB1', symbol: string, sector: string, year: string, extra: Record<string, number> = {}) =>
      world.api('POST', '/predictions/annual', who, { company: { symbol, name: symbol, sector }, reporting_year: year, ...ANNUAL, ...extra });
    const made: Record<string, number> = {};
    for (const [who, sym, sector, year, extra] of [
      ['omA1', 'YR1', 'Energy', '2021', {}],
      ['omA1', 'YR1', 'Energy', '2022', { net_income_margin: -15, return_on_assets: -10 }],
      ['omA1', 'YR2', 'Energy', '2022', {}],
      ['omA1', 'YR3', 'Utilities', '2022', {}],
      ['omB1', 'YRB', 'Energy', '2022', { net_income_margin: -20 }],
    ] as const) {
      const r = await post(who, sym, sector, year, extra);
      expect(r.statusCode, r.body).toBe(201);
      made[`${who}|${sym}|${year}`] = r.json().probability;
    }
    const r = await world.api('GET', '/analytics/by-year?type=annual', 'omA1');
    expect(r.statusCode, r.body).toBe(200);
    const years = r.json().years as Array<{ reporting_year: string; count: number; average_probability: number; sectors: Array<{ sector: string; count: number; average_probability: number }> }>;
    const y22 = years.find((y) => y.reporting_year === '2022')!;
    const energy = y22.sectors.find((s) => s.sector === 'Energy')!;
    expect(energy.count).toBe(2);
    // Rollups keep micro-units: the average is exact to 1e-6.
    expect(energy.average_probability).toBeCloseTo((made['omA1|YR1|2022']! + made['omA1|YR2|2022']!) / 2, 5);
    expect(y22.sectors.find((s) => s.sector === 'Utilities')!.count).toBe(1);
    // The fixture world's own rows (2024, Industrials) are there; tenant B's Energy row is not.
    expect(years.find((y) => y.reporting_year === '2021')!.sectors).toEqual([{ sector: 'Energy', count: 1, average_probability: expect.closeTo(made['omA1|YR1|2021']!, 5) }]);
    const b = await world.api('GET', '/analytics/by-year?type=annual', 'omB1');
    const b22 = (b.json().years as typeof years).find((y) => y.reporting_year === '2022')!;
    expect(b22.sectors).toEqual([{ sector: 'Energy', count: 1, average_probability: expect.closeTo(made['omB1|YRB|2022']!, 5) }]);
  });
});
