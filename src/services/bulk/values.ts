/**
 * Bulk-file cells → the values the shared prediction computation takes: header normalisation,
 * missing-value tokens, numeric conversion with reasons. Pure.
 */
import { fieldNamesOf, fieldsOf, type FieldError, type ModelKind } from '../../risk/index.js';
import { computePrediction, normalizeCompanyInput, type CompanyInput, type ComputeOptions, type ComputedPrediction } from '../prediction-compute.js';
import type { RiskEngine } from '../../risk/index.js';

/** A cell formula (XLSX): rejected, the file must hold values. */
export const FORMULA = Object.freeze({ formula: true as const });
/** What a reader yields per cell: text (CSV, XLSX strings), a number (XLSX), a formula marker, or nothing. */
export type Cell = string | number | typeof FORMULA | null | undefined;

/** "Company Symbol", "company-symbol", "COMPANY_SYMBOL" → "company_symbol". */
function canonicalHeader(h: string): string {
  return h
    .replace(/^\uFEFF/, '')
    .trim()
    .toLowerCase()
    .replace(/[\s\-_]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

const ALIASES: Readonly<Record<string, string>> = {
  symbol: 'company_symbol',
  ticker: 'company_symbol',
  name: 'company_name',
  company: 'company_name',
  year: 'reporting_year',
  quarter: 'reporting_quarter',
  sector: 'sector',
  country: 'country',
  exchange: 'exchange',
  market_cap: 'market_cap',
  marketcap: 'market_cap',
};

const COMPANY_COLUMNS = ['company_symbol', 'company_name', 'market_cap', 'sector', 'country', 'exchange'] as const;

export function requiredColumns(kind: ModelKind): string[] {
  return ['company_symbol', 'company_name', 'reporting_year', ...(kind === 'quarterly' ? ['reporting_quarter'] : []), ...fieldNamesOf(kind)];
}

function knownColumns(kind: ModelKind): string[] {
  return [...new Set([...requiredColumns(kind), ...COMPANY_COLUMNS])];
}

export class BulkFileError extends Error {
  constructor(
    readonly code:
      | 'empty_file'
      | 'no_header'
      | 'missing_columns'
      | 'duplicate_columns'
      | 'wrong_content'
      | 'line_too_long'
      | 'zip_bomb'
      | 'bad_xlsx'
      | 'malformed_csv'
      | 'too_many_rows',
    message: string,
  ) {
    super(message);
    this.name = 'BulkFileError';
  }
}

interface HeaderMap {
  /** canonical column name → cell index */
  index: Map<string, number>;
  /** columns present in the file but not used */
  ignored: string[];
}

/** Maps the header row to known columns; throws BulkFileError when it is not a usable header. */
export function mapHeader(kind: ModelKind, header: readonly Cell[]): HeaderMap {
  const known = new Set(knownColumns(kind));
  const index = new Map<string, number>();
  const ignored: string[] = [];
  const dupes: string[] = [];
  header.forEach((cell, i) => {
    if (cell === null || cell === undefined || typeof cell === 'object') return;
    const text = String(cell);
    let c = canonicalHeader(text);
    if (!known.has(c) && ALIASES[c]) c = ALIASES[c]!;
    if (c === '') return;
    if (!known.has(c)) {
      ignored.push(text.trim());
      return;
    }
    if (index.has(c)) dupes.push(c);
    else index.set(c, i);
  });
  const required = requiredColumns(kind);
  const missing = required.filter((c) => !index.has(c));
  if (index.size < 2) {
    const shown = header
      .slice(0, 8)
      .map((c) => (c === null || c === undefined ? '' : typeof c === 'object' ? '(formula)' : String(c)))
      .join(', ')
      .slice(0, 200);
    throw new BulkFileError(
      'no_header',
      `no header row: the first row must name the columns (${required.join(', ')}); it reads: "${shown}"`,
    );
  }
  if (dupes.length > 0) throw new BulkFileError('duplicate_columns', `columns given twice (after normalising names): ${[...new Set(dupes)].join(', ')}`);
  if (missing.length > 0)
    throw new BulkFileError('missing_columns', `missing columns for a ${kind} upload: ${missing.join(', ')} (found: ${[...index.keys()].join(', ')})`);
  return { index, ignored };
}

const MISSING = new Set(['', 'N/A', 'NA', 'NM', '-']);

/** Empty cells and N/A, NA, NM, "-" (any case, surrounding blanks ignored) are missing values. */
function isMissing(cell: Cell): boolean {
  if (cell === null || cell === undefined) return true;
  if (typeof cell !== 'string') return false;
  return MISSING.has(cell.trim().toUpperCase());
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NONFINITE_RE = /^[+-]?(?:inf|infinity|nan)$/i;

type NumberCell = { ok: true; value: number | null } | { ok: false; message: string };

/**
 * Text or number → number, null (missing) or a reason. Plain decimal notation only: no
 * thousands separators, hex or currency; a trailing "%" is allowed on percent fields (35.2% →
 * 35.2, the unit those fields use).
 */
function toNumber(cell: Cell, percentField: boolean): NumberCell {
  if (isMissing(cell)) return { ok: true, value: null };
  if (typeof cell === 'number') return { ok: true, value: cell };
  if (typeof cell === 'object') return { ok: false, message: 'formulas are not accepted: the file must contain values' };
  let s = String(cell).trim();
  if (percentField && s.endsWith('%')) s = s.slice(0, -1).trim();
  if (NUMBER_RE.test(s)) return { ok: true, value: Number(s) };
  if (NONFINITE_RE.test(s)) return { ok: true, value: s.toLowerCase().includes('nan') ? NaN : s.startsWith('-') ? -Infinity : Infinity };
  return { ok: false, message: `not a number: "${s.length > 40 ? s.slice(0, 40) + '…' : s}"` };
}

/**
 * Text an export (or the errors report) escaped against formula evaluation, "'=X", read back
 * as what it was, "=X": so an exported file uploads again unchanged.
 */
function unescapeFormulaText(s: string): string {
  return /^'[=+\-@\t\r]/.test(s) ? s.slice(1) : s;
}

function toText(cell: Cell): string | null | typeof FORMULA {
  if (isMissing(cell)) return null;
  if (typeof cell === 'object') return FORMULA;
  if (typeof cell === 'number') return String(cell);
  return unescapeFormulaText(cell!);
}

export interface RowError {
  line: number;
  column: string | null;
  value: string | null;
  reason: string;
}

type ConvertedRow = { ok: true; company: CompanyInput; computed: ComputedPrediction } | { ok: false; errors: RowError[] };

function cellText(cell: Cell): string | null {
  if (cell === null || cell === undefined) return null;
  if (typeof cell === 'object') return '(formula)';
  return String(cell);
}

/**
 * One data row → company + computed prediction (via the shared computePrediction, so the
 * result equals the single-prediction API's), or the row's errors with column, value, reason.
 */
export function convertRow(engine: RiskEngine, kind: ModelKind, header: HeaderMap, cells: readonly Cell[], line: number, opts: ComputeOptions = {}): ConvertedRow {
  const errors: RowError[] = [];
  const get = (col: string): Cell => {
    const i = header.index.get(col);
    return i === undefined ? undefined : cells[i];
  };
  const err = (col: string, message: string) => errors.push({ line, column: col, value: cellText(get(col)), reason: `${col} ${message}` });

  const raw: Record<string, unknown> = {};
  for (const f of fieldsOf(kind)) {
    const n = toNumber(get(f.name), f.unit === '%');
    if (n.ok) raw[f.name] = n.value;
    else err(f.name, n.message);
  }
  for (const col of ['reporting_year', ...(kind === 'quarterly' ? ['reporting_quarter'] : [])]) {
    const t = toText(get(col));
    if (t === FORMULA) err(col, 'formulas are not accepted: the file must contain values');
    else raw[col] = t === null ? undefined : t;
  }
  const company: Record<string, unknown> = {};
  for (const col of ['company_symbol', 'company_name', 'sector', 'country', 'exchange'] as const) {
    const t = toText(get(col));
    if (t === FORMULA) err(col, 'formulas are not accepted: the file must contain values');
    else company[col.replace(/^company_/, '')] = t;
  }
  const mc = toNumber(get('market_cap'), false);
  if (mc.ok) company.market_cap = mc.value;
  else err('market_cap', mc.message);

  const colOf = (field: string) => field.replace(/^company\./, 'company_').replace(/^company_(market_cap|sector|country|exchange)$/, '$1');
  const fieldErr = (fe: FieldError) => {
    const col = colOf(fe.field);
    errors.push({ line, column: col || null, value: col ? cellText(get(col)) : null, reason: `${col || 'row'} ${fe.message}` });
  };
  const c = normalizeCompanyInput(company, (n) => (n === 'symbol' || n === 'name' ? `company_${n}` : n));
  if (!c.ok) c.errors.forEach(fieldErr);
  // Ratios that failed conversion are left out, so computePrediction reports only the others;
  // they were given, so they do not also count as not reported.
  const unreadable = fieldsOf(kind).some((f) => errors.some((e) => e.column === f.name));
  const p = computePrediction(engine, kind, raw, unreadable ? { minRatios: 0 } : opts);
  if (!p.ok) p.errors.forEach(fieldErr);
  if (errors.length > 0 || !c.ok || !p.ok) return { ok: false, errors };
  return { ok: true, company: c.value, computed: p.value };
}
