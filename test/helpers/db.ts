import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { createPool, type Sql } from '../../src/db/pool.js';
import { TEST_PG_ADMIN_URL, TEST_ROLE_PASSWORD, appUrlFor, templateName, urlFor } from './env.js';

export interface TestDatabase {
  name: string;
  adminUrl: string;
  appUrl: string;
  /** Owner connection (bypasses row-level security): set-up and assertions only. */
  adminSql: Sql;
  /** app_user connection: what the application uses. */
  appSql: Sql;
  urlAs(role: string): string;
  drop(): Promise<void>;
}

/** A fresh database for one test file, cloned from the migrated template. */
export async function createTestDatabase(opts: { poolSize?: number } = {}): Promise<TestDatabase> {
  // The creation time in the name lets a later run drop what a killed run left, without
  // touching databases of a run still in progress.
  const name = `accunode_t_${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE "${templateName()}"`);
        break;
      } catch (err) {
        // Another file cloning the same template at the same instant: retry shortly.
        if (attempt >= 20 || !/being accessed by other users/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
  const adminUrl = urlFor(name);
  const appUrl = appUrlFor(name, 'app_user', TEST_ROLE_PASSWORD);
  const adminSql = createPool(adminUrl, { max: 3 });
  const appSql = createPool(appUrl, { max: opts.poolSize ?? 5 });
  return {
    name,
    adminUrl,
    appUrl,
    adminSql,
    appSql,
    urlAs: (role: string) => appUrlFor(name, role, TEST_ROLE_PASSWORD),
    drop: async () => {
      await appSql.end({ timeout: 5 });
      await adminSql.end({ timeout: 5 });
      const a = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await a.end({ timeout: 5 });
      }
    },
  };
}
