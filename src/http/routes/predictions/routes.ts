import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ModelKind } from '../../../risk/index.js';
import { impliedRating, REFERENCE_RATING_SCALE, type RatingGrade } from '../../../risk/implied-rating.js';
import { OUTPUT_FIELDS, RATIO_FIELDS } from '../../../repositories/predictions.js';
import type { PredictionService, PredictionView } from '../../../services/predictions.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { IdParams, PageOf, errorResponses } from '../../schemas.js';
import { CreateQuery, ExplainQuery, createBody, listQuery, patchBody, predictionSchema } from './schema.js';

/** The API shape: the contract's snake_case fields, decimals as numbers, ISO timestamps. */
/** A prediction as the API shows it; `scale` is the one implied ratings are read on. */
export function presentPrediction(v: PredictionView, explanation?: unknown, scale: readonly RatingGrade[] = REFERENCE_RATING_SCALE) {
  const out: Record<string, unknown> = {
    id: v.id,
    company: {
      id: v.company_id,
      symbol: v.company_symbol,
      name: v.company_name,
      sector: v.company_sector,
      country: v.company_country,
      exchange: v.company_exchange,
      market_cap: v.company_market_cap,
    },
    reporting_year: v.reporting_year,
  };
  if (v.kind === 'quarterly') out.reporting_quarter = v.reporting_quarter;
  for (const f of [...RATIO_FIELDS[v.kind], ...OUTPUT_FIELDS[v.kind]]) out[f] = v.values[f];
  const pd = v.values[v.kind === 'annual' ? 'probability' : 'ensemble_probability'];
  out.implied_rating = typeof pd === 'number' ? impliedRating(pd, scale) : null;
  Object.assign(out, {
    model: { name: v.model_name, version: v.model_version },
    access_level: v.access_level,
    organization_id: v.organization_id,
    created_by: v.created_by,
    created_at: v.created_at,
    updated_at: v.updated_at,
  });
  if (explanation !== undefined) out.explanation = explanation;
  return out;
}

const ListResponse = (kind: ModelKind) => PageOf(predictionSchema(kind));

export const predictionRoutes: FastifyPluginAsyncTypebox<{ predictions: PredictionService }> = async (app, { predictions }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'predictions' as const };

  for (const kind of ['annual', 'quarterly'] as const) {
    const base = `/predictions/${kind}`;
    const Prediction = predictionSchema(kind);

    app.post(base, {
      schema: {
        tags: ['predictions'],
        summary: `Predict the ${kind} probability of default (company by id, or by symbol + name: created in your scope when absent)`,
        querystring: CreateQuery,
        body: createBody(kind),
        response: { 200: Prediction, 201: Prediction, ...errorResponses },
      },
      config,
    }, async (req, reply) => {
      const { view, created } = await predictions.create(kind, principal(req), req.body as Record<string, unknown>, { upsert: req.query.upsert ?? false }, req.ip);
      const explanation = req.query.explain ? predictions.explain(kind, view.values) : undefined;
      return reply.status(created ? 201 : 200).send(presentPrediction(view, explanation, predictions.ratingScale) as never);
    });

    app.get(base, {
      schema: { tags: ['predictions'], summary: `List ${kind} predictions you can see`, querystring: listQuery(kind), response: { 200: ListResponse(kind), ...errorResponses } },
      config,
    }, async (req) => {
      const q = req.query as Record<string, unknown> & { limit?: number; offset?: number; cursor?: string };
      const page = await predictions.list(kind, principal(req), {
        ...(q.company_id ? { companyId: q.company_id as string } : {}),
        ...(q.symbol ? { symbol: (q.symbol as string).toUpperCase() } : {}),
        ...(q.reporting_year ? { year: q.reporting_year as string } : {}),
        ...(q.reporting_quarter ? { quarter: q.reporting_quarter as string } : {}),
        ...(q.risk_level ? { riskLevel: q.risk_level as never } : {}),
        ...(q.sector ? { sector: q.sector as string } : {}),
        ...(q.access_level ? { accessLevel: q.access_level as never } : {}),
        ...(q.created_from ? { createdFrom: new Date(q.created_from as string) } : {}),
        ...(q.created_to ? { createdTo: new Date(q.created_to as string) } : {}),
      }, { sort: (q.sort as never) ?? '-created_at', limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.offset ? { offset: q.offset } : {}) });
      return { ...page, items: page.items.map((v) => presentPrediction(v, undefined, predictions.ratingScale)) } as never;
    });

    app.get(`${base}/:id`, {
      schema: { tags: ['predictions'], params: IdParams, querystring: ExplainQuery, response: { 200: Prediction, ...errorResponses } },
      config,
    }, async (req) => {
      const v = await predictions.get(kind, principal(req), req.params.id);
      return presentPrediction(v, req.query.explain ? predictions.explain(kind, v.values) : undefined, predictions.ratingScale) as never;
    });

    app.patch(`${base}/:id`, {
      schema: { tags: ['predictions'], summary: 'Change ratios or period; the models run again', params: IdParams, querystring: ExplainQuery, body: patchBody(kind), response: { 200: Prediction, ...errorResponses } },
      config,
    }, async (req) => {
      const v = await predictions.update(kind, principal(req), req.params.id, req.body as Record<string, unknown>, req.ip);
      return presentPrediction(v, req.query.explain ? predictions.explain(kind, v.values) : undefined, predictions.ratingScale) as never;
    });

    app.delete(`${base}/:id`, {
      schema: { tags: ['predictions'], params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
      config,
    }, async (req, reply) => {
      await predictions.remove(kind, principal(req), req.params.id, req.ip);
      return reply.status(204).send(null);
    });
  }
};
