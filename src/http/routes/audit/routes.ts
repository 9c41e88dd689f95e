// GET /audit: the audit log, newest first, for tenant admins (their tenant) and super admins.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AdminService } from '../../../services/admin.js';
import type { AuditRow } from '../../../repositories/audit.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { Nullable, PageOf, Paging, Timestamp, Uuid, errorResponses, pageRequest } from '../../schemas.js';

const Entry = Type.Object({
  id: Type.Integer(),
  user_id: Nullable(Uuid),
  tenant_id: Nullable(Uuid),
  organization_id: Nullable(Uuid),
  action: Type.String(),
  table_name: Type.String(),
  row_id: Nullable(Type.String()),
  before: Type.Unknown(),
  after: Type.Unknown(),
  ip: Nullable(Type.String()),
  created_at: Timestamp,
});

const present = (r: AuditRow) => ({ ...r, created_at: new Date(r.created_at).toISOString() });

export const auditRoutes: FastifyPluginAsyncTypebox<{ admin: AdminService }> = async (app, { admin }) => {
  app.addHook('preHandler', requireAuth);
  app.get('/audit', {
    schema: {
      tags: ['audit'],
      summary: 'The audit log, newest first, a keyset page at a time (tenant admins: their tenant; super admins: all)',
      querystring: Type.Object(
        {
          ...Paging,
          table: Type.Optional(Type.String({ pattern: '^[a-z_]{1,63}$' })),
          row_id: Type.Optional(Type.String({ maxLength: 100 })),
          user_id: Type.Optional(Uuid),
          action: Type.Optional(Type.String({ pattern: '^[a-z_]{1,50}$' })),
          from: Type.Optional(Type.String({ format: 'date-time' })),
          to: Type.Optional(Type.String({ format: 'date-time' })),
        },
        { additionalProperties: false },
      ),
      response: { 200: PageOf(Entry), ...errorResponses },
    },
    config: { rateLimitClass: 'admin' },
  }, async (req) => {
    const q = req.query;
    const page = await admin.listAudit(principal(req), {
      ...(q.table ? { table: q.table } : {}),
      ...(q.row_id ? { rowId: q.row_id } : {}),
      ...(q.user_id ? { userId: q.user_id } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.from ? { from: new Date(q.from) } : {}),
      ...(q.to ? { to: new Date(q.to) } : {}),
    }, pageRequest(q));
    return { ...page, items: page.items.map(present) };
  });
};
