// PostgreSQL statistics for monitor, diagnose, alarms and /metrics. SQL only (works against a
// remote server), as monitoring_user (pg_monitor), with PostgreSQL 13+ column names
// (total_exec_time/mean_exec_time, relname).
import type { Sql } from '../../db/pool.js';
import { errMessage, type ReplicaConn } from '../types.js';

export interface ExtensionStatus {
  available: boolean;
  /** Why not, and what to do about it. */
  reason?: string;
  howToEnable?: string;
}

/** Is pg_stat_statements usable here? Says what is missing and how to enable it. */
export async function pgStatStatementsStatus(sql: Sql): Promise<ExtensionStatus> {
  const [row] = await sql<{ preload: string; installed: boolean; db: string }[]>`
    select current_setting('shared_preload_libraries') as preload,
           exists (select 1 from pg_extension where extname = 'pg_stat_statements') as installed,
           current_database() as db`;
  const preloaded = (row?.preload ?? '')
    .split(',')
    .map((s) => s.trim().replace(/^"|"$/g, ''))
    .includes('pg_stat_statements');
  const create = `CREATE EXTENSION pg_stat_statements; (as the database owner, in database "${row?.db}")`;
  if (!preloaded) {
    return {
      available: false,
      reason: 'pg_stat_statements is not in shared_preload_libraries on this server',
      howToEnable:
        "add it to shared_preload_libraries (self-hosted: ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements' " +
        'or ops/postgres/postgresql.conf; RDS: the parameter group), restart PostgreSQL' +
        (row?.installed ? '' : `, then ${create}`),
    };
  }
  if (!row?.installed) {
    return { available: false, reason: `the pg_stat_statements extension is not created in database "${row?.db}"`, howToEnable: create };
  }
  return { available: true };
}

export async function pgstattupleInstalled(sql: Sql): Promise<boolean> {
  const [r] = await sql<{ ok: boolean }[]>`select exists (select 1 from pg_extension where extname = 'pgstattuple') as ok`;
  return !!r?.ok;
}

interface ConnectionCounts {
  total: number;
  byState: Array<{ state: string; count: number }>;
  maxConnections: number;
  reserved: number;
}

/** Client connections on the whole server (what max_connections limits). */
export async function connectionCounts(sql: Sql): Promise<ConnectionCounts> {
  const rows = await sql<{ state: string; count: number }[]>`
    select coalesce(state, 'unknown') as state, count(*)::int as count
    from pg_stat_activity where backend_type = 'client backend'
    group by 1 order by 2 desc`;
  const [s] = await sql<{ max: number; reserved: number }[]>`
    select current_setting('max_connections')::int as max, current_setting('superuser_reserved_connections')::int as reserved`;
  return {
    total: rows.reduce((a, r) => a + r.count, 0),
    byState: rows.map((r) => ({ state: r.state, count: r.count })),
    maxConnections: s?.max ?? 0,
    reserved: s?.reserved ?? 0,
  };
}

export interface ActivityRow {
  pid: number;
  database: string | null;
  user: string | null;
  application: string | null;
  state: string | null;
  query_start: Date | null;
  duration_s: number;
  wait: string | null;
  query: string;
}

/** Statements running (not idle) for longer than minSeconds, on every database of the server. */
export async function longRunning(sql: Sql, minSeconds: number): Promise<ActivityRow[]> {
  return sql<ActivityRow[]>`
    select pid, datname as database, usename as "user", application_name as application, state,
           query_start, round(extract(epoch from now() - query_start)::numeric, 1)::float8 as duration_s,
           nullif(concat_ws(':', wait_event_type, wait_event), '') as wait, left(query, 1000) as query
    from pg_stat_activity
    where backend_type = 'client backend' and state is distinct from 'idle' and pid <> pg_backend_pid()
      and query_start < now() - make_interval(secs => ${minSeconds})
    order by query_start`;
}

export interface BlockedPair {
  blocked_pid: number;
  blocked_user: string | null;
  blocked_database: string | null;
  blocked_for_s: number | null;
  blocked_statement: string;
  blocking_pid: number;
  blocking_user: string | null;
  blocking_state: string | null;
  blocking_statement: string;
}

/**
 * Blocked/blocking pairs with both statements. pg_blocking_pids() replaces the spec's pg_locks
 * self-join (which misses some lock modes and reports every lock-compatible holder).
 */
export async function blockedPairs(sql: Sql): Promise<BlockedPair[]> {
  return sql<BlockedPair[]>`
    select a.pid as blocked_pid, a.usename as blocked_user, a.datname as blocked_database,
           round(extract(epoch from now() - a.query_start)::numeric, 1)::float8 as blocked_for_s,
           left(a.query, 1000) as blocked_statement,
           b.pid as blocking_pid, b.usename as blocking_user, b.state as blocking_state,
           left(b.query, 1000) as blocking_statement
    from pg_stat_activity a
    cross join lateral unnest(pg_blocking_pids(a.pid)) as bp(pid)
    join pg_stat_activity b on b.pid = bp.pid
    where a.wait_event_type = 'Lock'
    order by a.query_start`;
}

interface DbTotals {
  database: string;
  size_bytes: number;
  blks_hit: number;
  blks_read: number;
  xacts: number;
  blk_read_time_ms: number;
  track_io_timing: boolean;
  taken_at: Date;
}

export async function databaseTotals(sql: Sql): Promise<DbTotals> {
  const [r] = await sql<DbTotals[]>`
    select d.datname as database, pg_database_size(d.datname)::bigint as size_bytes,
           d.blks_hit::bigint as blks_hit, d.blks_read::bigint as blks_read,
           (d.xact_commit + d.xact_rollback)::bigint as xacts, d.blk_read_time::float8 as blk_read_time_ms,
           current_setting('track_io_timing') = 'on' as track_io_timing, clock_timestamp() as taken_at
    from pg_stat_database d where d.datname = current_database()`;
  if (!r) throw new Error('pg_stat_database has no row for the current database');
  return { ...r, size_bytes: Number(r.size_bytes), blks_hit: Number(r.blks_hit), blks_read: Number(r.blks_read), xacts: Number(r.xacts) };
}

export async function largestTables(sql: Sql, limit = 5): Promise<Array<{ table: string; total_bytes: number; table_bytes: number; indexes_bytes: number }>> {
  const rows = await sql<{ table: string; total_bytes: number; table_bytes: number; indexes_bytes: number }[]>`
    select format('%I.%I', n.nspname, c.relname) as table,
           pg_total_relation_size(c.oid)::bigint as total_bytes, pg_relation_size(c.oid)::bigint as table_bytes,
           pg_indexes_size(c.oid)::bigint as indexes_bytes
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
    order by pg_total_relation_size(c.oid) desc limit ${limit}`;
  return rows.map((r) => ({ ...r, total_bytes: Number(r.total_bytes), table_bytes: Number(r.table_bytes), indexes_bytes: Number(r.indexes_bytes) }));
}

export interface ReplicationRow {
  replica: string;
  source: string;
  state: string | null;
  lag_seconds: number | null;
  lag_bytes: number | null;
  note: string;
}

/**
 * Lag of each replica: as the primary sees it (pg_stat_replication) and, for each configured
 * read replica (DATABASE_READ_URLS), as the replica itself measures it (time since the last
 * replayed transaction while it has WAL not yet replayed; 0 when caught up).
 */
export async function replicationLag(sql: Sql, replicas: ReplicaConn[] = []): Promise<ReplicationRow[]> {
  const out: ReplicationRow[] = [];
  const fromPrimary = await sql<{ name: string; state: string | null; lag_s: number | null; lag_bytes: number | null }[]>`
    select coalesce(nullif(application_name, ''), client_addr::text, 'pid ' || pid) as name, state,
           extract(epoch from replay_lag)::float8 as lag_s,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 as lag_bytes
    from pg_stat_replication order by 1`;
  for (const r of fromPrimary) {
    out.push({
      replica: r.name,
      source: 'pg_stat_replication on the primary',
      state: r.state,
      lag_seconds: r.lag_s ?? 0,
      lag_bytes: r.lag_bytes,
      note: r.lag_s === null ? 'replay_lag is NULL: nothing replayed recently (idle) - counted as 0' : 'replay_lag',
    });
  }
  for (const rep of replicas) {
    try {
      const [r] = await rep.sql<{ recovering: boolean; lag_s: number | null; caught_up: boolean; lag_bytes: number | null; last: Date | null }[]>`
        select pg_is_in_recovery() as recovering,
               coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false) as caught_up,
               pg_last_xact_replay_timestamp() as last,
               extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as lag_s,
               pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 as lag_bytes`;
      if (!r?.recovering) {
        out.push({ replica: rep.name, source: 'replica', state: 'not in recovery', lag_seconds: null, lag_bytes: null, note: 'unavailable: this server is not a replica (promoted?)' });
      } else if (r.caught_up) {
        out.push({ replica: rep.name, source: 'replica', state: 'streaming', lag_seconds: 0, lag_bytes: 0, note: 'all received WAL replayed' });
      } else if (r.lag_s === null) {
        out.push({ replica: rep.name, source: 'replica', state: 'replaying', lag_seconds: null, lag_bytes: r.lag_bytes, note: 'unavailable: no transaction replayed yet since the replica started' });
      } else {
        out.push({ replica: rep.name, source: 'replica', state: 'behind', lag_seconds: Math.max(0, r.lag_s), lag_bytes: r.lag_bytes, note: 'now() - pg_last_xact_replay_timestamp() with WAL waiting' });
      }
    } catch (err) {
      out.push({ replica: rep.name, source: 'replica', state: 'unreachable', lag_seconds: null, lag_bytes: null, note: `unavailable: ${errMessage(err)}` });
    }
  }
  return out;
}

export interface StatementRow {
  queryid: string;
  database: string | null;
  user: string | null;
  calls: number;
  total_ms: number;
  mean_ms: number;
  rows: number;
  hit_percent: number | null;
  query: string;
}

/** The spec's "identify expensive queries", PostgreSQL 13+ columns. */
export async function expensiveStatements(sql: Sql, limit = 10): Promise<StatementRow[]> {
  const rows = await sql<StatementRow[]>`
    select s.queryid::text as queryid, d.datname as database, r.rolname as "user", s.calls::bigint as calls,
           round(s.total_exec_time::numeric, 1)::float8 as total_ms, round(s.mean_exec_time::numeric, 2)::float8 as mean_ms,
           s.rows::bigint as rows,
           round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 2)::float8 as hit_percent,
           left(s.query, 1000) as query
    from pg_stat_statements s
    left join pg_database d on d.oid = s.dbid left join pg_roles r on r.oid = s.userid
    order by s.total_exec_time desc limit ${limit}`;
  return rows.map((r) => ({ ...r, calls: Number(r.calls), rows: Number(r.rows) }));
}

/** Cumulative counters of every statement, keyed for period deltas. */
export async function statementCounters(sql: Sql): Promise<Record<string, [number, number]>> {
  const rows = await sql<{ k: string; calls: number; total: number }[]>`
    select concat_ws(':', userid, dbid, queryid, toplevel) as k, calls::bigint as calls, total_exec_time::float8 as total
    from pg_stat_statements`;
  const out: Record<string, [number, number]> = {};
  for (const r of rows) out[r.k] = [Number(r.calls), r.total];
  return out;
}

/**
 * Slow calls in a period from two pg_stat_statements readings: a statement whose calls in the
 * period averaged more than slowMs contributes those calls. A statement whose counters went
 * down was reset or evicted in between: its current counters are the period's.
 */
export function slowCallsBetween(
  before: Record<string, [number, number]>,
  after: Record<string, [number, number]>,
  slowMs: number,
): { slowCalls: number; statements: number } {
  let slowCalls = 0;
  let statements = 0;
  for (const [k, [calls, total]] of Object.entries(after)) {
    const prev = before[k];
    let dc = calls;
    let dt = total;
    if (prev && prev[0] <= calls) {
      dc = calls - prev[0];
      dt = total - prev[1];
    }
    if (dc > 0 && dt / dc > slowMs) {
      slowCalls += dc;
      statements++;
    }
  }
  return { slowCalls, statements };
}

export interface SeqScanRow {
  table: string;
  seq_scan: number;
  seq_tup_read: number;
  avg_seq_tup_read: number;
  idx_scan: number | null;
  live_rows: number;
}

/** The spec's "check for missing indexes": tables read sequentially the most. */
export async function seqScanHeavy(sql: Sql, limit = 10): Promise<SeqScanRow[]> {
  const rows = await sql<SeqScanRow[]>`
    select format('%I.%I', schemaname, relname) as table, seq_scan::bigint as seq_scan, seq_tup_read::bigint as seq_tup_read,
           (seq_tup_read / nullif(seq_scan, 0))::bigint as avg_seq_tup_read, idx_scan::bigint as idx_scan, n_live_tup::bigint as live_rows
    from pg_stat_user_tables where seq_scan > 0
    order by seq_tup_read desc limit ${limit}`;
  return rows.map((r) => ({
    ...r,
    seq_scan: Number(r.seq_scan),
    seq_tup_read: Number(r.seq_tup_read),
    avg_seq_tup_read: Number(r.avg_seq_tup_read),
    idx_scan: r.idx_scan === null ? null : Number(r.idx_scan),
    live_rows: Number(r.live_rows),
  }));
}

export interface UnusedIndexRow {
  index: string;
  table: string;
  size_bytes: number;
  idx_scan: number;
  stats_since: Date | null;
}

/**
 * Indexes never scanned since statistics were reset (the spec's idx_tup_read = 0 AND
 * idx_tup_fetch = 0, as idx_scan = 0). Indexes behind a primary key, unique or exclusion
 * constraint are left out: they enforce something even when no query reads them.
 */
export async function unusedIndexes(sql: Sql): Promise<UnusedIndexRow[]> {
  const rows = await sql<UnusedIndexRow[]>`
    select format('%I.%I', s.schemaname, s.indexrelname) as index, format('%I.%I', s.schemaname, s.relname) as table,
           pg_relation_size(s.indexrelid)::bigint as size_bytes, s.idx_scan::bigint as idx_scan,
           (select stats_reset from pg_stat_database where datname = current_database()) as stats_since
    from pg_stat_user_indexes s join pg_index i on i.indexrelid = s.indexrelid
    where s.idx_scan = 0 and not i.indisunique and not i.indisprimary and not i.indisexclusion
    order by pg_relation_size(s.indexrelid) desc, 1`;
  return rows.map((r) => ({ ...r, size_bytes: Number(r.size_bytes), idx_scan: Number(r.idx_scan) }));
}

export interface TableBloatRow {
  table: string;
  size_bytes: number;
  live_rows: number;
  dead_rows: number;
  dead_percent: number | null;
  free_percent: number | null;
  bloat_percent: number | null;
  source: string;
}

export interface IndexBloatRow {
  index: string;
  table: string;
  size_bytes: number;
  leaf_density: number | null;
  bloat_percent: number | null;
  source: string;
}

/**
 * Table bloat: dead rows from the statistics collector, and (with pgstattuple) the measured dead
 * and free space of each heap (pgstattuple_approx: visibility-map assisted, cheap). Bloat =
 * dead + free space, percent of the heap.
 */
export async function tableBloat(sql: Sql, opts: { maxBytes: number; pgstattuple: boolean }): Promise<TableBloatRow[]> {
  const rows = await sql<{ oid: number; table: string; size_bytes: number; live: number; dead: number }[]>`
    select s.relid::int as oid, format('%I.%I', s.schemaname, s.relname) as table, pg_relation_size(s.relid)::bigint as size_bytes,
           s.n_live_tup::bigint as live, s.n_dead_tup::bigint as dead
    from pg_stat_user_tables s order by pg_relation_size(s.relid) desc`;
  const out: TableBloatRow[] = [];
  for (const r of rows) {
    const size = Number(r.size_bytes);
    const live = Number(r.live);
    const dead = Number(r.dead);
    const row: TableBloatRow = {
      table: r.table,
      size_bytes: size,
      live_rows: live,
      dead_rows: dead,
      dead_percent: live + dead > 0 ? round2((100 * dead) / (live + dead)) : null,
      free_percent: null,
      bloat_percent: null,
      source: 'pg_stat_user_tables (n_dead_tup)',
    };
    if (!opts.pgstattuple) row.source += '; bloat unavailable: extension pgstattuple not installed (CREATE EXTENSION pgstattuple as a superuser)';
    else if (size === 0) {
      row.free_percent = 0;
      row.bloat_percent = 0;
      row.source = 'empty heap';
    } else if (size > opts.maxBytes) row.source += `; bloat unavailable: larger than OPS_BLOAT_SCAN_MAX_MB`;
    else {
      try {
        const [t] = await sql<{ dead: number; free: number }[]>`
          select dead_tuple_percent::float8 as dead, approx_free_percent::float8 as free from pgstattuple_approx(${r.oid}::oid::regclass)`;
        row.free_percent = round2(t?.free ?? 0);
        row.bloat_percent = round2((t?.dead ?? 0) + (t?.free ?? 0));
        row.dead_percent = round2(t?.dead ?? 0);
        row.source = 'pgstattuple_approx (measured)';
      } catch (err) {
        row.source = `bloat unavailable: ${errMessage(err)}`;
      }
    }
    out.push(row);
  }
  return out;
}

/**
 * Index bloat of btree indexes, measured with pgstatindex (reads the index): the share of leaf
 * pages not holding live entries at the index's fill factor, counting empty and deleted pages.
 */
export async function indexBloat(sql: Sql, opts: { maxBytes: number; pgstattuple: boolean }): Promise<IndexBloatRow[]> {
  const rows = await sql<{ oid: number; index: string; table: string; size_bytes: number; am: string; ff: number | null }[]>`
    select s.indexrelid::int as oid, format('%I.%I', s.schemaname, s.indexrelname) as index, format('%I.%I', s.schemaname, s.relname) as table,
           pg_relation_size(s.indexrelid)::bigint as size_bytes, a.amname as am,
           (select split_part(o, '=', 2)::int from unnest(c.reloptions) o where o like 'fillfactor=%') as ff
    from pg_stat_user_indexes s join pg_class c on c.oid = s.indexrelid join pg_am a on a.oid = c.relam
    order by pg_relation_size(s.indexrelid) desc`;
  const out: IndexBloatRow[] = [];
  for (const r of rows) {
    const size = Number(r.size_bytes);
    const row: IndexBloatRow = { index: r.index, table: r.table, size_bytes: size, leaf_density: null, bloat_percent: null, source: '' };
    if (!opts.pgstattuple) row.source = 'unavailable: extension pgstattuple not installed (CREATE EXTENSION pgstattuple as a superuser)';
    else if (r.am !== 'btree') row.source = `unavailable: ${r.am} index (only btree is measured)`;
    else if (size > opts.maxBytes) row.source = 'unavailable: larger than OPS_BLOAT_SCAN_MAX_MB';
    else {
      try {
        const [t] = await sql<{ leaf: number; empty: number; deleted: number; density: number }[]>`
          select leaf_pages::float8 as leaf, empty_pages::float8 as empty, deleted_pages::float8 as deleted, avg_leaf_density::float8 as density
          from pgstatindex(${r.oid}::oid::regclass)`;
        const ff = r.ff ?? 90;
        const leaf = t?.leaf ?? 0;
        const all = leaf + (t?.empty ?? 0) + (t?.deleted ?? 0);
        const density = Number.isNaN(t?.density) ? 0 : (t?.density ?? 0);
        row.leaf_density = round2(density);
        row.bloat_percent = all === 0 ? 0 : round2(Math.max(0, 100 * (1 - (leaf * Math.min(1, density / ff)) / all)));
        row.source = `pgstatindex (measured, fillfactor ${ff})`;
      } catch (err) {
        row.source = `unavailable: ${errMessage(err)}`;
      }
    }
    out.push(row);
  }
  return out;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The cheapest round trip that proves the server answers (health checks). */
export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`select 1`;
}
