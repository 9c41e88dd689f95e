// The spec's CloudWatch alarms, self-hosted: evaluated every 5 minutes by the scheduler (and on
// demand by `accunode alarms`), states OK / ALARM (INSUFFICIENT_DATA when a figure cannot be
// measured, with the reason), every transition stored, a webhook called on ALARM and recovery.
//
// Period deltas (slow queries, evictions, CPU) are taken against the counter snapshot stored by
// the previous evaluation in ops_snapshots. The snapshot advances only once a full period
// (ALARM_PERIOD_SECONDS, by the injected clock) has passed, so an on-demand evaluation between
// two scheduled ones measures the period so far without shortening the next one; consecutive
// breaches (DB CPU needs two periods) are counted per closed period.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/pool.js';
import { connectionCounts, databaseTotals, pgStatStatementsStatus, replicationLag, slowCallsBetween, statementCounters } from './pg.js';
import { cpuSeconds, memoryFigure, num, parseInfo, round1 } from './redis.js';
import { errMessage, type BackupSource, type OpsConfig, type OpsDeps } from '../types.js';
import { modelDriftReading } from './model-drift-metrics.js';
import { PSI_SIGNIFICANT } from '../../risk/drift.js';

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface AlarmDef {
  name: string;
  description: string;
  unit: string;
  /** Consecutive closed periods over the threshold before it fires. */
  periods: (c: OpsConfig) => number;
  /** The Prometheus rule expression of ops/prometheus/alerts.yml says the same. */
  threshold: (c: OpsConfig) => string;
}

/** The alarm list: the same names as ops/prometheus/alerts.yml (a test holds them equal). */
export const ALARMS: readonly AlarmDef[] = [
  { name: 'AccuNode-DB-HighCPU', description: 'database CPU utilization is high', unit: '%', periods: (c) => c.ALARM_DB_CPU_PERIODS, threshold: (c) => `> ${c.ALARM_DB_CPU_PERCENT} % for ${c.ALARM_DB_CPU_PERIODS} periods` },
  { name: 'AccuNode-DB-HighConnections', description: 'database connections near max_connections', unit: 'connections', periods: () => 1, threshold: (c) => `> ${c.ALARM_DB_CONNECTIONS_PERCENT} % of max_connections` },
  { name: 'AccuNode-DB-SlowQueries', description: 'slow statements in the period', unit: 'calls', periods: () => 1, threshold: (c) => `> ${c.ALARM_SLOW_QUERY_COUNT} calls averaging > ${c.ALARM_SLOW_QUERY_MS} ms` },
  { name: 'AccuNode-Redis-HighCPU', description: 'Redis CPU utilization is high', unit: '%', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_CPU_PERCENT} % of a core` },
  { name: 'AccuNode-Redis-HighMemory', description: 'Redis memory usage is high', unit: '%', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_MEMORY_PERCENT} %` },
  { name: 'AccuNode-Redis-HighEvictions', description: 'Redis evicts keys', unit: 'keys', periods: () => 1, threshold: (c) => `> ${c.ALARM_REDIS_EVICTIONS} per period` },
  { name: 'AccuNode-DB-ReplicaLag', description: 'a read replica lags behind the primary', unit: 's', periods: () => 1, threshold: (c) => `> ${c.REPLICA_LAG_LIMIT_SECONDS} s` },
  { name: 'AccuNode-Backup-Stale', description: 'the last good backup is older than its schedule', unit: 'h', periods: () => 1, threshold: (c) => `> ${c.BACKUP_MAX_AGE_HOURS} h` },
  { name: 'AccuNode-Model-Drift', description: 'recent predictions have shifted from a model\'s training data (PSI, all tenants)', unit: 'PSI', periods: () => 1, threshold: () => `> ${PSI_SIGNIFICANT}` },
];
export const ALARM_NAMES: readonly string[] = ALARMS.map((a) => a.name);

interface Reading {
  value: number | null;
  breach: boolean | null;
  /** Shown with the figure: how it was measured, or why it is unavailable. */
  reason: string;
  threshold: number | null;
  /** Reading over a period (needs a closed period to count towards consecutive breaches). */
  periodic: boolean;
}

export interface AlarmResult {
  name: string;
  state: AlarmState;
  previous_state: AlarmState | null;
  value: number | null;
  threshold: number | null;
  unit: string;
  condition: string;
  breaches: number;
  reason: string;
  transition: boolean;
}

export interface AlarmEvaluation {
  evaluated_at: Date;
  /** Seconds since the counter snapshot the deltas are taken against (null: first evaluation). */
  period_s: number | null;
  period_closed: boolean;
  alarms: AlarmResult[];
  firing: string[];
  notifications: Array<{ alarm: string; to: AlarmState; ok: boolean; error?: string }>;
  samples: Array<{ metric: string; value: number | null; source: string }>;
}

interface Snapshot<T> {
  taken_at: Date;
  data: T;
}

interface CounterSnap {
  wall_ms: number;
  statements?: Record<string, [number, number]>;
  blks_read?: number;
  blk_read_time?: number;
  redis?: { cpu: number; evicted: number; run_id: string };
  cache_redis?: { cpu: number; evicted: number; run_id: string };
  db_cpu?: unknown;
}

async function loadSnapshot(sql: Sql): Promise<Snapshot<CounterSnap> | null> {
  const [r] = await sql<{ taken_at: Date; data: CounterSnap }[]>`select taken_at, data from ops_snapshots where source = 'alarms'`;
  return r ?? null;
}

/**
 * Evaluates every alarm once, stores states, transitions and the samples `scaling recommend`
 * reads, and calls ALARM_WEBHOOK_URL for each transition into or out of ALARM.
 */
export async function evaluateAlarms(deps: OpsDeps, opts: { now?: Date } = {}): Promise<AlarmEvaluation> {
  const cfg = deps.config;
  const sql = deps.sql;
  const now = opts.now ?? (deps.now ? deps.now() : new Date());
  const prevSnap = await loadSnapshot(sql);
  const prev = prevSnap?.data ?? null;
  const periodS = prevSnap ? (now.getTime() - prevSnap.taken_at.getTime()) / 1000 : null;
  const periodClosed = periodS === null || periodS >= 0.9 * cfg.ALARM_PERIOD_SECONDS;
  const wallMs = Date.now();
  const wallS = prev ? (wallMs - prev.wall_ms) / 1000 : null;
  const snap: CounterSnap = { wall_ms: wallMs };
  const readings = new Map<string, Reading>();
  const samples: AlarmEvaluation['samples'] = [];
  const firstReading = 'first evaluation: the next one has a period to compare with';

  // Database CPU.
  {
    const r = deps.dbCpu ? await deps.dbCpu.sample(prev?.db_cpu ?? null).catch((err) => ({ result: { value: null, unavailable: errMessage(err) }, snapshot: undefined })) : { result: { value: null, unavailable: 'no database CPU source (not local, DB_CPU_PROMETHEUS_URL unset)' }, snapshot: undefined };
    snap.db_cpu = r.snapshot ?? null;
    const res = r.result as { value: number | null; unavailable?: string; source?: string };
    readings.set('AccuNode-DB-HighCPU', {
      value: res.value,
      breach: res.value === null ? null : res.value > cfg.ALARM_DB_CPU_PERCENT,
      reason: res.value === null ? `unavailable: ${res.unavailable}` : (res.source ?? ''),
      threshold: cfg.ALARM_DB_CPU_PERCENT,
      periodic: true,
    });
    samples.push({ metric: 'db_cpu_percent', value: res.value, source: res.value === null ? `unavailable: ${res.unavailable}` : (res.source ?? '') });
  }

  // Connections against the live max_connections.
  try {
    const c = await connectionCounts(sql);
    const limit = Math.floor((c.maxConnections * cfg.ALARM_DB_CONNECTIONS_PERCENT) / 100);
    readings.set('AccuNode-DB-HighConnections', {
      value: c.total,
      breach: c.total > limit,
      reason: `${c.total} client connections of max_connections ${c.maxConnections} (limit ${limit})`,
      threshold: limit,
      periodic: false,
    });
    samples.push({ metric: 'db_connections', value: c.total, source: 'pg_stat_activity client backends' });
    samples.push({ metric: 'db_max_connections', value: c.maxConnections, source: 'max_connections' });
  } catch (err) {
    readings.set('AccuNode-DB-HighConnections', { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold: null, periodic: false });
  }

  // Slow statements from pg_stat_statements deltas.
  {
    const st = await pgStatStatementsStatus(sql);
    if (!st.available) {
      readings.set('AccuNode-DB-SlowQueries', { value: null, breach: null, reason: `unavailable: ${st.reason}; to enable: ${st.howToEnable}`, threshold: cfg.ALARM_SLOW_QUERY_COUNT, periodic: true });
    } else {
      try {
        snap.statements = await statementCounters(sql);
        if (!prev?.statements) {
          readings.set('AccuNode-DB-SlowQueries', { value: null, breach: null, reason: `unavailable: ${firstReading}`, threshold: cfg.ALARM_SLOW_QUERY_COUNT, periodic: true });
        } else {
          const s = slowCallsBetween(prev.statements, snap.statements, cfg.ALARM_SLOW_QUERY_MS);
          readings.set('AccuNode-DB-SlowQueries', {
            value: s.slowCalls,
            breach: s.slowCalls > cfg.ALARM_SLOW_QUERY_COUNT,
            reason: `pg_stat_statements deltas over ${round1(periodS ?? 0)} s: ${s.slowCalls} calls of ${s.statements} statements averaging > ${cfg.ALARM_SLOW_QUERY_MS} ms`,
            threshold: cfg.ALARM_SLOW_QUERY_COUNT,
            periodic: true,
          });
        }
      } catch (err) {
        readings.set('AccuNode-DB-SlowQueries', { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold: cfg.ALARM_SLOW_QUERY_COUNT, periodic: true });
      }
    }
  }

  // Read IOPS and latency for scaling (pg_stat_database deltas).
  try {
    const t = await databaseTotals(sql);
    snap.blks_read = t.blks_read;
    snap.blk_read_time = t.blk_read_time_ms;
    if (prev?.blks_read !== undefined && wallS && wallS > 0) {
      const reads = Math.max(0, t.blks_read - prev.blks_read);
      samples.push({ metric: 'db_read_iops', value: round1(reads / wallS), source: 'pg_stat_database blks_read per second (reads missing shared_buffers; the OS cache may serve some)' });
      if (!t.track_io_timing) samples.push({ metric: 'db_read_latency_ms', value: null, source: 'unavailable: track_io_timing is off' });
      else if (reads === 0) samples.push({ metric: 'db_read_latency_ms', value: null, source: 'unavailable: no block reads in the period' });
      else samples.push({ metric: 'db_read_latency_ms', value: round1((t.blk_read_time_ms - (prev.blk_read_time ?? 0)) / reads), source: 'pg_stat_database blk_read_time / blks_read' });
    }
  } catch (err) {
    deps.log?.warn({ err: errMessage(err) }, 'pg_stat_database unreadable');
  }
  const mem = memoryOfHostUsed();
  samples.push(mem);

  // Redis CPU, memory, evictions (of each Redis: the worst counts).
  const redisTargets: Array<['redis' | 'cache_redis', Redis]> = [['redis', deps.redis]];
  if (deps.cacheRedis && deps.cacheRedis !== deps.redis) redisTargets.push(['cache_redis', deps.cacheRedis]);
  const cpu: Reading[] = [];
  const memr: Reading[] = [];
  const ev: Reading[] = [];
  for (const [key, redis] of redisTargets) {
    const label = key === 'redis' ? 'REDIS_URL' : 'CACHE_REDIS_URL';
    try {
      const info = parseInfo(await redis.info('everything'));
      const cur = { cpu: cpuSeconds(info), evicted: num(info, 'evicted_keys') ?? 0, run_id: info.run_id ?? '' };
      snap[key] = cur;
      const before = prev?.[key];
      const same = before && before.run_id === cur.run_id;
      if (!before || !wallS || wallS <= 0) {
        cpu.push({ value: null, breach: null, reason: `${label}: unavailable: ${firstReading}`, threshold: cfg.ALARM_REDIS_CPU_PERCENT, periodic: true });
        ev.push({ value: null, breach: null, reason: `${label}: unavailable: ${firstReading}`, threshold: cfg.ALARM_REDIS_EVICTIONS, periodic: true });
      } else {
        const dcpu = same ? cur.cpu - before.cpu : cur.cpu;
        const pct = round1((100 * Math.max(0, dcpu)) / wallS);
        cpu.push({ value: pct, breach: pct > cfg.ALARM_REDIS_CPU_PERCENT, reason: `${label}: INFO used_cpu_sys+used_cpu_user delta over ${round1(wallS)} s${same ? '' : ' (server restarted)'}`, threshold: cfg.ALARM_REDIS_CPU_PERCENT, periodic: true });
        const dev = same ? Math.max(0, cur.evicted - before.evicted) : cur.evicted;
        ev.push({ value: dev, breach: dev > cfg.ALARM_REDIS_EVICTIONS, reason: `${label}: INFO evicted_keys delta over ${round1(periodS ?? 0)} s (policy ${info.maxmemory_policy})`, threshold: cfg.ALARM_REDIS_EVICTIONS, periodic: true });
        samples.push({ metric: `${key}_cpu_percent`, value: pct, source: 'INFO cpu delta' });
      }
      const m = memoryFigure(info);
      if (!m) memr.push({ value: null, breach: null, reason: `${label}: unavailable: INFO memory incomplete`, threshold: cfg.ALARM_REDIS_MEMORY_PERCENT, periodic: false });
      else {
        memr.push({ value: m.percent, breach: m.percent > cfg.ALARM_REDIS_MEMORY_PERCENT, reason: `${label}: used_memory ${m.used} B, ${m.basis}`, threshold: cfg.ALARM_REDIS_MEMORY_PERCENT, periodic: false });
        samples.push({ metric: `${key}_memory_percent`, value: m.percent, source: m.basis });
      }
    } catch (err) {
      const r = { value: null, breach: null, reason: `${label}: unavailable: ${errMessage(err)}`, threshold: null, periodic: false };
      cpu.push(r);
      memr.push(r);
      ev.push(r);
    }
  }
  readings.set('AccuNode-Redis-HighCPU', worst(cpu));
  readings.set('AccuNode-Redis-HighMemory', worst(memr));
  readings.set('AccuNode-Redis-HighEvictions', worst(ev));

  // Replica lag.
  try {
    // With DATABASE_READ_URLS each replica measures its own lag (replay timestamps); without,
    // the primary's pg_stat_replication is all there is.
    const all = await replicationLag(sql, deps.replicas ?? []);
    const lag = deps.replicas && deps.replicas.length > 0 ? all.filter((l) => l.source === 'replica') : all;
    samples.push({ metric: 'db_replicas', value: lag.filter((l) => l.lag_seconds !== null).length, source: 'pg_stat_replication and DATABASE_READ_URLS' });
    const known = lag.filter((l) => l.lag_seconds !== null);
    if (lag.length === 0) readings.set('AccuNode-DB-ReplicaLag', { value: null, breach: null, reason: 'unavailable: no replica streams from this server and DATABASE_READ_URLS is empty', threshold: cfg.REPLICA_LAG_LIMIT_SECONDS, periodic: false });
    else if (known.length === 0) readings.set('AccuNode-DB-ReplicaLag', { value: null, breach: null, reason: `unavailable: ${lag.map((l) => `${l.replica}: ${l.note}`).join('; ')}`, threshold: cfg.REPLICA_LAG_LIMIT_SECONDS, periodic: false });
    else {
      const w = known.reduce((a, b) => ((b.lag_seconds ?? 0) > (a.lag_seconds ?? 0) ? b : a));
      readings.set('AccuNode-DB-ReplicaLag', {
        value: round1(w.lag_seconds ?? 0),
        breach: (w.lag_seconds ?? 0) > cfg.REPLICA_LAG_LIMIT_SECONDS,
        reason: `worst of ${lag.length}: ${w.replica} (${w.source}: ${w.note})` + (known.length < lag.length ? `; unavailable: ${lag.filter((l) => l.lag_seconds === null).map((l) => `${l.replica}: ${l.note}`).join('; ')}` : ''),
        threshold: cfg.REPLICA_LAG_LIMIT_SECONDS,
        periodic: false,
      });
    }
  } catch (err) {
    readings.set('AccuNode-DB-ReplicaLag', { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold: null, periodic: false });
  }

  // Last good backup.
  try {
    const b = deps.backups ? await deps.backups.lastGoodBackup() : 'unconfigured';
    if (b === 'unconfigured') readings.set('AccuNode-Backup-Stale', { value: null, breach: null, reason: 'unavailable: no backups configured', threshold: cfg.BACKUP_MAX_AGE_HOURS, periodic: false });
    else if (b === null) readings.set('AccuNode-Backup-Stale', { value: null, breach: true, reason: 'no backup has succeeded yet', threshold: cfg.BACKUP_MAX_AGE_HOURS, periodic: false });
    else {
      const hours = round1((now.getTime() - b.at.getTime()) / 3_600_000);
      readings.set('AccuNode-Backup-Stale', { value: hours, breach: hours > cfg.BACKUP_MAX_AGE_HOURS, reason: `last good backup ${b.id} at ${b.at.toISOString()}`, threshold: cfg.BACKUP_MAX_AGE_HOURS, periodic: false });
    }
  } catch (err) {
    readings.set('AccuNode-Backup-Stale', { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold: null, periodic: false });
  }

  // Model drift (issue 15): the latest stored drift run.
  try {
    const d = await modelDriftReading(sql);
    readings.set('AccuNode-Model-Drift', { ...d, threshold: PSI_SIGNIFICANT, periodic: false });
  } catch (err) {
    readings.set('AccuNode-Model-Drift', { value: null, breach: null, reason: `unavailable: ${errMessage(err)}`, threshold: null, periodic: false });
  }

  // States, transitions, notifications.
  const stored = new Map(
    (await sql<{ name: string; state: AlarmState; breaches: number }[]>`select name, state, breaches from alarm_states`).map((r) => [r.name, r]),
  );
  const results: AlarmResult[] = [];
  const notifications: AlarmEvaluation['notifications'] = [];
  const transitions: Array<{ id: number; r: AlarmResult }> = [];
  for (const def of ALARMS) {
    const rd = readings.get(def.name) ?? { value: null, breach: null, reason: 'unavailable: not evaluated', threshold: null, periodic: false };
    const before = stored.get(def.name);
    const prevBreaches = before?.breaches ?? 0;
    let breaches: number;
    if (rd.breach === null) breaches = 0;
    else if (!rd.periodic || periodClosed) breaches = rd.breach ? prevBreaches + 1 : 0;
    else breaches = prevBreaches;
    const periods = def.periods(cfg);
    const state: AlarmState = rd.breach === null ? 'INSUFFICIENT_DATA' : breaches >= periods ? 'ALARM' : 'OK';
    const r: AlarmResult = {
      name: def.name,
      state,
      previous_state: before?.state ?? null,
      value: rd.value,
      threshold: rd.threshold,
      unit: def.unit,
      condition: def.threshold(cfg),
      breaches,
      reason: rd.reason + (rd.breach && state === 'OK' ? ` (breach ${breaches} of ${periods} periods)` : ''),
      transition: (before?.state ?? null) !== state,
    };
    results.push(r);
    await sql`
      insert into alarm_states (name, state, since, breaches, last_value, last_reason, evaluated_at)
      values (${def.name}, ${state}, ${now}, ${breaches}, ${rd.value}, ${r.reason}, ${now})
      on conflict (name) do update set
        since = case when alarm_states.state = excluded.state then alarm_states.since else excluded.since end,
        state = excluded.state, breaches = excluded.breaches, last_value = excluded.last_value,
        last_reason = excluded.last_reason, evaluated_at = excluded.evaluated_at`;
    if (r.transition) {
      const [t] = await sql<{ id: number }[]>`
        insert into alarm_transitions (name, from_state, to_state, value, threshold, reason, at)
        values (${def.name}, ${r.previous_state}, ${state}, ${rd.value}, ${rd.threshold}, ${r.reason}, ${now}) returning id`;
      if (t) transitions.push({ id: Number(t.id), r });
    }
  }
  for (const { id, r } of transitions) {
    if (r.state !== 'ALARM' && r.previous_state !== 'ALARM') continue;
    if (!cfg.ALARM_WEBHOOK_URL) continue;
    const res = await notify(deps, cfg.ALARM_WEBHOOK_URL, r, now);
    notifications.push({ alarm: r.name, to: r.state, ...res });
    await sql`update alarm_transitions set notified = ${res.ok}, notify_error = ${res.error ?? null} where id = ${id}`;
  }

  if (periodClosed) {
    await sql`
      insert into ops_snapshots (source, taken_at, data) values ('alarms', ${now}, ${sql.json(JSON.parse(JSON.stringify(snap)))})
      on conflict (source) do update set taken_at = excluded.taken_at, data = excluded.data`;
    for (const s of samples) await sql`insert into metric_samples (metric, value, source, taken_at) values (${s.metric}, ${s.value}, ${s.source}, ${now})`;
  }
  return {
    evaluated_at: now,
    period_s: periodS === null ? null : round1(periodS),
    period_closed: periodClosed,
    alarms: results,
    firing: results.filter((r) => r.state === 'ALARM').map((r) => r.name),
    notifications,
    samples,
  };
}

function worst(rs: Reading[]): Reading {
  const firing = rs.find((r) => r.breach === true);
  if (firing) return firing;
  const ok = rs.filter((r) => r.breach === false);
  if (ok.length > 0) return ok.reduce((a, b) => ((b.value ?? 0) > (a.value ?? 0) ? b : a));
  return rs[0] ?? { value: null, breach: null, reason: 'unavailable', threshold: null, periodic: false };
}

function memoryOfHostUsed(): { metric: string; value: number | null; source: string } {
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

async function notify(deps: OpsDeps, url: string, r: AlarmResult, at: Date): Promise<{ ok: boolean; error?: string }> {
  const f = deps.fetch ?? fetch;
  try {
    const res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'accunode',
        alarm: r.name,
        state: r.state,
        previous_state: r.previous_state,
        value: r.value,
        threshold: r.threshold,
        condition: r.condition,
        reason: r.reason,
        at: at.toISOString(),
        text: `${r.name} is ${r.state} (was ${r.previous_state ?? 'unknown'}): ${r.reason}`,
      }),
      signal: AbortSignal.timeout(5000),
    });
    return res.ok ? { ok: true } : { ok: false, error: `HTTP ${res.status}` };
  } catch (err) {
    return { ok: false, error: errMessage(err) };
  }
}

export interface AlarmStateRow {
  name: string;
  state: AlarmState;
  since: Date;
  breaches: number;
  last_value: number | null;
  last_reason: string | null;
  evaluated_at: Date;
}

export async function alarmStates(sql: Sql): Promise<AlarmStateRow[]> {
  return sql<AlarmStateRow[]>`select name, state, since, breaches, last_value, last_reason, evaluated_at from alarm_states order by name`;
}

export interface AlarmTransitionRow {
  id: number;
  name: string;
  from_state: string | null;
  to_state: string;
  value: number | null;
  reason: string | null;
  at: Date;
  notified: boolean;
  notify_error: string | null;
}

export async function alarmHistory(sql: Sql, opts: { limit?: number; name?: string } = {}): Promise<AlarmTransitionRow[]> {
  const rows = await sql<AlarmTransitionRow[]>`
    select id, name, from_state, to_state, value, reason, at, notified, notify_error from alarm_transitions
    where ${opts.name ? sql`name = ${opts.name}` : sql`true`}
    order by at desc, id desc limit ${opts.limit ?? 50}`;
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/**
 * The default backup source: manifests (*.json with created_at) in BACKUP_DIR, as the backups
 * feature writes them; a manifest with a status other than ok/completed/verified/succeeded is not
 * a good backup. No directory or no manifest: 'unconfigured'.
 */
export function backupDirSource(dir: string): BackupSource {
  return {
    async lastGoodBackup() {
      let files: string[];
      try {
        files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.json'));
      } catch {
        return 'unconfigured';
      }
      let best: { at: Date; id: string } | null = null;
      let manifests = 0;
      for (const f of files) {
        try {
          const full = path.join(dir, f);
          if (!statSync(full).isFile()) continue;
          const m = JSON.parse(readFileSync(full, 'utf8')) as { created_at?: string; status?: string; id?: string };
          if (!m.created_at) continue;
          manifests++;
          if (m.status && !['ok', 'completed', 'verified', 'succeeded', 'success'].includes(m.status)) continue;
          const at = new Date(m.created_at);
          if (Number.isNaN(at.getTime())) continue;
          if (!best || at > best.at) best = { at, id: m.id ?? f };
        } catch {
          /* not a manifest */
        }
      }
      if (manifests === 0) return 'unconfigured';
      return best;
    },
  };
}
