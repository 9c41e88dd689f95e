// Exports through the API against the real PostgreSQL: what a user may export is what row-level
// security shows them, text that looks like a formula is escaped, and an export uploads again
// through the bulk upload unchanged (CSV and XLSX).
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import ExcelJS from 'exceljs';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorldApp, type WorldApp } from '../helpers/app.js';
import { VISIBLE_COMPANIES, type UserKey } from '../helpers/fixtures.js';
import { makeRows, tmpDir } from '../bulk/helpers.js';
import { fieldNamesOf } from '../../src/risk/index.js';
import { createBulkJob } from '../../src/services/bulk/submit.js';
import { runBulkJob } from '../../src/services/bulk/pipeline.js';
import { engineOnce } from '../helpers/app.js';
import { predictionExportColumns, streamExport } from '../../src/services/exports.js';
import type { Principal } from '../../src/domain/principal.js';

let h: WorldApp;
const dir = tmpDir('accunode-export-');
const NAMES = ['=HYPERLINK("http://evil.example")', '@SUM(1+1)', '-minus Corp'];
const ROWS = makeRows('annual', 12, { symbolPrefix: 'EX', seed: 5 });
const BULK_COLUMNS = 3 + fieldNamesOf('annual').length + 4; // symbol, name, year, ratios, market_cap, sector, country, exchange

beforeAll(async () => {
  // A short stall limit: a reader that vanished while backpressured is not always seen to close.
  h = await createWorldApp(['omA1', 'omA2', 'taA', 'uA', 'omB1', 'oaB1'], { exportStallMs: 2_000 });
  for (const r of ROWS) {
    const i = Number(String(r.company_symbol).slice(2));
    const body: Record<string, unknown> = {
      company: { symbol: r.company_symbol, name: NAMES[i], sector: 'Utilities', country: 'US', exchange: 'NYSE', market_cap: 1_000_000 + i },
      reporting_year: r.reporting_year,
      access_level: 'organization',
    };
    for (const f of fieldNamesOf('annual')) body[f] = r[f];
    const res = await h.api('POST', '/predictions/annual', 'omA1', body);
    expect(res.statusCode, res.body).toBe(201);
  }
});
afterAll(async () => {
  await h?.close();
});

function principal(k: UserKey): Principal {
  const u = h.w.users[k];
  return { userId: u.id, role: u.role, tenantId: u.tenant, organizationId: u.org };
}

async function csvExport(who: UserKey, query: string, list = 'predictions/annual'): Promise<string[][]> {
  const res = await h.api('GET', `/exports/${list}?${query}`, who);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/csv/);
  expect(res.headers['content-disposition']).toMatch(/^attachment; filename=".+\.csv"$/);
  return parse(res.body, { bom: true, relax_column_count: false }) as string[][];
}

async function upload(who: UserKey, file: string) {
  const p = principal(who);
  const job = await createBulkJob(h.db.appSql, p, { kind: 'annual', filePath: file, accessLevel: 'personal' });
  return runBulkJob({ sql: h.db.appSql, engine: await engineOnce() }, p.userId, job.id);
}

/** 50,000 Materials predictions in A2's organization: a download far longer than the socket buffers. */
async function bigMaterialsBook(): Promise<void> {
  const [have] = await h.db.adminSql<{ n: number }[]>`select count(*)::int as n from companies where symbol like 'BIG%'`;
  if (have!.n > 0) return;
  await h.db.adminSql`
    insert into companies (symbol, name, sector, access_level, organization_id, created_by)
    select 'BIG' || g, 'Big ' || g, 'Materials', 'organization', ${h.w.orgs.A2}, ${h.w.users.omA2.id} from generate_series(1, 5000) g`;
  await h.db.adminSql`
    insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence)
    select c.id, c.created_by, (2010 + y)::text, 0.01, 'LOW', 0.8 from companies c cross join generate_series(0, 9) y where c.symbol like 'BIG%'`;
  // As autovacuum would soon: without statistics for the 50,000 new rows the planner may pick a
  // plan whose first batch takes many seconds, and these tests are about a download already under
  // way (a client leaving before the first batch is the pg_sleep test's).
  await h.db.adminSql`analyze companies, annual_predictions`;
}

describe('exports', () => {
  it('a prediction export has the bulk upload\'s columns, every matching row, and formula-like text escaped', async () => {
    const [header, ...rows] = await csvExport('omA1', 'sector=Utilities&sort=reporting_year');
    expect(header).toEqual(predictionExportColumns('annual', false));
    expect(header!.slice(0, 3)).toEqual(['company_symbol', 'company_name', 'reporting_year']);
    expect(rows).toHaveLength(ROWS.length);
    const names = new Set(rows.map((r) => r[1]));
    expect(names).toEqual(new Set(NAMES.map((n) => `'${n}`)));
    // Numbers are never escaped (a negative ratio stays a number).
    const nim = header!.indexOf('net_income_margin');
    const byKey = new Map(rows.map((r) => [`${r[0]}/${r[2]}`, r]));
    for (const r of ROWS) expect(Number(byKey.get(`${r.company_symbol}/${r.reporting_year}`)![nim])).toBeCloseTo(Number(r.net_income_margin), 4);
    expect(rows.some((r) => r[nim]!.startsWith('-'))).toBe(true);
    // Sorted by reporting year as asked.
    const years = rows.map((r) => r[2]!);
    expect(years).toEqual([...years].sort());
  });

  it('exports only what row-level security shows each role', async () => {
    for (const who of ['omA1', 'omA2', 'taA', 'uA', 'omB1'] as const) {
      const [header, ...rows] = await csvExport(who, '');
      const ids = new Set(rows.map((r) => r[header!.indexOf('company_id')]));
      const expected = new Set(VISIBLE_COMPANIES[who].map((k) => h.w.companies[k]));
      const seesA1 = who === 'omA1' || who === 'taA';
      const extra = [...ids].filter((id) => !expected.has(id!));
      expect(extra.length, who).toBe(seesA1 ? 3 : 0);
      for (const id of expected) expect(ids.has(id), `${who} sees ${id}`).toBe(true);
    }
    const [, ...b] = await csvExport('omB1', 'sector=Utilities');
    expect(b).toHaveLength(0);
  });

  it('a CSV export uploads again unchanged (round trip through the bulk upload)', async () => {
    const res = await h.api('GET', '/exports/predictions/annual?sector=Utilities', 'omA1');
    const file = path.join(dir, 'roundtrip.csv');
    writeFileSync(file, res.body);
    const out = await upload('omB1', file);
    expect(out.status).toBe('completed');
    expect(out.progress.rows_failed).toBe(0);
    expect(out.progress.rows_succeeded).toBe(ROWS.length);
    const key = (r: string[]) => `${r[0]}/${r[2]}`;
    const [, ...before] = parse(res.body, { bom: true }) as string[][];
    const [header, ...after] = await csvExport('omB1', 'sector=Utilities');
    expect(after).toHaveLength(ROWS.length);
    const a = new Map(after.map((r) => [key(r), r]));
    const p = header!.indexOf('probability');
    for (const r of before) {
      const r2 = a.get(key(r))!;
      expect(r2.slice(0, BULK_COLUMNS), key(r)).toEqual(r.slice(0, BULK_COLUMNS));
      expect(r2[p]).toBe(r[p]);
      expect(r2[header!.indexOf('access_level')]).toBe('personal');
    }
  });

  it('an XLSX export is formula-safe and uploads again unchanged', async () => {
    const res = await h.api('GET', '/exports/predictions/annual?sector=Utilities&format=xlsx', 'omA1');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    const file = path.join(dir, 'roundtrip.xlsx');
    writeFileSync(file, res.rawPayload);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(file);
    const ws = wb.worksheets[0]!;
    expect(ws.rowCount).toBe(ROWS.length + 1);
    const header = (ws.getRow(1).values as unknown[]).slice(1);
    expect(header).toEqual(predictionExportColumns('annual', false));
    const names = new Set<string>();
    let numbers = 0;
    ws.eachRow((row, n) => {
      if (n === 1) return;
      const v = row.getCell(2).value;
      expect(typeof v).toBe('string');
      names.add(v as string);
      const ratio = row.getCell(4).value;
      expect(ratio === null || typeof ratio === 'number', String(ratio)).toBe(true);
      if (typeof ratio === 'number') numbers++;
    });
    expect(numbers).toBeGreaterThan(0);
    expect(names).toEqual(new Set(NAMES.map((n) => `'${n}`)));
    const out = await upload('oaB1', file);
    expect(out.status).toBe('completed');
    expect(out.progress.rows_failed).toBe(0);
    expect(out.progress.rows_succeeded).toBe(ROWS.length);
    const [hdr, ...after] = await csvExport('oaB1', 'sector=Utilities');
    const [, ...before] = await csvExport('omA1', 'sector=Utilities');
    const key = (r: string[]) => `${r[0]}/${r[2]}`;
    const a = new Map(after.map((r) => [key(r), r]));
    for (const r of before) expect(a.get(key(r))!.slice(0, BULK_COLUMNS)).toEqual(r.slice(0, BULK_COLUMNS));
    expect(hdr).toEqual(predictionExportColumns('annual', false));
  });

  it("a company's history exports with its explanations", async () => {
    const [, first] = await csvExport('omA1', 'sector=Utilities');
    const companyId = first![predictionExportColumns('annual', false).indexOf('company_id')]!;
    const [header, ...rows] = await csvExport('omA1', `company_id=${companyId}&explain=true&sort=reporting_year`);
    expect(header).toEqual(predictionExportColumns('annual', true));
    expect(rows.length).toBeGreaterThan(0);
    for (const f of fieldNamesOf('annual')) {
      const i = header!.indexOf(`${f}_log_odds`);
      for (const r of rows) expect(Number.isFinite(Number(r[i])) && r[i] !== '', `${f}: ${r[i]}`).toBe(true);
    }
    expect(rows.every((r) => r[header!.indexOf('score_band')] !== '')).toBe(true);
  });

  it('the portfolio exports its companies with their latest predictions, under row-level security', async () => {
    const [header, ...rows] = await csvExport('omA1', 'sector=Utilities', 'portfolio');
    expect(header!.slice(0, 2)).toEqual(['company_symbol', 'company_name']);
    expect(rows.map((r) => r[0]).sort()).toEqual(['EX0', 'EX1', 'EX2']);
    const ap = header!.indexOf('annual_probability');
    expect(rows.every((r) => Number(r[ap]) > 0)).toBe(true);
    expect(rows.every((r) => r[header!.indexOf('annual_implied_rating')] !== '')).toBe(true);
    const [, ...none] = await csvExport('omA2', 'sector=Utilities', 'portfolio');
    expect(none).toHaveLength(0);
  });

  it('refuses a bad format or filter naming the field, and an anonymous caller', async () => {
    const bad = await h.api('GET', '/exports/predictions/annual?format=pdf', 'omA1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/format/);
    const year = await h.api('GET', '/exports/predictions/annual?reporting_year=24', 'omA1');
    expect(year.statusCode).toBe(400);
    expect(year.json().error.message).toMatch(/reporting_year/);
    const anon = await h.t.request({ method: 'GET', url: '/api/v1/exports/portfolio' });
    expect(anon.statusCode).toBe(401);
  });

  // Last: it adds 50,000 predictions to organization A2.
  // The export's own backend: app_user, inside a transaction, reading the predictions.
  // (Other app_user sessions of the suite's processes may be busy at any moment.)
  const exportBackends = async () => (await h.db.adminSql<{ pid: number }[]>`
    select pid from pg_stat_activity
    where datname = ${h.db.name} and usename = 'app_user' and state <> 'idle' and xact_start is not null and query ilike '%annual_predictions%'`).map((r) => r.pid);
  /** Which of `pids` are still exporting after up to 200 polls, 50 ms apart. */
  const stillExporting = async (pids: number[]) => {
    let still = pids;
    for (let i = 0; i < 200 && still.length > 0; i++) {
      const now = new Set(await exportBackends());
      still = pids.filter((p) => now.has(p));
      if (still.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    return still;
  };
  it('a client that leaves while the query is still running cancels the statement, ending the transaction at once', async () => {
    const who: Principal = { userId: h.w.users.omA2.id, role: 'org_member', tenantId: null, organizationId: h.w.orgs.A2 };
    // Ten minutes of pg_sleep before the first row: unless the statement is cancelled, `done`
    // does not settle within the test's timeout.
    const e = streamExport(h.db.appSql, who, {
      format: 'csv', header: ['x'], name: 'slow',
      query: (tx) => tx`select pg_sleep(600) as x, 'accunode-slow-export' as tag`,
      cells: (r) => [String(r.x)],
    });
    e.stream.resume();
    const sleeping = async () => (await h.db.adminSql<{ pid: number }[]>`
      select pid from pg_stat_activity where datname = ${h.db.name} and state = 'active' and query like '%accunode-slow-export%' and pid <> pg_backend_pid()`).map((r) => r.pid);
    let pids: number[] = [];
    for (let i = 0; i < 200 && pids.length === 0; i++) {
      pids = await sleeping();
      if (pids.length === 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(pids).toHaveLength(1);
    e.stream.destroy();
    await e.done;
    expect(await sleeping()).toEqual([]);
    const [after] = await h.db.adminSql<{ state: string | null; xact: boolean }[]>`
      select state, xact_start is not null as xact from pg_stat_activity where pid = ${pids[0]!}`;
    // The pooled connection stays, idle and outside any transaction.
    if (after) expect(after).toEqual({ state: 'idle', xact: false });
  });
  it('a client that goes away mid-download ends the export and its transaction', async () => {
    await bigMaterialsBook();
    const url = await h.t.app.listen({ port: 0, host: '127.0.0.1' });
    let paused: number[] = [];
    const firstBytes = await new Promise<number>((resolve, reject) => {
      const req = get(`${url}/api/v1/exports/predictions/annual?sector=Materials`, { headers: { authorization: `Bearer ${h.tok.omA2}` } }, (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', (chunk: Buffer) => {
          // Reading stopped here: the export waits for this reader, inside its transaction.
          res.pause();
          setTimeout(() => {
            void exportBackends().then((pids) => {
              paused = pids;
              req.destroy();
              resolve(chunk.length);
            }, reject);
          }, 200);
        });
      });
      req.on('error', () => {});
    });
    expect(firstBytes).toBeGreaterThan(0);
    expect(paused.length).toBeGreaterThan(0);
    expect(await stillExporting(paused)).toEqual([]);
  });
  it('a reader that stops reading but stays connected is cut off after the stall limit, ending the transaction', async () => {
    await bigMaterialsBook();
    // The previous test started listening; this one also runs alone.
    const url = h.t.app.server.listening ? `http://127.0.0.1:${(h.t.app.server.address() as { port: number }).port}` : await h.t.app.listen({ port: 0, host: '127.0.0.1' });
    let req: ReturnType<typeof get> | undefined;
    const paused = await new Promise<number[]>((resolve, reject) => {
      req = get(`${url}/api/v1/exports/predictions/annual?sector=Materials`, { headers: { authorization: `Bearer ${h.tok.omA2}` } }, (res) => {
        res.once('data', () => {
          res.pause();
          setTimeout(() => void exportBackends().then(resolve, reject), 200);
        });
      });
      req.on('error', () => {});
    });
    expect(paused.length).toBeGreaterThan(0);
    const still = await stillExporting(paused);
    req?.destroy();
    expect(still).toEqual([]);
  });
});
