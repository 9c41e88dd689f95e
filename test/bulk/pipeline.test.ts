// The bulk pipeline against the real PostgreSQL: file → validate → compute → COPY + upsert under
// row-level security, with errors, duplicates, idempotent re-runs and cancellation.
import { makeZip } from '../helpers/zip.js';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { loadModels } from '../../src/services/model-store.js';
import { computePrediction, normalizeCompanyInput, requiredRatios } from '../../src/services/prediction-compute.js';
import { createBulkJob } from '../../src/services/bulk/submit.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';
import { cancelBulkJob, getBulkJob, iterateErrors } from '../../src/repositories/bulk-jobs.js';
import { fieldNamesOf, type ModelKind, type RiskEngine } from '../../src/risk/index.js';
import type { Principal } from '../../src/domain/principal.js';
import { makeRows, sharedStringsBomb, tmpDir, writeCsv, writeXlsx, type Row } from './helpers.js';

let db: TestDatabase;
let world: World;
let engine: RiskEngine;
const dir = tmpDir();

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
  world = await buildWorld(db.adminSql);
  engine = await loadModels();
});
afterAll(async () => {
  await db?.drop();
});

function principal(key: keyof World['users']): Principal {
  const u = world.users[key];
  return { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
}

async function run(key: keyof World['users'], kind: ModelKind, file: string, opts: { accessLevel?: 'personal' | 'organization'; chunkRows?: number } = {}) {
  const p = principal(key);
  const job = await createBulkJob(db.appSql, p, { kind, filePath: file, accessLevel: opts.accessLevel ?? 'personal' });
  const outcome = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id, { chunkRows: opts.chunkRows ?? 2500 });
  const row = await getBulkJob(db.appSql, p.userId, job.id);
  return { job: row!, outcome };
}

async function errorsOf(userId: string, jobId: string) {
  const out = [];
  for await (const page of iterateErrors(db.appSql, userId, jobId)) out.push(...page);
  return out;
}

/** What the single-prediction API computes for the row (JSON numbers), keyed by symbol|period. */
function expected(kind: ModelKind, rows: Row[]) {
  const m = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    const c = normalizeCompanyInput({ symbol: r.company_symbol, name: r.company_name });
    const p = computePrediction(engine, kind, r);
    if (!c.ok || !p.ok) throw new Error('fixture row invalid');
    const key = kind === 'annual' ? `${c.value.symbol}|${p.value.reporting_year}` : `${c.value.symbol}|${p.value.reporting_year}|${(p.value as { reporting_quarter: string }).reporting_quarter}`;
    m.set(key, { ...p.value.ratios, ...p.value.outputs, model_name: p.value.model.name, model_version: p.value.model.version });
  }
  return m;
}

async function stored(kind: ModelKind, userId: string, prefix = 'S') {
  const cols = [...fieldNamesOf(kind), ...(kind === 'annual' ? ['probability'] : ['ensemble_probability', 'gbm_probability']), 'logistic_probability', 'step_probability', 'risk_level', 'confidence', 'model_name', 'model_version'];
  const rows = await db.adminSql.unsafe<Record<string, unknown>[]>(
    `select c.symbol, p.reporting_year ${kind === 'quarterly' ? ', p.reporting_quarter' : ''}, ${cols.map((c) => 'p.' + c).join(', ')}, p.access_level, p.created_by
     from ${kind}_predictions p join companies c on c.id = p.company_id
     where c.created_by = $1 and c.access_level = 'personal' and c.symbol like $2`,
    [userId, prefix + '%'],
  );
  const m = new Map<string, Record<string, unknown>>();
  for (const r of rows) {
    const key = kind === 'annual' ? `${r.symbol}|${r.reporting_year}` : `${r.symbol}|${r.reporting_year}|${r.reporting_quarter}`;
    const v: Record<string, unknown> = {};
    for (const c of cols) v[c] = r[c];
    m.set(key, v);
  }
  return m;
}

describe('bulk pipeline', () => {
  it('a 10,000-row CSV and the same as XLSX store exactly what the single-prediction computation gives, for every row', async () => {
    const rows = makeRows('annual', 10_000, { seed: 3 });
    // Some missing values spelled every accepted way.
    const tokens = ['', 'N/A', 'NA', 'NM', '-', 'n/a'];
    // (only in rows that keep the minimum of ratios without it)
    const spare = (r: Row) => r.return_on_assets !== null && fieldNamesOf('annual').filter((f) => r[f] !== null).length > requiredRatios('annual');
    const csvRows = rows.map((r, i) => (i % 97 === 0 && spare(r) ? { ...r, return_on_assets: tokens[i % tokens.length]! } : r));
    const apiRows = rows.map((r, i) => (i % 97 === 0 && spare(r) ? { ...r, return_on_assets: null } : r));
    const csv = writeCsv(dir, 'annual10k.csv', 'annual', csvRows);
    const xlsx = await writeXlsx(dir, 'annual10k.xlsx', 'annual', apiRows, { percentFields: ['net_income_margin', 'return_on_assets'] });
    const want = expected('annual', apiRows);

    const a = await run('uA', 'annual', csv);
    expect(a.outcome.status).toBe('completed');
    expect(a.job).toMatchObject({ status: 'completed', rows_total: 10_000, rows_processed: 10_000, rows_succeeded: 10_000, rows_failed: 0, rows_superseded: 0 });
    const got = await stored('annual', world.users.uA.id);
    expect(got.size).toBe(10_000);
    for (const [k, v] of want) expect(got.get(k), k).toEqual(v);

    // The XLSX (ratios as numbers, two of them percent-formatted) for another user.
    const b = await run('omA2', 'annual', xlsx);
    expect(b.job).toMatchObject({ status: 'completed', rows_processed: 10_000, rows_succeeded: 10_000, rows_failed: 0 });
    const gotX = await stored('annual', world.users.omA2.id);
    expect(gotX.size).toBe(10_000);
    for (const [k, v] of want) expect(gotX.get(k), k).toEqual(v);
  });

  it('a file with 5 % bad rows yields exactly those rows as errors (line, column, value, reason); the rest are stored', async () => {
    const rows: Row[] = makeRows('quarterly', 2000, { seed: 5, symbolPrefix: 'Q' });
    const bad = new Map<number, string>();
    const kinds: Array<(r: Row) => [Row, string]> = [
      (r) => [{ ...r, current_ratio: 'abc' }, 'current_ratio'],
      (r) => [{ ...r, quick_ratio: '1e400' }, 'quick_ratio'],
      (r) => [{ ...r, debt_to_equity: 12345 }, 'debt_to_equity'],
      (r) => [{ ...r, reporting_year: '' }, 'reporting_year'],
      (r) => [{ ...r, reporting_quarter: 'Q5' }, 'reporting_quarter'],
      (r) => [{ ...r, company_symbol: '' }, 'company_symbol'],
      (r) => [{ ...r, inventory_turnover: 'Infinity' }, 'inventory_turnover'],
      (r) => [{ ...r, company_symbol: 'WAY-TOO-LONG-SYMBOL' }, 'company_symbol'],
    ];
    const withBad = rows.map((r, i) => {
      if (i % 20 !== 7) return r;
      const [row, col] = kinds[((i / 20) | 0) % kinds.length]!(r);
      bad.set(i + 2, col); // +2: header is line 1
      return row;
    });
    expect(bad.size).toBe(100);
    const file = writeCsv(dir, 'q-bad.csv', 'quarterly', withBad);
    const { job } = await run('uA', 'quarterly', file, { chunkRows: 500 });
    expect(job).toMatchObject({ status: 'completed', rows_processed: 2000, rows_failed: 100, rows_succeeded: 1900, rows_superseded: 0 });
    const errs = await errorsOf(world.users.uA.id, job.id);
    expect(new Set(errs.map((e) => e.line))).toEqual(new Set(bad.keys()));
    for (const e of errs) {
      expect(e.column_name).toBe(bad.get(e.line));
      expect(e.reason.length).toBeGreaterThan(5);
    }
    const sample = errs.find((e) => e.column_name === 'current_ratio')!;
    expect(sample).toMatchObject({ value: 'abc', reason: expect.stringMatching(/not a number/) });
    const [{ n }] = await db.adminSql<[{ n: number }]>`
      select count(*)::int as n from quarterly_predictions p join companies c on c.id = p.company_id
      where c.created_by = ${world.users.uA.id} and c.symbol like 'Q%'`;
    expect(n).toBe(1900);
  });

  it('duplicates of company + period: the last row wins, earlier ones are reported superseded (also across chunks)', async () => {
    const rows = makeRows('annual', 30, { seed: 9, symbolPrefix: 'D' });
    const dupSameChunk = { ...rows[3]!, net_income_margin: 1.5 };
    const dupLater = { ...rows[0]!, net_income_margin: -3.25 };
    const all = [...rows.slice(0, 5), dupSameChunk, ...rows.slice(5), dupLater];
    const file = writeCsv(dir, 'dups.csv', 'annual', all);
    const { job } = await run('omA1', 'annual', file, { chunkRows: 10 });
    expect(job).toMatchObject({ status: 'completed', rows_processed: 32, rows_succeeded: 30, rows_superseded: 2, rows_failed: 0 });
    const errs = await errorsOf(world.users.omA1.id, job.id);
    expect(errs.map((e) => [e.line, e.kind])).toEqual([
      [2, 'superseded'],
      [5, 'superseded'],
    ]);
    expect(errs[0]!.reason).toMatch(/superseded by line 33/);
    const [r] = await db.adminSql<{ m: number }[]>`
      select p.net_income_margin as m from annual_predictions p join companies c on c.id = p.company_id
      where c.symbol = ${rows[0]!.company_symbol as string} and c.created_by = ${world.users.omA1.id} and p.reporting_year = ${rows[0]!.reporting_year as string}`;
    expect(r!.m).toBe(-3.25);
  });

  it('the same file twice gives no duplicates and the same stored predictions', async () => {
    const rows = makeRows('annual', 3000, { seed: 11, symbolPrefix: 'R' });
    const file = writeCsv(dir, 'rerun.csv', 'annual', rows);
    const first = await run('omA1b', 'annual', file);
    const before = await stored('annual', world.users.omA1b.id, 'R');
    const second = await run('omA1b', 'annual', file);
    const after = await stored('annual', world.users.omA1b.id, 'R');
    expect(first.job.rows_succeeded).toBe(3000);
    expect(second.job.rows_succeeded).toBe(3000);
    expect(after.size).toBe(3000);
    expect(after).toEqual(before);
    const [{ n }] = await db.adminSql<[{ n: number }]>`select count(*)::int as n from companies where created_by = ${world.users.omA1b.id} and symbol like 'R%'`;
    expect(n).toBe(600);
  });

  it('organization uploads create companies in the uploader organization; RLS keeps other members’ rows safe', async () => {
    const rows = makeRows('annual', 20, { seed: 13, symbolPrefix: 'ZO' });
    const file = writeCsv(dir, 'org.csv', 'annual', rows);
    const a = await run('omA1', 'annual', file, { accessLevel: 'organization' });
    expect(a.job).toMatchObject({ status: 'completed', rows_succeeded: 20, access_level: 'organization' });
    const comps = await db.adminSql<{ access_level: string; organization_id: string }[]>`
      select access_level, organization_id from companies where symbol like 'ZO%' and access_level = 'organization'`;
    expect(comps.length).toBe(4);
    expect(new Set(comps.map((c) => c.organization_id))).toEqual(new Set([world.orgs.A1]));
    // Another member of A1 re-uploads: same companies, but the predictions are omA1's → row errors, nothing changed.
    const b = await run('omA1b', 'annual', file, { accessLevel: 'organization' });
    expect(b.job).toMatchObject({ status: 'completed', rows_succeeded: 0, rows_failed: 20 });
    // The org admin may replace them.
    const c = await run('oaA1', 'annual', file, { accessLevel: 'organization' });
    expect(c.job).toMatchObject({ status: 'completed', rows_succeeded: 20, rows_failed: 0 });
    // A plain user cannot upload at organization level at all.
    await expect(createBulkJob(db.appSql, principal('uA'), { kind: 'annual', filePath: file, accessLevel: 'organization' })).rejects.toThrow(/only members of an organization/);
  });

  it('cancellation keeps the committed chunks and stops before the next one', async () => {
    const rows = makeRows('annual', 5000, { seed: 17, symbolPrefix: 'C' });
    const file = writeCsv(dir, 'cancel.csv', 'annual', rows);
    const p = principal('omB1');
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    const outcome = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id, {
      chunkRows: 1000,
      afterChunk: async (pr) => {
        if (pr.chunks_committed === 2) await cancelBulkJob(db.appSql, p.userId, job.id);
      },
    });
    expect(outcome.status).toBe('cancelled');
    const row = (await getBulkJob(db.appSql, p.userId, job.id))!;
    expect(row.status).toBe('cancelled');
    expect(row.rows_succeeded).toBe(row.chunks_committed * 1000);
    expect(row.chunks_committed).toBeGreaterThanOrEqual(2);
    expect(row.chunks_committed).toBeLessThan(5);
    expect(row.note).toMatch(/committed/);
    const [{ n }] = await db.adminSql<[{ n: number }]>`
      select count(*)::int as n from annual_predictions p join companies c on c.id = p.company_id where c.created_by = ${p.userId} and c.symbol like 'C%'`;
    expect(n).toBe(row.rows_succeeded);
  });

  it('rejects hostile and malformed files with a clear error, never a crash', async () => {
    const p = principal('uA');
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['empty.csv', '', /empty/],
      ['noheader.csv', 'ACME,Acme,2024,1,2,3,4,5\nB,B,2024,1,2,3,4,5\n', /no header row/],
      ['missing.csv', 'company_symbol,company_name,reporting_year,net_income_margin\nA,A,2024,1\n', /missing columns.*long_term_debt_to_total_capital/],
      ['binary.csv', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1, 2, 3]), /not a CSV or XLSX/],
      ['pdf.csv', Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from([0, 0xff, 0xfe])]), /not a CSV or XLSX/],
    ];
    for (const [name, content, re] of cases) {
      const file = path.join(dir, name);
      writeFileSync(file, content);
      const created = createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
      if (/empty|not a CSV/.test(re.source)) {
        await expect(created, name).rejects.toThrow(re);
        continue;
      }
      const job = await created;
      const out = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id);
      expect(out.status, name).toBe('failed');
      const row = (await getBulkJob(db.appSql, p.userId, job.id))!;
      expect(row.status).toBe('failed');
      expect(row.error_message, name).toMatch(re);
    }
  });

  it('a single line longer than the limit fails the job with a clear message (memory stays bounded)', async () => {
    const p = principal('uA');
    const head = 'company_symbol,company_name,reporting_year,long_term_debt_to_total_capital,total_debt_to_ebitda,net_income_margin,ebit_to_interest_expense,return_on_assets\n';
    const file = path.join(dir, 'longline.csv');
    writeFileSync(file, head + 'A,A,2024,1,2,3,4,5\n' + 'B,' + 'x'.repeat(3 * 1024 * 1024) + ',2024,1,2,3,4,5\n');
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    const out = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id, { limits: { maxLineBytes: 1024 * 1024 } });
    expect(out.status).toBe('failed');
    const row = (await getBulkJob(db.appSql, p.userId, job.id))!;
    expect(row.error_message).toMatch(/longer than 1048576 bytes/);
  });

  it('XLSX: every worksheet is more rows of one table (a long export split across sheets); lines count on through the sheets', async () => {
    const rows = makeRows('annual', 30, { symbolPrefix: 'MS', seed: 41, years: 1 });
    rows[20] = { ...rows[20]!, reporting_year: 'abcd' }; // the first data row of sheet 3 (rows 20-29)
    const file = await writeXlsx(dir, 'three-sheets.xlsx', 'annual', rows, { sheets: 3 });
    const { job, outcome } = await run('uA', 'annual', file);
    expect(outcome.status).toBe('completed');
    expect(job).toMatchObject({ rows_processed: 30, rows_succeeded: 29, rows_failed: 1 });
    // Header on line 1, data on lines 2-31 as if one sheet: row 20 is line 22.
    expect((await errorsOf(job.user_id, job.id)).map((e) => e.line)).toEqual([22]);
    const [n] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions p join companies c on c.id = p.company_id where c.symbol like 'MS%'`;
    expect(n!.n).toBe(29);
  });

  it('XLSX: a later worksheet with another header row fails the job, naming the sheet', async () => {
    const rows = makeRows('annual', 10, { symbolPrefix: 'MT', seed: 43, years: 1 });
    const file = await writeXlsx(dir, 'other-table.xlsx', 'annual', rows, { sheets: 2, sheetHeader: (n) => (n === 2 ? ['note', 'value'] : undefined) });
    const { job, outcome } = await run('uA', 'annual', file);
    expect(outcome.status).toBe('failed');
    expect(job.error_message).toMatch(/worksheet 2 does not start with the first worksheet's header row/);
  });

  it('XLSX: formula cells are row errors; percent-formatted cells read as the percent shown; zip bombs are refused', async () => {
    const p = principal('omA2');
    const rows = makeRows('annual', 4, { seed: 19, symbolPrefix: 'X' });
    rows[1]!.net_income_margin = 35.2;
    const file = await writeXlsx(dir, 'formula.xlsx', 'annual', rows, {
      percentFields: ['net_income_margin'],
      cell: (i, col, cell) => {
        if (i === 2 && col === 'total_debt_to_ebitda') cell.value = { formula: '1+1', result: 2 } as never;
      },
    });
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    const out = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id);
    expect(out.status).toBe('completed');
    const errs = await errorsOf(p.userId, job.id);
    expect(errs).toEqual([expect.objectContaining({ line: 4, column_name: 'total_debt_to_ebitda', reason: expect.stringMatching(/formulas are not accepted/) })]);
    const [r] = await db.adminSql<{ m: number }[]>`
      select p.net_income_margin as m from annual_predictions p join companies c on c.id = p.company_id
      where c.symbol = ${rows[1]!.company_symbol as string} and c.created_by = ${p.userId} and p.reporting_year = ${rows[1]!.reporting_year as string}`;
    expect(r!.m).toBe(35.2);

    // A zip bomb: 50 MB of zeros in a few kilobytes.
    const { deflateRawSync } = await import('node:zlib');
    const bomb = await makeZip([
      ['xl/workbook.xml', Buffer.from('<workbook/>')],
      ['xl/worksheets/sheet1.xml', Buffer.alloc(50 * 1024 * 1024)],
    ], deflateRawSync);
    const bombFile = path.join(dir, 'bomb.xlsx');
    writeFileSync(bombFile, bomb);
    const bj = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: bombFile });
    const bo = await runBulkJob({ sql: db.appSql, engine }, p.userId, bj.id);
    expect(bo.status).toBe('failed');
    expect((await getBulkJob(db.appSql, p.userId, bj.id))!.error_message).toMatch(/zip bomb/);
  });

  it('XLSX whose directory declares 2,000 bytes of shared strings that inflate to 4 GB: the job fails with a clear error, nothing stored', async () => {
    const p = principal('omA2');
    const { file } = sharedStringsBomb(dir, 4 * 1024 ** 3);
    const job = await createBulkJob(db.appSql, p, { kind: 'annual', filePath: file });
    const out = await runBulkJob({ sql: db.appSql, engine }, p.userId, job.id);
    expect(out).toMatchObject({ status: 'failed', error: expect.stringMatching(/xl\/sharedStrings\.xml inflates to more than the 2000 bytes its zip directory declares/) });
    const row = (await getBulkJob(db.appSql, p.userId, job.id))!;
    expect(row).toMatchObject({ status: 'failed', rows_succeeded: 0, chunks_committed: 0 });
  });
});
