// Logical backups (issue 8, item 1): pg_dump custom format + a manifest, in BACKUP_DIR/logical.
//
// Format choice: custom (-Fc), one file per backup. Parallel *dump* needs the directory format
// (pg_dump --jobs), which writes a tree of plaintext files that would sit unencrypted on disk
// until packed; a custom dump is one stream that goes through sha256 and AES-256-GCM on its way
// to the file, so no plaintext copy of the data ever touches BACKUP_DIR. Parallelism is used
// where the recovery time is spent: `pg_restore --jobs` (verify and restore) reads the custom
// file from a seekable (decrypted, temporary, 0600) copy. At AccuNode's size a single-stream dump
// takes seconds; past ~50 GB the PITR base backups (pgBackRest, parallel, incremental) carry the
// RTO and the logical dump is the corruption/portability copy.
//
// Consistency: the per-table row counts and checksums are computed in the same REPEATABLE READ
// snapshot pg_dump dumps (pg_export_snapshot + pg_dump --snapshot), so the manifest describes
// exactly the dumped data even while the application writes.
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createPool, type Sql } from '../../db/pool.js';
import { BackupIntegrityError, decryptFile, encryptStream } from './crypto.js';
import { databaseOf, libpqEnv, pgBin, run, withDatabase } from '../dr/local.js';

const MANIFEST_VERSION = 1;

export interface TableSum {
  table: string;
  rows: number;
  /** md5 over the md5 of every row's text, in sorted order: the ordered row data. */
  checksum: string;
}

export interface BackupManifest {
  manifest_version: number;
  id: string;
  kind: 'logical';
  status: 'ok' | 'failed';
  error?: string;
  file: string;
  format: 'custom';
  encrypted: boolean;
  encryption?: 'aes-256-gcm';
  sha256: string;
  size: number;
  database: string;
  server_version: string;
  pg_dump_version: string;
  tables: TableSum[];
  total_rows: number;
  tag: string | null;
  created_at: string;
  finished_at: string;
  duration_ms: number;
  /** null: tagged, kept until deleted. */
  retain_until: string | null;
  last_verified_at?: string;
  last_verify_ok?: boolean;
}

export interface BackupProgress {
  phase: 'snapshot' | 'dump' | 'checksum' | 'verify' | 'restore' | 'decrypt' | 'compare' | 'done';
  message: string;
  done?: number;
  total?: number;
}

export interface BackupSettings {
  /** Owner (or superuser) URL of the database to back up / restore into. */
  adminUrl: string;
  /** BACKUP_DIR; logical backups live in its `logical/` folder. */
  dir: string;
  encryptionKey?: string | undefined;
  retentionDays: number;
  /** pg_restore --jobs. */
  jobs: number;
  onProgress?: (p: BackupProgress) => void;
  now?: () => Date;
}

export function logicalDir(dir: string): string {
  return path.join(dir, 'logical');
}

const progress = (s: BackupSettings, p: BackupProgress) => s.onProgress?.(p);

function newId(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z') + '-' + randomBytes(3).toString('hex');
}

/** Tables pg_dump dumps (ordinary tables and partitions, not extension members), schema-qualified. */
async function listTables(sql: Sql): Promise<Array<{ name: string; q: string }>> {
  return sql<Array<{ name: string; q: string }>>`
    select n.nspname || '.' || c.relname as name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as q
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    order by 1`;
}

/**
 * Row count and checksum of every table, in the caller's snapshot. row_security is off so a role
 * that RLS would filter gets an error, never a silently partial checksum.
 */
export async function tableChecksums(sql: Sql, onTable?: (name: string, i: number, total: number) => void): Promise<TableSum[]> {
  const run1 = async (tx: Sql) => {
    await tx`set local row_security = off`;
    const tables = await listTables(tx);
    const out: TableSum[] = [];
    for (const [i, t] of tables.entries()) {
      onTable?.(t.name, i + 1, tables.length);
      const [r] = await tx.unsafe<Array<{ n: number; sum: string }>>(
        `select count(*)::bigint as n, md5(coalesce(string_agg(h, '' order by h), '')) as sum from (select md5(t::text) as h from only ${t.q} t) s`,
      );
      out.push({ table: t.name, rows: Number(r!.n), checksum: r!.sum });
    }
    return out;
  };
  // Inside a transaction already (tx has no begin): run directly.
  if (typeof (sql as { begin?: unknown }).begin !== 'function') return run1(sql);
  return (await sql.begin('isolation level repeatable read read only', (tx) => run1(tx as unknown as Sql))) as TableSum[];
}

function compareChecksums(expected: TableSum[], actual: TableSum[]): string[] {
  const problems: string[] = [];
  const got = new Map(actual.map((t) => [t.table, t]));
  for (const e of expected) {
    const a = got.get(e.table);
    if (!a) problems.push(`${e.table}: missing`);
    else if (a.rows !== e.rows) problems.push(`${e.table}: ${a.rows} rows, manifest says ${e.rows}`);
    else if (a.checksum !== e.checksum) problems.push(`${e.table}: row data checksum differs`);
    got.delete(e.table);
  }
  for (const extra of got.keys()) problems.push(`${extra}: not in the backup`);
  return problems;
}

async function toolVersion(tool: string): Promise<string> {
  const r = await run(pgBin(tool), ['--version']);
  return r.stdout.trim().replace(/^\S+ \(PostgreSQL\) /, '');
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

function writeManifest(dir: string, m: BackupManifest): void {
  const file = path.join(logicalDir(dir), `${m.id}.json`);
  const tmp = file + '.tmp';
  try {
    writeFileSync(tmp, JSON.stringify(m, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** `backup create`: dump + manifest. Returns the manifest (status ok) or throws (a failed manifest is left for the record). */
export async function createBackup(s: BackupSettings, opts: { tag?: string | undefined } = {}): Promise<BackupManifest> {
  const started = s.now ? s.now() : new Date();
  const t0 = Date.now();
  const id = newId(started);
  const ldir = logicalDir(s.dir);
  mkdirSync(ldir, { recursive: true, mode: 0o700 });
  const encrypted = !!s.encryptionKey;
  const fileName = `${id}.dump${encrypted ? '.enc' : ''}`;
  const filePath = path.join(ldir, fileName);
  const tmpPath = filePath + '.partial';
  const sql = createPool(s.adminUrl, { max: 1, applicationName: 'accunode-backup' });
  const base: Omit<BackupManifest, 'status' | 'sha256' | 'size' | 'tables' | 'total_rows' | 'finished_at' | 'duration_ms'> = {
    manifest_version: MANIFEST_VERSION,
    id,
    kind: 'logical',
    file: fileName,
    format: 'custom',
    encrypted,
    ...(encrypted ? { encryption: 'aes-256-gcm' as const } : {}),
    database: databaseOf(s.adminUrl),
    server_version: '',
    pg_dump_version: await toolVersion('pg_dump'),
    tag: opts.tag ?? null,
    created_at: started.toISOString(),
    retain_until: opts.tag ? null : new Date(started.getTime() + s.retentionDays * 86_400_000).toISOString(),
  };
  try {
    const [v] = await sql<Array<{ server_version: string }>>`show server_version`;
    base.server_version = v!.server_version;
    const result = await sql.begin('isolation level repeatable read read only', async (tx) => {
      const [snap] = await tx<Array<{ id: string }>>`select pg_export_snapshot() as id`;
      progress(s, { phase: 'snapshot', message: `snapshot ${snap!.id} exported; dumping ${base.database}` });
      const hash = createHash('sha256');
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      const child = spawn(pgBin('pg_dump'), ['--format=custom', '--verbose', `--snapshot=${snap!.id}`, '--no-password'], {
        env: { ...process.env, ...libpqEnv(s.adminUrl) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let dumped = 0;
      child.stderr.on('data', (d: Buffer) => {
        const text = d.toString();
        stderr += text;
        for (const m of text.matchAll(/dumping contents of table "([^"]+)"/g)) {
          dumped++;
          progress(s, { phase: 'dump', message: `dumping ${m[1]}`, done: dumped });
        }
      });
      const exited = new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c) => resolve(c ?? -1));
      });
      const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | Transform> = [child.stdout];
      if (encrypted) stages.push(encryptStream(s.encryptionKey!));
      stages.push(tap, createWriteStream(tmpPath, { mode: 0o600 }));
      const dumpDone = (pipeline as unknown as (...a: unknown[]) => Promise<void>)(...stages);
      // Checksums in the same snapshot, while pg_dump streams. The dump, pg_dump's exit and the
      // checksums are awaited together: a write that fails while the checksums run (ENOSPC, or
      // EROFS opening the .partial file) must reject this backup, not escape as an unhandled
      // rejection that would end a worker process.
      let tables: TableSum[];
      let code: number;
      try {
        [tables, , code] = await Promise.all([
          tableChecksums(tx as unknown as Sql, (name, i, total) => progress(s, { phase: 'checksum', message: `checksum ${name}`, done: i, total })),
          dumpDone,
          exited,
        ]);
      } catch (err) {
        // pg_dump would otherwise keep the snapshot's server session busy after we gave up.
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited.catch(() => {});
        throw err;
      }
      if (code !== 0) throw new Error(`pg_dump failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return { tables, sha256: hash.digest('hex'), size };
    });
    renameSync(tmpPath, filePath);
    const m: BackupManifest = {
      ...base,
      status: 'ok',
      sha256: result.sha256,
      size: result.size,
      tables: result.tables,
      total_rows: result.tables.reduce((a, t) => a + t.rows, 0),
      finished_at: new Date().toISOString(),
      duration_ms: Date.now() - t0,
    };
    writeManifest(s.dir, m);
    progress(s, { phase: 'done', message: `backup ${id}: ${m.tables.length} tables, ${m.total_rows} rows, ${m.size} bytes${encrypted ? ', encrypted' : ''}` });
    return m;
  } catch (err) {
    rmSync(tmpPath, { force: true });
    try {
      writeManifest(s.dir, { ...base, status: 'failed', error: (err as Error).message, sha256: '', size: 0, tables: [], total_rows: 0, finished_at: new Date().toISOString(), duration_ms: Date.now() - t0 });
    } catch {
      // A full or read-only directory cannot take the failed manifest either: the error thrown
      // below is the record (the job's log and its failed state).
    }
    throw err;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export function listBackups(dir: string): BackupManifest[] {
  const ldir = logicalDir(dir);
  if (!existsSync(ldir)) return [];
  const out: BackupManifest[] = [];
  for (const f of readdirSync(ldir)) {
    if (!f.endsWith('.json')) continue;
    try {
      const m = JSON.parse(readFileSync(path.join(ldir, f), 'utf8')) as BackupManifest;
      if (m.kind === 'logical' && m.id) out.push(m);
    } catch {
      /* not a manifest */
    }
  }
  return out.sort((a, b) => b.created_at.localeCompare(a.created_at));
}

function getBackup(dir: string, id: string): BackupManifest {
  const all = listBackups(dir);
  const m = id === 'latest' ? all.find((b) => b.status === 'ok') : all.find((b) => b.id === id);
  if (!m) throw new Error(id === 'latest' ? `no good backup in ${logicalDir(dir)}` : `no backup ${id} in ${logicalDir(dir)}`);
  return m;
}

interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

/**
 * The dump file as pg_restore can read it: checks size and sha256 against the manifest, decrypts
 * (authenticated) into a temporary 0600 file, then lets pg_restore read its table of contents.
 */
async function readableDump(s: BackupSettings, m: BackupManifest, checks: CheckResult[]): Promise<{ file: string; cleanup: () => void } | null> {
  const file = path.join(logicalDir(s.dir), m.file);
  if (m.status !== 'ok') {
    checks.push({ check: 'status', ok: false, detail: `backup status is ${m.status}${m.error ? ': ' + m.error : ''}` });
    return null;
  }
  if (!existsSync(file)) {
    checks.push({ check: 'file', ok: false, detail: `${m.file} is missing` });
    return null;
  }
  const size = statSync(file).size;
  checks.push({ check: 'size', ok: size === m.size, detail: size === m.size ? `${size} bytes` : `${size} bytes, manifest says ${m.size} (truncated or appended)` });
  const sum = await sha256File(file);
  checks.push({ check: 'sha256', ok: sum === m.sha256, detail: sum === m.sha256 ? sum : `file ${sum.slice(0, 16)}…, manifest ${m.sha256.slice(0, 16)}…` });
  let plain = file;
  let cleanup = () => {};
  if (m.encrypted) {
    if (!s.encryptionKey) {
      checks.push({ check: 'decrypt', ok: false, detail: 'the backup is encrypted and BACKUP_ENCRYPTION_KEY is not set' });
      return null;
    }
    plain = path.join(logicalDir(s.dir), `.${m.id}.${randomBytes(4).toString('hex')}.plain`);
    cleanup = () => rmSync(plain, { force: true });
    progress(s, { phase: 'decrypt', message: `decrypting ${m.file}` });
    try {
      await decryptFile(file, s.encryptionKey, plain);
      checks.push({ check: 'decrypt', ok: true, detail: 'AES-256-GCM tag authenticated' });
    } catch (err) {
      cleanup();
      checks.push({ check: 'decrypt', ok: false, detail: (err as Error).message });
      return null;
    }
  }
  const toc = await run(pgBin('pg_restore'), ['--list', plain], { allowFail: true });
  const entries = toc.stdout.split('\n').filter((l) => /^\d+;/.test(l)).length;
  checks.push({ check: 'toc', ok: toc.code === 0 && entries > 0, detail: toc.code === 0 ? `${entries} archive entries` : toc.stderr.trim().split('\n')[0] ?? 'pg_restore --list failed' });
  if (toc.code !== 0) {
    cleanup();
    return null;
  }
  return { file: plain, cleanup };
}

async function pgRestore(s: BackupSettings, file: string, targetUrl: string, opts: { noOwner: boolean }): Promise<void> {
  let n = 0;
  const args = ['--exit-on-error', '--verbose', `--jobs=${Math.max(1, s.jobs)}`, '--no-password', `--dbname=${databaseOf(targetUrl)}`];
  if (opts.noOwner) args.push('--no-owner', '--no-privileges');
  args.push(file);
  await run(pgBin('pg_restore'), args, {
    env: libpqEnv(targetUrl),
    onStderrLine: (l) => {
      const m = /processing data for table "([^"]+)"/.exec(l);
      if (m) progress(s, { phase: 'restore', message: `restoring ${m[1]}`, done: ++n });
    },
  });
}

interface VerifyResult {
  id: string;
  ok: boolean;
  checks: CheckResult[];
  duration_ms: number;
}

/** `backup verify ID`: file checks, then a restore into a scratch database and a table-by-table comparison. */
export async function verifyBackup(s: BackupSettings, id: string): Promise<VerifyResult> {
  const t0 = Date.now();
  const m = getBackup(s.dir, id);
  const checks: CheckResult[] = [];
  const dump = await readableDump(s, m, checks);
  if (dump && checks.every((c) => c.ok)) {
    const scratch = `accunode_verify_${randomBytes(5).toString('hex')}`;
    const admin = createPool(s.adminUrl, { max: 1, applicationName: 'accunode-backup-verify' });
    const scratchUrl = withDatabase(s.adminUrl, scratch);
    try {
      await admin.unsafe(`create database "${scratch}" template template0`);
      progress(s, { phase: 'verify', message: `restoring into scratch database ${scratch}` });
      try {
        await pgRestore(s, dump.file, scratchUrl, { noOwner: true });
        checks.push({ check: 'restore', ok: true, detail: `restored into ${scratch}` });
        const ssql = createPool(scratchUrl, { max: 1, applicationName: 'accunode-backup-verify' });
        try {
          progress(s, { phase: 'compare', message: 'comparing row counts and checksums' });
          const problems = compareChecksums(m.tables, await tableChecksums(ssql));
          checks.push({ check: 'tables', ok: problems.length === 0, detail: problems.length === 0 ? `${m.tables.length} tables, ${m.total_rows} rows match` : problems.slice(0, 10).join('; ') });
        } finally {
          await ssql.end({ timeout: 5 });
        }
      } catch (err) {
        checks.push({ check: 'restore', ok: false, detail: (err as Error).message });
      }
    } finally {
      await admin.unsafe(`drop database if exists "${scratch}" with (force)`).catch(() => {});
      await admin.end({ timeout: 5 });
      dump.cleanup();
    }
  } else dump?.cleanup();
  const ok = checks.length > 0 && checks.every((c) => c.ok) && checks.some((c) => c.check === 'tables');
  try {
    writeManifest(s.dir, { ...m, last_verified_at: new Date().toISOString(), last_verify_ok: ok });
  } catch {
    /* read-only backup dir: the result is still returned */
  }
  progress(s, { phase: 'done', message: `verify ${m.id}: ${ok ? 'OK' : 'FAILED'}` });
  return { id: m.id, ok, checks, duration_ms: Date.now() - t0 };
}

export class RestoreRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefused';
  }
}

interface RestoreResult {
  id: string;
  target: string;
  replaced: boolean;
  ok: boolean;
  checks: CheckResult[];
  duration_ms: number;
}

/**
 * `backup restore ID [--target-db NAME] [--force]`. The file is checked (size, sha256,
 * authenticated decryption, table of contents) before anything is dropped; an existing target
 * database is replaced only with force; the restored tables are compared with the manifest.
 */
export async function restoreBackup(s: BackupSettings, id: string, opts: { targetDb?: string | undefined; force?: boolean | undefined } = {}): Promise<RestoreResult> {
  const t0 = Date.now();
  const m = getBackup(s.dir, id);
  const target = opts.targetDb ?? databaseOf(s.adminUrl);
  const checks: CheckResult[] = [];
  const dump = await readableDump(s, m, checks);
  if (!dump || !checks.every((c) => c.ok)) {
    dump?.cleanup();
    throw new BackupIntegrityError(`backup ${m.id} failed its integrity checks; nothing was restored: ${checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`).join('; ')}`);
  }
  // A maintenance connection on another database of the same server (the target may be the one in the URL).
  const maintDb = target === 'postgres' ? 'template1' : 'postgres';
  const maint = createPool(withDatabase(s.adminUrl, maintDb), { max: 1, applicationName: 'accunode-backup-restore' });
  let replaced = false;
  try {
    const [exists] = await maint<Array<{ n: number }>>`select 1 as n from pg_database where datname = ${target}`;
    if (exists) {
      if (!opts.force) {
        const t = createPool(withDatabase(s.adminUrl, target), { max: 1 });
        let detail = '';
        try {
          const [c] = await t<Array<{ tables: number; conns: number }>>`
            select (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname not in ('pg_catalog','information_schema')) as tables,
                   (select count(*)::int from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()) as conns`;
          detail = ` (${c!.tables} tables, ${c!.conns} other connections)`;
        } catch {
          /* cannot look inside: still refuse */
        } finally {
          await t.end({ timeout: 2 });
        }
        throw new RestoreRefused(`database "${target}" exists${detail}; restoring would replace it. Pass --force to drop and replace it, or --target-db NAME to restore beside it.`);
      }
      progress(s, { phase: 'restore', message: `dropping database ${target} (--force)` });
      await maint.unsafe(`drop database "${target.replace(/"/g, '""')}" with (force)`);
      replaced = true;
    }
    await maint.unsafe(`create database "${target.replace(/"/g, '""')}" template template0`);
    const targetUrl = withDatabase(s.adminUrl, target);
    progress(s, { phase: 'restore', message: `restoring ${m.id} into ${target} (--jobs ${s.jobs})` });
    await pgRestore(s, dump.file, targetUrl, { noOwner: false });
    checks.push({ check: 'restore', ok: true, detail: `restored into ${target}` });
    const tsql = createPool(targetUrl, { max: 1, applicationName: 'accunode-backup-restore' });
    try {
      const problems = compareChecksums(m.tables, await tableChecksums(tsql));
      checks.push({ check: 'tables', ok: problems.length === 0, detail: problems.length === 0 ? `${m.tables.length} tables, ${m.total_rows} rows match the manifest` : problems.slice(0, 10).join('; ') });
    } finally {
      await tsql.end({ timeout: 5 });
    }
  } finally {
    await maint.end({ timeout: 5 });
    dump.cleanup();
  }
  const ok = checks.every((c) => c.ok);
  progress(s, { phase: 'done', message: `restore ${m.id} into ${target}: ${ok ? 'OK' : 'FAILED'}` });
  return { id: m.id, target, replaced, ok, checks, duration_ms: Date.now() - t0 };
}

export function deleteBackup(dir: string, id: string): void {
  const m = getBackup(dir, id);
  rmSync(path.join(logicalDir(dir), m.file), { force: true });
  rmSync(path.join(logicalDir(dir), `${m.id}.json`), { force: true });
}

interface PruneResult {
  deleted: Array<{ id: string; created_at: string; reason: string }>;
  kept: Array<{ id: string; created_at: string; reason: string }>;
  dry_run: boolean;
}

/** `backup prune`: untagged backups past retain_until go; failed attempts go after a day; tagged stay. */
export function pruneBackups(dir: string, opts: { now?: Date; dryRun?: boolean } = {}): PruneResult {
  const now = opts.now ?? new Date();
  const res: PruneResult = { deleted: [], kept: [], dry_run: !!opts.dryRun };
  for (const m of listBackups(dir)) {
    let reason: string | null = null;
    if (m.status !== 'ok') {
      if (now.getTime() - Date.parse(m.created_at) > 86_400_000) reason = 'failed attempt older than a day';
    } else if (m.tag === null && m.retain_until && Date.parse(m.retain_until) <= now.getTime()) reason = `retention ended ${m.retain_until}`;
    if (reason) {
      if (!opts.dryRun) {
        rmSync(path.join(logicalDir(dir), m.file), { force: true });
        rmSync(path.join(logicalDir(dir), `${m.id}.json`), { force: true });
      }
      res.deleted.push({ id: m.id, created_at: m.created_at, reason });
    } else res.kept.push({ id: m.id, created_at: m.created_at, reason: m.tag ? `tagged "${m.tag}"` : m.retain_until ? `retained until ${m.retain_until}` : m.status });
  }
  return res;
}
