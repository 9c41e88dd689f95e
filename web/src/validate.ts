// Client-side validation mirroring the API's (src/risk/fields.ts validateRatios and
// src/services/prediction-compute.ts): the same rules and wording, so what passes here passes there.
import { ANNUAL_FIELDS, DECIMAL_10_6_MAX, QUARTERLY_FIELDS, roundTo6, type FieldMeta } from '../../src/risk/fields.ts';
import type { Kind } from './api';

export const fieldsOf = (k: Kind): readonly FieldMeta[] => (k === 'annual' ? ANNUAL_FIELDS : QUARTERLY_FIELDS);

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.-]{0,9}$/;
const MIN_YEAR = 1900;
const MAX_YEAR = 2100;

interface RatioCheck {
  /** null = missing (empty) */
  value: number | null;
  error?: string;
  /** not an error: outside the typical range, or rounded */
  warning?: string;
}

/** The decimal and grouping separators of a locale ("en-US" → "." and ","; "de-DE" → "," and "."). */
export function separatorsOf(locale?: string): { decimal: string; group: string } {
  const parts = new Intl.NumberFormat(locale).formatToParts(1234567.5);
  return { decimal: parts.find((p) => p.type === 'decimal')?.value ?? '.', group: parts.find((p) => p.type === 'group')?.value ?? ',' };
}

const defaultLocale = (): string | undefined => (typeof navigator !== 'undefined' ? navigator.language : undefined);

/**
 * Reads a number as the user typed it, in their locale's notation, or says why it cannot:
 * "12,5" is 12.5 where the comma is the decimal mark and refused where it groups thousands
 * (it is never read as 125). Groups must be of three digits; a lone "." or "," that could be
 * either is read as the locale says, and the other one as a decimal only when no grouping fits.
 */
export function parseDecimal(raw: string, locale: string | undefined = defaultLocale()): { value: number } | { error: string } {
  // Spaces (also no-break and narrow no-break) and apostrophes group digits in many locales.
  let s = raw.trim().replace(/[\s\u00a0\u202f']/g, '').replace(/\u2212/g, '-');
  const { decimal } = separatorsOf(locale);
  const hasDot = s.includes('.');
  const hasComma = s.includes(',');
  const grouped = (t: string, g: string) => new RegExp(`^[+-]?\\d{1,3}(\\${g}\\d{3})+(\\${g === ',' ? '.' : ','}\\d*)?$`).test(t);
  if (hasDot && hasComma) {
    // Both marks: the last one is the decimal mark, the other must group thousands.
    const dec = s.lastIndexOf('.') > s.lastIndexOf(',') ? '.' : ',';
    const group = dec === '.' ? ',' : '.';
    if (!grouped(s, group)) return { error: `is not a number we can read: use "${decimal}" for decimals only, e.g. ${decimal === ',' ? '12,5' : '12.5'}` };
    s = s.split(group).join('').replace(dec, '.');
  } else if (hasComma || hasDot) {
    const mark = hasComma ? ',' : '.';
    const count = s.split(mark).length - 1;
    if (mark === decimal && count === 1) s = s.replace(mark, '.');
    else if (mark !== decimal && grouped(s, mark)) s = s.split(mark).join('');
    else if (mark !== decimal && count === 1 && mark === '.') {
      // A point in a comma-decimal locale that cannot be grouping ("12.5"): the universal decimal
      // point, as in spreadsheets and the API. A comma in a point-decimal locale is refused.
    } else return { error: `uses "${mark}" in a way we cannot read safely: write decimals with "${decimal}"${decimal === ',' ? ' (12,5)' : ' (12.5)'}, and leave out thousands separators` };
  }
  if (!NUMBER_RE.test(s)) return { error: 'must be a number (or left empty when not reported)' };
  return { value: Number(s) };
}

export function checkRatio(meta: FieldMeta, raw: string, locale?: string): RatioCheck {
  if (raw.trim() === '') return { value: null };
  const parsed = parseDecimal(raw, locale ?? defaultLocale());
  if ('error' in parsed) return { value: null, error: parsed.error };
  const s = raw.trim();
  const v = parsed.value;
  if (!Number.isFinite(v)) return { value: null, error: `must be a finite number, got ${s}` };
  const r = roundTo6(v);
  if (Math.abs(r) > DECIMAL_10_6_MAX) return { value: null, error: `is too large: it must be between -10,000 and 10,000 (got ${s})` };
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
