import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { CompanyService, CompanyView } from '../../../services/companies.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { IdParams, Nullable, PageOf, Paging, Timestamp, Uuid, errorResponses } from '../../schemas.js';
import type { CompanySort } from '../../../repositories/companies.js';
import type { PredictionRow } from '../../../repositories/predictions.js';
import { presentPrediction } from '../predictions/routes.js';
import type { RatingGrade } from '../../../risk/implied-rating.js';
import { predictionSchema } from '../predictions/schema.js';

const AccessLevel = Type.Union([Type.Literal('personal'), Type.Literal('organization'), Type.Literal('system')]);
const Company = Type.Object({
  id: Uuid,
  symbol: Type.String(),
  name: Type.String(),
  market_cap: Nullable(Type.Number()),
  sector: Nullable(Type.String()),
  country: Nullable(Type.String()),
  exchange: Nullable(Type.String()),
  is_active: Type.Boolean(),
  access_level: AccessLevel,
  organization_id: Nullable(Uuid),
  created_by: Nullable(Uuid),
  created_at: Timestamp,
  updated_at: Timestamp,
});
const Text = (max: number) => Nullable(Type.String({ maxLength: max }));

const presentCompany = (c: CompanyView) => ({
  id: c.id,
  symbol: c.symbol,
  name: c.name,
  market_cap: c.market_cap,
  sector: c.sector,
  country: c.country,
  exchange: c.exchange,
  is_active: c.is_active,
  access_level: c.access_level,
  organization_id: c.organization_id,
  created_by: c.created_by,
  created_at: c.created_at,
  updated_at: c.updated_at,
});

export const companyRoutes: FastifyPluginAsyncTypebox<{ companies: CompanyService; ratingScale?: readonly RatingGrade[] }> = async (app, { companies, ratingScale }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'default' as const };

  app.post('/companies', {
    schema: {
      tags: ['companies'],
      summary: 'Create a company in your scope (symbols are upper-cased; unique within the scope)',
      body: Type.Object(
        {
          symbol: Type.String({ minLength: 1, maxLength: 10 }),
          name: Type.String({ minLength: 1, maxLength: 255 }),
          market_cap: Type.Optional(Nullable(Type.Number({ minimum: 0 }))),
          sector: Type.Optional(Text(100)),
          country: Type.Optional(Text(100)),
          exchange: Type.Optional(Text(50)),
          access_level: Type.Optional(AccessLevel),
        },
        { additionalProperties: false },
      ),
      response: { 201: Company, ...errorResponses },
    },
    config,
  }, async (req, reply) => reply.status(201).send(presentCompany(await companies.create(principal(req), req.body, req.ip))));

  app.get('/companies', {
    schema: {
      tags: ['companies'],
      summary: 'Companies you can see (q: full-text search on names), a keyset page at a time',
      querystring: Type.Object(
        {
          ...Paging,
          sector: Type.Optional(Type.String({ maxLength: 100 })),
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          access_level: Type.Optional(AccessLevel),
          include_inactive: Type.Optional(Type.Boolean()),
          sort: Type.Optional(Type.Union(['created_at', '-created_at', 'name', '-name', 'symbol', '-symbol'].map((s) => Type.Literal(s)))),
        },
        { additionalProperties: false },
      ),
      response: { 200: PageOf(Company), ...errorResponses },
    },
    config,
  }, async (req) => {
    const q = req.query;
    const page = await companies.list(principal(req), {
      ...(q.sector ? { sector: q.sector } : {}),
      ...(q.q ? { q: q.q } : {}),
      ...(q.access_level ? { accessLevel: q.access_level } : {}),
      ...(q.include_inactive ? { includeInactive: true } : {}),
    }, { sort: (q.sort as CompanySort | undefined) ?? (q.q ? 'name' : '-created_at'), limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.offset ? { offset: q.offset } : {}) });
    return { ...page, items: page.items.map(presentCompany) };
  });

  app.get('/companies/:id', {
    schema: { tags: ['companies'], params: IdParams, response: { 200: Company, ...errorResponses } },
    config,
  }, async (req) => presentCompany(await companies.get(principal(req), req.params.id)));

  app.get('/companies/:id/sector-context', {
    schema: {
      tags: ['companies'],
      summary: "Where the company's latest PD sits among the companies of its sector you can see: percentile rank and sector median",
      params: IdParams,
      querystring: Type.Object({ type: Type.Optional(Type.Union([Type.Literal('annual'), Type.Literal('quarterly')])) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          company_id: Type.String(),
          kind: Type.String(),
          sector: Type.Union([Type.String(), Type.Null()]),
          probability: Type.Union([Type.Number(), Type.Null()]),
          peers: Type.Integer({ description: 'companies of the sector you can see with a PD of this kind (this one included)' }),
          percentile: Type.Union([Type.Number({ minimum: 0, maximum: 100 }), Type.Null()], { description: 'share of those peers with a lower PD, ties counted half, in %' }),
          sector_median_probability: Type.Union([Type.Number(), Type.Null()]),
        }),
        ...errorResponses,
      },
    },
    config,
  }, async (req) => companies.sectorContext(principal(req), req.params.id, req.query.type ?? 'annual'));

  app.patch('/companies/:id', {
    schema: {
      tags: ['companies'],
      params: IdParams,
      body: Type.Object(
        {
          name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
          market_cap: Type.Optional(Nullable(Type.Number({ minimum: 0 }))),
          sector: Type.Optional(Text(100)),
          country: Type.Optional(Text(100)),
          exchange: Type.Optional(Text(50)),
          is_active: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false, minProperties: 1 },
      ),
      response: { 200: Company, ...errorResponses },
    },
    config,
  }, async (req) => presentCompany(await companies.update(principal(req), req.params.id, req.body, req.ip)));

  app.delete('/companies/:id', {
    schema: {
      tags: ['companies'],
      summary: 'Deactivate a company (its predictions stay); with purge=true delete a company entered by mistake, with its predictions (all kept in the audit log)',
      params: IdParams,
      querystring: Type.Object({ purge: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: { 200: Type.Union([Company, Type.Object({ deleted: Type.Object({ annual: Type.Integer(), quarterly: Type.Integer() }) })]), ...errorResponses },
    },
    config,
  }, async (req) => (req.query.purge ? companies.purge(principal(req), req.params.id, req.ip) : presentCompany(await companies.remove(principal(req), req.params.id, req.ip))));

  app.post('/companies/:id/merge', {
    schema: {
      tags: ['companies'],
      summary: 'Merge this company into another: its predictions move there, it is deleted, the audit log keeps both',
      params: IdParams,
      body: Type.Object({ into: Uuid }, { additionalProperties: false }),
      response: { 200: Type.Object({ company: Company, moved: Type.Object({ annual: Type.Integer(), quarterly: Type.Integer() }) }), ...errorResponses },
    },
    config,
  }, async (req) => {
    const r = await companies.merge(principal(req), req.params.id, req.body.into, req.ip);
    return { company: presentCompany(r.company), moved: r.moved };
  });

  const Choice = Type.Intersect([Company, Type.Object({ can_add_predictions: Type.Boolean() })]);
  const view = (r: PredictionRow) => presentPrediction({ ...r, created_at: new Date(r.created_at).toISOString(), updated_at: new Date(r.updated_at).toISOString() }, undefined, ratingScale);
  app.get('/companies/symbol/:symbol', {
    schema: {
      tags: ['companies'],
      summary: 'Every company with this symbol you can see (each with its scope) and their predictions',
      params: Type.Object({ symbol: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9.-]{0,9}$' }) }),
      response: { 200: Type.Object({ symbol: Type.String(), companies: Type.Array(Choice), annual: Type.Array(predictionSchema('annual')), quarterly: Type.Array(predictionSchema('quarterly')) }), ...errorResponses },
    },
    config,
  }, async (req) => {
    const r = await companies.bySymbol(principal(req), req.params.symbol);
    return { symbol: r.symbol, companies: r.companies.map((c) => ({ ...presentCompany(c), can_add_predictions: c.can_add_predictions })), annual: r.annual.map(view), quarterly: r.quarterly.map(view) } as never;
  });
};
