/**
 * Columnar labelled data used by training and evaluation, and its CSV form.
 * Missing ratios are NaN inside a Dataset (typed arrays cannot hold null); they become null again
 * at the API boundary and empty cells in CSV.
 */
import { fieldNamesOf, type ModelKind, type RatioField } from './fields.js';

export interface Dataset {
  kind: ModelKind;
  fields: readonly RatioField[];
  /** One column per field, NaN = missing. */
  columns: Float64Array[];
  /** Default flag per row, 0 or 1. */
  y: Uint8Array;
  /** Optional rating label per row (reference data carries it). */
  rating?: string[];
}

/** Rows picked by index, in that order. */
export function subset(ds: Dataset, idx: ArrayLike<number>): Dataset {
  const n = idx.length;
  const columns = ds.columns.map((col) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = col[idx[i]!]!;
    return out;
  });
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) y[i] = ds.y[idx[i]!]!;
  const out: Dataset = { kind: ds.kind, fields: ds.fields, columns, y };
  if (ds.rating) {
    const r = ds.rating;
    out.rating = Array.from({ length: n }, (_, i) => r[idx[i]!]!);
  }
  return out;
}

function formatNumber(x: number): string {
  if (Number.isNaN(x)) return '';
  // Shortest round-trip representation, but never exponent notation (1e-7 style) in CSV.
  const s = String(x);
  return /e/i.test(s) ? x.toFixed(6) : s;
}

export function datasetToCsv(ds: Dataset): string {
  const header = [...ds.fields, ...(ds.rating ? ['rating'] : []), 'defaulted'];
  const lines: string[] = [header.join(',')];
  const n = ds.y.length;
  for (let i = 0; i < n; i++) {
    const cells: string[] = ds.columns.map((c) => formatNumber(c[i]!));
    if (ds.rating) cells.push(ds.rating[i]!);
    cells.push(String(ds.y[i]));
    lines.push(cells.join(','));
  }
  return lines.join('\n') + '\n';
}

/** Splits one CSV line, honouring double quotes (RFC 4180 style, no embedded newlines). */
function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let cur = '';
  let inQ = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (inQ) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else inQ = false;
      } else cur += ch;
    } else if (ch === '"') inQ = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const MISSING_TOKENS = new Set(['', 'na', 'nan', 'null', 'none', 'n/a']);

/**
 * Parses a labelled CSV: a header naming the kind's ratio fields (any order; extra columns such as
 * `rating` or ids are ignored) and a `defaulted` column of 0/1 (or true/false).
 * Throws with the line number on malformed cells, so a bad upload is easy to fix.
 */
export function parseLabelledCsv(kind: ModelKind, text: string): Dataset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new Error('CSV has no data rows');
  const header = splitCsvLine(lines[0]!.replace(/^\uFEFF/, '')).map((h) => h.trim().toLowerCase());
  const fields = fieldNamesOf(kind);
  const colIdx = fields.map((f) => {
    const i = header.indexOf(f);
    if (i < 0) throw new Error(`CSV header lacks the ${kind} field "${f}" (header: ${header.join(', ')})`);
    return i;
  });
  const yIdx = header.indexOf('defaulted');
  if (yIdx < 0) throw new Error('CSV header lacks the "defaulted" column (0/1)');
  const ratingIdx = header.indexOf('rating');
  const n = lines.length - 1;
  const columns = fields.map(() => new Float64Array(n));
  const y = new Uint8Array(n);
  const rating: string[] | undefined = ratingIdx >= 0 ? [] : undefined;
  for (let r = 0; r < n; r++) {
    const cells = splitCsvLine(lines[r + 1]!);
    for (let j = 0; j < fields.length; j++) {
      const raw = (cells[colIdx[j]!] ?? '').trim();
      if (MISSING_TOKENS.has(raw.toLowerCase())) {
        columns[j]![r] = NaN;
        continue;
      }
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new Error(`line ${r + 2}: field "${fields[j]}" is not a finite number: "${raw}"`);
      if (Math.abs(v) >= 10000) throw new Error(`line ${r + 2}: field "${fields[j]}" out of DECIMAL(10,6) range: ${raw}`);
      columns[j]![r] = Math.round(v * 1e6) / 1e6;
    }
    const yr = (cells[yIdx] ?? '').trim().toLowerCase();
    if (yr === '1' || yr === 'true') y[r] = 1;
    else if (yr === '0' || yr === 'false') y[r] = 0;
    else throw new Error(`line ${r + 2}: "defaulted" must be 0 or 1, got "${yr}"`);
    if (rating) rating.push((cells[ratingIdx] ?? '').trim());
  }
  const ds: Dataset = { kind, fields, columns, y };
  if (rating) ds.rating = rating;
  return ds;
}
