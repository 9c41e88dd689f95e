// Issue 13, item 9: row-level security binds only the roles it was written for. Request pools
// (primary and replicas) must be app_user; a user cannot re-point its bulk job at another file;
// /metrics needs its token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createWorldApp, type WorldApp } from '../helpers/app.js';
import { withUserTx } from '../../src/db/tx.js';
import { ReplicaRouter } from '../../src/db/replicas.js';
import { assertRequestRole } from '../../src/db/request-role.js';
import { createPool } from '../../src/db/pool.js';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generatedSecretFile, resolveGeneratedSecret } from '../../src/config/generated-secret.js';

let wa: WorldApp;
beforeAll(async () => {
  wa = await createWorldApp(['super', 'taA', 'omA1']);
});
afterAll(async () => {
  await wa.close();
});

describe('row-level security holds for the roles it was written for', () => {
  it('a bulk job cannot be re-pointed at another file, by its owner or a super admin', async () => {
    const owner = wa.w.users.omA1.id;
    const [job] = await wa.db.adminSql<{ id: string }[]>`
      insert into bulk_upload_jobs (user_id, prediction_type, file_name, file_path, file_format)
      values (${owner}, 'annual', 'a.csv', '/var/lib/accunode/uploads/x.csv', 'csv') returning id`;
    await expect(withUserTx(wa.db.appSql, owner, (tx) => tx`update bulk_upload_jobs set file_path = '/etc/passwd' where id = ${job!.id}`)).rejects.toThrow(/fixed once recorded/);
    await expect(withUserTx(wa.db.appSql, wa.w.users.super.id, (tx) => tx`update bulk_upload_jobs set file_path = '/etc/shadow' where id = ${job!.id}`)).rejects.toThrow(/fixed once recorded/);
    // The job itself still moves on (a cancel), its file untouched.
    const cancelled = await withUserTx(wa.db.appSql, owner, (tx) => tx`update bulk_upload_jobs set status = 'cancelled' where id = ${job!.id} returning file_path`);
    expect(cancelled).toEqual([{ file_path: '/var/lib/accunode/uploads/x.csv' }]);
  });

  it('the replica pool refuses a DATABASE_READ_URLS entry that logs in as analytics_user (or the owner)', async () => {
    for (const url of [wa.db.urlAs('analytics_user'), wa.db.adminUrl]) {
      const router = new ReplicaRouter({ urls: [wa.db.appUrl, url], lagLimitSeconds: 60, poolSize: 1, requireAppUser: true });
      try {
        await expect(router.verifyRoles()).rejects.toThrow(/DATABASE_READ_URLS entry 2 .* logs in as (analytics_user|postgres), not app_user/);
        // Even if started anyway, it is never chosen: only the app_user replica serves.
        const states = await router.check();
        expect(states.map((s) => s.healthy)).toEqual([true, false]);
        expect(states[1]!.reason).toMatch(/^refused: logs in as/);
      } finally {
        await router.close();
      }
    }
    const ok = new ReplicaRouter({ urls: [wa.db.appUrl], lagLimitSeconds: 60, poolSize: 1, requireAppUser: true });
    await expect(ok.verifyRoles()).resolves.toBeUndefined();
    await ok.close();
  });

  it('a request pool must log in as app_user without superuser, BYPASSRLS or table ownership', async () => {
    await expect(assertRequestRole(wa.db.appSql, 'DATABASE_URL')).resolves.toBeUndefined();
    await expect(assertRequestRole(wa.db.adminSql, 'DATABASE_URL')).rejects.toThrow(/DATABASE_URL logs in as postgres, not app_user/);
    const analytics = createPool(wa.db.urlAs('analytics_user'), { max: 1 });
    try {
      await expect(assertRequestRole(analytics, 'DATABASE_URL')).rejects.toThrow(/analytics_user/);
    } finally {
      await analytics.end();
    }
    // Every table with row-level security is owned by a role app_user is not (and does not
    // inherit): that, not FORCE, is what keeps the policies binding for it (migration 0043).
    const owned = await wa.db.adminSql`
      select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relrowsecurity and pg_has_role('app_user', c.relowner, 'USAGE')`;
    expect(owned).toEqual([]);
  });
});

describe('/metrics', () => {
  it('is refused without METRICS_TOKEN, and with one answers only a scrape that carries it', async () => {
    const closed = await wa.t.request({ method: 'GET', url: '/metrics' });
    expect(closed.statusCode).toBe(403);
    expect(closed.json().error.message).toMatch(/set METRICS_TOKEN/);
    expect((await wa.t.request({ method: 'GET', url: '/metrics', token: wa.tok.super })).statusCode).toBe(403);

    const token = 'metrics-token-for-this-test-0123456789';
    const open = await createTestApp(wa.db, { metricsToken: token });
    try {
      const none = await open.request({ method: 'GET', url: '/metrics' });
      expect(none.statusCode).toBe(401);
      expect(none.json().error.message).toMatch(/Authorization: Bearer/);
      expect((await open.request({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
      // A user's session token is not the metrics token, super admin or not.
      expect((await open.request({ method: 'GET', url: '/metrics', token: wa.tok.super })).statusCode).toBe(401);
      const ok = await open.request({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toMatch(/accunode_http_request_duration_seconds/);
    } finally {
      await open.close();
    }
  });

  it('`up` makes its metrics token once, 0600, and keeps it across restarts', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'accunode-secrets-'));
    const first = resolveGeneratedSecret(dir, 'metrics.token');
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(resolveGeneratedSecret(dir, 'metrics.token')).toBe(first);
    expect(statSync(generatedSecretFile(dir, 'metrics.token')).mode & 0o777).toBe(0o600);
  });
});
