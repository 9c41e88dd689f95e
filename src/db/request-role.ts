// Row-level security holds only for the role it was written for. A pool that serves requests
// while logged in as anything else, the owner (which bypasses RLS without FORCE), a superuser, a
// BYPASSRLS role or a reporting role like analytics_user (whose policies read every tenant),
// would answer one tenant with another's rows. Migration 0043 explains why the tables are not
// FORCEd instead; this check is what keeps that choice safe.
import type { Sql } from './pool.js';
import { ConfigError } from '../config/index.js';

const REQUEST_ROLE = 'app_user';

interface RoleFacts {
  role: string;
  superuser: boolean;
  bypassrls: boolean;
  /** Owns (or inherits the owner of) a table with row-level security. */
  owns_rls_table: boolean;
}

export class RequestRoleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestRoleError';
  }
}

export async function roleFacts(sql: Sql): Promise<RoleFacts> {
  const [r] = await sql<RoleFacts[]>`
    select current_user::text as role, r.rolsuper as superuser, r.rolbypassrls as bypassrls,
           exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = 'public' and c.relrowsecurity
                     and pg_has_role(current_user, c.relowner, 'USAGE')) as owns_rls_table
    from pg_roles r where r.rolname = current_user`;
  return r!;
}

/** Why these facts make a pool unfit to serve requests, or null when it is fit. */
export function requestRoleProblem(f: RoleFacts): string | null {
  if (f.role !== REQUEST_ROLE) return `logs in as ${f.role}, not ${REQUEST_ROLE}: row-level security written for ${REQUEST_ROLE} would not apply`;
  if (f.superuser) return `${f.role} is a superuser, which bypasses row-level security`;
  if (f.bypassrls) return `${f.role} has BYPASSRLS`;
  if (f.owns_rls_table) return `${f.role} owns tables with row-level security, and owners bypass it`;
  return null;
}

/** A ConfigError naming `variable` (the CLI prints it as such) when the pool may not serve requests. */
export async function assertRequestRole(sql: Sql, variable: string): Promise<void> {
  const problem = requestRoleProblem(await roleFacts(sql));
  if (problem) throw new ConfigError(variable, `${problem}; give it an ${REQUEST_ROLE} URL`);
}
