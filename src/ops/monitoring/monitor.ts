// `accunode monitor`: the spec's "Custom Performance Monitoring" and "Redis Monitoring", each
// figure compared with its threshold (OK / WARN / ALARM), or unavailable with the reason.
import type { Redis } from 'ioredis';
import {
  connectionCounts,
  databaseTotals,
  largestTables,
  longRunning,
  replicationLag,
  type ActivityRow,
  type ReplicationRow,
} from './pg.js';
import { hitRate, memoryFigure, num, parseInfo, pingMs, round1, totalKeys } from './redis.js';
import { errMessage, nowOf, type Level, type MonitorFigure, type OpsDeps } from '../types.js';

export interface MonitorReport {
  taken_at: Date;
  figures: MonitorFigure[];
  connections_by_state: Array<{ state: string; count: number }>;
  long_running: ActivityRow[];
  largest_tables: Array<{ table: string; total_bytes: number; table_bytes: number; indexes_bytes: number }>;
  replication: ReplicationRow[];
  /** Worst status of all figures. */
  status: Level;
}

/** Higher is worse. */
function above(value: number, warn: number, alarm: number): Level {
  return value > alarm ? 'ALARM' : value > warn ? 'WARN' : 'OK';
}
/** Lower is worse. */
function below(value: number, warn: number, alarm: number): Level {
  return value < alarm ? 'ALARM' : value < warn ? 'WARN' : 'OK';
}

export function formatBytes(n: number | null): string {
  if (n === null) return '-';
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}

/**
 * One reading of everything `monitor` shows. Transactions/s is measured over sampleMs (two
 * readings of pg_stat_database); Redis ops/s is Redis's own instantaneous_ops_per_sec.
 */
export async function collectMonitor(deps: OpsDeps, opts: { sampleMs?: number; longQuerySeconds?: number } = {}): Promise<MonitorReport> {
  const cfg = deps.config;
  const sql = deps.sql;
  const figures: MonitorFigure[] = [];
  const pg = (name: string, value: number | string | null, unit: string, status: MonitorFigure['status'], threshold: string, note: string) =>
    figures.push({ group: 'postgres', name, value, unit, status, threshold, note });

  const t0 = await databaseTotals(sql);
  const conns = await connectionCounts(sql);
  const connPct = conns.maxConnections > 0 ? (100 * conns.total) / conns.maxConnections : 0;
  const alarmPct = cfg.ALARM_DB_CONNECTIONS_PERCENT;
  pg('connections', conns.total, `of ${conns.maxConnections}`, above(connPct, alarmPct - 10, alarmPct), `WARN > ${alarmPct - 10} %, ALARM > ${alarmPct} % of max_connections`, `${round1(connPct)} % of the live max_connections (client backends, all databases)`);
  const active = conns.byState.find((s) => s.state === 'active')?.count ?? 0;
  pg('active connections', active, 'connections', '-', '-', "pg_stat_activity state = 'active'");
  const longS = opts.longQuerySeconds ?? 30;
  const long = await longRunning(sql, longS);
  pg(`queries running > ${longS} s`, long.length, 'queries', above(long.length, 0, 4), 'WARN >= 1, ALARM >= 5', 'pg_stat_activity, every database of the server');
  pg('database size', formatBytes(t0.size_bytes), '', '-', '-', `pg_database_size('${t0.database}')`);
  const tables = await largestTables(sql, 5);
  const cacheTotal = t0.blks_hit + t0.blks_read;
  if (cacheTotal === 0) pg('cache hit ratio', null, '%', 'UNAVAILABLE', 'WARN < 99 %, ALARM < 95 %', 'unavailable: no blocks read since statistics were reset');
  else {
    const ratio = round1((100 * t0.blks_hit) / cacheTotal);
    pg('cache hit ratio', ratio, '%', below(ratio, 99, 95), 'WARN < 99 %, ALARM < 95 %', 'pg_stat_database blks_hit / (blks_hit + blks_read), since the last statistics reset');
  }
  const sampleMs = opts.sampleMs ?? 1000;
  await new Promise((r) => setTimeout(r, sampleMs));
  const t1 = await databaseTotals(sql);
  const secs = (t1.taken_at.getTime() - t0.taken_at.getTime()) / 1000;
  // The second reading's own transaction (and the first's) are not the workload's.
  const tps = secs > 0 ? Math.max(0, t1.xacts - t0.xacts - 1) / secs : 0;
  pg('transactions/s', round1(tps), 'tx/s', '-', '-', `pg_stat_database xact_commit + xact_rollback over ${round1(secs)} s`);
  const replication = await replicationLag(sql, deps.replicas ?? []);
  const lim = cfg.REPLICA_LAG_LIMIT_SECONDS;
  if (replication.length === 0) pg('replication lag', null, 's', 'UNAVAILABLE', `ALARM > ${lim} s`, 'unavailable: no replica streams from this server and DATABASE_READ_URLS is empty');
  for (const r of replication) {
    if (r.lag_seconds === null) pg(`replication lag ${r.replica}`, null, 's', 'UNAVAILABLE', `ALARM > ${lim} s`, r.note);
    else pg(`replication lag ${r.replica}`, round1(r.lag_seconds), 's', above(r.lag_seconds, lim / 2, lim), `WARN > ${lim / 2} s, ALARM > ${lim} s`, `${r.source}: ${r.note}`);
  }

  const targets: Array<[string, Redis]> = [['redis', deps.redis]];
  if (deps.cacheRedis && deps.cacheRedis !== deps.redis) targets.push(['cache redis', deps.cacheRedis]);
  for (const [label, redis] of targets) figures.push(...(await redisFigures(label, redis, cfg.ALARM_REDIS_MEMORY_PERCENT)));

  const rank: Record<string, number> = { ALARM: 3, WARN: 2, OK: 1 };
  const worst = figures.reduce<Level>((w, f) => ((rank[f.status] ?? 0) > (rank[w] ?? 0) ? (f.status as Level) : w), 'OK');
  return { taken_at: nowOf(deps), figures, connections_by_state: conns.byState, long_running: long, largest_tables: tables, replication, status: worst };
}

async function redisFigures(label: string, redis: Redis, memAlarm: number): Promise<MonitorFigure[]> {
  const out: MonitorFigure[] = [];
  const f = (name: string, value: number | string | null, unit: string, status: MonitorFigure['status'], threshold: string, note: string) =>
    out.push({ group: 'redis', name: `${label}: ${name}`, value, unit, status, threshold, note });
  let ping: number;
  try {
    ping = await pingMs(redis);
  } catch (err) {
    f('ping', null, 'ms', 'ALARM', 'answers', `unreachable: ${errMessage(err)}`);
    return out;
  }
  f('ping latency', round1(ping * 100) / 100, 'ms', above(ping, 5, 50), 'WARN > 5 ms, ALARM > 50 ms', 'PING round trip from this process');
  const info = parseInfo(await redis.info('everything'));
  const mem = memoryFigure(info);
  if (!mem) f('memory', null, '%', 'UNAVAILABLE', '', 'unavailable: INFO memory lacks used_memory/total_system_memory');
  else
    f('memory used', mem.percent, `% (${formatBytes(mem.used)} / ${formatBytes(mem.max ?? num(info, 'total_system_memory'))})`, above(mem.percent, memAlarm - 10, memAlarm), `WARN > ${memAlarm - 10} %, ALARM > ${memAlarm} %`, mem.basis);
  const frag = num(info, 'mem_fragmentation_ratio');
  // Below 1 the OS has swapped part of Redis out; high values waste memory. Tiny datasets have
  // meaningless ratios (allocator overhead dominates), so WARN needs some data.
  if (frag === null) f('fragmentation ratio', null, '', 'UNAVAILABLE', '', 'unavailable: INFO has no mem_fragmentation_ratio');
  else {
    const big = (num(info, 'used_memory') ?? 0) > 64 * 1024 * 1024;
    f('fragmentation ratio', frag, '', big ? (frag > 2 ? 'ALARM' : frag > 1.5 || frag < 1 ? 'WARN' : 'OK') : 'OK', 'WARN > 1.5 or < 1, ALARM > 2 (with > 64 MB used)', big ? 'mem_fragmentation_ratio' : 'mem_fragmentation_ratio (under 64 MB used: not judged)');
  }
  f('keys', totalKeys(info), 'keys', '-', '-', 'INFO keyspace, all databases');
  f('expired keys', num(info, 'expired_keys'), 'keys', '-', '-', 'since the server started');
  const evicted = num(info, 'evicted_keys') ?? 0;
  f('evicted keys', evicted, 'keys', evicted > 0 ? 'WARN' : 'OK', 'WARN > 0 (the alarm counts per period)', `since the server started; policy ${info.maxmemory_policy ?? '?'}`);
  const hr = hitRate(info);
  f('hit rate', hr, '%', hr === null ? 'UNAVAILABLE' : below(hr, 80, 50), 'WARN < 80 %, ALARM < 50 %', hr === null ? 'unavailable: no key look-ups yet' : 'keyspace_hits / (hits + misses) since start');
  f('ops/s', num(info, 'instantaneous_ops_per_sec'), 'ops/s', '-', '-', 'instantaneous_ops_per_sec');
  const clients = num(info, 'connected_clients') ?? 0;
  const maxclients = num(info, 'maxclients');
  if (maxclients) f('connected clients', clients, `of ${maxclients}`, above((100 * clients) / maxclients, 70, 80), 'WARN > 70 %, ALARM > 80 % of maxclients', 'connected_clients');
  else f('connected clients', clients, 'clients', '-', '-', 'connected_clients (maxclients not reported)');
  return out;
}
