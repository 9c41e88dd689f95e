import type { Sql } from '../../src/db/pool.js';
import type { Role } from '../../src/domain/access.js';

export interface World {
  tenants: { A: string; B: string };
  orgs: { A1: string; A2: string; B1: string; B2: string };
  users: Record<UserKey, { id: string; role: Role; tenant: string | null; org: string | null }>;
  companies: Record<CompanyKey, string>;
  annual: Record<CompanyKey, string>;
  quarterly: Record<CompanyKey, string>;
}

export type UserKey = 'super' | 'taA' | 'oaA1' | 'omA1' | 'omA1b' | 'omA2' | 'uA' | 'taB' | 'oaB1' | 'omB1';
export type CompanyKey = 'persA1' | 'persA1b' | 'orgA1' | 'orgA1b' | 'orgA2' | 'orgB1' | 'persB1' | 'system';

const USERS: Array<[UserKey, Role, 'A' | 'B' | null, 'A1' | 'A2' | 'B1' | 'B2' | null]> = [
  ['super', 'super_admin', 'A', null],
  ['taA', 'tenant_admin', 'A', null],
  ['oaA1', 'org_admin', 'A', 'A1'],
  ['omA1', 'org_member', 'A', 'A1'],
  ['omA1b', 'org_member', 'A', 'A1'],
  ['omA2', 'org_member', 'A', 'A2'],
  ['uA', 'user', null, null],
  ['taB', 'tenant_admin', 'B', null],
  ['oaB1', 'org_admin', 'B', 'B1'],
  ['omB1', 'org_member', 'B', 'B1'],
];

// [key, level, organization, creator]
const COMPANIES: Array<[CompanyKey, 'personal' | 'organization' | 'system', 'A1' | 'A2' | 'B1' | null, UserKey]> = [
  ['persA1', 'personal', null, 'omA1'],
  ['persA1b', 'personal', null, 'omA1b'],
  ['orgA1', 'organization', 'A1', 'omA1'],
  ['orgA1b', 'organization', 'A1', 'omA1b'],
  ['orgA2', 'organization', 'A2', 'omA2'],
  ['orgB1', 'organization', 'B1', 'omB1'],
  ['persB1', 'personal', null, 'omB1'],
  ['system', 'system', null, 'super'],
];

/**
 * Two tenants with two organizations each, a user of every role, and a company with one annual
 * and one quarterly prediction at every access level. Built on the owner connection.
 */
export async function buildWorld(adminSql: Sql): Promise<World> {
  const [ta] = await adminSql<{ id: string }[]>`insert into tenants (name) values ('Tenant A') returning id`;
  const [tb] = await adminSql<{ id: string }[]>`insert into tenants (name) values ('Tenant B') returning id`;
  const tenants = { A: ta!.id, B: tb!.id };
  const orgs = {} as World['orgs'];
  for (const [k, t] of [['A1', 'A'], ['A2', 'A'], ['B1', 'B'], ['B2', 'B']] as const) {
    const [o] = await adminSql<{ id: string }[]>`insert into organizations (tenant_id, name) values (${tenants[t]}, ${'Org ' + k}) returning id`;
    orgs[k] = o!.id;
  }
  const users = {} as World['users'];
  for (const [k, role, t, o] of USERS) {
    const tenant = t ? tenants[t] : null;
    const org = o ? orgs[o] : null;
    const [u] = await adminSql<{ id: string }[]>`
      insert into users (tenant_id, organization_id, email, username, role, is_verified)
      values (${tenant}, ${org}, ${k + '@example.com'}, ${k}, ${role}, true) returning id`;
    users[k] = { id: u!.id, role, tenant, org };
  }
  const companies = {} as Record<CompanyKey, string>;
  const annual = {} as Record<CompanyKey, string>;
  const quarterly = {} as Record<CompanyKey, string>;
  for (const [k, level, o, creator] of COMPANIES) {
    const [c] = await adminSql<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by)
      values (${k.toUpperCase().slice(0, 10)}, ${'Company ' + k}, 'Industrials', ${level}, ${o ? orgs[o] : null}, ${users[creator].id})
      returning id`;
    companies[k] = c!.id;
    const [a] = await adminSql<{ id: string }[]>`
      insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level, confidence)
      values (${c!.id}, ${users[creator].id}, '2024', 0.03, 'MEDIUM', 0.8) returning id`;
    annual[k] = a!.id;
    const [q] = await adminSql<{ id: string }[]>`
      insert into quarterly_predictions (company_id, created_by, reporting_year, reporting_quarter, ensemble_probability, risk_level)
      values (${c!.id}, ${users[creator].id}, '2024', 'Q1', 0.2, 'CRITICAL') returning id`;
    quarterly[k] = q!.id;
  }
  return { tenants, orgs, users, companies, annual, quarterly };
}

/** Which companies each user may read under the access model (the expected side of the RLS tests). */
export const VISIBLE_COMPANIES: Record<UserKey, CompanyKey[]> = {
  super: ['persA1', 'persA1b', 'orgA1', 'orgA1b', 'orgA2', 'orgB1', 'persB1', 'system'],
  taA: ['orgA1', 'orgA1b', 'orgA2', 'system'],
  oaA1: ['orgA1', 'orgA1b', 'system'],
  omA1: ['persA1', 'orgA1', 'orgA1b', 'system'],
  omA1b: ['persA1b', 'orgA1', 'orgA1b', 'system'],
  omA2: ['orgA2', 'system'],
  uA: ['system'],
  taB: ['orgB1', 'system'],
  oaB1: ['orgB1', 'system'],
  omB1: ['orgB1', 'persB1', 'system'],
};

/** Which companies each user may update or delete. */
export const MODIFIABLE_COMPANIES: Record<UserKey, CompanyKey[]> = {
  super: ['persA1', 'persA1b', 'orgA1', 'orgA1b', 'orgA2', 'orgB1', 'persB1', 'system'],
  taA: ['orgA1', 'orgA1b', 'orgA2'],
  oaA1: ['orgA1', 'orgA1b'],
  omA1: ['persA1', 'orgA1'],
  omA1b: ['persA1b', 'orgA1b'],
  omA2: ['orgA2'],
  uA: [],
  taB: ['orgB1'],
  oaB1: ['orgB1'],
  omB1: ['orgB1', 'persB1'],
};
