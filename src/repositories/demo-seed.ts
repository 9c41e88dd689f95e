// The demo seed's rows (services/seed.ts), written as the owner on an empty database: the first
// tenant, organization and super admin, the system companies, and the sample portfolio.
import type { Sql, TxSql } from '../db/pool.js';

/** Takes the seed's lock (two processes starting at once must not both seed); true when no user exists yet. */
export async function lockEmptyDatabase(tx: TxSql): Promise<boolean> {
  await tx`select pg_advisory_xact_lock(727274002)`;
  const [{ n } = { n: 0 }] = await tx<{ n: number }[]>`select count(*)::int as n from users`;
  return n === 0;
}

export async function insertDemoTenant(tx: TxSql, d: { email: string; passwordHash: string }): Promise<{ tenantId: string; organizationId: string; adminId: string }> {
  const [tenant] = await tx<{ id: string }[]>`
    insert into tenants (name, domain) values ('Demo Tenant', 'demo.accunode.local') returning id`;
  const [org] = await tx<{ id: string }[]>`
    insert into organizations (tenant_id, name, description)
    values (${tenant!.id}, 'Demo Analysts', 'Seeded by accunode up') returning id`;
  const [admin] = await tx<{ id: string }[]>`
    insert into users (tenant_id, organization_id, email, username, first_name, last_name, role, is_verified)
    values (${tenant!.id}, ${org!.id}, ${d.email}, 'admin', 'Demo', 'Admin', 'super_admin', true) returning id`;
  await tx`insert into user_credentials (user_id, password_hash) values (${admin!.id}, ${d.passwordHash})`;
  return { tenantId: tenant!.id, organizationId: org!.id, adminId: admin!.id };
}

export async function insertSystemCompany(tx: TxSql, c: { symbol: string; name: string; market_cap: number; sector: string; country: string; exchange: string; created_by: string }): Promise<void> {
  await tx`insert into companies (symbol, name, market_cap, sector, country, exchange, access_level, created_by)
           values (${c.symbol}, ${c.name}, ${c.market_cap}, ${c.sector}, ${c.country}, ${c.exchange}, 'system', ${c.created_by})`;
}

export async function insertCompanies(sql: Sql | TxSql, rows: ReadonlyArray<Record<string, unknown>>): Promise<Array<{ id: string; symbol: string }>> {
  return sql<{ id: string; symbol: string }[]>`insert into companies ${sql(rows as never)} returning id, symbol`;
}

/** Annual predictions, 500 rows a statement. */
export async function insertAnnualPredictions(sql: Sql | TxSql, rows: ReadonlyArray<Record<string, unknown>>): Promise<void> {
  for (let k = 0; k < rows.length; k += 500) await sql`insert into annual_predictions ${sql(rows.slice(k, k + 500) as never)}`;
}
