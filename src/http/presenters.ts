// Presenters: what leaves the API. Explicit fields only, so a column added later (a hash, a
// token) never leaks by default; timestamps as ISO 8601 UTC.
import type { UserRow } from '../repositories/users.js';
import type { OrganizationRow, TenantRow } from '../repositories/tenancy.js';
import type { SessionRow } from '../repositories/sessions.js';

const iso = (d: Date | string | null | undefined): string | null =>
  d === null || d === undefined ? null : (d instanceof Date ? d : new Date(d)).toISOString();

export const presentUser = (u: UserRow) => ({
  id: u.id,
  email: u.email,
  username: u.username,
  first_name: u.first_name,
  last_name: u.last_name,
  role: u.role,
  tenant_id: u.tenant_id,
  organization_id: u.organization_id,
  is_active: u.is_active,
  is_verified: u.is_verified,
  created_at: iso(u.created_at)!,
  updated_at: iso(u.updated_at)!,
});

export const presentTenant = (t: TenantRow) => ({
  id: t.id,
  name: t.name,
  domain: t.domain,
  is_active: t.is_active,
  created_at: iso(t.created_at)!,
  updated_at: iso(t.updated_at)!,
});

export const presentOrganization = (o: OrganizationRow) => ({
  id: o.id,
  tenant_id: o.tenant_id,
  name: o.name,
  description: o.description,
  is_active: o.is_active,
  max_members: o.max_members,
  join_token_expires_at: iso(o.join_token_expires_at),
  created_at: iso(o.created_at)!,
  updated_at: iso(o.updated_at)!,
});

export const presentSession = (s: SessionRow & { current: boolean }) => ({
  id: s.id,
  created_at: iso(s.created_at)!,
  last_activity: iso(s.last_activity)!,
  expires_at: iso(s.expires_at)!,
  ip: s.ip,
  user_agent: s.user_agent,
  current: s.current,
});
