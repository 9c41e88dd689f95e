import type { TxSql } from '../db/pool.js';
import { afterCursor, keyColumns, orderBy, type CursorValues, type SortKey } from './keyset.js';

export type Patch = Record<string, string | number | boolean | Date | null>;

export interface TenantRow {
  id: string;
  name: string;
  domain: string | null;
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
}

export interface OrganizationRow {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  is_active: boolean;
  max_members: number;
  join_token_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const ORG_COLUMNS = ['id', 'tenant_id', 'name', 'description', 'is_active', 'max_members', 'join_token_expires_at', 'created_at', 'updated_at'];

/** Tenants and organizations sort oldest first, by (created_at, id). */
export const CREATED_KEY: SortKey = { cols: ['created_at', 'id'], types: ['timestamp', 'uuid'], casts: ['timestamp', 'uuid'] };

type Keyed<T> = T & { sort_key: CursorValues };
const keyed = <T>(rows: Array<T & { k0: string; k1: string }>): Array<Keyed<T>> =>
  rows.map(({ k0, k1, ...r }) => ({ ...(r as unknown as T), sort_key: [k0, k1] }));

/** One keyset page (plus one row) of the tenants the caller can see. */
export async function listTenants(tx: TxSql, page: { fetch: number; after?: CursorValues }): Promise<Array<Keyed<TenantRow>>> {
  return keyed(await tx<Array<TenantRow & { k0: string; k1: string }>>`
    select t.* ${keyColumns(tx, 't', CREATED_KEY)} from tenants t
    where true ${afterCursor(tx, 't', CREATED_KEY, false, page.after)}
    order by ${orderBy(tx, 't', CREATED_KEY, false)} limit ${page.fetch}`);
}

export async function findTenant(tx: TxSql, id: string): Promise<TenantRow | null> {
  const [row] = await tx<TenantRow[]>`select * from tenants where id = ${id}`;
  return row ?? null;
}

export async function insertTenant(tx: TxSql, t: { name: string; domain: string | null }): Promise<TenantRow> {
  const [row] = await tx<TenantRow[]>`insert into tenants (name, domain) values (${t.name}, ${t.domain}) returning *`;
  return row!;
}

export async function updateTenant(tx: TxSql, id: string, patch: Patch): Promise<TenantRow | null> {
  const fields = Object.keys(patch);
  if (fields.length === 0) return findTenant(tx, id);
  const [row] = await tx<TenantRow[]>`update tenants set ${tx(patch, fields)} where id = ${id} returning *`;
  return row ?? null;
}

/** One keyset page (plus one row) of the organizations the caller can see (in `tenantId`, when given). */
export async function listOrganizations(tx: TxSql, f: { tenantId?: string }, page: { fetch: number; after?: CursorValues }): Promise<Array<Keyed<OrganizationRow>>> {
  return keyed(await tx<Array<OrganizationRow & { k0: string; k1: string }>>`
    select ${tx(ORG_COLUMNS.map((c) => 'o.' + c))} ${keyColumns(tx, 'o', CREATED_KEY)} from organizations o
    where true ${f.tenantId ? tx`and o.tenant_id = ${f.tenantId}` : tx``} ${afterCursor(tx, 'o', CREATED_KEY, false, page.after)}
    order by ${orderBy(tx, 'o', CREATED_KEY, false)} limit ${page.fetch}`);
}

export async function findOrganization(tx: TxSql, id: string): Promise<OrganizationRow | null> {
  const [row] = await tx<OrganizationRow[]>`select ${tx(ORG_COLUMNS)} from organizations where id = ${id}`;
  return row ?? null;
}

export async function insertOrganization(
  tx: TxSql,
  o: { tenant_id: string; name: string; description: string | null; max_members?: number },
): Promise<OrganizationRow> {
  const [row] = await tx<OrganizationRow[]>`
    insert into organizations (tenant_id, name, description, max_members)
    values (${o.tenant_id}, ${o.name}, ${o.description}, ${o.max_members ?? 100})
    returning ${tx(ORG_COLUMNS)}`;
  return row!;
}

export async function updateOrganization(tx: TxSql, id: string, patch: Patch): Promise<OrganizationRow | null> {
  const fields = Object.keys(patch);
  if (fields.length === 0) return findOrganization(tx, id);
  const [row] = await tx<OrganizationRow[]>`update organizations set ${tx(patch, fields)} where id = ${id} returning ${tx(ORG_COLUMNS)}`;
  return row ?? null;
}

export const listWhitelist = (tx: TxSql, orgId: string) =>
  tx<{ email: string; created_at: Date }[]>`select email, created_at from organization_whitelist where organization_id = ${orgId} order by email`;

export async function addWhitelist(tx: TxSql, orgId: string, emails: string[], by: string): Promise<number> {
  if (emails.length === 0) return 0;
  const rows = emails.map((email) => ({ organization_id: orgId, email, created_by: by }));
  const res = await tx`insert into organization_whitelist ${tx(rows)} on conflict do nothing`;
  return res.count;
}

export async function removeWhitelist(tx: TxSql, orgId: string, email: string): Promise<boolean> {
  const res = await tx`delete from organization_whitelist where organization_id = ${orgId} and email = ${email}`;
  return res.count > 0;
}

/** Replaces the organization's join token (only its hash is stored). */
export async function setJoinToken(tx: TxSql, orgId: string, tokenHash: string | null, expiresAt: Date | null): Promise<void> {
  await tx`update organizations set join_token_hash = ${tokenHash}, join_token_expires_at = ${expiresAt} where id = ${orgId}`;
}
