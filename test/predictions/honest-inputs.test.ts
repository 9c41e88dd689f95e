// Issue 17, "honest inputs": a prediction needs most of its ratios (PREDICTION_MIN_RATIOS), the
// missing ones are named (API and bulk rows), a missing ratio is explained as "not reported" with
// its real effect, and the messages are sentences an analyst reads.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, type WorldApp } from '../helpers/app.js';
import { loadConfig } from '../../src/config/index.js';
import { checkRatiosPresent, computePrediction, requiredRatios } from '../../src/services/prediction-compute.js';
import { createBulkJob } from '../../src/services/bulk/submit.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';
import { iterateErrors } from '../../src/repositories/bulk-jobs.js';
import { engineOnce } from '../helpers/app.js';
import { tmpDir } from '../bulk/helpers.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

let world: WorldApp;
beforeAll(async () => {
  world = await createWorldApp(['omA1', 'uA']);
});
afterAll(async () => {
  await world?.close();
});

const ANNUAL = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };

describe('minimum of ratios', () => {
  it('defaults to more than half: 3 of 5 annual, 4 of 6 quarterly; a number is capped at the model count; 0 turns it off', () => {
    expect(requiredRatios('annual')).toBe(3);
    expect(requiredRatios('quarterly')).toBe(4);
    expect(requiredRatios('annual', 5)).toBe(5);
    expect(requiredRatios('annual', 9)).toBe(5);
    expect(requiredRatios('quarterly', 0)).toBe(0);
    expect(checkRatiosPresent('annual', { ...ANNUAL, net_income_margin: null, return_on_assets: null })).toEqual([]);
    expect(checkRatiosPresent('annual', { ...ANNUAL, net_income_margin: null, return_on_assets: null }, 4).map((e) => e.field)).toEqual(['net_income_margin', 'return_on_assets']);
  });

  it('is configured by PREDICTION_MIN_RATIOS ("majority" or a whole number), with a clear error otherwise', () => {
    expect(loadConfig({}).PREDICTION_MIN_RATIOS).toBe('majority');
    expect(loadConfig({ PREDICTION_MIN_RATIOS: '2' }).PREDICTION_MIN_RATIOS).toBe(2);
    expect(() => loadConfig({ PREDICTION_MIN_RATIOS: 'half' })).toThrow(/PREDICTION_MIN_RATIOS must be "majority" or a whole number/);
  });

  it('computePrediction honours the setting', async () => {
    const engine = await engineOnce();
    const two = { reporting_year: '2024', net_income_margin: 3, return_on_assets: 1 };
    expect(computePrediction(engine, 'annual', two).ok).toBe(false);
    expect(computePrediction(engine, 'annual', two, { minRatios: 2 }).ok).toBe(true);
    expect(computePrediction(engine, 'annual', { reporting_year: '2024' }, { minRatios: 0 }).ok).toBe(true);
  });

  it('the API refuses a prediction with no ratios, or too few, naming each missing field; stores nothing', async () => {
    const before = await world.db.adminSql`select count(*)::int as n from annual_predictions`;
    const none = await world.api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'NONE', name: 'No Ratios Inc' }, reporting_year: '2024' });
    expect(none.statusCode, none.body).toBe(422);
    const e = none.json().error;
    expect(e.message).toBe('Too few ratios for an annual prediction: at least 3 of 5 must be reported. Not reported: Long-term debt / total capital, Total debt / EBITDA, Net income margin, EBIT / interest expense, Return on assets.');
    expect(e.details.map((d: { field: string }) => d.field)).toEqual(['long_term_debt_to_total_capital', 'total_debt_to_ebitda', 'net_income_margin', 'ebit_to_interest_expense', 'return_on_assets']);

    const two = await world.api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'FEW', name: 'Few Ratios Inc' }, reporting_year: '2024', net_income_margin: 2, return_on_assets: 1 });
    expect(two.statusCode).toBe(422);
    expect(two.json().error.details.map((d: { field: string }) => d.field)).toEqual(['long_term_debt_to_total_capital', 'total_debt_to_ebitda', 'ebit_to_interest_expense']);
    expect(two.json().error.details[0].message).toMatch(/^is not reported: an annual prediction needs at least 3 of its 5 ratios, and only 2 were given$/);

    const q = await world.api('POST', '/predictions/quarterly', 'omA1', { company: { symbol: 'FEWQ', name: 'Few Q' }, reporting_year: '2024', reporting_quarter: 'Q1', current_ratio: 1, quick_ratio: 1, debt_to_equity: 1 });
    expect(q.statusCode).toBe(422);
    expect(q.json().error.message).toMatch(/^Too few ratios for a quarterly prediction: at least 4 of 6/);

    const after = await world.db.adminSql`select count(*)::int as n from annual_predictions`;
    expect(after[0]!.n).toBe(before[0]!.n);
    // Nor did the refused requests leave a company behind.
    const orphan = await world.db.adminSql`select count(*)::int as n from companies where symbol in ('NONE', 'FEW', 'FEWQ')`;
    expect(orphan[0]!.n).toBe(0);
  });

  it('three of five is enough; the two missing appear in the explanation as "not reported" with their real effect', async () => {
    const res = await world.api('POST', '/predictions/annual?explain=true', 'omA1', { company: { symbol: 'THREE', name: 'Three Ratios Inc' }, reporting_year: '2024', long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, ebit_to_interest_expense: 5 });
    expect(res.statusCode, res.body).toBe(201);
    const ex = res.json().explanation;
    const missing = ex.contributions.filter((c: { value: number | null }) => c.value === null);
    expect(missing.map((c: { field: string }) => c.field).sort()).toEqual(['net_income_margin', 'return_on_assets']);
    for (const c of missing) expect(c.bin).toBe('not reported');
    // Their effect is the models' real treatment of a missing value: the contributions still
    // add up to the final log-odds, so the missing ones carry what the model does with them.
    const sum = ex.contributions.reduce((s: number, c: { log_odds: number }) => s + c.log_odds, 0);
    expect(ex.baseline_log_odds + sum + ex.step_adjustment).toBeCloseTo(ex.log_odds, 4);
    // And the same effect as the engine's own scoring of the missing value.
    const engine = await engineOnce();
    const direct = engine.predictAnnual({ long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, ebit_to_interest_expense: 5, net_income_margin: null, return_on_assets: null }, { explain: true }).explanation!;
    for (const c of missing) expect(c.log_odds).toBe(direct.contributions.find((d) => d.field === c.field)!.log_odds);
  });

  it('a patch of a row stored before the minimum works while it leaves the ratios alone, and is refused when it empties them', async () => {
    const [c] = await world.db.adminSql<{ id: string }[]>`select id from companies where symbol = 'THREE'`;
    const [p] = await world.db.adminSql<{ id: string }[]>`select id from annual_predictions where company_id = ${c!.id}`;
    const empty = await world.api('PATCH', `/predictions/annual/${p!.id}`, 'omA1', { ebit_to_interest_expense: null });
    expect(empty.statusCode).toBe(422);
    expect(empty.json().error.details.map((d: { field: string }) => d.field)).toContain('ebit_to_interest_expense');
  });

  it('bulk rows with too few ratios are row errors naming each missing column; the others are stored', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'few.csv');
    const head = 'company_symbol,company_name,reporting_year,long_term_debt_to_total_capital,total_debt_to_ebitda,net_income_margin,ebit_to_interest_expense,return_on_assets';
    writeFileSync(file, [head, 'BK1,Bulk One,2024,30,2,5,6,4', 'BK2,Bulk Two,2024,,,5,,', 'BK3,Bulk Three,2024,30,x,,,'].join('\n') + '\n');
    const u = world.w.users.uA;
    const principal = { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
    const job = await createBulkJob(world.db.appSql, principal, { kind: 'annual', filePath: file, accessLevel: 'personal' });
    const out = await runBulkJob({ sql: world.db.appSql, engine: await engineOnce() }, u.id, job.id);
    expect(out.progress).toMatchObject({ rows_succeeded: 1, rows_failed: 2 });
    const errs = [];
    for await (const page of iterateErrors(world.db.appSql, u.id, job.id)) errs.push(...page);
    const line3 = errs.filter((e) => e.line === 3);
    expect(line3.map((e) => e.column_name).sort()).toEqual(['ebit_to_interest_expense', 'long_term_debt_to_total_capital', 'return_on_assets', 'total_debt_to_ebitda']);
    expect(line3[0]!.reason).toMatch(/not reported: an annual prediction needs at least 3 of its 5 ratios, and only 1 was given/);
    // A row whose ratio could not be read reports that, not also "not reported" for it.
    const line4 = errs.filter((e) => e.line === 4);
    expect(line4.map((e) => e.column_name)).toEqual(['total_debt_to_ebitda']);
    // The configured minimum reaches bulk uploads too.
    const job2 = await createBulkJob(world.db.appSql, principal, { kind: 'annual', filePath: file, accessLevel: 'personal' });
    const out2 = await runBulkJob({ sql: world.db.appSql, engine: await engineOnce() }, u.id, job2.id, { minRatios: 1 });
    expect(out2.progress).toMatchObject({ rows_succeeded: 2, rows_failed: 1 });
  });
});

describe('plain-language messages', () => {
  it('a second prediction for the same period says so in a sentence (the API hint stays in details)', async () => {
    const body = { company: { symbol: 'DUP', name: 'Dup Co' }, reporting_year: '2023', ...ANNUAL };
    const first = await world.api('POST', '/predictions/annual', 'omA1', body);
    expect(first.statusCode).toBe(201);
    const again = await world.api('POST', '/predictions/annual', 'omA1', body);
    expect(again.statusCode).toBe(409);
    const e = again.json().error;
    expect(e.message).toBe('DUP already has an annual prediction for 2023. Replace it to change it.');
    expect(e.details).toMatchObject({ existing_id: expect.any(String), replace: expect.stringContaining('upsert=true') });
    // The one-statement path (company by id) says the same.
    const byId = await world.api('POST', '/predictions/annual', 'omA1', { company_id: first.json().company.id, reporting_year: '2023', ...ANNUAL });
    expect(byId.json().error.message).toBe('DUP already has an annual prediction for 2023. Replace it to change it.');
  });

  it('out-of-range ratios and forbidden scopes are explained without column types or role codes', async () => {
    const big = await world.api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'BIG', name: 'Big' }, reporting_year: '2024', ...ANNUAL, return_on_assets: 125000 });
    expect(big.statusCode).toBe(422);
    expect(big.body).not.toMatch(/DECIMAL/);
    expect(big.json().error.details[0]).toEqual({ field: 'return_on_assets', message: 'is too large: it must be between -10,000 and 10,000 (got 125000)' });
    const sys = await world.api('POST', '/predictions/annual', 'omA1', { company: { symbol: 'SYS', name: 'Sys' }, reporting_year: '2024', ...ANNUAL, access_level: 'system' });
    expect(sys.statusCode).toBe(403);
    expect(sys.json().error.message).toBe('access_level: your role (organization member) cannot create rows visible to everyone');
  });
});
