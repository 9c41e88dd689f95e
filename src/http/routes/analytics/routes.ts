import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AnalyticsService } from '../../../services/analytics.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { errorResponses } from '../../schemas.js';

const Counts = Type.Record(Type.String(), Type.Integer());

export const analyticsRoutes: FastifyPluginAsyncTypebox<{ analytics: AnalyticsService }> = async (app, { analytics }) => {
  app.addHook('preHandler', requireAuth);
  app.get('/analytics/rating-scale', {
    schema: {
      tags: ['analytics'],
      summary: 'The implied-rating scale PDs are read against: each grade and the highest PD it covers (null: every PD above)',
      response: { 200: Type.Object({ grades: Type.Array(Type.Object({ grade: Type.String(), max_pd: Type.Union([Type.Number(), Type.Null()]) })) }) },
    },
    config: { rateLimitClass: 'default' },
  }, async () => ({ grades: analytics.ratingScale.map((g) => ({ grade: g.grade, max_pd: Number.isFinite(g.maxPd) ? g.maxPd : null })) }));

  app.get('/analytics/by-year', {
    schema: {
      tags: ['analytics'],
      summary: 'Predictions you can see by reporting year (the period the ratios describe), with the average PD per sector',
      querystring: Type.Object({ type: Type.Optional(Type.Union([Type.Literal('annual'), Type.Literal('quarterly')])) }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          type: Type.String(),
          years: Type.Array(Type.Object({
            reporting_year: Type.String(),
            count: Type.Integer(),
            average_probability: Type.Number(),
            sectors: Type.Array(Type.Object({ sector: Type.String(), count: Type.Integer(), average_probability: Type.Number() })),
          })),
        }),
        ...errorResponses,
      },
    },
    config: { rateLimitClass: 'default' },
  }, async (req) => analytics.byYear(principal(req), req.query.type ?? 'annual'));

  app.get('/analytics/summary', {
    schema: {
      tags: ['analytics'],
      summary: 'Risk statistics over the predictions you can see, for the period containing `date` (UTC)',
      querystring: Type.Object(
        {
          period: Type.Optional(Type.Union([Type.Literal('day'), Type.Literal('week'), Type.Literal('month'), Type.Literal('year')])),
          date: Type.Optional(Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' })),
          type: Type.Optional(Type.Union([Type.Literal('annual'), Type.Literal('quarterly')])),
        },
        { additionalProperties: false },
      ),
      response: {
        200: Type.Object({
          type: Type.String(),
          period: Type.String(),
          from: Type.String(),
          to: Type.String(),
          total: Type.Integer(),
          average_probability: Type.Union([Type.Number(), Type.Null()]),
          p95_probability: Type.Union([Type.Number(), Type.Null()]),
          by_risk_level: Counts,
          by_sector: Counts,
          by_access_level: Counts,
          histogram: Type.Array(Type.Object({ from: Type.Number(), to: Type.Number(), count: Type.Integer() })),
          top_risk: Type.Array(Type.Object({}, { additionalProperties: true })),
          trend: Type.Array(Type.Object({ bucket: Type.String(), count: Type.Integer(), average_probability: Type.Number() })),
          generated_at: Type.String(),
        }),
        ...errorResponses,
      },
    },
    config: { rateLimitClass: 'default' },
  }, async (req) =>
    analytics.summary(principal(req), {
      period: req.query.period ?? 'month',
      date: req.query.date ?? new Date().toISOString().slice(0, 10),
      type: req.query.type ?? 'annual',
    }),
  );
};
