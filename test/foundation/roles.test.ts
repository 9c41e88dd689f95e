import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { APP_ROLES, applyRolePasswords, resolveRolePassword, scramSha256Verifier } from '../../src/db/roles.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TEST_ROLE_PASSWORD } from '../helpers/env.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await applyRolePasswords(db.adminSql, Object.fromEntries(APP_ROLES.map((r) => [r, TEST_ROLE_PASSWORD])));
  await db.drop();
});

/** The server's own log file, wherever this cluster writes it. */
async function serverLogFile(): Promise<string | null> {
  const [r] = await db.adminSql<{ f: string | null; dd: string; v: string }[]>`
    select pg_current_logfile() as f, current_setting('data_directory') as dd, current_setting('server_version_num') as v`;
  if (r?.f) return path.isAbsolute(r.f) ? r.f : path.join(r.dd, r.f);
  const major = Math.floor(Number(r!.v) / 10000);
  const debian = `/var/log/postgresql/postgresql-${major}-main.log`;
  return existsSync(debian) ? debian : null;
}

describe('database roles', () => {
  it('computes the same SCRAM-SHA-256 verifier as PostgreSQL', async () => {
    const role = `accunode_scram_probe_${randomBytes(4).toString('hex')}`;
    const pw = 'probe-' + randomBytes(8).toString('hex');
    await db.adminSql.unsafe(`SET password_encryption = 'scram-sha-256'`);
    await db.adminSql.unsafe(`CREATE ROLE ${role} PASSWORD '${pw}'`);
    try {
      const [r] = await db.adminSql<{ p: string }[]>`select rolpassword as p from pg_authid where rolname = ${role}`;
      const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(r!.p)!;
      expect(scramSha256Verifier(pw, Buffer.from(m[2]!, 'base64'), Number(m[1]))).toBe(r!.p);
    } finally {
      await db.adminSql.unsafe(`DROP ROLE ${role}`);
    }
  });

  it('gives every role LOGIN with a verifier, never sending the password (checked in the server log)', async () => {
    const logFile = await serverLogFile();
    expect(logFile, 'the server log must be readable to prove this').not.toBeNull();
    const before = statSync(logFile!).size;
    const secret = 'plaintext-' + randomBytes(12).toString('hex');
    const sql = createPool(db.adminUrl, { max: 1 });
    try {
      await sql`set log_statement = 'mod'`;
      await applyRolePasswords(sql, Object.fromEntries(APP_ROLES.map((r) => [r, secret])));
    } finally {
      await sql.end();
    }
    const rows = await db.adminSql<{ rolname: string; rolcanlogin: boolean; p: string }[]>`
      select rolname, rolcanlogin, rolpassword as p from pg_authid where rolname in ${db.adminSql([...APP_ROLES])}`;
    expect(rows.length).toBe(APP_ROLES.length);
    for (const r of rows) {
      expect(r.rolcanlogin, r.rolname).toBe(true);
      expect(r.p, r.rolname).toMatch(/^SCRAM-SHA-256\$4096:/);
    }
    // The log grows asynchronously; give the logger a moment.
    await new Promise((r) => setTimeout(r, 300));
    const logged = readFileSync(logFile!).subarray(before).toString('utf8');
    expect(logged).toContain("ALTER ROLE app_user WITH LOGIN PASSWORD 'SCRAM-SHA-256$");
    expect(logged).not.toContain(secret);
  });

  it('generates a missing password once and keeps it 0600', () => {
    const dir = path.join(os.tmpdir(), 'accunode-roles-' + randomBytes(4).toString('hex'));
    const a = resolveRolePassword('app_user', undefined, dir);
    const b = resolveRolePassword('app_user', undefined, dir);
    expect(a).toBe(b);
    expect(a.length).toBeGreaterThanOrEqual(32);
    expect(statSync(path.join(dir, 'secrets', 'app_user.password')).mode & 0o777).toBe(0o600);
    expect(resolveRolePassword('app_user', 'configured', dir)).toBe('configured');
  });

  it('monitoring_user is a member of pg_monitor', async () => {
    const [r] = await db.adminSql<{ ok: boolean }[]>`select pg_has_role('monitoring_user', 'pg_monitor', 'member') as ok`;
    expect(r!.ok).toBe(true);
  });

  it('default privileges cover tables added later', async () => {
    await db.adminSql`create table later_table (id int)`;
    const [r] = await db.adminSql<{ app: boolean; ro: boolean }[]>`
      select has_table_privilege('app_user', 'later_table', 'INSERT') as app, has_table_privilege('readonly_user', 'later_table', 'SELECT') as ro`;
    expect(r).toEqual({ app: true, ro: true });
  });
});
