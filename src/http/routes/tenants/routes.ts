import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AdminService } from '../../../services/admin.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { presentTenant } from '../../presenters.js';
import { IdParams, PageOf, Paging, TenantSchema, errorResponses, pageRequest } from '../../schemas.js';

const Name = Type.String({ minLength: 1, maxLength: 255 });
const Domain = Type.Union([Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9.-]+$' }), Type.Null()]);

export const tenantRoutes: FastifyPluginAsyncTypebox<{ admin: AdminService }> = async (app, { admin }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'admin' as const };

  app.get('/tenants', {
    schema: { tags: ['tenants'], summary: 'Tenants you can see, oldest first, a keyset page at a time', querystring: Type.Object(Paging, { additionalProperties: false }), response: { 200: PageOf(TenantSchema), ...errorResponses } },
    config,
  }, async (req) => {
    const page = await admin.listTenants(principal(req), pageRequest(req.query));
    return { ...page, items: page.items.map(presentTenant) };
  });

  app.post('/tenants', {
    schema: { tags: ['tenants'], summary: 'Create a tenant (super admin)', body: Type.Object({ name: Name, domain: Type.Optional(Domain) }, { additionalProperties: false }), response: { 201: TenantSchema, ...errorResponses } },
    config,
  }, async (req, reply) => reply.status(201).send(presentTenant(await admin.createTenant(principal(req), req.body, req.ip))));

  app.get('/tenants/:id', {
    schema: { tags: ['tenants'], params: IdParams, response: { 200: TenantSchema, ...errorResponses } },
    config,
  }, async (req) => presentTenant(await admin.getTenant(principal(req), req.params.id)));

  app.patch('/tenants/:id', {
    schema: {
      tags: ['tenants'],
      params: IdParams,
      body: Type.Object({ name: Type.Optional(Name), domain: Type.Optional(Domain), is_active: Type.Optional(Type.Boolean()) }, { additionalProperties: false, minProperties: 1 }),
      response: { 200: TenantSchema, ...errorResponses },
    },
    config,
  }, async (req) => presentTenant(await admin.updateTenant(principal(req), req.params.id, req.body, req.ip)));
};
