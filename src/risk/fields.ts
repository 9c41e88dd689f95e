/**
 * Input ratios: names, units, risk directions and validation.
 *
 * Field names are the database column names. Percentages are in percent units (25.5 = 25.5 %).
 * Every stored ratio is DECIMAL(10,6): at most 4 integer digits and 6 decimals, so |x| < 10000
 * after rounding to 6 decimals.
 */

export type ModelKind = 'annual' | 'quarterly';

export const ANNUAL_FIELD_NAMES = [
  'long_term_debt_to_total_capital',
  'total_debt_to_ebitda',
  'net_income_margin',
  'ebit_to_interest_expense',
  'return_on_assets',
] as const;

export const QUARTERLY_FIELD_NAMES = [
  'current_ratio',
  'quick_ratio',
  'debt_to_equity',
  'inventory_turnover',
  'receivables_turnover',
  'working_capital_to_total_assets',
] as const;

export type AnnualField = (typeof ANNUAL_FIELD_NAMES)[number];
export type QuarterlyField = (typeof QUARTERLY_FIELD_NAMES)[number];
export type RatioField = AnnualField | QuarterlyField;

export type AnnualRatios = { [K in AnnualField]: number | null };
export type QuarterlyRatios = { [K in QuarterlyField]: number | null };

/**
 * `risk`: how default risk moves as the value grows. `negativeIsDistress`: the ratio's denominator
 * (EBITDA, equity) can turn negative, which produces a negative ratio that signals distress rather
 * than low leverage; models give such values their own treatment instead of reading them as "very
 * little debt".
 */
export interface FieldMeta {
  readonly name: RatioField;
  readonly label: string;
  readonly unit: '%' | 'x';
  readonly risk: 'increasing' | 'decreasing';
  readonly negativeIsDistress: boolean;
  /** Typical range for UI sliders and sanity hints; values outside it are still accepted. */
  readonly typicalRange: readonly [number, number];
  readonly description: string;
}

export const ANNUAL_FIELDS: readonly FieldMeta[] = [
  {
    name: 'long_term_debt_to_total_capital',
    label: 'Long-term debt / total capital',
    unit: '%',
    risk: 'increasing',
    negativeIsDistress: false,
    typicalRange: [0, 100],
    description: 'Long-term debt divided by (total debt + equity), in percent; above 100 % means negative equity.',
  },
  {
    name: 'total_debt_to_ebitda',
    label: 'Total debt / EBITDA',
    unit: 'x',
    risk: 'increasing',
    negativeIsDistress: true,
    typicalRange: [0, 10],
    description: 'Total debt divided by EBITDA; negative when EBITDA is negative.',
  },
  {
    name: 'net_income_margin',
    label: 'Net income margin',
    unit: '%',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [-20, 30],
    description: 'Net income divided by revenue, in percent.',
  },
  {
    name: 'ebit_to_interest_expense',
    label: 'EBIT / interest expense',
    unit: 'x',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [-2, 30],
    description: 'Interest cover: EBIT divided by interest expense.',
  },
  {
    name: 'return_on_assets',
    label: 'Return on assets',
    unit: '%',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [-15, 20],
    description: 'Net income divided by total assets, in percent.',
  },
];

export const QUARTERLY_FIELDS: readonly FieldMeta[] = [
  {
    name: 'current_ratio',
    label: 'Current ratio',
    unit: 'x',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [0.3, 4],
    description: 'Current assets divided by current liabilities.',
  },
  {
    name: 'quick_ratio',
    label: 'Quick ratio',
    unit: 'x',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [0.1, 3],
    description: '(Current assets - inventory) divided by current liabilities.',
  },
  {
    name: 'debt_to_equity',
    label: 'Debt / equity',
    unit: 'x',
    risk: 'increasing',
    negativeIsDistress: true,
    typicalRange: [0, 6],
    description: 'Total debt divided by shareholders equity; negative when equity is negative.',
  },
  {
    name: 'inventory_turnover',
    label: 'Inventory turnover',
    unit: 'x',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [0.5, 20],
    description: 'Cost of goods sold divided by average inventory.',
  },
  {
    name: 'receivables_turnover',
    label: 'Receivables turnover',
    unit: 'x',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [1, 20],
    description: 'Revenue divided by average receivables.',
  },
  {
    name: 'working_capital_to_total_assets',
    label: 'Working capital / total assets',
    unit: '%',
    risk: 'decreasing',
    negativeIsDistress: false,
    typicalRange: [-20, 40],
    description: '(Current assets - current liabilities) divided by total assets, in percent.',
  },
];

export function fieldsOf(kind: ModelKind): readonly FieldMeta[] {
  return kind === 'annual' ? ANNUAL_FIELDS : QUARTERLY_FIELDS;
}

export function fieldNamesOf(kind: ModelKind): readonly RatioField[] {
  return kind === 'annual' ? ANNUAL_FIELD_NAMES : QUARTERLY_FIELD_NAMES;
}

/** Largest magnitude a DECIMAL(10,6) column stores. */
export const DECIMAL_10_6_MAX = 9999.999999;

/** Rounds to the 6 decimals the database keeps, so what we score is exactly what gets stored. */
export function roundTo6(x: number): number {
  const r = Math.round(x * 1e6) / 1e6;
  // Math.round(-0.4) is -0; normalise so JSON output never shows "-0".
  return r === 0 ? 0 : r;
}

export interface FieldError {
  field: string;
  message: string;
}

type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/**
 * Validates untrusted input (e.g. a parsed JSON body). Missing keys and null/undefined are "not
 * reported" (null); anything else must be a finite number that fits DECIMAL(10,6). Numeric strings
 * are rejected on purpose: callers that parse CSV convert explicitly so mistakes surface there.
 */
export function validateRatios(kind: 'annual', input: unknown): ValidationResult<AnnualRatios>;
export function validateRatios(kind: 'quarterly', input: unknown): ValidationResult<QuarterlyRatios>;
export function validateRatios(kind: ModelKind, input: unknown): ValidationResult<AnnualRatios | QuarterlyRatios>;
export function validateRatios(kind: ModelKind, input: unknown): ValidationResult<AnnualRatios | QuarterlyRatios> {
  const names = fieldNamesOf(kind);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, errors: [{ field: '', message: `expected an object with ${kind} ratio fields` }] };
  }
  const errors: FieldError[] = [];
  const allowed = new Set<string>(names);
  for (const key of Object.keys(input)) {
    if (!allowed.has(key)) errors.push({ field: key, message: `unknown ${kind} ratio field` });
  }
  const out: Record<string, number | null> = {};
  const rec = input as Record<string, unknown>;
  for (const name of names) {
    const v = rec[name];
    if (v === undefined || v === null) {
      out[name] = null;
      continue;
    }
    if (typeof v !== 'number') {
      errors.push({ field: name, message: `must be a number, or left out when not reported (got ${typeof v === 'string' ? 'text' : typeof v})` });
      continue;
    }
    if (!Number.isFinite(v)) {
      errors.push({ field: name, message: `must be a finite number, got ${String(v)}` });
      continue;
    }
    const r = roundTo6(v);
    if (Math.abs(r) > DECIMAL_10_6_MAX) {
      errors.push({ field: name, message: `is too large: it must be between -10,000 and 10,000 (got ${v})` });
      continue;
    }
    out[name] = r;
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: out as AnnualRatios | QuarterlyRatios };
}
