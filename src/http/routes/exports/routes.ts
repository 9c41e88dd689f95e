// GET /exports/predictions/{annual|quarterly} and GET /exports/portfolio: every row the list's
// filters match, as CSV or XLSX, streamed (services/exports.ts). The filters are the lists' own
// (same names, same validation), without paging.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import type { ExportService, ExportStream } from '../../../services/exports.js';
import type { FastifyReply } from 'fastify';
import { principal, requireAuth } from '../../plugins/auth.js';
import { errorResponses } from '../../schemas.js';
import { listQuery } from '../predictions/schema.js';

const Format = Type.Union([Type.Literal('csv'), Type.Literal('xlsx')], { default: 'csv', description: 'csv (UTF-8) or xlsx' });
const RiskLevel = Type.Union(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].map((l) => Type.Literal(l)));
const File = { 200: Type.Unsafe({ description: 'the file (text/csv or XLSX), streamed' }), ...errorResponses };

function withoutPaging(schema: { properties: Record<string, TSchema> }): Record<string, TSchema> {
  const { limit: _l, cursor: _c, offset: _o, ...rest } = schema.properties;
  return rest;
}

function send(reply: FastifyReply, e: ExportStream) {
  // A client that goes away must end the export at once: its transaction holds a pooled
  // connection while it waits for a reader. Fastify does not always destroy a piped payload on a
  // premature close (seen under load in CI: the export kept its transaction 10 s after the
  // client left), so the response's own close does it.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished && !e.stream.destroyed) e.stream.destroy();
  });
  return reply
    .header('content-type', e.contentType)
    .header('content-disposition', `attachment; filename="${e.fileName}"`)
    .header('cache-control', 'no-store')
    .send(e.stream);
}

export const exportRoutes: FastifyPluginAsyncTypebox<{ exports: ExportService }> = async (app, { exports }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'default' as const };

  for (const kind of ['annual', 'quarterly'] as const) {
    const querystring = Type.Object(
      {
        ...withoutPaging(listQuery(kind) as never),
        format: Type.Optional(Format),
        explain: Type.Optional(Type.Boolean({ description: "add each prediction's explanation (score, band, completeness, each ratio's log-odds)" })),
      },
      { additionalProperties: false },
    );
    app.get(`/exports/predictions/${kind}`, {
      schema: {
        tags: ['exports'],
        summary: `Every ${kind} prediction the filters match, with the bulk upload's columns (an export uploads again unchanged)`,
        querystring,
        response: File,
      },
      config,
    }, async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const e = exports.predictions(principal(req), kind, {
        ...(q.company_id ? { companyId: q.company_id as string } : {}),
        ...(q.symbol ? { symbol: (q.symbol as string).toUpperCase() } : {}),
        ...(q.reporting_year ? { year: q.reporting_year as string } : {}),
        ...(q.reporting_quarter ? { quarter: q.reporting_quarter as string } : {}),
        ...(q.risk_level ? { riskLevel: q.risk_level as never } : {}),
        ...(q.sector ? { sector: q.sector as string } : {}),
        ...(q.access_level ? { accessLevel: q.access_level as never } : {}),
        ...(q.created_from ? { createdFrom: new Date(q.created_from as string) } : {}),
        ...(q.created_to ? { createdTo: new Date(q.created_to as string) } : {}),
        ...(q.sort ? { sort: q.sort as never } : {}),
      }, { format: (q.format as 'csv' | 'xlsx' | undefined) ?? 'csv', explain: q.explain === true });
      return send(reply, e);
    });
  }

  app.get('/exports/portfolio', {
    schema: {
      tags: ['exports'],
      summary: 'Every company of the portfolio the filters match, with its latest annual and quarterly probability of default',
      querystring: Type.Object(
        {
          q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          sector: Type.Optional(Type.String({ maxLength: 100 })),
          risk_level: Type.Optional(RiskLevel),
          with_predictions: Type.Optional(Type.Boolean()),
          format: Type.Optional(Format),
        },
        { additionalProperties: false },
      ),
      response: File,
    },
    config,
  }, async (req, reply) => {
    const q = req.query;
    const e = exports.portfolio(principal(req), {
      ...(q.q ? { q: q.q } : {}),
      ...(q.sector ? { sector: q.sector } : {}),
      ...(q.risk_level ? { riskLevel: q.risk_level } : {}),
      ...(q.with_predictions ? { withPredictions: true } : {}),
    }, { format: q.format ?? 'csv' });
    return send(reply, e);
  });
};
