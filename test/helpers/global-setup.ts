import postgres from 'postgres';
import { createPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { APP_ROLES, applyRolePasswords } from '../../src/db/roles.js';
import { TEST_PG_ADMIN_URL, TEST_ROLE_PASSWORD, templateName, urlFor } from './env.js';

/**
 * Builds the migrated template database once per run (each test file clones it: CREATE DATABASE
 * ... TEMPLATE takes well under a second) and gives the application roles LOGIN.
 */
export default async function setup(): Promise<void> {
  const admin = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin`select 1`;
  } catch (err) {
    throw new Error(
      `Tests need PostgreSQL at ${TEST_PG_ADMIN_URL.replace(/\/\/[^@]*@/, '//***@')} (${(err as Error).message}). ` +
        'Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
  }
  try {
    const tpl = templateName();
    // Databases of earlier runs that were killed before they could drop their own.
    // Databases of earlier runs that were killed before they could drop their own: only those
    // created over two hours ago (the epoch is in the name), so a run in progress elsewhere on
    // this server keeps its databases.
    const cutoff = Math.floor(Date.now() / 1000) - 7200;
    const stale = await admin<{ datname: string }[]>`
      select datname from pg_database
      where datname ~ '^accunode_t_[0-9]{10}_' and split_part(datname, '_', 3)::bigint < ${cutoff}
        and not exists (select 1 from pg_stat_activity a where a.datname = pg_database.datname)`;
    for (const { datname } of stale) await admin.unsafe(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => {});
    // Templates of other migration sets: only in CI, where no other run shares the server
    // (a developer's concurrent run may be using one).
    const oldTemplates = !process.env.CI ? [] : await admin<{ datname: string }[]>`
      select datname from pg_database where datname like 'accunode\\_tpl\\_%' and datname <> ${tpl}
        and not exists (select 1 from pg_stat_activity a where a.datname = pg_database.datname)`;
    for (const { datname } of oldTemplates) {
      await admin.unsafe(`ALTER DATABASE "${datname}" IS_TEMPLATE false`).catch(() => {});
      await admin.unsafe(`DROP DATABASE IF EXISTS "${datname}"`).catch(() => {});
    }

    const [exists] = await admin`select 1 from pg_database where datname = ${tpl}`;
    if (!exists) {
      const building = `accunode_tplbuild_${process.pid}`;
      await admin.unsafe(`DROP DATABASE IF EXISTS "${building}"`);
      await admin.unsafe(`CREATE DATABASE "${building}"`);
      const sql = createPool(urlFor(building), { max: 2 });
      try {
        await migrate(sql);
        const pw = Object.fromEntries(APP_ROLES.map((r) => [r, TEST_ROLE_PASSWORD]));
        await applyRolePasswords(sql, pw);
      } finally {
        await sql.end({ timeout: 5 });
      }
      // Renamed only when complete, so a concurrent or interrupted run never clones half a schema.
      await admin.unsafe(`ALTER DATABASE "${building}" RENAME TO "${tpl}"`).catch(async (err: Error) => {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${building}"`);
        if (!/already exists/.test(err.message)) throw err;
      });
      await admin.unsafe(`ALTER DATABASE "${tpl}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`).catch(() => {});
    } else {
      const pw = Object.fromEntries(APP_ROLES.map((r) => [r, TEST_ROLE_PASSWORD]));
      await applyRolePasswords(admin as never, pw);
    }
  } finally {
    await admin.end({ timeout: 5 });
  }
}
