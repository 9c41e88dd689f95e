// Measuring each alarm's figure, one function per source. Period deltas (slow queries,
// evictions, CPU) are taken against the counters the previous closed period stored (`prev`);
// each function adds what it read now to `snap` so the next period can do the same.
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { connectionCounts, databaseTotals, pgStatStatementsStatus, replicationLag, slowCallsBetween, statementCounters } from '../pg.js';
import { cpuSeconds, memoryFigure, num, parseInfo, round1 } from '../redis.js';
import { modelDriftReading } from '../model-drift-metrics.js';
import { PSI_SIGNIFICANT } from '../../../risk/drift.js';
import { errMessage, type OpsConfig, type OpsDeps } from '../../types.js';
import { worst } from './decide.js';
import type { MetricSample as Sample } from '../../../repositories/monitoring.js';
import type { Reading } from './definitions.js';

/** The counters one evaluation keeps for the next (ops_snapshots, source 'alarms'). */
export interface CounterSnap {
  wall_ms: number;
  statements?: Record<string, [number, number]>;
  blks_read?: number;
  blk_read_time?: number;
  redis?: RedisCounters;
  cache_redis?: RedisCounters;
  db_cpu?: unknown;
}
interface RedisCounters {
  cpu: number;
  evicted: number;
  run_id: string;
}

interface Period {
  now: Date;
  /** Seconds since the stored snapshot by the injected clock (null: first evaluation). */
  periodS: number | null;
  /** Seconds since it by the wall clock: rates (CPU, IOPS) are per real second. */
  wallS: number | null;
}

interface Ctx {
  deps: OpsDeps;
  cfg: OpsConfig;
  prev: CounterSnap | null;
  period: Period;
  snap: CounterSnap;
  readings: Map<string, Reading>;
  samples: Sample[];
}

const FIRST_READING = 'first evaluation: the next one has a period to compare with';

function failed(err: unknown, threshold: number | null, periodic = false): Reading {
  return { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold, periodic };
}

/** Reads every alarm's figure and the scaling samples; never throws for one source's failure. */
export async function measure(deps: OpsDeps, prev: CounterSnap | null, period: Period): Promise<{ readings: Map<string, Reading>; samples: Sample[]; snap: CounterSnap }> {
  const ctx: Ctx = { deps, cfg: deps.config, prev, period, snap: { wall_ms: Date.now() }, readings: new Map(), samples: [] };
  await dbCpu(ctx);
  await connections(ctx);
  await slowQueries(ctx);
  await readIo(ctx);
  ctx.samples.push(hostMemory());
  await redisFigures(ctx);
  await replicaLag(ctx);
  await backupAge(ctx);
  await modelDrift(ctx);
  return { readings: ctx.readings, samples: ctx.samples, snap: ctx.snap };
}

async function dbCpu({ deps, cfg, prev, snap, readings, samples }: Ctx): Promise<void> {
  const r = deps.dbCpu
    ? await deps.dbCpu.sample(prev?.db_cpu ?? null).catch((err) => ({ result: { value: null, unavailable: errMessage(err) }, snapshot: undefined }))
    : { result: { value: null, unavailable: 'no database CPU source (not local, DB_CPU_PROMETHEUS_URL unset)' }, snapshot: undefined };
  snap.db_cpu = r.snapshot ?? null;
  const res = r.result as { value: number | null; unavailable?: string; source?: string };
  const source = res.value === null ? `unavailable: ${res.unavailable}` : (res.source ?? '');
  readings.set('AccuNode-DB-HighCPU', { value: res.value, breach: res.value === null ? null : res.value > cfg.ALARM_DB_CPU_PERCENT, reason: source, threshold: cfg.ALARM_DB_CPU_PERCENT, periodic: true });
  samples.push({ metric: 'db_cpu_percent', value: res.value, source });
}

/** Client connections against the live max_connections. */
async function connections({ deps, cfg, readings, samples }: Ctx): Promise<void> {
  try {
    const c = await connectionCounts(deps.sql);
    const limit = Math.floor((c.maxConnections * cfg.ALARM_DB_CONNECTIONS_PERCENT) / 100);
    readings.set('AccuNode-DB-HighConnections', { value: c.total, breach: c.total > limit, reason: `${c.total} client connections of max_connections ${c.maxConnections} (limit ${limit})`, threshold: limit, periodic: false });
    samples.push({ metric: 'db_connections', value: c.total, source: 'pg_stat_activity client backends' });
    samples.push({ metric: 'db_max_connections', value: c.maxConnections, source: 'max_connections' });
  } catch (err) {
    readings.set('AccuNode-DB-HighConnections', failed(err, null));
  }
}

/** Slow statements from pg_stat_statements deltas. */
async function slowQueries({ deps, cfg, prev, period, snap, readings }: Ctx): Promise<void> {
  const name = 'AccuNode-DB-SlowQueries';
  const threshold = cfg.ALARM_SLOW_QUERY_COUNT;
  const st = await pgStatStatementsStatus(deps.sql);
  if (!st.available) {
    readings.set(name, { value: null, breach: null, reason: `unavailable: ${st.reason}; to enable: ${st.howToEnable}`, threshold, periodic: true });
    return;
  }
  try {
    snap.statements = await statementCounters(deps.sql);
    if (!prev?.statements) {
      readings.set(name, { value: null, breach: null, reason: `unavailable: ${FIRST_READING}`, threshold, periodic: true });
      return;
    }
    const s = slowCallsBetween(prev.statements, snap.statements, cfg.ALARM_SLOW_QUERY_MS);
    readings.set(name, {
      value: s.slowCalls,
      breach: s.slowCalls > threshold,
      reason: `pg_stat_statements deltas over ${round1(period.periodS ?? 0)} s: ${s.slowCalls} calls of ${s.statements} statements averaging > ${cfg.ALARM_SLOW_QUERY_MS} ms`,
      threshold,
      periodic: true,
    });
  } catch (err) {
    readings.set(name, failed(err, threshold, true));
  }
}

/** Read IOPS and latency for `scaling recommend` (pg_stat_database deltas); no alarm of its own. */
async function readIo({ deps, prev, period, snap, samples }: Ctx): Promise<void> {
  try {
    const t = await databaseTotals(deps.sql);
    snap.blks_read = t.blks_read;
    snap.blk_read_time = t.blk_read_time_ms;
    const wallS = period.wallS;
    if (prev?.blks_read === undefined || !wallS || wallS <= 0) return;
    const reads = Math.max(0, t.blks_read - prev.blks_read);
    samples.push({ metric: 'db_read_iops', value: round1(reads / wallS), source: 'pg_stat_database blks_read per second (reads missing shared_buffers; the OS cache may serve some)' });
    if (!t.track_io_timing) samples.push({ metric: 'db_read_latency_ms', value: null, source: 'unavailable: track_io_timing is off' });
    else if (reads === 0) samples.push({ metric: 'db_read_latency_ms', value: null, source: 'unavailable: no block reads in the period' });
    else samples.push({ metric: 'db_read_latency_ms', value: round1((t.blk_read_time_ms - (prev.blk_read_time ?? 0)) / reads), source: 'pg_stat_database blk_read_time / blks_read' });
  } catch (err) {
    deps.log?.warn({ err: errMessage(err) }, 'pg_stat_database unreadable');
  }
}

function hostMemory(): Sample {
  // Host memory in use (MemTotal - MemAvailable) where this process runs; the scaling rules
  // read it only when the database is local (see scaling.ts).
  try {
    const raw = readFileSync('/proc/meminfo', 'utf8');
    const total = Number(/MemTotal:\s+(\d+)/.exec(raw)?.[1]);
    const avail = Number(/MemAvailable:\s+(\d+)/.exec(raw)?.[1]);
    if (total > 0 && Number.isFinite(avail)) return { metric: 'host_memory_percent', value: round1((100 * (total - avail)) / total), source: '/proc/meminfo (MemTotal - MemAvailable) of this host' };
  } catch {
    /* fall through */
  }
  return { metric: 'host_memory_percent', value: null, source: 'unavailable: /proc/meminfo unreadable' };
}

/** Redis CPU, memory and evictions of each Redis instance: the worst counts. */
async function redisFigures({ deps, cfg, prev, period, snap, readings, samples }: Ctx): Promise<void> {
  const targets: Array<['redis' | 'cache_redis', Redis]> = [['redis', deps.redis]];
  if (deps.cacheRedis && deps.cacheRedis !== deps.redis) targets.push(['cache_redis', deps.cacheRedis]);
  const cpu: Reading[] = [];
  const mem: Reading[] = [];
  const ev: Reading[] = [];
  const wallS = period.wallS;
  for (const [key, redis] of targets) {
    const label = key === 'redis' ? 'REDIS_URL' : 'CACHE_REDIS_URL';
    try {
      const info = parseInfo(await redis.info('everything'));
      const cur = { cpu: cpuSeconds(info), evicted: num(info, 'evicted_keys') ?? 0, run_id: info.run_id ?? '' };
      snap[key] = cur;
      const before = prev?.[key];
      const same = before && before.run_id === cur.run_id;
      if (!before || !wallS || wallS <= 0) {
        cpu.push({ value: null, breach: null, reason: `${label}: unavailable: ${FIRST_READING}`, threshold: cfg.ALARM_REDIS_CPU_PERCENT, periodic: true });
        ev.push({ value: null, breach: null, reason: `${label}: unavailable: ${FIRST_READING}`, threshold: cfg.ALARM_REDIS_EVICTIONS, periodic: true });
      } else {
        // After a restart the counters start again from zero: the whole figure is this period's.
        const dcpu = same ? cur.cpu - before.cpu : cur.cpu;
        const pct = round1((100 * Math.max(0, dcpu)) / wallS);
        cpu.push({ value: pct, breach: pct > cfg.ALARM_REDIS_CPU_PERCENT, reason: `${label}: INFO used_cpu_sys+used_cpu_user delta over ${round1(wallS)} s${same ? '' : ' (server restarted)'}`, threshold: cfg.ALARM_REDIS_CPU_PERCENT, periodic: true });
        const dev = same ? Math.max(0, cur.evicted - before.evicted) : cur.evicted;
        ev.push({ value: dev, breach: dev > cfg.ALARM_REDIS_EVICTIONS, reason: `${label}: INFO evicted_keys delta over ${round1(period.periodS ?? 0)} s (policy ${info.maxmemory_policy})`, threshold: cfg.ALARM_REDIS_EVICTIONS, periodic: true });
        samples.push({ metric: `${key}_cpu_percent`, value: pct, source: 'INFO cpu delta' });
      }
      const m = memoryFigure(info);
      if (!m) mem.push({ value: null, breach: null, reason: `${label}: unavailable: INFO memory incomplete`, threshold: cfg.ALARM_REDIS_MEMORY_PERCENT, periodic: false });
      else {
        mem.push({ value: m.percent, breach: m.percent > cfg.ALARM_REDIS_MEMORY_PERCENT, reason: `${label}: used_memory ${m.used} B, ${m.basis}`, threshold: cfg.ALARM_REDIS_MEMORY_PERCENT, periodic: false });
        samples.push({ metric: `${key}_memory_percent`, value: m.percent, source: m.basis });
      }
    } catch (err) {
      const r = { value: null, breach: null, reason: `${label}: unavailable: ${errMessage(err)}`, threshold: null, periodic: false };
      cpu.push(r);
      mem.push(r);
      ev.push(r);
    }
  }
  readings.set('AccuNode-Redis-HighCPU', worst(cpu));
  readings.set('AccuNode-Redis-HighMemory', worst(mem));
  readings.set('AccuNode-Redis-HighEvictions', worst(ev));
}

async function replicaLag({ deps, cfg, readings, samples }: Ctx): Promise<void> {
  const name = 'AccuNode-DB-ReplicaLag';
  const threshold = cfg.REPLICA_LAG_LIMIT_SECONDS;
  try {
    // With DATABASE_READ_URLS each replica measures its own lag (replay timestamps); without,
    // the primary's pg_stat_replication is all there is.
    const all = await replicationLag(deps.sql, deps.replicas ?? []);
    const lag = deps.replicas && deps.replicas.length > 0 ? all.filter((l) => l.source === 'replica') : all;
    samples.push({ metric: 'db_replicas', value: lag.filter((l) => l.lag_seconds !== null).length, source: 'pg_stat_replication and DATABASE_READ_URLS' });
    const known = lag.filter((l) => l.lag_seconds !== null);
    const unknown = lag.filter((l) => l.lag_seconds === null).map((l) => `${l.replica}: ${l.note}`).join('; ');
    if (lag.length === 0) readings.set(name, { value: null, breach: null, reason: 'unavailable: no replica streams from this server and DATABASE_READ_URLS is empty', threshold, periodic: false });
    else if (known.length === 0) readings.set(name, { value: null, breach: null, reason: `unavailable: ${unknown}`, threshold, periodic: false });
    else {
      const w = known.reduce((a, b) => ((b.lag_seconds ?? 0) > (a.lag_seconds ?? 0) ? b : a));
      readings.set(name, {
        value: round1(w.lag_seconds ?? 0),
        breach: (w.lag_seconds ?? 0) > threshold,
        reason: `worst of ${lag.length}: ${w.replica} (${w.source}: ${w.note})` + (known.length < lag.length ? `; unavailable: ${unknown}` : ''),
        threshold,
        periodic: false,
      });
    }
  } catch (err) {
    readings.set(name, failed(err, null));
  }
}

async function backupAge({ deps, cfg, period, readings }: Ctx): Promise<void> {
  const name = 'AccuNode-Backup-Stale';
  const threshold = cfg.BACKUP_MAX_AGE_HOURS;
  try {
    const b = deps.backups ? await deps.backups.lastGoodBackup() : 'unconfigured';
    if (b === 'unconfigured') readings.set(name, { value: null, breach: null, reason: 'unavailable: no backups configured', threshold, periodic: false });
    else if (b === null) readings.set(name, { value: null, breach: true, reason: 'no backup has succeeded yet', threshold, periodic: false });
    else {
      const hours = round1((period.now.getTime() - b.at.getTime()) / 3_600_000);
      readings.set(name, { value: hours, breach: hours > threshold, reason: `last good backup ${b.id} at ${b.at.toISOString()}`, threshold, periodic: false });
    }
  } catch (err) {
    readings.set(name, failed(err, null));
  }
}

/** The latest stored drift run (issue 15). */
async function modelDrift({ deps, readings }: Ctx): Promise<void> {
  try {
    readings.set('AccuNode-Model-Drift', { ...(await modelDriftReading(deps.sql)), threshold: PSI_SIGNIFICANT, periodic: false });
  } catch (err) {
    readings.set('AccuNode-Model-Drift', failed(err, null));
  }
}
