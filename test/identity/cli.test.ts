import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

let db: TestDatabase;
let t: TestApp;
beforeAll(async () => {
  db = await createTestDatabase();
  t = await createTestApp(db);
});
afterAll(async () => {
  await t.close();
  await db.drop();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli.ts', ...args], {
      env: { ...process.env, DATABASE_ADMIN_URL: db.adminUrl, DATABASE_URL: db.appUrl, LOG_LEVEL: 'warn', ACCUNODE_DATA_DIR: '/tmp/accunode-cli-test' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('bootstrap CLI', () => {
  it('creates a tenant, an organization and the first super admin, who can then sign in', async () => {
    const tenant = await cli(['tenant', 'create', '--name', 'Acme Holdings', '--json']);
    expect(tenant.code, tenant.stderr).toBe(0);
    const tenantId = JSON.parse(tenant.stdout).id;
    const org = await cli(['org', 'create', '--tenant', tenantId, '--name', 'Credit Desk', '--json']);
    expect(org.code, org.stderr).toBe(0);
    const orgId = JSON.parse(org.stdout).id;
    const admin = await cli(['user', 'create', '--email', 'root@acme.example', '--username', 'root', '--password', 'Very-Strong-Pass-1', '--role', 'super_admin', '--json']);
    expect(admin.code, admin.stderr).toBe(0);
    const member = await cli(['user', 'create', '--email', 'ana@acme.example', '--username', 'ana', '--password', 'Very-Strong-Pass-2', '--role', 'org_member', '--org', orgId]);
    expect(member.code, member.stderr).toBe(0);
    expect(member.stdout).toMatch(/ana@acme\.example\s+ana\s+org_member/);
    const token = await t.login('root', 'Very-Strong-Pass-1');
    const me = await t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    expect(me.json()).toMatchObject({ role: 'super_admin', email: 'root@acme.example', is_verified: true });
    const anaToken = await t.login('ana@acme.example', 'Very-Strong-Pass-2');
    expect((await t.request({ method: 'GET', url: '/api/v1/auth/me', token: anaToken })).json()).toMatchObject({ organization_id: orgId, tenant_id: tenantId });
  });

  it('user verify marks an address verified when no e-mail can reach it, and retires its links', async () => {
    const reg = await t.request({ method: 'POST', url: '/api/v1/auth/register', payload: { email: 'offline@acme.example', username: 'offline', password: 'Very-Strong-Pass-4' } });
    expect(reg.statusCode).toBe(202);
    const link = t.verificationToken('offline@acme.example');
    const res = await cli(['user', 'verify', '--email', 'Offline@Acme.example', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ email: 'offline@acme.example', is_verified: true });
    expect((await t.request({ method: 'POST', url: '/api/v1/auth/verify', payload: { token: link } })).statusCode).toBe(409);
    const missing = await cli(['user', 'verify', '--email', 'nobody@acme.example']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no account with the e-mail address nobody@acme.example/);
  });

  it('refuses bad input with one clear message', async () => {
    const bad = await cli(['user', 'create', '--email', 'x@y.z', '--username', 'xx', '--password', 'Very-Strong-Pass-3', '--role', 'emperor']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--role must be one of/);
    const weak = await cli(['user', 'create', '--email', 'x@y.z', '--username', 'xx', '--password', 'weak', '--role', 'user']);
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/password must be at least 12/);
    const noOrg = await cli(['user', 'create', '--email', 'x@y.z', '--username', 'xx', '--password', 'Very-Strong-Pass-3', '--role', 'org_member']);
    expect(noOrg.stderr).toMatch(/--org is required/);
  });
});
