// Point-in-time recovery with pgBackRest (issue 8, item 2). AccuNode does not archive WAL itself:
// it writes pgBackRest's configuration (two encrypted repositories; repo2 stands in for the
// spec's cross-region copy), points archive_command at `pgbackrest archive-push`, and drives
// `backup`, `restore` and `info`. Every pgbackrest command runs as the postgres user from our
// own config file (--config), never /etc/pgbackrest.conf.
import { existsSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createPool } from '../../db/pool.js';
import { ensurePostgresDir, pgCtl, run, sleep } from '../dr/local.js';
import { writePostgresFile } from '../dr/dr.js';

export interface PitrSettings {
  /** BACKUP_DIR: config, repo1, logs and locks go under its pitr/ folder. */
  dir: string;
  stanza: string;
  /** The cluster's data directory (pgBackRest runs on the database host). */
  pgDataDir: string;
  pgPort: number;
  /** Unix socket directory of the cluster (pgBackRest connects locally). */
  pgSocketDir?: string | undefined;
  /** Repository cipher passphrase (derived from BACKUP_ENCRYPTION_KEY by the CLI). */
  cipherPass: string;
  /** Superuser URL of the cluster (to set archive_command and read pg_stat_archiver). */
  adminUrl: string;
  /** Second repository (another disk/mount, in production another region); default pitr/repo2. */
  repo2Path?: string | undefined;
  /** Full backups kept per repository. */
  retentionFull?: number;
}

function pitrPaths(s: PitrSettings) {
  const base = path.join(s.dir, 'pitr');
  return {
    base,
    config: path.join(base, 'pgbackrest.conf'),
    repo1: path.join(base, 'repo1'),
    repo2: s.repo2Path ?? path.join(base, 'repo2'),
    log: path.join(base, 'log'),
    lock: path.join(base, 'lock'),
    spool: path.join(base, 'spool'),
  };
}

/** The cipher passphrase for pgBackRest's repositories, derived from BACKUP_ENCRYPTION_KEY. */
export function pitrCipherPass(backupKey: string): string {
  return createHash('sha256').update('accunode-pgbackrest-repo:' + backupKey).digest('base64url');
}

function pgbackrest(s: PitrSettings, args: string[], opts: { allowFail?: boolean } = {}) {
  return run('pgbackrest', [`--config=${pitrPaths(s).config}`, `--stanza=${s.stanza}`, ...args], { asPostgres: true, ...opts });
}

function configText(s: PitrSettings): string {
  const p = pitrPaths(s);
  const keep = s.retentionFull ?? 2;
  return `# Written by \`accunode backup pitr setup\`. Two encrypted repositories: repo2 stands in for
# the cross-region copy (in production: another region's bucket, repo2-type=s3).
[global]
repo1-path=${p.repo1}
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=${s.cipherPass}
repo1-retention-full=${keep}
repo2-path=${p.repo2}
repo2-cipher-type=aes-256-cbc
repo2-cipher-pass=${s.cipherPass}
repo2-retention-full=${keep}
log-path=${p.log}
lock-path=${p.lock}
spool-path=${p.spool}
log-level-console=warn
log-level-file=info
start-fast=y
process-max=2
compress-type=zst

[${s.stanza}]
pg1-path=${s.pgDataDir}
pg1-port=${s.pgPort}
pg1-user=postgres
${s.pgSocketDir ? `pg1-socket-path=${s.pgSocketDir}\n` : ''}`;
}

interface PitrSetupResult {
  config: string;
  archive_command: string;
  restart_required: boolean;
  checked: boolean;
}

/**
 * `backup pitr setup`: the config file (0600, postgres), archive_command (+ archive_timeout 60 s,
 * which bounds the RPO of a lost host), stanza-create and check. archive_mode needs a restart
 * when it was off: done when `restart` (a local cluster), else reported.
 */
export async function pitrSetup(s: PitrSettings, opts: { restart?: boolean } = {}): Promise<PitrSetupResult> {
  const p = pitrPaths(s);
  ensurePostgresDir(s.dir, 0o750);
  for (const d of [p.base, p.repo1, p.repo2, p.log, p.lock, p.spool]) ensurePostgresDir(d, 0o750);
  writePostgresFile(p.config, configText(s), 0o600);
  const archiveCommand = `pgbackrest --config=${p.config} --stanza=${s.stanza} archive-push %p`;
  const sql = createPool(s.adminUrl, { max: 1, applicationName: 'accunode-pitr' });
  let restartRequired = false;
  try {
    await sql.unsafe(`alter system set archive_command = '${archiveCommand.replace(/'/g, "''")}'`);
    await sql.unsafe(`alter system set archive_timeout = '60s'`);
    const [m] = await sql<Array<{ mode: string; level: string }>>`select current_setting('archive_mode') as mode, current_setting('wal_level') as level`;
    if (m!.mode === 'off' || m!.level === 'minimal') {
      await sql.unsafe(`alter system set archive_mode = on`);
      if (m!.level === 'minimal') await sql.unsafe(`alter system set wal_level = replica`);
      restartRequired = true;
    }
    await sql`select pg_reload_conf()`;
  } finally {
    await sql.end({ timeout: 2 });
  }
  if (restartRequired && opts.restart) {
    await pgCtl('restart', s.pgDataDir, { mode: 'fast', port: s.pgPort, ...(s.pgSocketDir ? { socketDir: s.pgSocketDir } : {}) });
    restartRequired = false;
  }
  if (restartRequired) return { config: p.config, archive_command: archiveCommand, restart_required: true, checked: false };
  await sleep(200); // the reload reaches the archiver
  await pgbackrest(s, ['stanza-create']);
  await pgbackrest(s, ['check']);
  return { config: p.config, archive_command: archiveCommand, restart_required: false, checked: true };
}

/** `backup pitr base`: a full/diff/incr backup into each repository (pgBackRest writes one repo per run). */
export async function pitrBase(s: PitrSettings, opts: { type?: 'full' | 'diff' | 'incr'; repos?: number[] } = {}): Promise<Array<{ repo: number; ms: number }>> {
  const out: Array<{ repo: number; ms: number }> = [];
  for (const repo of opts.repos ?? [1, 2]) {
    const t0 = Date.now();
    await pgbackrest(s, ['backup', `--type=${opts.type ?? 'full'}`, `--repo=${repo}`]);
    out.push({ repo, ms: Date.now() - t0 });
  }
  return out;
}

interface PitrRestoreOptions {
  /** Empty (or missing) directory for the restored cluster. */
  dataDir: string;
  /** A timestamp (ISO 8601 or PostgreSQL syntax) or 'latest' (end of the archive). */
  target: string;
  /** Restore from this repository only (2 = the cross-region copy). */
  repo?: number;
  /** Start the restored cluster on this port and wait until recovery finished. */
  port?: number;
  start?: boolean;
  socketDir?: string;
}

function pgTime(target: string): string {
  const d = new Date(target);
  if (/^\d{4}-\d{2}-\d{2}T/.test(target) && !Number.isNaN(d.getTime())) return d.toISOString().replace('T', ' ').replace('Z', '+00');
  return target;
}

/**
 * `backup pitr restore --to TIMESTAMP --data-dir DIR`: pgbackrest restore into DIR (never the
 * live cluster: --pg1-path), recovery to the target then promotion, archive_mode off (a restored
 * copy must not push WAL into the repositories of the cluster it came from).
 */
export async function pitrRestore(s: PitrSettings, o: PitrRestoreOptions): Promise<{ data_dir: string; target: string; repo: number | null; restore_ms: number; recovered_ms: number | null }> {
  const t0 = Date.now();
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).length > 0) throw new Error(`${o.dataDir} is not empty: pgBackRest restores into an empty directory`);
  ensurePostgresDir(o.dataDir, 0o700);
  const args = ['restore', `--pg1-path=${o.dataDir}`, '--archive-mode=off'];
  if (o.repo) args.push(`--repo=${o.repo}`);
  if (o.target !== 'latest') args.push('--type=time', `--target=${pgTime(o.target)}`, '--target-action=promote');
  await pgbackrest(s, args);
  const restoreMs = Date.now() - t0;
  let recovered: number | null = null;
  if (o.start && o.port) {
    await pgCtl('start', o.dataDir, { port: o.port, ...(o.socketDir ? { socketDir: o.socketDir } : {}), extra: '-c archive_mode=off -c synchronous_standby_names=' });
    const sql = createPool(`postgres://postgres@127.0.0.1:${o.port}/postgres`, { max: 1 });
    try {
      for (let i = 0; ; i++) {
        const [r] = await sql<Array<{ r: boolean }>>`select pg_is_in_recovery() as r`;
        if (!r!.r) break;
        if (i > 1200) throw new Error('restored cluster still in recovery after 120 s');
        await sleep(100);
      }
    } finally {
      await sql.end({ timeout: 2 });
    }
    recovered = Date.now() - t0;
  }
  return { data_dir: o.dataDir, target: o.target, repo: o.repo ?? null, restore_ms: restoreMs, recovered_ms: recovered };
}

interface PitrInfo {
  configured: boolean;
  backups: Array<{ repo: number; label: string; type: string; started: string; stopped: string; size: number | null }>;
  archive: { min: string | null; max: string | null };
  last_archived_at: string | null;
  last_failed_at: string | null;
  recoverable_from: string | null;
  recoverable_to: string | null;
  status: string;
}

/** `backup status` (PITR part): pgbackrest info + pg_stat_archiver → the recoverable window. */
export async function pitrInfo(s: PitrSettings): Promise<PitrInfo> {
  const p = pitrPaths(s);
  const empty: PitrInfo = { configured: false, backups: [], archive: { min: null, max: null }, last_archived_at: null, last_failed_at: null, recoverable_from: null, recoverable_to: null, status: 'not set up (accunode backup pitr setup)' };
  if (!existsSync(p.config)) return empty;
  const r = await pgbackrest(s, ['info', '--output=json'], { allowFail: true });
  if (r.code !== 0) return { ...empty, configured: true, status: `pgbackrest info failed: ${r.stderr.trim().split('\n')[0]}` };
  type Info = Array<{
    status: { message: string };
    backup: Array<{ label: string; type: string; timestamp: { start: number; stop: number }; info: { size?: number }; database?: { 'repo-key'?: number } }>;
    archive: Array<{ min: string | null; max: string | null }>;
  }>;
  const info = (JSON.parse(r.stdout) as Info)[0];
  const backups = (info?.backup ?? []).map((b) => ({
    repo: b.database?.['repo-key'] ?? 1,
    label: b.label,
    type: b.type,
    started: new Date(b.timestamp.start * 1000).toISOString(),
    stopped: new Date(b.timestamp.stop * 1000).toISOString(),
    size: b.info.size ?? null,
  }));
  const archives = info?.archive ?? [];
  let lastArchived: string | null = null;
  let lastFailed: string | null = null;
  const sql = createPool(s.adminUrl, { max: 1, applicationName: 'accunode-pitr', connectTimeoutSeconds: 3 });
  try {
    const [a] = await sql<Array<{ ok: Date | null; bad: Date | null }>>`select last_archived_time as ok, last_failed_time as bad from pg_stat_archiver`;
    lastArchived = a?.ok ? new Date(a.ok).toISOString() : null;
    lastFailed = a?.bad ? new Date(a.bad).toISOString() : null;
  } catch {
    /* server down: the window ends at the last backup */
  } finally {
    await sql.end({ timeout: 2 });
  }
  const stops = backups.map((b) => b.stopped).sort();
  const from = stops[0] ?? null;
  const lastStop = stops[stops.length - 1] ?? null;
  const to = lastArchived && lastStop && lastArchived > lastStop ? lastArchived : lastStop;
  return {
    configured: true,
    backups,
    archive: { min: archives[0]?.min ?? null, max: archives[archives.length - 1]?.max ?? null },
    last_archived_at: lastArchived,
    last_failed_at: lastFailed,
    recoverable_from: from,
    recoverable_to: to,
    status: info?.status.message ?? 'unknown',
  };
}

/** Moves a repository aside (tests: prove a restore from repo2 alone). */
export function moveRepoAside(s: PitrSettings, repo: 1 | 2): string {
  const p = pitrPaths(s);
  const from = repo === 1 ? p.repo1 : p.repo2;
  const to = `${from}.aside-${Date.now()}`;
  renameSync(from, to);
  return to;
}
