// Hardened transports (npm run test:scale / npm run test:tls): PostgreSQL with ssl = on and the
// shipped ops/postgres/pg_hba.conf (hostssl + scram-sha-256 only, no trust), Redis with
// requirepass and TLS only (port 0, tls-port), both with certificates this test makes with
// openssl (a CA and a server certificate with SAN IP:127.0.0.1). A real `accunode api` and
// `accunode worker` connect with sslmode=verify-full (the CA trusted through NODE_EXTRA_CA_CERTS)
// and rediss:// (the CA from REDIS_TLS_CA_FILE): login, a prediction and a bulk job work, every
// app connection is encrypted, and plain or unverified connections are refused. Loopback only.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRows, toCsv } from '../bulk/helpers.js';
import { freePort, startScratchPostgres, type ScratchPostgres } from '../ops/servers.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { APP_ROLES, applyRolePasswords } from '../../src/db/roles.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { deploymentEnv, login, ROLE_PW, startRole, uploadBulk, waitFor, waitJobs, type RoleProcess } from './harness.js';

const PG_PW = 'tls-owner-password';
const REDIS_PW = 'tls-redis-password';
const certs = mkdtempSync(path.join(os.tmpdir(), 'accunode-tls-certs-'));
const ca = path.join(certs, 'ca.crt');
let pg: ScratchPostgres & { root: string };
let adminSql: Sql;
let world: World;
let redis: { port: number; child: ChildProcess; dir: string };
let api: RoleProcess;
let worker: RoleProcess;
let pgUrl: (db: string, user: string, pw: string, sslmode: string) => string;
const figures: Record<string, unknown> = {};

/** A CA and a server certificate it signed, valid for 127.0.0.1 and localhost. */
function makeCerts(): { crt: string; key: string } {
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: certs, stdio: 'pipe' });
  o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=AccuNode test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  o('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(path.join(certs, 'san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n');
  o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.crt');
  chmodSync(certs, 0o755);
  for (const f of ['ca.crt', 'server.crt', 'server.key']) chmodSync(path.join(certs, f), 0o644);
  return { crt: readFileSync(path.join(certs, 'server.crt'), 'utf8'), key: readFileSync(path.join(certs, 'server.key'), 'utf8') };
}

async function startTlsRedis(): Promise<{ port: number; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-tls-redis-'));
  const child = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--tls-cert-file', path.join(certs, 'server.crt'), '--tls-key-file', path.join(certs, 'server.key'), '--tls-ca-cert-file', ca,
    '--tls-auth-clients', 'no', '--requirepass', REDIS_PW,
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction',
  ], { stdio: 'ignore' });
  await waitFor(async () => {
    const c = new Redis({ port, host: '127.0.0.1', password: REDIS_PW, tls: { ca: readFileSync(ca) }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } finally {
      c.disconnect();
    }
  }, 15_000, `TLS redis on ${port}`, 100);
  return { port, child, dir };
}

beforeAll(async () => {
  const cert = makeCerts();
  pg = await startScratchPostgres({
    conf: "ssl = on\npassword_encryption = 'scram-sha-256'\nmax_connections = 200",
    files: { 'server.crt': cert.crt, 'server.key': cert.key, 'pg_hba.conf': readFileSync('ops/postgres/pg_hba.conf', 'utf8') },
  });
  // The owner's password, set over the Unix socket as the postgres OS user (the shipped
  // pg_hba.conf's only non-TLS way in: `local all postgres peer`).
  const asPg = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/psql']] as const : ['/usr/lib/postgresql/15/bin/psql', []] as const;
  execFileSync(asPg[0], [...asPg[1], '-h', pg.socketDir, '-p', String(pg.port), '-U', 'postgres', '-d', 'postgres', '-qAt', '-c', `ALTER ROLE postgres PASSWORD '${PG_PW}'`], { stdio: 'pipe' });
  pgUrl = (db, user, pw, sslmode) => `postgres://${user}:${pw}@127.0.0.1:${pg.port}/${db}?sslmode=${sslmode}`;
  // This test process does not trust the CA (NODE_EXTRA_CA_CERTS is read at start-up): its own
  // set-up connections encrypt without verifying; the app's processes verify.
  const boot = postgres(pgUrl('postgres', 'postgres', PG_PW, 'require'), { max: 1, onnotice: () => {} });
  await boot.unsafe('CREATE DATABASE accunode');
  await boot.end();
  adminSql = createPool(pgUrl('accunode', 'postgres', PG_PW, 'require'), { max: 3 });
  await migrate(adminSql);
  await applyRolePasswords(adminSql, Object.fromEntries(APP_ROLES.map((r) => [r, ROLE_PW])));
  world = await buildWorld(adminSql);
  await setWorldPasswords({ adminSql } as TestDatabase, world);
  redis = await startTlsRedis();
  const env = deploymentEnv(
    { adminUrl: pgUrl('accunode', 'postgres', PG_PW, 'verify-full'), appUrl: pgUrl('accunode', 'app_user', ROLE_PW, 'verify-full') },
    `rediss://:${REDIS_PW}@127.0.0.1:${redis.port}`,
    { REDIS_TLS_CA_FILE: ca, NODE_EXTRA_CA_CERTS: ca, WORKER_QUEUES: 'bulk', BULK_CHUNK_ROWS: '100' },
  );
  api = await startRole('api', env);
  worker = await startRole('worker', env);
}, 180_000);

afterAll(async () => {
  console.log('hardened transports:', JSON.stringify(figures, null, 2));
  await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
  redis?.child.kill('SIGKILL');
  if (redis) rmSync(redis.dir, { recursive: true, force: true });
  await adminSql?.end({ timeout: 2 }).catch(() => {});
  pg?.stop();
  rmSync(certs, { recursive: true, force: true });
});

describe('PostgreSQL scram-sha-256 + SSL and Redis AUTH + TLS', () => {
  it('api login, a prediction and a bulk job work over TLS with authentication', async () => {
    const token = await login(api.base, 'oaA1');
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${api.base}/api/v1/predictions/annual`, {
      method: 'POST', headers,
      body: JSON.stringify({ company: { symbol: 'TLS1', name: 'Transport Layer' }, reporting_year: '2024', long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, net_income_margin: 5, ebit_to_interest_expense: 4, return_on_assets: 3 }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const read = await fetch(`${api.base}/api/v1/predictions/annual/${id}`, { headers });
    expect(read.status).toBe(200);
    const jobId = await uploadBulk(api.base, token, toCsv('annual', makeRows('annual', 200, { seed: 31, symbolPrefix: 'TL' })));
    expect(jobId).toBeTruthy();
    const [job] = await waitJobs(adminSql, [jobId!], 120_000);
    expect(job).toMatchObject({ status: 'completed', rows_succeeded: 200, attempts: 1 });
    const ready = await fetch(`${api.base}/health/ready`);
    // Every connection of the app's roles is encrypted, and their passwords are SCRAM verifiers.
    const conns = await adminSql<Array<{ usename: string; ssl: boolean; n: number }>>`
      select a.usename, s.ssl, count(*)::int as n from pg_stat_activity a join pg_stat_ssl s using (pid)
      where a.usename in ('app_user', 'monitoring_user') group by 1, 2 order by 1, 2`;
    const [{ scram }] = await adminSql<[{ scram: boolean }]>`select bool_and(rolpassword like 'SCRAM-SHA-256$%') as scram from pg_authid where rolname in ('postgres', 'app_user', 'monitoring_user')`;
    figures.app = { login: 200, prediction: created.status, bulk_job: job, ready: ready.status, pg_connections: conns, scram_verifiers: scram };
    expect(ready.status).toBe(200);
    expect(conns.length).toBeGreaterThan(0);
    expect(conns.every((c) => c.ssl)).toBe(true);
    expect(scram).toBe(true);
  }, 180_000);

  it('refuses plain connections, unverified certificates and missing passwords', async () => {
    const attempt = async (url: string) => {
      const s = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
      try {
        await s`select 1`;
        return 'connected';
      } catch (err) {
        return (err as Error).message;
      } finally {
        await s.end({ timeout: 1 }).catch(() => {});
      }
    };
    const plainPg = await attempt(pgUrl('accunode', 'app_user', ROLE_PW, 'disable'));
    const wrongPw = await attempt(pgUrl('accunode', 'app_user', 'wrong', 'require'));
    // This process does not trust the test CA: verify-full must fail.
    const unverified = await attempt(pgUrl('accunode', 'app_user', ROLE_PW, 'verify-full'));
    const redisNoAuth = await (async () => {
      const c = new Redis({ port: redis.port, host: '127.0.0.1', tls: { ca: readFileSync(ca) }, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
      // ioredis 6 opens with HELLO, which the server answers NOAUTH (reported as an error event).
      let first = '';
      c.on('error', (err: Error) => (first ||= err.message));
      try {
        await c.connect();
        return String(await c.set('x', '1'));
      } catch (err) {
        return first || (err as Error).message;
      } finally {
        c.disconnect();
      }
    })();
    const redisPlain = await (async () => {
      const c = new Redis({ port: redis.port, host: '127.0.0.1', password: REDIS_PW, lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      try {
        await c.connect();
        return String(await c.ping());
      } catch (err) {
        return (err as Error).message;
      } finally {
        c.disconnect();
      }
    })();
    figures.refused = { plainPg, wrongPw, unverified, redisNoAuth, redisPlain };
    expect(plainPg).toMatch(/pg_hba\.conf|rejects connection/);
    expect(wrongPw).toMatch(/password authentication failed/);
    expect(unverified).toMatch(/self[- ]signed|unable to (get|verify)/i);
    expect(redisNoAuth).toMatch(/NOAUTH/);
    expect(redisPlain).not.toBe('PONG');
  });
});
