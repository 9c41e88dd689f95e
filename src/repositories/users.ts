import type { Sql, TxSql } from '../db/pool.js';
import type { Role } from '../domain/access.js';
import type { Patch } from './tenancy.js';
import { afterCursor, keyColumns, orderBy, type CursorValues, type SortKey } from './keyset.js';

export interface UserRow {
  id: string;
  tenant_id: string | null;
  organization_id: string | null;
  email: string;
  username: string;
  first_name: string | null;
  last_name: string | null;
  role: Role;
  is_active: boolean;
  is_verified: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = ['id', 'tenant_id', 'organization_id', 'email', 'username', 'first_name', 'last_name', 'role', 'is_active', 'is_verified', 'created_at', 'updated_at'] as const;

export async function findUser(tx: TxSql, id: string): Promise<UserRow | null> {
  const [row] = await tx<UserRow[]>`select ${tx(COLUMNS as unknown as string[])} from users where id = ${id}`;
  return row ?? null;
}

/** Users sort oldest first, by (created_at, id). */
export const USER_KEY: SortKey = { cols: ['created_at', 'id'], types: ['timestamp', 'uuid'], casts: ['timestamp', 'uuid'] };

/**
 * One keyset page (plus one row) of the users the caller can see. Row-level security decides
 * who is visible; `within` names the index to walk for the caller's role (its tenant or its
 * organization), so a tenant admin's page does not cost more because other tenants have users.
 */
export async function listUsers(
  tx: TxSql,
  f: { organizationId?: string; tenantId?: string; role?: string },
  page: { fetch: number; after?: CursorValues; within: { tenantId?: string; organizationId?: string; userId?: string } },
): Promise<Array<UserRow & { sort_key: CursorValues }>> {
  const w = page.within;
  const rows = await tx<Array<UserRow & { k0: string; k1: string }>>`
    select ${tx(COLUMNS as unknown as string[])} ${keyColumns(tx, 'u', USER_KEY)} from users u
    where true
      ${w.userId ? tx`and u.id = ${w.userId}` : tx``}
      ${w.tenantId ? tx`and u.tenant_id = ${w.tenantId}` : tx``}
      ${w.organizationId ? tx`and u.organization_id = ${w.organizationId}` : tx``}
      ${f.organizationId ? tx`and u.organization_id = ${f.organizationId}` : tx``}
      ${f.tenantId ? tx`and u.tenant_id = ${f.tenantId}` : tx``}
      ${f.role ? tx`and u.role = ${f.role}` : tx``}
      ${afterCursor(tx, 'u', USER_KEY, false, page.after)}
    order by ${orderBy(tx, 'u', USER_KEY, false)}
    limit ${page.fetch}`;
  return rows.map(({ k0, k1, ...r }) => ({ ...(r as UserRow), sort_key: [k0, k1] }));
}

export interface NewUser {
  id?: string;
  tenant_id: string | null;
  organization_id: string | null;
  email: string;
  username: string;
  first_name: string | null;
  last_name: string | null;
  role: Role;
  is_verified?: boolean;
}

export async function insertUser(tx: TxSql, u: NewUser): Promise<UserRow> {
  const [row] = await tx<UserRow[]>`
    insert into users (id, tenant_id, organization_id, email, username, first_name, last_name, role, is_verified)
    values (${u.id ?? tx`gen_random_uuid()`}, ${u.tenant_id}, ${u.organization_id}, ${u.email}, ${u.username},
            ${u.first_name}, ${u.last_name}, ${u.role}, ${u.is_verified ?? false})
    returning ${tx(COLUMNS as unknown as string[])}`;
  return row!;
}

export async function updateUser(tx: TxSql, id: string, patch: Partial<Pick<UserRow, 'first_name' | 'last_name' | 'role' | 'organization_id' | 'tenant_id' | 'is_active' | 'is_verified'>>): Promise<UserRow | null> {
  const fields = Object.keys(patch) as (keyof typeof patch)[];
  if (fields.length === 0) return findUser(tx, id);
  const [row] = await tx<UserRow[]>`
    update users set ${tx(patch as Patch, fields as string[])} where id = ${id}
    returning ${tx(COLUMNS as unknown as string[])}`;
  return row ?? null;
}

export async function setPassword(tx: TxSql, userId: string, hash: string): Promise<void> {
  await tx`
    insert into user_credentials (user_id, password_hash) values (${userId}, ${hash})
    on conflict (user_id) do update set password_hash = excluded.password_hash, password_changed_at = CURRENT_TIMESTAMP`;
}

export async function authLookup(tx: TxSql, login: string): Promise<{ user_id: string; password_hash: string | null; is_active: boolean } | null> {
  const [row] = await tx<{ user_id: string; password_hash: string | null; is_active: boolean }[]>`select * from app_auth_lookup(${login})`;
  return row ?? null;
}

export async function passwordHashOf(tx: TxSql, userId: string): Promise<string | null> {
  const [row] = await tx<{ password_hash: string }[]>`select password_hash from user_credentials where user_id = ${userId}`;
  return row?.password_hash ?? null;
}

/** A user named on an operator's command line (`--as`): by id or e-mail, as the owner. */
export async function userForCommand(adminSql: Sql, who: string): Promise<{ id: string; role: string; tenant_id: string | null; organization_id: string | null; is_active: boolean } | null> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(who);
  const [u] = isUuid
    ? await adminSql<{ id: string; role: string; tenant_id: string | null; organization_id: string | null; is_active: boolean }[]>`
        select id, role, tenant_id, organization_id, is_active from users where id = ${who}`
    : await adminSql<{ id: string; role: string; tenant_id: string | null; organization_id: string | null; is_active: boolean }[]>`
        select id, role, tenant_id, organization_id, is_active from users where lower(email) = lower(${who})`;
  return u ?? null;
}

/** Joins the caller to the organization whose join token hashes to `tokenHash` (app_join_organization checks it). */
export async function joinOrganization(tx: TxSql, tokenHash: string): Promise<void> {
  await tx`select * from app_join_organization(${tokenHash})`;
}
