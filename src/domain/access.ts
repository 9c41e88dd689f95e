// The access model of the architecture guide, as plain data for the application's own checks.
// PostgreSQL enforces the same rules with row-level security; these give clear errors first.
export const ROLES = ['user', 'org_member', 'org_admin', 'tenant_admin', 'super_admin'] as const;
export type Role = (typeof ROLES)[number];

export const ACCESS_LEVELS = ['personal', 'organization', 'system'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

export function isRoleAtLeast(role: Role, min: Role): boolean {
  return roleRank(role) >= roleRank(min);
}

/** Levels a role may create rows at (the WITH CHECK side of row-level security). */
export function creatableLevels(role: Role, hasOrganization: boolean): AccessLevel[] {
  if (role === 'super_admin') return ['personal', 'organization', 'system'];
  if (role === 'tenant_admin' || ((role === 'org_member' || role === 'org_admin') && hasOrganization))
    return ['personal', 'organization'];
  return ['personal'];
}

/** The default level of a new row: shared with the organization when the user has one. */
export function defaultLevel(role: Role, hasOrganization: boolean): AccessLevel {
  return (role === 'org_member' || role === 'org_admin') && hasOrganization ? 'organization' : 'personal';
}

/** Mirrors app_can_manage() in SQL: who may change a user holding targetRole in this scope. */
export function canManage(
  actor: { role: Role; tenantId: string | null; organizationId: string | null },
  target: { role: Role; tenantId: string | null; organizationId: string | null },
): boolean {
  switch (actor.role) {
    case 'super_admin':
      return true;
    case 'tenant_admin':
      return actor.tenantId !== null && target.tenantId === actor.tenantId && roleRank(target.role) < roleRank('tenant_admin');
    case 'org_admin':
      return actor.organizationId !== null && target.organizationId === actor.organizationId && roleRank(target.role) < roleRank('org_admin');
    default:
      return false;
  }
}

/** Roles an actor may hand out (never above what it manages). */
export function grantableRoles(role: Role): Role[] {
  switch (role) {
    case 'super_admin':
      return [...ROLES];
    case 'tenant_admin':
      return ['user', 'org_member', 'org_admin'];
    case 'org_admin':
      return ['user', 'org_member'];
    default:
      return [];
  }
}

/** Mirrors the users read policy. */
export function canReadUser(
  actor: { userId: string; role: Role; tenantId: string | null; organizationId: string | null },
  target: { id: string; tenantId: string | null; organizationId: string | null },
): boolean {
  if (actor.userId === target.id || actor.role === 'super_admin') return true;
  if (actor.role === 'tenant_admin') return actor.tenantId !== null && actor.tenantId === target.tenantId;
  if (actor.role === 'org_member' || actor.role === 'org_admin') return actor.organizationId !== null && actor.organizationId === target.organizationId;
  return false;
}

/**
 * Mirrors the read policy on companies and predictions, for rows served from the cache: a
 * cached row reaches only a caller who could have read it from the database.
 */
export function canReadScoped(
  actor: { userId: string; role: Role; tenantId: string | null; organizationId: string | null },
  row: { access_level: AccessLevel; organization_id: string | null; tenant_id: string | null; created_by: string | null },
): boolean {
  if (actor.role === 'super_admin' || row.access_level === 'system') return true;
  if (row.access_level === 'personal') return row.created_by === actor.userId;
  if (row.organization_id === null) return false;
  if ((actor.role === 'org_member' || actor.role === 'org_admin') && actor.organizationId === row.organization_id) return true;
  return actor.role === 'tenant_admin' && actor.tenantId !== null && actor.tenantId === row.tenant_id;
}

/** Mirrors app_can_modify(): the creator (within its level), the organization's admin, the tenant's admin, a super admin. */
export function canModifyScoped(
  actor: { userId: string; role: Role; tenantId: string | null; organizationId: string | null },
  row: { access_level: AccessLevel; organization_id: string | null; tenant_id: string | null; created_by: string | null },
): boolean {
  if (actor.role === 'super_admin') return true;
  if (row.access_level === 'personal') return row.created_by === actor.userId;
  if (row.access_level !== 'organization' || row.organization_id === null) return false;
  if ((actor.role === 'org_member' || actor.role === 'org_admin') && actor.organizationId === row.organization_id)
    return row.created_by === actor.userId || actor.role === 'org_admin';
  return actor.role === 'tenant_admin' && actor.tenantId !== null && actor.tenantId === row.tenant_id;
}

/**
 * Who may add a prediction to a company: whoever may modify it, and any member of the owning
 * organization (predictions of a shared company are the members' common work).
 */
export function canAddPredictions(
  actor: { userId: string; role: Role; tenantId: string | null; organizationId: string | null },
  row: { access_level: AccessLevel; organization_id: string | null; tenant_id: string | null; created_by: string | null },
): boolean {
  return canModifyScoped(actor, row) || (row.access_level === 'organization' && row.organization_id !== null && row.organization_id === actor.organizationId);
}
