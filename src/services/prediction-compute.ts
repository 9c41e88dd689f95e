/**
 * The single-row prediction computation shared by the single-prediction API and bulk uploads,
 * so that a bulk row and an API call with the same inputs give the same stored prediction:
 * the same validation (validateRatios), the same engine outputs (rounded to 6 decimals by the
 * engine), the same risk level, model name/version, period rules and company scope rules.
 *
 * Pure: no I/O. Callers that read text (CSV, XLSX) convert cells to numbers or null first
 * (see src/services/bulk/values.ts); validateRatios deliberately rejects numeric strings.
 */
import { creatableLevels, defaultLevel, type AccessLevel } from '../domain/access.js';
import type { Principal } from '../domain/principal.js';
import { roleName, scopeName } from '../domain/wording.js';
import {
  fieldNamesOf,
  validateRatios,
  type AnnualRatios,
  type FieldError,
  type ModelKind,
  type QuarterlyRatios,
  type RiskEngine,
  type RiskLevel,
} from '../risk/index.js';


const QUARTERS = ['Q1', 'Q2', 'Q3', 'Q4'] as const;
type Quarter = (typeof QUARTERS)[number];

const MIN_REPORTING_YEAR = 1900;
const MAX_REPORTING_YEAR = 2100;

interface AnnualOutputs {
  probability: number;
  logistic_probability: number;
  step_probability: number;
  risk_level: RiskLevel;
  confidence: number;
}

interface QuarterlyOutputs {
  ensemble_probability: number;
  logistic_probability: number;
  gbm_probability: number;
  step_probability: number;
  risk_level: RiskLevel;
  confidence: number;
}

interface ComputedBase {
  reporting_year: string;
  model: { name: string; version: string };
}
export interface ComputedAnnual extends ComputedBase {
  kind: 'annual';
  ratios: AnnualRatios;
  outputs: AnnualOutputs;
}
export interface ComputedQuarterly extends ComputedBase {
  kind: 'quarterly';
  reporting_quarter: Quarter;
  ratios: QuarterlyRatios;
  outputs: QuarterlyOutputs;
}
export type ComputedPrediction = ComputedAnnual | ComputedQuarterly;

type Result<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** "2024" or 2024 → "2024" (four digits, 1900..2100). */
function normalizeReportingYear(v: unknown, field = 'reporting_year'): Result<string> {
  let s: string | null = null;
  if (typeof v === 'number' && Number.isInteger(v)) s = String(v);
  else if (typeof v === 'string') s = v.trim();
  if (s === null || s === '') return { ok: false, errors: [{ field, message: 'is required (a four-digit year)' }] };
  if (!/^\d{4}$/.test(s)) return { ok: false, errors: [{ field, message: `must be a four-digit year, got "${String(v)}"` }] };
  const n = Number(s);
  if (n < MIN_REPORTING_YEAR || n > MAX_REPORTING_YEAR)
    return { ok: false, errors: [{ field, message: `must be between ${MIN_REPORTING_YEAR} and ${MAX_REPORTING_YEAR}, got ${s}` }] };
  return { ok: true, value: s };
}

/** "Q1".."Q4" (any case), or 1..4 → "Q1".."Q4". */
function normalizeQuarter(v: unknown, field = 'reporting_quarter'): Result<Quarter> {
  let s: string | null = null;
  if (typeof v === 'number' && Number.isInteger(v)) s = String(v);
  else if (typeof v === 'string') s = v.trim().toUpperCase();
  if (s === null || s === '') return { ok: false, errors: [{ field, message: 'is required (Q1, Q2, Q3 or Q4)' }] };
  if (/^[1-4]$/.test(s)) s = `Q${s}`;
  if (!(QUARTERS as readonly string[]).includes(s)) return { ok: false, errors: [{ field, message: `must be Q1, Q2, Q3 or Q4, got "${String(v)}"` }] };
  return { ok: true, value: s as Quarter };
}

/**
 * Validates the period and ratios of one row and runs the model. `raw` is a flat object as the
 * API body (reporting_year, [reporting_quarter], the kind's ratio fields); other keys (company,
 * access_level, ...) are ignored here. Ratio values must be numbers or null/absent.
 */
/** PREDICTION_MIN_RATIOS: "majority" (more than half) or a count; 0 turns the check off. */
export type MinRatios = 'majority' | number;

export interface ComputeOptions {
  /** Default "majority": a PD from mostly absent inputs is the portfolio average dressed up as a finding. */
  minRatios?: MinRatios;
}

/** How many of a model's ratios must be reported. */
export function requiredRatios(kind: ModelKind, setting: MinRatios = 'majority'): number {
  const n = fieldNamesOf(kind).length;
  return setting === 'majority' ? Math.floor(n / 2) + 1 : Math.min(n, Math.max(0, setting));
}

/**
 * The missing ratios, one error each, when fewer than the required number are reported. Each
 * names the field so a form can mark it and a bulk row can point at the column.
 */
export function checkRatiosPresent(kind: ModelKind, ratios: Readonly<Record<string, number | null>>, setting?: MinRatios): FieldError[] {
  const names = fieldNamesOf(kind);
  const missing = names.filter((f) => ratios[f] === null || ratios[f] === undefined);
  const need = requiredRatios(kind, setting);
  const given = names.length - missing.length;
  if (given >= need) return [];
  return missing.map((field) => ({
    field,
    message: `is not reported: ${kind === 'annual' ? 'an annual' : 'a quarterly'} prediction needs at least ${need} of its ${names.length} ratios, and ${given === 0 ? 'none was' : given === 1 ? 'only 1 was' : `only ${given} were`} given`,
  }));
}

export function computePrediction(engine: RiskEngine, kind: 'annual', raw: Readonly<Record<string, unknown>>, opts?: ComputeOptions): Result<ComputedAnnual>;
export function computePrediction(engine: RiskEngine, kind: 'quarterly', raw: Readonly<Record<string, unknown>>, opts?: ComputeOptions): Result<ComputedQuarterly>;
export function computePrediction(engine: RiskEngine, kind: ModelKind, raw: Readonly<Record<string, unknown>>, opts?: ComputeOptions): Result<ComputedPrediction>;
export function computePrediction(engine: RiskEngine, kind: ModelKind, raw: Readonly<Record<string, unknown>>, opts: ComputeOptions = {}): Result<ComputedPrediction> {
  const errors: FieldError[] = [];
  const year = normalizeReportingYear(raw.reporting_year);
  if (!year.ok) errors.push(...year.errors);
  let quarter: Result<Quarter> | null = null;
  if (kind === 'quarterly') {
    quarter = normalizeQuarter(raw.reporting_quarter);
    if (!quarter.ok) errors.push(...quarter.errors);
  }
  const ratioInput: Record<string, unknown> = {};
  for (const f of fieldNamesOf(kind)) if (f in raw) ratioInput[f] = raw[f];
  const ratios = validateRatios(kind, ratioInput);
  if (!ratios.ok) errors.push(...ratios.errors);
  else errors.push(...checkRatiosPresent(kind, ratios.value as unknown as Record<string, number | null>, opts.minRatios));
  if (errors.length > 0 || !ratios.ok || !year.ok) return { ok: false, errors };
  if (kind === 'annual') {
    const p = engine.predictAnnual(ratios.value as AnnualRatios);
    return {
      ok: true,
      value: {
        kind,
        reporting_year: year.value,
        ratios: ratios.value as AnnualRatios,
        outputs: {
          probability: p.probability,
          logistic_probability: p.logistic_probability,
          step_probability: p.step_probability,
          risk_level: p.risk_level,
          confidence: p.confidence,
        },
        model: { name: p.model.name, version: p.model.version },
      },
    };
  }
  const p = engine.predictQuarterly(ratios.value as QuarterlyRatios);
  return {
    ok: true,
    value: {
      kind,
      reporting_year: year.value,
      reporting_quarter: (quarter as { ok: true; value: Quarter }).value,
      ratios: ratios.value as QuarterlyRatios,
      outputs: {
        ensemble_probability: p.ensemble_probability,
        logistic_probability: p.logistic_probability,
        gbm_probability: p.gbm_probability,
        step_probability: p.step_probability,
        risk_level: p.risk_level,
        confidence: p.confidence,
      },
      model: { name: p.model.name, version: p.model.version },
    },
  };
}

// ------------------------------------------------------------------------------------------
// Company identification (create-by-symbol+name) and scope
// ------------------------------------------------------------------------------------------

const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.-]{0,9}$/;

export interface CompanyInput {
  symbol: string;
  name: string;
  market_cap: number | null;
  sector: string | null;
  country: string | null;
  exchange: string | null;
}

function optText(v: unknown, field: string, max: number, errors: FieldError[]): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') {
    errors.push({ field, message: `must be text, got ${typeof v}` });
    return null;
  }
  const s = v.trim();
  if (s === '') return null;
  if (s.length > max) errors.push({ field, message: `must be at most ${max} characters` });
  return s;
}

/**
 * A company given by symbol and name (API: `company: {symbol, name, ...}`, bulk: company_symbol,
 * company_name, ...). Symbols are trimmed and upper-cased (the database keeps them upper case).
 * `field(name)` names the field in errors ("company.symbol" for the API, "company_symbol" for bulk).
 */
export function normalizeCompanyInput(
  raw: { symbol?: unknown; name?: unknown; market_cap?: unknown; sector?: unknown; country?: unknown; exchange?: unknown },
  field: (name: keyof CompanyInput) => string = (n) => `company.${n}`,
): Result<CompanyInput> {
  const errors: FieldError[] = [];
  let symbol = '';
  if (typeof raw.symbol !== 'string' || raw.symbol.trim() === '') errors.push({ field: field('symbol'), message: 'is required' });
  else {
    symbol = raw.symbol.trim().toUpperCase();
    if (!SYMBOL_RE.test(symbol))
      errors.push({ field: field('symbol'), message: 'must be 1-10 characters: letters, digits, "." or "-", starting with a letter or digit' });
  }
  const name = optText(raw.name, field('name'), 255, errors);
  if (name === null && !errors.some((e) => e.field === field('name'))) errors.push({ field: field('name'), message: 'is required' });
  let market_cap: number | null = null;
  if (raw.market_cap !== undefined && raw.market_cap !== null) {
    const m = raw.market_cap;
    if (typeof m !== 'number' || !Number.isFinite(m)) errors.push({ field: field('market_cap'), message: 'must be a number' });
    else if (m < 0) errors.push({ field: field('market_cap'), message: 'must not be negative' });
    else if (!Number.isSafeInteger(Math.round(m))) errors.push({ field: field('market_cap'), message: 'is too large' });
    else market_cap = Math.round(m);
  }
  const sector = optText(raw.sector, field('sector'), 100, errors);
  const country = optText(raw.country, field('country'), 100, errors);
  const exchange = optText(raw.exchange, field('exchange'), 50, errors);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { symbol, name: name!, market_cap, sector, country, exchange } };
}

/** Where a new company and its predictions live: the scope a caller creates rows in. */
export interface Scope {
  access_level: AccessLevel;
  /** The owning organization for 'organization' rows; null otherwise. */
  organization_id: string | null;
  created_by: string;
}

/**
 * The scope a principal creates companies and predictions in, for an optional requested access
 * level: the role's default when absent; 'organization' means the caller's own organization.
 * The same rules row-level security enforces (app_can_create), checked first for clear errors.
 */
export function resolveScope(principal: Principal, requested?: AccessLevel | null, field = 'access_level'): Result<Scope> {
  const hasOrg = principal.organizationId !== null;
  const level = requested ?? defaultLevel(principal.role, hasOrg);
  if (level === 'organization' && !principal.organizationId)
    return { ok: false, errors: [{ field, message: 'only members of an organization can share with an organization: join one first' }] };
  if (!creatableLevels(principal.role, hasOrg).includes(level))
    return { ok: false, errors: [{ field, message: `your role (${roleName(principal.role)}) cannot create rows visible to ${scopeName(level)}` }] };
  return {
    ok: true,
    value: {
      access_level: level,
      organization_id: level === 'organization' ? principal.organizationId : null,
      created_by: principal.userId,
    },
  };
}
