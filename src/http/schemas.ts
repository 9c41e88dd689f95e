// Shared TypeBox pieces. Every body schema is closed (additionalProperties: false): an unknown
// field is a 400 naming it, never silently dropped.
import { Type, type TSchema } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', description: 'UUID' });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601, UTC' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
});

export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: "where the page starts: the previous page's next_cursor (opaque)" })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: 'rows to skip, for shallow pages only (at most 1,000); deeper pages use cursor' })),
};

/** A keyset page: `next_cursor` continues it; `total` is exact when total_relation is "eq", a lower bound when "gte". */
export const PageOf = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'pass as ?cursor= for the next page; null on the last page' }),
    limit: Type.Integer(),
    total: Type.Integer({ description: 'matching rows: exact when total_relation is "eq", at least this many when "gte"' }),
    total_relation: Type.Union([Type.Literal('eq'), Type.Literal('gte')]),
  });

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
};

export const RoleSchema = Type.Union([
  Type.Literal('user'),
  Type.Literal('org_member'),
  Type.Literal('org_admin'),
  Type.Literal('tenant_admin'),
  Type.Literal('super_admin'),
]);

export const UserSchema = Type.Object({
  id: Uuid,
  email: Type.String(),
  username: Type.String(),
  first_name: Nullable(Type.String()),
  last_name: Nullable(Type.String()),
  role: RoleSchema,
  tenant_id: Nullable(Uuid),
  organization_id: Nullable(Uuid),
  is_active: Type.Boolean(),
  is_verified: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const TenantSchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  domain: Nullable(Type.String()),
  is_active: Type.Boolean(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const OrganizationSchema = Type.Object({
  id: Uuid,
  tenant_id: Uuid,
  name: Type.String(),
  description: Nullable(Type.String()),
  is_active: Type.Boolean(),
  max_members: Type.Integer(),
  join_token_expires_at: Nullable(Timestamp),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const SessionSchema = Type.Object({
  id: Uuid,
  created_at: Timestamp,
  last_activity: Timestamp,
  expires_at: Timestamp,
  ip: Nullable(Type.String()),
  user_agent: Nullable(Type.String()),
  current: Type.Boolean(),
});

/** The list request of a route with Paging in its query string. */
export function pageRequest(q: { limit?: number; cursor?: string; offset?: number }) {
  return { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.offset ? { offset: q.offset } : {}) };
}
