import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, statSync, readFileSync, existsSync } from 'node:fs';
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

  it('starts an embedded PostgreSQL and a redis-server when nothing is listening, and leaves no orphan', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-emb-'));
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const up = await startUp({ ACCUNODE_DATA_DIR: dataDir, LOCAL_PG_PORT: String(pgPort), LOCAL_REDIS_PORT: String(redisPort),
      DATABASE_URL: '', DATABASE_ADMIN_URL: '', REDIS_URL: '' }, 120_000);
    const ready = await fetch(`${up.url}/health/ready`);
    expect(ready.status, await ready.text()).toBe(200);
    expect(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'redis', 'appendonlydir'))).toBe(true);
    expect(await up.stop('SIGINT')).toBe(0);
    const open = (port: number) => new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    expect(await open(pgPort)).toBe(false);
    expect(await open(redisPort)).toBe(false);
    expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  }, 180_000);

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
