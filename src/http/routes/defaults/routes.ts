// Issue 15, backtesting. POST /companies/:id/defaults records a default event (a date and a
// source) for a company the caller may modify; GET lists a company's defaults; GET
// /models/:kind/backtest reports, per model version, how the predictions the caller can see did
// on the defaults the caller can see.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { DefaultEventService } from '../../../services/defaults.js';
import { validation } from '../../../domain/errors.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { IdParams, Nullable, Uuid, errorResponses } from '../../schemas.js';

const DefaultEvent = Type.Object({
  id: Uuid,
  company_id: Uuid,
  default_date: Type.String({ description: 'YYYY-MM-DD' }),
  source: Type.String(),
  recorded_by: Nullable(Uuid),
  created_at: Type.String(),
});

export const defaultEventRoutes: FastifyPluginAsyncTypebox<{ defaults: DefaultEventService }> = async (app, { defaults }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'default' as const };

  app.post('/companies/:id/defaults', {
    schema: {
      tags: ['companies'],
      summary: 'Record a default of a company (its creator or an admin of its scope); recording the same date again returns the existing event',
      params: IdParams,
      body: Type.Object(
        {
          date: Type.String({ maxLength: 10, description: 'date of the default, YYYY-MM-DD, not in the future' }),
          source: Type.String({ maxLength: 200, description: 'where the default is known from' }),
        },
        { additionalProperties: false },
      ),
      response: { 200: DefaultEvent, 201: DefaultEvent, ...errorResponses },
    },
    config,
  }, async (req, reply) => {
    const r = await defaults.record(principal(req), req.params.id, req.body, req.ip);
    return reply.status(r.created ? 201 : 200).send(r.event);
  });

  app.get('/companies/:id/defaults', {
    schema: { tags: ['companies'], summary: 'Recorded defaults of a company', params: IdParams, response: { 200: Type.Array(DefaultEvent), ...errorResponses } },
    config,
  }, async (req) => defaults.list(principal(req), req.params.id));

  app.get('/models/:kind/backtest', {
    schema: {
      tags: ['models'],
      summary: 'Backtest per model version over the predictions and defaults you can see: AUC, Brier, calibration, observed default rate per risk level and implied rating',
      params: Type.Object({ kind: Type.String() }, { additionalProperties: false }),
      querystring: Type.Object({ as_of: Type.Optional(Type.String({ maxLength: 10, description: 'YYYY-MM-DD (default today)' })) }, { additionalProperties: false }),
      response: { 200: Type.Unknown({ description: 'see models/README.md, Backtesting' }), ...errorResponses },
    },
    config,
  }, async (req) => {
    const kind = req.params.kind;
    if (kind !== 'annual' && kind !== 'quarterly') throw validation('kind', 'must be "annual" or "quarterly"');
    let asOf: Date | undefined;
    if (req.query.as_of !== undefined) {
      asOf = new Date(`${req.query.as_of}T00:00:00Z`);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(req.query.as_of) || Number.isNaN(asOf.getTime())) throw validation('as_of', 'must be a date written YYYY-MM-DD');
    }
    return defaults.backtest(principal(req), kind, asOf ? { asOf } : {});
  });
};
