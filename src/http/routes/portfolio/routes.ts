// GET /portfolio: companies the caller may see with their latest annual and quarterly
// probability, risk level and a trend of each (the web app's portfolio page).
// GET /portfolio/sectors: the sectors among them (the page's filter).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { PortfolioService } from '../../../services/portfolio.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { Nullable, PageOf, Paging, Uuid, errorResponses } from '../../schemas.js';

const SORTS = ['name', '-name', 'symbol', '-symbol', 'annual_probability', '-annual_probability', 'quarterly_probability', '-quarterly_probability', 'updated', '-updated'] as const;
const RiskLevel = Type.Union(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].map((l) => Type.Literal(l)));
const Point = Type.Object({ period: Type.String(), probability: Type.Number() });
const Item = Type.Object({
  company: Type.Object({ id: Uuid, symbol: Type.String(), name: Type.String(), sector: Nullable(Type.String()), country: Nullable(Type.String()), access_level: Type.String(), organization_id: Nullable(Uuid), created_by: Nullable(Uuid), market_cap: Nullable(Type.Number()) }),
  annual: Nullable(Type.Object({ id: Uuid, probability: Type.Number(), risk_level: Type.String(), reporting_year: Type.String(), created_at: Type.String() })),
  quarterly: Nullable(
    Type.Object({ id: Uuid, probability: Type.Number(), risk_level: Type.String(), reporting_year: Type.String(), reporting_quarter: Type.String(), created_at: Type.String() }),
  ),
  trend: Type.Object({ annual: Type.Array(Point), quarterly: Type.Array(Point) }),
});

export const portfolioRoutes: FastifyPluginAsyncTypebox<{ portfolio: PortfolioService }> = async (app, { portfolio }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'default' as const };

  app.get('/portfolio', {
    schema: {
      tags: ['portfolio'],
      summary: 'Companies you can see with their latest annual and quarterly probability of default and a trend of each',
      querystring: Type.Object(
        {
          ...Paging,
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'full-text search on names (or an exact symbol)' })),
          sector: Type.Optional(Type.String({ maxLength: 100 })),
          risk_level: Type.Optional(RiskLevel),
          with_predictions: Type.Optional(Type.Boolean()),
          sort: Type.Optional(Type.Union(SORTS.map((s) => Type.Literal(s)))),
        },
        { additionalProperties: false },
      ),
      response: { 200: PageOf(Item), ...errorResponses },
    },
    config,
  }, async (req) => {
    const q = req.query;
    return portfolio.list(principal(req), {
      ...(q.q ? { q: q.q } : {}),
      ...(q.sector ? { sector: q.sector } : {}),
      ...(q.risk_level ? { riskLevel: q.risk_level } : {}),
      ...(q.with_predictions ? { withPredictions: true } : {}),
    }, { sort: q.sort ?? 'name', limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.offset ? { offset: q.offset } : {}) });
  });

  app.get('/portfolio/sectors', {
    schema: { tags: ['portfolio'], summary: 'Sectors of the companies you can see', response: { 200: Type.Array(Type.String()), ...errorResponses } },
    config,
  }, async (req) => portfolio.sectors(principal(req)));
};
