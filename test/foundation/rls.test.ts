import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUserTx } from '../../src/db/tx.js';
import type { TxSql } from '../../src/db/pool.js';
import { createPool } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, MODIFIABLE_COMPANIES, VISIBLE_COMPANIES, type CompanyKey, type UserKey, type World } from '../helpers/fixtures.js';

let db: TestDatabase;
let w: World;

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
});
afterAll(async () => {
  await db.drop();
});

class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rollback');
  }
}

/** Runs fn as a user and rolls back, so each probe starts from the same world. */
async function probe<T>(user: UserKey, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  try {
    await withUserTx(db.appSql, w.users[user].id, async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (err) {
    if (err instanceof Rollback) return err.value as T;
    throw err;
  }
  throw new Error('unreachable');
}

const keysOf = (ids: string[], map: Record<CompanyKey, string>) =>
  ids.map((id) => (Object.entries(map).find(([, v]) => v === id)?.[0] ?? id) as CompanyKey).sort();

const ALL_USERS = Object.keys(VISIBLE_COMPANIES) as UserKey[];

describe('row-level security: companies and predictions', () => {
  it.each(ALL_USERS)('%s lists exactly the companies and predictions the access model allows', async (u) => {
    const res = await probe(u, async (tx) => ({
      companies: (await tx<{ id: string }[]>`select id from companies`).map((r) => r.id),
      annual: (await tx<{ id: string }[]>`select id from annual_predictions`).map((r) => r.id),
      quarterly: (await tx<{ id: string }[]>`select id from quarterly_predictions`).map((r) => r.id),
    }));
    const expected = [...VISIBLE_COMPANIES[u]].sort();
    expect(keysOf(res.companies, w.companies)).toEqual(expected);
    expect(keysOf(res.annual, w.annual)).toEqual(expected);
    expect(keysOf(res.quarterly, w.quarterly)).toEqual(expected);
  });

  it.each(ALL_USERS)('%s reads by id only what it may see', async (u) => {
    for (const [k, id] of Object.entries(w.companies) as [CompanyKey, string][]) {
      const rows = await probe(u, (tx) => tx`select id from companies where id = ${id}`);
      expect(rows.length, `${u} reading company ${k}`).toBe(VISIBLE_COMPANIES[u].includes(k) ? 1 : 0);
      const preds = await probe(u, (tx) => tx`select id from annual_predictions where id = ${w.annual[k]}`);
      expect(preds.length, `${u} reading prediction of ${k}`).toBe(VISIBLE_COMPANIES[u].includes(k) ? 1 : 0);
    }
  });

  it.each(ALL_USERS)('%s updates and deletes only what it may modify', async (u) => {
    for (const [k, id] of Object.entries(w.companies) as [CompanyKey, string][]) {
      const allowed = MODIFIABLE_COMPANIES[u].includes(k);
      const updated = await probe(u, (tx) => tx`update companies set name = 'changed' where id = ${id} returning id`);
      expect(updated.length, `${u} updating company ${k}`).toBe(allowed ? 1 : 0);
      const updatedPred = await probe(u, (tx) => tx`update annual_predictions set probability = 0.5 where id = ${w.annual[k]} returning id`);
      expect(updatedPred.length, `${u} updating prediction of ${k}`).toBe(allowed ? 1 : 0);
      const deletedPred = await probe(u, (tx) => tx`delete from quarterly_predictions where id = ${w.quarterly[k]} returning id`);
      expect(deletedPred.length, `${u} deleting prediction of ${k}`).toBe(allowed ? 1 : 0);
    }
  });

  it('a tenant A user changes nothing of tenant B, whatever the SQL', async () => {
    for (const u of ['omA1', 'oaA1', 'taA', 'uA'] as UserKey[]) {
      const n = await probe(u, async (tx) => {
        const a = await tx`update companies set name = 'x' where organization_id = ${w.orgs.B1}`;
        const b = await tx`delete from annual_predictions where organization_id = ${w.orgs.B1}`;
        const c = await tx`update quarterly_predictions set risk_level = 'LOW'`;
        const d = await tx`select * from companies where organization_id = ${w.orgs.B1} or access_level = 'personal' and created_by = ${w.users.omB1.id}`;
        return a.count + b.count + d.length + (c.count > 0 ? (await tx`select 1 from quarterly_predictions where organization_id = ${w.orgs.B1} and risk_level = 'LOW'`).length : 0);
      });
      expect(n, u).toBe(0);
    }
    const [after] = await db.adminSql<{ name: string }[]>`select name from companies where id = ${w.companies.orgB1}`;
    expect(after!.name).toBe('Company orgB1');
  });

  it('without app.current_user_id nothing is visible', async () => {
    const rows = await db.appSql.begin(async (tx) => ({
      companies: await tx`select id from companies`,
      annual: await tx`select id from annual_predictions`,
      users: await tx`select id from users`,
      orgs: await tx`select id from organizations`,
      tenants: await tx`select id from tenants`,
    }));
    for (const [table, r] of Object.entries(rows)) expect(r.length, table).toBe(0);
    const empty = await db.appSql.begin(async (tx) => {
      await tx`select set_config('app.current_user_id', '', true)`;
      return tx`select id from companies`;
    });
    expect(empty.length).toBe(0);
  });

  it('WITH CHECK: no rows for another organization, no system rows for non-super-admins', async () => {
    const cases: Array<[UserKey, string, string | null]> = [
      ['omA1', 'organization', w.orgs.A2],
      ['omA1', 'organization', w.orgs.B1],
      ['omA1', 'system', null],
      ['oaA1', 'system', null],
      ['taA', 'system', null],
      ['taA', 'organization', w.orgs.B1],
      ['uA', 'organization', w.orgs.A1],
    ];
    for (const [u, level, org] of cases) {
      await expect(
        probe(u, (tx) => tx`insert into companies (symbol, name, access_level, organization_id, created_by)
                            values ('NEW', 'New', ${level}, ${org}, ${w.users[u].id})`),
        `${u} creating ${level} in ${org}`,
      ).rejects.toThrow(/row-level security/);
    }
    // Impersonating another creator is refused too.
    await expect(
      probe('omA1', (tx) => tx`insert into companies (symbol, name, access_level, created_by) values ('NEW', 'New', 'personal', ${w.users.omA1b.id})`),
    ).rejects.toThrow(/row-level security/);
    // A prediction cannot be attached to a company the user cannot see...
    await expect(
      probe('omA1', (tx) => tx`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level)
                               values (${w.companies.orgB1}, ${w.users.omA1.id}, '2023', 0.1, 'HIGH')`),
    ).rejects.toThrow(/not found/);
    // ...nor, by a non-super-admin, to a system company (it would be a system row).
    await expect(
      probe('omA1', (tx) => tx`insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level)
                               values (${w.companies.system}, ${w.users.omA1.id}, '2023', 0.1, 'HIGH')`),
    ).rejects.toThrow(/row-level security/);
    // An update may not move a row out of the user's reach either.
    await expect(
      probe('omA1', (tx) => tx`update companies set organization_id = ${w.orgs.B1} where id = ${w.companies.orgA1}`),
    ).rejects.toThrow(/row-level security/);
    await expect(
      probe('omA1', (tx) => tx`update companies set access_level = 'system', organization_id = null where id = ${w.companies.persA1}`),
    ).rejects.toThrow(/row-level security/);
    // The allowed cases work.
    const ok = await probe('omA1', async (tx) => {
      const [c] = await tx<{ id: string; access_level: string }[]>`
        insert into companies (symbol, name, access_level, organization_id, created_by)
        values ('NEW', 'New', 'organization', ${w.orgs.A1}, ${w.users.omA1.id}) returning id, access_level`;
      const [p] = await tx<{ access_level: string; organization_id: string }[]>`
        insert into annual_predictions (company_id, created_by, reporting_year, probability, risk_level)
        values (${c!.id}, ${w.users.omA1.id}, '2023', 0.1, 'HIGH') returning access_level, organization_id`;
      return p;
    });
    expect(ok).toEqual({ access_level: 'organization', organization_id: w.orgs.A1 });
  });

  it('a symbol is unique within its scope, not globally', async () => {
    const created = await probe('omB1', async (tx) => {
      // ORGA1 exists in organization A1: organization B1 may use the same symbol.
      await tx`insert into companies (symbol, name, access_level, organization_id, created_by)
               values ('ORGA1', 'Same symbol', 'organization', ${w.orgs.B1}, ${w.users.omB1.id})`;
      await tx`insert into companies (symbol, name, access_level, created_by) values ('SYSTEM', 'Mine', 'personal', ${w.users.omB1.id})`;
      return true;
    });
    expect(created).toBe(true);
    await expect(
      probe('omA1b', (tx) => tx`insert into companies (symbol, name, access_level, organization_id, created_by)
                                values ('ORGA1', 'Dup', 'organization', ${w.orgs.A1}, ${w.users.omA1b.id})`),
    ).rejects.toThrow(/uq_companies_symbol_organization/);
  });
});

describe('row-level security: identity tables', () => {
  const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort();
  const userIds = (...keys: UserKey[]) => keys.map((k) => w.users[k].id).sort();

  it('tenants and organizations', async () => {
    expect(ids(await probe('omA1', (tx) => tx<{ id: string }[]>`select id from tenants`))).toEqual([w.tenants.A]);
    expect(ids(await probe('super', (tx) => tx<{ id: string }[]>`select id from tenants`))).toEqual([w.tenants.A, w.tenants.B].sort());
    expect(ids(await probe('uA', (tx) => tx<{ id: string }[]>`select id from tenants`))).toEqual([]);
    expect(ids(await probe('omA1', (tx) => tx<{ id: string }[]>`select id from organizations`))).toEqual([w.orgs.A1]);
    expect(ids(await probe('taA', (tx) => tx<{ id: string }[]>`select id from organizations`))).toEqual([w.orgs.A1, w.orgs.A2].sort());
    expect(ids(await probe('taB', (tx) => tx<{ id: string }[]>`select id from organizations`))).toEqual([w.orgs.B1, w.orgs.B2].sort());
    expect((await probe('super', (tx) => tx`select id from organizations`)).length).toBe(4);
    expect((await probe('taA', (tx) => tx`update organizations set name = 'x' where id = ${w.orgs.B1} returning id`)).length).toBe(0);
    expect((await probe('taA', (tx) => tx`update tenants set name = 'x' returning id`)).length).toBe(0);
    expect((await probe('oaA1', (tx) => tx`update organizations set description = 'x' returning id`)).length).toBe(1);
    await expect(probe('taA', (tx) => tx`insert into organizations (tenant_id, name) values (${w.tenants.B}, 'evil')`)).rejects.toThrow(/row-level security/);
    await expect(probe('oaA1', (tx) => tx`insert into organizations (tenant_id, name) values (${w.tenants.A}, 'x')`)).rejects.toThrow(/row-level security/);
  });

  it('users: self, organization, tenant admin, super admin', async () => {
    expect(ids(await probe('uA', (tx) => tx<{ id: string }[]>`select id from users`))).toEqual(userIds('uA'));
    expect(ids(await probe('omA1', (tx) => tx<{ id: string }[]>`select id from users`))).toEqual(userIds('oaA1', 'omA1', 'omA1b'));
    expect(ids(await probe('taA', (tx) => tx<{ id: string }[]>`select id from users`))).toEqual(userIds('super', 'taA', 'oaA1', 'omA1', 'omA1b', 'omA2'));
    expect((await probe('super', (tx) => tx`select id from users`)).length).toBe(10);
    // Nobody raises their own role or moves themselves into another scope.
    await expect(probe('omA1', (tx) => tx`update users set role = 'org_admin' where id = ${w.users.omA1.id}`)).rejects.toThrow(/row-level security/);
    await expect(probe('oaA1', (tx) => tx`update users set role = 'tenant_admin' where id = ${w.users.oaA1.id}`)).rejects.toThrow(/row-level security/);
    await expect(probe('uA', (tx) => tx`update users set organization_id = ${w.orgs.A1}, tenant_id = ${w.tenants.A} where id = ${w.users.uA.id}`)).rejects.toThrow(/row-level security/);
    expect((await probe('omA1', (tx) => tx`update users set first_name = 'Me' where id = ${w.users.omA1.id} returning id`)).length).toBe(1);
    // Nobody grants a role above what they manage.
    await expect(probe('oaA1', (tx) => tx`update users set role = 'org_admin' where id = ${w.users.omA1.id}`)).rejects.toThrow(/row-level security/);
    await expect(probe('taA', (tx) => tx`update users set role = 'tenant_admin' where id = ${w.users.omA1.id}`)).rejects.toThrow(/row-level security/);
    await expect(probe('taA', (tx) => tx`update users set role = 'super_admin' where id = ${w.users.omA1.id}`)).rejects.toThrow(/row-level security/);
    expect((await probe('taA', (tx) => tx`update users set role = 'org_admin' where id = ${w.users.omA1.id} returning id`)).length).toBe(1);
    expect((await probe('oaA1', (tx) => tx`update users set is_active = false where id = ${w.users.omA1.id} returning id`)).length).toBe(1);
    // ...and act in no other scope.
    expect((await probe('taA', (tx) => tx`update users set is_active = false where id = ${w.users.omB1.id} returning id`)).length).toBe(0);
    expect((await probe('oaA1', (tx) => tx`update users set is_active = false where id = ${w.users.omA2.id} returning id`)).length).toBe(0);
    expect((await probe('taA', (tx) => tx`delete from users where id = ${w.users.omB1.id} returning id`)).length).toBe(0);
    // Self-registration creates one plain user, nothing more.
    const newId = '00000000-0000-4000-8000-000000000001';
    const reg = await withUserTxRollback(newId, (tx) => tx`insert into users (id, email, username, role) values (${newId}, 'new@x.com', 'newbie', 'user') returning id`);
    expect(reg.length).toBe(1);
    await expect(withUserTxRollback(newId, (tx) => tx`insert into users (id, email, username, role) values (${newId}, 'new@x.com', 'newbie', 'super_admin')`)).rejects.toThrow(/row-level security/);
  });

  it('a deactivated user sees nothing any more', async () => {
    await db.adminSql`update users set is_active = false where id = ${w.users.omA2.id}`;
    try {
      expect((await probe('omA2', (tx) => tx`select id from companies`)).length).toBe(0);
    } finally {
      await db.adminSql`update users set is_active = true where id = ${w.users.omA2.id}`;
    }
  });

  it('sessions, bulk jobs and credentials: own rows and managed users only', async () => {
    for (const u of ['omA1', 'omB1', 'omA1b'] as UserKey[]) {
      await db.adminSql`insert into user_sessions (user_id, token_hash, expires_at) values (${w.users[u].id}, ${createHash('sha256').update(u).digest('hex')}, now() + interval '1 day')`;
      // Organization-level jobs: managers see those (a personal job is the uploader's alone, below).
      await db.adminSql`insert into bulk_upload_jobs (user_id, organization_id, tenant_id, prediction_type, access_level)
                        values (${w.users[u].id}, ${w.users[u].org}, ${w.users[u].tenant}, 'annual', 'organization')`;
      await db.adminSql`insert into user_credentials (user_id, password_hash) values (${w.users[u].id}, 'h')`;
    }
    const owners = async (u: UserKey, table: string) =>
      (await probe(u, (tx) => tx.unsafe(`select user_id from ${table}`))).map((r) => (r as unknown as { user_id: string }).user_id).sort();
    for (const t of ['user_sessions', 'bulk_upload_jobs', 'user_credentials']) {
      expect(await owners('omA1', t), t).toEqual(userIds('omA1'));
      expect(await owners('oaA1', t), t).toEqual(userIds('omA1', 'omA1b'));
      expect(await owners('taA', t), t).toEqual(userIds('omA1', 'omA1b'));
      expect(await owners('taB', t), t).toEqual(userIds('omB1'));
      expect(await owners('uA', t), t).toEqual([]);
    }
    expect((await probe('taA', (tx) => tx`update user_sessions set revoked_at = now() where user_id = ${w.users.omB1.id} returning id`)).length).toBe(0);
    expect((await probe('taB', (tx) => tx`update user_sessions set revoked_at = now() where user_id = ${w.users.omB1.id} returning id`)).length).toBe(1);
    await expect(probe('omA1', (tx) => tx`insert into user_sessions (user_id, token_hash, expires_at) values (${w.users.omA1b.id}, ${'b'.repeat(64)}, now())`)).rejects.toThrow(/row-level security/);
  });

  it('personal bulk jobs and their errors are the uploader\'s (and a super admin\'s), as personal predictions are; their identity is fixed', async () => {
    const [job] = await db.adminSql<[{ id: string }]>`
      insert into bulk_upload_jobs (user_id, prediction_type, access_level, file_name, file_path, status)
      values (${w.users.omA1.id}, 'annual', 'personal', 'my-private-list.csv', '/uploads/p.csv', 'queued') returning id`;
    await db.adminSql`insert into bulk_upload_errors (job_id, line, column_name, value, reason) values (${job.id}, 2, 'company_name', 'Secret Target Inc.', 'bad')`;
    const sees = async (u: UserKey) => ({
      job: (await probe(u, (tx) => tx`select id from bulk_upload_jobs where id = ${job.id}`)).length,
      errors: (await probe(u, (tx) => tx`select value from bulk_upload_errors where job_id = ${job.id}`)).length,
      cancel: (await probe(u, (tx) => tx`update bulk_upload_jobs set cancel_requested = true where id = ${job.id} returning id`)).length,
    });
    // The same as the personal prediction of the same member.
    expect((await probe('oaA1', (tx) => tx`select id from annual_predictions where id = ${w.annual.persA1}`)).length).toBe(0);
    expect(await sees('omA1')).toEqual({ job: 1, errors: 1, cancel: 1 });
    expect(await sees('super')).toEqual({ job: 1, errors: 1, cancel: 1 });
    for (const u of ['oaA1', 'taA', 'omA1b', 'taB'] as UserKey[]) expect(await sees(u), u).toEqual({ job: 0, errors: 0, cancel: 0 });
    expect((await probe('oaA1', (tx) => tx`delete from bulk_upload_jobs where id = ${job.id} returning id`)).length).toBe(0);
    // Re-pointing a job at another file, or making it visible to admins, is refused.
    await expect(probe('omA1', (tx) => tx`update bulk_upload_jobs set file_path = '/uploads/someone-elses.csv' where id = ${job.id}`)).rejects.toThrow(/fixed once recorded/);
    await expect(probe('omA1', (tx) => tx`update bulk_upload_jobs set access_level = 'organization', organization_id = ${w.orgs.A1} where id = ${job.id}`)).rejects.toThrow(/fixed once recorded/);
  });

  it('audit_logs: insert-only for the app, read by admins of the tenant', async () => {
    await probe('omA1', (tx) => tx`insert into audit_logs (user_id, tenant_id, action, table_name) values (${w.users.omA1.id}, ${w.tenants.A}, 'x', 'companies')`);
    await db.adminSql`insert into audit_logs (user_id, tenant_id, action, table_name) values
      (${w.users.omA1.id}, ${w.tenants.A}, 'create', 'companies'), (${w.users.omB1.id}, ${w.tenants.B}, 'create', 'companies')`;
    expect((await probe('omA1', (tx) => tx`select id from audit_logs`)).length).toBe(0);
    expect((await probe('taA', (tx) => tx`select id from audit_logs`)).length).toBe(1);
    expect((await probe('super', (tx) => tx`select id from audit_logs`)).length).toBe(2);
    await expect(probe('taA', (tx) => tx`update audit_logs set action = 'forged'`)).rejects.toThrow(/permission denied/);
    await expect(probe('super', (tx) => tx`delete from audit_logs`)).rejects.toThrow(/permission denied/);
    await expect(probe('omA1', (tx) => tx`insert into audit_logs (user_id, action, table_name) values (${w.users.omB1.id}, 'forged', 'x')`)).rejects.toThrow(/row-level security/);
  });

  it('app_user has nothing on the migrations and archive tables', async () => {
    for (const t of ['schema_migrations', 'annual_predictions_archive', 'quarterly_predictions_archive']) {
      await expect(probe('super', (tx) => tx.unsafe(`select * from ${t}`)), t).rejects.toThrow(/permission denied/);
    }
  });

  it('reporting roles read through their own policies; credentials stay hidden', async () => {
    for (const role of ['readonly_user', 'analytics_user']) {
      const sql = createPool(db.urlAs(role), { max: 1 });
      try {
        const [c] = await sql<{ n: number }[]>`select count(*)::int as n from companies`;
        expect(c!.n, role).toBe(8);
        await expect(sql`select * from user_credentials`, role).rejects.toThrow(/permission denied/);
        await expect(sql`delete from companies`, role).rejects.toThrow(/permission denied/);
      } finally {
        await sql.end();
      }
    }
  });
});

describe('withUserTx', () => {
  it('a pooled connection carries no user setting into the next transaction', async () => {
    const sql = createPool(db.appUrl, { max: 1 });
    try {
      const seen = await withUserTx(sql, w.users.super.id, (tx) => tx`select count(*)::int as n from companies`);
      expect(seen[0]!.n).toBe(8);
      const after = await sql<{ s: string | null; n: number }[]>`
        select current_setting('app.current_user_id', true) as s, (select count(*)::int from companies) as n`;
      expect(after[0]!.s ?? '').toBe('');
      expect(after[0]!.n).toBe(0);
      // A failed transaction leaks nothing either.
      await expect(withUserTx(sql, w.users.super.id, async (tx) => {
        await tx`select 1`;
        throw new Error('boom');
      })).rejects.toThrow('boom');
      const again = await sql<{ n: number }[]>`select count(*)::int as n from companies`;
      expect(again[0]!.n).toBe(0);
    } finally {
      await sql.end();
    }
  });

  it('refuses a non-uuid user id before touching the database', async () => {
    await expect(withUserTx(db.appSql, "x' or '1'='1", async () => 1)).rejects.toThrow(/uuid/);
  });

  it('runs the session in UTC', async () => {
    const [r] = await db.appSql<{ tz: string }[]>`select current_setting('TimeZone') as tz`;
    expect(r!.tz).toBe('UTC');
  });
});

async function withUserTxRollback<T>(userId: string, fn: (tx: TxSql) => Promise<T>): Promise<T> {
  try {
    await withUserTx(db.appSql, userId, async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (err) {
    if (err instanceof Rollback) return err.value as T;
    throw err;
  }
  throw new Error('unreachable');
}
