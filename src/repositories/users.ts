import type { TxSql } from '../db/pool.js';
import type { Role } from '../domain/access.js';
import type { Patch } from './tenancy.js';

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

export async function listUsers(
  tx: TxSql,
  f: { organizationId?: string; tenantId?: string; role?: string; limit: number; offset: number },
): Promise<UserRow[]> {
  return tx<UserRow[]>`
    select ${tx(COLUMNS as unknown as string[])} from users
    where true
      ${f.organizationId ? tx`and organization_id = ${f.organizationId}` : tx``}
      ${f.tenantId ? tx`and tenant_id = ${f.tenantId}` : tx``}
      ${f.role ? tx`and role = ${f.role}` : tx``}
    order by created_at, id
    limit ${f.limit} offset ${f.offset}`;
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

export async function countOrgMembers(tx: TxSql, organizationId: string): Promise<number> {
  const [row] = await tx<{ n: number }[]>`select count(*)::int as n from users where organization_id = ${organizationId} and is_active`;
  return row!.n;
}
