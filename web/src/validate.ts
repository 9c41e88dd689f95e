// Client-side validation mirroring the API's (src/risk/fields.ts validateRatios and
// src/services/prediction-compute.ts): the same rules and wording, so what passes here passes there.
import { ANNUAL_FIELDS, DECIMAL_10_6_MAX, QUARTERLY_FIELDS, roundTo6, type FieldMeta } from '../../src/risk/fields.ts';
import type { Kind } from './api';

export { ANNUAL_FIELDS, QUARTERLY_FIELDS };
export type { FieldMeta };
export const fieldsOf = (k: Kind): readonly FieldMeta[] => (k === 'annual' ? ANNUAL_FIELDS : QUARTERLY_FIELDS);

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
export const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.-]{0,9}$/;
export const MIN_YEAR = 1900;
export const MAX_YEAR = 2100;

export interface RatioCheck {
  /** null = missing (empty) */
  value: number | null;
  error?: string;
  /** not an error: outside the typical range, or rounded */
  warning?: string;
}

export function checkRatio(meta: FieldMeta, raw: string): RatioCheck {
  const s = raw.trim().replace(/,/g, '');
  if (s === '') return { value: null };
  if (!NUMBER_RE.test(s)) return { value: null, error: 'must be a number (or left empty when not reported)' };
  const v = Number(s);
  if (!Number.isFinite(v)) return { value: null, error: `must be a finite number, got ${s}` };
  const r = roundTo6(v);
  if (Math.abs(r) > DECIMAL_10_6_MAX) return { value: null, error: `out of range: |value| must be below 10000 (DECIMAL(10,6)), got ${s}` };
  const [lo, hi] = meta.typicalRange;
  const warnings: string[] = [];
  if (r !== v) warnings.push(`kept to 6 decimals: ${r}`);
  if (r < lo || r > hi) warnings.push(`unusual: typical values are ${lo} to ${hi}${meta.unit === '%' ? ' %' : ''} (still accepted)`);
  return warnings.length ? { value: r, warning: warnings.join('; ') } : { value: r };
}

export function checkSymbol(raw: string): string | undefined {
  const s = raw.trim().toUpperCase();
  if (!s) return 'is required';
  if (!SYMBOL_RE.test(s)) return 'must be 1-10 characters: letters, digits, "." or "-", starting with a letter or digit';
  return undefined;
}

export function checkYear(raw: string): string | undefined {
  const s = raw.trim();
  if (!s) return 'is required (a four-digit year)';
  if (!/^\d{4}$/.test(s)) return `must be a four-digit year, got "${s}"`;
  const n = Number(s);
  if (n < MIN_YEAR || n > MAX_YEAR) return `must be between ${MIN_YEAR} and ${MAX_YEAR}, got ${s}`;
  return undefined;
}

export function checkText(raw: string, max: number, required: boolean): string | undefined {
  const s = raw.trim();
  if (!s) return required ? 'is required' : undefined;
  if (s.length > max) return `must be at most ${max} characters`;
  return undefined;
}
