// Plain-language names for the words analysts read in messages and on screens; the codes
// (org_member, organization, annual) stay in the API's fields, these go in its sentences.
import type { AccessLevel, Role } from './access.js';

const SCOPE: Record<AccessLevel, string> = { personal: 'only its creator', organization: 'its organization', system: 'everyone' };
const ROLE: Record<Role, string> = { user: 'user', org_member: 'organization member', org_admin: 'organization admin', tenant_admin: 'tenant admin', super_admin: 'super admin' };

/** "visible to only its creator" / "its organization" / "everyone". */
export const scopeName = (level: AccessLevel): string => SCOPE[level] ?? level;
export const roleName = (role: Role): string => ROLE[role] ?? role;

/** "an annual" / "a quarterly". */
export const aKind = (kind: 'annual' | 'quarterly'): string => (kind === 'annual' ? 'an annual' : 'a quarterly');

export const periodText = (year: string, quarter?: string | null): string => (quarter ? `${quarter} ${year}` : year);
