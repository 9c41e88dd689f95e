/**
 * The row errors of a bulk job as CSV (line, column, value, reason, kind), safe to open in a
 * spreadsheet: a cell starting with = + - @ TAB or CR gets a leading single quote, so it is
 * shown as text and never evaluated as a formula (OWASP "CSV injection").
 */
import type { ErrorRecord } from '../../repositories/bulk-jobs.js';

export const ERRORS_CSV_HEADER = 'line,column,value,reason,kind\r\n';

export function safeCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

export function errorsCsvLines(records: readonly ErrorRecord[]): string {
  let out = '';
  for (const e of records) out += `${e.line},${safeCell(e.column_name)},${safeCell(e.value)},${safeCell(e.reason)},${e.kind}\r\n`;
  return out;
}
