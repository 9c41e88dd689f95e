// The access model of the architecture guide, as plain data for the application's own checks.
// PostgreSQL enforces the same rules with row-level security; these give clear errors first.
export const ROLES = ['user', 'org_member', 'org_admin', 'tenant_admin', 'super_admin'] as const;
export type Role = (typeof ROLES)[number];

export const ACCESS_LEVELS = ['personal', 'organization', 'system'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export function roleRank(role: Role): number {
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
