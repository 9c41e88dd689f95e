// Who sees a company or prediction, in the words of the "Visible to" field, and what the signed-in
// user may do with it: the same rules as src/domain/access.ts (the API and row-level security
// decide; these only choose which buttons to offer).
import type { User } from './api';

interface Scoped {
  access_level: string;
  organization_id?: string | null;
  created_by?: string | null;
}

export function scopeLabel(s: Scoped, user: User | null): string {
  if (s.access_level === 'system') return 'Everyone';
  if (s.access_level === 'personal') return s.created_by && s.created_by === user?.id ? 'Only me' : 'Personal (its creator)';
  return s.organization_id && s.organization_id === user?.organization_id ? 'My organization' : 'An organization';
}

export function ScopeBadge({ s, user }: { s: Scoped; user: User | null }) {
  const label = scopeLabel(s, user);
  return (
    <span className={`badge scope scope-${s.access_level}`} title={`Visible to: ${label}`}>
      <span className="sr-only">Visible to: </span>
      {label}
    </span>
  );
}

/** Mirrors canModifyScoped: the creator within its level, the organization's admin, a tenant admin, a super admin. */
export function canModify(s: Scoped, user: User | null): boolean {
  if (!user) return false;
  if (user.role === 'super_admin') return true;
  if (s.access_level === 'personal') return s.created_by === user.id;
  if (s.access_level !== 'organization') return false;
  if (user.role === 'tenant_admin') return true;
  return s.organization_id === user.organization_id && (s.created_by === user.id || user.role === 'org_admin');
}
