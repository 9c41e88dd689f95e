// `accunode diagnose`: the spec's troubleshooting section as one report.
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/pool.js';
import {
  blockedPairs,
  connectionCounts,
  expensiveStatements,
  indexBloat,
  longRunning,
  pgStatStatementsStatus,
  pgstattupleInstalled,
  seqScanHeavy,
  tableBloat,
  unusedIndexes,
  type ActivityRow,
  type BlockedPair,
  type ExtensionStatus,
  type IndexBloatRow,
  type SeqScanRow,
  type StatementRow,
  type TableBloatRow,
  type UnusedIndexRow,
} from './pg.js';
import { keyFamilies, num, parseInfo, slowlog, type KeyFamilyReport, type SlowlogRow } from './redis.js';
import { errMessage, type OpsDeps } from '../types.js';

export interface RedisDiagnosis {
  target: string;
  key_families: KeyFamilyReport;
  slowlog: SlowlogRow[];
  clients: { connected: number; maxclients: number | null; percent: number | null; warning: string | null };
  evictions: { evicted_keys: number; policy: string; warning: string | null };
  memory: { used: number; maxmemory: number; warning: string | null };
}

export interface Diagnosis {
  pg_stat_statements: ExtensionStatus;
  expensive_statements: StatementRow[] | null;
  seq_scan_tables: SeqScanRow[];
  connections_by_state: Array<{ state: string; count: number }>;
  active_over_5_minutes: ActivityRow[];
  blocked: BlockedPair[];
  pgstattuple: boolean;
  table_bloat: TableBloatRow[];
  index_bloat: IndexBloatRow[];
  unused_indexes: UnusedIndexRow[];
  redis: RedisDiagnosis[];
}

export async function diagnose(deps: OpsDeps, opts: { samplePerFamily?: number; activeOverSeconds?: number } = {}): Promise<Diagnosis> {
  const sql = deps.sql;
  const pss = await pgStatStatementsStatus(sql);
  let expensive: StatementRow[] | null = null;
  if (pss.available) {
    try {
      expensive = await expensiveStatements(sql, 10);
    } catch (err) {
      pss.available = false;
      pss.reason = errMessage(err);
    }
  }
  const conns = await connectionCounts(sql);
  const pgst = await pgstattupleInstalled(sql);
  const maxBytes = deps.config.OPS_BLOAT_SCAN_MAX_MB * 1024 * 1024;
  const redis: RedisDiagnosis[] = [await diagnoseRedis('redis', deps.redis, deps.config.OPS_REDIS_SCAN_MAX_KEYS, opts.samplePerFamily)];
  if (deps.cacheRedis && deps.cacheRedis !== deps.redis)
    redis.push(await diagnoseRedis('cache redis', deps.cacheRedis, deps.config.OPS_REDIS_SCAN_MAX_KEYS, opts.samplePerFamily));
  return {
    pg_stat_statements: pss,
    expensive_statements: expensive,
    seq_scan_tables: await seqScanHeavy(sql, 10),
    connections_by_state: conns.byState,
    active_over_5_minutes: await longRunning(sql, opts.activeOverSeconds ?? 300),
    blocked: await blockedPairs(sql),
    pgstattuple: pgst,
    table_bloat: await tableBloat(sql, { maxBytes, pgstattuple: pgst }),
    index_bloat: await indexBloat(sql, { maxBytes, pgstattuple: pgst }),
    unused_indexes: await unusedIndexes(sql),
    redis,
  };
}

export async function diagnoseRedis(target: string, redis: Redis, maxKeys: number, samplePerFamily?: number): Promise<RedisDiagnosis> {
  const info = parseInfo(await redis.info('everything'));
  const connected = num(info, 'connected_clients') ?? 0;
  const maxclients = num(info, 'maxclients');
  const pct = maxclients ? Math.round((1000 * connected) / maxclients) / 10 : null;
  const evicted = num(info, 'evicted_keys') ?? 0;
  const used = num(info, 'used_memory') ?? 0;
  const maxmemory = num(info, 'maxmemory') ?? 0;
  return {
    target,
    key_families: await keyFamilies(redis, { maxKeys, ...(samplePerFamily ? { samplePerFamily } : {}) }),
    slowlog: await slowlog(redis, 10),
    clients: { connected, maxclients, percent: pct, warning: pct !== null && pct > 80 ? 'client connections above 80 % of maxclients' : null },
    evictions: {
      evicted_keys: evicted,
      policy: info.maxmemory_policy ?? '?',
      warning: evicted > 0 ? `${evicted} keys evicted due to memory pressure since the server started` : null,
    },
    memory: {
      used,
      maxmemory,
      warning: maxmemory > 0 && used / maxmemory > 0.9 ? 'memory usage above 90 % of maxmemory' : maxmemory === 0 ? 'maxmemory is 0: no limit (an allkeys-lru cache never evicts; the host can run out)' : null,
    },
  };
}

class BackendActionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendActionError';
  }
}

interface BackendTarget {
  pid: number;
  database: string | null;
  user: string | null;
  state: string | null;
  query: string;
  /** Backends it blocks (pids). */
  blocking: number[];
}

/** What a pid is running and whom it blocks, shown before asking to confirm. */
export async function describeBackend(sql: Sql, pid: number): Promise<BackendTarget | null> {
  const [r] = await sql<{ pid: number; database: string | null; user: string | null; state: string | null; query: string; blocking: number[] }[]>`
    select a.pid, a.datname as database, a.usename as "user", a.state, left(a.query, 1000) as query,
           coalesce((select array_agg(o.pid) from pg_stat_activity o where a.pid = any(pg_blocking_pids(o.pid))), '{}') as blocking
    from pg_stat_activity a where a.pid = ${pid} and a.backend_type = 'client backend'`;
  return r ?? null;
}

/**
 * Cancels the statement of (or terminates) a backend. Uses the owner connection: signalling
 * another role's backend needs pg_signal_backend or superuser, which monitoring_user lacks.
 */
export async function signalBackend(adminSql: Sql, pid: number, action: 'cancel' | 'terminate'): Promise<{ pid: number; action: string; signalled: boolean }> {
  const [r] =
    action === 'cancel'
      ? await adminSql<{ ok: boolean }[]>`select pg_cancel_backend(${pid}) as ok`
      : await adminSql<{ ok: boolean }[]>`select pg_terminate_backend(${pid}) as ok`;
  if (!r?.ok) throw new BackendActionError(`pid ${pid} was not signalled (no such backend, or not permitted)`);
  return { pid, action, signalled: true };
}
