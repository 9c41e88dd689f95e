import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AdminService } from '../../../services/admin.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { presentOrganization } from '../../presenters.js';
import { IdParams, OrganizationSchema, PageOf, Paging, Timestamp, Uuid, errorResponses, pageRequest } from '../../schemas.js';

const Name = Type.String({ minLength: 1, maxLength: 255 });
const Description = Type.Union([Type.String({ maxLength: 5000 }), Type.Null()]);
const MaxMembers = Type.Integer({ minimum: 1, maximum: 1_000_000 });
const Email = Type.String({ format: 'email', maxLength: 255 });

export const organizationRoutes: FastifyPluginAsyncTypebox<{ admin: AdminService }> = async (app, { admin }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'admin' as const };

  app.get('/organizations', {
    schema: {
      tags: ['organizations'],
      summary: 'Organizations you can see, oldest first, a keyset page at a time',
      querystring: Type.Object({ ...Paging, tenant_id: Type.Optional(Uuid) }, { additionalProperties: false }),
      response: { 200: PageOf(OrganizationSchema), ...errorResponses },
    },
    config,
  }, async (req) => {
    const page = await admin.listOrganizations(principal(req), req.query.tenant_id ? { tenantId: req.query.tenant_id } : {}, pageRequest(req.query));
    return { ...page, items: page.items.map(presentOrganization) };
  });

  app.post('/organizations', {
    schema: {
      tags: ['organizations'],
      summary: 'Create an organization (tenant admin of its tenant, or super admin)',
      body: Type.Object({ tenant_id: Type.Optional(Uuid), name: Name, description: Type.Optional(Description), max_members: Type.Optional(MaxMembers) }, { additionalProperties: false }),
      response: { 201: OrganizationSchema, ...errorResponses },
    },
    config,
  }, async (req, reply) => reply.status(201).send(presentOrganization(await admin.createOrganization(principal(req), req.body, req.ip))));

  app.get('/organizations/:id', {
    schema: { tags: ['organizations'], params: IdParams, response: { 200: OrganizationSchema, ...errorResponses } },
    config,
  }, async (req) => presentOrganization(await admin.getOrganization(principal(req), req.params.id)));

  app.patch('/organizations/:id', {
    schema: {
      tags: ['organizations'],
      params: IdParams,
      body: Type.Object(
        { name: Type.Optional(Name), description: Type.Optional(Description), is_active: Type.Optional(Type.Boolean()), max_members: Type.Optional(MaxMembers) },
        { additionalProperties: false, minProperties: 1 },
      ),
      response: { 200: OrganizationSchema, ...errorResponses },
    },
    config,
  }, async (req) => presentOrganization(await admin.updateOrganization(principal(req), req.params.id, req.body, req.ip)));

  app.delete('/organizations/:id', {
    schema: { tags: ['organizations'], summary: 'Deactivate an organization', params: IdParams, response: { 200: OrganizationSchema, ...errorResponses } },
    config,
  }, async (req) => presentOrganization(await admin.updateOrganization(principal(req), req.params.id, { is_active: false }, req.ip)));

  app.post('/organizations/:id/join-token', {
    schema: {
      tags: ['organizations'],
      summary: 'Issue a new join token (shown once; replaces the previous one)',
      params: IdParams,
      body: Type.Optional(Type.Object({ expires_in_hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 90 })) }, { additionalProperties: false })),
      response: { 201: Type.Object({ token: Type.String(), expires_at: Timestamp }), ...errorResponses },
    },
    config,
  }, async (req, reply) => {
    const t = await admin.rotateJoinToken(principal(req), req.params.id, req.body?.expires_in_hours ?? 168, req.ip);
    return reply.status(201).send({ token: t.token, expires_at: t.expires_at.toISOString() });
  });

  app.delete('/organizations/:id/join-token', {
    schema: { tags: ['organizations'], summary: 'Revoke the join token', params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
    config,
  }, async (req, reply) => {
    await admin.revokeJoinToken(principal(req), req.params.id, req.ip);
    return reply.status(204).send(null);
  });

  app.get('/organizations/:id/whitelist', {
    schema: { tags: ['organizations'], params: IdParams, response: { 200: Type.Array(Type.Object({ email: Type.String(), created_at: Timestamp })), ...errorResponses } },
    config,
  }, async (req) => (await admin.listWhitelist(principal(req), req.params.id)).map((w) => ({ email: w.email, created_at: w.created_at.toISOString() })));

  app.post('/organizations/:id/whitelist', {
    schema: {
      tags: ['organizations'],
      summary: 'Add e-mail addresses that may join',
      params: IdParams,
      body: Type.Object({ emails: Type.Array(Email, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ added: Type.Integer() }), ...errorResponses },
    },
    config,
  }, async (req) => admin.addWhitelist(principal(req), req.params.id, req.body.emails, req.ip));

  app.delete('/organizations/:id/whitelist/:email', {
    schema: {
      tags: ['organizations'],
      params: Type.Object({ id: Uuid, email: Email }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errorResponses },
    },
    config,
  }, async (req, reply) => {
    await admin.removeWhitelist(principal(req), req.params.id, req.params.email, req.ip);
    return reply.status(204).send(null);
  });
};
