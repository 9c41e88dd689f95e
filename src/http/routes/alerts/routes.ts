// Watch lists, the alert inbox and webhooks (migration 0070, services/alerts.ts).
//   GET/POST /watches, DELETE /watches/{id}
//   GET /alerts (?unread=true), GET /alerts/unread-count, POST /alerts/read {ids | all}
//   GET /webhooks, PUT /webhooks {url, access_level} → the secret, once; DELETE /webhooks/{id};
//   GET /webhooks/{id}/deliveries (the delivery log)
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Sql, TxSql } from '../../../db/pool.js';
import { withUserTx } from '../../../db/tx.js';
import { DomainError } from '../../../domain/errors.js';
import type { Principal } from '../../../domain/principal.js';
import * as repo from '../../../repositories/alerts.js';
import { newWebhookSecret, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../../services/alerts.js';
import { webhookTargetProblem } from '../../../services/webhook-target.js';
import { principal, requireAuth } from '../../plugins/auth.js';
import { IdParams, Uuid, errorResponses } from '../../schemas.js';

const Level = Type.Union([Type.Literal('personal'), Type.Literal('organization')], { description: 'personal (yours) or organization (your organization\'s)' });

function scopeOf(who: Principal, level: 'personal' | 'organization' | undefined): { access_level: 'personal' | 'organization'; organization_id: string | null } {
  if ((level ?? 'personal') === 'personal') return { access_level: 'personal', organization_id: null };
  if (!who.organizationId) throw new DomainError('validation_failed', 'access_level: you are not a member of an organization, so only a personal list is possible', [{ field: 'access_level', message: 'not a member of an organization' }]);
  return { access_level: 'organization', organization_id: who.organizationId };
}

/** A refusal by row-level security (42501) is a 403 with a plain reason, not a 500. */
async function asUser<T>(sql: Sql, who: Principal, what: string, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  try {
    return await withUserTx(sql, who.userId, fn);
  } catch (err) {
    if ((err as { code?: string }).code === '42501') throw new DomainError('forbidden', `you may not ${what}`);
    throw err;
  }
}

const Ok = { 200: Type.Unknown(), 201: Type.Unknown(), 204: Type.Null(), ...errorResponses };
const iso = (d: unknown) => (d ? new Date(d as string).toISOString() : null);

export const alertRoutes: FastifyPluginAsyncTypebox<{ sql: Sql; allowPrivateTargets?: boolean }> = async (app, { sql, allowPrivateTargets }) => {
  app.addHook('preHandler', requireAuth);
  const config = { rateLimitClass: 'default' as const };

  app.get('/watches', { schema: { tags: ['alerts'], summary: 'Your watch list and your organization\'s', response: Ok }, config }, async (req) => {
    const rows = await withUserTx(sql, principal(req).userId, (tx) => repo.listWatches(tx));
    return { items: rows.map((r) => ({ ...r, pd_threshold: Number(r.pd_threshold), created_at: iso(r.created_at) })) };
  });

  app.post('/watches', {
    schema: {
      tags: ['alerts'],
      summary: 'Watch a company: alerts when its risk level or implied rating changes, or its PD moves by more than pd_threshold',
      body: Type.Object({
        company_id: Uuid,
        access_level: Type.Optional(Level),
        pd_threshold: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'a fraction: 0.01 = one percentage point (default)' })),
      }, { additionalProperties: false }),
      response: Ok,
    },
    config,
  }, async (req, reply) => {
    const who = principal(req);
    const scope = scopeOf(who, req.body.access_level);
    const id = await asUser(sql, who, 'add to this watch list', async (tx) => {
      if (!(await repo.companyVisible(tx, req.body.company_id))) throw new DomainError('not_found', 'company_id: company not found', [{ field: 'company_id', message: 'not found' }]);
      return repo.insertWatch(tx, { company_id: req.body.company_id, ...scope, created_by: who.userId, pd_threshold: req.body.pd_threshold ?? 0.01 });
    });
    if (!id) throw new DomainError('conflict', 'this company is already on that watch list');
    return reply.status(201).send({ id, company_id: req.body.company_id, ...scope, pd_threshold: req.body.pd_threshold ?? 0.01 });
  });

  app.delete('/watches/:id', { schema: { tags: ['alerts'], params: IdParams, response: Ok }, config }, async (req, reply) => {
    const who = principal(req);
    const ok = await asUser(sql, who, 'remove this watch', (tx) => repo.deleteWatch(tx, req.params.id));
    if (!ok) throw new DomainError('not_found', 'watch not found (or not yours to remove)');
    return reply.status(204).send(null);
  });

  app.get('/alerts', {
    schema: {
      tags: ['alerts'],
      summary: 'Your alert inbox, newest first, with the unread count',
      querystring: Type.Object({ unread: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })) }, { additionalProperties: false }),
      response: Ok,
    },
    config,
  }, async (req) => {
    const [items, unread] = await withUserTx(sql, principal(req).userId, (tx) => Promise.all([repo.listAlerts(tx, { unread: !!req.query.unread, limit: req.query.limit ?? 50 }), repo.unreadCount(tx)]));
    return {
      unread,
      items: items.map((a) => ({ ...a, old_probability: a.old_probability === null ? null : Number(a.old_probability), new_probability: Number(a.new_probability), read_at: iso(a.read_at), created_at: iso(a.created_at) })),
    };
  });

  app.get('/alerts/unread-count', { schema: { tags: ['alerts'], response: Ok }, config }, async (req) => ({
    unread: await withUserTx(sql, principal(req).userId, (tx) => repo.unreadCount(tx)),
  }));

  app.post('/alerts/read', {
    schema: {
      tags: ['alerts'],
      summary: 'Mark alerts read: the given ids, or all',
      body: Type.Union([
        Type.Object({ ids: Type.Array(Uuid, { minItems: 1, maxItems: 500 }) }, { additionalProperties: false }),
        Type.Object({ all: Type.Literal(true) }, { additionalProperties: false }),
      ]),
      response: Ok,
    },
    config,
  }, async (req) => {
    const body = req.body as { ids?: string[]; all?: true };
    const updated = await withUserTx(sql, principal(req).userId, (tx) => repo.markRead(tx, body.all ? 'all' : body.ids!));
    return { updated };
  });

  app.get('/webhooks', { schema: { tags: ['alerts'], summary: 'Where your alerts (and your organization\'s) are delivered', response: Ok }, config }, async (req) => {
    const rows = await withUserTx(sql, principal(req).userId, (tx) => repo.listWebhooks(tx));
    return { items: rows.map((r) => ({ ...r, created_at: iso(r.created_at), updated_at: iso(r.updated_at) })), signature_header: SIGNATURE_HEADER, timestamp_header: TIMESTAMP_HEADER };
  });

  app.put('/webhooks', {
    schema: {
      tags: ['alerts'],
      summary: 'Set the webhook alerts are POSTed to; answers with a new signing secret, shown only this once',
      body: Type.Object({
        url: Type.String({ minLength: 8, maxLength: 2000, pattern: '^https?://[^\\s]+$', description: 'http(s) URL' }),
        access_level: Type.Optional(Level),
      }, { additionalProperties: false }),
      response: Ok,
    },
    config,
  }, async (req, reply) => {
    const who = principal(req);
    const scope = scopeOf(who, req.body.access_level);
    if (scope.access_level === 'organization' && !['org_admin', 'tenant_admin', 'super_admin'].includes(who.role)) {
      throw new DomainError('forbidden', "only an organization's administrators may set its webhook");
    }
    const problem = await webhookTargetProblem(req.body.url, { allowPrivate: allowPrivateTargets ?? false });
    if (problem) throw new DomainError('validation_failed', `url: ${problem}`, [{ field: 'url', message: problem }]);
    const secret = newWebhookSecret();
    const w = await asUser(sql, who, "set this webhook", (tx) => repo.replaceWebhook(tx, { ...scope, created_by: who.userId, url: req.body.url, secret }));
    return reply.status(201).send({
      webhook: { ...w, created_at: iso(w.created_at), updated_at: iso(w.updated_at) },
      secret,
      note: `Keep this secret: it is shown only now. Each delivery carries ${SIGNATURE_HEADER}: sha256=HMAC-SHA256(secret, "<${TIMESTAMP_HEADER}>.<body>") in hex.`,
    });
  });

  app.delete('/webhooks/:id', { schema: { tags: ['alerts'], params: IdParams, response: Ok }, config }, async (req, reply) => {
    const ok = await asUser(sql, principal(req), 'remove this webhook', (tx) => repo.deleteWebhook(tx, req.params.id));
    if (!ok) throw new DomainError('not_found', 'webhook not found (or not yours to remove)');
    return reply.status(204).send(null);
  });

  app.get('/webhooks/:id/deliveries', {
    schema: { tags: ['alerts'], summary: 'The delivery log of a webhook, newest first', params: IdParams, response: Ok },
    config,
  }, async (req) => {
    const rows = await withUserTx(sql, principal(req).userId, async (tx) => {
      if (!(await repo.webhookVisible(tx, req.params.id))) throw new DomainError('not_found', 'webhook not found');
      return repo.listDeliveries(tx, req.params.id, 100);
    });
    return { items: rows.map((d) => ({ ...d, created_at: iso(d.created_at), last_attempt_at: iso(d.last_attempt_at), delivered_at: iso(d.delivered_at) })) };
  });
};
