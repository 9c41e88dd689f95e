// The PostgreSQL the benchmarks measure: by default a cluster of their own, configured with the
// project's shipped profile for this machine's RAM (ops/postgres/postgresql.conf is the same
// profile for 32 GB: shared_buffers a quarter of RAM, SSD costs, the spec's WAL and logging
// settings), durable as deployed (fsync and synchronous_commit on). The machine's shared server
// keeps PostgreSQL's defaults (128 MB of shared buffers), which no deployment would run with.
// BENCH_DATABASE_ADMIN_URL points the benchmarks at another server instead.
//
// Imports nothing of the project's test helpers: the runner starts this server, then sets
// TEST_DATABASE_ADMIN_URL before loading the benchmarks (which read it at import).
import { spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/ops/dr/local.js';
import { postgresProfile } from '../src/ops/local/profiles.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';

function asPostgres(cmd: string, args: string[]): void {
  const root = process.getuid?.() === 0;
  const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed: ${r.stderr || r.stdout}`);
}

export interface BenchPostgres {
  adminUrl: string;
  /** What it is, for the results page. */
  describe: string;
  stop(): void;
}

/** The profile's settings for this machine, minus what a scratch cluster cannot have (TLS, pg_cron). */
export function benchProfile(ramBytes = os.totalmem()): Array<[string, string]> {
  return postgresProfile(ramBytes, { preload: ['pg_stat_statements'] })
    .filter((p) => p.name !== 'ssl')
    .map((p) => [p.name, p.value]);
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  if (process.env.BENCH_DATABASE_ADMIN_URL) {
    return { adminUrl: process.env.BENCH_DATABASE_ADMIN_URL, describe: 'BENCH_DATABASE_ADMIN_URL', stop: () => {} };
  }
  if (!existsSync(`${PG_BIN}/initdb`)) throw new Error(`no PostgreSQL 15 server binaries at ${PG_BIN} (apt-get install postgresql-15), or set BENCH_DATABASE_ADMIN_URL`);
  const root = mkdtempSync(path.join(process.env.BENCH_PG_DIR ?? os.tmpdir(), 'accunode-bench-pg-'));
  const dataDir = path.join(root, 'data');
  const sock = path.join(root, 'sock');
  mkdirSync(sock);
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(root, id('-u'), id('-g'));
    chownSync(sock, id('-u'), id('-g'));
  }
  asPostgres(`${PG_BIN}/initdb`, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-instructions']);
  const profile = benchProfile();
  appendFileSync(path.join(dataDir, 'postgresql.conf'),
    '\n# AccuNode benchmark server: the project profile for this machine (bench/servers.ts)\n' +
    profile.map(([k, v]) => `${k} = '${v}'`).join('\n') + '\nlog_destination = stderr\n');
  const port = await freePort();
  asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', path.join(root, 'postgres.log'), '-w', '-t', '120',
    '-o', `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1`, 'start']);
  const shared = profile.find(([k]) => k === 'shared_buffers')?.[1];
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    describe: `a cluster of the benchmark's own with the project profile for ${Math.round(os.totalmem() / 2 ** 30)} GiB (shared_buffers ${shared}, fsync on)`,
    stop() {
      try {
        asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-w', '-m', 'fast', 'stop']);
      } catch {
        /* already stopped */
      }
      if (!process.env.BENCH_KEEP_PG) rmSync(root, { recursive: true, force: true });
    },
  };
}
