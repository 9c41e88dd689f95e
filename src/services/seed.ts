import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Sql } from '../db/pool.js';
import { generatePassword } from '../db/roles.js';
import { hashPassword } from './passwords.js';

export interface SeedResult {
  seeded: boolean;
  email?: string;
  password?: string;
  passwordFile?: string;
}

const DEMO_COMPANIES = [
  ['AAPL', 'Apple Inc.', 3_400_000_000_000, 'Information Technology', 'United States', 'NASDAQ'],
  ['MSFT', 'Microsoft Corporation', 3_100_000_000_000, 'Information Technology', 'United States', 'NASDAQ'],
  ['F', 'Ford Motor Company', 45_000_000_000, 'Consumer Discretionary', 'United States', 'NYSE'],
  ['CAT', 'Caterpillar Inc.', 170_000_000_000, 'Industrials', 'United States', 'NYSE'],
  ['XOM', 'Exxon Mobil Corporation', 470_000_000_000, 'Energy', 'United States', 'NYSE'],
] as const;

/**
 * On an empty database (no users), creates a demo tenant, organization, a super admin and a few
 * system companies. Runs on the owner connection: it is the bootstrap that makes the first user
 * row-level security can key on. The admin password is returned once and kept 0600 on disk.
 */
export async function seedDemo(adminSql: Sql, dataDir: string): Promise<SeedResult> {
  const password = generatePassword();
  const passwordHash = await hashPassword(password);
  const email = 'admin@demo.accunode.local';
  const result = await adminSql.begin(async (tx) => {
    // Two processes starting at once must not both seed.
    await tx`select pg_advisory_xact_lock(727274002)`;
    const [{ n } = { n: 0 }] = await tx<{ n: number }[]>`select count(*)::int as n from users`;
    if (n > 0) return false;
    const [tenant] = await tx<{ id: string }[]>`
      insert into tenants (name, domain) values ('Demo Tenant', 'demo.accunode.local') returning id`;
    const [org] = await tx<{ id: string }[]>`
      insert into organizations (tenant_id, name, description)
      values (${tenant!.id}, 'Demo Analysts', 'Seeded by accunode up') returning id`;
    const [admin] = await tx<{ id: string }[]>`
      insert into users (tenant_id, organization_id, email, username, first_name, last_name, role, is_verified)
      values (${tenant!.id}, ${org!.id}, ${email}, 'admin', 'Demo', 'Admin', 'super_admin', true) returning id`;
    await tx`insert into user_credentials (user_id, password_hash) values (${admin!.id}, ${passwordHash})`;
    for (const [symbol, name, cap, sector, country, exchange] of DEMO_COMPANIES) {
      await tx`insert into companies (symbol, name, market_cap, sector, country, exchange, access_level, created_by)
               values (${symbol}, ${name}, ${cap}, ${sector}, ${country}, ${exchange}, 'system', ${admin!.id})`;
    }
    return true;
  });
  if (!result) return { seeded: false };
  mkdirSync(dataDir, { recursive: true });
  const passwordFile = path.join(dataDir, 'demo-admin.txt');
  writeFileSync(passwordFile, `email: ${email}\nusername: admin\npassword: ${password}\n`, { mode: 0o600 });
  return { seeded: true, email, password, passwordFile };
}
