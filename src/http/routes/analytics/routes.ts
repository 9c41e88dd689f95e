import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AnalyticsService } from '../../../services/analytics.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { errorResponses } from '../../schemas.js';

const Counts = Type.Record(Type.String(), Type.Integer());

export const analyticsRoutes: FastifyPluginAsyncTypebox<{ analytics: AnalyticsService }> = async (app, { analytics }) => {
  app.addHook('preHandler', requireAuth);
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
