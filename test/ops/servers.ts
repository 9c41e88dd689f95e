// Throwaway servers for the operations tests: a PostgreSQL cluster of our own (initdb as the
// postgres user, on a free port) for what the shared cluster must not be put through
// (shared_preload_libraries, ALTER SYSTEM, replicas, connection floods), and scratch
// redis-servers for maxmemory / eviction / CONFIG SET. The shared 5432/6379 are never
// reconfigured.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/ops/dr/local.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export { freePort };

function pgUid(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function asPostgres(cmd: string, args: string[]): string {
  const isRoot = process.getuid?.() === 0;
  const r = isRoot ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface ScratchPostgres {
  port: number;
  dataDir: string;
  socketDir: string;
  url(db?: string, user?: string): string;
  pgCronAvailable: boolean;
  restart(): void;
  stop(): void;
  /** A streaming replica of this cluster (pg_basebackup -R). */
  replica(): Promise<ScratchPostgres>;
}

export function pgCronAvailable(): boolean {
  try {
    const lib = execFileSync(`${PG_BIN}/pg_config`, ['--pkglibdir']).toString().trim();
    return existsSync(path.join(lib, 'pg_cron.so'));
  } catch {
    return false;
  }
}

function handle(root: string, dataDir: string, port: number): ScratchPostgres {
  const socketDir = path.join(root, 'sock');
  const log = path.join(root, `pg-${port}.log`);
  const start = () => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', log, '-w', '-t', '60', '-o', `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1`, 'start']);
  start();
  const h: ScratchPostgres = {
    port,
    dataDir,
    socketDir,
    pgCronAvailable: pgCronAvailable(),
    url: (db = 'postgres', user = 'postgres') => `postgres://${user}@127.0.0.1:${port}/${db}`,
    restart() {
      asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-w', '-m', 'fast', 'stop']);
      start();
    },
    stop() {
      try {
        asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-w', '-m', 'immediate', 'stop']);
      } catch {
        /* already stopped */
      }
    },
    async replica() {
      const rport = await freePort();
      const rdir = path.join(root, `replica-${rport}`);
      asPostgres(`${PG_BIN}/pg_basebackup`, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-D', rdir, '-R', '-X', 'stream', '-c', 'fast']);
      return handle(root, rdir, rport);
    },
  };
  return h;
}

/**
 * initdb (trust, no fsync) + the given postgresql.conf lines, started on a free port.
 * Needs the postgres user (root runs the commands through runuser).
 */
export async function startScratchPostgres(opts: { conf?: string; files?: Record<string, string> } = {}): Promise<ScratchPostgres & { root: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'accunode-ops-pg-'));
  chmodSync(root, 0o755);
  const { uid, gid } = pgUid();
  const dataDir = path.join(root, 'data');
  mkdirSync(path.join(root, 'sock'));
  if (process.getuid?.() === 0) {
    chownSync(root, uid, gid);
    chownSync(path.join(root, 'sock'), uid, gid);
  }
  asPostgres(`${PG_BIN}/initdb`, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  for (const [name, content] of Object.entries(opts.files ?? {})) {
    const f = path.join(dataDir, name);
    writeFileSync(f, content, { mode: 0o600 });
    if (process.getuid?.() === 0) chownSync(f, uid, gid);
  }
  appendFileSync(path.join(dataDir, 'postgresql.conf'), `\nfsync = off\nwal_level = replica\nmax_wal_senders = 5\n${opts.conf ?? ''}\n`);
  const port = await freePort();
  const h = handle(root, dataDir, port);
  const stopServer = h.stop;
  return Object.assign(h, {
    root,
    stop() {
      stopServer();
      rmSync(root, { recursive: true, force: true });
    },
  });
}

/** A self-signed certificate for ssl = on (server.crt/server.key in the data directory). */
export function selfSignedCert(): { crt: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-ops-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'c')], { stdio: 'ignore' });
    return { crt: execFileSync('cat', [path.join(dir, 'c')]).toString(), key: execFileSync('cat', [path.join(dir, 'k')]).toString() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ScratchRedis {
  port: number;
  url: string;
  client: Redis;
  stop(): Promise<void>;
}

/** redis-server on a free port, no persistence, with extra arguments (or a config file first). */
export async function startScratchRedis(args: string[] = [], opts: { configFile?: string } = {}): Promise<ScratchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-ops-redis-'));
  const argv = [...(opts.configFile ? [opts.configFile] : []), '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...(opts.configFile ? [] : ['--save', '', '--appendonly', 'no']), ...args];
  const proc: ChildProcess = spawn('redis-server', argv, { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; !(await portOpen(port)); i++) {
    if (i > 100) throw new Error(`redis-server did not start on ${port}`);
    await new Promise((r) => setTimeout(r, 30));
  }
  const client = new Redis(url, { maxRetriesPerRequest: 2 });
  await client.ping();
  return {
    port,
    url,
    client,
    async stop() {
      client.disconnect();
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
