// Local server plumbing for backups, PITR and DR: PostgreSQL's server programs (initdb, pg_ctl,
// pg_basebackup, pg_rewind, pgbackrest) run as the `postgres` user (root goes through runuser),
// asynchronously so a running load generator or API keeps its event loop.
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/** The newest installed PostgreSQL server binaries (Debian layout), or PG_BIN_DIR. */
function pgBinDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const base = '/usr/lib/postgresql';
  try {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v) && existsSync(path.join(base, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(base, versions[0], 'bin');
  } catch {
    /* not Debian */
  }
  return '';
}

export function pgBin(name: string): string {
  const dir = pgBinDir();
  return dir ? path.join(dir, name) : name;
}

const isRoot = () => process.getuid?.() === 0;

function postgresIds(): { uid: number; gid: number } | null {
  if (!isRoot()) return null;
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
    };
  } catch {
    throw new Error('the `postgres` user does not exist: server programs must run as the owner of the data directory');
  }
}

/** mkdir -p, then (as root) hand every created directory to postgres. */
export function ensurePostgresDir(dir: string, mode = 0o700): string {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; !existsSync(d); d = path.dirname(d)) missing.unshift(d);
  mkdirSync(abs, { recursive: true, mode });
  const ids = postgresIds();
  if (ids) for (const d of missing.length ? missing : [abs]) if (statSync(d).uid !== ids.uid) chownSync(d, ids.uid, ids.gid);
  return abs;
}

export function chownToPostgres(file: string): void {
  const ids = postgresIds();
  if (ids) chownSync(file, ids.uid, ids.gid);
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly result: RunResult,
  ) {
    super(`${path.basename(cmd)} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join(' | ')}`);
    this.name = 'CommandError';
  }
}

/** Runs a program (as postgres when asPostgres and we are root); rejects on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { asPostgres?: boolean; env?: NodeJS.ProcessEnv; onStderrLine?: (line: string) => void; allowFail?: boolean; cwd?: string } = {},
): Promise<RunResult> {
  const viaRunuser = opts.asPostgres && isRoot();
  const file = viaRunuser ? 'runuser' : cmd;
  const argv = viaRunuser ? ['-u', 'postgres', '--', cmd, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd ?? (opts.asPostgres ? '/tmp' : process.cwd()) });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      stderr += s;
      if (opts.onStderrLine) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) opts.onStderrLine(l);
      }
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const r = { code: code ?? -1, stdout, stderr };
      if (r.code !== 0 && !opts.allowFail) reject(new CommandError(cmd, r));
      else resolve(r);
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** libpq environment for a postgres:// URL, so passwords never appear in a process list. */
export function libpqEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  const env: NodeJS.ProcessEnv = {};
  const host = u.searchParams.get('host') ?? decodeURIComponent(u.hostname);
  if (host) env.PGHOST = host;
  if (u.port) env.PGPORT = u.port;
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db) env.PGDATABASE = db;
  const ssl = u.searchParams.get('sslmode');
  if (ssl) env.PGSSLMODE = ssl;
  return env;
}

/** A key=value libpq connection string (pg_rewind --source-server, primary_conninfo). */
export function conninfo(url: string, extra: Record<string, string> = {}): string {
  const env = libpqEnv(url);
  const parts: Record<string, string | undefined> = {
    host: env.PGHOST,
    port: env.PGPORT,
    user: env.PGUSER,
    password: env.PGPASSWORD,
    dbname: env.PGDATABASE,
    sslmode: env.PGSSLMODE,
    ...extra,
  };
  return Object.entries(parts)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(db);
  return u.toString();
}

export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || decodeURIComponent(new URL(url).username) || 'postgres';
}

/** The postmaster's pid from DATA/postmaster.pid, or null when none is running. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export async function pgCtl(action: 'start' | 'stop' | 'restart' | 'promote', dataDir: string, opts: { port?: number; socketDir?: string; logFile?: string; mode?: 'fast' | 'immediate' | 'smart'; extra?: string } = {}): Promise<void> {
  const args = ['-D', dataDir, '-w', '-t', '120'];
  if (action === 'start' || action === 'restart') {
    const o = [opts.port ? `-p ${opts.port}` : '', opts.socketDir ? `-k ${opts.socketDir}` : '', opts.extra ?? ''].filter(Boolean).join(' ');
    if (o) args.push('-o', o);
    args.push('-l', opts.logFile ?? path.join(dataDir, 'startup.log'));
  }
  if (opts.mode && action !== 'start') args.push('-m', opts.mode);
  args.push(action);
  await run(pgBin('pg_ctl'), args, { asPostgres: true });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
