import { Type, type TSchema } from 'typebox';
import { ANNUAL_FIELDS, QUARTERLY_FIELDS, DECIMAL_10_6_MAX, type ModelKind } from '../../../risk/index.js';
import { Nullable, Paging, Timestamp, Uuid } from '../../schemas.js';

const AccessLevel = Type.Union([Type.Literal('personal'), Type.Literal('organization'), Type.Literal('system')]);
const RiskLevel = Type.Union([Type.Literal('LOW'), Type.Literal('MEDIUM'), Type.Literal('HIGH'), Type.Literal('CRITICAL')]);
const Probability = (description: string) => Type.Number({ minimum: 0, maximum: 1, description: `${description}; a fraction in [0, 1]` });

/**
 * Ratios are typed loosely in the request (number or null) and checked by the risk engine's own
 * validation, so that NaN-like, out-of-range and wrong-typed values come back as 422 naming the
 * field with the same wording as bulk uploads.
 */
function ratioProps(kind: ModelKind, forRequest: boolean): Record<string, TSchema> {
  const fields = kind === 'annual' ? ANNUAL_FIELDS : QUARTERLY_FIELDS;
  const out: Record<string, TSchema> = {};
  for (const f of fields) {
    const description = `${f.label} (${f.unit === '%' ? 'percent units: 25.5 means 25.5 %' : 'times'}); typical ${f.typicalRange[0]}..${f.typicalRange[1]}; null = missing`;
    const schema = Nullable(Type.Number({ description, minimum: -DECIMAL_10_6_MAX, maximum: DECIMAL_10_6_MAX }));
    out[f.name] = forRequest ? Type.Optional(Type.Unsafe<number | null>({ description, anyOf: [{ type: 'number' }, { type: 'null' }, { type: 'string' }] })) : schema;
  }
  return out;
}

const CompanyRef = Type.Object(
  {
    symbol: Type.Unsafe<string>({ type: 'string', description: 'ticker, 1-10 of A-Z 0-9 . - (upper-cased)' }),
    name: Type.Unsafe<string>({ type: 'string', description: 'company name (required when the company is created)' }),
    market_cap: Type.Optional(Type.Unsafe<number | null>({ description: 'market capitalisation' })),
    sector: Type.Optional(Type.Unsafe<string | null>({})),
    country: Type.Optional(Type.Unsafe<string | null>({})),
    exchange: Type.Optional(Type.Unsafe<string | null>({})),
  },
  { additionalProperties: false },
);

export function createBody(kind: ModelKind) {
  return Type.Object(
    {
      company_id: Type.Optional(Uuid),
      company: Type.Optional(CompanyRef),
      reporting_year: Type.Unsafe<string | number>({ description: 'four-digit year, e.g. "2024"' }),
      ...(kind === 'quarterly' ? { reporting_quarter: Type.Unsafe<string>({ description: 'Q1, Q2, Q3 or Q4' }) } : {}),
      ...ratioProps(kind, true),
      access_level: Type.Optional(AccessLevel),
      new_company: Type.Optional(Type.Boolean({ description: 'with company by symbol: create a separate company in the requested scope even though the caller already sees one with this symbol (otherwise 409 lists the choices)' })),
    },
    { additionalProperties: false },
  );
}

export function patchBody(kind: ModelKind) {
  return Type.Object(
    {
      reporting_year: Type.Optional(Type.Unsafe<string | number>({})),
      ...(kind === 'quarterly' ? { reporting_quarter: Type.Optional(Type.Unsafe<string>({})) } : {}),
      ...ratioProps(kind, true),
    },
    { additionalProperties: false, minProperties: 1 },
  );
}

const CompanySummary = Type.Object({
  id: Uuid,
  symbol: Type.String(),
  name: Type.String(),
  sector: Nullable(Type.String()),
  country: Nullable(Type.String()),
  exchange: Nullable(Type.String()),
  market_cap: Nullable(Type.Number()),
});

const Explanation = Type.Object({
  baseline_log_odds: Type.Number(),
  log_odds: Type.Number(),
  step_adjustment: Type.Number(),
  score: Type.Number(),
  score_band: Type.String(),
  completeness: Type.Number(),
  agreement: Type.Number(),
  contributions: Type.Array(Type.Object({}, { additionalProperties: true })),
  top_drivers: Type.Array(Type.Object({ field: Type.String(), label: Type.String(), log_odds: Type.Number(), direction: Type.String() })),
});

export function predictionSchema(kind: ModelKind) {
  const outputs: Record<string, TSchema> =
    kind === 'annual'
      ? {
          probability: Probability('final probability of default (blend)'),
          logistic_probability: Probability('logistic model'),
          step_probability: Probability('step (score band) model'),
        }
      : {
          ensemble_probability: Probability('final probability of default (blend)'),
          logistic_probability: Probability('logistic model'),
          gbm_probability: Probability('gradient-boosted trees'),
          step_probability: Probability('step (score band) model'),
        };
  const props: Record<string, TSchema> = {
    id: Uuid,
    company: CompanySummary,
    reporting_year: Type.String(),
    ...(kind === 'quarterly' ? { reporting_quarter: Type.String() } : {}),
    ...ratioProps(kind, false),
    ...outputs,
    risk_level: RiskLevel,
    implied_rating: Nullable(Type.String({ description: 'the rating grade whose default rate the PD is closest to, on the deployment\'s scale (GET /analytics/rating-scale)' })),
    confidence: Type.Number({ minimum: 0, maximum: 1, description: 'agreement of the component models and completeness of the inputs, in [0, 1]' }),
    model: Type.Object({ name: Nullable(Type.String()), version: Nullable(Type.String()) }),
    access_level: AccessLevel,
    organization_id: Nullable(Uuid),
    created_by: Nullable(Uuid),
    created_at: Timestamp,
    updated_at: Timestamp,
    explanation: Type.Optional(Explanation),
  };
  return Type.Object(props);
}

export function listQuery(kind: ModelKind) {
  return Type.Object(
    {
      ...Paging,
      company_id: Type.Optional(Uuid),
      symbol: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9.-]{0,9}$' })),
      reporting_year: Type.Optional(Type.String({ pattern: '^[0-9]{4}$' })),
      ...(kind === 'quarterly' ? { reporting_quarter: Type.Optional(Type.Union([Type.Literal('Q1'), Type.Literal('Q2'), Type.Literal('Q3'), Type.Literal('Q4')])) } : {}),
      risk_level: Type.Optional(RiskLevel),
      sector: Type.Optional(Type.String({ maxLength: 100 })),
      access_level: Type.Optional(AccessLevel),
      created_from: Type.Optional(Type.String({ format: 'date-time' })),
      created_to: Type.Optional(Type.String({ format: 'date-time' })),
      sort: Type.Optional(
        Type.Union(['created_at', '-created_at', 'probability', '-probability', 'reporting_year', '-reporting_year'].map((s) => Type.Literal(s))),
      ),
    },
    { additionalProperties: false },
  );
}

export const ExplainQuery = Type.Object({ explain: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const CreateQuery = Type.Object({ explain: Type.Optional(Type.Boolean()), upsert: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
