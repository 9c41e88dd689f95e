/**
 * A whole AccuNode deployment on this machine for the fault and scale-out suites: a PostgreSQL
 * cluster of our own (so it can be restarted and killed), redis-servers of our own with AOF,
 * and real `accunode api` / `accunode worker` child processes on free ports. A bounded load
 * generator records what was acknowledged, so a scenario can say what was lost. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { createPool, type Sql } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { APP_ROLES, applyRolePasswords } from '../../src/db/roles.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { setWorldPasswords, TEST_PASSWORD } from '../helpers/app.js';
import type { TestDatabase } from '../helpers/db.js';
import { freePort, startScratchPostgres, type ScratchPostgres } from '../ops/servers.js';

export const ROLE_PW = 'scale-test-password';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** A redis-server of our own with AOF (appendfsync everysec, noeviction) that can be restarted on the same port and data. */
export class AofRedis {
  child: ChildProcess | null = null;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-scale-redis-'));
  private constructor(readonly port: number, readonly extra: string[]) {}

  static async start(extra: string[] = []): Promise<AofRedis> {
    const r = new AofRedis(await freePort(), extra);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction', ...this.extra], { stdio: 'ignore' });
    await waitFor(async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      try {
        await c.connect();
        // Ready only once the AOF is loaded (PING answers LOADING before).
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    }, 15_000, `redis-server on ${this.port}`, 50);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
    await waitFor(async () => !(await portOpen(this.port)), 10_000, 'redis port to close', 50);
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Cluster {
  pg: ScratchPostgres & { root: string };
  adminUrl: string;
  appUrl: string;
  adminSql: Sql;
  world: World;
  close(): Promise<void>;
}

/** Our own PostgreSQL (migrated, roles with passwords, the two-tenant world with known passwords). */
export async function startDatabase(conf = ''): Promise<Cluster> {
  const pg = await startScratchPostgres({ conf: `max_connections = 200\n${conf}` });
  const boot = postgres(pg.url(), { max: 1, onnotice: () => {} });
  await boot.unsafe('CREATE DATABASE accunode');
  await boot.end();
  const adminUrl = pg.url('accunode');
  const adminSql = createPool(adminUrl, { max: 3 });
  await migrate(adminSql);
  await applyRolePasswords(adminSql, Object.fromEntries(APP_ROLES.map((r) => [r, ROLE_PW])));
  const world = await buildWorld(adminSql);
  await setWorldPasswords({ adminSql } as TestDatabase, world);
  const appUrl = `postgres://app_user:${ROLE_PW}@127.0.0.1:${pg.port}/accunode`;
  return {
    pg,
    adminUrl,
    appUrl,
    adminSql,
    world,
    async close() {
      await adminSql.end({ timeout: 2 }).catch(() => {});
      pg.stop();
    },
  };
}

export interface RoleProcess {
  role: 'api' | 'worker' | 'scheduler';
  child: ChildProcess;
  port: number;
  base: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `node --import tsx src/entrypoints/cli.ts api|worker|scheduler` with the deployment's environment. */
export async function startRole(role: 'api' | 'worker' | 'scheduler', env: Record<string, string>, opts: { waitReady?: boolean } = {}): Promise<RoleProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli.ts', role], {
    cwd: process.cwd(),
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SEED_DEMO: 'false',
      QUEUE_LOCK_DURATION_MS: '3000',
      QUEUE_STALLED_INTERVAL_MS: '1000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const base = `http://127.0.0.1:${port}`;
  const p: RoleProcess = {
    role,
    child,
    port,
    base,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => { clearTimeout(t); resolve(); });
        child.kill(signal);
      });
    },
  };
  if (role === 'api' && opts.waitReady !== false) {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`api exited: ${out}`);
      const r = await fetch(`${base}/health/ready`);
      return r.status === 200;
    }, 60_000, `api on ${port} (output: ${out.slice(-2000)})`, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${out.slice(-3000)}`);
    });
  }
  if ((role === 'worker' || role === 'scheduler') && opts.waitReady !== false) {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${role} exited: ${out}`);
      return new RegExp(`${role} running`).test(out);
    }, 60_000, `${role} (output: ${out.slice(-2000)})`, 200);
  }
  return p;
}

/** The environment every role of one deployment shares. */
export function deploymentEnv(c: { adminUrl: string; appUrl: string }, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const data = mkdtempSync(path.join(os.tmpdir(), 'accunode-scale-data-'));
  mkdirSync(path.join(data, 'uploads'), { recursive: true });
  return {
    DATABASE_URL: c.appUrl,
    DATABASE_ADMIN_URL: c.adminUrl,
    REDIS_URL: redisUrl,
    ACCUNODE_DATA_DIR: data,
    BULK_UPLOAD_DIR: path.join(data, 'uploads'),
    MONITORING_USER_PASSWORD: ROLE_PW,
    RATE_LIMIT_DEFAULT: '1000000',
    RATE_LIMIT_PREDICTIONS: '1000000',
    RATE_LIMIT_BULK: '100000',
    RATE_LIMIT_ANONYMOUS: '1000000',
    RATE_LIMIT_LOGIN: '100000',
    RATE_LIMIT_ADMIN: '1000000',
    ...extra,
  };
}

export async function login(base: string, who: string): Promise<string> {
  const r = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: who, password: TEST_PASSWORD }) });
  if (r.status !== 200) throw new Error(`login ${who}: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { token: string }).token;
}

export interface LoadReport {
  requests: number;
  ok: number;
  /** Refusals and failures by status ("503", "ECONNREFUSED"…): not acknowledged, so not lost. */
  errors: Record<string, number>;
  /** Predictions whose 201 reached the client. */
  acknowledged: string[];
  /** Session checks (GET /auth/me) that answered 401: a session the system forgot. */
  sessionLost: number;
  seconds: number;
}

/**
 * Bounded mixed load against one or more api processes: creates (POST /predictions/annual),
 * reads of what was created, lists, and session checks. Stops on stop() or after maxSeconds.
 */
export function startLoad(o: { bases: string[]; token: string; concurrency?: number; maxSeconds?: number; symbolPrefix: string; timeoutMs?: number }) {
  const report: LoadReport = { requests: 0, ok: 0, errors: {}, acknowledged: [], sessionLost: 0, seconds: 0 };
  let stopped = false;
  const t0 = Date.now();
  const deadline = t0 + (o.maxSeconds ?? 120) * 1000;
  let n = 0;
  const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const fail = (k: string) => (report.errors[k] = (report.errors[k] ?? 0) + 1);
  const one = async (worker: number) => {
    const i = n++;
    const base = o.bases[i % o.bases.length]!;
    const kind = i % 10;
    report.requests++;
    try {
      const signal = AbortSignal.timeout(o.timeoutMs ?? 10_000);
      if (kind < 3) {
        const r = await fetch(`${base}/api/v1/predictions/annual`, {
          method: 'POST', headers, signal,
          body: JSON.stringify({ company: { symbol: `${o.symbolPrefix}${worker}X${i}`.slice(0, 10), name: `Load ${i}` }, reporting_year: '2024', long_term_debt_to_total_capital: 30, total_debt_to_ebitda: 2, net_income_margin: 5, ebit_to_interest_expense: 4, return_on_assets: 3 }),
        });
        if (r.status === 201) {
          report.acknowledged.push(((await r.json()) as { id: string }).id);
          report.ok++;
        } else {
          await r.arrayBuffer();
          fail(String(r.status));
        }
      } else if (kind < 5) {
        const r = await fetch(`${base}/api/v1/auth/me`, { headers, signal });
        await r.arrayBuffer();
        if (r.status === 200) report.ok++;
        else {
          if (r.status === 401) report.sessionLost++;
          fail(String(r.status));
        }
      } else {
        const last = report.acknowledged[report.acknowledged.length - 1];
        const url = kind < 8 && last ? `${base}/api/v1/predictions/annual/${last}` : `${base}/api/v1/predictions/annual?limit=5`;
        const r = await fetch(url, { headers, signal });
        await r.arrayBuffer();
        if (r.status === 200) report.ok++;
        else fail(String(r.status));
      }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      fail(e.cause?.code ?? e.name);
      await sleep(50);
    }
  };
  const loops = Array.from({ length: o.concurrency ?? 8 }, async (_, w) => {
    while (!stopped && Date.now() < deadline) await one(w);
  });
  return {
    report,
    async stop(): Promise<LoadReport> {
      stopped = true;
      await Promise.all(loops);
      report.seconds = (Date.now() - t0) / 1000;
      return report;
    },
  };
}

/** Acknowledged predictions missing from the database. */
export async function lostPredictions(adminSql: Sql, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const [r] = await adminSql<[{ n: number }]>`select count(*)::int as n from annual_predictions where id = any(${ids}::uuid[])`;
  return ids.length - r.n;
}

export async function readyStatus(base: string): Promise<number> {
  try {
    const r = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(5000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** pg_ctl stop/start of our own cluster (as the postgres user), same port and options as it was started with. */
export async function pgCtl(pg: ScratchPostgres & { root: string }, action: 'stop-fast' | 'stop-immediate' | 'start'): Promise<void> {
  const args = action === 'start'
    ? ['-D', pg.dataDir, '-l', path.join(pg.root, `pg-${pg.port}.log`), '-w', '-t', '60', '-o', `-p ${pg.port} -k ${pg.socketDir} -c listen_addresses=127.0.0.1`, 'start']
    : ['-D', pg.dataDir, '-w', '-m', action === 'stop-fast' ? 'fast' : 'immediate', 'stop'];
  const isRoot = process.getuid?.() === 0;
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, ...args]] : [`${PG_BIN}/pg_ctl`, args];
  await new Promise<void>((resolve, reject) => {
    const c = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl ${action}: ${out}`))));
  });
}

/** A multipart body with one CSV file. */
export function multipartCsv(csv: string, filename = 'upload.csv'): { body: Buffer; contentType: string } {
  const boundary = '----scale' + Math.random().toString(16).slice(2);
  return {
    body: Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: text/csv\r\n\r\n`),
      Buffer.from(csv),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** POST /predictions/bulk; the job id when acknowledged (202), else null. */
export async function uploadBulk(base: string, token: string, csv: string): Promise<string | null> {
  const m = multipartCsv(csv);
  try {
    const r = await fetch(`${base}/api/v1/predictions/bulk?type=annual`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': m.contentType }, body: m.body, signal: AbortSignal.timeout(15_000) });
    if (r.status !== 202) {
      await r.arrayBuffer();
      return null;
    }
    return ((await r.json()) as { job_id: string }).job_id;
  } catch {
    return null;
  }
}

/** Waits until every job is finished; returns their rows. */
export async function waitJobs(adminSql: Sql, ids: string[], timeoutMs: number): Promise<Array<{ id: string; status: string; rows_succeeded: number; rows_failed: number; attempts: number }>> {
  return waitFor(async () => {
    if (ids.length === 0) return [];
    const rows = await adminSql<Array<{ id: string; status: string; rows_succeeded: number; rows_failed: number; attempts: number }>>`
      select id, status, rows_succeeded, rows_failed, attempts from bulk_upload_jobs where id = any(${ids}::uuid[])`;
    return rows.length === ids.length && rows.every((r) => r.status !== 'queued' && r.status !== 'running') ? rows : null;
  }, timeoutMs, `bulk jobs ${ids.join(', ')} to finish`, 250);
}
