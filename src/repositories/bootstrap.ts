// The operator's bootstrap commands (`accunode tenant|org|user create`, `user verify`), as the
// owner: rows no application user could create yet, each user creation and verification
// audited as the operator's act (user_id null).
import type { Sql, TxSql } from '../db/pool.js';
import type { Role } from '../domain/access.js';

export async function createTenant(sql: Sql, t: { name: string; domain: string | null }) {
  const [row] = await sql<{ id: string; name: string; domain: string | null }[]>`insert into tenants (name, domain) values (${t.name}, ${t.domain}) returning id, name, domain`;
  return row!;
}

export async function tenantById(sql: Sql | TxSql, id: string): Promise<{ id: string } | null> {
  const [t] = await sql<{ id: string }[]>`select id from tenants where id::text = ${id}`;
  return t ?? null;
}

export async function createOrganization(sql: Sql, o: { tenantId: string; name: string; description: string | null; maxMembers: number }) {
  const [row] = await sql<{ id: string; tenant_id: string; name: string }[]>`
    insert into organizations (tenant_id, name, description, max_members)
    values (${o.tenantId}, ${o.name}, ${o.description}, ${o.maxMembers}) returning id, tenant_id, name`;
  return row!;
}

export async function organizationTenant(tx: Sql | TxSql, id: string): Promise<string | null> {
  const [org] = await tx<{ tenant_id: string }[]>`select tenant_id from organizations where id::text = ${id}`;
  return org ? org.tenant_id : null;
}

export async function createUserByOperator(tx: TxSql, u: { tenantId: string | null; organizationId: string | null; email: string; username: string; role: Role; passwordHash: string }) {
  const [row] = await tx<{ id: string; email: string; role: string }[]>`
    insert into users (tenant_id, organization_id, email, username, role, is_verified)
    values (${u.tenantId}, ${u.organizationId}, ${u.email.toLowerCase()}, ${u.username}, ${u.role}, true)
    returning id, email, username, role, tenant_id, organization_id`;
  await tx`insert into user_credentials (user_id, password_hash) values (${row!.id}, ${u.passwordHash})`;
  await tx`insert into audit_logs (user_id, tenant_id, organization_id, action, table_name, row_id, after)
           values (null, ${u.tenantId}, ${u.organizationId}, 'create_by_operator', 'users', ${row!.id}, ${tx.json({ email: row!.email, role: u.role })})`;
  return row!;
}

/** Marks an address verified (its open verification links used up); null when no account has it. */
export async function verifyByOperator(tx: TxSql, email: string) {
  const [u] = await tx<{ id: string; email: string; is_verified: boolean }[]>`
    update users set is_verified = true where lower(email) = lower(${email}) returning id, email, is_verified`;
  if (!u) return null;
  await tx`update email_verifications set used_at = CURRENT_TIMESTAMP where user_id = ${u.id} and used_at is null`;
  await tx`insert into audit_logs (user_id, action, table_name, row_id) values (null, 'verify_by_operator', 'users', ${u.id})`;
  return u;
}
