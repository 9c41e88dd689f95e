// `accunode maintenance run daily|weekly|monthly` and the scheduler's maintenance jobs: the
// spec's routine tasks and automated maintenance script, safe to run on a live database.
//
// * Runs as the owner (DATABASE_ADMIN_URL): in PostgreSQL 15 VACUUM and REINDEX need the table
//   owner (or a superuser); a VACUUM by anyone else skips the table with a warning.
// * One run at a time on a database: a session advisory lock held on a reserved connection; a
//   second run finds it taken and records itself as skipped.
// * Clean-ups and the prediction archive work in batches (MAINTENANCE_BATCH_SIZE rows per
//   statement, each its own transaction, lock_timeout 5 s, SKIP LOCKED), so no lock is held
//   for long and rows the application is using are left for the next run.
// * Predictions older than two years are MOVED to the archive tables (the spec's DELETE would
//   lose them): DELETE ... RETURNING feeds INSERT in one statement, so a batch moves atomically
//   and the counts are checked to match.
import { invalidatePredictionWrites } from '../cache/invalidation.js';
import { readdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Sql } from '../db/pool.js';
import { indexBloat, tableBloat, unusedIndexes } from './monitoring/pg.js';
import { keyFamilies, num, parseInfo } from './monitoring/redis.js';
import { errMessage, nowOf, type OpsConfig } from './types.js';
import type { Logger } from '../logging.js';

export const MAINTENANCE_KINDS = ['daily', 'weekly', 'monthly'] as const;
export type MaintenanceKind = (typeof MAINTENANCE_KINDS)[number];

/** Any constant works; it only has to be the same for every AccuNode process (not the migration lock). */
export const MAINTENANCE_LOCK_KEY = 727_274_007;

const MAINTENANCE_STEPS: Record<MaintenanceKind, readonly string[]> = {
  // The spec's automated maintenance script (statistics, old sessions, old audit logs).
  // Plus: bulk upload files that no queued or running job will read.
  daily: ['analyze', 'cleanup_sessions', 'cleanup_audit_logs', 'sweep_uploads', 'redis_report'],
  // The spec's weekly tasks.
  weekly: ['analyze', 'bloat_report', 'unused_indexes', 'redis_report'],
  // The spec's monthly tasks: vacuum and reindex, bloat, archive predictions older than 2 years.
  monthly: ['vacuum_analyze', 'bloat_report', 'reindex_bloated', 'archive_predictions', 'redis_report'],
};

interface MaintenanceDeps {
  /** The owner connection. */
  adminSql: Sql;
  redis?: Redis;
  cacheRedis?: Redis;
  config: Pick<OpsConfig, 'MAINTENANCE_REINDEX_BLOAT_PERCENT' | 'MAINTENANCE_BATCH_SIZE' | 'OPS_BLOAT_SCAN_MAX_MB' | 'OPS_REDIS_SCAN_MAX_KEYS'>;
  /** BULK_UPLOAD_DIR, swept daily; without it the sweep reports that it did nothing. */
  uploadDir?: string;
  log?: Logger;
  now?: () => Date;
}

export interface StepResult {
  step: string;
  outcome: 'done' | 'would' | 'failed' | 'nothing';
  /** Rows deleted or moved (or that would be, in a dry run). */
  rows: number;
  detail: unknown;
  duration_ms: number;
}

export interface MaintenanceResult {
  id: number | null;
  kind: MaintenanceKind;
  dry_run: boolean;
  outcome: 'succeeded' | 'failed' | 'skipped';
  started_at: Date;
  finished_at: Date;
  rows_affected: number;
  steps: StepResult[];
  error: string | null;
}

type Conn = Sql;

const DAY = 86_400_000;
const UPLOAD_GRACE_MS = 3_600_000;

export async function runMaintenance(deps: MaintenanceDeps, kind: MaintenanceKind, opts: { dryRun?: boolean } = {}): Promise<MaintenanceResult> {
  const dryRun = !!opts.dryRun;
  const started = new Date();
  const admin = deps.adminSql;
  const conn = (await admin.reserve()) as unknown as Conn & { release(): void };
  const steps: StepResult[] = [];
  let id: number | null = null;
  try {
    const [lock] = await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(${MAINTENANCE_LOCK_KEY}) as ok`;
    const [row] = await admin<{ id: number }[]>`
      insert into maintenance_runs (kind, dry_run, started_at, outcome, host)
      values (${kind}, ${dryRun}, ${started}, ${lock?.ok ? 'running' : 'skipped'}, ${hostname()}) returning id`;
    id = row ? Number(row.id) : null;
    if (!lock?.ok) {
      const finished = new Date();
      const error = 'another maintenance run holds the lock (advisory lock); this run did nothing';
      await admin`update maintenance_runs set finished_at = ${finished}, error = ${error} where id = ${id}`;
      return { id, kind, dry_run: dryRun, outcome: 'skipped', started_at: started, finished_at: finished, rows_affected: 0, steps, error };
    }
    let failure: string | null = null;
    try {
      await conn`select set_config('lock_timeout', '5s', false)`;
      for (const step of MAINTENANCE_STEPS[kind]) {
        const t = Date.now();
        try {
          const r = await STEP_IMPL[step]!(conn, deps, dryRun);
          steps.push({ step, ...r, duration_ms: Date.now() - t });
        } catch (err) {
          failure ??= `${step}: ${errMessage(err)}`;
          steps.push({ step, outcome: 'failed', rows: 0, detail: errMessage(err), duration_ms: Date.now() - t });
          deps.log?.error({ step, err: errMessage(err) }, 'maintenance step failed');
        }
      }
    } finally {
      await conn`select pg_advisory_unlock(${MAINTENANCE_LOCK_KEY})`.catch(() => {});
      await conn`select set_config('lock_timeout', '0', false)`.catch(() => {});
    }
    const finished = new Date();
    const rows = dryRun ? 0 : steps.reduce((a, s) => a + s.rows, 0);
    const outcome = failure ? 'failed' : 'succeeded';
    await admin`
      update maintenance_runs set finished_at = ${finished}, outcome = ${outcome}, rows_affected = ${rows},
        steps = ${admin.json(JSON.parse(JSON.stringify(steps)))}, error = ${failure}
      where id = ${id}`;
    return { id, kind, dry_run: dryRun, outcome, started_at: started, finished_at: finished, rows_affected: rows, steps, error: failure };
  } finally {
    conn.release();
  }
}

type StepImpl = (conn: Conn, deps: MaintenanceDeps, dryRun: boolean) => Promise<Omit<StepResult, 'step' | 'duration_ms'>>;

const STEP_IMPL: Record<string, StepImpl> = {
  async analyze(conn, _deps, dryRun) {
    if (dryRun) return { outcome: 'would', rows: 0, detail: 'ANALYZE (every table of the database)' };
    await conn.unsafe('ANALYZE');
    return { outcome: 'done', rows: 0, detail: 'ANALYZE' };
  },

  async vacuum_analyze(conn, _deps, dryRun) {
    const dead = await conn<{ table: string; dead: number }[]>`
      select format('%I.%I', schemaname, relname) as table, n_dead_tup::bigint as dead
      from pg_stat_user_tables where n_dead_tup > 0 order by n_dead_tup desc limit 20`;
    const detail = { dead_rows_before: dead.map((d) => ({ table: d.table, dead_rows: Number(d.dead) })), note: 'VACUUM (ANALYZE) as the table owner' };
    if (dryRun) return { outcome: 'would', rows: 0, detail };
    // Not VACUUM FULL: it would take an ACCESS EXCLUSIVE lock; plain VACUUM runs beside traffic.
    await conn.unsafe('VACUUM (ANALYZE)');
    return { outcome: 'done', rows: 0, detail };
  },

  async bloat_report(conn, deps) {
    const maxBytes = deps.config.OPS_BLOAT_SCAN_MAX_MB * 1024 * 1024;
    const pgst = await hasPgstattuple(conn);
    const tables = await tableBloat(conn, { maxBytes, pgstattuple: pgst });
    const indexes = await indexBloat(conn, { maxBytes, pgstattuple: pgst });
    return {
      outcome: 'done',
      rows: 0,
      detail: {
        tables: tables.filter((t) => (t.bloat_percent ?? t.dead_percent ?? 0) > 0).slice(0, 20),
        indexes: indexes.filter((i) => (i.bloat_percent ?? 0) > 0).sort((a, b) => (b.bloat_percent ?? 0) - (a.bloat_percent ?? 0)).slice(0, 20),
        pgstattuple: pgst,
      },
    };
  },

  async unused_indexes(conn) {
    return { outcome: 'done', rows: 0, detail: await unusedIndexes(conn) };
  },

  async reindex_bloated(conn, deps, dryRun) {
    const threshold = deps.config.MAINTENANCE_REINDEX_BLOAT_PERCENT;
    if (!(await hasPgstattuple(conn))) return { outcome: 'nothing', rows: 0, detail: 'index bloat unavailable: extension pgstattuple not installed; nothing reindexed' };
    const maxBytes = deps.config.OPS_BLOAT_SCAN_MAX_MB * 1024 * 1024;
    const bloated = (await indexBloat(conn, { maxBytes, pgstattuple: true })).filter((i) => i.bloat_percent !== null && i.bloat_percent >= threshold);
    if (bloated.length === 0) return { outcome: 'nothing', rows: 0, detail: `no btree index at or over ${threshold} % bloat` };
    if (dryRun) return { outcome: 'would', rows: 0, detail: bloated.map((b) => ({ index: b.index, bloat_percent: b.bloat_percent, size_bytes: b.size_bytes, statement: `REINDEX INDEX CONCURRENTLY ${b.index}` })) };
    const done: unknown[] = [];
    for (const b of bloated) {
      // Index names come from the catalog, quoted by format('%I.%I').
      await conn.unsafe(`REINDEX INDEX CONCURRENTLY ${b.index}`);
      const [after] = await conn<{ size: number }[]>`select pg_relation_size(${b.index}::regclass)::bigint as size`;
      done.push({ index: b.index, bloat_percent_before: b.bloat_percent, size_before: b.size_bytes, size_after: Number(after?.size ?? 0) });
    }
    return { outcome: 'done', rows: 0, detail: done };
  },

  async cleanup_sessions(conn, deps, dryRun) {
    const cutoff = new Date(nowOf(deps).getTime() - 30 * DAY);
    return batchedDelete(conn, deps, dryRun, {
      table: 'user_sessions',
      key: 'id',
      where: 'last_activity < $1',
      order: 'last_activity',
      cutoff,
      describe: 'sessions idle for more than 30 days (last_activity)',
    });
  },

  async cleanup_audit_logs(conn, deps, dryRun) {
    const cutoff = new Date(nowOf(deps).getTime() - 365 * DAY);
    return batchedDelete(conn, deps, dryRun, {
      table: 'audit_logs',
      key: 'id',
      where: 'created_at < $1',
      order: 'created_at',
      cutoff,
      describe: 'audit log entries older than one year',
    });
  },

  async archive_predictions(conn, deps, dryRun) {
    const now = nowOf(deps);
    const cutoff = new Date(Date.UTC(now.getUTCFullYear() - 2, now.getUTCMonth(), now.getUTCDate(), now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds()));
    const detail: Record<string, unknown> = { cutoff };
    let total = 0;
    for (const [table, archive] of [
      ['annual_predictions', 'annual_predictions_archive'],
      ['quarterly_predictions', 'quarterly_predictions_archive'],
    ] as const) {
      const [c] = await conn.unsafe<{ n: number }[]>(`select count(*)::bigint as n from ${table} where created_at < $1`, [cutoff]);
      const candidates = Number(c?.n ?? 0);
      if (dryRun) {
        detail[table] = { would_move: candidates, to: archive };
        total += candidates;
        continue;
      }
      const cols = await conn<{ name: string }[]>`
        select quote_ident(a.attname) as name from pg_attribute a
        where a.attrelid = ${table}::regclass and a.attnum > 0 and not a.attisdropped
          and exists (select 1 from pg_attribute b where b.attrelid = ${archive}::regclass and b.attname = a.attname and not b.attisdropped)
        order by a.attnum`;
      const list = cols.map((x) => x.name).join(', ');
      let moved = 0;
      let batches = 0;
      for (;;) {
        const [r] = await conn.unsafe<{ deleted: number; inserted: number; ids: string[]; scopes: Array<{ access_level: string; organization_id: string | null; created_by: string | null }> }[]>(
          `with moved as (
             delete from ${table} p where p.id in (
               select id from ${table} where created_at < $1 order by created_at limit $2 for update skip locked)
             returning ${cols.map((x) => 'p.' + x.name).join(', ')}
           ), ins as (
             insert into ${archive} (${list}) select ${list} from moved returning 1
           )
           select (select count(*) from moved)::int as deleted, (select count(*) from ins)::int as inserted,
                  (select coalesce(array_agg(id), '{}') from moved) as ids,
                  (select coalesce(jsonb_agg(distinct jsonb_build_object('access_level', access_level, 'organization_id', organization_id, 'created_by', created_by)), '[]') from moved) as scopes`,
          [cutoff, deps.config.MAINTENANCE_BATCH_SIZE],
        );
        const deleted = r?.deleted ?? 0;
        if (deleted !== (r?.inserted ?? -1)) throw new Error(`${table}: batch deleted ${deleted} rows but archived ${r?.inserted} (rolled back? check the archive table)`);
        moved += deleted;
        // Archived predictions leave the API: drop their cached copies and the scopes' analytics.
        if (deleted > 0) await invalidatePredictionWrites(deps.cacheRedis ?? deps.redis, deps.log, r!.ids, r!.scopes);
        if (deleted > 0) batches++;
        if (deleted < deps.config.MAINTENANCE_BATCH_SIZE) break;
      }
      detail[table] = { moved, batches, to: archive };
      total += moved;
    }
    return { outcome: dryRun ? 'would' : total > 0 ? 'done' : 'nothing', rows: total, detail };
  },

  async sweep_uploads(conn, deps, dryRun) {
    if (!deps.uploadDir) return { outcome: 'nothing', rows: 0, detail: 'no upload directory given' };
    const dir = path.resolve(deps.uploadDir);
    let names: string[];
    try {
      names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { outcome: 'nothing', rows: 0, detail: { dir, note: 'the upload directory does not exist yet' } };
      throw err;
    }
    // Reading every live job is what makes deleting safe: under forced row-level security the
    // owner would see no job at all and take every waiting upload for an orphan.
    const [vis] = await conn<{ ok: boolean }[]>`
      select not c.relforcerowsecurity or r.rolsuper or r.rolbypassrls as ok
      from pg_class c, pg_roles r where c.oid = 'bulk_upload_jobs'::regclass and r.rolname = current_user`;
    if (!vis?.ok) throw new Error('bulk_upload_jobs has FORCE ROW LEVEL SECURITY and this role does not bypass it: cannot tell live uploads from orphans, nothing deleted');
    const live = new Set(
      (await conn<{ file_path: string }[]>`
        select file_path from bulk_upload_jobs where status in ('queued', 'running') and file_path is not null`).map((r) => path.resolve(r.file_path)),
    );
    // An upload is written to disk before its job row is committed: a file younger than this
    // may belong to a request still in flight.
    const cutoff = nowOf(deps).getTime() - UPLOAD_GRACE_MS;
    let removed = 0;
    let bytes = 0;
    let keptLive = 0;
    let keptRecent = 0;
    const sample: string[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      if (live.has(file)) {
        keptLive++;
        continue;
      }
      const st = await stat(file).catch(() => null);
      if (!st) continue;
      if (st.mtimeMs > cutoff) {
        keptRecent++;
        continue;
      }
      if (!dryRun) {
        const gone = await unlink(file).then(() => true, (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return false;
          throw err;
        });
        if (!gone) continue;
      }
      removed++;
      bytes += st.size;
      if (sample.length < 20) sample.push(name);
    }
    const detail = { dir, [dryRun ? 'would_remove' : 'removed']: removed, bytes, files: sample, kept_for_live_jobs: keptLive, kept_younger_than_1h: keptRecent };
    return { outcome: dryRun ? 'would' : removed > 0 ? 'done' : 'nothing', rows: removed, detail };
  },

  async redis_report(_conn, deps) {
    const targets: Array<[string, Redis]> = [];
    if (deps.redis) targets.push(['redis', deps.redis]);
    if (deps.cacheRedis && deps.cacheRedis !== deps.redis) targets.push(['cache redis', deps.cacheRedis]);
    if (targets.length === 0) return { outcome: 'nothing', rows: 0, detail: 'no Redis connection given' };
    const reports = [];
    for (const [target, redis] of targets) {
      const info = parseInfo(await redis.info('everything'));
      const fams = await keyFamilies(redis, { maxKeys: deps.config.OPS_REDIS_SCAN_MAX_KEYS, samplePerFamily: 100 });
      // Every family of the architecture guide has a TTL; a key without one never goes away.
      const noTtl = fams.families
        .filter((f) => f.family !== 'other' && f.family !== 'queue' && f.with_ttl_percent !== null && f.with_ttl_percent < 100)
        .map((f) => `${f.family}: ${100 - (f.with_ttl_percent ?? 0)} % of sampled keys have no TTL`);
      reports.push({
        target,
        used_memory: num(info, 'used_memory'),
        maxmemory: num(info, 'maxmemory'),
        policy: info.maxmemory_policy,
        fragmentation_ratio: num(info, 'mem_fragmentation_ratio'),
        expired_keys: num(info, 'expired_keys'),
        evicted_keys: num(info, 'evicted_keys'),
        families: fams.families.filter((f) => f.keys > 0),
        warnings: noTtl,
        note: 'report only: Redis expires keys itself; nothing is deleted',
      });
    }
    return { outcome: 'done', rows: 0, detail: reports };
  },
};

async function hasPgstattuple(conn: Conn): Promise<boolean> {
  const [r] = await conn<{ ok: boolean }[]>`select exists (select 1 from pg_extension where extname = 'pgstattuple') as ok`;
  return !!r?.ok;
}

async function batchedDelete(
  conn: Conn,
  deps: MaintenanceDeps,
  dryRun: boolean,
  t: { table: string; key: string; where: string; order: string; cutoff: Date; describe: string },
): Promise<Omit<StepResult, 'step' | 'duration_ms'>> {
  if (dryRun) {
    const [c] = await conn.unsafe<{ n: number }[]>(`select count(*)::bigint as n from ${t.table} where ${t.where}`, [t.cutoff]);
    return { outcome: 'would', rows: Number(c?.n ?? 0), detail: { would_delete: Number(c?.n ?? 0), what: t.describe, cutoff: t.cutoff } };
  }
  const batch = deps.config.MAINTENANCE_BATCH_SIZE;
  let total = 0;
  let batches = 0;
  for (;;) {
    const r = await conn.unsafe(
      `with doomed as (select ${t.key} from ${t.table} where ${t.where} order by ${t.order} limit $2 for update skip locked)
       delete from ${t.table} x using doomed where x.${t.key} = doomed.${t.key}`,
      [t.cutoff, batch],
    );
    total += r.count;
    if (r.count > 0) batches++;
    if (r.count < batch) break;
  }
  return { outcome: total > 0 ? 'done' : 'nothing', rows: total, detail: { deleted: total, batches, what: t.describe, cutoff: t.cutoff } };
}

interface MaintenanceRunRow {
  id: number;
  kind: string;
  dry_run: boolean;
  started_at: Date;
  finished_at: Date | null;
  duration_s: number | null;
  outcome: string;
  rows_affected: number;
  error: string | null;
  steps: StepResult[];
}

export async function maintenanceHistory(sql: Sql, opts: { limit?: number } = {}): Promise<MaintenanceRunRow[]> {
  const rows = await sql<MaintenanceRunRow[]>`
    select id, kind, dry_run, started_at, finished_at,
           round(extract(epoch from finished_at - started_at)::numeric, 2)::float8 as duration_s,
           outcome, rows_affected, error, steps
    from maintenance_runs order by started_at desc, id desc limit ${opts.limit ?? 20}`;
  return rows.map((r) => ({ ...r, id: Number(r.id), rows_affected: Number(r.rows_affected) }));
}
