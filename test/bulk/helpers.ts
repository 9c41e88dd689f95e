// Bulk test files: realistic ratios from the reference-data generator, written as CSV or XLSX.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ExcelJS from 'exceljs';
import { fieldNamesOf, fieldsOf, generateReferenceData, type ModelKind } from '../../src/risk/index.js';
import { requiredRatios } from '../../src/services/prediction-compute.js';
import { repeatedDeflate, workbookWithSharedStrings } from '../helpers/zip.js';

export type Row = Record<string, string | number | null>;

export function tmpDir(prefix = 'accunode-bulk-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** n rows over n/years companies × years (distinct company+period), symbols S<i>. */
export function makeRows(kind: ModelKind, n: number, opts: { seed?: number; years?: number; symbolPrefix?: string } = {}): Row[] {
  const ds = generateReferenceData(kind, n, opts.seed ?? 7);
  const names = fieldNamesOf(kind);
  const years = opts.years ?? 5;
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const company = Math.floor(i / (kind === 'annual' ? years : years * 4));
    const period = i % (kind === 'annual' ? years : years * 4);
    const r: Row = {
      company_symbol: `${opts.symbolPrefix ?? 'S'}${company}`,
      company_name: `Company ${company}, Inc.`,
      sector: i % 3 === 0 ? 'Industrials' : 'Technology',
      reporting_year: String(2015 + (kind === 'annual' ? period : Math.floor(period / 4))),
    };
    if (kind === 'quarterly') r.reporting_quarter = `Q${(period % 4) + 1}`;
    names.forEach((f, j) => {
      const v = ds.columns[j]![i]!;
      r[f] = Number.isNaN(v) ? null : Math.round(v * 1e4) / 1e4;
    });
    // Uploads need most ratios (PREDICTION_MIN_RATIOS): fill the generator's gaps in the rare rows
    // missing too many, with the middle of the ratio's typical range.
    const need = requiredRatios(kind);
    for (const f of fieldsOf(kind)) {
      if (names.filter((n) => r[n] !== null).length >= need) break;
      if (r[f.name] === null) r[f.name] = (f.typicalRange[0] + f.typicalRange[1]) / 2;
    }
    rows.push(r);
  }
  return rows;
}

export function columnsOf(kind: ModelKind): string[] {
  return ['company_symbol', 'company_name', 'sector', 'reporting_year', ...(kind === 'quarterly' ? ['reporting_quarter'] : []), ...fieldNamesOf(kind)];
}

function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(kind: ModelKind, rows: Row[], header?: string[]): string {
  const cols = columnsOf(kind);
  const head = header ?? cols;
  return [head.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

export function writeCsv(dir: string, name: string, kind: ModelKind, rows: Row[], header?: string[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, toCsv(kind, rows, header));
  return file;
}

export async function writeXlsx(
  dir: string,
  name: string,
  kind: ModelKind,
  rows: Row[],
  opts: { percentFields?: string[]; header?: string[]; cell?: (row: number, col: string, cell: ExcelJS.Cell) => void; sheets?: number; sheetHeader?: (sheet: number) => string[] | undefined } = {},
): Promise<string> {
  const file = path.join(dir, name);
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useStyles: true, useSharedStrings: true });
  const cols = columnsOf(kind);
  // Rows split evenly over `sheets` worksheets, each starting with the header (as a long export).
  const sheets = opts.sheets ?? 1;
  const perSheet = Math.ceil(rows.length / sheets);
  let ws = wb.addWorksheet('Data');
  ws.addRow(opts.header ?? cols).commit();
  const pct = new Set(opts.percentFields ?? []);
  rows.forEach((r, i) => {
    if (i > 0 && i % perSheet === 0) {
      ws.commit();
      const n = i / perSheet + 1;
      ws = wb.addWorksheet(`Data ${n}`);
      ws.addRow(opts.sheetHeader?.(n) ?? opts.header ?? cols).commit();
    }
    const row = ws.addRow(
      cols.map((c) => {
        const v = r[c];
        if (v === null || v === undefined) return null;
        if (pct.has(c) && typeof v === 'number') return v / 100;
        if (c === 'reporting_year') return Number(v);
        return v;
      }),
    );
    cols.forEach((c, j) => {
      if (pct.has(c)) row.getCell(j + 1).numFmt = '0.0000%';
      opts.cell?.(i, c, row.getCell(j + 1));
    });
    row.commit();
  });
  await ws.commit();
  await wb.commit();
  return file;
}

export const SST_HEAD = '<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">';

/**
 * An annual workbook whose zip directory declares xl/sharedStrings.xml as 2,000 bytes while its
 * data inflates to `inflated` bytes of `<si><t>x</t></si>` (the reported attack).
 */
export function sharedStringsBomb(dir: string, inflated: number, name = 'shared-strings-bomb.xlsx'): { file: string; inflatedSize: number; size: number } {
  const unit = '<si><t>x</t></si>';
  const bomb = repeatedDeflate(SST_HEAD, unit, Math.ceil(inflated / unit.length), '</sst>');
  const buf = workbookWithSharedStrings(columnsOf('annual'), { stored: bomb.data, declaredSize: 2000 });
  const file = path.join(dir, name);
  writeFileSync(file, buf);
  return { file, inflatedSize: bomb.inflatedSize, size: buf.length };
}
