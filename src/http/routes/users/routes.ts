import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AdminService } from '../../../services/admin.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { presentUser } from '../../presenters.js';
import { IdParams, Nullable, PageOf, Paging, RoleSchema, UserSchema, Uuid, errorResponses, pageRequest } from '../../schemas.js';

const Name = Nullable(Type.String({ minLength: 1, maxLength: 100 }));

export const userRoutes: FastifyPluginAsyncTypebox<{ admin: AdminService }> = async (app, { admin }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'admin' as const };

  app.get('/users', {
    schema: {
      tags: ['users'],
      summary: 'Users you can see, oldest first, a keyset page at a time',
      querystring: Type.Object({ ...Paging, organization_id: Type.Optional(Uuid), tenant_id: Type.Optional(Uuid), role: Type.Optional(RoleSchema) }, { additionalProperties: false }),
      response: { 200: PageOf(UserSchema), ...errorResponses },
    },
    config,
  }, async (req) => {
    const q = req.query;
    const page = await admin.listUsers(principal(req), {
      ...(q.organization_id ? { organizationId: q.organization_id } : {}),
      ...(q.tenant_id ? { tenantId: q.tenant_id } : {}),
      ...(q.role ? { role: q.role } : {}),
    }, pageRequest(q));
    return { ...page, items: page.items.map(presentUser) };
  });

  app.post('/users', {
    schema: {
      tags: ['users'],
      summary: 'Create a user in your scope, with a role you may grant',
      body: Type.Object(
        {
          email: Type.String({ format: 'email', maxLength: 255 }),
          username: Type.String({ pattern: '^[A-Za-z0-9_.-]{3,100}$' }),
          password: Type.String({ minLength: 1, maxLength: 256 }),
          first_name: Type.Optional(Name),
          last_name: Type.Optional(Name),
          role: RoleSchema,
          organization_id: Type.Optional(Nullable(Uuid)),
          tenant_id: Type.Optional(Nullable(Uuid)),
        },
        { additionalProperties: false },
      ),
      response: { 201: UserSchema, ...errorResponses },
    },
    config,
  }, async (req, reply) => reply.status(201).send(presentUser(await admin.createUser(principal(req), req.body, req.ip))));

  app.get('/users/:id', {
    schema: { tags: ['users'], params: IdParams, response: { 200: UserSchema, ...errorResponses } },
    config,
  }, async (req) => presentUser(await admin.getUser(principal(req), req.params.id)));

  app.patch('/users/:id', {
    schema: {
      tags: ['users'],
      params: IdParams,
      body: Type.Object(
        { first_name: Type.Optional(Name), last_name: Type.Optional(Name), role: Type.Optional(RoleSchema), organization_id: Type.Optional(Nullable(Uuid)), is_active: Type.Optional(Type.Boolean()) },
        { additionalProperties: false, minProperties: 1 },
      ),
      response: { 200: UserSchema, ...errorResponses },
    },
    config,
  }, async (req) => presentUser(await admin.updateUser(principal(req), req.params.id, req.body, req.ip)));

  app.delete('/users/:id', {
    schema: { tags: ['users'], summary: 'Deactivate a user (ends all their sessions)', params: IdParams, response: { 200: UserSchema, ...errorResponses } },
    config,
  }, async (req) => presentUser(await admin.deactivateUser(principal(req), req.params.id, req.ip)));
};
